"""Colourings of sparsity patterns: which columns (or rows) of a Jacobian, or which
variables of a Hessian, may share one directional derivative.

- *Column colouring* (forward mode, finite differences): columns that share no row get
  one colour, a partial distance-2 colouring of the bipartite graph (Curtis, Powell and
  Reid, 1974); then ``J @ S`` with one seed per colour holds every nonzero once.
- *Row colouring* (reverse mode): the same on the transpose.
- *Star colouring* (Hessians, symmetric): a distance-1 colouring of the adjacency graph
  in which every path on four vertices takes at least three colours; every nonzero is
  then read directly off ``H @ S`` (Gebremedhin, Manne and Pothen, 2005).
- *Acyclic colouring* (Hessians): a distance-1 colouring in which every cycle takes at
  least three colours, so any two colours induce a forest; fewer colours than a star
  colouring, the nonzeros recovered by substitution along those trees.

Each is greedy, in one of the vertex orders the field uses: ``natural``,
``largest_first``, ``smallest_last``, ``incidence_degree`` and ``random``, and then
improved by *iterated greedy* (Culberson, 1992): the vertices taken again class by class
(the classes in reverse order, largest first, or at random), which for column and row
colourings never needs more colours and often fewer; star and acyclic colourings keep the
best one found. The colour count comes with a lower bound that every colouring of the kind
needs: for columns, the most nonzeros in a row (they must all differ); for rows, the most
in a column; for star and acyclic colourings, the larger of a clique found greedily and
the *forest bound* (any two colour classes induce a forest, so ``k`` colours hold at most
``(k - 1) n - k (k - 1) / 2`` edges on ``n`` vertices).

The greedy kernels and the smallest-last and incidence-degree orders run in C
(``diffkit/_native_graph.c``) where it is built, else in numpy with one step per vertex;
both give the same colours.

>>> import numpy as np, scipy.sparse as sp
>>> from diffkit.differentiators.coloring import coloring
>>> band = sp.diags([1, 1, 1], [-1, 0, 1], shape=(6, 6), dtype=bool)
>>> c = coloring(band)
>>> c.colors.tolist(), c.count, c.lower_bound
([0, 1, 2, 0, 1, 2], 3, 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

try:  # the compiled kernels (optional)
    from .. import _native_graph as _NATIVE
except ImportError:  # pragma: no cover - a build without a C compiler
    _NATIVE = None

__all__ = [
    "Coloring",
    "coloring",
    "ORDERS",
    "KINDS",
    "seed_matrix",
    "is_star_coloring",
    "is_acyclic_coloring",
    "forest_bound",
]

ORDERS = ("natural", "largest_first", "smallest_last", "incidence_degree", "random")
KINDS = ("column", "row", "star", "acyclic")

#: iterated-greedy rounds by default; it stops earlier after ``_PATIENCE`` rounds with no gain
RECOLOR = 8
_PATIENCE = 3


@dataclass(frozen=True)
class Coloring:
    """A colouring of a pattern's columns, rows or (symmetric) variables.

    Attributes:
        colors: one colour (0, 1, ...) per column, row or variable.
        count: the number of colours: directional derivatives needed.
        lower_bound: no colouring of this kind can use fewer colours.
        kind: ``"column"``, ``"row"``, ``"star"`` or ``"acyclic"``.
        order: the vertex order of the greedy colouring.
        pattern: the pattern coloured (CSR, boolean).
        greedy_count: the colours of the first greedy pass, before iterated greedy.

    Args:
        colors, count, lower_bound, kind, order, pattern, greedy_count: the attributes
            above (made by :func:`coloring`).

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> c = dk.coloring(dk.sparsity(x[1:] * x[:-1]))  # neighbouring columns share a row
    >>> c.colors.tolist(), c.count, c.lower_bound
    ([0, 1, 0, 1], 2, 2)
    """

    colors: np.ndarray
    count: int
    lower_bound: int
    kind: str
    order: str
    pattern: sp.csr_matrix
    greedy_count: int = -1

    def __repr__(self) -> str:
        return (
            f"Coloring({self.kind}, {self.count} colours, lower bound {self.lower_bound}, "
            f"order {self.order}, pattern {self.pattern.shape[0]}x{self.pattern.shape[1]})"
        )


def _as_pattern(pattern) -> sp.csr_matrix:
    if not (sp.issparse(pattern) or isinstance(pattern, np.ndarray)):
        raise TypeError(
            f"coloring: the pattern must be a scipy.sparse matrix or a 2-D array, got "
            f"{type(pattern).__name__}"
        )
    if len(pattern.shape) != 2:
        raise ValueError(f"coloring: the pattern must be 2-D, got shape {pattern.shape}")
    p = sp.csr_matrix(pattern, dtype=bool)
    p.eliminate_zeros()
    p.sort_indices()
    return p


def _i64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


# ---- vertex orders ----------------------------------------------------------------------------


def _order(graph: sp.csr_matrix, order: str, seed: int, native: bool) -> np.ndarray:
    """The greedy colouring's vertex order on ``graph`` (symmetric, no diagonal)."""
    n = graph.shape[0]
    degree = np.diff(graph.indptr).astype(np.int64)
    if order == "natural":
        return np.arange(n, dtype=np.int64)
    if order == "random":
        return np.random.default_rng(seed).permutation(n).astype(np.int64)
    if order == "largest_first":
        return np.argsort(-degree, kind="stable").astype(np.int64)
    if order not in ("smallest_last", "incidence_degree"):
        raise ValueError(f"coloring: unknown order {order!r}; known orders: {', '.join(ORDERS)}")
    out = np.empty(n, np.int64)
    if native and _NATIVE is not None:
        getattr(_NATIVE, order)(_i64(graph.indptr), _i64(graph.indices), out)
        return out
    indptr, indices = graph.indptr, graph.indices
    if order == "smallest_last":
        # repeatedly take out a vertex of least degree in what is left; colour in reverse
        left = degree.astype(np.float64)
        for k in range(n):
            v = int(np.argmin(left))
            out[n - 1 - k] = v
            left[v] = np.inf
            left[indices[indptr[v] : indptr[v + 1]]] -= 1
        return out
    # incidence degree: next, most neighbours already ordered, then the larger degree
    score = np.zeros(n, np.float64)
    tie = degree / (degree.max(initial=0) + 1.0)
    for k in range(n):
        v = int(np.argmax(score + tie))
        out[k] = v
        score[v] = -np.inf
        score[indices[indptr[v] : indptr[v + 1]]] += 1
    return out


# ---- greedy kernels (numpy versions of the compiled ones) --------------------------------------


def _greedy_distance1(graph: sp.csr_matrix, order: np.ndarray) -> np.ndarray:
    """Greedy colouring of ``graph``'s vertices: each the least colour no neighbour has."""
    n = graph.shape[0]
    colors = np.full(n, -1, np.int64)
    forbidden = np.full(n + 1, -1, np.int64)
    indptr, indices = graph.indptr, graph.indices
    for v in order:
        used = colors[indices[indptr[v] : indptr[v + 1]]]
        forbidden[used[used >= 0]] = v
        colors[v] = int(np.argmax(forbidden[: used.size + 1] != v))
    return colors


def _ranges(indptr, indices, vertices):
    """(source vertex, neighbour) for every neighbour of every vertex in ``vertices``."""
    starts = indptr[vertices]
    lens = indptr[vertices + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    shift = np.repeat(starts - np.cumsum(lens) + lens, lens)
    return np.repeat(vertices, lens), indices[shift + np.arange(total)]


def _star_numpy(graph: sp.csr_matrix, order: np.ndarray) -> np.ndarray:
    """Greedy star colouring: v takes the least colour that (1) no neighbour has, (2) closes
    no two-coloured path v-w-x-y (forbid c(x) where x has a neighbour other than w coloured
    c(w)), and (3) closes no two-coloured path w-v-x-y (where two neighbours of v share a
    colour, forbid the colours of their other neighbours)."""
    n = graph.shape[0]
    indptr, indices = graph.indptr, graph.indices
    colors = np.full(n, -1, np.int64)
    cap = 8
    counts = np.zeros((n, cap), np.int32)  # counts[x, c]: neighbours of x coloured c
    forbidden = np.full(n + 1, -1, np.int64)
    for v in order:
        nb = indices[indptr[v] : indptr[v + 1]]
        cn = colors[nb]
        done = nb[cn >= 0]
        forbidden[cn[cn >= 0]] = v
        if done.size:
            w, x = _ranges(indptr, indices, done)
            keep = (x != v) & (colors[x] >= 0)
            w, x = w[keep], x[keep]
            forbidden[colors[x[counts[x, colors[w]] >= 2]]] = v
            tally = np.bincount(colors[done], minlength=1)
            twice = done[tally[colors[done]] >= 2]
            if twice.size:
                _, y = _ranges(indptr, indices, twice)
                y = y[(y != v) & (colors[y] >= 0)]
                forbidden[colors[y]] = v
        c = int(np.argmax(forbidden != v))
        colors[v] = c
        if c >= cap:
            cap = max(2 * cap, c + 1)
            counts = np.concatenate([counts, np.zeros((n, cap - counts.shape[1]), np.int32)], 1)
        counts[nb, c] += 1
    return colors


def _acyclic_numpy(graph: sp.csr_matrix, order: np.ndarray) -> np.ndarray:
    """Greedy acyclic colouring: v takes the least colour that no neighbour has and that
    closes no two-coloured cycle, i.e. no two neighbours of one colour b already in one
    tree of the forest of colours {c, b} (a union-find over keys (vertex, other colour))."""
    n = graph.shape[0]
    indptr, indices = graph.indptr, graph.indices
    colors = np.full(n, -1, np.int64)
    parent: dict[tuple, tuple] = {}

    def find(key):
        root = key
        while parent.get(root, root) != root:
            root = parent[root]
        while key != root:
            parent[key], key = root, parent[key]
        return root

    for v in order:
        nb = indices[indptr[v] : indptr[v + 1]]
        done = nb[colors[nb] >= 0]
        near = set(colors[done].tolist())
        c = 0
        while True:
            if c not in near:
                seen = set()
                for w in done:
                    key = (int(colors[w]), find((int(w), c)))
                    if key in seen:
                        break
                    seen.add(key)
                else:
                    break
            c += 1
        colors[v] = c
        for w in done:
            a, b = find((int(v), int(colors[w]))), find((int(w), c))
            if a != b:
                parent[a] = b
    return colors


def _greedy(kind: str, graph, native: bool, bipartite=None):
    """A function ``order -> colours`` of one greedy pass. For columns, ``bipartite`` holds
    the pattern's (CSC, CSR) so that the compiled kernel walks rows instead of a graph."""
    n = graph.shape[0] if graph is not None else bipartite[0].shape[1]
    if native and _NATIVE is not None:
        if kind == "column" and bipartite is not None:
            csc, csr = bipartite
            arrays = [_i64(csc.indptr), _i64(csc.indices), _i64(csr.indptr), _i64(csr.indices)]
            kernel = _NATIVE.greedy_columns
        elif kind == "column":  # a graph's neighbours as rows of the identity
            eye = np.arange(graph.shape[0] + 1, dtype=np.int64)
            arrays = [_i64(graph.indptr), _i64(graph.indices), eye, eye[:-1]]
            kernel = _NATIVE.greedy_columns
        else:
            arrays = [_i64(graph.indptr), _i64(graph.indices)]
            kernel = getattr(_NATIVE, kind)

        def run(order):
            colors = np.empty(n, np.int64)
            kernel(*arrays, _i64(order), colors)
            return colors

        return run
    if kind == "column":
        return lambda order: _greedy_distance1(graph, order)
    return lambda order: (_star_numpy if kind == "star" else _acyclic_numpy)(graph, order)


def _class_order(colors: np.ndarray, how: int, rng) -> np.ndarray:
    """The vertices class by class, each class in increasing index: the classes in reverse
    order (how 0), largest first (1) or at random (2)."""
    k = int(colors.max(initial=-1)) + 1
    if how == 0:
        rank = np.arange(k)[::-1]
    elif how == 1:
        sizes = np.bincount(colors, minlength=k)
        rank = np.argsort(np.argsort(-sizes, kind="stable"), kind="stable")
    else:
        rank = rng.permutation(k)
    keys = rank.astype(np.int16 if k < 2**15 else np.int64)[colors]  # a radix sort
    return np.argsort(keys, kind="stable").astype(np.int64)


def _iterated(greedy, colors, rounds, seed):
    """Iterated greedy: recolour class by class; keep the fewest colours found."""
    rng = np.random.default_rng(seed + 1)
    best, best_count = colors, int(colors.max(initial=-1)) + 1
    current, since = colors, 0
    for r in range(rounds):
        if best_count <= 1 or since >= _PATIENCE:
            break
        order = _class_order(current, r % 3, rng)
        current = greedy(order)
        count = int(current.max(initial=-1)) + 1
        if count < best_count:
            best, best_count, since = current, count, 0
        else:
            since += 1
            if count > best_count:  # star and acyclic: start again from the best
                current = best
    return best


def _lcg(state: int) -> tuple[int, int]:
    state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
    return state, state >> 33


def _tabu_numpy(graph: sp.csr_matrix, colors: np.ndarray, k: int, iterations: int, seed: int):
    """Tabu search (Tabucol, Hertz and de Werra, 1987) for a colouring with colours
    0..k-1, as the compiled kernel does it step for step: the vertices of colours >= k
    first move to their least conflicting colour; then each step moves a vertex in conflict
    to the colour that removes most conflicts (ties at random), the move back forbidden
    for a few steps unless it gives the fewest conflicts seen. Returns the colouring or
    ``None``."""
    n = graph.shape[0]
    indptr, indices = graph.indptr, graph.indices
    c = np.where((colors < k) & (colors >= 0), colors, -1).astype(np.int64)
    gamma = np.zeros((n, k), np.int64)
    rows = np.repeat(np.arange(n), np.diff(indptr))
    keep = c[indices] >= 0
    np.add.at(gamma, (rows[keep], c[indices[keep]]), 1)
    for v in np.flatnonzero(c < 0):
        best = int(np.argmin(gamma[v]))
        c[v] = best
        gamma[indices[indptr[v] : indptr[v + 1]], best] += 1
    until = np.zeros((n, k), np.int64)
    own = gamma[np.arange(n), c]
    conf = [int(v) for v in np.flatnonzero(own > 0)]
    where = np.full(n, -1, np.int64)
    where[conf] = np.arange(len(conf))
    conflicts = int(own.sum()) // 2
    best_seen = conflicts
    state = (seed * 2654435761 + 1) % 2**64
    it = 0
    while it < iterations and conflicts > 0:
        mv = mc = -1
        md = ties = 0
        for v in conf:
            now = gamma[v, c[v]]
            for b in range(k):
                if b == c[v]:
                    continue
                d = int(gamma[v, b] - now)
                if not (until[v, b] <= it or conflicts + d < best_seen):
                    continue
                if mv < 0 or d < md:
                    mv, mc, md, ties = v, b, d, 1
                elif d == md:
                    ties += 1
                    state, r = _lcg(state)
                    if r % ties == 0:
                        mv, mc = v, b
        if mv >= 0:
            old = int(c[mv])
            state, r = _lcg(state)
            until[mv, old] = it + 1 + r % 10 + (6 * len(conf)) // 10
            c[mv] = mc
            conflicts += md
            best_seen = min(best_seen, conflicts)
            nb = indices[indptr[mv] : indptr[mv + 1]]
            gamma[nb, old] -= 1
            gamma[nb, mc] += 1
            for w in [mv, *nb.tolist()]:
                inside = gamma[w, c[w]] > 0
                if inside and where[w] < 0:
                    where[w] = len(conf)
                    conf.append(w)
                elif not inside and where[w] >= 0:
                    last = conf.pop()
                    if last != w:
                        conf[where[w]] = last
                        where[last] = where[w]
                    where[w] = -1
        it += 1
    return c if conflicts == 0 else None


def _search(graph: sp.csr_matrix, colors: np.ndarray, iterations: int, seed: int, native):
    """One colour fewer at a time by tabu search, while it finds one in ``iterations``."""
    count = int(colors.max(initial=-1)) + 1
    while count > 1:
        if native and _NATIVE is not None:
            trial = colors.astype(np.int64).copy()
            args = (_i64(graph.indptr), _i64(graph.indices), trial)
            found = _NATIVE.tabu(*args, count - 1, iterations, seed)
            trial = trial if found else None
        else:
            trial = _tabu_numpy(graph, colors, count - 1, iterations, seed)
        if trial is None:
            break
        colors, count = trial, count - 1
    return colors


# ---- lower bounds ------------------------------------------------------------------------------


def _clique_bound(graph: sp.csr_matrix, limit: int = 64, tries: int = 200) -> int:
    """The size of the largest clique found greedily around the ``tries`` vertices of
    largest degree (a lower bound of any distance-1 colouring), looking at up to ``limit``
    neighbours of each."""
    n = graph.shape[0]
    if n == 0:
        return 0
    best = 1
    degree = np.diff(graph.indptr)
    for v in np.argsort(-degree, kind="stable")[:tries]:
        nb = graph.indices[graph.indptr[v] : graph.indptr[v + 1]][:limit]
        if nb.size + 1 <= best:
            continue
        sub = graph[nb][:, nb].toarray()
        members: list[int] = []
        for k in range(nb.size):
            if all(sub[k, j] for j in members):
                members.append(k)
        best = max(best, len(members) + 1)
    return best


def forest_bound(n: int, edges: int) -> int:
    """The fewest colours ``k`` of a star or acyclic colouring of a graph with ``n``
    vertices and ``edges`` edges: any two of the ``k`` classes induce a forest, which has
    fewer edges than vertices, so ``edges <= (k - 1) n - k (k - 1) / 2``.

    >>> forest_bound(5, 4)  # a star: 2 colours
    2
    """
    if edges == 0:
        return 1 if n else 0
    k = 2
    while (k - 1) * n - k * (k - 1) // 2 < edges:
        k += 1
    return k


def _without_diagonal(graph: sp.csr_matrix) -> sp.csr_matrix:
    graph = sp.csr_matrix(graph, dtype=bool)
    graph.setdiag(False)
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph


def _adjacency(p: sp.csr_matrix) -> sp.csr_matrix:
    return _without_diagonal((p + p.T).tocsr())


# ---- the colouring -----------------------------------------------------------------------------


def _color_columns(p: sp.csr_matrix, order, seed, recolor, native, search=0):
    """Partial distance-2 colouring of the columns: columns sharing a row differ."""
    if native and _NATIVE is not None:
        csc = p.tocsc()
        csc.sort_indices()
        bipartite, graph = (csc, p), None
        if order in ("natural", "random"):  # no graph needed: the kernel walks the rows
            vorder = _order(sp.csr_matrix((p.shape[1], p.shape[1])), order, seed, native)
        else:
            graph = _without_diagonal((p.T @ p).tocsr())
            vorder = _order(graph, order, seed, native)
    else:
        bipartite = None
        graph = _without_diagonal((p.T @ p).tocsr())
        vorder = _order(graph, order, seed, native)
    greedy = _greedy("column", graph, native, bipartite)
    colors = greedy(vorder)
    first = int(colors.max(initial=-1)) + 1
    if recolor:
        colors = _iterated(greedy, colors, recolor, seed)
    if search:
        if graph is None:
            graph = _without_diagonal((p.T @ p).tocsr())
        colors = _search(graph, colors, search, seed, native)
    return colors, first


def coloring(
    pattern,
    kind: str = "column",
    order: str = "natural",
    seed: int = 0,
    recolor: int = RECOLOR,
    native: bool = True,
    search: int = 0,
) -> Coloring:
    """Colour the columns, rows or (for a symmetric Hessian pattern) the variables of
    ``pattern`` greedily in a vertex ``order``, then improve it by iterated greedy.

    Args:
        pattern: a boolean ``scipy.sparse`` matrix (or a 2-D array).
        kind: ``"column"`` (forward mode, finite differences), ``"row"`` (reverse mode),
            ``"star"`` (a symmetric Hessian pattern, direct recovery) or ``"acyclic"``
            (recovery by substitution).
        order: one of ``ORDERS``.
        seed: the seed of the ``random`` order and of iterated greedy's random class orders.
        recolor: the most rounds of iterated greedy (0: the greedy colouring alone).
        native: use the compiled kernels where they are built (the numpy versions give the
            same colours).
        search: for column and row colourings, the steps of tabu search (Hertz and de
            Werra's Tabucol) allowed for each colour it then tries to remove (0: none);
            slower than greedy, it finds colourings that greedy orders do not.

    Returns:
        A :class:`Coloring` with the colours, their count and a lower bound.

    >>> import scipy.sparse as sp
    >>> arrow = sp.lil_matrix((5, 5), dtype=bool)
    >>> arrow.setdiag(True); arrow[0, :] = True; arrow[:, 0] = True
    >>> coloring(arrow, "star").count, coloring(arrow, "star").lower_bound
    (2, 2)
    """
    if kind not in KINDS:
        raise ValueError(f"coloring: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if order not in ORDERS:
        raise ValueError(f"coloring: unknown order {order!r}; known orders: {', '.join(ORDERS)}")
    if not isinstance(recolor, (int, np.integer)) or recolor < 0:
        raise ValueError(f"coloring: recolor must be a count of rounds >= 0, got {recolor!r}")
    if not isinstance(search, (int, np.integer)) or search < 0:
        raise ValueError(f"coloring: search must be a count of steps >= 0, got {search!r}")
    p = _as_pattern(pattern)
    if kind == "column":
        colors, first = _color_columns(p, order, seed, recolor, native, search)
        bound = int(np.diff(p.indptr).max(initial=0))
    elif kind == "row":
        pt = p.T.tocsr()
        pt.sort_indices()
        colors, first = _color_columns(pt, order, seed, recolor, native, search)
        bound = int(np.diff(pt.indptr).max(initial=0))
    else:
        if p.shape[0] != p.shape[1]:
            raise ValueError(f"coloring: a {kind} colouring needs a square pattern, got {p.shape}")
        graph = _adjacency(p)
        vorder = _order(graph, order, seed, native)
        greedy = _greedy(kind, graph, native)
        colors = greedy(vorder)
        first = int(colors.max(initial=-1)) + 1
        if recolor:
            colors = _iterated(greedy, colors, recolor, seed)
        n = p.shape[0]
        bound = max(_clique_bound(graph), forest_bound(n, graph.nnz // 2)) if n else 0
    count = int(colors.max(initial=-1)) + 1
    return Coloring(colors, count, bound, kind, order, p, first)


def is_star_coloring(pattern, colors) -> bool:
    """Whether ``colors`` lets every nonzero of the symmetric ``pattern`` be read directly
    off ``H @ S``: neighbours differ, and of every edge (i, j) either j is the only
    neighbour of i in its colour or i the only one of j in its."""
    graph = _adjacency(_as_pattern(pattern))
    colors = np.asarray(colors)
    rows, cols = graph.nonzero()
    if np.any(colors[rows] == colors[cols]):
        return False
    count = _color_counts(graph, colors)
    unique = (count[rows, colors[cols]] == 1) | (count[cols, colors[rows]] == 1)
    return bool(np.all(unique))


def is_acyclic_coloring(pattern, colors) -> bool:
    """Whether ``colors`` is an acyclic colouring of the symmetric ``pattern``: neighbours
    differ and any two colour classes induce a forest (edges = vertices - components)."""
    from scipy.sparse.csgraph import connected_components

    graph = _adjacency(_as_pattern(pattern))
    colors = np.asarray(colors, np.int64)
    rows, cols = sp.triu(graph, 1).nonzero()
    if np.any(colors[rows] == colors[cols]):
        return False
    if rows.size == 0:
        return True
    k = int(colors.max()) + 1
    # a key (vertex, other colour) per end of each edge; an edge joins its two keys
    ends = np.concatenate([rows * k + colors[cols], cols * k + colors[rows]])
    keys, node = np.unique(ends, return_inverse=True)
    e = rows.size
    link = sp.csr_matrix((np.ones(e, bool), (node[:e], node[e:])), shape=(keys.size,) * 2)
    components, _ = connected_components(link, directed=False)
    return e == keys.size - components


def _color_counts(graph: sp.csr_matrix, colors: np.ndarray) -> np.ndarray:
    rows, cols = graph.nonzero()
    k = int(colors.max(initial=-1)) + 1
    out = np.zeros((graph.shape[0], max(k, 1)), np.int64)
    np.add.at(out, (rows, colors[cols]), 1)
    return out


def seed_matrix(colors: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The seeds, one row per colour: ``S[c, j] = 1`` where ``colors[j] == c``."""
    colors = np.asarray(colors)
    count = int(colors.max(initial=-1)) + 1
    seeds = np.zeros((count, colors.size), dtype)
    seeds[colors, np.arange(colors.size)] = 1
    return seeds

"""Colourings of sparsity patterns: which columns (or rows) of a Jacobian, or which
variables of a Hessian, may share one directional derivative.

- *Column colouring* (forward mode, finite differences): columns that share no row get
  one colour, a partial distance-2 colouring of the bipartite graph (Curtis, Powell and
  Reid, 1974); then ``J @ S`` with one seed per colour holds every nonzero once.
- *Row colouring* (reverse mode): the same on the transpose.
- *Star colouring* (Hessians, symmetric): a distance-1 colouring of the adjacency graph
  in which every path on four vertices takes at least three colours; every nonzero is
  then read directly off ``H @ S`` (Gebremedhin, Manne and Pothen, 2005).

Each is greedy, in one of the vertex orders the field uses: ``natural``,
``largest_first``, ``smallest_last``, ``incidence_degree`` and ``random``. The colour
count comes with a lower bound: the most nonzeros in a row (columns) or column (rows),
which must all differ; for star colourings the largest clique found greedily.

Everything runs on the pattern's compressed arrays with numpy: the greedy loop visits each
vertex once and handles its neighbours as arrays.

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

__all__ = ["Coloring", "coloring", "ORDERS", "KINDS", "seed_matrix", "is_star_coloring"]

ORDERS = ("natural", "largest_first", "smallest_last", "incidence_degree", "random")
KINDS = ("column", "row", "star")


@dataclass(frozen=True)
class Coloring:
    """A colouring of a pattern's columns, rows or (symmetric) variables.

    Attributes:
        colors: one colour (0, 1, ...) per column, row or variable.
        count: the number of colours: directional derivatives needed.
        lower_bound: no colouring of this kind can use fewer colours.
        kind: ``"column"``, ``"row"`` or ``"star"``.
        order: the vertex order of the greedy colouring.
        pattern: the pattern coloured (CSR, boolean).
    """

    colors: np.ndarray
    count: int
    lower_bound: int
    kind: str
    order: str
    pattern: sp.csr_matrix

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


def _ranges(indptr, indices, vertices):
    """(source vertex, neighbour) for every neighbour of every vertex in ``vertices``."""
    starts = indptr[vertices]
    lens = indptr[vertices + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    shift = np.repeat(starts - np.cumsum(lens) + lens, lens)
    return np.repeat(vertices, lens), indices[shift + np.arange(total)]


def _order(graph: sp.csr_matrix, order: str, seed: int) -> np.ndarray:
    """The greedy colouring's vertex order on ``graph`` (symmetric, no diagonal)."""
    n = graph.shape[0]
    degree = np.diff(graph.indptr).astype(np.int64)
    if order == "natural":
        return np.arange(n)
    if order == "random":
        return np.random.default_rng(seed).permutation(n)
    if order == "largest_first":
        return np.argsort(-degree, kind="stable")
    if order == "smallest_last":
        # repeatedly take out a vertex of least degree in what is left; colour in reverse
        left = degree.astype(np.float64)
        picked = np.empty(n, np.int64)
        for k in range(n):
            v = int(np.argmin(left))
            picked[k] = v
            left[v] = np.inf
            left[graph.indices[graph.indptr[v] : graph.indptr[v + 1]]] -= 1
        return picked[::-1].copy()
    if order == "incidence_degree":
        # next, a vertex with most neighbours already ordered (ties: the larger degree)
        score = np.zeros(n, np.float64)
        tie = degree / (degree.max(initial=0) + 1.0)
        picked = np.empty(n, np.int64)
        for k in range(n):
            v = int(np.argmax(score + tie))
            picked[k] = v
            score[v] = -np.inf
            score[graph.indices[graph.indptr[v] : graph.indptr[v + 1]]] += 1
        return picked
    raise ValueError(f"coloring: unknown order {order!r}; known orders: {', '.join(ORDERS)}")


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


def _without_diagonal(graph: sp.csr_matrix) -> sp.csr_matrix:
    graph = sp.csr_matrix(graph, dtype=bool)
    graph.setdiag(False)
    graph.eliminate_zeros()
    graph.sort_indices()
    return graph


def _columns(pattern: sp.csr_matrix, order: str, seed: int) -> np.ndarray:
    """Partial distance-2 colouring of the columns: columns sharing a row differ."""
    p = pattern.astype(bool)
    graph = _without_diagonal((p.T @ p).tocsr())
    return _greedy_distance1(graph, _order(graph, order, seed))


def _star(pattern: sp.csr_matrix, order: str, seed: int) -> np.ndarray:
    """Greedy star colouring of the symmetric pattern's adjacency graph.

    A vertex v takes the least colour that (1) no neighbour has, (2) closes no two-coloured
    path v-w-x-y (forbid c(x) where x has a neighbour other than w coloured c(w)), and
    (3) closes no two-coloured path w-v-x-y (where two neighbours of v share a colour,
    forbid the colours of their other neighbours). Checking every new vertex against the
    coloured ones checks every path of four vertices once it is coloured.
    """
    graph = _without_diagonal((pattern + pattern.T).tocsr())
    n = graph.shape[0]
    indptr, indices = graph.indptr, graph.indices
    colors = np.full(n, -1, np.int64)
    cap = 8
    counts = np.zeros((n, cap), np.int32)  # counts[x, c]: neighbours of x coloured c
    forbidden = np.full(n + 1, -1, np.int64)
    for v in _order(graph, order, seed):
        nb = indices[indptr[v] : indptr[v + 1]]
        cn = colors[nb]
        done = nb[cn >= 0]
        forbidden[cn[cn >= 0]] = v
        if done.size:
            # (2) paths v - w - x - y with c(x) = c(v) and c(y) = c(w)
            w, x = _ranges(indptr, indices, done)
            keep = (x != v) & (colors[x] >= 0)
            w, x = w[keep], x[keep]
            bad = counts[x, colors[w]] >= 2
            forbidden[colors[x[bad]]] = v
            # (3) paths w - v - x - y with c(w) = c(x) and c(y) = c(v)
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


def is_star_coloring(pattern, colors) -> bool:
    """Whether ``colors`` lets every nonzero of the symmetric ``pattern`` be read directly
    off ``H @ S``: neighbours differ, and of every edge (i, j) either j is the only
    neighbour of i in its colour or i the only one of j in its."""
    graph = _without_diagonal((_as_pattern(pattern) + _as_pattern(pattern).T).tocsr())
    colors = np.asarray(colors)
    rows, cols = graph.nonzero()
    if np.any(colors[rows] == colors[cols]):
        return False
    count = _color_counts(graph, colors)
    unique = (count[rows, colors[cols]] == 1) | (count[cols, colors[rows]] == 1)
    return bool(np.all(unique))


def _color_counts(graph: sp.csr_matrix, colors: np.ndarray) -> np.ndarray:
    rows, cols = graph.nonzero()
    k = int(colors.max(initial=-1)) + 1
    out = np.zeros((graph.shape[0], max(k, 1)), np.int64)
    np.add.at(out, (rows, colors[cols]), 1)
    return out


def coloring(pattern, kind: str = "column", order: str = "natural", seed: int = 0) -> Coloring:
    """Colour the columns, rows or (for a symmetric Hessian pattern) the variables of
    ``pattern`` greedily in a vertex ``order``.

    Args:
        pattern: a boolean ``scipy.sparse`` matrix (or a 2-D array).
        kind: ``"column"`` (forward mode, finite differences), ``"row"`` (reverse mode) or
            ``"star"`` (a symmetric Hessian pattern).
        order: one of :data:`ORDERS`.
        seed: the seed of the ``random`` order.

    Returns:
        A :class:`Coloring` with the colours, their count and a lower bound.

    >>> import scipy.sparse as sp
    >>> arrow = sp.lil_matrix((5, 5), dtype=bool)
    >>> arrow.setdiag(True); arrow[0, :] = True; arrow[:, 0] = True
    >>> coloring(arrow, "star").count
    2
    """
    if kind not in KINDS:
        raise ValueError(f"coloring: unknown kind {kind!r}; known kinds: {', '.join(KINDS)}")
    if order not in ORDERS:
        raise ValueError(f"coloring: unknown order {order!r}; known orders: {', '.join(ORDERS)}")
    p = _as_pattern(pattern)
    if kind == "column":
        colors = _columns(p, order, seed)
        bound = int(np.diff(p.indptr).max(initial=0))
    elif kind == "row":
        pt = p.T.tocsr()
        colors = _columns(pt, order, seed)
        bound = int(np.diff(pt.indptr).max(initial=0))
    else:
        if p.shape[0] != p.shape[1]:
            raise ValueError(f"coloring: a star colouring needs a square pattern, got {p.shape}")
        colors = _star(p, order, seed)
        graph = _without_diagonal((p + p.T).tocsr())
        bound = min(_clique_bound(graph), max(p.shape[0], 0)) if p.nnz else 0
    count = int(colors.max(initial=-1)) + 1
    return Coloring(colors, count, bound, kind, order, p)


def seed_matrix(colors: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The seeds, one row per colour: ``S[c, j] = 1`` where ``colors[j] == c``."""
    colors = np.asarray(colors)
    count = int(colors.max(initial=-1)) + 1
    seeds = np.zeros((count, colors.size), dtype)
    seeds[colors, np.arange(colors.size)] = 1
    return seeds

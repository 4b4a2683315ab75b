"""Sparse Jacobians and Hessians: the pattern read from the IR, a colouring, one directional
derivative per colour, and the nonzeros recovered into a ``scipy.sparse`` matrix.

- :func:`jacobian_sparsity` propagates boolean patterns (which inputs each entry of each
  node depends on) through the graph by each op's ``"sparsity"`` rule
  (:mod:`diffkit.ops._sparsity`); an op without one makes its outputs depend on all of
  its inputs' dependencies, with a note (never a smaller pattern). By default the pattern
  holds at every point; ``at=`` with ``local=True`` drops what is zero there (``relu``
  below 0, the branch ``where`` did not take).
- :func:`hessian_sparsity` is the pattern of the gradient graph (reverse mode's IR) with
  respect to the inputs, made symmetric.
- :class:`SparseJacobian` and :class:`SparseHessian` prepare the pattern, the colouring
  and the derivative graphs once and evaluate them at many points: forward mode and
  central differences push one seed per column colour, reverse mode one cotangent per
  row colour, and the Hessian (forward over reverse) one tangent per star colour, all
  colours through one batched evaluation (:mod:`diffkit.differentiators.batching`).

>>> import diffkit as dk, numpy as np
>>> x = dk.variable("x", (5,))
>>> f = x[1:] * x[:-1]
>>> jac = SparseJacobian(f, method="forward")
>>> jac.coloring.count, jac.coloring.lower_bound
(2, 2)
>>> jac({"x": np.arange(5.0)}).toarray()[0].tolist()
[1.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from ..ir.node import Node, const, internal_variable, variable
from ..ir.schedule import compile, topological_order
from ..ops import _sparsity  # noqa: F401 - declares the "sparsity" rule kind
from . import batching
from .batching import NotBatchable, batch_graph
from .coloring import Coloring, coloring, seed_matrix
from .common import Cost, check_at, dtype_of, flat_size, resolve_wrt, variable_shapes
from .forward import jvp_graph
from .graphs import cached_graph
from .reverse import vjp_graph

__all__ = [
    "jacobian_sparsity",
    "hessian_sparsity",
    "SparseJacobian",
    "SparseHessian",
    "sparse_jacobian",
    "sparse_hessian",
    "sparsity",
    "JACOBIAN_METHODS",
]

#: the methods that evaluate directions, and the colouring each uses
JACOBIAN_METHODS = {"forward": "column", "central": "column", "reverse": "row"}


def _wrt_nodes(f: Node | list, wrt, at=None) -> list[Node]:
    outs = [f] if isinstance(f, Node) else list(f)
    shapes = variable_shapes(outs)
    names = resolve_wrt(outs, wrt, {n: None for n in shapes} if at is None else at)
    return [variable(n, shapes[n] if n in shapes else np.shape(at[n])) for n in names]


def _point_values(order: list[Node], at) -> dict[int, np.ndarray]:
    """The value of every input of an elementwise op, at ``at``."""
    wanted = {}
    for node in order:
        if node.kind == "op" and node.op.kind == "elementwise":
            for x in node.inputs:
                wanted[id(x)] = x
    nodes = list(wanted.values())
    values = compile(nodes)(at, strict=False) if nodes else []
    return {id(n): np.asarray(v) for n, v in zip(nodes, values)}


def _everything(m: int, deps: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` rows, each the union of the rows of ``deps``."""
    union = sp.csr_matrix(deps.sum(axis=0) > 0)
    return sp.csr_matrix(sp.csr_matrix(np.ones((m, 1), dtype=bool)) @ union, dtype=bool)


def jacobian_sparsity(f, wrt=None, at: Mapping[str, Any] | None = None, local: bool = False):
    """The pattern of the Jacobian of ``f`` (a node or a list of nodes, flattened and
    stacked) with respect to ``wrt`` (every variable by default, flattened in order of name):
    a boolean ``scipy.sparse.csr_matrix`` whose attribute ``notes`` lists the ops that had
    no rule (their outputs taken to depend on all their inputs).

    Args:
        f: a node or a list of nodes.
        wrt: a name, a variable or a list of them.
        at: a point; with ``local=True`` the pattern there (smaller where ``relu``,
            ``maximum`` or ``where`` cut a dependency), else only checked.
        local: the pattern at ``at`` instead of the one valid everywhere.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> jacobian_sparsity(dk.sin(x[1:]) - x[:-1]).toarray().astype(int).tolist()
    [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    outs = [f] if isinstance(f, Node) else list(f)
    if local and at is None:
        raise ValueError("jacobian_sparsity: local=True needs the point at=")
    if at is not None:
        check_at(outs, at)
    return _propagate(outs, _wrt_nodes(outs, wrt, at), at if local else None)


def _propagate(outs: list[Node], wrt: list[Node], at=None) -> sp.csr_matrix:
    """Each node's pattern (which entries of ``wrt`` each of its entries depends on), in
    topological order. A node that only selects entries of one pattern (slices, rolls,
    reshapes, broadcasts) keeps a :class:`_Selected` view, gathered only where an op
    needs the matrix."""
    sizes = [flat_size(v.shape) for v in wrt]
    n = int(np.sum(sizes))
    pats: dict[int, Any] = {}
    offset = 0
    for v, size in zip(wrt, sizes):
        rows = np.arange(size)
        pats[id(v)] = sp.csr_matrix(
            (np.ones(size, bool), rows + offset, np.arange(size + 1)), shape=(size, n)
        )
        offset += size
    order = topological_order(outs)
    values = _point_values(order, at) if at is not None else None
    notes: list[str] = []
    for node in order:
        if node.kind != "op" or not node.op.differentiable:
            continue
        active = [
            k
            for k, x in enumerate(node.inputs)
            if id(x) in pats and k not in node.op.nondiff_inputs
        ]
        if not active:
            continue
        pats[id(node)] = _node_pattern(node, active, pats, values, n, notes)
    blocks = [
        _solid(pats[id(o)]) if id(o) in pats else sp.csr_matrix((flat_size(o.shape), n), dtype=bool)
        for o in outs
    ]
    if len(blocks) == 1:
        result = blocks[0].copy()
    else:
        result = sp.vstack(blocks, format="csr", dtype=bool) if blocks else sp.csr_matrix((0, n))
    result.sort_indices()
    result.notes = tuple(dict.fromkeys(notes))
    return result


class _Selected:
    """The pattern whose row ``i`` is row ``src[i]`` of ``base`` (empty where -1)."""

    __slots__ = ("base", "src", "_matrix")

    def __init__(self, base: sp.csr_matrix, src: np.ndarray):
        self.base, self.src, self._matrix = base, src, None

    @property
    def shape(self):
        return (self.src.size, self.base.shape[1])


def _solid(p) -> sp.csr_matrix:
    if isinstance(p, _Selected):
        if p._matrix is None:
            p._matrix = _take_rows(p.base, p.src)
        return p._matrix
    return p


def _select(p, src: np.ndarray) -> _Selected:
    """``p``'s rows picked by ``src`` (-1: none), composed with a selection ``p`` is."""
    if isinstance(p, _Selected):
        return _Selected(p.base, np.where(src >= 0, p.src[np.maximum(src, 0)], -1))
    return _Selected(p, src)


def _take_rows(deps: sp.csr_matrix, src: np.ndarray) -> sp.csr_matrix:
    """Row ``i`` of the result is row ``src[i]`` of ``deps`` (empty where ``src[i] < 0``):
    a selection applied without a matrix product."""
    has = src >= 0
    safe = np.where(has, src, 0)
    counts = np.diff(deps.indptr) if deps.shape[0] else np.zeros(1, np.int64)  # no rows
    lens = np.where(has, counts[safe], 0)
    indptr = np.zeros(src.size + 1, np.int64)
    np.cumsum(lens, out=indptr[1:])
    total = int(indptr[-1])
    take = np.repeat(deps.indptr[safe] - indptr[:-1], lens) + np.arange(total)
    return sp.csr_matrix(
        (np.ones(total, bool), deps.indices[take], indptr), shape=(src.size, deps.shape[1])
    )


def _selected_rows(d: sp.csr_matrix) -> np.ndarray | None:
    """The column of each row of ``d`` if every row holds at most one entry (-1: none)."""
    counts = np.diff(d.indptr)
    if counts.size and counts.max() > 1:
        return None
    src = np.full(d.shape[0], -1, np.int64)
    src[counts == 1] = d.indices
    return src


def _union(parts: list, shape):
    """The union of patterns; a single one (a selection too) is kept as it is."""
    unique = list({id(q): q for q in parts}.values())
    if not unique:
        return sp.csr_matrix(shape, dtype=bool)
    if len(unique) == 1:
        return unique[0]
    total = _solid(unique[0])
    for q in unique[1:]:
        total = total + _solid(q)
    return total


def _node_pattern(node, active, pats, values, n, notes):
    m = flat_size(node.shape)
    if values is None and node.op.kind == "elementwise" and not node.op.rules.get("sparsity"):
        # global pattern of an elementwise op: each input's entry broadcast to the output
        parts = []
        for k in active:
            x, deps = node.inputs[k], pats[id(node.inputs[k])]
            if tuple(x.shape) == tuple(node.shape):
                parts.append(deps)
            else:
                number = np.arange(flat_size(x.shape)).reshape(x.shape)
                parts.append(_select(deps, np.broadcast_to(number, node.shape).ravel()))
        return _union(parts, (m, n))
    rule = node.op.rule("sparsity")
    local = None if values is None else [values.get(id(x)) for x in node.inputs]
    if local is not None and any(v is None for v in local):
        local = None
    rules = None
    if rule:
        try:
            rules = rule(node, local)
        except Exception as err:  # a rule that cannot handle these attributes: widen
            notes.append(f"{node.op.name}: its sparsity rule failed ({err}); taken as dense")
    else:
        why = f" ({rule.reason})" if rule is not None else ""
        notes.append(f"{node.op.name}: no sparsity rule{why}; taken as dense")
    parts, picks = [], []
    for k in active:
        deps = pats[id(node.inputs[k])]
        d = None if rules is None else rules[k]
        if rules is not None and d is None:
            continue
        if d is None:
            parts.append(_everything(m, _solid(deps)))
            continue
        if d.shape != (m, deps.shape[0]):  # a rule's mistake, never a user's
            raise ValueError(
                f"sparsity rule of {node.op.name!r} gave shape {d.shape} for input {k}, "
                f"expected {(m, deps.shape[0])}"
            )
        src = getattr(d, "source", None)
        if src is None:
            d = sp.csr_matrix(d, dtype=bool)
            d.sum_duplicates()
            src = _selected_rows(d)
        if src is None:
            parts.append(d @ _solid(deps))
        else:
            picks.append(_select(deps, src))
    if picks and not parts and len({id(q.base) for q in picks}) == 1:
        # a selection from one pattern (concatenate of slices of it: np.roll) where each
        # output entry comes from one input at most: still a selection
        taken = np.sum([q.src >= 0 for q in picks], axis=0)
        if taken.max(initial=0) <= 1:
            src = picks[0].src
            for q in picks[1:]:
                src = np.where(q.src >= 0, q.src, src)
            return _Selected(picks[0].base, src)
    return _union(parts + picks, (m, n))


def hessian_sparsity(f: Node, wrt=None, at: Mapping[str, Any] | None = None, local=False):
    """The pattern of the Hessian of the scalar ``f``: the Jacobian pattern of its gradient
    graph, made symmetric (see :func:`jacobian_sparsity` for the arguments).

    Args:
        f: a scalar node.
        wrt: the variables (all by default).
        at: a point (with ``local=True``, the pattern there).
        local: the pattern at the point instead of everywhere.

    Returns:
        scipy.sparse.csr_matrix: the boolean, symmetric pattern.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> p = hessian_sparsity(dk.sum((x[1:] - x[:-1]) ** 2) + dk.sum(dk.sin(x)))
    >>> p.toarray().astype(int).tolist()
    [[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]]
    """
    if not isinstance(f, Node) or f.shape != ():
        raise ValueError(f"hessian_sparsity: f must be a scalar node, got {f!r:.60}")
    if local and at is None:
        raise ValueError("hessian_sparsity: local=True needs the point at=")
    if at is not None:
        check_at(f, at)
    wrt_nodes = _wrt_nodes(f, wrt, at)
    grads = _gradient_graph(f, wrt_nodes)
    p = _propagate(grads, wrt_nodes, at if local else None)
    notes = p.notes
    sym = sp.csr_matrix(p + p.T, dtype=bool)
    sym.sort_indices()
    sym.notes = notes
    return sym


def _gradient_graph(f: Node, wrt: list[Node]) -> list[Node]:
    key = ("sparse-grad", f, tuple(wrt))
    return cached_graph(key, lambda: vjp_graph([f], [const(1.0)], wrt))


# ---- compressed evaluation ---------------------------------------------------------------------


def _seeded(outputs, seed_vars, seeds, at, dtype, key):
    """``outputs`` (linear in ``seed_vars``) for each row of ``seeds`` (directions over the
    seed variables, flattened and concatenated), all rows through one batched evaluation
    (in chunks bounded as the basis passes are). Returns (rows, evaluations)."""
    count = seeds.shape[0]
    out_sizes = [flat_size(o.shape) for o in outputs]
    rows = np.zeros((count, int(np.sum(out_sizes))), dtype)
    if count == 0:
        return rows, 0
    largest = max(flat_size(x.shape) for x in topological_order(outputs))
    chunk = max(1, min(count, batching.MAX_BATCH_ENTRIES // max(1, largest)))
    sizes = [flat_size(s.shape) for s in seed_vars]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

    def build():
        bvars = [internal_variable(f"seed[{id(s)}]x{chunk}", (chunk,) + s.shape) for s in seed_vars]
        outs = batch_graph(outputs, dict(zip(seed_vars, bvars)), chunk)
        return bvars, outs, compile([o for o, _ in outs])

    try:
        bvars, outs, program = cached_graph(key + (chunk,), build)
    except NotBatchable:  # one direction at a time
        program = compile(outputs)
        for c in range(count):
            given = {
                s.name: seeds[c, lo:hi].reshape(s.shape)
                for s, lo, hi in zip(seed_vars, bounds[:-1], bounds[1:])
            }
            values = program({**at, **given}, strict=False)
            rows[c] = np.concatenate(
                [np.ravel(np.broadcast_to(v, o.shape)) for v, o in zip(values, outputs)]
            )
        return rows, count
    evaluations = 0
    for start in range(0, count, chunk):
        block = np.zeros((chunk, seeds.shape[1]), dtype)
        take = min(chunk, count - start)
        block[:take] = seeds[start : start + take]
        given = {
            b.name: block[:, lo:hi].reshape(b.shape)
            for b, lo, hi in zip(bvars, bounds[:-1], bounds[1:])
        }
        values = program({**at, **given}, strict=False)
        evaluations += 1
        col = 0
        for (o, batched), value, size, orig in zip(outs, values, out_sizes, outputs):
            if batched:
                part = np.reshape(value, (chunk, size))[:take]
            else:
                part = np.broadcast_to(np.ravel(np.broadcast_to(value, orig.shape)), (take, size))
            rows[start : start + take, col : col + size] = part
            col += size
    return rows, evaluations


def _check_point(f: Node, at, who: str):
    check_at(f, at)
    if any(np.iscomplexobj(v) for v in at.values()):
        raise ValueError(f"{who}: sparse derivatives take real points; got complex values")
    return dtype_of(at, f)


class SparseJacobian:
    """The Jacobian of ``f`` as a ``scipy.sparse`` matrix, prepared once (pattern, colouring,
    derivative graphs) and evaluated at any number of points.

    Args:
        f: an IR node (its Jacobian is ``f.size x n``, ``n`` the entries of ``wrt``).
        wrt: a name, a variable or a list of them (every variable of ``f`` by default).
        method: ``"forward"`` (one JVP per column colour), ``"reverse"`` (one VJP per row
            colour) or ``"central"`` (two evaluations of ``f`` per column colour).
        order: the vertex order of the colouring (``dk.coloring``'s).
        pattern: a pattern to use instead of detecting one (it must cover the Jacobian).
        at: a point: with ``local=True`` the pattern there.
        local: use the pattern at ``at`` (valid near it only).
        search: steps of tabu search per colour it tries to remove (``dk.coloring``'s);
            slower to prepare, fewer passes at every later point.

    After a call, ``last_cost`` holds the passes (colours) and batched evaluations.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> J = dk.SparseJacobian(x[1:] * x[:-1])  # row i: x[i+1] at i, x[i] at i + 1
    >>> J(at={"x": np.array([1.0, 2.0, 3.0, 4.0])}).toarray().tolist(), J.last_cost.passes
    ([[2.0, 1.0, 0.0, 0.0], [0.0, 3.0, 2.0, 0.0], [0.0, 0.0, 4.0, 3.0]], 2)
    """

    def __init__(
        self,
        f: Node,
        wrt=None,
        method: str = "forward",
        order: str = "natural",
        pattern=None,
        at=None,
        local: bool = False,
        search: int = 0,
    ):
        if not isinstance(f, Node):
            raise TypeError(f"SparseJacobian: f must be an IR node, got {type(f).__name__}")
        if method not in JACOBIAN_METHODS:
            raise ValueError(
                f"sparse Jacobian: method {method!r} does not evaluate directions; use one of "
                f"{', '.join(JACOBIAN_METHODS)}"
            )
        self.f, self.method = f, method
        self.wrt = _wrt_nodes(f, wrt, at)
        if pattern is None:
            pattern = _propagate([f], self.wrt, at if local else None)
        elif pattern.shape != (flat_size(f.shape), sum(flat_size(v.shape) for v in self.wrt)):
            raise ValueError(f"SparseJacobian: a pattern of shape {pattern.shape} does not fit f")
        self.pattern = sp.csr_matrix(pattern, dtype=bool)
        self.pattern.sort_indices()
        self.notes = getattr(pattern, "notes", ())
        kind = JACOBIAN_METHODS[method]
        self.coloring: Coloring = coloring(self.pattern, kind, order, search=search)
        self.last_cost = Cost(f"sparse-{method}")

    def __call__(self, at: Mapping[str, Any]) -> sp.csr_matrix:
        """The Jacobian at ``at``: a ``scipy.sparse.csr_matrix`` in the point's dtype."""
        dtype = _check_point(self.f, at, "sparse Jacobian")
        run = {"forward": self._forward, "reverse": self._reverse, "central": self._central}
        compressed, evaluations = run[self.method](at, dtype)
        rows, cols = self.pattern.nonzero()
        colors = self.coloring.colors
        if self.method == "reverse":  # compressed[c, j]: row colour c of column j
            data = compressed[colors[rows], cols]
        else:  # compressed[c, i]: column colour c of row i
            data = compressed[colors[cols], rows]
        if self.method == "central":  # divided by each column's step
            data = data / self._steps[cols]
        self.last_cost = Cost(
            f"sparse-{self.method}", passes=self.coloring.count, batches=evaluations
        )
        return sp.csr_matrix((data.astype(dtype), (rows, cols)), shape=self.pattern.shape)

    def _forward(self, at, dtype):
        tvars = [internal_variable(f"sparse-tangent[{v.name}]", v.shape) for v in self.wrt]
        key = ("sparse-jvp", self.f, tuple(self.wrt))
        out = cached_graph(key, lambda: jvp_graph([self.f], dict(zip(self.wrt, tvars)))[0])
        seeds = seed_matrix(self.coloring.colors, dtype)
        return _seeded([out], tvars, seeds, at, dtype, key)

    def _reverse(self, at, dtype):
        seed = internal_variable(f"sparse-cotangent[{id(self.f)}]", self.f.shape)
        key = ("sparse-vjp", self.f, tuple(self.wrt))
        cts = cached_graph(key, lambda: vjp_graph([self.f], [seed], self.wrt))
        seeds = seed_matrix(self.coloring.colors, dtype)
        return _seeded(cts, [seed], seeds, at, dtype, key)

    def _central(self, at, dtype):
        """(f(x + h d_c) - f(x - h d_c)) / 2 for each colour c, d_c holding the colour's
        steps h_j = eps^(1/3) max(1, |x_j|); entry (i, j) is then divided by h_j."""
        x0 = np.concatenate([np.ravel(np.asarray(at[v.name], dtype)) for v in self.wrt])
        eps = float(np.finfo(dtype).eps)
        h = eps ** (1 / 3) * np.maximum(1.0, np.abs(x0))
        h = ((x0 + h) - x0).astype(dtype)  # a step the arithmetic represents exactly
        seeds = seed_matrix(self.coloring.colors, dtype) * h
        key = ("sparse-primal", self.f, tuple(self.wrt))
        points = np.concatenate([x0 + seeds, x0 - seeds])
        values, evaluations = _seeded([self.f], self.wrt, points, at, dtype, key)
        count = seeds.shape[0]
        self._steps = h
        return (values[:count] - values[count:]) / 2, evaluations


class SparseHessian:
    """The Hessian of the scalar ``f`` as a ``scipy.sparse`` matrix by forward over reverse,
    one Hessian-vector product per colour: on a star colouring every nonzero is read
    directly from them; on an acyclic colouring (fewer colours) the nonzeros are recovered
    by substitution along the trees that any two colours induce. Prepared once, evaluated
    at any number of points.

    Args:
        f: a scalar IR node.
        wrt: a name, a variable or a list of them (every variable by default).
        order: the vertex order of the colouring.
        pattern: a symmetric pattern to use instead of detecting one.
        at, local: the pattern at ``at`` (see :func:`hessian_sparsity`).
        kind: ``"star"`` (direct recovery) or ``"acyclic"`` (recovery by substitution).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> H = dk.SparseHessian(dk.sum(x ** 3))  # diag(6 x)
    >>> H(at={"x": np.arange(4.0)}).toarray().diagonal().tolist(), H(at={"x": np.arange(4.0)}).nnz
    ([0.0, 6.0, 12.0, 18.0], 4)
    """

    def __init__(
        self, f: Node, wrt=None, order="natural", pattern=None, at=None, local=False,
        kind: str = "star",
    ):  # fmt: skip
        if not isinstance(f, Node) or f.shape != ():
            raise ValueError(f"sparse Hessian: f must be a scalar node, got {f!r:.60}")
        if kind not in ("star", "acyclic"):
            raise ValueError(f"sparse Hessian: kind must be 'star' or 'acyclic', got {kind!r}")
        self.f = f
        self.wrt = _wrt_nodes(f, wrt, at)
        if pattern is None:
            p = _propagate(_gradient_graph(f, self.wrt), self.wrt, at if local else None)
            pattern = sp.csr_matrix(p + p.T, dtype=bool)
            pattern.notes = p.notes
        n = sum(flat_size(v.shape) for v in self.wrt)
        if pattern.shape != (n, n):
            raise ValueError(f"SparseHessian: a pattern of shape {pattern.shape} is not {n}x{n}")
        self.notes = getattr(pattern, "notes", ())
        self.pattern = sp.csr_matrix(pattern + pattern.T, dtype=bool)
        self.pattern.sort_indices()
        self.coloring: Coloring = coloring(self.pattern, kind, order)
        self._plan = _substitution_plan(self.pattern, self.coloring.colors)
        self.last_cost = Cost("sparse-hessian")

    def __call__(self, at: Mapping[str, Any]) -> sp.csr_matrix:
        """The Hessian at ``at``: a symmetric ``scipy.sparse.csr_matrix``."""
        dtype = _check_point(self.f, at, "sparse Hessian")
        tangents = [internal_variable(f"sparse-hvp[{v.name}]", v.shape) for v in self.wrt]
        key = ("sparse-hvp", self.f, tuple(self.wrt))

        def build():
            grads = vjp_graph([self.f], [const(1.0)], self.wrt)
            return jvp_graph(grads, dict(zip(self.wrt, tangents)))

        hvps = cached_graph(key, build)
        colors = self.coloring.colors
        compressed, evaluations = _seeded(
            hvps, tangents, seed_matrix(colors, dtype), at, dtype, key
        )  # compressed[c, i] = (H s_c)_i
        data = _substitute(self._plan, compressed).astype(dtype)
        self.last_cost = Cost("sparse-hessian", passes=self.coloring.count, batches=evaluations)
        return sp.csr_matrix((data, self._plan["where"]), shape=self.pattern.shape)


def _substitution_plan(pattern: sp.csr_matrix, colors: np.ndarray) -> dict:
    """The equations of the recovery: for a vertex x and a colour b other than its own,
    ``(H s_b)_x`` is the sum of ``H_xy`` over the neighbours y of x coloured b. Each edge
    {i, j} (i < j) is in two of them, (i, c(j)) and (j, c(i)); the diagonal is read directly
    (no neighbour shares a vertex's colour)."""
    rows, cols = sp.triu(pattern, 1, format="csr").nonzero()
    rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    k = max(int(colors.max(initial=-1)) + 1, 1)
    ends = np.concatenate([rows * k + colors[cols], cols * k + colors[rows]])
    keys, group = np.unique(ends, return_inverse=True)
    diag = np.flatnonzero(pattern.diagonal())
    return {
        "edges": (rows, cols),
        "groups": (group[: rows.size], group[rows.size :]),
        "rhs": (keys % k, keys // k),
        "diag": (colors[diag], diag),
        "where": (
            np.concatenate([diag, rows, cols]),
            np.concatenate([diag, cols, rows]),
        ),
    }


def _substitute(plan: dict, compressed: np.ndarray) -> np.ndarray:
    """Solve the equations of :func:`_substitution_plan` round by round: an equation with
    one unknown edge left gives it. On a star colouring every edge is found in the first
    round (direct recovery); on an acyclic one the leaves of each two-coloured tree come
    first. Returns the values in the plan's ``where`` order (diagonal, upper, lower)."""
    g1, g2 = plan["groups"]
    rhs = compressed[plan["rhs"]]
    groups = rhs.size
    values = np.zeros(g1.size, compressed.dtype)
    unknown = np.ones(g1.size, bool)
    left = np.bincount(g1, minlength=groups) + np.bincount(g2, minlength=groups)
    known = np.zeros(groups, compressed.dtype)
    while unknown.any():
        todo = np.flatnonzero(unknown)
        one1, one2 = left[g1[todo]] == 1, left[g2[todo]] == 1
        solvable = one1 | one2
        if not solvable.any():  # a two-coloured cycle: not an acyclic colouring
            raise ValueError("sparse Hessian: the colouring does not allow recovery")
        e = todo[solvable]
        g = np.where(one1[solvable], g1[e], g2[e])
        values[e] = rhs[g] - known[g]
        unknown[e] = False
        for side in (g1[e], g2[e]):
            np.add.at(known, side, values[e])
            np.subtract.at(left, side, 1)
    diagonal = compressed[plan["diag"]]
    return np.concatenate([diagonal, values, values])


# ---- one-call forms and the front door ---------------------------------------------------------


def sparse_jacobian(f: Node, at, method: str = "forward", wrt=None, order="natural", local=False):
    """The Jacobian of ``f`` at ``at`` as a ``scipy.sparse.csr_matrix`` (``f.size x n``); the
    prepared pattern and colouring are remembered for the next call on the same graph.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> sparse_jacobian(x ** 2, {"x": np.array([1.0, 2.0, 3.0])}).diagonal().tolist()
    [2.0, 4.0, 6.0]
    """
    if local:
        jac = SparseJacobian(f, wrt, method, order, at=at, local=True)
    else:
        names = tuple(v.name for v in _wrt_nodes(f, wrt, at))
        jac = cached_graph(
            ("sparse-jacobian", f, names, method, order),
            lambda: SparseJacobian(f, list(names), method, order),
        )
    return jac(at)


def hessian_kind(sparse) -> str | None:
    """The colouring a Hessian's ``sparse=`` argument asks for: None (dense), ``"star"``
    (``True``) or ``"acyclic"``; anything else is a one-line ValueError."""
    if sparse is False or sparse is None:
        return None
    if sparse is True:
        return "star"
    if isinstance(sparse, str) and sparse in ("star", "acyclic"):
        return sparse
    raise ValueError(f"hessian: sparse must be True, False, 'star' or 'acyclic', got {sparse!r}")


def sparse_hessian(f: Node, at, wrt=None, order="natural", local=False, kind="star"):
    """The Hessian of the scalar ``f`` at ``at`` as a ``scipy.sparse.csr_matrix`` (forward
    over reverse on a star colouring, or an acyclic one with ``kind="acyclic"``).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> sparse_hessian(dk.sum(x ** 3), {"x": np.array([1.0, 2.0, 3.0])}).toarray().tolist()
    [[6.0, 0.0, 0.0], [0.0, 12.0, 0.0], [0.0, 0.0, 18.0]]
    """
    if local:
        return SparseHessian(f, wrt, order, at=at, local=True, kind=kind)(at)
    names = tuple(v.name for v in _wrt_nodes(f, wrt, at))
    hess = cached_graph(
        ("sparse-hessian", f, names, order, kind),
        lambda: SparseHessian(f, list(names), order, kind=kind),
    )
    return hess(at)


def sparsity(f, *args, wrt=None, at=None, local=False, hessian=False, argnums=0):
    """The sparsity pattern of a Jacobian (or with ``hessian=True`` a Hessian), as a boolean
    ``scipy.sparse.csr_matrix``.

    ``sparsity(node)`` or ``sparsity(node, at)`` reads it from a graph (``wrt`` as
    :func:`jacobian_sparsity`); ``sparsity(fn, *args)`` traces the Python function ``fn``
    on arguments shaped like ``args`` (numpy code; the values only matter with
    ``local=True``) and gives the pattern with respect to argument(s) ``argnums``.

    Args:
        f: a node, or a Python function of arrays.
        *args: ``at`` for a node; the arguments (arrays) for a function.
        wrt: the variables (a node's, all by default).
        at: a point (with ``local=True``, the pattern there).
        local: the pattern at the point instead of everywhere.
        hessian: the Hessian's pattern (of a scalar ``f``).
        argnums: the argument(s) of a function to differentiate.

    Returns:
        scipy.sparse.csr_matrix: the boolean pattern.

    >>> import numpy as np
    >>> p = sparsity(lambda v: np.diff(v) ** 2, np.zeros(4))
    >>> p.toarray().astype(int).tolist()
    [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    if isinstance(f, Node):
        if len(args) > 1:
            raise TypeError("sparsity(node, at): one point at most")
        at = args[0] if args else at
    elif callable(f):
        from ..transforms import _argnums, _Trace

        if not args:
            raise TypeError("sparsity(fn, *args): give arguments shaped like fn's")
        trace = _Trace(f, "sparsity", args, _argnums(argnums, len(args), "sparsity"))
        f, wrt, at = trace.out, [v.name for v in trace.wrt], trace.at(args)
    else:
        raise TypeError(f"sparsity: expected an IR node or a function, got {type(f).__name__}")
    if hessian:
        return hessian_sparsity(f, wrt, at, local)
    return jacobian_sparsity(f, wrt, at, local)

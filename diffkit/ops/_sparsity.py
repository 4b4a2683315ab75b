"""Sparsity rules: which entries of an op's inputs each entry of its output depends on.

A rule is ``rule(node, values) -> list`` with one entry per input: a boolean
``scipy.sparse`` matrix ``D`` of shape ``(node.size, input.size)`` (flattened in C order)
with ``D[o, i]`` true where output entry ``o`` may depend on input entry ``i`` (or a
:class:`Selection`, the same for an op that only moves entries), or
``None`` for an input the output does not depend on. ``values`` is ``None`` for a
*global* pattern, valid at every point; at a point it holds the inputs' values, and a
rule may then drop the entries whose derivative is zero there (``relu`` below 0, the
branch ``where`` did not take). A rule may only ever add entries that are not
dependencies, never leave one out.

The rule kind ``"sparsity"`` is declared here with the rules derived from an op's kind:

- ``elementwise``: output entry ``o`` depends on the input entry broadcast to it; at a
  point, where the op's derivative there is not zero (read from its VJP rule);
- ``reduction``: an output entry depends on the input entries that share its coordinates
  on the axes not reduced (shape-preserving reductions such as ``log_softmax`` too);
- ``axis``: an output entry depends on the input entries of its line along ``axis``.

Records write the others (``rules={"sparsity": ...}``) with the helpers below: a
*selection* (the op run on entry numbers: reshape, transpose, getitem, concatenate,
unfold), the *adjoint of a selection* (embed, scatter_add, fold), *groups* of matching
keys (einsum, matmul), and :func:`dense` for ops whose outputs depend on all of their
inputs (the linear algebra of whole matrices).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..ir.op import rule_kind

__all__ = [
    "Selection",
    "selection",
    "adjoint_selection",
    "grouped",
    "dense",
    "line_keys",
    "matmul_rule",
    "einsum_rule",
    "windows_rule",
    "gradient_rule",
    "cumulative_rule",
    "elementwise_rule",
    "reduction_rule",
]


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _numbered(shape, offset: int = 0) -> np.ndarray:
    """Entry numbers 1, 2, ... (plus ``offset``) in an array of ``shape``; 0 is 'none'."""
    return (np.arange(_size(shape), dtype=np.float64) + 1 + offset).reshape(shape)


def _from_pairs(rows, cols, shape) -> sp.csr_matrix:
    rows, cols = np.asarray(rows, np.int64).ravel(), np.asarray(cols, np.int64).ravel()
    data = np.ones(rows.size, dtype=bool)
    m = sp.csr_matrix((data, (rows, cols)), shape=shape)
    m.sum_duplicates()
    return m


class Selection:
    """The rule matrix of a selection: output entry ``o`` depends on input entry
    ``source[o]`` alone (none where -1). Held as that array, so that a pattern is gathered
    instead of multiplied; :meth:`tocsr` gives the boolean matrix."""

    __slots__ = ("source", "shape")

    def __init__(self, source: np.ndarray, size: int):
        self.source = source
        self.shape = (source.size, size)

    def tocsr(self) -> sp.csr_matrix:
        inside = self.source >= 0
        indptr = np.zeros(self.source.size + 1, np.int64)
        np.cumsum(inside, out=indptr[1:])
        data = np.ones(int(indptr[-1]), bool)
        return sp.csr_matrix((data, self.source[inside], indptr), shape=self.shape)

    def toarray(self) -> np.ndarray:
        return self.tocsr().toarray()


def selection(node, values=None, **override) -> list:
    """The rule of an op that only moves entries (reshape, getitem, concatenate): the op is
    run on the entry numbers of its inputs, and each output entry depends on the input entry
    whose number it holds (0, a padding, on none). ``override`` replaces attributes (a
    padding value of 0). Returns a :class:`Selection` per input."""
    arrays, offset = [], 0
    for x in node.inputs:
        arrays.append(_numbered(x.shape, offset))
        offset += _size(x.shape)
    picked = np.asarray(node.op.impl(*arrays, **{**node.attrs, **override}), np.float64).ravel()
    out, lo = [], 0
    for x in node.inputs:
        n = _size(x.shape)
        inside = (picked > lo) & (picked <= lo + n)
        out.append(Selection(np.where(inside, picked - 1 - lo, -1).astype(np.int64), n))
        lo += n
    return out


def adjoint_selection(node, select) -> list:
    """The rule of the adjoint of a selection (embed, scatter_add, fold): ``select`` maps an
    array of the output's shape to one of the input's shape; input entry ``i`` goes to (is
    added into) the output entry whose number ``select`` puts at ``i``."""
    x = node.inputs[0]
    picked = np.asarray(select(_numbered(node.shape)), np.float64).ravel()
    inside = picked > 0
    rows = picked[inside].astype(np.int64) - 1
    cols = np.arange(picked.size)[inside]
    return [_from_pairs(rows, cols, (_size(node.shape), _size(x.shape)))]


def grouped(out_keys, in_keys) -> sp.csr_matrix:
    """``D[o, i]`` true where ``out_keys[o] == in_keys[i] >= 0`` (negative keys: none)."""
    out_keys = np.asarray(out_keys, np.int64).ravel()
    in_keys = np.asarray(in_keys, np.int64).ravel()
    groups = int(max(out_keys.max(initial=-1), in_keys.max(initial=-1))) + 1
    a = _one_hot(out_keys, groups)
    b = _one_hot(in_keys, groups)
    return (a @ b.T).tocsr()


def _one_hot(keys, groups: int) -> sp.csr_matrix:
    keep = keys >= 0
    rows = np.flatnonzero(keep)
    return _from_pairs(rows, keys[keep], (keys.size, groups))


def dense(node, values=None) -> list:
    """Every output entry depends on every entry of every input (inv, det, solve...)."""
    n = _size(node.shape)
    return [sp.csr_matrix(np.ones((n, _size(x.shape)), dtype=bool)) for x in node.inputs]


def line_keys(shape, axes) -> np.ndarray:
    """For each entry of an array of ``shape``, the number of its coordinates off ``axes``."""
    keep = [d for d in range(len(shape)) if d not in axes]
    grid = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), np.int64)
    if not keep:
        return np.zeros(_size(shape), np.int64)
    return np.ravel_multi_index(tuple(grid[keep]), tuple(shape[d] for d in keep))


def _axes(axis, ndim: int):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(int(a) % max(ndim, 1) for a in axis)


# ---- derived rules -----------------------------------------------------------------------------


def _broadcast_map(in_shape, out_shape) -> np.ndarray:
    number = np.arange(_size(in_shape)).reshape(in_shape)
    return np.broadcast_to(number, out_shape).ravel()


def _local_derivatives(node, values) -> list:
    """d out / d input_k entry by entry at the point (an elementwise op's Jacobian is
    diagonal after broadcasting), from the op's VJP rule with a cotangent of ones."""
    from ..ir.node import const, internal_variable
    from ..ir.schedule import compile

    # variables, not constants: a VJP rule may skip the derivative of a constant input
    shape = node.shape
    arrays = [np.broadcast_to(np.asarray(v), shape).copy() for v in values]
    inputs = [internal_variable(f"sparsity-local[{k}]", shape) for k in range(len(arrays))]
    out = internal_variable("sparsity-local-out", shape)
    given = {v.name: a for v, a in zip(inputs, arrays)}
    given[out.name] = np.asarray(node.op.impl(*arrays, **node.attrs))
    cts = node.op.vjp(const(np.ones(shape)), out, *inputs, **node.attrs)
    result = []
    for ct in cts:
        if ct is None:
            result.append(None)
            continue
        value = np.broadcast_to(np.asarray(compile(ct)(given, strict=False)), shape)
        result.append(value.ravel() != 0)  # NaN counts as a dependency
    return result


def elementwise_rule(node, values=None) -> list:
    """Output entry o depends on the input entry broadcast to it (the diagonal)."""
    n = _size(node.shape)
    rows = np.arange(n)
    nonzero = None
    if values is not None and node.op.differentiable:
        try:
            nonzero = _local_derivatives(node, values)
        except Exception:  # a rule that cannot run on constants: keep the global pattern
            nonzero = None
    out = []
    for k, x in enumerate(node.inputs):
        cols = _broadcast_map(x.shape, node.shape)
        if nonzero is not None:
            if nonzero[k] is None:
                out.append(None)
                continue
            keep = nonzero[k]
            out.append(_from_pairs(rows[keep], cols[keep], (n, _size(x.shape))))
            continue
        out.append(_from_pairs(rows, cols, (n, _size(x.shape))))
    return out


def reduction_rule(node, values=None) -> list:
    """A reduction over ``axis``: the entries that agree off the reduced axes."""
    x = node.inputs[0]
    axes = _axes(node.attrs.get("axis"), len(x.shape))
    in_keys = line_keys(x.shape, axes)
    if tuple(node.shape) == tuple(x.shape):  # log_softmax, prod_others: shape kept
        out_keys = in_keys
    else:  # the kept axes, in order (keepdims adds only unit axes)
        out_keys = np.arange(_size(node.shape))
    rules = [grouped(out_keys, in_keys)]
    for extra in node.inputs[1:]:  # none today; conservative for any later one
        rules.append(sp.csr_matrix(np.ones((_size(node.shape), _size(extra.shape)), bool)))
    return rules


def _axis_rule(node, values=None) -> list:
    """An op along ``axis``: the entries of an output line depend on the input's line."""
    out_shape = tuple(node.shape)
    axis = node.attrs.get("axis")
    rules = []
    for x in node.inputs:
        same_rank = axis is not None and len(x.shape) == len(out_shape)
        if same_rank:
            (a,) = _axes(axis, len(out_shape))
            off = [d for d in range(len(out_shape)) if d != a]
            same_rank = all(x.shape[d] == out_shape[d] for d in off)
        if not same_rank:
            rules.append(sp.csr_matrix(np.ones((_size(out_shape), _size(x.shape)), bool)))
            continue
        rules.append(grouped(line_keys(out_shape, (a,)), line_keys(x.shape, (a,))))
    return rules


def cumulative_rule(node, values=None) -> list:
    """A running sum or product along ``axis`` (``reverse``: from the far end): output
    entry ``i`` of a line depends on the line's input entries ``j <= i`` (``j >= i``)."""
    (x,) = node.inputs
    shape = tuple(x.shape)
    (a,) = _axes(node.attrs["axis"], len(shape))
    n = shape[a]
    lines = _size(shape) // max(n, 1)
    # positions (i, j) of the lower (upper) triangle, then every line at once
    i, j = np.tril_indices(n) if not node.attrs.get("reverse") else np.triu_indices(n)
    moved = np.moveaxis(np.arange(_size(shape)).reshape(shape), a, -1).reshape(lines, n)
    rows = moved[:, i].ravel()
    cols = moved[:, j].ravel()
    return [_from_pairs(rows, cols, (_size(shape), _size(shape)))]


# ---- helpers for records -----------------------------------------------------------------------


def _labels_keys(labels: str, shape, shared: str) -> np.ndarray:
    """Keys of an operand of einsum: the number of its values of the ``shared`` labels, -1
    where a repeated label takes unequal values (entries no term reads)."""
    n = _size(shape)
    if not shape:
        return np.zeros(1, np.int64)
    grid = np.indices(shape).reshape(len(shape), -1)
    valid = np.ones(n, bool)
    first: dict[str, int] = {}
    for d, c in enumerate(labels):
        if c in first:
            valid &= grid[d] == grid[first[c]]
        else:
            first[c] = d
    if not shared:
        keys = np.zeros(n, np.int64)
    else:
        dims = tuple(shape[first[c]] for c in shared)
        keys = np.ravel_multi_index(tuple(grid[first[c]] for c in shared), dims)
    return np.where(valid, keys, -1)


def einsum_rule(node, values=None) -> list:
    """einsum: an output entry depends on the entries of each operand that agree with it
    on the labels they share (every other operand taken as dense)."""
    terms, output = node.attrs["spec"].split("->")
    terms = terms.split(",")
    out_labels = output
    rules = []
    for labels, x in zip(terms, node.inputs):
        shared = "".join(c for c in dict.fromkeys(labels) if c in out_labels)
        in_keys = _labels_keys(labels, x.shape, shared)
        out_keys = _labels_keys(out_labels, node.shape, shared)
        rules.append(grouped(out_keys, in_keys))
    return rules


def matmul_rule(node, values=None) -> list:
    """a @ b: out[..., i, j] depends on a[..., i, :] and b[..., :, j] (the batch axes
    broadcast); a constant operand's zeros are read, so A @ x with a banded constant A
    gives a banded pattern."""
    a, b = node.inputs
    a_shape = a.shape if len(a.shape) > 1 else (1,) + a.shape
    b_shape = b.shape if len(b.shape) > 1 else b.shape + (1,)
    m, k = a_shape[-2:]
    p = b_shape[-1]
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    a_batch = sp.csr_matrix(
        _from_pairs(
            np.arange(_size(batch)),
            _broadcast_map(a_shape[:-2], batch),
            (_size(batch), _size(a_shape[:-2])),
        )
    )
    b_batch = _from_pairs(
        np.arange(_size(batch)),
        _broadcast_map(b_shape[:-2], batch),
        (_size(batch), _size(b_shape[:-2])),
    )
    b_nz = _constant_nonzeros(b, (k, p))
    a_nz = _constant_nonzeros(a, (m, k))
    # out (i, j) <- a (i, l) where b (l, j) may be nonzero: kron(I_m, b_nz^T)
    d_a = sp.kron(a_batch, sp.kron(sp.identity(m, dtype=bool), b_nz.T))
    # out (i, j) <- b (l, j) where a (i, l) may be nonzero: kron(a_nz, I_p)
    d_b = sp.kron(b_batch, sp.kron(a_nz, sp.identity(p, dtype=bool)))
    return [d_a.tocsr().astype(bool), d_b.tocsr().astype(bool)]


def _constant_nonzeros(x, shape) -> sp.csr_matrix:
    if x.kind == "const" and len(x.shape) <= 2:
        return sp.csr_matrix(np.asarray(x.value).reshape(shape) != 0)
    return sp.csr_matrix(np.ones(shape, dtype=bool))


def windows_rule(unfold_impl, unfold_attrs, reduce_window: bool):
    """The rule of an op over K×K windows of its first input (pooling, the input of a
    convolution): the selection of ``unfold`` (padding counts as none), then, with
    ``reduce_window``, every window entry of one output position. Further inputs (a
    convolution's weight and bias) are grouped by output channel."""

    def rule(node, values=None) -> list:
        x = node.inputs[0]
        attrs = dict(unfold_attrs(node))
        windows = np.asarray(unfold_impl(_numbered(x.shape), **attrs, value=0.0))
        n, c, oh, ow, kh, kw = windows.shape
        picked = windows.ravel()
        inside = picked > 0
        rows = np.arange(picked.size)[inside]
        sel = _from_pairs(rows, picked[inside].astype(np.int64) - 1, (picked.size, _size(x.shape)))
        grid = np.indices(windows.shape).reshape(6, -1)
        out_grid = np.indices(node.shape).reshape(4, -1)
        if reduce_window:  # pooling: out (n, c, i, j) <- windows (n, c, i, j, :, :)
            win_keys = np.ravel_multi_index(tuple(grid[:4]), (n, c, oh, ow))
            out_keys = np.ravel_multi_index(tuple(out_grid), (n, c, oh, ow))
        else:  # convolution: out (n, o, i, j) <- windows (n, :, i, j, :, :)
            win_keys = np.ravel_multi_index((grid[0], grid[2], grid[3]), (n, oh, ow))
            out_keys = np.ravel_multi_index((out_grid[0], out_grid[2], out_grid[3]), (n, oh, ow))
        rules = [(grouped(out_keys, win_keys) @ sel).tocsr()]
        for extra in node.inputs[1:]:  # weight (O, ...) and bias (O,): by output channel
            in_keys = np.repeat(np.arange(extra.shape[0]), _size(extra.shape[1:]))
            rules.append(grouped(out_grid[1], in_keys))
        return rules

    return rule


class _StandIn:
    """What a sparsity rule reads of a node (its first input's shape, its shape and its
    attributes), with shapes of one's choosing."""

    def __init__(self, node, in_shape, out_shape):
        self.inputs = (_Shaped(in_shape),)
        self.shape = tuple(out_shape)
        self.attrs = node.attrs


class _Shaped:
    def __init__(self, shape):
        self.shape = tuple(shape)


def gradient_rule(forward_rule, transpose: bool):
    """The rule of a pooling's tangent (``transpose=False``: out of the pooled shape, from
    a first input of the input's shape) or cotangent (``transpose=True``: the transpose)
    op, from the pooling's own rule on the same geometry: an output depends on the
    entries of its window, whatever the maxima (the other inputs, which only locate the
    maxima, have derivative 0)."""

    def rule(node, values=None) -> list:
        first = node.inputs[0].shape
        in_shape, out_shape = (node.shape, first) if transpose else (first, node.shape)
        pattern = forward_rule(_StandIn(node, in_shape, out_shape))[0]
        pattern = pattern.tocsr() if hasattr(pattern, "tocsr") else sp.csr_matrix(pattern)
        return [pattern.T.tocsr() if transpose else pattern] + [None] * (len(node.inputs) - 1)

    return rule


rule_kind(
    "sparsity",
    elementwise=lambda op: elementwise_rule,
    reduction=lambda op: reduction_rule,
    axis=lambda op: _axis_rule,
)

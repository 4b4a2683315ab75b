"""Batching: a graph rewritten so that some of its variables carry a leading batch axis.

:func:`batch_graph` replaces variables by batched ones of shape ``(B,) + shape`` and
rewrites every node that depends on them to compute all B cases at once, as
``jax.vmap`` does. Jacobians and Hessians use it to push every basis direction (in
chunks) through one evaluation instead of one evaluation each.

Each op is rewritten by its kind, not by name-specific code in the differentiators:
elementwise ops and the matrix product broadcast, with the batched operands given
unit axes so that the batch axis stays in front; reductions, cumulative sums and
softmax-like ops shift their axes; reshape, transpose, broadcast and indexing put
the batch axis in front of their static shapes and indices. An op with no such
rule (the convolution kernels) raises :class:`NotBatchable`, and the caller falls
back to one evaluation per direction.
"""

from __future__ import annotations

import contextlib
from typing import Mapping, Sequence

import numpy as np

from ..ir.node import Node, apply, internal_variable
from ..ir.schedule import compile, paused_gc, topological_order
from ..ops.shape import broadcast_to, reshape

__all__ = ["batch_graph", "NotBatchable", "basis_passes", "MAX_BATCH_ENTRIES", "batch_limit"]

# a chunk of directions is as large as keeps the largest batched value under this many
# entries (128 MiB in float64)
MAX_BATCH_ENTRIES = 2**24


class NotBatchable(ValueError):
    """An op in the graph has no batching rule."""


# ops whose ``axis`` attribute names axes of their (first) input
_AXIS_OPS = {
    "sum",
    "max",
    "prod",
    "prod_others",
    "cumsum",
    "logsumexp",
    "log_softmax",
    "argmax_mask",
    "gather",
    "scatter_add",
    "concatenate",
}


def _lift(node: Node, batch: int, ndim: int) -> Node:
    """A batched value ``(B,) + s`` given unit axes up to ``(B,) + (1,)*k + s`` with
    ``k + len(s) == ndim``, so that broadcasting against unbatched operands of up to
    ``ndim`` dimensions keeps the batch axis in front."""
    inner = node.shape[1:]
    if len(inner) == ndim:
        return node
    return reshape(node, (batch,) + (1,) * (ndim - len(inner)) + inner)


# of those, the reductions, for which no axis means every axis
_REDUCTIONS = {"sum", "max", "prod", "prod_others", "logsumexp", "log_softmax", "argmax_mask"}


def _shift(name: str, axis, ndim: int):
    """``axis`` of an input with ``ndim`` dimensions, as an axis of its batched version."""
    if axis is None:
        if name not in _REDUCTIONS:
            raise NotBatchable(f"batching: op {name!r} with axis=None")
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (int, np.integer)):
        return int(axis) % max(ndim, 1) + 1
    return tuple(int(a) % max(ndim, 1) + 1 for a in axis)


def _batched_op(node: Node, ins: list[tuple[Node, bool]], batch: int) -> Node:
    op, attrs = node.op, dict(node.attrs)
    name = op.name
    if getattr(op.shape, "elementwise", False) or name == "matmul":
        ndim = len(node.shape) if name != "matmul" else max(len(i.shape) for i in node.inputs)
        args = [_lift(x, batch, ndim) if b else x for x, b in ins]
        return apply(op, *args, **attrs)
    # the others take every input batched
    args = [x if b else broadcast_to(x, (batch,) + x.shape) for x, b in ins]
    if name == "reshape":
        attrs["shape"] = (batch,) + tuple(attrs["shape"])
    elif name == "broadcast_to":
        target = tuple(attrs["shape"])
        return broadcast_to(_lift(args[0], batch, len(target)), (batch,) + target)
    elif name == "transpose":
        attrs["axes"] = (0,) + tuple(a + 1 for a in attrs["axes"])
    elif name in _AXIS_OPS:
        if "axis" in attrs:
            attrs["axis"] = _shift(name, attrs["axis"], len(node.inputs[0].shape))
    elif name == "getitem":
        attrs["index"] = (("s", 0, batch, 1),) + tuple(attrs["index"])
    elif name == "embed":
        attrs["index"] = (("s", 0, batch, 1),) + tuple(attrs["index"])
        attrs["shape"] = (batch,) + tuple(attrs["shape"])
    else:
        raise NotBatchable(f"batching: op {name!r} has no batching rule")
    return apply(op, *args, **attrs)


@paused_gc()
def batch_graph(
    outputs: Sequence[Node], batched: Mapping[Node, Node], batch: int
) -> list[tuple[Node, bool]]:
    """``outputs`` with each variable of ``batched`` replaced by its batched version.

    Args:
        outputs: nodes of the graph.
        batched: variable node -> variable node of shape ``(batch,) + its shape``.
        batch: the size of the batch axis.

    Returns:
        For each output, ``(node, is_batched)``: a batched output has shape
        ``(batch,) + shape``; one that does not depend on the batched variables is the
        original node (the same for every case of the batch).

    Raises:
        NotBatchable: an op on the way has no batching rule.
    """
    new: dict[int, tuple[Node, bool]] = {}
    for var, bvar in batched.items():
        if bvar.shape != (batch,) + var.shape:
            raise ValueError(
                f"batch_graph: {var} of shape {var.shape} needs a batched variable of shape "
                f"{(batch,) + var.shape}, got {bvar.shape}"
            )
        new[id(var)] = (bvar, True)
    for node in topological_order(outputs):
        if id(node) in new:
            continue
        if node.kind != "op":
            new[id(node)] = (node, False)
            continue
        ins = [new[id(i)] for i in node.inputs]
        if not any(b for _, b in ins):
            new[id(node)] = (node, False)
            continue
        out = _batched_op(node, ins, batch)
        if out.shape != (batch,) + node.shape:  # a rule's mistake, never a user's
            raise NotBatchable(
                f"batching: op {node.op.name!r} gave shape {out.shape}, expected "
                f"{(batch,) + node.shape}"
            )
        new[id(node)] = (out, True)
    return [new[id(o)] for o in outputs]


@contextlib.contextmanager
def batch_limit(entries: int):
    """Within the block, chunks of directions keep their largest batched value under
    ``entries`` entries; ``batch_limit(1)`` evaluates one direction at a time, as the
    pass counts of the textbook cost model assume."""
    from .graphs import clear_cache

    global MAX_BATCH_ENTRIES
    saved = MAX_BATCH_ENTRIES
    MAX_BATCH_ENTRIES = max(1, int(entries))
    clear_cache()
    try:
        yield
    finally:
        MAX_BATCH_ENTRIES = saved
        clear_cache()


def basis_passes(outputs: list[Node], seeds: list[Node], at: dict, dtype, cache_key=None):
    """Evaluate ``outputs``, linear in the ``seeds`` variables, on every basis direction of
    the seeds (all of them flattened and concatenated): row k of the result holds the
    outputs, flattened and concatenated, for the k-th direction.

    The directions go through the batched graph in chunks (one evaluation per chunk);
    a graph with an op that cannot be batched is evaluated once per direction instead.

    Returns:
        (rows, evaluations).
    """
    from .graphs import cached_graph

    sizes = [int(np.prod(s.shape, dtype=np.int64)) for s in seeds]
    total = int(sum(sizes))
    out_sizes = [int(np.prod(o.shape, dtype=np.int64)) for o in outputs]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    largest = max([int(np.prod(n.shape, dtype=np.int64)) for n in topological_order(outputs)])
    chunk = max(1, min(total, MAX_BATCH_ENTRIES // max(1, largest)))
    rows = np.zeros((total, int(sum(out_sizes))), dtype)
    try:

        def build():
            bvars = [
                internal_variable(f"basis[{id(s)}]x{chunk}", (chunk,) + s.shape) for s in seeds
            ]
            outs = batch_graph(outputs, dict(zip(seeds, bvars)), chunk)
            return bvars, outs, compile([o for o, _ in outs])

        key = None if cache_key is None else ("batched",) + tuple(cache_key) + (chunk,)
        bvars, outs, program = build() if key is None else cached_graph(key, build)
    except NotBatchable:
        return _one_by_one(outputs, seeds, at, dtype, sizes, offsets, rows), total
    evaluations = 0
    for start in range(0, total, chunk):
        count = min(chunk, total - start)
        values = {}
        for s, bvar, lo, size in zip(seeds, bvars, offsets[:-1], sizes):
            e = np.zeros((chunk, size), dtype)
            k = np.arange(start, start + count)
            inside = (k >= lo) & (k < lo + size)
            e[np.flatnonzero(inside), k[inside] - lo] = 1
            values[bvar.name] = e.reshape(bvar.shape)
        results = program({**at, **values}, strict=False)
        evaluations += 1
        col = 0
        for (o, batched), value, n_out, orig in zip(outs, results, out_sizes, outputs):
            if batched:
                block = np.reshape(value, (chunk, n_out))[:count]
            else:
                block = np.broadcast_to(
                    np.ravel(np.broadcast_to(value, orig.shape)), (count, n_out)
                )
            rows[start : start + count, col : col + n_out] = block
            col += n_out
    return rows, evaluations


def _one_by_one(outputs, seeds, at, dtype, sizes, offsets, rows):
    program = compile(outputs)
    for k in range(rows.shape[0]):
        values = {}
        for s, lo, size in zip(seeds, offsets[:-1], sizes):
            e = np.zeros(size, dtype)
            if lo <= k < lo + size:
                e[k - lo] = 1
            values[s.name] = e.reshape(s.shape)
        results = program({**at, **values}, strict=False)
        rows[k] = np.concatenate(
            [np.ravel(np.broadcast_to(v, o.shape)) for v, o in zip(results, outputs)]
        )
    return rows

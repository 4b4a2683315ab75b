"""Batching: a graph rewritten so that some of its variables carry a leading batch axis.

:func:`batch_graph` replaces variables by batched ones of shape ``(B,) + shape`` and
rewrites every node that depends on them to compute all B cases at once, as
``jax.vmap`` does. Jacobians and Hessians use it to push every basis direction (in
chunks) through one evaluation instead of one evaluation each.

Each op is rewritten by its ``"batch"`` rule, read from its record: derived from the
op's kind for elementwise ops, reductions and ops along an axis, written in the record
for the others (:mod:`diffkit.ops._batch`); this module names no op. An op whose record
opts out (the image kernels, ``Unsupported("why")``) raises :class:`NotBatchable`, and
the caller falls back to one evaluation per direction.
"""

from __future__ import annotations

import contextlib
from typing import Mapping, Sequence

import numpy as np

from ..ir.node import Node, internal_variable
from ..ir.schedule import compile, paused_gc, topological_order
from ..ops._batch import NotBatchable

__all__ = ["batch_graph", "NotBatchable", "basis_passes", "MAX_BATCH_ENTRIES", "batch_limit"]

# a chunk of directions is as large as keeps the largest batched value under this many
# entries (128 MiB in float64)
MAX_BATCH_ENTRIES = 2**24


def _batched_op(node: Node, ins: list[tuple[Node, bool]], batch: int) -> Node:
    rule = node.op.rule("batch")
    if not rule:  # none, or an explicit opt-out with its reason
        why = f" ({rule.reason})" if rule is not None else ""
        raise NotBatchable(f"batching: op {node.op.name!r} has no batching rule{why}")
    return rule(node, ins, batch)


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

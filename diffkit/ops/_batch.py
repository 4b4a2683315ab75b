"""Batching rules: how an op computes B cases at once when some inputs carry a leading
batch axis (``jax.vmap``'s rules).

A rule is ``rule(node, inputs, batch) -> node``: ``node`` is the op's node in the
unbatched graph, ``inputs`` one ``(new input, is_batched)`` pair per input (a batched one
has shape ``(batch,) + its shape``), and the result has shape ``(batch,) + node.shape``.
The rule kind ``"batch"`` is declared here, with the rules that derive from an op's kind:

- ``elementwise``: the batched operands get unit axes so that broadcasting keeps the
  batch axis in front;
- ``reduction`` and ``axis``: every input batched, the ``axis`` attribute shifted by one
  (for a reduction, ``None`` means every axis);

others write their rule in the record (``rules={"batch": ...}``); an op with none is not
batchable, and the differentiators evaluate one direction at a time through it.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, apply
from ..ir.op import rule_kind

__all__ = ["lift", "all_batched", "shift_axis", "with_attrs", "batch_prefix"]


class NotBatchable(ValueError):
    """An op in the graph has no batching rule (or none for these attributes)."""


def lift(node: Node, batch: int, ndim: int) -> Node:
    """A batched value ``(B,) + s`` given unit axes up to ``(B,) + (1,)*k + s`` with
    ``k + len(s) == ndim``, so that broadcasting against unbatched operands of up to
    ``ndim`` dimensions keeps the batch axis in front."""
    inner = node.shape[1:]
    if len(inner) == ndim:
        return node
    return apply("reshape", node, shape=(batch,) + (1,) * (ndim - len(inner)) + inner)


def all_batched(inputs, batch: int) -> list[Node]:
    """Every input with the batch axis: the unbatched ones broadcast to it."""
    return [x if b else apply("broadcast_to", x, shape=(batch,) + x.shape) for x, b in inputs]


def shift_axis(axis, ndim: int, reduction: bool):
    """``axis`` of an input with ``ndim`` dimensions, as an axis of its batched version."""
    if axis is None:
        if not reduction:
            raise NotBatchable("batching: an axis of None")
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (int, np.integer)):
        return int(axis) % max(ndim, 1) + 1
    return tuple(int(a) % max(ndim, 1) + 1 for a in axis)


def with_attrs(node: Node, args, **changed) -> Node:
    """``node``'s op applied to ``args`` with some attributes changed."""
    return apply(node.op, *args, **{**node.attrs, **changed})


def batch_prefix(index: tuple, batch: int) -> tuple:
    """A normalized index (of getitem, embed) with the whole batch axis in front."""
    return (("s", 0, batch, 1),) + tuple(index)


def _elementwise(node, inputs, batch):
    ndim = len(node.shape)
    args = [lift(x, batch, ndim) if b else x for x, b in inputs]
    return apply(node.op, *args, **node.attrs)


def _axis_rule(reduction: bool):
    def rule(node, inputs, batch):
        args = all_batched(inputs, batch)
        if "axis" not in node.attrs:
            return with_attrs(node, args)
        axis = shift_axis(node.attrs["axis"], len(node.inputs[0].shape), reduction)
        return with_attrs(node, args, axis=axis)

    return rule


rule_kind(
    "batch",
    elementwise=lambda op: _elementwise,
    reduction=lambda op: _axis_rule(True),
    axis=lambda op: _axis_rule(False),
)

"""Checkpointed stacks of layers: ``checkpoint_sequential`` (``torch.utils.checkpoint``'s).

The modules of a :class:`~diffkit.nn.layers.Sequential` (or a list of modules) are cut
into ``segments`` runs of nearly equal length; each run is a checkpointed region
(:func:`diffkit.differentiators.checkpoint.checkpoint`), so the backward pass keeps the
segments' inputs and recomputes one segment at a time.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..differentiators.checkpoint import checkpoint
from ..ir.node import Node

__all__ = ["checkpoint_sequential"]


def checkpoint_sequential(modules: Iterable, segments: int, x: Node, policy: Any = None) -> Node:
    """``modules`` applied to ``x`` in order, in ``segments`` checkpointed runs.

    Args:
        modules: a ``Sequential`` or a list of modules (callables of one node).
        segments: how many runs (1 to the number of modules).
        x: the input node.
        policy: what each run keeps besides its input (see ``checkpoint``).

    >>> import numpy as np
    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    >>> x = dk.variable("input", (5, 3))
    >>> y = checkpoint_sequential(net, 2, x)
    >>> y.shape
    (5, 2)
    """
    mods = list(modules)
    if (
        not isinstance(segments, int)
        or isinstance(segments, bool)
        or not 1 <= segments <= len(mods)
    ):
        raise ValueError(
            f"checkpoint_sequential: segments must be 1 to {len(mods)} (the modules), "
            f"got {segments!r}"
        )
    bounds = [round(i * len(mods) / segments) for i in range(segments + 1)]

    def run(h, part):
        for m in part:
            h = m(h)
        return h

    for a, b in zip(bounds, bounds[1:]):
        x = checkpoint(lambda h, part=mods[a:b]: run(h, part), policy, name=f"layers {a}-{b}")(x)
    return x

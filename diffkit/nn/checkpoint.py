"""Checkpointed stacks of layers: ``checkpoint_sequential`` (``torch.utils.checkpoint``'s).

The modules of a :class:`~diffkit.nn.layers.Sequential` (or a list of modules) are cut
into ``segments`` runs of nearly equal length; each run but the last is a checkpointed
region (``diffkit.differentiators.checkpoint.run_segments``, as PyTorch's
``checkpoint_sequential``), so the backward pass keeps the runs' inputs and the last
run's values, and recomputes one run at a time.

:func:`with_checkpoints` switches a model to such segments: a ``Sequential``
(``nn.Sequential(..., checkpoint=k)`` does the same) or a model whose layers run as one
chain (``model.layers()``). Only how the graph is built changes: parameters, buffers and
``state_dict`` keys stay the same, and gradients are bit-identical to the unchecked ones.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..differentiators.checkpoint import run_segments
from ..ir.node import Node
from .layers import Sequential

__all__ = ["checkpoint_sequential", "with_checkpoints"]


def checkpoint_sequential(modules: Iterable, segments: int, x: Node, policy: Any = None) -> Node:
    """``modules`` applied to ``x`` in order, in ``segments`` runs, all but the last
    checkpointed (``run_segments``).

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
    return run_segments(mods, segments, x, policy)


def _chain_length(model) -> int | None:
    """How many modules ``model`` runs as one chain (None: it runs no chain)."""
    layers = getattr(model, "layers", None)
    if callable(layers):
        return len(layers())
    if isinstance(model, Sequential):
        return len(model)
    return None


def with_checkpoints(model, segments: int | None):
    """``model``, set to run its chain of layers in ``segments`` checkpointed runs (``None``
    or 0: unchecked again); returns the model.

    Args:
        model: a :class:`~diffkit.nn.layers.Sequential`, or a model whose layers run as one
            chain (``model.layers()``: LeNet-5, MLP, VGG, ResNet).
        segments: the number of runs, 1 to the number of layers.

    Raises:
        ValueError: one line naming the model, when it has no chain of layers or
            ``segments`` is out of range.

    >>> from diffkit import nn
    >>> net = with_checkpoints(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), 2)
    >>> net.checkpoint_segments, list(net.state_dict()) == list(nn.Sequential(
    ...     nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).state_dict())
    (2, True)
    """
    name = type(model).__name__
    if segments is None or (
        isinstance(segments, int) and not isinstance(segments, bool) and segments == 0
    ):
        object.__setattr__(model, "checkpoint_segments", None)
        return model
    count = _chain_length(model)
    if count is None:
        raise ValueError(
            f"with_checkpoints: {name} runs no chain of layers (a Sequential, or a model "
            f"with layers())"
        )
    if not isinstance(segments, int) or isinstance(segments, bool) or not 1 <= segments <= count:
        raise ValueError(
            f"with_checkpoints: segments must be 1 to {count} (the layers of {name}), "
            f"got {segments!r}"
        )
    object.__setattr__(model, "checkpoint_segments", segments)
    return model

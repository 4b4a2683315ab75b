"""Losses computed stably from logits: cross-entropy, logistic (BCE with logits), MSE.

All reduce by the mean, as PyTorch's defaults. Targets are IR nodes: one-hot (or
probability) rows for ``CrossEntropyLoss``, 0/1 values for ``BCEWithLogitsLoss``.
"""

from __future__ import annotations

from .. import ops
from ..ir.node import Node, ShapeError
from .module import Module

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss"]


def _same_shape(name, a: Node, b: Node) -> None:
    if a.shape != b.shape:
        raise ShapeError(f"{name}: input of shape {a.shape} and target of shape {b.shape} differ")


class CrossEntropyLoss(Module):
    """mean over the batch of -sum_c y_c log softmax(z)_c, from logits z (N, C)."""

    def __call__(self, logits: Node, target: Node) -> Node:
        _same_shape("CrossEntropyLoss", logits, target)
        return -ops.mean(ops.sum(target * ops.log_softmax(logits, axis=1), axis=1))


class BCEWithLogitsLoss(Module):
    """mean of softplus(z) - y z: the logistic loss of sigmoid(z), without overflow."""

    def __call__(self, logits: Node, target: Node) -> Node:
        _same_shape("BCEWithLogitsLoss", logits, target)
        return ops.mean(ops.softplus(logits) - target * logits)


class MSELoss(Module):
    """mean of (input - target)^2."""

    def __call__(self, input: Node, target: Node) -> Node:
        _same_shape("MSELoss", input, target)
        d = input - target
        return ops.mean(d * d)

"""Losses computed stably from logits: cross-entropy, logistic (BCE with logits), MSE.

All reduce by the mean, as PyTorch's defaults. ``CrossEntropyLoss`` takes class indices
or probability rows, with ``ignore_index``, ``reduction`` and ``label_smoothing`` as
PyTorch; ``BCEWithLogitsLoss`` takes 0/1 values.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ir.node import Node, ShapeError, as_node, const
from .module import Module

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "MSELoss"]


def _same_shape(name, a: Node, b: Node) -> None:
    if a.shape != b.shape:
        raise ShapeError(f"{name}: input of shape {a.shape} and target of shape {b.shape} differ")


class CrossEntropyLoss(Module):
    """Cross-entropy of softmax(logits) against class indices or class probabilities,
    computed stably from the logits, as PyTorch's ``nn.CrossEntropyLoss``.

    Args:
        ignore_index: class-index targets equal to it add nothing and are left out of the
            mean (PyTorch's default, -100).
        reduction: ``"mean"`` (over the targets not ignored), ``"sum"`` or ``"none"``.
        label_smoothing: ε: the target becomes (1 - ε) one-hot + ε / C.

    The target is an IR node or array either of shape (N,) holding class indices, or of
    the logits' shape (N, C) holding probabilities. A logit of -inf (a masked class)
    is fine where its target probability is 0.

    >>> import diffkit as dk, numpy as np
    >>> z = dk.variable("z", (2, 3))
    >>> loss = dk.nn.CrossEntropyLoss()(z, np.array([0, 2]))
    >>> round(dk.evaluate(loss, {"z": np.array([[2.0, 0.0, -np.inf], [0.0, 1.0, 3.0]])}), 4)
    0.1484
    """

    def __init__(
        self, ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0
    ):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"CrossEntropyLoss: reduction must be mean, sum or none, got {reduction!r}"
            )
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing!r}"
            )
        self.ignore_index = int(ignore_index)
        self.reduction = reduction
        self.label_smoothing = float(label_smoothing)

    def __call__(self, logits: Node, target) -> Node:
        logits, target = as_node(logits), as_node(target)
        if logits.ndim != 2:
            raise ShapeError(f"CrossEntropyLoss: logits must be (N, C), got shape {logits.shape}")
        n, c = logits.shape
        logp = ops.log_softmax(logits, axis=1)
        eps = self.label_smoothing
        if target.shape == (n,):  # class indices
            onehot = ops.equal(ops.reshape(target, (n, 1)), const(np.arange(c)))
            # where, not a product: 0 * log p is NaN where a logit is -inf
            picked = ops.sum(ops.where(onehot, logp, 0.0), axis=1)
            losses = -(1 - eps) * picked
            if eps:
                losses = losses - eps / c * ops.sum(logp, axis=1)
            kept = ops.not_equal(target, self.ignore_index)
            losses = ops.where(kept, losses, 0.0)
            if self.reduction == "mean":
                return ops.sum(losses) / ops.sum(kept)
        elif target.shape == logits.shape:  # class probabilities
            if eps:
                target = target * (1 - eps) + eps / c
            losses = -ops.sum(ops.where(ops.not_equal(target, 0), target * logp, 0.0), axis=1)
            if self.reduction == "mean":
                return ops.mean(losses)
        else:
            raise ShapeError(
                f"CrossEntropyLoss: logits of shape {logits.shape} need a target of class "
                f"indices of shape {(n,)} or of probabilities of shape {logits.shape}, got "
                f"{target.shape}"
            )
        return ops.sum(losses) if self.reduction == "sum" else losses


class BCEWithLogitsLoss(Module):
    """mean of softplus(z) - y z: the logistic loss of sigmoid(z), without overflow.

    Args:
        dtype: the dtype of the layer's values (float32 by default).

    Call it as ``loss(logits, target)`` (nodes of one shape; targets in [0, 1]).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> z = dk.variable("z", (2,))
    >>> loss = nn.BCEWithLogitsLoss()(z, np.array([1.0, 0.0]))
    >>> dk.evaluate(loss, at={"z": [0.0, 0.0]})  # ln 2
    0.6931471805599453
    """

    def __call__(self, logits: Node, target: Node) -> Node:
        _same_shape("BCEWithLogitsLoss", logits, target)
        return ops.mean(ops.softplus(logits) - target * logits)


class MSELoss(Module):
    """mean of (input - target)^2.

    Args:
        dtype: the dtype of the layer's values (float32 by default).

    Call it as ``loss(input, target)`` (nodes of one shape).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.MSELoss()(x, dk.const(np.zeros(2))), at={"x": [1.0, 2.0]})  # (1 + 4) / 2
    2.5
    """

    def __call__(self, input: Node, target: Node) -> Node:
        _same_shape("MSELoss", input, target)
        d = input - target
        return ops.mean(d * d)

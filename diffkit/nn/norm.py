"""Normalization layers: BatchNorm1d/2d, LayerNorm, InstanceNorm2d (PyTorch semantics).

All normalize x̂ = (x - μ) / sqrt(σ² + ε) with the biased variance σ² over their
axes, then scale and shift by learnable γ (``weight``) and β (``bias``). Batch norm
in training uses batch statistics and updates ``running_mean`` and
``running_var`` (the unbiased variance) with ``momentum``; in evaluation it uses
the running statistics. A channel of zero variance gives x̂ = 0, never NaN.

Empty inputs give empty outputs, as in PyTorch: a batch of 0 (or an empty image) in
training or evaluation, through every layer here. Batch statistics of no values do not
exist, so an empty training batch leaves ``running_mean``, ``running_var`` and
``num_batches_tracked`` as they are (PyTorch also leaves the running statistics, but
counts the batch in ``num_batches_tracked``); batch norm in training still refuses
exactly one value per channel, whose variance is 0 by construction.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ir.node import Node, ShapeError
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "InstanceNorm2d", "normalize"]


def normalize(x: Node, axes: tuple, eps: float):
    """(x̂, μ, σ²) over ``axes`` (keepdims), with the biased variance."""
    mean = ops.mean(x, axes, keepdims=True)
    centred = x - mean
    var = ops.mean(centred * centred, axes, keepdims=True)
    return centred / ops.sqrt(var + eps), mean, var


class _BatchNorm(Module):
    _ndims: tuple = ()
    min_training_batch = 2  # batch statistics need two samples

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype=np.float32,
    ):
        super().__init__(dtype)
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(
                f"{type(self).__name__}: num_features must be a positive integer, "
                f"got {num_features!r}"
            )
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.add_parameter("weight", np.ones(num_features))
            self.add_parameter("bias", np.zeros(num_features))
        if track_running_stats:
            self.add_buffer("running_mean", np.zeros(num_features))
            self.add_buffer("running_var", np.ones(num_features))
            self._buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)

    def _name(self) -> str:
        return f"{type(self).__name__}({self._path or 'bn'})"

    def forward(self, x: Node) -> Node:
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise ShapeError(
                f"{self._name()}: expected input of {' or '.join(map(str, self._ndims))}"
                f" dimensions with {self.num_features} channels, got shape {x.shape}"
            )
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, self.num_features) + (1,) * (x.ndim - 2)
        count = int(np.prod([x.shape[a] for a in axes]))
        if count == 0:  # empty in, empty out (no statistics to take or to update)
            xhat = x
            self._stats[:] = []
        elif self.training or not self.track_running_stats:
            if count == 1:
                raise ValueError(
                    f"{self._name()}: expected more than 1 value per channel when "
                    f"training, got input of shape {x.shape}"
                )
            xhat, mean, var = normalize(x, axes, self.eps)
            self._stats[:] = (
                [
                    (
                        self,
                        ops.reshape(mean, (self.num_features,)),
                        ops.reshape(var, (self.num_features,)),
                        count,
                    )
                ]
                if self.training and self.track_running_stats
                else []
            )
        else:
            mean = ops.reshape(self.param("running_mean"), shape)
            var = ops.reshape(self.param("running_var"), shape)
            xhat = (x - mean) / ops.sqrt(var + self.eps)
            self._stats[:] = []
        if self.affine:
            xhat = xhat * ops.reshape(self.param("weight"), shape) + ops.reshape(
                self.param("bias"), shape
            )
        return xhat

    def update_running(self, mean: np.ndarray, var: np.ndarray, n: int) -> None:
        """Fold one batch's statistics (biased variance over ``n`` values) into the running
        averages, as PyTorch does (the running variance is unbiased). A batch of no values
        changes nothing."""
        if n == 0:
            return
        m = self.momentum
        unbiased = np.asarray(var, dtype=np.float64) * n / (n - 1)
        b = self._buffers
        b["running_mean"] = ((1 - m) * b["running_mean"] + m * mean).astype(self.dtype)
        b["running_var"] = ((1 - m) * b["running_var"] + m * unbiased).astype(self.dtype)
        b["num_batches_tracked"] = b["num_batches_tracked"] + 1

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, per feature."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over NCHW inputs, per channel (statistics over N, H and W)."""

    _ndims = (4,)


class LayerNorm(Module):
    """Normalizes each sample over its last ``len(normalized_shape)`` dimensions."""

    def __init__(
        self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, dtype=np.float32
    ):
        super().__init__(dtype)
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.add_parameter("weight", np.ones(self.normalized_shape))
            self.add_parameter("bias", np.zeros(self.normalized_shape))

    def forward(self, x: Node) -> Node:
        k = len(self.normalized_shape)
        if tuple(x.shape[-k:]) != self.normalized_shape:
            raise ShapeError(
                f"LayerNorm({self._path or 'ln'}): input of shape {x.shape} does "
                f"not end with the normalized shape {self.normalized_shape}"
            )
        xhat, _, _ = normalize(x, tuple(range(x.ndim - k, x.ndim)), self.eps)
        if self.elementwise_affine:
            xhat = xhat * self.param("weight") + self.param("bias")
        return xhat


class InstanceNorm2d(Module):
    """Normalizes each sample and channel over H×W (PyTorch: affine=False by default)."""

    def __init__(
        self, num_features: int, eps: float = 1e-5, affine: bool = False, dtype=np.float32
    ):
        super().__init__(dtype)
        self.num_features, self.eps, self.affine = int(num_features), float(eps), affine
        if affine:
            self.add_parameter("weight", np.ones(num_features))
            self.add_parameter("bias", np.zeros(num_features))

    def forward(self, x: Node) -> Node:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ShapeError(
                f"InstanceNorm2d({self._path or 'in'}): expected NCHW input with "
                f"{self.num_features} channels, got shape {x.shape}"
            )
        if x.shape[2] * x.shape[3] == 1:  # an empty image is fine: empty in, empty out
            raise ValueError(
                f"InstanceNorm2d({self._path or 'in'}): expected more than 1 "
                f"spatial element, got input of shape {x.shape}"
            )
        xhat, _, _ = normalize(x, (2, 3), self.eps)
        if self.affine:
            shape = (1, self.num_features, 1, 1)
            xhat = xhat * ops.reshape(self.param("weight"), shape) + ops.reshape(
                self.param("bias"), shape
            )
        return xhat

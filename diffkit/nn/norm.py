"""Normalization layers: BatchNorm1d/2d, LayerNorm, InstanceNorm2d, GroupNorm (PyTorch
semantics), and the functional forms ``group_norm`` and ``instance_norm``.

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
from ..ir.node import Node, ShapeError, as_node
from .module import Module

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "InstanceNorm2d",
    "GroupNorm",
    "normalize",
    "group_norm",
    "instance_norm",
]


def normalize(x: Node, axes: tuple, eps: float):
    """(x̂, μ, σ²) over ``axes`` (keepdims), with the biased variance. The statistics are
    the ``moments`` node that the derivative of x̂ reads too, so that a training step
    computes them once for both."""
    stats = ops.moments(x, axes)
    return ops.normalize(x, axes, eps), stats[0], stats[1]


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
    """Batch norm over (N, C) or (N, C, L) inputs, per feature.

    Args:
        num_features: the number of channels C.
        eps: added to the variance.
        momentum: the weight of each batch in the running statistics.
        affine: learn a scale and a shift per channel.
        track_running_stats: keep running statistics (used in eval mode).
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> bn = nn.BatchNorm1d(1, eps=0.0)  # training mode: the batch's statistics
    >>> x = dk.variable("x", (2, 1))
    >>> dk.evaluate(bn(x), at={"x": np.array([[1.0], [3.0]], np.float32), **bn.inputs()}).tolist()
    [[-1.0], [1.0]]
    """

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over NCHW inputs, per channel (statistics over N, H and W).

    Args:
        num_features: the number of channels C.
        eps: added to the variance.
        momentum: the weight of each batch in the running statistics.
        affine: learn a scale and a shift per channel.
        track_running_stats: keep running statistics (used in eval mode).
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> bn = nn.BatchNorm2d(1, eps=0.0)  # statistics over N, H and W
    >>> x = dk.variable("x", (2, 1, 1, 1))
    >>> at = {"x": np.array([1.0, 3.0], np.float32).reshape(2, 1, 1, 1), **bn.inputs()}
    >>> dk.evaluate(bn(x), at=at).ravel().tolist()
    [-1.0, 1.0]
    """

    _ndims = (4,)


class LayerNorm(Module):
    """Normalizes each sample over its last ``len(normalized_shape)`` dimensions.

    Args:
        normalized_shape: an int or a tuple: the trailing dimensions.
        eps: added to the variance.
        elementwise_affine: learn a scale and a shift per entry.
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> ln = nn.LayerNorm(2, eps=0.0)
    >>> x = dk.variable("x", (2, 2))
    >>> at = {"x": np.array([[1.0, 3.0], [5.0, 4.0]], np.float32), **ln.inputs()}
    >>> dk.evaluate(ln(x), at=at).tolist()
    [[-1.0, 1.0], [1.0, -1.0]]
    """

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
    """Normalizes each sample and channel over H×W, as ``torch.nn.InstanceNorm2d``
    (``affine=False`` and ``track_running_stats=False`` by default). Takes NCHW inputs
    and unbatched CHW ones.

    With ``track_running_stats``, training also folds each batch into ``running_mean``
    and ``running_var``: the batch's average over samples of each instance's mean and
    unbiased variance, with ``momentum`` (PyTorch's instance norm neither counts batches
    in ``num_batches_tracked`` nor updates anything when ``momentum`` is ``None``); in
    evaluation mode it then normalizes by the running statistics. Without it, every mode
    uses each instance's own statistics.

    Args:
        num_features: the number of channels C.
        eps: added to the variance.
        momentum: the weight of each batch in the running statistics (None: none kept).
        affine: learn a scale and a shift per channel.
        track_running_stats: keep running statistics (used in eval mode).
        dtype: the dtype of the layer's values (float32 by default).
        bias: with ``affine``, learn the shift too.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 2, 1, 2))
    >>> at = {"x": np.array([[[[1.0, 3.0]], [[10.0, 0.0]]]], np.float32)}
    >>> dk.evaluate(nn.InstanceNorm2d(2, eps=0.0)(x), at=at).tolist()
    [[[[-1.0, 1.0]], [[1.0, -1.0]]]]
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        dtype=np.float32,
        *,
        bias: bool = True,
    ):
        super().__init__(dtype)
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(
                f"InstanceNorm2d: num_features must be a positive integer, got {num_features!r}"
            )
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.add_parameter("weight", np.ones(num_features))
            if bias:
                self.add_parameter("bias", np.zeros(num_features))
        if track_running_stats:
            self.add_buffer("running_mean", np.zeros(num_features))
            self.add_buffer("running_var", np.ones(num_features))
            self._buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)

    def _name(self) -> str:
        return f"InstanceNorm2d({self._path or 'in'})"

    def forward(self, x: Node) -> Node:
        if x.ndim == 3:  # unbatched (C, H, W)
            return ops.reshape(self.forward(ops.reshape(x, (1,) + x.shape)), x.shape)
        if x.ndim != 4:
            raise ShapeError(f"{self._name()}: expected a CHW or NCHW input, got shape {x.shape}")
        if x.shape[1] != self.num_features and (self.affine or self.track_running_stats):
            raise ShapeError(
                f"{self._name()}: expected input with {self.num_features} channels, "
                f"got shape {x.shape}"
            )
        self._stats[:] = []
        use_input_stats = self.training or not self.track_running_stats
        shape = (1, x.shape[1], 1, 1)
        if not use_input_stats:
            mean = ops.reshape(self.param("running_mean"), shape)
            var = ops.reshape(self.param("running_var"), shape)
            xhat = (x - mean) / ops.sqrt(var + self.eps)
        elif x.shape[2] * x.shape[3] == 1:  # an empty image is fine: empty in, empty out
            raise ValueError(
                f"{self._name()}: expected more than 1 spatial element when using the "
                f"input's statistics, got input of shape {x.shape}"
            )
        else:
            xhat, mean, var = normalize(x, (2, 3), self.eps)
            count = x.shape[2] * x.shape[3]
            if self.training and self.track_running_stats and x.shape[0] and count:
                c = x.shape[1]
                self._stats[:] = [
                    (
                        self,
                        ops.mean(ops.reshape(mean, (x.shape[0], c)), 0),
                        ops.mean(ops.reshape(var, (x.shape[0], c)), 0),
                        count,
                    )
                ]
        if self.affine:
            xhat = xhat * ops.reshape(self.param("weight"), shape)
            if "bias" in self._parameters:
                xhat = xhat + ops.reshape(self.param("bias"), shape)
        return xhat

    def update_running(self, mean: np.ndarray, var: np.ndarray, n: int) -> None:
        """Fold one batch's statistics (the averages over samples of each instance's
        mean and biased variance over ``n`` values) into the running averages: the
        variance unbiased, as PyTorch. ``momentum=None`` changes nothing (PyTorch's)."""
        if n < 2 or self.momentum is None:
            return
        m = float(self.momentum)
        unbiased = np.asarray(var, dtype=np.float64) * n / (n - 1)
        b = self._buffers
        b["running_mean"] = ((1 - m) * b["running_mean"] + m * mean).astype(self.dtype)
        b["running_var"] = ((1 - m) * b["running_var"] + m * unbiased).astype(self.dtype)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class GroupNorm(Module):
    """Normalizes each sample over groups of ``num_channels / num_groups`` channels (and
    every position), then scales and shifts each channel, as ``torch.nn.GroupNorm``.
    Takes (N, C, ...) inputs. One group is layer norm over (C, H, W) with per-channel
    parameters; ``num_groups = C`` is instance norm.

    Args:
        num_groups: the number of groups (dividing num_channels).
        num_channels: the number of channels C.
        eps: added to the variance.
        affine: learn a scale and a shift per channel.
        dtype: the dtype of the layer's values (float32 by default).
        bias: with ``affine``, learn the shift too.

    Raises:
        ValueError: ``num_channels`` is not divisible by ``num_groups``.

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> nn.GroupNorm(2, 6)(dk.variable("x", (4, 6, 3, 3))).shape
    (4, 6, 3, 3)
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        dtype=np.float32,
        *,
        bias: bool = True,
    ):
        super().__init__(dtype)
        for key, value in (("num_groups", num_groups), ("num_channels", num_channels)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"GroupNorm: {key} must be a positive integer, got {value!r}")
        if num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                f"num_groups ({num_groups})"
            )
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), affine
        if affine:
            self.add_parameter("weight", np.ones(num_channels))
            if bias:
                self.add_parameter("bias", np.zeros(num_channels))

    def forward(self, x: Node) -> Node:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(
                f"GroupNorm({self._path or 'gn'}): expected (N, {self.num_channels}, ...) "
                f"input, got shape {x.shape}"
            )
        return group_norm(
            x,
            self.num_groups,
            self.param("weight") if self.affine else None,
            self.param("bias") if "bias" in self._parameters else None,
            self.eps,
        )

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Node:
    """Group normalization of (N, C, ...) ``x`` (``torch.nn.functional.group_norm``).

    Args:
        x: a node, (N, C, ...).
        num_groups: the number of groups (dividing C).
        weight, bias: nodes or arrays, (C,), or None.
        eps: added to the variance.

    Returns:
        Node: the normalized ``x``.

    Raises:
        ShapeError: ``x`` is not (N, C, ...) with C divisible by ``num_groups``.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (1, 4))
    >>> dk.evaluate(F.group_norm(x, 2, eps=0.0), at={"x": [[1.0, 3.0, 5.0, 9.0]]}).tolist()
    [[-1.0, 1.0, -1.0, 1.0]]
    """
    x = as_node(x)
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ShapeError(
            f"group_norm: expected (N, C, ...) input with C divisible by num_groups "
            f"{num_groups}, got shape {x.shape}"
        )
    n, c = x.shape[:2]
    size = c // num_groups
    rest = int(np.prod(x.shape[2:], dtype=np.int64))
    grouped = ops.reshape(x, (n, num_groups, size, rest))  # the one reshape of x
    if not grouped.size:
        return x if weight is None and bias is None else _affine(x, weight, bias)
    # the statistics over (channels of the group, positions); the weight joins the small
    # (N, G, C/G, 1) scale 1/σ · w, so the big arrays see one product and one sum
    mean = ops.mean(grouped, (2, 3), keepdims=True)
    centred = grouped + (-mean)  # the mean's cotangent: a sum, negated once it is small
    var = ops.mean(centred * centred, (2, 3), keepdims=True)
    scale = 1.0 / ops.sqrt(var + eps)
    parameter = (1, num_groups, size, 1)
    if weight is not None:
        scale = scale * ops.reshape(as_node(weight), parameter)
    out = centred * scale
    if bias is not None:
        out = out + ops.reshape(as_node(bias), parameter)
    return ops.reshape(out, x.shape)


def _affine(x, weight, bias):
    """x · weight + bias, per channel of (N, C, ...) ``x``."""
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if weight is not None:
        x = x * ops.reshape(as_node(weight), shape)
    if bias is not None:
        x = x + ops.reshape(as_node(bias), shape)
    return x


def instance_norm(
    x,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Node:
    """Instance normalization of (N, C, ...) ``x`` over its positions
    (``torch.nn.functional.instance_norm``): each instance's own statistics when
    ``use_input_stats``, else the running ones (this form updates none).

    Args:
        x: a node, (N, C, ...) with at least one position axis.
        running_mean, running_var: nodes or arrays, (C,), or None.
        weight, bias: nodes or arrays, (C,), or None.
        use_input_stats: normalize by each instance's statistics (else the running ones).
        momentum: PyTorch's argument (this form updates nothing).
        eps: added to the variance.

    Returns:
        Node: the normalized ``x``.

    Raises:
        ShapeError: ``x`` has no position axis.
        ValueError: ``use_input_stats=False`` without running statistics.

    >>> import diffkit as dk
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (1, 1, 2))
    >>> dk.evaluate(F.instance_norm(x, eps=0.0), at={"x": [[[1.0, 3.0]]]}).tolist()
    [[[-1.0, 1.0]]]
    """
    x = as_node(x)
    if x.ndim < 3:
        raise ShapeError(f"instance_norm: expected (N, C, ...) input with positions, got {x.shape}")
    axes = tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if use_input_stats:
        xhat, _, _ = normalize(x, axes, eps)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: use_input_stats=False needs the running statistics")
        mean = ops.reshape(as_node(running_mean), shape)
        var = ops.reshape(as_node(running_var), shape)
        xhat = (x - mean) / ops.sqrt(var + eps)
    if weight is not None:
        xhat = xhat * ops.reshape(as_node(weight), shape)
    if bias is not None:
        xhat = xhat + ops.reshape(as_node(bias), shape)
    return xhat

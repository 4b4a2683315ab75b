"""Stateless forms of the layers and losses, as ``torch.nn.functional``: parameters are
passed in as arrays or IR nodes instead of living in a module.

>>> import diffkit as dk, numpy as np
>>> from diffkit.nn import functional as F
>>> x = dk.variable("x", (2, 3))
>>> F.linear(x, np.ones((4, 3)), np.zeros(4)).shape
(2, 4)
"""

from __future__ import annotations

from .. import ops
from ..ir.node import Node, ShapeError, as_node
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from ..ops import activations as _act
from .norm import group_norm, instance_norm, normalize
from .padding import pad

__all__ = [
    "linear",
    "conv2d",
    "conv_transpose2d",
    "pad",
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "gelu",
    "elu",
    "selu",
    "silu",
    "mish",
    "leaky_relu",
    "hardtanh",
    "relu6",
    "softplus",
    "glu",
    "group_norm",
    "instance_norm",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "layer_norm",
    "batch_norm",
    "cross_entropy",
    "mse_loss",
    "binary_cross_entropy_with_logits",
]

conv2d = ops.conv2d
conv_transpose2d = ops.conv_transpose2d
avg_pool2d = ops.avg_pool2d
relu = ops.relu
sigmoid = ops.sigmoid
tanh = ops.tanh
adaptive_avg_pool2d = ops.adaptive_avg_pool2d


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Max over each (dilated) window; with ``return_indices``, also the flat index into
    H×W of each window's first maximum."""
    args = (kernel_size, stride, padding, dilation, ceil_mode)
    out = ops.max_pool2d(input, *args)
    return (out, ops.max_pool2d_indices(input, *args)) if return_indices else out


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """The maximum of each adaptive bin; with ``return_indices``, also the flat index into
    H×W of each bin's first maximum."""
    out = ops.adaptive_max_pool2d(input, output_size)
    if return_indices:
        return out, ops.adaptive_max_pool2d_indices(input, output_size)
    return out


def gelu(input, approximate: str = "none") -> Node:
    """x Φ(x), exact (through erf) or with PyTorch's tanh approximation."""
    return _act.gelu(input, approximate)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Node:
    """x for x > 0, alpha (exp(x) - 1) otherwise."""
    return _act.elu(input, alpha)


def selu(input, inplace: bool = False) -> Node:
    """scale · elu(x, alpha) with the self-normalizing constants."""
    return _act.selu(input)


def silu(input, inplace: bool = False) -> Node:
    """x · sigmoid(x)."""
    return _act.silu(input)


def mish(input, inplace: bool = False) -> Node:
    """x · tanh(softplus(x))."""
    return _act.mish(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Node:
    """x for x > 0, negative_slope · x otherwise."""
    return _act.leaky_relu(input, negative_slope)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Node:
    """x limited to [min_val, max_val], derivative 0 at the bounds."""
    return _act.hardtanh(input, min_val, max_val)


def relu6(input, inplace: bool = False) -> Node:
    """min(max(x, 0), 6)."""
    return _act.relu6(input)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Node:
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold."""
    return _act.softplus_beta(input, beta, threshold)


def glu(input, dim: int = -1) -> Node:
    """a · sigmoid(b), a and b the halves of the input along ``dim``."""
    return _act.glu(input, dim)


def softmax(x, dim: int = -1) -> Node:
    """softmax along ``dim``, computed stably."""
    return ops.softmax(x, axis=dim)


def log_softmax(x, dim: int = -1) -> Node:
    """log softmax along ``dim``, computed stably."""
    return ops.log_softmax(x, axis=dim)


def linear(x, weight, bias=None) -> Node:
    """x Wᵀ + b, with ``weight`` of shape (out_features, in_features)."""
    x, weight = as_node(x), as_node(weight)
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:]:
        raise ShapeError(f"linear: input {x.shape} does not match weight {weight.shape}")
    y = ops.matmul(x, ops.transpose(weight, (1, 0)))
    return y if bias is None else y + bias


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Node:
    """Normalize each sample over its last ``len(normalized_shape)`` dimensions."""
    x = as_node(x)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[-len(shape) :] != shape:
        raise ShapeError(f"layer_norm: input {x.shape} does not end with {shape}")
    xhat, _, _ = normalize(x, tuple(range(x.ndim - len(shape), x.ndim)), eps)
    if weight is not None:
        xhat = xhat * weight
    return xhat if bias is None else xhat + bias


def batch_norm(
    x, running_mean, running_var, weight=None, bias=None, training: bool = False, eps=1e-5
) -> Node:
    """Batch normalization over every axis but the channel axis 1: batch statistics when
    ``training``, the running statistics otherwise (which this form does not update)."""
    x = as_node(x)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        xhat, _, _ = normalize(x, axes, eps)
    else:
        mean = ops.reshape(as_node(running_mean), shape)
        var = ops.reshape(as_node(running_var), shape)
        xhat = (x - mean) / ops.sqrt(var + eps)
    if weight is not None:
        xhat = xhat * ops.reshape(as_node(weight), shape)
    return xhat if bias is None else xhat + ops.reshape(as_node(bias), shape)


def cross_entropy(
    input, target, ignore_index: int = -100, reduction: str = "mean", label_smoothing=0.0
) -> Node:
    """Cross-entropy from logits against class indices or probabilities."""
    return CrossEntropyLoss(ignore_index, reduction, label_smoothing)(input, target)


def mse_loss(input, target) -> Node:
    """mean of (input - target)²."""
    return MSELoss()(as_node(input), as_node(target))


def binary_cross_entropy_with_logits(input, target) -> Node:
    """The logistic loss of sigmoid(input), computed without overflow."""
    return BCEWithLogitsLoss()(as_node(input), as_node(target))

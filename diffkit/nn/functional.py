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
    H×W of each window's first maximum.

    Args:
        input: an NCHW or CHW node.
        kernel_size, stride, padding, dilation, ceil_mode: as :func:`diffkit.max_pool2d`'s.
        return_indices: also return the indices.

    Returns:
        Node, or ``(maxima, indices)`` with ``return_indices``.

    Raises:
        ShapeError: the input is not NCHW/CHW or is smaller than a window.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (1, 1, 2, 4))
    >>> y, i = F.max_pool2d(x, 2, return_indices=True)
    >>> at = {"x": [[[[1.0, 5.0, 2.0, 2.0], [3.0, 0.0, 2.0, 1.0]]]]}
    >>> dk.evaluate(y, at=at).tolist(), dk.evaluate(i, at=at).tolist()  # torch's
    ([[[[5.0, 2.0]]]], [[[[1, 2]]]])
    """
    args = (kernel_size, stride, padding, dilation, ceil_mode)
    out = ops.max_pool2d(input, *args)
    return (out, ops.max_pool2d_indices(input, *args)) if return_indices else out


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """The maximum of each adaptive bin; with ``return_indices``, also the flat index into
    H×W of each bin's first maximum.

    Args:
        input: an NCHW or CHW node.
        output_size: an int or a pair (an entry None keeps the input's size).
        return_indices: also return the indices.

    Returns:
        Node, or ``(maxima, indices)`` with ``return_indices``.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (1, 1, 1, 5))
    >>> y, i = F.adaptive_max_pool2d(x, (1, 2), return_indices=True)  # bins [0, 3), [2, 5)
    >>> at = {"x": [[[[1.0, 4.0, 2.0, 0.0, 3.0]]]]}
    >>> dk.evaluate(y, at=at).tolist(), dk.evaluate(i, at=at).tolist()
    ([[[[4.0, 3.0]]]], [[[[1, 4]]]])
    """
    out = ops.adaptive_max_pool2d(input, output_size)
    if return_indices:
        return out, ops.adaptive_max_pool2d_indices(input, output_size)
    return out


def gelu(input, approximate: str = "none") -> Node:
    """x Φ(x), exact (through erf) or with PyTorch's tanh approximation.

    Args:
        input: a node, or an array (taken as a constant).
        approximate: ``"none"`` (exact) or ``"tanh"``.

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.gelu(x), at={"x": [0.0, 1.0]}).tolist()  # Phi(1) = (1 + erf(1/sqrt 2))/2
    [0.0, 0.8413447460685429]
    """
    return _act.gelu(input, approximate)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Node:
    """x for x > 0, alpha (exp(x) - 1) otherwise.

    Args:
        input: a node, or an array (taken as a constant).
        alpha: the scale of the negative branch.
        inplace: PyTorch's argument, ignored (nodes are immutable).

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.elu(x), at={"x": [-1.0, 2.0]}).tolist()  # e^-1 - 1
    [-0.6321205588285577, 2.0]
    """
    return _act.elu(input, alpha)


def selu(input, inplace: bool = False) -> Node:
    """scale · elu(x, alpha) with the self-normalizing constants.

    Args:
        input: a node, or an array (taken as a constant).
        inplace: PyTorch's argument, ignored (nodes are immutable).

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.selu(x), at={"x": [0.0, 1.0]}).tolist()  # the scale
    [0.0, 1.0507009873554805]
    """
    return _act.selu(input)


def silu(input, inplace: bool = False) -> Node:
    """x · sigmoid(x).

    Args:
        input: a node, or an array (taken as a constant).
        inplace: PyTorch's argument, ignored (nodes are immutable).

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.silu(x), at={"x": [0.0, 2.0]}).tolist()  # 2 sigmoid(2)
    [0.0, 1.7615941559557646]
    """
    return _act.silu(input)


def mish(input, inplace: bool = False) -> Node:
    """x · tanh(softplus(x)).

    Args:
        input: a node, or an array (taken as a constant).
        inplace: PyTorch's argument, ignored (nodes are immutable).

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.mish(x), at={"x": [0.0, 1.0]}).tolist()  # tanh(ln(1 + e))
    [0.0, 0.8650983882673103]
    """
    return _act.mish(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Node:
    """x for x > 0, negative_slope · x otherwise.

    Args:
        input: a node, or an array (taken as a constant).
        negative_slope: the slope for x < 0.
        inplace: PyTorch's argument, ignored (nodes are immutable).

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.leaky_relu(x, 0.25), at={"x": [-2.0, 3.0]}).tolist()
    [-0.5, 3.0]
    """
    return _act.leaky_relu(input, negative_slope)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Node:
    """x limited to [min_val, max_val], derivative 0 at the bounds.

    Args:
        input: a node, or an array (taken as a constant).
        min_val, max_val: the bounds.
        inplace: PyTorch's argument, ignored (nodes are immutable).

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(F.hardtanh(x), at={"x": [-2.0, 0.5, 2.0]}).tolist()
    [-1.0, 0.5, 1.0]
    """
    return _act.hardtanh(input, min_val, max_val)


def relu6(input, inplace: bool = False) -> Node:
    """min(max(x, 0), 6).

    Args:
        input: a node, or an array (taken as a constant).
        inplace: PyTorch's argument, ignored (nodes are immutable).

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(F.relu6(x), at={"x": [-1.0, 3.0, 7.0]}).tolist()
    [0.0, 3.0, 6.0]
    """
    return _act.relu6(input)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Node:
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold.

    Args:
        input: a node, or an array (taken as a constant).
        beta: the sharpness.
        threshold: where beta x exceeds it, the result is x.

    Returns:
        Node: the activation of each entry, of ``input``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.softplus(x, beta=2.0), at={"x": [0.0, 30.0]}).tolist()  # ln(2)/2; linear
    [0.34657359027997264, 30.0]
    """
    return _act.softplus_beta(input, beta, threshold)


def glu(input, dim: int = -1) -> Node:
    """a · sigmoid(b), a and b the halves of the input along ``dim``.

    Args:
        input: a node, or an array (taken as a constant). Its length along ``dim`` is even.
        dim: the axis to halve.

    Returns:
        Node: ``input``'s shape, halved along ``dim``.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.glu(x), at={"x": [3.0, 0.0]}).tolist()  # 3 sigmoid(0)
    [1.5]
    """
    return _act.glu(input, dim)


def softmax(x, dim: int = -1) -> Node:
    """softmax along ``dim``, computed stably.

    Args:
        x: a node, or an array (taken as a constant).
        dim: the axis.

    Returns:
        Node: the probabilities, of ``x``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(F.softmax(x), at={"x": [0.0, 0.0, 0.0, 0.0]}).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    return ops.softmax(x, axis=dim)


def log_softmax(x, dim: int = -1) -> Node:
    """log softmax along ``dim``, computed stably.

    Args:
        x: a node, or an array (taken as a constant).
        dim: the axis.

    Returns:
        Node: the log-probabilities, of ``x``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.log_softmax(x), at={"x": [0.0, 0.0]}).tolist()  # -ln 2
    [-0.6931471805599453, -0.6931471805599453]
    """
    return ops.log_softmax(x, axis=dim)


def linear(x, weight, bias=None) -> Node:
    """x Wᵀ + b, with ``weight`` of shape (out_features, in_features).

    Args:
        x: a node or array, (..., in_features).
        weight: a node or array, (out_features, in_features).
        bias: a node or array, (out_features,), or None.

    Returns:
        Node: (..., out_features).

    Raises:
        ShapeError: the input does not match the weight.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (1, 3))
    >>> y = F.linear(x, np.ones((2, 3)), np.array([1.0, 2.0]))
    >>> dk.evaluate(y, at={"x": [[1.0, 1.0, 1.0]]}).tolist()
    [[4.0, 5.0]]
    """
    x, weight = as_node(x), as_node(weight)
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:]:
        raise ShapeError(f"linear: input {x.shape} does not match weight {weight.shape}")
    y = ops.matmul(x, ops.transpose(weight, (1, 0)))
    return y if bias is None else y + bias


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Node:
    """Normalize each sample over its last ``len(normalized_shape)`` dimensions.

    Args:
        x: a node, or an array (taken as a constant).
        normalized_shape: an int or a tuple: the trailing dimensions to normalize over.
        weight, bias: nodes or arrays of ``normalized_shape``, or None.
        eps: added to the variance.

    Returns:
        Node: the normalized ``x``.

    Raises:
        ShapeError: ``x`` does not end with ``normalized_shape``.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (1, 3))
    >>> dk.evaluate(F.layer_norm(x, 3, eps=0.0), at={"x": [[1.0, 2.0, 3.0]]}).tolist()
    [[-1.224744871391589, 0.0, 1.224744871391589]]
    """
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
    ``training``, the running statistics otherwise (which this form does not update).

    Args:
        x: a node, (N, C, ...).
        running_mean, running_var: arrays or nodes, (C,).
        weight, bias: arrays or nodes, (C,), or None.
        training: normalize by the batch's statistics instead of the running ones.
        eps: added to the variance.

    Returns:
        Node: the normalized ``x``.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2, 1))
    >>> y = F.batch_norm(x, np.zeros(1), np.ones(1), training=True, eps=0.0)
    >>> dk.evaluate(y, at={"x": [[1.0], [3.0]]}).tolist()  # mean 2, variance 1
    [[-1.0], [1.0]]
    """
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
    """Cross-entropy from logits against class indices or probabilities.

    Args:
        input: the logits, (N, C) (or (N, C, ...)).
        target: class indices (N,) or probabilities of ``input``'s shape.
        ignore_index: a target class that counts for nothing.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: the weight of the uniform distribution mixed into the target.

    Returns:
        Node: the loss.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> z = dk.variable("z", (1, 4))
    >>> dk.evaluate(F.cross_entropy(z, np.array([0])), at={"z": np.zeros((1, 4))})  # ln 4
    1.3862943611198906
    """
    return CrossEntropyLoss(ignore_index, reduction, label_smoothing)(input, target)


def mse_loss(input, target) -> Node:
    """mean of (input - target)².

    Args:
        input, target: nodes or arrays of one shape.

    Returns:
        Node: the mean squared difference.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(F.mse_loss(x, np.zeros(2)), at={"x": [1.0, 2.0]})  # (1 + 4) / 2
    2.5
    """
    return MSELoss()(as_node(input), as_node(target))


def binary_cross_entropy_with_logits(input, target) -> Node:
    """The logistic loss of sigmoid(input), computed without overflow.

    Args:
        input: the logits, a node or array.
        target: the targets in [0, 1], of ``input``'s shape.

    Returns:
        Node: the mean loss.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit.nn import functional as F
    >>> z = dk.variable("z", (2,))
    >>> loss = F.binary_cross_entropy_with_logits(z, np.array([1.0, 0.0]))
    >>> dk.evaluate(loss, at={"z": [0.0, 0.0]})  # ln 2
    0.6931471805599453
    """
    return BCEWithLogitsLoss()(as_node(input), as_node(target))

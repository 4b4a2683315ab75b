"""Activation functions of deep learning, as compositions of existing ops: GELU (exact and
tanh), ELU, SELU, SiLU, Mish, leaky ReLU, hardtanh, ReLU6, softplus with ``beta`` and
``threshold``, and GLU.

Each is a :class:`~diffkit.ir.op.Function`: its derivative comes from the ops it is built
of, and the registry tests check it from its samples. The conventions at the kinks are
PyTorch's: ELU, SELU and leaky ReLU take the negative branch's slope at 0; hardtanh and
ReLU6 have derivative 0 at (and beyond) their bounds and 1 strictly inside; softplus is
the identity where ``beta * x > threshold``. No branch that is not taken can overflow into
a NaN derivative: ``expm1`` only ever sees the non-positive inputs.

Each takes as few ``where`` as its infinities allow (numpy's ``where`` costs some thirty
multiplications): an infinite input gives PyTorch's value and derivative, never the NaN
of inf - inf or 0 · inf, and every finite value is PyTorch's exactly.
"""

from __future__ import annotations

import math

from ..ir.node import Node, ShapeError, as_node
from ..ir.op import Sample, function
from .comparison import clip, greater, less, relu, stop_gradient, where
from .joining import split
from .special import sigmoid, softplus as _softplus
from .transcendental import erf, expm1, tanh

__all__ = [
    "gelu",
    "elu",
    "selu",
    "silu",
    "mish",
    "leaky_relu",
    "hardtanh",
    "relu6",
    "softplus_beta",
    "glu",
]

_S = (Sample(((),)), Sample(((3, 4),)))
#: SELU's constants (Klambauer et al., 2017), as PyTorch spells them
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


@function("gelu", samples=_S + (Sample(((3, 4),), {"approximate": "tanh"}),))
def gelu(x, approximate: str = "none") -> Node:
    """x Φ(x), Φ the standard normal CDF (``approximate="none"``, through erf), or
    PyTorch's tanh form 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³)))."""
    x = as_node(x)
    if approximate == "none":
        return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))
        return 0.5 * x * (1.0 + tanh(inner))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _negative_part(x):
    # min(x, 0), with slope 1 at 0 (the negative branch's) and 0 at +inf
    return where(greater(x, 0.0), 0.0, x)


@function("elu", samples=_S + (Sample(((3, 4),), {"alpha": 0.5}),))
def elu(x, alpha: float = 1.0) -> Node:
    """x for x > 0, alpha (exp(x) - 1) otherwise; slope alpha at 0 (PyTorch)."""
    x = as_node(x)
    return relu(x) + float(alpha) * expm1(_negative_part(x))


@function("selu", samples=_S)
def selu(x) -> Node:
    """scale · elu(x, alpha) with SELU's self-normalizing constants."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


@function("silu", samples=_S)
def silu(x) -> Node:
    """x sigmoid(x) (the swish of slope 1)."""
    x = as_node(x)
    return x * sigmoid(x)


@function("mish", samples=_S)
def mish(x) -> Node:
    """x tanh(softplus(x))."""
    x = as_node(x)
    return x * tanh(_softplus(x))


@function("leaky_relu", samples=_S + (Sample(((3, 4),), {"negative_slope": 0.2}),))
def leaky_relu(x, negative_slope: float = 0.01) -> Node:
    """x for x > 0, negative_slope · x otherwise (slope negative_slope at 0, PyTorch)."""
    x = as_node(x)
    # x times a piecewise-constant factor: exact values, no 0 * inf
    return x * where(greater(x, 0.0), 1.0, float(negative_slope))


@function("hardtanh", samples=_S + (Sample(((3, 4),), {"min_val": -0.5, "max_val": 1.5}),))
def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Node:
    """x limited to [min_val, max_val]; derivative 1 strictly inside, 0 at the bounds and
    outside (PyTorch's, unlike ``clip`` whose derivative passes at the bounds)."""
    x = as_node(x)
    lo, hi = float(min_val), float(max_val)
    if lo > hi:
        raise ValueError(f"hardtanh: min_val {min_val} must not exceed max_val {max_val}")
    inside = greater(x, lo) * less(x, hi)
    return where(inside, x, clip(stop_gradient(x), lo, hi))


@function("relu6", samples=(Sample(((3, 4),), low=-3.0, high=9.0),))
def relu6(x) -> Node:
    """min(max(x, 0), 6), with hardtanh's derivative (0 at 0 and at 6)."""
    return hardtanh(x, 0.0, 6.0)


@function(
    "softplus_beta",
    samples=_S
    + (
        Sample(((3, 4),), {"beta": 2.0, "threshold": 1.0}),
        Sample(((3, 4),), {"beta": 0.5, "threshold": 0.5}),
    ),
)
def softplus_beta(x, beta: float = 1.0, threshold: float = 20.0) -> Node:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's
    ``softplus``, whose linear tail keeps the value exact)."""
    x = as_node(x)
    beta, threshold = float(beta), float(threshold)
    scaled = x * beta if beta != 1.0 else x
    smooth = _softplus(scaled)
    if beta != 1.0:
        smooth = smooth / beta
    return where(greater(scaled, threshold), x, smooth)


@function("glu", samples=(Sample(((3, 4),)), Sample(((2, 6, 3),), {"dim": 1})))
def glu(x, dim: int = -1) -> Node:
    """a · sigmoid(b), where a and b are the two halves of x along ``dim``."""
    x = as_node(x)
    if x.ndim == 0:
        raise ShapeError("glu: expected an input of at least one dimension, got a scalar")
    if not -x.ndim <= dim < x.ndim:
        raise ShapeError(f"glu: dim {dim} is out of range for an input of shape {x.shape}")
    if x.shape[dim] % 2:
        raise ShapeError(f"glu: halving dimension {dim} of shape {x.shape} needs an even size")
    a, b = split(x, 2, axis=dim)
    return a * sigmoid(b)

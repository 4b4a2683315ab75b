"""Activation functions of deep learning: GELU (exact and tanh), ELU, SELU, SiLU, Mish,
leaky ReLU, hardtanh, ReLU6, softplus with ``beta`` and ``threshold``, and GLU.

GELU, ELU, SiLU, leaky ReLU, hardtanh and softplus are elementwise op records, each run
by one fused numpy function, and so is each one's derivative (``gelu_grad``,
``elu_grad``...): a forward and backward pass is two passes of compiled numpy loops with
no ``where`` (numpy's ``where`` and masked copies cost some thirty multiplications on a
random mask); branches are joined by arithmetic that is exact (``m + (1 - m) v`` with a
0/1 mask ``m``, ``maximum``/``minimum``/``clip``). float32 stays float32: the exact GELU
of a float32 input takes its normal CDF from a fitted rational form of ``erfc`` in
float32 (some 5 units in the last place, against scipy's ``erf`` that runs element by
element in float64); every other dtype goes through scipy's ``erfc``. SELU, ReLU6, Mish
and GLU are compositions (:class:`~diffkit.ir.op.Function`).

The conventions at the kinks are PyTorch's: ELU, SELU and leaky ReLU take the negative
branch's slope at 0; hardtanh and ReLU6 have derivative 0 at (and beyond) their bounds
and 1 strictly inside; softplus is the identity where ``beta * x > threshold``. An
infinite input gives PyTorch's value and derivative wherever PyTorch gives a number
(never the NaN of inf - inf or 0 · inf).
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import scipy.special
import sympy

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import Sample, builds, function
from . import _taylor
from ._common import unary
from .comparison import greater, less_equal, where
from .joining import split
from .special import sigmoid, softplus as _softplus
from .transcendental import exp, tanh

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

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_K = math.sqrt(2.0 / math.pi)  # GELU's tanh form: tanh(k (x + c x^3))
_TANH_C = 0.044715


def _fused(impl):
    """``impl`` on a floating array of at least one dimension (its in-place steps need
    arrays, where numpy hands 0-d results back as scalars); a 0-d input gives a 0-d
    result."""

    @functools.wraps(impl)
    def run(x, **attrs):
        x = np.asarray(x)
        if x.dtype.kind not in "fc":
            x = x.astype(np.float64)
        if x.ndim == 0:
            return impl(x.reshape(1), **attrs).reshape(())
        return impl(x, **attrs)

    return run


def _at_least(x, bound, out=None):
    """max(x, bound), NaN kept: numpy's clip runs vectorized where maximum with a scalar
    runs element by element (three times slower on float32)."""
    return np.clip(x, bound, np.inf, out=out)


def _at_most(x, bound, out=None):
    """min(x, bound), NaN kept (as :func:`_at_least`)."""
    return np.clip(x, -np.inf, bound, out=out)


def _mask(condition, dtype):
    """A 0/1 array of ``dtype``."""
    return condition.astype(dtype)


def _join(m, a, b):
    """``a`` where the 0/1 mask ``m`` is 1, ``b`` where it is 0, exactly (``m a + (1 - m) b``
    with one of the products 0): ``a`` must be finite where ``m`` is 0 and ``b`` where it
    is 1."""
    out = 1 - m
    out *= b
    out += m if isinstance(a, float) and a == 1.0 else m * a
    return out


def _sp(v):
    """An attribute as SymPy reads it back from its printed form (0.01 as 1/100)."""
    v = float(v)
    return sympy.Rational(repr(v)) if math.isfinite(v) else sympy.sympify(v)


# ---- the normal CDF in float32 --------------------------------------------------------------

#: erf(x / sqrt 2) = tanh(x Q(x²)) for |x| <= 4.5 sqrt 2 (beyond, float32's erf is ±1): Q
#: fitted to artanh(erf(x / sqrt 2)) / x by iterated weighted least squares, weighted by
#: 1 - erf² (the slope of tanh), so that erf is within 1.5e-7 of scipy's once evaluated in
#: float32 (checked in tests/test_activation_ops.py); Φ = (1 + erf) / 2 has the absolute
#: accuracy of PyTorch's float32 form 0.5 (1 + erf(x / sqrt 2))
_ERF_Q = (
    0.7978848937291386,
    0.03633317316457497,
    -3.260259517005083e-05,
    -5.533296666718562e-05,
    3.974336865402776e-06,
    -1.3336127169525865e-07,
    1.795511826717612e-09,
)
_ERF_Q32 = tuple(np.float32(c) for c in _ERF_Q)
_ERF_X32 = np.float32(4.5 * math.sqrt(2.0))


def _erf32(x):
    """erf(x / sqrt 2) of float32 ``x``, in float32 loops."""
    xc = np.clip(x, -_ERF_X32, _ERF_X32)
    w = xc * xc
    acc = w * _ERF_Q32[-1]
    acc += _ERF_Q32[-2]
    for c in _ERF_Q32[-3::-1]:
        acc *= w
        acc += c
    acc *= xc
    return np.tanh(acc, out=acc)


def _cdf32(x):
    """Φ(x) and exp(-x²/2) of float32 ``x``."""
    cdf = _erf32(x)
    cdf *= np.float32(0.5)
    cdf += np.float32(0.5)
    q = x * x
    q *= np.float32(-0.5)
    return cdf, np.exp(q, out=q)


def _cdf(x):
    """Φ(x) and exp(-x²/2)."""
    if x.dtype == np.float32:
        return _cdf32(x)
    return 0.5 * scipy.special.erfc(-_SQRT_HALF * x), np.exp(-0.5 * (x * x))


# ---- GELU ----------------------------------------------------------------------------------


def _check_approximate(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _tanh_inner(x):
    inner = x * x
    inner *= _TANH_C
    inner += 1.0
    inner *= x
    inner *= _TANH_K
    return np.tanh(inner, out=inner)


@_fused
def _gelu_impl(x, approximate="none"):
    if approximate == "tanh":  # 0.5 x (1 + tanh(k (x + c x^3))), PyTorch's order
        t = _tanh_inner(x)
        t += 1.0
        t *= x
        t *= 0.5
        return t
    if x.dtype == np.float32:  # 0.5 x (1 + erf(x / sqrt 2)), PyTorch's form
        out = _erf32(x)
        out += np.float32(1.0)
        out *= x
        out *= np.float32(0.5)
        return out
    cdf, _ = _cdf(x)
    cdf *= x
    return cdf


@_fused
def _gelu_grad_impl(x, approximate="none"):
    if approximate == "tanh":
        # 0.5 (1 + t) + (0.5 x (1 - t^2)) k (1 + 3 c x^2), as PyTorch groups it
        t = _tanh_inner(x)
        right = 1.0 - t * t
        right *= 0.5 * x
        slope = x * x
        slope *= 3.0 * _TANH_C
        slope += 1.0
        slope *= _TANH_K
        right *= slope
        t += 1.0
        t *= 0.5
        t += right
        return t
    cdf, q = _cdf(x)
    q *= x
    q *= _INV_SQRT_2PI
    cdf += q  # Φ(x) + x φ(x)
    return cdf


def _gelu_mp(x, approximate="none"):
    if approximate == "tanh":
        return x * (1 + mpmath.tanh(mpmath.sqrt(2 / mpmath.pi) * (x + _TANH_C * x**3))) / 2
    return x * (1 + mpmath.erf(x / mpmath.sqrt(2))) / 2


#: beyond this |x| the exact GELU derivative is 0 or 1 to far more digits than any
#: truth needs (mpmath's exp(-x^2/2) would overflow Python's integer conversion first)
_MP_TAIL = 1e4


def _gelu_grad_mp(x, approximate="none"):
    if abs(x) > _MP_TAIL:
        return mpmath.mpf(1 if x > 0 else 0)
    if approximate == "tanh":
        k = mpmath.sqrt(2 / mpmath.pi)
        t = mpmath.tanh(k * (x + _TANH_C * x**3))
        return (1 + t) / 2 + x * (1 - t * t) * k * (1 + 3 * _TANH_C * x**2) / 2
    return (1 + mpmath.erf(x / mpmath.sqrt(2))) / 2 + x * mpmath.npdf(x)


def _gelu_sp(x, approximate="none"):
    if approximate == "tanh":
        k = sympy.sqrt(2 / sympy.pi)
        return x * (1 + sympy.tanh(k * (x + sympy.Float(_TANH_C) * x**3))) / 2
    return x * (1 + sympy.erf(x / sympy.sqrt(2))) / 2


def _gelu_grad_sp(x, approximate="none"):
    if approximate == "tanh":
        k = sympy.sqrt(2 / sympy.pi)
        c = sympy.Float(_TANH_C)
        t = sympy.tanh(k * (x + c * x**3))
        return (1 + t) / 2 + x * (1 - t**2) * k * (1 + 3 * c * x**2) / 2
    return (1 + sympy.erf(x / sympy.sqrt(2))) / 2 + x * sympy.exp(-(x**2) / 2) / sympy.sqrt(
        2 * sympy.pi
    )


def _gelu_grad_slope(x, out, approximate):
    """d/dx of gelu_grad, in IR ops."""
    if approximate == "tanh":
        # (1 - t^2) (k (1 + 3 c x^2) (1 - x t k (1 + 3 c x^2)) + 3 k c x^2)
        t = tanh(_TANH_K * (x + _TANH_C * (x * x * x)))
        slope = _TANH_K * (1.0 + 3.0 * _TANH_C * (x * x))
        return (1.0 - t * t) * (slope * (1.0 - x * t * slope) + 3.0 * _TANH_K * _TANH_C * (x * x))
    # d/dx (Φ + x φ) = φ (2 - x^2)
    return _INV_SQRT_2PI * exp(-0.5 * (x * x)) * (2.0 - x * x)


_GELU_SAMPLES = _S + (
    Sample(((3, 4),), {"approximate": "tanh"}),
    Sample(((),), {"approximate": "tanh"}),
    Sample(((2, 5),), low=-7.0, high=7.0),
)

GELU_GRAD = unary(
    "gelu_grad",
    _gelu_grad_impl,
    lambda ct, out, x, approximate="none": (ct * _gelu_grad_slope(x, out, approximate),),
    _gelu_grad_mp,
    _gelu_grad_sp,
    samples=_GELU_SAMPLES,
    analytic=False,
    doc="the derivative of gelu: Φ(x) + x φ(x), or its tanh form's",
)
GELU = unary(
    "gelu",
    _gelu_impl,
    # d/dx x Φ(x) = Φ(x) + x φ(x), one fused op
    lambda ct, out, x, approximate="none": (ct * apply(GELU_GRAD, x, approximate=approximate),),
    _gelu_mp,
    _gelu_sp,
    samples=_GELU_SAMPLES,
    analytic=False,
    doc="x Φ(x), Φ the standard normal CDF, or its tanh approximation",
)


@builds(GELU)
def gelu(x, approximate: str = "none") -> Node:
    """x Φ(x), Φ the standard normal CDF (``approximate="none"``), or PyTorch's tanh form
    0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))) (``approximate="tanh"``)."""
    _check_approximate(approximate)
    return apply(GELU, x, approximate=approximate)


# ---- ELU -----------------------------------------------------------------------------------


@_fused
def _elu_impl(x, alpha=1.0):
    # max(x, 0) + alpha expm1(min(x, 0)): expm1 never sees a positive input
    out = _at_most(x, 0.0)
    np.expm1(out, out=out)
    out *= alpha
    out += _at_least(x, 0.0)
    return out


@_fused
def _elu_grad_impl(x, alpha=1.0):
    # 1 for x > 0, alpha exp(x) otherwise (alpha at 0, PyTorch)
    e = _at_most(x, 0.0)
    np.exp(e, out=e)
    e *= alpha
    return _join(_mask(x > 0, x.dtype), 1.0, e)


def _kinks(*points):
    """A sample of points beside each kink, both sides (finite differences stay off it)."""
    values = np.array([p + d for p in points for d in (-0.25, -0.05, 0.05, 0.25)])
    return lambda rng: [values]


_ELU_SAMPLES = _S + (
    Sample(((3, 4),), {"alpha": 0.5}),
    Sample(((8,),), {"alpha": 1.7}, make=_kinks(0.0, 1.0)),
)

ELU_GRAD = unary(
    "elu_grad",
    _elu_grad_impl,
    # d/dx: alpha exp(x) = out for x <= 0, 0 for x > 0
    lambda ct, out, x, alpha=1.0: (ct * out * less_equal(x, 0.0),),
    lambda x, alpha=1.0: mpmath.mpf(1) if x > 0 else alpha * mpmath.exp(x),
    lambda x, alpha=1.0: sympy.Piecewise((1, x > 0), (_sp(alpha) * sympy.exp(x), True)),
    samples=_ELU_SAMPLES,
    analytic=False,
    discontinuous=True,  # jumps from alpha to 1 at 0
    doc="the derivative of elu: 1 for x > 0, alpha exp(x) otherwise",
)
ELU = unary(
    "elu",
    _elu_impl,
    lambda ct, out, x, alpha=1.0: (ct * apply(ELU_GRAD, x, alpha=alpha),),
    lambda x, alpha=1.0: x if x > 0 else alpha * mpmath.expm1(x),
    lambda x, alpha=1.0: sympy.Piecewise((x, x > 0), (_sp(alpha) * (sympy.exp(x) - 1), True)),
    samples=_ELU_SAMPLES,
    analytic=False,
    doc="x for x > 0, alpha (exp(x) - 1) otherwise; slope alpha at 0",
)


@builds(ELU)
def elu(x, alpha: float = 1.0) -> Node:
    """x for x > 0, alpha (exp(x) - 1) otherwise; slope alpha at 0 (PyTorch)."""
    return apply(ELU, x, alpha=float(alpha))


@function("selu", samples=_S)
def selu(x) -> Node:
    """scale · elu(x, alpha) with SELU's self-normalizing constants."""
    return SELU_SCALE * elu(x, SELU_ALPHA)


# ---- SiLU ----------------------------------------------------------------------------------


@_fused
def _silu_impl(x):
    # x / (1 + exp(-x)), PyTorch's form; exp(-x) = inf gives -0 far left
    d = np.negative(x)
    np.exp(d, out=d)
    d += 1.0
    return np.divide(x, d, out=d)


@_fused
def _silu_grad_impl(x):
    # s (1 + x (1 - s)), s = sigmoid(x), as PyTorch
    s = np.negative(x)
    np.exp(s, out=s)
    s += 1.0
    np.reciprocal(s, out=s)
    out = 1.0 - s
    out *= x
    out += 1.0
    out *= s
    return out


def _silu_grad_slope(x):
    # d/dx s (1 + x (1 - s)) = s (1 - s) (2 + x (1 - 2 s))
    s = sigmoid(x)
    return s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


SILU_GRAD = unary(
    "silu_grad",
    _silu_grad_impl,
    lambda ct, out, x: (ct * _silu_grad_slope(x),),
    lambda x: (1 + mpmath.exp(-x) * (1 + x)) / (1 + mpmath.exp(-x)) ** 2,
    lambda x: (1 + sympy.exp(-x) * (1 + x)) / (1 + sympy.exp(-x)) ** 2,
    samples=_S + (Sample(((2, 5),), low=-9.0, high=9.0),),
    analytic=False,
    doc="the derivative of silu: s (1 + x (1 - s)), s = sigmoid(x)",
)
SILU = unary(
    "silu",
    _silu_impl,
    lambda ct, out, x: (ct * apply(SILU_GRAD, x),),
    lambda x: x / (1 + mpmath.exp(-x)),
    lambda x: x / (1 + sympy.exp(-x)),
    samples=_S + (Sample(((2, 5),), low=-9.0, high=9.0),),
    analytic=False,
    doc="x sigmoid(x) (the swish of slope 1)",
)


@builds(SILU)
def silu(x) -> Node:
    """x sigmoid(x) (the swish of slope 1)."""
    return apply(SILU, x)


@function("mish", samples=_S)
def mish(x) -> Node:
    """x tanh(softplus(x))."""
    x = as_node(x)
    return x * tanh(_softplus(x))


# ---- leaky ReLU ----------------------------------------------------------------------------


@_fused
def _leaky_impl(x, negative_slope=0.01):
    s = negative_slope
    if s == 0.0:
        return _at_least(x, 0.0)  # no 0 · inf
    # x > 0 ? x : s x is max(x, s x) for s <= 1 and min(x, s x) for s > 1
    sx = x * s
    return np.maximum(x, sx, out=sx) if s <= 1.0 else np.minimum(x, sx, out=sx)


@_fused
def _leaky_grad_impl(x, negative_slope=0.01):
    return _join(_mask(x > 0, x.dtype), 1.0, negative_slope)


def _zero_vjp(ct, out, x, **_):
    return (None,)  # piecewise constant: derivative 0


def _step_grad(name, impl, mp, sp, samples, doc):
    """The record of a piecewise-constant derivative (derivative zero, jumps at kinks)."""
    zero = tuple(Sample(s.shapes, s.attrs, make=s.make, zero_derivative=True) for s in samples)
    return unary(
        name,
        impl,
        vjp=_zero_vjp,
        mp=mp,
        sp=sp,
        samples=zero,
        analytic=False,
        discontinuous=True,
        doc=doc,
        rules={"taylor": _taylor.JVP_EACH},
    )


_LEAKY_SAMPLES = _S + (
    Sample(((3, 4),), {"negative_slope": 0.2}),
    Sample(((8,),), {"negative_slope": -0.5}, make=_kinks(0.0, 1.0)),
    Sample(((8,),), {"negative_slope": 3.0}, make=_kinks(0.0, 1.0)),
)

LEAKY_RELU_GRAD = _step_grad(
    "leaky_relu_grad",
    _leaky_grad_impl,
    lambda x, negative_slope=0.01: mpmath.mpf(1) if x > 0 else mpmath.mpf(negative_slope),
    lambda x, negative_slope=0.01: sympy.Piecewise((1, x > 0), (_sp(negative_slope), True)),
    _LEAKY_SAMPLES,
    "the derivative of leaky_relu: 1 for x > 0, negative_slope otherwise",
)
LEAKY_RELU = unary(
    "leaky_relu",
    _leaky_impl,
    lambda ct, out, x, negative_slope=0.01: (
        ct * apply(LEAKY_RELU_GRAD, x, negative_slope=negative_slope),
    ),
    lambda x, negative_slope=0.01: x if x > 0 else negative_slope * x,
    lambda x, negative_slope=0.01: sympy.Piecewise((x, x > 0), (_sp(negative_slope) * x, True)),
    samples=_LEAKY_SAMPLES,
    analytic=False,
    doc="x for x > 0, negative_slope x otherwise; slope negative_slope at 0",
    rules={"taylor": _taylor.JVP_EACH},
)


@builds(LEAKY_RELU)
def leaky_relu(x, negative_slope: float = 0.01) -> Node:
    """x for x > 0, negative_slope · x otherwise (slope negative_slope at 0, PyTorch)."""
    return apply(LEAKY_RELU, x, negative_slope=float(negative_slope))


# ---- hardtanh, ReLU6 -----------------------------------------------------------------------


@_fused
def _hardtanh_impl(x, min_val=-1.0, max_val=1.0):
    return np.clip(x, min_val, max_val)


@_fused
def _hardtanh_grad_impl(x, min_val=-1.0, max_val=1.0):
    # 0 at and beyond the bounds, 1 elsewhere (NaN included), as PyTorch
    outside = x <= min_val
    outside |= x >= max_val
    return _mask(np.logical_not(outside, out=outside), x.dtype)


_HARDTANH_SAMPLES = _S + (
    Sample(((3, 4),), {"min_val": -0.5, "max_val": 1.5}),
    Sample(((8,),), {"min_val": -1.0, "max_val": 1.0}, make=_kinks(-1.0, 1.0)),
    Sample(((8,),), {"min_val": 0.0, "max_val": 6.0}, make=_kinks(0.0, 6.0)),
)

HARDTANH_GRAD = _step_grad(
    "hardtanh_grad",
    _hardtanh_grad_impl,
    lambda x, min_val=-1.0, max_val=1.0: mpmath.mpf(1 if min_val < x < max_val else 0),
    lambda x, min_val=-1.0, max_val=1.0: (
        sympy.Piecewise((1, x > _sp(min_val)), (0, True))
        * sympy.Piecewise((1, x < _sp(max_val)), (0, True))
    ),
    _HARDTANH_SAMPLES,
    "the derivative of hardtanh: 1 strictly inside (min_val, max_val), 0 elsewhere",
)
HARDTANH = unary(
    "hardtanh",
    _hardtanh_impl,
    lambda ct, out, x, min_val=-1.0, max_val=1.0: (
        ct * apply(HARDTANH_GRAD, x, min_val=min_val, max_val=max_val),
    ),
    lambda x, min_val=-1.0, max_val=1.0: (
        x if mpmath.isnan(x) else min(max(x, mpmath.mpf(min_val)), mpmath.mpf(max_val))
    ),
    lambda x, min_val=-1.0, max_val=1.0: sympy.Min(sympy.Max(x, _sp(min_val)), _sp(max_val)),
    samples=_HARDTANH_SAMPLES,
    analytic=False,
    doc="x limited to [min_val, max_val]; derivative 0 at the bounds",
    rules={"taylor": _taylor.JVP_EACH},
)


@builds(HARDTANH)
def hardtanh(x, min_val: float = -1.0, max_val: float = 1.0) -> Node:
    """x limited to [min_val, max_val]; derivative 1 strictly inside, 0 at the bounds and
    outside (PyTorch's, unlike ``clip`` whose derivative passes at the bounds)."""
    lo, hi = float(min_val), float(max_val)
    if lo > hi:
        raise ValueError(f"hardtanh: min_val {min_val} must not exceed max_val {max_val}")
    return apply(HARDTANH, x, min_val=lo, max_val=hi)


@function("relu6", samples=(Sample(((3, 4),), low=-3.0, high=9.0),))
def relu6(x) -> Node:
    """min(max(x, 0), 6), with hardtanh's derivative (0 at 0 and at 6)."""
    return hardtanh(x, 0.0, 6.0)


# ---- softplus with beta and threshold ------------------------------------------------------


def _softplus_parts(x, beta, threshold):
    """beta x clipped to at most ``threshold`` (finite wherever the smooth branch is
    dropped), and the 0/1 mask of beta x > threshold (PyTorch's linear branch)."""
    z = x * beta if beta != 1.0 else x
    m = _mask(z > threshold, x.dtype)
    return _at_most(z, threshold), m


@_fused
def _softplus_beta_impl(x, beta=1.0, threshold=20.0):
    z, m = _softplus_parts(x, beta, threshold)
    # log(1 + e^z) / beta = (max(z, 0) + log1p(e^-|z|)) / beta where beta x <= threshold
    smooth = np.abs(z)
    np.negative(smooth, out=smooth)
    np.exp(smooth, out=smooth)
    np.log1p(smooth, out=smooth)
    smooth += _at_least(z, 0.0, out=z)
    if beta != 1.0:
        smooth /= beta
    # x where beta x > threshold: there x > threshold / beta, so max(x, threshold / beta)
    # is x, finite (-inf is not taken) where the smooth branch is
    linear = _at_least(x, threshold / beta)
    return _join(m, linear, smooth)


@_fused
def _softplus_beta_grad_impl(x, beta=1.0, threshold=20.0):
    z, m = _softplus_parts(x, beta, threshold)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)  # sigmoid(beta x)
    return _join(m, 1.0, z)


def _softplus_beta_mp(x, beta=1.0, threshold=20.0):
    if beta * x > threshold:
        return x
    return mpmath.log1p(mpmath.exp(beta * x)) / beta


def _softplus_beta_grad_mp(x, beta=1.0, threshold=20.0):
    return mpmath.mpf(1) if beta * x > threshold else 1 / (1 + mpmath.exp(-beta * x))


_SOFTPLUS_SAMPLES = _S + (
    Sample(((3, 4),), {"beta": 2.0, "threshold": 1.0}),
    Sample(((3, 4),), {"beta": 0.5, "threshold": 0.5}),
    Sample(((8,),), {"beta": 2.0, "threshold": 3.0}, make=_kinks(1.5, -1.5)),
)

SOFTPLUS_BETA_GRAD = unary(
    "softplus_beta_grad",
    _softplus_beta_grad_impl,
    # d/dx sigmoid(beta x) = beta out (1 - out), 0 on the linear branch (where out = 1)
    lambda ct, out, x, beta=1.0, threshold=20.0: (ct * (beta * out * (1.0 - out)),),
    _softplus_beta_grad_mp,
    lambda x, beta=1.0, threshold=20.0: sympy.Piecewise(
        (1, _sp(beta) * x > _sp(threshold)), (1 / (1 + sympy.exp(-_sp(beta) * x)), True)
    ),
    samples=_SOFTPLUS_SAMPLES,
    analytic=False,
    discontinuous=True,  # jumps to 1 at the threshold
    doc="the derivative of softplus_beta: sigmoid(beta x), 1 where beta x > threshold",
)
SOFTPLUS_BETA = unary(
    "softplus_beta",
    _softplus_beta_impl,
    lambda ct, out, x, beta=1.0, threshold=20.0: (
        ct * apply(SOFTPLUS_BETA_GRAD, x, beta=beta, threshold=threshold),
    ),
    _softplus_beta_mp,
    lambda x, beta=1.0, threshold=20.0: sympy.Piecewise(
        (x, _sp(beta) * x > _sp(threshold)),
        (sympy.log(1 + sympy.exp(_sp(beta) * x)) / _sp(beta), True),
    ),
    samples=_SOFTPLUS_SAMPLES,
    analytic=False,
    discontinuous=True,  # the linear branch meets the smooth one with a small jump
    doc="log(1 + exp(beta x)) / beta, and x where beta x > threshold",
)


@builds(SOFTPLUS_BETA)
def softplus_beta(x, beta: float = 1.0, threshold: float = 20.0) -> Node:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's
    ``softplus``, whose linear tail keeps the value exact)."""
    beta, threshold = float(beta), float(threshold)
    if beta > 0 and math.isfinite(beta):
        return apply(SOFTPLUS_BETA, x, beta=beta, threshold=threshold)
    # any other beta: the branches joined by where (the record's join needs beta > 0)
    x = as_node(x)
    scaled = x * beta
    return where(greater(scaled, threshold), x, _softplus(scaled) / beta)


# ---- GLU -----------------------------------------------------------------------------------


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

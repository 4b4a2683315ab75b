"""Transcendental functions: exponentials and logarithms, trigonometric and hyperbolic
functions and their inverses, roots, the error function, and the binary ``arctan2``,
``hypot`` and ``logaddexp``.

Every one is analytic where it is defined, so its numpy form also runs on complex
arrays for the complex-step method. Where numpy's complex version loses accuracy for
the tiny imaginary parts the complex step uses (``log1p``, ``expm1``) or has no complex
version (``cbrt``, ``hypot``, ``arctan2``, ``logaddexp``), the analytic continuation
of the real function is written out. The error functions come from ``scipy.special``.
"""

from __future__ import annotations

import mpmath
import numpy as np
import scipy.special
import sympy
from sympy.codegen import cfunctions, numpy_nodes

from ..ir.node import apply, math_const
from ..ir.op import Sample
from . import _taylor
from ._common import POS, binary, binary_samples, unary
from .arithmetic import neg
from .comparison import SYMPY_ABS, SYMPY_SIGN

__all__ = [
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "arcsinh",
    "arccosh",
    "arctanh",
    "sqrt",
    "cbrt",
    "erf",
    "erfc",
    "arctan2",
    "hypot",
    "logaddexp",
]


def _log_builder(x, base=None):
    """Natural logarithm; with ``base``, the logarithm to that base.

    Args:
        x: a node, or a number or array (taken as a constant).
        base: the base (a number or node); None for e.

    Returns:
        Node: the logarithm of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.log(x, base=2), at={"x": 8.0})
    3.0
    >>> dk.derivative(dk.log(x), "x", at={"x": 4.0})  # 1/x
    0.25
    """
    if base is None:
        return apply("log", x)
    return apply("div", apply("log", x), apply("log", base))


# exact constants of the rules (nodes, so that mpmath and SymPy see ln 2, not its float)
def _ln(base):
    return log(base)


def _two_over_sqrt_pi():
    return 2 / sqrt(math_const("pi"))


def _samples(low, high):
    return (Sample(((),), low=low, high=high), Sample(((3, 4),), low=low, high=high))


def _away_from_zero(rng, shape, low=0.3, high=2.0):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(low, high, shape)


# ---- exponentials and logarithms ---------------------------------------------------------


def _log1p_impl(x):
    if x.dtype.kind != "c":
        return np.log1p(x)
    # log|1+z| = log1p(2a + a^2 + b^2)/2 keeps the real part of small z = a + ib
    a, b = x.real, x.imag
    return 0.5 * np.log1p(a * (2 + a) + b * b) + 1j * np.arctan2(b, 1 + a)


def _expm1_impl(x):
    if x.dtype.kind != "c":
        return np.expm1(x)
    # e^(a+ib) - 1 = expm1(a) cos b - 2 sin^2(b/2) + i e^a sin b
    a, b = x.real, x.imag
    return np.expm1(a) * np.cos(b) - 2 * np.sin(b / 2) ** 2 + 1j * np.exp(a) * np.sin(b)


EXP = unary(
    "exp",
    np.exp,
    lambda ct, out, x: (ct * out,),  # d/dx e^x = e^x
    mpmath.exp,
    sympy.exp,
    doc="e ** x",
    numpy=(np.exp,),
    sympy_from=(sympy.exp,),
    rules={"taylor": _taylor.exp_rule},
)
EXP2 = unary(
    "exp2",
    np.exp2,
    lambda ct, out, x: (ct * out * _ln(2),),  # d/dx 2^x = 2^x ln 2
    lambda x: mpmath.power(2, x),
    cfunctions.exp2,
    doc="2 ** x",
    numpy=(np.exp2,),
    sympy_from=(cfunctions.exp2,),
    rules={"taylor": _taylor.exp2_rule},
)
EXPM1 = unary(
    "expm1",
    _expm1_impl,
    lambda ct, out, x: (ct * (out + 1),),  # d/dx (e^x - 1) = e^x
    mpmath.expm1,
    cfunctions.expm1,
    doc="e ** x - 1, accurate for small x",
    numpy=(np.expm1,),
    sympy_from=(cfunctions.expm1,),
    rules={"taylor": _taylor.expm1_rule},
)
LOG = unary(
    "log",
    np.log,
    lambda ct, out, x: (ct / x,),  # d/dx log x = 1/x
    mpmath.log,
    sympy.log,
    samples=_samples(**POS),
    doc="natural logarithm",
    names=("ln",),
    numpy=(np.log,),
    sympy_from=(sympy.log,),
    arity=(1, 2),
    builder=_log_builder,
    rules={"taylor": _taylor.log_rule},
)
LOG2 = unary(
    "log2",
    np.log2,
    lambda ct, out, x: (ct / (x * _ln(2)),),  # d/dx log2 x = 1/(x ln 2)
    lambda x: mpmath.log(x, 2),
    cfunctions.log2,
    samples=_samples(**POS),
    doc="base-2 logarithm",
    numpy=(np.log2,),
    sympy_from=(cfunctions.log2,),
    rules={"taylor": _taylor.log2_rule},
)
LOG10 = unary(
    "log10",
    np.log10,
    lambda ct, out, x: (ct / (x * _ln(10)),),  # d/dx log10 x = 1/(x ln 10)
    mpmath.log10,
    cfunctions.log10,
    samples=_samples(**POS),
    doc="base-10 logarithm",
    numpy=(np.log10,),
    sympy_from=(cfunctions.log10,),
    rules={"taylor": _taylor.log10_rule},
)
LOG1P = unary(
    "log1p",
    _log1p_impl,
    lambda ct, out, x: (ct / (1 + x),),  # d/dx log(1+x) = 1/(1+x)
    mpmath.log1p,
    cfunctions.log1p,
    samples=_samples(-0.5, 2.0),
    doc="log(1 + x), accurate for small x",
    numpy=(np.log1p,),
    sympy_from=(cfunctions.log1p,),
    rules={"taylor": _taylor.log1p_rule},
)

# ---- trigonometric functions and their inverses --------------------------------------------

SIN = unary(
    "sin",
    np.sin,
    lambda ct, out, x: (ct * cos(x),),  # d/dx sin x = cos x
    mpmath.sin,
    sympy.sin,
    doc="sine",
    numpy=(np.sin,),
    sympy_from=(sympy.sin,),
    rules={"taylor": _taylor.sin_rule},
)
COS = unary(
    "cos",
    np.cos,
    lambda ct, out, x: (neg(ct * sin(x)),),  # d/dx cos x = -sin x
    mpmath.cos,
    sympy.cos,
    doc="cosine",
    numpy=(np.cos,),
    sympy_from=(sympy.cos,),
    rules={"taylor": _taylor.cos_rule},
)
TAN = unary(
    "tan",
    np.tan,
    lambda ct, out, x: (ct * (1 + out * out),),  # d/dx tan x = 1 + tan^2 x
    mpmath.tan,
    sympy.tan,
    samples=_samples(-1.2, 1.2),
    doc="tangent",
    numpy=(np.tan,),
    sympy_from=(sympy.tan,),
    rules={"taylor": _taylor.tan_rule},
)
ARCSIN = unary(
    "arcsin",
    np.arcsin,
    lambda ct, out, x: (ct / sqrt(1 - x * x),),  # d/dx asin x = 1/sqrt(1 - x^2)
    mpmath.asin,
    sympy.asin,
    samples=_samples(-0.9, 0.9),
    doc="inverse sine, in [-pi/2, pi/2]",
    names=("asin",),
    numpy=(np.arcsin,),
    sympy_from=(sympy.asin,),
    rules={"taylor": _taylor.arcsin_rule},
)
ARCCOS = unary(
    "arccos",
    np.arccos,
    lambda ct, out, x: (neg(ct / sqrt(1 - x * x)),),  # d/dx acos x = -1/sqrt(1 - x^2)
    mpmath.acos,
    sympy.acos,
    samples=_samples(-0.9, 0.9),
    doc="inverse cosine, in [0, pi]",
    names=("acos",),
    numpy=(np.arccos,),
    sympy_from=(sympy.acos,),
    rules={"taylor": _taylor.arccos_rule},
)
ARCTAN = unary(
    "arctan",
    np.arctan,
    lambda ct, out, x: (ct / (1 + x * x),),  # d/dx atan x = 1/(1 + x^2)
    mpmath.atan,
    sympy.atan,
    doc="inverse tangent",
    names=("atan",),
    numpy=(np.arctan,),
    sympy_from=(sympy.atan,),
    rules={"taylor": _taylor.arctan_rule},
)

# ---- hyperbolic functions and their inverses -----------------------------------------------

SINH = unary(
    "sinh",
    np.sinh,
    lambda ct, out, x: (ct * cosh(x),),  # d/dx sinh x = cosh x
    mpmath.sinh,
    sympy.sinh,
    doc="hyperbolic sine",
    numpy=(np.sinh,),
    sympy_from=(sympy.sinh,),
    rules={"taylor": _taylor.sinh_rule},
)
COSH = unary(
    "cosh",
    np.cosh,
    lambda ct, out, x: (ct * sinh(x),),  # d/dx cosh x = sinh x
    mpmath.cosh,
    sympy.cosh,
    doc="hyperbolic cosine",
    numpy=(np.cosh,),
    sympy_from=(sympy.cosh,),
    rules={"taylor": _taylor.cosh_rule},
)
TANH = unary(
    "tanh",
    np.tanh,
    lambda ct, out, x: (ct * (1 - out * out),),  # d/dx tanh x = 1 - tanh^2 x
    mpmath.tanh,
    sympy.tanh,
    doc="hyperbolic tangent",
    numpy=(np.tanh,),
    sympy_from=(sympy.tanh,),
    rules={"taylor": _taylor.tanh_rule},
)
ARCSINH = unary(
    "arcsinh",
    np.arcsinh,
    lambda ct, out, x: (ct / sqrt(x * x + 1),),  # d/dx asinh x = 1/sqrt(x^2 + 1)
    mpmath.asinh,
    sympy.asinh,
    doc="inverse hyperbolic sine",
    names=("asinh",),
    numpy=(np.arcsinh,),
    sympy_from=(sympy.asinh,),
    rules={"taylor": _taylor.arcsinh_rule},
)
ARCCOSH = unary(
    "arccosh",
    np.arccosh,
    # d/dx acosh x = 1/(sqrt(x - 1) sqrt(x + 1))
    lambda ct, out, x: (ct / (sqrt(x - 1) * sqrt(x + 1)),),
    mpmath.acosh,
    sympy.acosh,
    samples=_samples(1.2, 3.0),
    doc="inverse hyperbolic cosine, for x >= 1",
    names=("acosh",),
    numpy=(np.arccosh,),
    sympy_from=(sympy.acosh,),
    rules={"taylor": _taylor.arccosh_rule},
)
ARCTANH = unary(
    "arctanh",
    np.arctanh,
    lambda ct, out, x: (ct / (1 - x * x),),  # d/dx atanh x = 1/(1 - x^2)
    mpmath.atanh,
    sympy.atanh,
    samples=_samples(-0.9, 0.9),
    doc="inverse hyperbolic tangent, for abs(x) < 1",
    names=("atanh",),
    numpy=(np.arctanh,),
    sympy_from=(sympy.atanh,),
    rules={"taylor": _taylor.arctanh_rule},
)

# ---- roots and the error function -----------------------------------------------------------


def _cbrt_impl(x):
    if x.dtype.kind != "c":
        return np.cbrt(x)
    # the real cube root continued analytically: -(-z)^(1/3) on the left half-plane
    left = x.real < 0
    return np.where(left, -((-x) ** (1 / 3)), x ** (1 / 3))


def _real_cbrt_mp(x):
    return -mpmath.cbrt(-x) if x < 0 else mpmath.cbrt(x)


SQRT = unary(
    "sqrt",
    np.sqrt,
    lambda ct, out, x: (ct * 0.5 / out,),  # d/dx sqrt x = 1/(2 sqrt x)
    mpmath.sqrt,
    sympy.sqrt,
    samples=_samples(**POS),
    doc="square root",
    numpy=(np.sqrt,),
    rules={"taylor": _taylor.sqrt_rule},
)
CBRT = unary(
    "cbrt",
    _cbrt_impl,
    lambda ct, out, x: (ct / (3 * out * out),),  # d/dx x^(1/3) = 1/(3 x^(2/3))
    _real_cbrt_mp,
    lambda x: SYMPY_SIGN(x) * SYMPY_ABS(x) ** sympy.Rational(1, 3),
    samples=(
        Sample(((),), make=lambda rng: [_away_from_zero(rng, ())]),
        Sample(((3, 4),), make=lambda rng: [_away_from_zero(rng, (3, 4))]),
    ),
    doc="real cube root (negative for negative x)",
    numpy=(np.cbrt,),
    rules={"taylor": _taylor.cbrt_rule},
)
ERF = unary(
    "erf",
    scipy.special.erf,
    # d/dx erf x = 2/sqrt(pi) e^(-x^2)
    lambda ct, out, x: (ct * _two_over_sqrt_pi() * exp(neg(x * x)),),
    mpmath.erf,
    sympy.erf,
    doc="the error function",
    numpy=(scipy.special.erf,),
    sympy_from=(sympy.erf,),
    rules={"taylor": _taylor.erf_rule},
)
ERFC = unary(
    "erfc",
    scipy.special.erfc,
    # d/dx erfc x = -2/sqrt(pi) e^(-x^2)
    lambda ct, out, x: (neg(ct * _two_over_sqrt_pi() * exp(neg(x * x))),),
    mpmath.erfc,
    sympy.erfc,
    doc="1 - erf x, accurate where erf x is near 1",
    numpy=(scipy.special.erfc,),
    sympy_from=(sympy.erfc,),
    rules={"taylor": _taylor.erfc_rule},
)

# ---- binary functions ------------------------------------------------------------------------


def _arctan2_impl(y, x):
    if np.result_type(y, x).kind != "c":
        return np.arctan2(y, x)
    # atan(y/x), shifted by pi on the left half-plane, continued analytically
    y, x = np.broadcast_arrays(y, x)
    base = np.arctan(y / x)
    shift = np.where(x.real < 0, np.where(y.real < 0, -np.pi, np.pi), 0.0)
    at_axis = (x.real == 0) & (x.imag == 0)
    return np.where(at_axis, np.arctan2(y.real, 0.0), base + shift)


def _hypot_impl(a, b):
    if np.result_type(a, b).kind != "c":
        return np.hypot(a, b)
    return np.sqrt(a * a + b * b)


def _logaddexp_impl(a, b):
    if np.result_type(a, b).kind != "c":
        return np.logaddexp(a, b)
    m = np.maximum(np.real(a), np.real(b))
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.exp(a - m) + np.exp(b - m))


def _arctan2_vjp(ct, out, y, x):
    # d atan2(y, x) = (x dy - y dx) / (x^2 + y^2)
    r2 = x * x + y * y
    return ct * x / r2, neg(ct * y / r2)


ARCTAN2 = binary(
    "arctan2",
    _arctan2_impl,
    _arctan2_vjp,
    mpmath.atan2,
    sympy.atan2,
    samples=(
        Sample(((), ()), make=lambda rng: [_away_from_zero(rng, ()), rng.uniform(0.3, 2)]),
        Sample(
            ((3, 4), (3, 4)),
            make=lambda rng: [rng.uniform(-2, 2, (3, 4)), rng.uniform(0.3, 2, (3, 4))],
        ),
        Sample(
            ((2, 3), (3,)),
            make=lambda rng: [rng.uniform(0.3, 2, (2, 3)), _away_from_zero(rng, (3,))],
        ),
    ),
    doc="the angle of the point (x, y), in (-pi, pi]",
    names=("atan2",),
    numpy=(np.arctan2,),
    sympy_from=(sympy.atan2,),
    rules={"taylor": _taylor.arctan2_rule},
)
HYPOT = binary(
    "hypot",
    _hypot_impl,
    lambda ct, out, a, b: (ct * a / out, ct * b / out),  # d sqrt(a^2+b^2) = (a da + b db)/r
    mpmath.hypot,
    cfunctions.hypot,
    samples=binary_samples(low=0.3, high=2.0),
    doc="sqrt(a^2 + b^2), without overflow",
    numpy=(np.hypot,),
    sympy_from=(cfunctions.hypot,),
    rules={"taylor": _taylor.hypot_rule},
)
LOGADDEXP = binary(
    "logaddexp",
    _logaddexp_impl,
    # d log(e^a + e^b) = e^(a - out) da + e^(b - out) db
    lambda ct, out, a, b: (ct * exp(a - out), ct * exp(b - out)),
    lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b)),
    numpy_nodes.logaddexp,
    doc="log(e^a + e^b), without overflow",
    numpy=(np.logaddexp,),
    sympy_from=(numpy_nodes.logaddexp,),
    rules={"taylor": _taylor.logaddexp_rule},
)


_UNARY_DOC = """{summary}

Args:
    x: a node, or a number or array (taken as a constant).

Returns:
    Node: the op applied to each entry, of ``x``'s shape.

>>> import diffkit as dk
>>> x = dk.variable("x")
{example}
"""


def _builder(record, summary, example):
    """The builder of the unary op ``record``; ``example`` holds doctest lines that use
    the scalar variable ``x``, with their expected output (a known value)."""

    def build(x):
        return apply(record, x)

    build.__name__ = record.name
    build.__qualname__ = record.name
    build.__doc__ = _UNARY_DOC.format(summary=summary, example=example)
    return build


def _at(op, point, value, derivative):
    """Doctest lines: ``op`` and its derivative at ``x = point``, expected ``value`` and
    ``derivative``."""
    return (
        f'>>> dk.evaluate(dk.{op}(x), at={{"x": {point}}})\n{value}\n'
        f'>>> dk.derivative(dk.{op}(x), "x", at={{"x": {point}}})\n{derivative}'
    )


# each example: the value and derivative at a point where both have a closed form
exp = _builder(EXP, "e ** x.", _at("exp", 0.0, 1.0, 1.0))
exp2 = _builder(EXP2, "2 ** x.", _at("exp2", 3.0, 8.0, "5.545177444479562"))  # 8 ln 2
expm1 = _builder(
    EXPM1,
    "e ** x - 1, accurate for small x.",
    _at("expm1", 1e-10, "1.00000000005e-10", 1.0000000001),
)  # x + x^2/2; e^x
log = _log_builder
log.__name__ = log.__qualname__ = "log"
log2 = _builder(
    LOG2, "Base-2 logarithm.", _at("log2", 8.0, 3.0, "0.18033688011112042")
)  # 1/(8 ln 2)
log10 = _builder(LOG10, "Base-10 logarithm.", _at("log10", 1000.0, 3.0, "0.00043429448190325184"))
log1p = _builder(
    LOG1P,
    "log(1 + x), accurate for small x.",
    _at("log1p", 1e-10, "9.999999999500001e-11", 0.9999999999),
)  # log1p of the double 1e-10 (mpmath); 1/(1 + x)
sin = _builder(SIN, "Sine.", _at("sin", 0.0, 0.0, 1.0))
cos = _builder(COS, "Cosine.", _at("cos", 0.0, 1.0, "-0.0"))
tan = _builder(TAN, "Tangent.", _at("tan", 0.0, 0.0, 1.0))
arcsin = _builder(
    ARCSIN,
    "Inverse sine (``asin``), in [-pi/2, pi/2].",
    _at("arcsin", 0.5, "0.5235987755982989", "1.1547005383792517"),
)  # pi/6; 2/sqrt(3)
arccos = _builder(
    ARCCOS,
    "Inverse cosine (``acos``), in [0, pi].",
    _at("arccos", 0.0, "1.5707963267948966", -1.0),
)  # pi/2; -1/sqrt(1 - x^2)
arctan = _builder(
    ARCTAN, "Inverse tangent (``atan``).", _at("arctan", 1.0, "0.7853981633974483", 0.5)
)
sinh = _builder(SINH, "Hyperbolic sine.", _at("sinh", 0.0, 0.0, 1.0))
cosh = _builder(COSH, "Hyperbolic cosine.", _at("cosh", 0.0, 1.0, 0.0))
tanh = _builder(TANH, "Hyperbolic tangent.", _at("tanh", 0.0, 0.0, 1.0))
arcsinh = _builder(ARCSINH, "Inverse hyperbolic sine (``asinh``).", _at("arcsinh", 0.0, 0.0, 1.0))
arccosh = _builder(
    ARCCOSH, "Inverse hyperbolic cosine (``acosh``), for x >= 1.", _at("arccosh", 1.0, 0.0, "inf")
)  # 1/sqrt(x^2 - 1)
arctanh = _builder(
    ARCTANH,
    "Inverse hyperbolic tangent (``atanh``), for abs(x) < 1.",
    _at("arctanh", 0.5, "0.5493061443340549", "1.3333333333333333"),
)  # ln(3)/2; 1/(1 - x^2)
sqrt = _builder(SQRT, "Square root.", _at("sqrt", 4.0, 2.0, 0.25))
cbrt = _builder(
    CBRT, "Real cube root: ``cbrt(-8) == -2``.", _at("cbrt", -8.0, -2.0, "0.08333333333333333")
)
erf = _builder(
    ERF,
    "The error function 2/sqrt(pi) * integral of e^(-t^2) from 0 to x.",
    _at("erf", 0.0, 0.0, "1.1283791670955126"),
)  # 2/sqrt(pi)
erfc = _builder(
    ERFC,
    "The complementary error function 1 - erf x.",
    _at("erfc", 0.0, 1.0, "-1.1283791670955126"),
)


def arctan2(y, x):
    """The angle of the point (x, y) (``atan2``), in (-pi, pi], as numpy's ``arctan2``.

    Args:
        y, x: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise angle.

    >>> import diffkit as dk
    >>> y, x = dk.variables("y x")
    >>> dk.gradient(dk.arctan2(y, x), at={"y": 1.0, "x": 1.0})
    {'x': -0.5, 'y': 0.5}
    """
    return apply(ARCTAN2, y, x)


def hypot(a, b):
    """sqrt(a^2 + b^2), computed without overflow.

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise hypotenuse.

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.evaluate(dk.hypot(a, b), at={"a": 3e200, "b": 4e200})  # the doubles' exact hypot
    4.9999999999999995e+200
    >>> dk.gradient(dk.hypot(a, b), at={"a": 3.0, "b": 4.0})  # (a, b) / hypot
    {'a': 0.6, 'b': 0.8}
    """
    return apply(HYPOT, a, b)


def logaddexp(a, b):
    """log(e^a + e^b), computed without overflow.

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise result.

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.evaluate(dk.logaddexp(a, b), at={"a": 1000.0, "b": 1000.0})  # 1000 + ln 2
    1000.6931471805599
    >>> dk.gradient(dk.logaddexp(a, b), at={"a": 0.0, "b": 0.0})  # softmax of (a, b)
    {'a': 0.5, 'b': 0.5}
    """
    return apply(LOGADDEXP, a, b)

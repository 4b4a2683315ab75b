"""Special and elementwise extras: sigmoid and softplus, the NaN-aware ``fmax``/``fmin``,
``nan_to_num`` and the finiteness tests, ``logaddexp2``, ``sinc``, and scipy's ``erfinv``,
``i0e`` and ``i1e``.

``sigmoid`` and ``softplus`` are defined with :func:`diffkit.custom_op`, the way the
course notes define a "Sigmoid" block: computed by stable numpy code, differentiated by a
stated rule. The others are elementwise op records; scipy's functions reach them from
plain numpy code through ``__array_ufunc__``, as numpy's ufuncs do.

Conventions: ``fmax``/``fmin`` give the derivative to the entry they take (the first
argument at ties, as PyTorch; the non-NaN side when one is NaN); ``nan_to_num`` passes
the derivative where ``x`` is finite and 0 where it replaced an entry; ``sinc`` has
derivative 0 at 0; ``i0e``'s derivative jumps at 0 and is taken as 0 there (PyTorch's).
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import scipy.special
import sympy
from sympy.codegen import numpy_nodes

from ..ir.custom import custom_op
from ..ir.node import Node, apply, math_const
from ..ir.op import Sample, Unsupported, builds
from . import _taylor
from ._common import binary, unary
from .comparison import SYMPY_SIGN, abs as abs_, equal, greater_equal, less, less_equal
from .comparison import maximum, not_equal, sign, where
from .transcendental import _log1p_impl, cos, exp, exp2, sqrt

__all__ = [
    "sigmoid",
    "softplus",
    "isfinite",
    "isnan",
    "isinf",
    "nan_to_num",
    "fmax",
    "fmin",
    "logaddexp2",
    "sinc",
    "erfinv",
    "i0e",
    "i1e",
]


def _sigmoid_impl(x):
    if x.dtype.kind == "c":  # the branch whose exponential cannot overflow
        ez = np.exp(np.where(x.real < 0, x, -x))
        return np.where(x.real < 0, ez / (1.0 + ez), 1.0 / (1.0 + ez))
    # scipy's logistic function: never overflows, and some ten times faster than
    # exp(-log(1 + exp(-x))) by numpy's logaddexp
    return scipy.special.expit(x)


sigmoid = custom_op(
    "sigmoid",
    _sigmoid_impl,
    # d/dx sigmoid x = sigmoid x (1 - sigmoid x)
    lambda ct, out, x: (ct * out * (1 - out),),
    mpmath=lambda x: 1 / (1 + mpmath.exp(-x)),
    sympy=lambda x: 1 / (1 + sympy.exp(-x)),
    doc="1 / (1 + exp(-x)), the logistic function",
    numpy=(scipy.special.expit,),
    rules={"taylor": _taylor.sigmoid_rule},
)
sigmoid.__doc__ = """1 / (1 + exp(-x)), the logistic function.

Args:
    x: a node, or a number or array (taken as a constant).

Returns:
    Node: the logistic function of each entry, of ``x``'s shape.

>>> import diffkit as dk
>>> x = dk.variable("x")
>>> dk.evaluate(dk.sigmoid(x), at={"x": 0.0}), dk.derivative(dk.sigmoid(x), "x", at={"x": 0.0})
(0.5, 0.25)
>>> dk.evaluate(dk.sigmoid(x), at={"x": -1000.0})  # no overflow: e^-1000 underflows to 0
0.0
"""


def _softplus_impl(x):
    if x.dtype.kind == "c":  # log(1 + e^z) = z + log(1 + e^-z): no overflow for large Re z
        positive = x.real > 0
        tail = _log1p_impl(np.exp(np.where(positive, -x, x)))
        return np.where(positive, x + tail, tail)
    # max(x, 0) + log(1 + e^-|x|): no overflow, and much faster than numpy's logaddexp
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


softplus = custom_op(
    "softplus",
    _softplus_impl,
    # d/dx log(1 + e^x) = sigmoid x
    lambda ct, out, x: (ct * sigmoid(x),),
    mpmath=lambda x: mpmath.log(1 + mpmath.exp(x)),
    sympy=lambda x: sympy.log(1 + sympy.exp(x)),
    doc="log(1 + exp(x)), computed without overflow",
    rules={"taylor": _taylor.softplus_rule},
)
softplus.__doc__ = """log(1 + exp(x)), computed without overflow.

Args:
    x: a node, or a number or array (taken as a constant).

Returns:
    Node: the softplus of each entry, of ``x``'s shape.

>>> import diffkit as dk
>>> x = dk.variable("x")
>>> dk.evaluate(dk.softplus(x), at={"x": 0.0}), dk.derivative(dk.softplus(x), "x", at={"x": 0.0})
(0.6931471805599453, 0.5)
>>> dk.evaluate(dk.softplus(x), at={"x": 1000.0})  # log(1 + e^1000) = 1000 + log(1 + e^-1000)
1000.0
"""


# ---- tests of finiteness (derivative 0) ----------------------------------------------------


def _zero_vjp(ct, out, *inputs, **_):
    # piecewise constant: derivative 0
    return (None,) * len(inputs)


def _test(name, fn, mp, doc):
    def impl(x):
        return fn(x).astype(x.dtype if x.dtype.kind in "fc" else np.float64)

    return unary(
        name,
        impl,
        _zero_vjp,
        lambda x: mpmath.mpf(1) if mp(x) else mpmath.mpf(0),
        Unsupported(f"{name}: SymPy has no test of a number's finiteness"),
        samples=(Sample(((3, 4),), zero_derivative=True),),
        analytic=False,
        doc=doc,
        numpy=(fn,),
        discontinuous=True,
        rules={"taylor": _taylor.JVP_EACH},
    )


ISFINITE = _test("isfinite", np.isfinite, mpmath.isfinite, "1 where x is finite, else 0")
ISNAN = _test("isnan", np.isnan, mpmath.isnan, "1 where x is NaN, else 0")
ISINF = _test("isinf", np.isinf, mpmath.isinf, "1 where x is +inf or -inf, else 0")


def isfinite(x) -> Node:
    """1.0 where ``x`` is finite (neither infinite nor NaN), else 0.0 (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: 0.0/1.0 entries of ``x``'s shape, with no derivative.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.isfinite(x), at={"x": [1.0, np.inf, -np.inf, np.nan]}).tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    return apply(ISFINITE, x)


def isnan(x) -> Node:
    """1.0 where ``x`` is NaN, else 0.0 (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: 0.0/1.0 entries of ``x``'s shape, with no derivative.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.isnan(x), at={"x": [1.0, np.inf, -np.inf, np.nan]}).tolist()
    [0.0, 0.0, 0.0, 1.0]
    """
    return apply(ISNAN, x)


def isinf(x) -> Node:
    """1.0 where ``x`` is +inf or -inf, else 0.0 (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: 0.0/1.0 entries of ``x``'s shape, with no derivative.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.isinf(x), at={"x": [1.0, np.inf, -np.inf, np.nan]}).tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    return apply(ISINF, x)


# ---- nan_to_num ------------------------------------------------------------------------------


def _nan_to_num_impl(x, nan=0.0, posinf=None, neginf=None):
    return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


def _nan_to_num_mp(x, nan=0.0, posinf=None, neginf=None):
    if mpmath.isnan(x):
        return mpmath.mpf(nan)
    if mpmath.isinf(x):
        big = np.finfo(np.float64).max
        return (
            mpmath.mpf(posinf if posinf is not None else big)
            if x > 0
            else mpmath.mpf(neginf if neginf is not None else -big)
        )
    return x


NAN_TO_NUM = unary(
    "nan_to_num",
    _nan_to_num_impl,
    # d/dx nan_to_num x = 1 where x is finite, 0 where it was replaced
    lambda ct, out, x, **_: (ct * isfinite(x),),
    _nan_to_num_mp,
    lambda x, **_: x,  # the identity on finite numbers, the only ones SymPy differentiates
    samples=(
        Sample(((),)),
        Sample(((3, 4),)),
        Sample(((3, 4),), {"nan": 1.5, "posinf": 9.0, "neginf": -9.0}),
    ),
    doc="x with NaN and infinities replaced by finite numbers",
    rules={"taylor": _taylor.JVP_EACH},
)


@builds(NAN_TO_NUM, numpy=(np.nan_to_num,))
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None) -> Node:
    """``x`` with NaN replaced by ``nan`` and infinities by ``posinf``/``neginf`` (by default
    the dtype's largest finite numbers), as numpy's. The derivative is 1 where ``x`` is
    finite and 0 where an entry was replaced, as ``torch.nan_to_num``.

    Args:
        x: a node, or a number or array (taken as a constant).
        copy: numpy's argument (a node is never changed in place).
        nan: the value for NaN.
        posinf, neginf: the values for +inf and -inf; None for the dtype's extremes.

    Returns:
        Node: ``x`` with its non-finite entries replaced.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> dk.gradient(dk.sum(np.nan_to_num(x)), at={"x": [1.0, np.nan, np.inf]})["x"].tolist()
    [1.0, 0.0, 0.0]
    """

    def number(v, name):
        if v is None:
            return None
        if isinstance(v, Node) or np.ndim(v) != 0:
            raise TypeError(f"nan_to_num: {name} must be a number (a constant scalar)")
        return float(v)

    return apply(
        NAN_TO_NUM,
        x,
        nan=number(nan, "nan"),
        posinf=number(posinf, "posinf"),
        neginf=number(neginf, "neginf"),
    )


# ---- fmax, fmin ------------------------------------------------------------------------------


def _is_nan(x):
    return not_equal(x, x)


def _fmax_to_a(a, b):
    """1 where fmax(a, b) takes a: a >= b, or b is NaN (ties to the first, as PyTorch)."""
    return maximum(_is_nan(b), greater_equal(a, b))


def _fmin_to_a(a, b):
    return maximum(_is_nan(b), less_equal(a, b))


def _f_mp(pick):
    def mp(a, b):
        if mpmath.isnan(a):
            return b
        if mpmath.isnan(b):
            return a
        return pick(a, b)

    return mp


FMAX = binary(
    "fmax",
    np.fmax,
    # d fmax(a, b) = da where a >= b or b is NaN, db elsewhere
    lambda ct, out, a, b: (ct * _fmax_to_a(a, b), ct * (1 - _fmax_to_a(a, b))),
    _f_mp(lambda a, b: a if a >= b else b),
    lambda a, b: sympy.Max(a, b),
    analytic=False,
    doc="elementwise maximum ignoring NaN",
    numpy=(np.fmax,),
    rules={"taylor": _taylor.JVP_EACH},
)
FMIN = binary(
    "fmin",
    np.fmin,
    # d fmin(a, b) = da where a <= b or b is NaN, db elsewhere
    lambda ct, out, a, b: (ct * _fmin_to_a(a, b), ct * (1 - _fmin_to_a(a, b))),
    _f_mp(lambda a, b: a if a <= b else b),
    lambda a, b: sympy.Min(a, b),
    analytic=False,
    doc="elementwise minimum ignoring NaN",
    numpy=(np.fmin,),
    rules={"taylor": _taylor.JVP_EACH},
)


def fmax(a, b) -> Node:
    """Elementwise maximum that ignores NaN (numpy's ``fmax``: NaN only where both are).
    The derivative goes to the entry taken: to ``a`` where ``a >= b`` (ties to the first
    argument, as ``torch.fmax``) or ``b`` is NaN, to ``b`` elsewhere.

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the larger entry of each pair, the other one where one is NaN.

    >>> import diffkit as dk, numpy as np
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.fmax(a, b), at={"a": np.nan, "b": 2.0})
    {'a': 0.0, 'b': 1.0}
    """
    return apply(FMAX, a, b)


def fmin(a, b) -> Node:
    """Elementwise minimum that ignores NaN (numpy's ``fmin``); derivative as :func:`fmax`.

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the smaller entry of each pair, the other one where one is NaN.

    >>> import diffkit as dk, numpy as np
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.fmin(a, b), at={"a": np.nan, "b": 2.0})
    {'a': 0.0, 'b': 1.0}
    """
    return apply(FMIN, a, b)


# ---- logaddexp2 ------------------------------------------------------------------------------


def _logaddexp2_impl(a, b):
    if np.result_type(a, b).kind != "c":
        return np.logaddexp2(a, b)
    m = np.maximum(np.real(a), np.real(b))
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log2(np.exp2(a - m) + np.exp2(b - m))


LOGADDEXP2 = binary(
    "logaddexp2",
    _logaddexp2_impl,
    # d log2(2^a + 2^b) = 2^(a - out) da + 2^(b - out) db
    lambda ct, out, a, b: (ct * exp2(a - out), ct * exp2(b - out)),
    lambda a, b: mpmath.log(mpmath.power(2, a) + mpmath.power(2, b), 2),
    numpy_nodes.logaddexp2,
    doc="log2(2^a + 2^b), without overflow",
    numpy=(np.logaddexp2,),
    sympy_from=(numpy_nodes.logaddexp2,),
    rules={"taylor": _taylor.logaddexp2_rule},
)


def logaddexp2(a, b) -> Node:
    """log2(2^a + 2^b), computed without overflow (numpy's ``logaddexp2``).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise result.

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.evaluate(dk.logaddexp2(a, b), at={"a": 1000.0, "b": 1000.0})
    1001.0
    """
    return apply(LOGADDEXP2, a, b)


# ---- SymPy forms that print as the op's name --------------------------------------------------


def _sympy_function(name, evalf, derivative, at_zero):
    """A SymPy function printed as ``name(x)`` (so that it parses back to the op), with its
    derivative, its value at 0 and its numerical value (through ``evalf``)."""

    def fdiff(self, argindex=1):
        return derivative(self.args[0])

    def eval_(cls, x):
        return at_zero if x.is_zero else None

    def eval_evalf(self, prec):
        return evalf(self.args[0])._eval_evalf(prec)

    attrs = {"fdiff": fdiff, "eval": classmethod(eval_), "_eval_evalf": eval_evalf}
    return type(name, (sympy.Function,), attrs)


#: SymPy forms: numpy's normalized sinc and scipy's exponentially scaled Bessel functions
SYMPY_SINC = _sympy_function(
    "sinc",
    lambda x: sympy.sinc(sympy.pi * x),
    # d/dx sinc x = (cos(pi x) - sinc x) / x, 0 at 0
    lambda x: sympy.Piecewise(
        (0, sympy.Eq(x, 0)), ((sympy.cos(sympy.pi * x) - SYMPY_SINC(x)) / x, True)
    ),
    sympy.S.One,
)
SYMPY_I0E = _sympy_function(
    "i0e",
    lambda x: sympy.besseli(0, x) * sympy.exp(-sympy.Abs(x)),
    lambda x: SYMPY_I1E(x) - SYMPY_SIGN(x) * SYMPY_I0E(x),
    sympy.S.One,
)
SYMPY_I1E = _sympy_function(
    "i1e",
    lambda x: sympy.besseli(1, x) * sympy.exp(-sympy.Abs(x)),
    lambda x: SYMPY_I0E(x) - SYMPY_SIGN(x) * SYMPY_I1E(x) - SYMPY_I1E(x) / x,
    sympy.S.Zero,
)


# ---- sinc ------------------------------------------------------------------------------------

#: below this |x| the derivative of sinc is its Maclaurin series (no cancellation at 0)
_SINC_SERIES = 0.05


def _sinc_slope(x):
    """d/dx sinc x = (cos(pi x) - sinc x) / x, and its series pi (-p/3 + p^3/30 - ...) in
    p = pi x near 0, so that every order of derivative is right at and near 0."""
    pi = math_const("pi")
    p = pi * x
    p2 = p * p
    coefficients = (
        Fraction(-1, 3),
        Fraction(1, 30),
        Fraction(-1, 840),
        Fraction(1, 45360),
        Fraction(-1, 3991680),
    )
    series = coefficients[-1]
    for c in coefficients[-2::-1]:
        series = c + p2 * series
    near = less(abs_(x), _SINC_SERIES)
    safe = where(near, 1.0, x)
    return where(near, pi * p * series, (cos(p) - sinc(x)) / safe)


#: below this |pi z| a complex sinc is summed from its Maclaurin series
_SINC_COMPLEX_SERIES = 0.5


def _sinc_impl(x):
    """numpy's sinc; for complex entries near 0, the Maclaurin series sum_k (-1)^k
    (pi z)^(2k) / (2k + 1)!, since sin(pi z) / (pi z) cancels there in its imaginary
    part (the complex step's derivative would lose up to half its digits)."""
    out = np.sinc(x)
    if x.dtype.kind != "c":
        return out
    x, out = np.asarray(x), np.array(out)  # 0-d arrays, not scalars, can be assigned into
    near = np.abs(x) * np.pi < _SINC_COMPLEX_SERIES
    if not near.any():
        return out
    p2 = (np.pi * x[near]) ** 2
    term = np.ones_like(p2)
    total = np.ones_like(p2)
    for k in range(1, 12):  # (0.5^2)^11 / 23! is far below an ulp
        term = term * (-p2) / ((2 * k) * (2 * k + 1))
        total = total + term
    out[near] = total
    return out


SINC = unary(
    "sinc",
    _sinc_impl,
    # d/dx sin(pi x)/(pi x) = (cos(pi x) - sinc x) / x, 0 at x = 0
    lambda ct, out, x: (ct * _sinc_slope(x),),
    lambda x: mpmath.sincpi(x),
    SYMPY_SINC,
    samples=(
        Sample(((),)),
        Sample(((3, 4),)),
        Sample(((3, 4),), low=-0.06, high=0.06),
        Sample(((3,),), make=lambda rng: [np.array([0.0, 0.05, -0.04999])]),
    ),
    doc="the normalized sinc sin(pi x)/(pi x), 1 at 0",
    numpy=(np.sinc,),
    # SymPy's own sinc is the unnormalized sin(x)/x
    sympy_from={
        SYMPY_SINC: lambda e, arg: sinc(arg(e.args[0])),
        sympy.sinc: lambda e, arg: sinc(arg(e.args[0]) / math_const("pi")),
    },
    rules={"taylor": _taylor.NESTED_JVP},
)


def sinc(x) -> Node:
    """The normalized sinc, sin(pi x)/(pi x) with value 1 at 0 (numpy's ``sinc``). Its
    derivative is 0 at 0, and derivatives of every order are right at and near 0 (as
    JAX's, which uses the Maclaurin series there).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> abs(dk.derivative(dk.sinc(x), "x", at={"x": 0.0}))
    0.0
    """
    return apply(SINC, x)


# ---- erfinv, i0e, i1e ------------------------------------------------------------------------


ERFINV = unary(
    "erfinv",
    scipy.special.erfinv,
    # d/dx erfinv x = sqrt(pi)/2 exp(erfinv(x)^2)
    lambda ct, out, x: (ct * sqrt(math_const("pi")) / 2 * exp(out * out),),
    mpmath.erfinv,
    sympy.erfinv,
    samples=(Sample(((),), low=-0.95, high=0.95), Sample(((3, 4),), low=-0.95, high=0.95)),
    analytic=False,  # scipy's erfinv has no complex version
    doc="the inverse error function, on (-1, 1)",
    numpy=(scipy.special.erfinv,),
    sympy_from=(sympy.erfinv,),
    rules={"taylor": _taylor.erfinv_rule},
)


def erfinv(x) -> Node:
    """The inverse error function (``scipy.special.erfinv``): erf(erfinv(x)) = x on
    (-1, 1), +-inf at +-1.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> round(dk.derivative(dk.erfinv(x), "x", at={"x": 0.0}), 12)  # sqrt(pi)/2
    0.886226925453
    """
    return apply(ERFINV, x)


def _i1e_over_x(x):
    """i1e(x)/x, 1/2 at 0 (I1(x) ~ x/2)."""
    zero = equal(x, 0.0)
    return where(zero, 0.5, i1e(x) / where(zero, 1.0, x))


I0E = unary(
    "i0e",
    scipy.special.i0e,
    # d/dx e^-|x| I0(x) = i1e(x) - sign(x) i0e(x); sign(0) = 0 gives 0 at the kink (PyTorch)
    lambda ct, out, x: (ct * (i1e(x) - sign(x) * out),),
    lambda x: mpmath.besseli(0, x) * mpmath.exp(-abs(x)),
    SYMPY_I0E,
    analytic=False,  # e^-|x| is not analytic
    doc="exp(-abs(x)) I0(x), the exponentially scaled modified Bessel function of order 0",
    numpy=(scipy.special.i0e,),
    sympy_from=(SYMPY_I0E,),
    rules={"taylor": _taylor.NESTED_JVP},
)
I1E = unary(
    "i1e",
    scipy.special.i1e,
    # d/dx e^-|x| I1(x) = i0e(x) - i1e(x) (sign(x) + 1/x); 1/2 at 0
    lambda ct, out, x: (ct * (i0e(x) - sign(x) * out - _i1e_over_x(x)),),
    lambda x: mpmath.besseli(1, x) * mpmath.exp(-abs(x)),
    SYMPY_I1E,
    analytic=False,
    doc="exp(-abs(x)) I1(x), the exponentially scaled modified Bessel function of order 1",
    numpy=(scipy.special.i1e,),
    sympy_from=(SYMPY_I1E,),
    rules={"taylor": _taylor.NESTED_JVP},
)


def i0e(x) -> Node:
    """exp(-abs(x)) I0(x) (``scipy.special.i0e``). Its derivative i1e(x) - sign(x) i0e(x)
    jumps at 0, where it is taken as 0 (sign(0) = 0), as ``torch.special.i0e``.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.derivative(dk.i0e(x), "x", at={"x": 0.0})
    0.0
    """
    return apply(I0E, x)


def i1e(x) -> Node:
    """exp(-abs(x)) I1(x) (``scipy.special.i1e``); its derivative is 1/2 at 0.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.derivative(dk.i1e(x), "x", at={"x": 0.0})
    0.5
    """
    return apply(I1E, x)

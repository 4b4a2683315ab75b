"""scipy.special's functions of statistics and machine learning, reached from plain numpy
code through ``__array_ufunc__`` as numpy's ufuncs are: the gamma family (``gammaln``,
``gamma``, ``digamma``/``psi``), ``logit`` and ``log_expit``, ``xlogy``, ``xlog1py`` and
``entr``, the normal distribution's ``ndtr``, ``log_ndtr`` and ``ndtri``, and ``erfcx``.
``scipy.special.polygamma`` is Python code that converts its argument with
``np.asarray``, so it cannot be traced: write ``dk.polygamma(n, x)``.

All are real functions here (scipy's complex loops are not differentiated), so the
complex-step and complex-circle methods refuse them as not analytic. Conventions:

- ``xlogy(x, y)`` and ``xlog1py(x, y)`` are 0 where ``x == 0``, whatever ``y``, as
  scipy's. Their derivative in ``x`` is ``log(y)`` (``log1p(y)``) everywhere, JAX's
  convention (PyTorch gives 0 where ``x == 0``); in ``y`` it is ``x / y``
  (``x / (1 + y)``), taken as 0 where ``x == 0``, where the function is constant in
  ``y`` (JAX and PyTorch give NaN at ``x == y == 0``).
- ``entr``'s derivative ``-(log x + 1)`` is +inf at 0 and NaN below, as PyTorch's.
- At the poles of the gamma family (0, -1, -2, ...) the values and derivatives are
  scipy's (inf or NaN).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import scipy.special
import sympy

from ..ir.node import Node, apply
from ..ir.op import Sample, builds
from . import _taylor
from ._common import binary, binary_samples, unary
from .comparison import equal, where
from .special import _sympy_function, sigmoid
from .transcendental import exp, log, log1p

__all__ = [
    "gammaln",
    "gamma",
    "digamma",
    "polygamma",
    "logit",
    "log_expit",
    "xlogy",
    "xlog1py",
    "entr",
    "ndtr",
    "log_ndtr",
    "ndtri",
    "erfcx",
]

_SQRT_2PI = math.sqrt(2 * math.pi)
_NESTED = {"taylor": _taylor.NESTED_JVP}


def _real(value):
    """An mpmath value, NaN where the real function is not defined (complex results)."""
    return value if isinstance(value, mpmath.mpf) else mpmath.nan


#: ``log |Gamma(x)|`` for SymPy: its loggamma is the complex branch below 0; printed as
#: ``gammaln(x)``, so that it parses back to the op
SYMPY_GAMMALN = _sympy_function(
    "gammaln",
    lambda x: sympy.log(sympy.Abs(sympy.gamma(x))),
    lambda x: sympy.polygamma(0, x),
    sympy.oo,
)


def _pole(x) -> bool:
    return x <= 0 and x == mpmath.floor(x)


# ---- the gamma family --------------------------------------------------------------------------


def _polygamma_impl(x, n=0):
    if n == 0:
        return scipy.special.psi(x)
    # scipy's polygamma answers in float64 whatever the input: back to x's dtype
    out = scipy.special.polygamma(n, x)
    return out.astype(x.dtype, copy=False) if x.dtype.kind == "f" else out


def _polygamma_mp(x, n=0):
    if _pole(x):  # scipy: psi is -inf at 0 and NaN at the negative integers
        return mpmath.nan
    return mpmath.psi(n, x)


POLYGAMMA = unary(
    "polygamma",
    _polygamma_impl,
    # d/dx psi^(n)(x) = psi^(n+1)(x)
    lambda ct, out, x, n=0: (ct * apply(POLYGAMMA, x, n=n + 1),),
    _polygamma_mp,
    lambda x, n=0: sympy.polygamma(n, x),
    samples=(
        Sample(((),), low=0.3, high=4.0),
        Sample(((3, 4),), low=-2.7, high=-2.2),
        Sample(((3,),), {"n": 1}, low=0.3, high=4.0),
        Sample(((2,),), {"n": 3}, low=-2.7, high=-2.2),
    ),
    analytic=False,
    doc="psi^(n)(x), the n-th derivative of the digamma function (n = 0: digamma)",
    arity=(1, 2),  # polygamma(x) is digamma(x); polygamma(n, x) as SymPy prints it
    sympy_from={sympy.polygamma: lambda e, arg: polygamma(int(e.args[0]), arg(e.args[1]))},
    rules=_NESTED,
)


def _polygamma_front(*args) -> Node:
    """The expression language's and numpy's way in: ``polygamma(x)`` (scipy's ``psi``)
    or ``polygamma(n, x)`` with a constant ``n``."""
    if len(args) == 1:
        return digamma(args[0])
    n, x = args
    if isinstance(n, Node):
        if n.kind != "const" or n.shape != ():
            raise ValueError("polygamma: the order n must be a constant, not an expression")
        n = float(n.value)
    return polygamma(n, x)


builds(POLYGAMMA, names=("digamma", "psi"), numpy=(scipy.special.psi,))(_polygamma_front)


def digamma(x) -> Node:
    """The digamma function psi(x) = d/dx log Gamma(x) (``scipy.special.digamma``, also
    ``psi``); its derivative is ``polygamma(1, x)``.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> round(dk.evaluate(dk.digamma(x), at={"x": 1.0}), 12)  # -Euler's gamma
    -0.577215664902
    >>> round(dk.derivative(dk.digamma(x), "x", at={"x": 1.0}), 12)  # pi^2 / 6
    1.644934066848
    """
    return apply(POLYGAMMA, x, n=0)


def polygamma(n: int, x) -> Node:
    """psi^(n)(x), the n-th derivative of the digamma function (``scipy.special.polygamma``);
    its derivative is ``polygamma(n + 1, x)``.

    Args:
        n: the order, a non-negative integer (not differentiated).
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    Raises:
        ValueError: ``n`` is not a non-negative integer.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> round(dk.evaluate(dk.polygamma(1, x), at={"x": 1.0}), 12)  # pi^2 / 6
    1.644934066848
    """
    if (
        isinstance(n, (bool, Node))
        or not isinstance(n, (int, float, np.integer, np.floating))
        or not float(n).is_integer()
        or n < 0
    ):
        raise ValueError(f"polygamma: the order n must be a non-negative integer, got {n!r}")
    return apply(POLYGAMMA, x, n=int(n))


def _gammaln_mp(x):
    return mpmath.inf if _pole(x) else mpmath.log(abs(mpmath.gamma(x)))


GAMMALN = unary(
    "gammaln",
    scipy.special.gammaln,
    # d/dx log |Gamma(x)| = psi(x)
    lambda ct, out, x: (ct * digamma(x),),
    _gammaln_mp,
    SYMPY_GAMMALN,
    samples=(Sample(((),), low=0.2, high=5.0), Sample(((3, 4),), low=-3.8, high=-3.2)),
    analytic=False,
    doc="log |Gamma(x)|, the log of the gamma function's absolute value",
    sympy_from={
        SYMPY_GAMMALN: lambda e, arg: gammaln(arg(e.args[0])),
        sympy.loggamma: lambda e, arg: gammaln(arg(e.args[0])),
    },
    rules=_NESTED,
)


@builds(GAMMALN, numpy=(scipy.special.gammaln,))
def gammaln(x) -> Node:
    """``log |Gamma(x)|`` (``scipy.special.gammaln``; ``torch.lgamma``); its derivative is
    ``digamma(x)``. +inf at the poles 0, -1, -2, ...

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> round(dk.evaluate(dk.gammaln(x), at={"x": 5.0}), 12)  # log 4!
    3.178053830348
    """
    return apply(GAMMALN, x)


def _gamma_mp(x):
    if _pole(x):  # scipy: inf at 0, NaN at the negative integers
        return mpmath.inf if x == 0 else mpmath.nan
    return mpmath.gamma(x)


GAMMA = unary(
    "gamma",
    scipy.special.gamma,
    # d/dx Gamma(x) = Gamma(x) psi(x)
    lambda ct, out, x: (ct * out * digamma(x),),
    _gamma_mp,
    sympy.gamma,
    samples=(Sample(((),), low=0.3, high=4.0), Sample(((3, 4),), low=-2.8, high=-2.2)),
    analytic=False,
    doc="the gamma function",
    sympy_from=(sympy.gamma,),
    rules=_NESTED,
)


@builds(GAMMA, numpy=(scipy.special.gamma,))
def gamma(x) -> Node:
    """The gamma function (``scipy.special.gamma``); its derivative is
    ``gamma(x) * digamma(x)``.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.gamma(x), at={"x": 5.0})  # 4!
    24.0
    """
    return apply(GAMMA, x)


# ---- logit, log_expit ----------------------------------------------------------------------------


def _logit_mp(x):
    if x == 1:
        return mpmath.inf
    return mpmath.log(x / (1 - x)) if 0 <= x < 1 else mpmath.nan


LOGIT = unary(
    "logit",
    scipy.special.logit,
    # d/dx log(x / (1 - x)) = 1 / (x (1 - x))
    lambda ct, out, x: (ct / (x * (1 - x)),),
    _logit_mp,
    lambda x: sympy.log(x / (1 - x)),
    samples=(Sample(((),), low=0.05, high=0.95), Sample(((3, 4),), low=0.05, high=0.95)),
    analytic=False,
    doc="log(x / (1 - x)), the inverse of the logistic function, on [0, 1]",
    rules=_NESTED,
)


@builds(LOGIT, numpy=(scipy.special.logit,))
def logit(x) -> Node:
    """log(x / (1 - x)) (``scipy.special.logit``), the inverse of the logistic function;
    -inf at 0, +inf at 1, NaN outside [0, 1].

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.logit(x), at={"x": 0.5}), dk.derivative(dk.logit(x), "x", at={"x": 0.5})
    (0.0, 4.0)
    """
    return apply(LOGIT, x)


LOG_EXPIT = unary(
    "log_expit",
    scipy.special.log_expit,
    # d/dx -log(1 + e^-x) = 1 - sigmoid(x) = sigmoid(-x)
    lambda ct, out, x: (ct * sigmoid(-x),),
    lambda x: -mpmath.log(1 + mpmath.exp(-x)),
    lambda x: -sympy.log(1 + sympy.exp(-x)),
    analytic=False,
    doc="log(sigmoid(x)), computed without overflow",
    rules=_NESTED,
)


@builds(LOG_EXPIT, numpy=(scipy.special.log_expit,))
def log_expit(x) -> Node:
    """log(sigmoid(x)) = -log(1 + exp(-x)) without overflow (``scipy.special.log_expit``;
    ``torch.nn.functional.logsigmoid``).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.log_expit(x), at={"x": -1000.0})  # log(sigmoid(-1000)) = -1000
    -1000.0
    """
    return apply(LOG_EXPIT, x)


# ---- xlogy, xlog1py, entr --------------------------------------------------------------------


def _zero_where_x_is(x, value):
    """``value``, and 0 where ``x == 0`` (the function is constant in y there)."""
    zero = equal(x, 0.0)
    return where(zero, 0.0, value)


def _xlog_mp(log_fn):
    def mp(x, y):
        if x == 0:
            return mpmath.mpf(0)
        return x * _real(log_fn(y))

    return mp


XLOGY = binary(
    "xlogy",
    scipy.special.xlogy,
    # d(x log y) = log(y) dx + (x / y) dy, the second 0 where x = 0
    lambda ct, out, x, y: (
        ct * log(y),
        ct * _zero_where_x_is(x, x / where(equal(x, 0.0), 1.0, y)),
    ),
    _xlog_mp(mpmath.log),
    # a literal 0 for x (SymPy folds (t - t) s to 0) gives 0, not 0 log(y) = nan at y = 0
    lambda x, y: sympy.S.Zero if x == 0 else x * sympy.log(y),
    samples=binary_samples(low=0.2, high=3.0),
    analytic=False,
    doc="x log(y), and 0 where x = 0",
    rules=_NESTED,
)


@builds(XLOGY, numpy=(scipy.special.xlogy,))
def xlogy(x, y) -> Node:
    """x log(y), and 0 where ``x == 0`` whatever ``y`` (``scipy.special.xlogy``). The
    derivative in ``x`` is ``log(y)``; in ``y``, ``x / y``, and 0 where ``x == 0``.

    Args:
        x, y: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise result.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.evaluate(dk.xlogy(x, y), at={"x": 0.0, "y": 0.0})  # 0 log 0 = 0
    0.0
    >>> dk.gradient(dk.xlogy(x, y), at={"x": 0.0, "y": 0.0})["y"]
    0.0
    """
    return apply(XLOGY, x, y)


XLOG1PY = binary(
    "xlog1py",
    scipy.special.xlog1py,
    # d(x log(1 + y)) = log(1 + y) dx + x / (1 + y) dy, the second 0 where x = 0
    lambda ct, out, x, y: (
        ct * log1p(y),
        ct * _zero_where_x_is(x, x / where(equal(x, 0.0), 1.0, 1 + y)),
    ),
    _xlog_mp(mpmath.log1p),
    lambda x, y: sympy.S.Zero if x == 0 else x * sympy.log(1 + y),
    samples=binary_samples(low=0.2, high=3.0),
    analytic=False,
    doc="x log(1 + y), and 0 where x = 0",
    rules=_NESTED,
)


@builds(XLOG1PY, numpy=(scipy.special.xlog1py,))
def xlog1py(x, y) -> Node:
    """x log(1 + y), and 0 where ``x == 0`` whatever ``y`` (``scipy.special.xlog1py``),
    accurate for small ``y``. Derivatives as :func:`xlogy`'s.

    Args:
        x, y: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise result.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.evaluate(dk.xlog1py(x, y), at={"x": 2.0, "y": 1e-20})  # 2e-20, not 0
    2e-20
    """
    return apply(XLOG1PY, x, y)


def _entr_mp(x):
    if x > 0:
        return -x * mpmath.log(x)
    return mpmath.mpf(0) if x == 0 else -mpmath.inf


ENTR = unary(
    "entr",
    scipy.special.entr,
    # d/dx (-x log x) = -(log x + 1): +inf at 0, NaN below
    lambda ct, out, x: (ct * -(log(x) + 1),),
    _entr_mp,
    lambda x: sympy.S.Zero if x == 0 else -x * sympy.log(x),  # entr(0) = 0, not nan
    samples=(Sample(((),), low=0.1, high=3.0), Sample(((3, 4),), low=0.1, high=3.0)),
    analytic=False,
    doc="-x log(x) for x > 0, 0 at 0, -inf below",
    rules=_NESTED,
)


@builds(ENTR, numpy=(scipy.special.entr,))
def entr(x) -> Node:
    """-x log(x) for x > 0, 0 at 0 and -inf for x < 0 (``scipy.special.entr``, the terms
    of an entropy); its derivative -(log x + 1) is +inf at 0.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk, numpy as np
    >>> p = dk.variable("p", (3,))
    >>> round(float(dk.evaluate(dk.sum(dk.entr(p)), at={"p": np.ones(3) / 3})), 12)  # log 3
    1.098612288668
    """
    return apply(ENTR, x)


# ---- the normal distribution, erfcx ---------------------------------------------------------


def _normal_pdf(x):
    return exp(-(x * x) / 2) / _SQRT_2PI


NDTR = unary(
    "ndtr",
    scipy.special.ndtr,
    # d/dx Phi(x) = phi(x), the standard normal density
    lambda ct, out, x: (ct * _normal_pdf(x),),
    mpmath.ncdf,
    lambda x: sympy.erfc(-x / sympy.sqrt(2)) / 2,
    analytic=False,
    doc="the standard normal distribution function Phi(x)",
    rules=_NESTED,
)


@builds(NDTR, numpy=(scipy.special.ndtr,))
def ndtr(x) -> Node:
    """The standard normal distribution function Phi(x) (``scipy.special.ndtr``,
    ``torch.special.ndtr``); its derivative is the normal density.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.ndtr(x), at={"x": 0.0})
    0.5
    >>> round(dk.derivative(dk.ndtr(x), "x", at={"x": 0.0}), 12)  # 1 / sqrt(2 pi)
    0.398942280401
    """
    return apply(NDTR, x)


LOG_NDTR = unary(
    "log_ndtr",
    scipy.special.log_ndtr,
    # d/dx log Phi(x) = phi(x) / Phi(x) = sqrt(2 / pi) / erfcx(-x / sqrt(2)), since
    # Phi(x) = exp(-x^2/2) erfcx(-x/sqrt 2) / 2: no 0/0 far in the left tail, where both
    # underflow, and no cancellation there
    lambda ct, out, x: (ct * math.sqrt(2 / math.pi) / erfcx(-x / math.sqrt(2)),),
    lambda x: mpmath.log(mpmath.ncdf(x)),
    lambda x: sympy.log(sympy.erfc(-x / sympy.sqrt(2)) / 2),
    samples=(Sample(((),)), Sample(((3, 4),), low=-30.0, high=5.0)),
    analytic=False,
    doc="log Phi(x), accurate far in both tails",
    rules=_NESTED,
)


@builds(LOG_NDTR, numpy=(scipy.special.log_ndtr,))
def log_ndtr(x) -> Node:
    """log Phi(x), the log of the standard normal distribution function, accurate far in
    both tails (``scipy.special.log_ndtr``); its derivative phi(x)/Phi(x) stays finite
    where both underflow.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> round(dk.derivative(dk.log_ndtr(x), "x", at={"x": -40.0}), 6)  # about -x
    40.024969
    """
    return apply(LOG_NDTR, x)


def _ndtri_mp(p):
    if not 0 <= p <= 1:
        return mpmath.nan
    return mpmath.sqrt(2) * mpmath.erfinv(2 * p - 1)


NDTRI = unary(
    "ndtri",
    scipy.special.ndtri,
    # d/dp Phi^-1(p) = 1 / phi(Phi^-1(p)) = sqrt(2 pi) exp(out^2 / 2)
    lambda ct, out, p: (ct * _SQRT_2PI * exp(out * out / 2),),
    _ndtri_mp,
    lambda p: sympy.sqrt(2) * sympy.erfinv(2 * p - 1),
    samples=(Sample(((),), low=0.02, high=0.98), Sample(((3, 4),), low=0.02, high=0.98)),
    analytic=False,
    doc="the inverse of the standard normal distribution function, on [0, 1]",
    rules=_NESTED,
)


@builds(NDTRI, numpy=(scipy.special.ndtri,))
def ndtri(p) -> Node:
    """The inverse of the standard normal distribution function (``scipy.special.ndtri``,
    the normal quantile); -inf at 0, +inf at 1, NaN outside [0, 1].

    Args:
        p: a node, or a number or array (taken as a constant).

    Returns:
        Node: the quantile of each entry, of ``p``'s shape.

    >>> import diffkit as dk
    >>> p = dk.variable("p")
    >>> round(dk.derivative(dk.ndtri(p), "p", at={"p": 0.5}), 12)  # sqrt(2 pi)
    2.506628274631
    """
    return apply(NDTRI, p)


ERFCX = unary(
    "erfcx",
    scipy.special.erfcx,
    # d/dx e^(x^2) erfc(x) = 2 x erfcx(x) - 2 / sqrt(pi)
    lambda ct, out, x: (ct * (2 * x * out - 2 / math.sqrt(math.pi)),),
    lambda x: mpmath.exp(x * x) * mpmath.erfc(x),
    lambda x: sympy.exp(x * x) * sympy.erfc(x),
    analytic=False,
    doc="exp(x^2) erfc(x), the scaled complementary error function",
    rules=_NESTED,
)


@builds(ERFCX, numpy=(scipy.special.erfcx,))
def erfcx(x) -> Node:
    """exp(x^2) erfc(x), the scaled complementary error function
    (``scipy.special.erfcx``, ``torch.special.erfcx``): finite where erfc underflows. Its
    derivative 2 x erfcx(x) - 2/sqrt(pi) cancels for large x (a relative error of about
    eps x^2), as PyTorch's.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the function of each entry, of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> round(dk.evaluate(dk.erfcx(x), at={"x": 100.0}) * 100, 6)  # about 1 / sqrt(pi)
    0.564161
    """
    return apply(ERFCX, x)

"""Comparisons, selection, kinks and rounding: the piecewise ops.

Comparisons (``greater``, ``less``, ``equal``, ...) give 1.0 or 0.0 in the data's dtype
and have derivative 0, as do ``sign``, ``floor``, ``ceil``, ``round`` and ``trunc``
(their derivative is 0 wherever it exists; at a jump diffkit also says 0, as PyTorch
and JAX do). At kinks diffkit follows PyTorch: ``relu'(0) = 0``, ``abs'(0) = 0``,
``clip`` passes the gradient where ``a_min <= x <= a_max`` (ends included), and
``maximum``/``minimum`` split it evenly at ties. On complex inputs (the complex step)
comparisons look at the real part.
"""

from __future__ import annotations

from fractions import Fraction
import math

import mpmath
import numpy as np
import sympy

from ..ir.node import apply, const
from ..ir.op import builds, function, ELEMENTWISE, Op, Sample, register
from ..ir.shapes import elementwise_shape
from . import _taylor
from ._common import binary, binary_samples, real, unary

__all__ = [
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "equal",
    "not_equal",
    "sign",
    "stop_gradient",
    "relu",
    "abs",
    "maximum",
    "minimum",
    "where",
    "clip",
    "floor",
    "ceil",
    "round",
    "trunc",
]


def _zero_vjp(ct, out, *inputs, **_):
    # piecewise constant: derivative 0 wherever it exists
    return (None,) * len(inputs)


def _zero_jvp(tangents, out, *inputs, **_):
    return None


# ---- comparisons -------------------------------------------------------------------------

_CMP_SAMPLES = (Sample(((3, 4), (3, 4)), second_order=False),)


def _sympy_nan_guard(a, b, build, if_nan):
    """SymPy refuses to compare NaN; numpy's comparisons with NaN are false (!= is true)."""
    if a is sympy.nan or b is sympy.nan:
        return sympy.Integer(if_nan) if isinstance(if_nan, int) else if_nan
    return build()


def _comparison(name, fn, sp, doc, names=()):
    def impl(a, b):
        return fn(real(a), real(b)).astype(np.result_type(a, b))

    return register(
        Op(
            name=name,
            shape=elementwise_shape(name),
            impl=impl,
            vjp=_zero_vjp,
            jvp=_zero_jvp,
            mpmath=lambda a, b: mpmath.mpf(1) if fn(a, b) else mpmath.mpf(0),
            sympy=lambda a, b: _sympy_nan_guard(
                a, b, lambda: sympy.Piecewise((1, sp(a, b)), (0, True)), int(fn(np.nan, 0.0))
            ),
            samples=_CMP_SAMPLES,
            analytic=False,
            exact=lambda a, b: Fraction(int(bool(fn(a, b)))),
            doc=doc,
            kind="elementwise",
            names=names,
            numpy=(fn,),
            sympy_from=(sp,),
            discontinuous=True,
            rules={"taylor": _taylor.JVP_EACH},
        )
    )


GREATER = _comparison("greater", np.greater, sympy.StrictGreaterThan, "1 where a > b, else 0")
GREATER_EQUAL = _comparison(
    "greater_equal", np.greater_equal, sympy.GreaterThan, "1 where a >= b, else 0"
)
LESS = _comparison("less", np.less, sympy.StrictLessThan, "1 where a < b, else 0")
LESS_EQUAL = _comparison("less_equal", np.less_equal, sympy.LessThan, "1 where a <= b, else 0")
EQUAL = _comparison("equal", np.equal, sympy.Eq, "1 where a == b, else 0", ("Eq",))
NOT_EQUAL = _comparison("not_equal", np.not_equal, sympy.Ne, "1 where a != b, else 0", ("Ne",))


def greater(a, b):
    """1.0 where a > b, else 0.0 (derivative zero).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: 0.0/1.0 entries of the broadcast shape, with no derivative.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.greater(x, 2.0), at={"x": [1.0, 2.0, 3.0]}).tolist()  # x > 2
    [0.0, 0.0, 1.0]
    """
    return apply(GREATER, a, b)


def greater_equal(a, b):
    """1.0 where a >= b, else 0.0 (derivative zero).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: 0.0/1.0 entries of the broadcast shape, with no derivative.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.greater_equal(x, 2.0), at={"x": [1.0, 2.0, 3.0]}).tolist()  # x >= 2
    [0.0, 1.0, 1.0]
    """
    return apply(GREATER_EQUAL, a, b)


def less(a, b):
    """1.0 where a < b, else 0.0 (derivative zero).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: 0.0/1.0 entries of the broadcast shape, with no derivative.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.less(x, 2.0), at={"x": [1.0, 2.0, 3.0]}).tolist()  # x < 2
    [1.0, 0.0, 0.0]
    """
    return apply(LESS, a, b)


def less_equal(a, b):
    """1.0 where a <= b, else 0.0 (derivative zero).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: 0.0/1.0 entries of the broadcast shape, with no derivative.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.less_equal(x, 2.0), at={"x": [1.0, 2.0, 3.0]}).tolist()  # x <= 2
    [1.0, 1.0, 0.0]
    """
    return apply(LESS_EQUAL, a, b)


def equal(a, b):
    """1.0 where a == b, else 0.0 (derivative zero).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: 0.0/1.0 entries of the broadcast shape, with no derivative.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.equal(x, 2.0), at={"x": [1.0, 2.0, 3.0]}).tolist()  # x == 2
    [0.0, 1.0, 0.0]
    """
    return apply(EQUAL, a, b)


def not_equal(a, b):
    """1.0 where a != b, else 0.0 (derivative zero).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: 0.0/1.0 entries of the broadcast shape, with no derivative.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.not_equal(x, 2.0), at={"x": [1.0, 2.0, 3.0]}).tolist()  # x != 2
    [1.0, 0.0, 1.0]
    """
    return apply(NOT_EQUAL, a, b)


# ---- sign, rounding, stop_gradient ---------------------------------------------------------


def _step_function(base, name, rule):
    """A SymPy step function whose derivative is 0 (SymPy leaves floor's unevaluated)."""
    attrs = {"fdiff": lambda self, argindex=1: sympy.S.Zero}
    if rule is not None:
        attrs["eval"] = classmethod(
            lambda cls, x: (
                sympy.Integer(rule(Fraction(int(x.p), int(x.q)))) if x.is_Rational else None
            )
        )
    return type(name, (base,), attrs)


#: SymPy forms of the rounding ops, printed as floor(x), ceiling(x), round(x), trunc(x)
SYMPY_FLOOR = _step_function(sympy.floor, "floor", None)
SYMPY_CEILING = _step_function(sympy.ceiling, "ceiling", None)
SYMPY_ROUND = _step_function(sympy.Function, "round", round)
SYMPY_TRUNC = _step_function(sympy.Function, "trunc", math.trunc)


def _sign_derivative(self, x):
    # d sign(u) = 2 DiracDelta(u) du, whether or not SymPy knows u is real
    return 2 * sympy.DiracDelta(self.args[0]) * self.args[0].diff(x)


def _abs_derivative(self, x):
    # d |u| = sign(u) du for real u (SymPy writes re and im when it cannot prove u real)
    return SYMPY_SIGN(self.args[0]) * self.args[0].diff(x)


#: SymPy's sign and Abs, differentiated as real functions of any real argument
SYMPY_SIGN = type("sign", (sympy.sign,), {"_eval_derivative": _sign_derivative})
SYMPY_ABS = type("Abs", (sympy.Abs,), {"_eval_derivative": _abs_derivative})

_STEP_SAMPLES = (Sample(((),), zero_derivative=True), Sample(((3, 4),), zero_derivative=True))


def _jumps_at_integers(u):
    # the derivative of a step function of u: 0 away from its jumps, undefined at them
    return where(equal(u, apply("floor", u)), float("nan"), 0.0)


def _rounding(name, fn, mp, sp, exact, doc, **front):
    def impl(x):
        if x.dtype.kind == "c":
            return fn(x.real).astype(x.dtype)
        return fn(x)

    return unary(
        name,
        impl,
        _zero_vjp,
        mp,
        sp,
        samples=_STEP_SAMPLES,
        analytic=False,
        exact=exact,
        doc=doc,
        discontinuous=True,
        rules={
            "taylor": _taylor.JVP_EACH,
            "sympy_derivative": front.pop("jumps", _jumps_at_integers),
        },
        **front,
    )


FLOOR = _rounding(
    "floor",
    np.floor,
    mpmath.floor,
    SYMPY_FLOOR,
    math.floor,
    "largest integer <= x",
    numpy=(np.floor,),
    sympy_from=(sympy.floor, SYMPY_FLOOR),
)
CEIL = _rounding(
    "ceil",
    np.ceil,
    mpmath.ceil,
    SYMPY_CEILING,
    math.ceil,
    "smallest integer >= x",
    names=("ceiling",),
    numpy=(np.ceil,),
    sympy_from=(sympy.ceiling, SYMPY_CEILING),
)
ROUND = _rounding(
    "round",
    np.round,
    mpmath.nint,
    SYMPY_ROUND,
    round,
    "nearest integer, halves to even",
    numpy=(np.rint, np.round, np.around),
    sympy_from=(SYMPY_ROUND,),
    # round jumps at the halves
    jumps=lambda u: where(equal(u - 0.5, apply("floor", u - 0.5)), float("nan"), 0.0),
)
TRUNC = _rounding(
    "trunc",
    np.trunc,
    lambda x: mpmath.floor(x) if x >= 0 else mpmath.ceil(x),
    SYMPY_TRUNC,
    math.trunc,
    "x rounded toward zero",
    numpy=(np.trunc,),
    sympy_from=(SYMPY_TRUNC,),
)
SIGN = unary(
    "sign",
    np.sign,  # z / |z| for complex z, as numpy
    _zero_vjp,
    mpmath.sign,
    SYMPY_SIGN,
    analytic=False,
    samples=_STEP_SAMPLES,
    exact=lambda x: Fraction((x > 0) - (x < 0)),
    doc="sign, 0 at 0",
    numpy=(np.sign,),
    sympy_from=(sympy.sign, SYMPY_SIGN),
    discontinuous=True,
    # sign jumps at 0
    rules={
        "taylor": _taylor.JVP_EACH,
        "sympy_derivative": lambda u: where(equal(u, 0), float("nan"), 0.0),
    },
)
STOP_GRADIENT = register(
    Op(
        name="stop_gradient",
        shape=elementwise_shape("stop_gradient"),
        impl=lambda x: x,
        vjp=_zero_vjp,
        jvp=_zero_jvp,
        mpmath=lambda x: x,
        sympy=lambda x: x,
        samples=(Sample(((3,),), zero_derivative=True),),
        analytic=False,
        doc="identity whose derivative is zero",
        kind="elementwise",
        holomorphic=True,
        rules={"taylor": _taylor.JVP_EACH},
    )
)


def floor(x):
    """The largest integer <= x (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the rounded entries (derivative zero), of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.floor(x), at={"x": [-1.5, 0.5, 2.0]}).tolist()  # as numpy's floor
    [-2.0, 0.0, 2.0]
    """
    return apply(FLOOR, x)


def ceil(x):
    """The smallest integer >= x (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the rounded entries (derivative zero), of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.ceil(x), at={"x": [-1.5, 0.5, 2.0]}).tolist()  # as numpy's ceil
    [-1.0, 1.0, 2.0]
    """
    return apply(CEIL, x)


def round(x):  # noqa: A001 - numpy-like name
    """x rounded to the nearest integer, halves to even as numpy (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the rounded entries (derivative zero), of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.round(x), at={"x": [0.5, 1.5, 2.5, -0.5]}).tolist()  # halves to even
    [0.0, 2.0, 2.0, -0.0]
    """
    return apply(ROUND, x)


def trunc(x):
    """x rounded toward zero (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the rounded entries (derivative zero), of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.trunc(x), at={"x": [-1.5, 0.5, 2.7]}).tolist()  # as numpy's trunc
    [-1.0, 0.0, 2.0]
    """
    return apply(TRUNC, x)


def sign(x):
    """-1, 0 or 1 (derivative zero).

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the signs (derivative zero), of ``x``'s shape.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.sign(x), at={"x": [-2.0, 0.0, 3.0]}).tolist()  # as numpy's sign
    [-1.0, 0.0, 1.0]
    """
    return apply(SIGN, x)


def stop_gradient(x):
    """x, treated as a constant by every differentiator.

    Args:
        x: a node, or a number or array.

    Returns:
        Node: ``x``'s value, with derivative zero.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.derivative(x * dk.stop_gradient(x), "x", at={"x": 3.0})  # d(x c)/dx = c = 3
    3.0
    """
    return apply(STOP_GRADIENT, x)


# ---- kinks: relu, abs, maximum, minimum, clip -----------------------------------------------


def _relu_impl(x):
    return np.maximum(x, 0) if x.dtype.kind != "c" else np.where(x.real > 0, x, 0)


RELU = unary(
    "relu",
    _relu_impl,
    # d/dx relu x = 1 if x > 0 else 0 (0 at the kink, as PyTorch)
    lambda ct, out, x: (ct * greater(x, 0),),
    lambda x: x if x > 0 or mpmath.isnan(x) else mpmath.mpf(0),  # NaN propagates, as numpy
    lambda x: sympy.Piecewise((x, x > 0), (0, True)),
    analytic=False,
    exact=lambda x: max(x, Fraction(0)),
    doc="max(x, 0); derivative 0 at 0",
    rules={"taylor": _taylor.JVP_EACH},
)


def _abs_jvp(tangents, out, x):
    # d|z| = Re(conj(z) dz) / |z| = Re(sign(conj z) dz); sign(x) dx for real x
    (t,) = tangents
    return None if t is None else apply("real", t * sign(apply("conj", x)))


ABS = register(
    Op(
        name="abs",
        shape=elementwise_shape("abs"),
        impl=np.abs,
        # d/dx |x| = sign x (0 at 0, as PyTorch); for complex z the transpose of
        # dz -> Re(conj(z) dz) / |z| under Re(c t) is c -> Re(c) conj(z) / |z| (JAX's)
        vjp=lambda ct, out, x: (apply("real", ct) * sign(apply("conj", x)),),
        jvp=_abs_jvp,
        mpmath=mpmath.fabs,
        sympy=SYMPY_ABS,
        samples=(Sample(((),)), Sample(((3, 4),))),
        analytic=False,
        exact=lambda x: -x if x < 0 else x,
        doc="abs(x); derivative 0 at 0",
        kind="elementwise",
        names=("Abs", "fabs"),
        numpy=(np.absolute, np.fabs),
        sympy_from=(sympy.Abs, SYMPY_ABS),
        rules={"taylor": _taylor.JVP_EACH},
    )
)


def relu(x):
    """max(x, 0); its derivative at 0 is 0, as in PyTorch.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: max(x, 0) of each entry.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.gradient(dk.sum(dk.relu(x)), at={"x": [-1.0, 0.0, 2.0]})["x"].tolist()  # torch.relu's
    [0.0, 0.0, 1.0]
    """
    return apply(RELU, x)


def abs(x):  # noqa: A001 - numpy-like name
    """abs(x); its derivative at 0 is 0, as in PyTorch.

    Args:
        x: a node, or a number or array (taken as a constant).

    Returns:
        Node: the absolute value of each entry (the modulus of a complex one).

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.gradient(dk.sum(dk.abs(x)), at={"x": [-2.0, 0.0, 2.0]})["x"].tolist()  # torch.abs's
    [-1.0, 0.0, 1.0]
    """
    return apply(ABS, x)


def _nan_or(a, b):
    """``a``, or NaN where either is NaN (numpy's maximum and minimum propagate NaN)."""
    return mpmath.nan if mpmath.isnan(a) or mpmath.isnan(b) else a


def _max_impl(a, b):
    if np.result_type(a, b).kind == "c":
        return np.where(a.real >= b.real, a, b)
    return np.maximum(a, b)


def _min_impl(a, b):
    if np.result_type(a, b).kind == "c":
        return np.where(a.real <= b.real, a, b)
    return np.minimum(a, b)


def _tie_split(a, b):
    """1 where a > b, 1/2 where a == b, 0 elsewhere: PyTorch's and JAX's rule at ties."""
    return 0.5 * (greater(a, b) + greater_equal(a, b))


MAXIMUM = binary(
    "maximum",
    _max_impl,
    # d max(a,b) = [a>b] da + [b>a] db, split evenly at ties
    lambda ct, out, a, b: (ct * _tie_split(a, b), ct * _tie_split(b, a)),
    lambda a, b: _nan_or(a, b) if a >= b else _nan_or(b, a),
    lambda a, b: _sympy_nan_guard(a, b, lambda: sympy.Max(a, b), sympy.nan),
    samples=binary_samples(),
    analytic=False,
    exact=lambda a, b: a if a >= b else b,
    doc="elementwise maximum",
    numpy=(np.maximum,),
    rules={"taylor": _taylor.JVP_EACH},
)
MINIMUM = binary(
    "minimum",
    _min_impl,
    # d min(a,b) = [a<b] da + [b<a] db, split evenly at ties
    lambda ct, out, a, b: (ct * _tie_split(b, a), ct * _tie_split(a, b)),
    lambda a, b: _nan_or(a, b) if a <= b else _nan_or(b, a),
    lambda a, b: _sympy_nan_guard(a, b, lambda: sympy.Min(a, b), sympy.nan),
    samples=binary_samples(),
    analytic=False,
    exact=lambda a, b: a if a <= b else b,
    doc="elementwise minimum",
    numpy=(np.minimum,),
    rules={"taylor": _taylor.JVP_EACH},
)


def maximum(a, b):
    """Elementwise maximum; at ties the derivative is split evenly (PyTorch, JAX).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the larger entry of each pair (NaN where either is NaN, as numpy).

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.maximum(a, b), at={"a": 1.0, "b": 1.0})  # a tie: 1/2 each
    {'a': 0.5, 'b': 0.5}
    """
    return apply(MAXIMUM, a, b)


def minimum(a, b):
    """Elementwise minimum; at ties the derivative is split evenly (PyTorch, JAX).

    Args:
        a, b: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the smaller entry of each pair (NaN where either is NaN, as numpy).

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.minimum(a, b), at={"a": 1.0, "b": 2.0})
    {'a': 1.0, 'b': 0.0}
    """
    return apply(MINIMUM, a, b)


def _clip_impl(x, lo, hi):
    if np.result_type(x, lo, hi).kind == "c":
        below, above = x.real < np.real(lo), x.real > np.real(hi)
        return np.where(np.real(lo) > np.real(hi), hi, np.where(below, lo, np.where(above, hi, x)))
    return np.minimum(np.maximum(x, lo), hi)


def _clip_vjp(ct, out, x, lo, hi):
    # out = min(max(x, lo), hi): the gradient goes to x where lo <= x <= hi (PyTorch's
    # clamp), to lo where x < lo <= hi, and to hi everywhere else
    inside = greater_equal(x, lo) * less_equal(x, hi)
    to_lo = less(x, lo) * less_equal(lo, hi)
    return ct * inside, ct * to_lo, ct * (1 - inside - to_lo)


def _clip_samples():
    def draw(shape):
        return lambda rng: [
            rng.uniform(-2, 2, shape),
            rng.uniform(-1.5, -0.5, shape),
            rng.uniform(0.5, 1.5, shape),
        ]

    return (Sample(((), (), ()), make=draw(())), Sample(((3, 4),) * 3, make=draw((3, 4))))


CLIP = register(
    Op(
        name="clip",
        shape=elementwise_shape("clip"),
        impl=_clip_impl,
        vjp=_clip_vjp,
        jvp=ELEMENTWISE,
        mpmath=lambda x, lo, hi: (
            mpmath.nan if any(mpmath.isnan(v) for v in (x, lo, hi)) else min(max(x, lo), hi)
        ),
        sympy=lambda x, lo, hi: sympy.Min(sympy.Max(x, lo), hi),
        samples=_clip_samples(),
        analytic=False,
        exact=lambda x, lo, hi: min(max(x, lo), hi),
        doc="x limited to [a_min, a_max]",
        kind="elementwise",
        rules={"taylor": _taylor.JVP_EACH},
    )
)


@builds(CLIP, numpy=(np.clip,))
def clip(x, a_min=None, a_max=None):
    """x limited to [a_min, a_max] (numpy's ``clip``; ``None`` for no bound). The
    gradient passes where a_min <= x <= a_max, ends included, as PyTorch's ``clamp``.

    Args:
        x: a node, or a number or array (taken as a constant).
        a_min, a_max: the bounds (numbers, arrays or nodes); None for no bound.

    Returns:
        Node: the clipped entries.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.derivative(dk.clip(x, 0.0, 1.0), "x", at={"x": 1.0})
    1.0
    """
    if a_min is None and a_max is None:
        raise ValueError("clip: give a_min, a_max or both")
    return apply(CLIP, x, -np.inf if a_min is None else a_min, np.inf if a_max is None else a_max)


# ---- selection ------------------------------------------------------------------------------


def _piecewise_from_sympy(e, arg):
    # Piecewise((v1, c1), (v2, c2), ...): the first true condition's value; NaN if none
    out = const(float("nan"))
    for pair in reversed(e.args):
        value, condition = pair.args
        out = where(arg(condition), arg(value), out)
    return out


def _dirac_from_sympy(e, arg):
    # DiracDelta(u) and its derivatives DiracDelta(u, k): 0 where u != 0, undefined at 0
    u = arg(e.args[0])
    return where(equal(u, 0), float("nan"), 0.0)


def _where_impl(c, a, b):
    return np.where(np.real(c) != 0, a, b)


WHERE = register(
    Op(
        name="where",
        shape=elementwise_shape("where"),
        impl=_where_impl,
        # d where(c, a, b) = where(c, da, 0) + where(c, 0, db)
        vjp=lambda ct, out, c, a, b: (None, where(c, ct, 0.0), where(c, 0.0, ct)),
        jvp=ELEMENTWISE,
        mpmath=lambda c, a, b: a if c != 0 else b,
        sympy=lambda c, a, b: sympy.Piecewise((a, sympy.Ne(c, 0)), (b, True)),
        samples=(
            Sample(
                ((3, 4), (3, 4), (3, 4)),
                const=(0,),
                make=lambda rng: [
                    (rng.uniform(size=(3, 4)) > 0.5).astype(float),
                    rng.uniform(-2, 2, (3, 4)),
                    rng.uniform(-2, 2, (3, 4)),
                ],
            ),
        ),
        analytic=True,
        exact=lambda c, a, b: a if c != 0 else b,
        nondiff_inputs=(0,),
        doc="a where c != 0, else b",
        kind="elementwise",
        sympy_from={
            sympy.Piecewise: _piecewise_from_sympy,
            sympy.ITE: lambda e, arg: where(*(arg(a) for a in e.args)),
            sympy.DiracDelta: _dirac_from_sympy,
        },
        rules={"taylor": _taylor.JVP_EACH},
    )
)


@builds(WHERE, numpy=(np.where,))
def where(condition, a, b):
    """``a`` where ``condition`` is nonzero, else ``b`` (``condition`` gets no derivative).

    Args:
        condition: a node or array; nonzero entries select ``a``.
        a, b: nodes, numbers or arrays, broadcast with ``condition``.

    Returns:
        Node: the selected entries, of the broadcast shape.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.where(x > 0, x, -x), at={"x": -3.0})
    3.0
    """
    return apply(WHERE, condition, a, b)


# ---- compositions the front doors reach: variadic max/min, logic, SymPy's step forms -------


def _some_zeros(rng, shape):
    return rng.uniform(-2, 2, shape) * (rng.uniform(size=shape) > 0.4)


def _two_masks(rng):
    return [_some_zeros(rng, (3, 4)), _some_zeros(rng, (4,))]


def _fold_left(fn, args):
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


@function(
    "max_of",
    names=("max", "Max"),
    sympy_from=(sympy.Max,),
    arity=(1, None),
    samples=(Sample(((), (), ())), Sample(((3, 4), (4,)))),
)
def _max_of(*args):
    """The largest of the arguments (the expression language's ``max(a, b, c)``)."""
    return _fold_left(maximum, args)


@function(
    "min_of",
    names=("min", "Min"),
    sympy_from=(sympy.Min,),
    arity=(1, None),
    samples=(Sample(((), (), ())), Sample(((3, 4), (4,)))),
)
def _min_of(*args):
    """The smallest of the arguments."""
    return _fold_left(minimum, args)


@function(
    "heaviside",
    names=("Heaviside", "heaviside"),
    numpy=(np.heaviside,),
    sympy_from=(sympy.Heaviside,),
    arity=(1, 2),
    samples=(
        # x on the integers, so some entries sit at the step: differentiated in at_zero only
        Sample(
            ((3, 4), ()), const=(0,), make=lambda rng: [np.round(rng.uniform(-2, 2, (3, 4))), 0.25]
        ),
    ),
)
def heaviside(x, at_zero=Fraction(1, 2)):
    """The step 1 for x > 0, ``at_zero`` at 0 (1/2 by default, as SymPy), 0 for x < 0."""
    return greater(x, 0) + equal(x, 0) * at_zero


@function(
    "logical_and",
    numpy=(np.logical_and,),
    sympy_from=(sympy.And,),
    arity=(2, None),
    samples=(Sample(((3, 4), (4,)), make=_two_masks),),
)
def logical_and(*args):
    """1 where every argument is nonzero, else 0."""
    return _fold_left(lambda a, b: not_equal(a, 0) * not_equal(b, 0), args)


@function(
    "logical_or",
    numpy=(np.logical_or,),
    sympy_from=(sympy.Or,),
    arity=(2, None),
    samples=(Sample(((3, 4), (4,)), make=_two_masks),),
)
def logical_or(*args):
    """1 where some argument is nonzero, else 0."""
    return _fold_left(lambda a, b: maximum(not_equal(a, 0), not_equal(b, 0)), args)


@function(
    "logical_not",
    numpy=(np.logical_not,),
    sympy_from=(sympy.Not,),
    samples=(Sample(((3, 4),), make=lambda rng: [_some_zeros(rng, (3, 4))]),),
)
def logical_not(x):
    """1 where x is 0, else 0."""
    return equal(x, 0)

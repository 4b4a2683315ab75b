"""Arithmetic: add, sub, mul, div, neg, power and mod, elementwise with numpy's broadcasting.

Build-time folds are exact for every float: ``x + 0``, ``x * 1``, ``x * -1``, ``x / 1``,
``x ** 1``, ``x ** 0`` (numpy's ``nan ** 0`` is 1) and ``1 ** x``. ``0 * x`` folds only
when ``x`` is a finite constant, and ``x - x`` never does, since ``inf - inf`` is NaN.
(The sign of a zero is the one thing a fold may change: ``-0.0 + 0`` folds to ``-0.0``.)
Rational constants combine exactly (``1/3`` stays one third until evaluated).
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import sympy

from ..ir.node import apply, as_node, const, is_const
from ..ir.op import Sample, function
from ..ir.shapes import broadcast
from . import _taylor
from ._common import S1, binary, keep, unary

__all__ = ["add", "sub", "mul", "div", "neg", "power", "square", "mod", "remainder"]


def _finite_const(node) -> bool:
    return node.kind == "const" and bool(np.all(np.isfinite(node.value)))


def _fold_add(a, b):
    shape = broadcast("add", a.shape, b.shape)
    if is_const(a, 0):
        return keep(b, shape)
    if is_const(b, 0):
        return keep(a, shape)
    return None


ADD = binary(
    "add",
    np.add,
    lambda ct, out, a, b: (ct, ct),  # d(a+b) = da + db
    lambda a, b: a + b,
    lambda a, b: a + b,
    fold=_fold_add,
    exact=lambda a, b: a + b,
    doc="a + b",
    numpy=(np.add,),
    sympy_from=(sympy.Add,),
    rules={"taylor": _taylor.add_rule},
)


def _fold_sub(a, b):
    shape = broadcast("sub", a.shape, b.shape)
    if is_const(b, 0):
        return keep(a, shape)
    if is_const(a, 0):
        return keep(neg(b), shape)
    return None


SUB = binary(
    "sub",
    np.subtract,
    lambda ct, out, a, b: (ct, neg(ct)),  # d(a-b) = da - db
    lambda a, b: a - b,
    lambda a, b: a - b,
    fold=_fold_sub,
    exact=lambda a, b: a - b,
    doc="a - b",
    numpy=(np.subtract,),
    rules={"taylor": _taylor.sub_rule},
)


def _fold_mul(a, b):
    shape = broadcast("mul", a.shape, b.shape)
    if (is_const(a, 0) and _finite_const(b)) or (is_const(b, 0) and _finite_const(a)):
        return const(np.zeros(shape))
    for one, other in ((a, b), (b, a)):
        if is_const(one, 1):
            return keep(other, shape)
        if is_const(one, -1):
            return keep(neg(other), shape)
    return None


MUL = binary(
    "mul",
    np.multiply,
    lambda ct, out, a, b: (ct * b, ct * a),  # d(ab) = b da + a db
    lambda a, b: a * b,
    lambda a, b: a * b,
    fold=_fold_mul,
    exact=lambda a, b: a * b,
    doc="a * b",
    numpy=(np.multiply,),
    sympy_from=(sympy.Mul,),
    rules={"taylor": _taylor.mul_rule},
)


def _fold_div(a, b):
    shape = broadcast("div", a.shape, b.shape)
    if is_const(b, 1):
        return keep(a, shape)
    if is_const(b, -1):
        return keep(neg(a), shape)
    if is_const(a, 0) and _finite_const(b) and not np.any(b.value == 0):
        return const(np.zeros(shape))
    return None


DIV = binary(
    "div",
    np.true_divide,
    # d(a/b) = da / b - (a/b) db / b
    lambda ct, out, a, b: (ct / b, neg(ct * out / b)),
    lambda a, b: a / b,
    lambda a, b: a / b,
    samples=(Sample(((), ()), low=0.5, high=2.0), Sample(((3, 4), (4,)), low=0.5, high=2.0)),
    fold=_fold_div,
    exact=lambda a, b: a / b if b != 0 else None,
    doc="a / b",
    numpy=(np.true_divide,),
    rules={"taylor": _taylor.div_rule},
)


def _fold_neg(a):
    if a.kind == "op" and a.op.name == "neg":
        return a.inputs[0]
    return None


NEG = unary(
    "neg",
    np.negative,
    lambda ct, out, a: (neg(ct),),  # d(-a) = -da
    lambda a: -a,
    lambda a: -a,
    samples=S1,
    fold=_fold_neg,
    exact=lambda a: -a,
    doc="-a",
    numpy=(np.negative,),
    rules={"taylor": _taylor.neg_rule},
)


def _fold_pow(a, b):
    shape = broadcast("pow", a.shape, b.shape)
    if is_const(b, 1):
        return keep(a, shape)
    if is_const(b, 0) or is_const(a, 1):  # exact in IEEE arithmetic: nan**0 == 1**nan == 1
        return const(np.ones(shape))
    return None


_POW_BITS = 4096


def _pow_from_sympy(e, arg):
    """SymPy writes square roots and reciprocals as powers."""
    base, exponent = e.args
    if exponent == sympy.Rational(1, 2):
        return apply("sqrt", arg(base))
    if exponent == -1:
        return div(1, arg(base))
    return power(arg(base), arg(exponent))


def _pow_exact(a: Fraction, b: Fraction):
    """a ** b for an integer b whose result stays below a few thousand bits."""
    if b.denominator != 1 or (a == 0 and b < 0):
        return None
    bits = a.numerator.bit_length() + a.denominator.bit_length()
    if abs(b.numerator) * bits > _POW_BITS:
        return None
    return a**b.numerator


def _pow_vjp(ct, out, a, b):
    # d(a^b) = b a^(b-1) da + a^b log(a) db; the db term is 0 where a = 0 (JAX's rule)
    da = ct * b * power(a, b - 1)
    if b.kind == "const":
        return da, None
    safe = apply("where", apply("equal", a, 0.0), 1.0, a)
    return da, ct * out * apply("log", safe)


def _pow_sympy(a, b):
    # SymPy's d/db 0**b is 0**b log(0) = NaN; as a function of b, 0**b is 0 for b > 0
    if a == 0:
        return sympy.Piecewise((0, b > 0), (1, sympy.Eq(b, 0)), (sympy.zoo, True))
    return a**b


POW = binary(
    "pow",
    np.power,
    _pow_vjp,
    lambda a, b: a**b,
    _pow_sympy,
    samples=(
        Sample(((), ()), low=0.5, high=2.0),
        Sample(((3,), (3,)), low=0.5, high=2.0),
        Sample(
            ((2, 3), ()),
            make=lambda rng: [rng.uniform(-2, 2, (2, 3)), np.array(3.0)],
            const=(1,),
        ),
        Sample(  # 0 ** y: derivative 0 in y
            ((3,), (3,)),
            make=lambda rng: [np.zeros(3), rng.uniform(1.5, 3, 3)],
            const=(0,),
        ),
    ),
    fold=_fold_pow,
    exact=_pow_exact,
    doc="a ** b",
    names=("power",),
    numpy=(np.power, np.float_power),
    sympy_from={sympy.Pow: _pow_from_sympy},
    rules={"taylor": _taylor.pow_rule},
)


def _mod_impl(a, b):
    if np.result_type(a, b).kind == "c":
        return a - b * np.floor((a / b).real)
    return np.mod(a, b)


def _mod_samples():
    def make(shape):
        def draw(rng):  # a / b well inside (q, q + 1): no jump within a difference step
            b = rng.uniform(1.0, 2.0, shape)
            return [b * (rng.integers(-2, 3, shape) + rng.uniform(0.2, 0.8, shape)), b]

        return draw

    return (Sample(((), ()), make=make(())), Sample(((3, 4), (3, 4)), make=make((3, 4))))


MOD = binary(
    "mod",
    _mod_impl,
    # a mod b = a - b floor(a/b): d = da - floor(a/b) db away from the jumps
    lambda ct, out, a, b: (ct, neg(ct * apply("floor", a / b))),
    lambda a, b: a - b * mpmath.floor(a / b),
    lambda a, b: sympy.nan if b == 0 else sympy.Mod(a, b),  # numpy: x mod 0 is NaN
    samples=_mod_samples(),
    analytic=False,
    exact=lambda a, b: a % b if b != 0 else None,
    doc="a mod b with the sign of b (numpy's mod, Python's %)",
    names=("Mod", "remainder"),
    numpy=(np.mod,),
    sympy_from=(sympy.Mod,),
    discontinuous=True,
    rules={"taylor": _taylor.JVP_EACH},
)


def add(a, b):
    """a + b, broadcasting.

    Args:
        a, b: nodes, numbers or arrays, broadcast together (numpy's rules).

    Returns:
        Node: the elementwise result, of the broadcast shape.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.add(a, b), at={"a": 3.0, "b": 2.0})  # 1, 1
    {'a': 1.0, 'b': 1.0}
    """
    return apply(ADD, a, b)


def sub(a, b):
    """a - b, broadcasting.

    Args:
        a, b: nodes, numbers or arrays, broadcast together (numpy's rules).

    Returns:
        Node: the elementwise result, of the broadcast shape.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.sub(a, b), at={"a": 3.0, "b": 2.0})  # 1, -1
    {'a': 1.0, 'b': -1.0}
    """
    return apply(SUB, a, b)


def mul(a, b):
    """a * b, broadcasting.

    Args:
        a, b: nodes, numbers or arrays, broadcast together (numpy's rules).

    Returns:
        Node: the elementwise result, of the broadcast shape.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.mul(a, b), at={"a": 3.0, "b": 2.0})  # b, a
    {'a': 2.0, 'b': 3.0}
    """
    return apply(MUL, a, b)


def div(a, b):
    """a / b, broadcasting.

    Args:
        a, b: nodes, numbers or arrays, broadcast together (numpy's rules).

    Returns:
        Node: the elementwise result, of the broadcast shape.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk
    >>> a, b = dk.variables("a b")
    >>> dk.gradient(dk.div(a, b), at={"a": 3.0, "b": 2.0})  # 1/b, -a/b^2
    {'a': 0.5, 'b': -0.75}
    """
    return apply(DIV, a, b)


def neg(a):
    """-a.

    Args:
        a: a node, or a number or array (taken as a constant).

    Returns:
        Node: the negated entries, of ``a``'s shape.

    >>> import diffkit as dk
    >>> a = dk.variable("a")
    >>> dk.evaluate(dk.neg(a), at={"a": 2.0}), dk.derivative(dk.neg(a), "a", at={"a": 2.0})
    (-2.0, -1.0)
    """
    return apply(NEG, a)


def power(a, b):
    """a ** b, broadcasting; d/db is 0 where a = 0, as in JAX.

    Args:
        a, b: the base and the exponent: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise power.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk
    >>> y = dk.variable("y")
    >>> dk.derivative(dk.power(0.0, y), "y", at={"y": 2.0})
    0.0
    """
    return apply(POW, a, b)


@function(numpy=(np.square,), names=("square",), samples=S1)
def square(a):
    """a ** 2.

    Args:
        a: a node, or a number or array (taken as a constant).

    Returns:
        Node: the squared entries, of ``a``'s shape.

    >>> import diffkit as dk
    >>> a = dk.variable("a")
    >>> dk.evaluate(dk.square(a), at={"a": 3.0}), dk.derivative(dk.square(a), "a", at={"a": 3.0})
    (9.0, 6.0)
    """
    return apply(POW, a, 2)


def mod(a, b):
    """a mod b, with the sign of b (numpy's ``mod``, Python's ``%``); d/da = 1,
    d/db = -floor(a/b) away from the jumps.

    Args:
        a, b: the dividend and the divisor: nodes, numbers or arrays, broadcast together.

    Returns:
        Node: the elementwise remainder, of the sign of ``b``.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk
    >>> dk.evaluate(dk.mod(dk.variable("a"), 3), at={"a": -7.0})
    2.0
    """
    return apply(MOD, a, b)


remainder = mod


@function(numpy=(np.positive,), samples=S1)
def positive(a):
    """+a: ``a`` itself."""
    return as_node(a)


@function(
    "product_of",
    names=("prod",),
    arity=(1, None),
    samples=(Sample(((), (), ())), Sample(((3, 1), (4,), (3, 4)))),
)
def _product_of(*args):
    """The product of the arguments (the expression language's ``prod(a, b, c)``)."""
    out = as_node(args[0])
    for a in args[1:]:
        out = mul(out, a)
    return out

"""Elementwise ops: arithmetic, transcendental functions, comparisons and selection.

Each op is one record. Elementwise ops take ``jvp=ELEMENTWISE``: their Jacobian
is diagonal, so the tangent is the VJP rule applied to the tangent. Broadcasting
is numpy's; the reverse-mode engine sums cotangents back to each input's shape.
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy

from ..ir.node import apply, const, is_const
from ..ir.op import ELEMENTWISE, Op, Sample, register
from ..ir.shapes import broadcast, elementwise_shape

__all__ = [
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "power",
    "exp",
    "log",
    "log1p",
    "sin",
    "cos",
    "tan",
    "tanh",
    "sqrt",
    "relu",
    "abs",
    "sign",
    "maximum",
    "minimum",
    "where",
    "greater",
    "greater_equal",
    "stop_gradient",
    "square",
]

_S1 = (Sample(((),)), Sample(((3, 4),)))
_POS = dict(low=0.3, high=3.0)


def _keep(node, shape):
    """``node`` broadcast to ``shape`` (folding must not change the output's shape)."""
    if node.shape == shape:
        return node
    return apply("broadcast_to", node, shape=shape)


def _unary(name, impl, vjp, mp, sp, *, samples=_S1, analytic=True, fold=None, doc=""):
    return register(
        Op(
            name=name,
            shape=elementwise_shape(name),
            impl=impl,
            vjp=vjp,
            jvp=ELEMENTWISE,
            mpmath=mp,
            sympy=sp,
            samples=samples,
            analytic=analytic,
            fold=fold,
            doc=doc,
        )
    )


def _binary_samples(**kw):
    return (
        Sample(((), ()), **kw),
        Sample(((3, 4), (3, 4)), **kw),
        Sample(((2, 3), (3,)), **kw),
        Sample(((4, 1), (1, 5)), **kw),
    )


# ---- arithmetic ------------------------------------------------------------------


def _fold_add(a, b):
    shape = broadcast("add", a.shape, b.shape)
    if is_const(a, 0):
        return _keep(b, shape)
    if is_const(b, 0):
        return _keep(a, shape)
    return None


ADD = register(
    Op(
        name="add",
        shape=elementwise_shape("add"),
        impl=np.add,
        # d(a+b) = da + db
        vjp=lambda ct, out, a, b: (ct, ct),
        jvp=ELEMENTWISE,
        mpmath=lambda a, b: a + b,
        sympy=lambda a, b: a + b,
        samples=_binary_samples(),
        analytic=True,
        fold=_fold_add,
        doc="a + b",
    )
)


def _fold_sub(a, b):
    shape = broadcast("sub", a.shape, b.shape)
    if is_const(b, 0):
        return _keep(a, shape)
    if is_const(a, 0):
        return _keep(neg(b), shape)
    if a is b:
        return const(np.zeros(shape))
    return None


SUB = register(
    Op(
        name="sub",
        shape=elementwise_shape("sub"),
        impl=np.subtract,
        # d(a-b) = da - db
        vjp=lambda ct, out, a, b: (ct, neg(ct)),
        jvp=ELEMENTWISE,
        mpmath=lambda a, b: a - b,
        sympy=lambda a, b: a - b,
        samples=_binary_samples(),
        analytic=True,
        fold=_fold_sub,
        doc="a - b",
    )
)


def _fold_mul(a, b):
    shape = broadcast("mul", a.shape, b.shape)
    if is_const(a, 0) or is_const(b, 0):
        return const(np.zeros(shape))
    if is_const(a, 1):
        return _keep(b, shape)
    if is_const(b, 1):
        return _keep(a, shape)
    if is_const(a, -1):
        return _keep(neg(b), shape)
    if is_const(b, -1):
        return _keep(neg(a), shape)
    return None


MUL = register(
    Op(
        name="mul",
        shape=elementwise_shape("mul"),
        impl=np.multiply,
        # d(ab) = b da + a db
        vjp=lambda ct, out, a, b: (ct * b, ct * a),
        jvp=ELEMENTWISE,
        mpmath=lambda a, b: a * b,
        sympy=lambda a, b: a * b,
        samples=_binary_samples(),
        analytic=True,
        fold=_fold_mul,
        doc="a * b",
    )
)


def _fold_div(a, b):
    shape = broadcast("div", a.shape, b.shape)
    if is_const(b, 1):
        return _keep(a, shape)
    if is_const(a, 0) and not is_const(b, 0):
        return const(np.zeros(shape))
    return None


DIV = register(
    Op(
        name="div",
        shape=elementwise_shape("div"),
        impl=np.true_divide,
        # d(a/b) = da / b - (a/b) db / b
        vjp=lambda ct, out, a, b: (ct / b, neg(ct * out / b)),
        jvp=ELEMENTWISE,
        mpmath=lambda a, b: a / b,
        sympy=lambda a, b: a / b,
        samples=(Sample(((), ()), low=0.5, high=2.0), Sample(((3, 4), (4,)), low=0.5, high=2.0)),
        analytic=True,
        fold=_fold_div,
        doc="a / b",
    )
)


def _fold_neg(a):
    if a.kind == "op" and a.op.name == "neg":
        return a.inputs[0]
    return None


NEG = register(
    Op(
        name="neg",
        shape=elementwise_shape("neg"),
        impl=np.negative,
        # d(-a) = -da
        vjp=lambda ct, out, a: (neg(ct),),
        jvp=ELEMENTWISE,
        mpmath=lambda a: -a,
        sympy=lambda a: -a,
        samples=_S1,
        analytic=True,
        fold=_fold_neg,
        doc="-a",
    )
)


def _fold_pow(a, b):
    shape = broadcast("pow", a.shape, b.shape)
    if is_const(b, 1):
        return _keep(a, shape)
    if is_const(b, 0) or is_const(a, 1):
        return const(np.ones(shape))
    return None


def _pow_vjp(ct, out, a, b):
    # d(a^b) = b a^(b-1) da + a^b log(a) db
    da = ct * b * power(a, b - 1)
    db = None if b.kind == "const" else ct * out * log(a)
    return da, db


POW = register(
    Op(
        name="pow",
        shape=elementwise_shape("pow"),
        impl=np.power,
        vjp=_pow_vjp,
        jvp=ELEMENTWISE,
        mpmath=lambda a, b: a**b,
        sympy=lambda a, b: a**b,
        samples=(
            Sample(((), ()), low=0.5, high=2.0),
            Sample(((3,), (3,)), low=0.5, high=2.0),
            Sample(
                ((2, 3), ()),
                make=lambda rng: [rng.uniform(-2, 2, (2, 3)), np.array(3.0)],
                const=(1,),
            ),
        ),
        analytic=True,
        fold=_fold_pow,
        doc="a ** b",
    )
)


def add(a, b):
    """a + b, broadcasting."""
    return apply(ADD, a, b)


def sub(a, b):
    """a - b, broadcasting."""
    return apply(SUB, a, b)


def mul(a, b):
    """a * b, broadcasting."""
    return apply(MUL, a, b)


def div(a, b):
    """a / b, broadcasting."""
    return apply(DIV, a, b)


def neg(a):
    """-a."""
    return apply(NEG, a)


def power(a, b):
    """a ** b, broadcasting."""
    return apply(POW, a, b)


def square(a):
    """a ** 2."""
    return apply(POW, a, 2)


# ---- transcendental functions ------------------------------------------------------

EXP = _unary(
    "exp",
    np.exp,
    lambda ct, out, x: (ct * out,),  # d/dx exp x = exp x
    mpmath.exp,
    sympy.exp,
    doc="e ** x",
)
LOG = _unary(
    "log",
    np.log,
    lambda ct, out, x: (ct / x,),  # d/dx log x = 1/x
    mpmath.log,
    sympy.log,
    samples=(Sample(((),), **_POS), Sample(((3, 4),), **_POS)),
    doc="natural logarithm",
)
LOG1P = _unary(
    "log1p",
    np.log1p,
    lambda ct, out, x: (ct / (1 + x),),  # d/dx log(1+x) = 1/(1+x)
    lambda x: mpmath.log(1 + x),
    lambda x: sympy.log(1 + x),
    samples=(Sample(((),), low=-0.5, high=2.0), Sample(((3,),), low=-0.5, high=2.0)),
    doc="log(1 + x), accurate for small x",
)
SIN = _unary(
    "sin",
    np.sin,
    lambda ct, out, x: (ct * cos(x),),  # d/dx sin x = cos x
    mpmath.sin,
    sympy.sin,
    doc="sine",
)
COS = _unary(
    "cos",
    np.cos,
    lambda ct, out, x: (neg(ct * sin(x)),),  # d/dx cos x = -sin x
    mpmath.cos,
    sympy.cos,
    doc="cosine",
)
TAN = _unary(
    "tan",
    np.tan,
    lambda ct, out, x: (ct * (1 + out * out),),  # d/dx tan x = 1 + tan^2 x
    mpmath.tan,
    sympy.tan,
    samples=(Sample(((),), low=-1.2, high=1.2), Sample(((3,),), low=-1.2, high=1.2)),
    doc="tangent",
)
TANH = _unary(
    "tanh",
    np.tanh,
    lambda ct, out, x: (ct * (1 - out * out),),  # 1 - tanh^2
    mpmath.tanh,
    sympy.tanh,
    doc="hyperbolic tangent",
)
SQRT = _unary(
    "sqrt",
    np.sqrt,
    lambda ct, out, x: (ct * 0.5 / out,),  # d/dx sqrt x = 1/(2 sqrt x)
    mpmath.sqrt,
    sympy.sqrt,
    samples=(Sample(((),), **_POS), Sample(((3,),), **_POS)),
    doc="square root",
)


def exp(x):
    """e ** x."""
    return apply(EXP, x)


def log(x):
    """Natural logarithm."""
    return apply(LOG, x)


def log1p(x):
    """log(1 + x)."""
    return apply(LOG1P, x)


def sin(x):
    """Sine."""
    return apply(SIN, x)


def cos(x):
    """Cosine."""
    return apply(COS, x)


def tan(x):
    """Tangent."""
    return apply(TAN, x)


def tanh(x):
    """Hyperbolic tangent."""
    return apply(TANH, x)


def sqrt(x):
    """Square root."""
    return apply(SQRT, x)


# ---- comparisons, kinks and selection --------------------------------------------


def _cmp(fn):
    def impl(a, b):
        a_r, b_r = np.real(a), np.real(b)
        return fn(a_r, b_r).astype(np.result_type(a, b))

    return impl


def _zero_vjp(ct, out, *inputs, **_):
    # piecewise constant: derivative 0 wherever it exists
    return (None,) * len(inputs)


def _zero_jvp(tangents, out, *inputs, **_):
    return None


_CMP_SAMPLES = (Sample(((3, 4), (3, 4)), second_order=False),)

GREATER = register(
    Op(
        name="greater",
        shape=elementwise_shape("greater"),
        impl=_cmp(np.greater),
        vjp=_zero_vjp,
        jvp=_zero_jvp,
        mpmath=lambda a, b: mpmath.mpf(1) if a > b else mpmath.mpf(0),
        sympy=lambda a, b: sympy.Piecewise((1, a > b), (0, True)),
        samples=_CMP_SAMPLES,
        analytic=False,
        doc="1 where a > b, else 0",
    )
)
GREATER_EQUAL = register(
    Op(
        name="greater_equal",
        shape=elementwise_shape("greater_equal"),
        impl=_cmp(np.greater_equal),
        vjp=_zero_vjp,
        jvp=_zero_jvp,
        mpmath=lambda a, b: mpmath.mpf(1) if a >= b else mpmath.mpf(0),
        sympy=lambda a, b: sympy.Piecewise((1, a >= b), (0, True)),
        samples=_CMP_SAMPLES,
        analytic=False,
        doc="1 where a >= b, else 0",
    )
)
SIGN = _unary(
    "sign",
    lambda x: np.sign(np.real(x)).astype(x.dtype),
    _zero_vjp,
    mpmath.sign,
    sympy.sign,
    analytic=False,
    samples=(Sample(((3, 4),), second_order=False),),
    doc="sign, 0 at 0",
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
    )
)


def greater(a, b):
    """1.0 where a > b, else 0.0 (derivative zero)."""
    return apply(GREATER, a, b)


def greater_equal(a, b):
    """1.0 where a >= b, else 0.0 (derivative zero)."""
    return apply(GREATER_EQUAL, a, b)


def sign(x):
    """-1, 0 or 1 (derivative zero)."""
    return apply(SIGN, x)


def stop_gradient(x):
    """x, treated as a constant by every differentiator."""
    return apply(STOP_GRADIENT, x)


def _relu_impl(x):
    return np.maximum(x, 0) if x.dtype.kind != "c" else np.where(x.real > 0, x, 0)


RELU = _unary(
    "relu",
    _relu_impl,
    # d/dx relu x = 1 if x > 0 else 0 (0 at the kink, as PyTorch)
    lambda ct, out, x: (ct * greater(x, 0),),
    lambda x: x if x > 0 else mpmath.mpf(0),
    lambda x: sympy.Max(x, 0),
    analytic=False,
    doc="max(x, 0); derivative 0 at 0",
)
ABS = _unary(
    "abs",
    lambda x: np.abs(x) if x.dtype.kind != "c" else np.where(x.real < 0, -x, x),
    # d/dx |x| = sign x (0 at 0, as PyTorch)
    lambda ct, out, x: (ct * sign(x),),
    mpmath.fabs,
    sympy.Abs,
    analytic=False,
    doc="|x|; derivative 0 at 0",
)


def relu(x):
    """max(x, 0); its derivative at 0 is 0, as in PyTorch."""
    return apply(RELU, x)


def abs(x):  # noqa: A001 - numpy-like name
    """|x|; its derivative at 0 is 0, as in PyTorch."""
    return apply(ABS, x)


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


MAXIMUM = register(
    Op(
        name="maximum",
        shape=elementwise_shape("maximum"),
        impl=_max_impl,
        # d max(a,b) = [a>b] da + [b>a] db, split evenly at ties
        vjp=lambda ct, out, a, b: (ct * _tie_split(a, b), ct * _tie_split(b, a)),
        jvp=ELEMENTWISE,
        mpmath=lambda a, b: a if a >= b else b,
        sympy=sympy.Max,
        samples=_binary_samples(),
        analytic=False,
        doc="elementwise maximum",
    )
)
MINIMUM = register(
    Op(
        name="minimum",
        shape=elementwise_shape("minimum"),
        impl=_min_impl,
        # d min(a,b) = [a<b] da + [b<a] db, split evenly at ties
        vjp=lambda ct, out, a, b: (ct * _tie_split(b, a), ct * _tie_split(a, b)),
        jvp=ELEMENTWISE,
        mpmath=lambda a, b: a if a <= b else b,
        sympy=sympy.Min,
        samples=_binary_samples(),
        analytic=False,
        doc="elementwise minimum",
    )
)


def maximum(a, b):
    """Elementwise maximum; at ties the derivative is split evenly (PyTorch, JAX)."""
    return apply(MAXIMUM, a, b)


def minimum(a, b):
    """Elementwise minimum; at ties the derivative is split evenly (PyTorch, JAX)."""
    return apply(MINIMUM, a, b)


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
        nondiff_inputs=(0,),
        doc="a where c != 0, else b",
    )
)


def where(condition, a, b):
    """``a`` where ``condition`` is nonzero, else ``b`` (``condition`` gets no derivative).

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.evaluate(dk.where(x > 0, x, -x), at={"x": -3.0})
    3.0
    """
    return apply(WHERE, condition, a, b)

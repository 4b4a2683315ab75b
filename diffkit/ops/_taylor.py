"""Taylor rules: how an op maps truncated Taylor series of its inputs to its output's.

Series are normalized: an input path is ``x(t) = x_0 + x_1 t + x_2 t^2 + ... + x_K t^K``
(``x_k`` is the k-th derivative along the path divided by k!), each ``x_k`` a node of the
input's shape, ``None`` for a zero coefficient. A rule is
``rule(node, series, order) -> [y_1, ..., y_K]``: ``node`` is the op's node (its value
is ``y_0``), ``series`` one list ``[x_0, x_1, ..., x_K]`` per input with ``x_0`` the input
node itself. Rules build IR, so Taylor coefficients are graphs like any derivative.

The rule kind ``"taylor"`` is declared here. Records write the standard recurrences
(``rules={"taylor": ...}``): products are Cauchy products, and a function ``y = f(a)``
whose derivative satisfies ``y' = g a'`` with ``g`` known as a series gives
``k y_k = sum_j j a_j g_(k-j)`` (exp, sin/cos, tanh, erf...), while ``u y' = a'`` gives
``y`` by a triangular solve (log, arctan, arcsin...). Two markers stand for rules that
:mod:`diffkit.differentiators.taylor` computes from the op's JVP rule:

- :data:`JVP_EACH`: the op is linear, or linear between its kinks and jumps (relu,
  maximum, floor, where, reshape, sum...), so each coefficient maps by the JVP;
- :data:`NESTED_JVP`: no recurrence is known; the coefficients come from K nested
  JVPs of the op along the input polynomial (correct for every op with a JVP rule, and
  far more graph than a recurrence). Derived for ops whose record writes no rule.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.node import Node, apply
from ..ir.op import LINEAR, Unsupported, get_op, rule_kind

__all__ = [
    "NESTED_JVP",
    "ARRAY_RULES",
    "call",
    "JVP_EACH",
    "add_rule",
    "sub_rule",
    "neg_rule",
    "mul_rule",
    "div_rule",
    "pow_rule",
    "exp_rule",
    "exp2_rule",
    "expm1_rule",
    "log_rule",
    "log2_rule",
    "log10_rule",
    "log1p_rule",
    "sin_rule",
    "cos_rule",
    "tan_rule",
    "sinh_rule",
    "cosh_rule",
    "tanh_rule",
    "arcsin_rule",
    "arccos_rule",
    "arctan_rule",
    "arcsinh_rule",
    "arccosh_rule",
    "arctanh_rule",
    "sqrt_rule",
    "cbrt_rule",
    "erf_rule",
    "erfc_rule",
    "erfinv_rule",
    "sigmoid_rule",
    "softplus_rule",
    "hypot_rule",
    "arctan2_rule",
    "logaddexp_rule",
    "logaddexp2_rule",
]


class _Marker:
    def __init__(self, name: str, doc: str) -> None:
        self.name, self.__doc__ = name, doc

    def __repr__(self) -> str:
        return self.name


#: coefficients from nested JVPs along the input polynomial (no recurrence known)
NESTED_JVP = _Marker("NESTED_JVP", "Taylor rule from nested JVPs (generic, no recurrence)")
#: each coefficient mapped by the op's JVP (linear, or linear between kinks)
JVP_EACH = _Marker("JVP_EACH", "Taylor rule of a locally linear op: the JVP of each coefficient")


# ---- series arithmetic (None is a zero coefficient) -------------------------------------
def _sum(*terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _mul(a, b):
    return None if a is None or b is None else a * b


def _scale(a, c: float):
    return None if a is None or c == 0 else (a if c == 1 else a * c)


def _neg(a):
    return None if a is None else -a


def conv(a: list, b: list, k: int, lo: int = 0, hi: int | None = None):
    """The Cauchy product's k-th coefficient sum_(j=lo..hi) a_j b_(k-j)."""
    hi = k if hi is None else hi
    return _sum(*[_mul(a[j], b[k - j]) for j in range(lo, hi + 1)])


def _ode(a: list, g: list, k: int):
    # y' = g a'  =>  k y_k = sum_(j=1..k) j a_j g_(k-j)
    return _scale(_sum(*[_scale(_mul(a[j], g[k - j]), j) for j in range(1, k + 1)]), 1 / k)


def _ode_div(a: list, u: list, y: list, k: int):
    # u y' = a'  =>  k u_0 y_k = k a_k - sum_(j=1..k-1) (k-j) u_j y_(k-j)
    rest = _sum(*[_scale(_mul(u[j], y[k - j]), k - j) for j in range(1, k)])
    top = _sum(_scale(a[k], k), _neg(rest))
    return None if top is None else top / (u[0] * k)


def _sqrt_series(v: list, u0, order: int) -> list:
    # u^2 = v  =>  2 u_0 u_k = v_k - sum_(j=1..k-1) u_j u_(k-j)
    u = [u0]
    for k in range(1, order + 1):
        top = _sum(v[k], _neg(conv(u, u, k, 1, k - 1)))
        u.append(None if top is None else top / (2 * u0))
    return u


def _exp_series(q: list, e0, order: int, factor: float = 1.0) -> list:
    # e = exp(factor q)  =>  k e_k = factor sum_j j q_j e_(k-j)
    e = [e0]
    for k in range(1, order + 1):
        e.append(_scale(_ode(q, e, k), factor))
    return e


def _log_series(u: list, order: int) -> list:
    # y = log u  =>  u_0 y_k = u_k - (1/k) sum_(j=1..k-1) j y_j u_(k-j)
    y = [None]
    for k in range(1, order + 1):
        rest = _sum(*[_scale(_mul(y[j], u[k - j]), j / k) for j in range(1, k)])
        top = _sum(u[k], _neg(rest))
        y.append(None if top is None else top / u[0])
    return y[1:]


def _square(a: list, order: int, c0=0.0, sign: float = 1.0) -> list:
    """The series of ``c0 + sign a^2`` (its 0-th coefficient built from ``a_0``)."""
    return [c0 + sign * a[0] * a[0]] + [_scale(conv(a, a, k), sign) for k in range(1, order + 1)]


def _integrate(a: list, g: list, order: int, factor: float = 1.0) -> list:
    return [_scale(_ode(a, g, k), factor) for k in range(1, order + 1)]


# ---- rules on nodes and on arrays ----------------------------------------------------------
def call(name: str, x):
    """The op ``name`` of ``x``: a node for a node, its value for an array, so that the rules
    written with operators and ``call`` run on arrays too (Taylor mode in numbers)."""
    if isinstance(x, Node):
        return apply(name, x)
    return get_op(name).impl(x)


def _constant_scalar(p) -> float | None:
    """The value of a 0-d real constant (a const node, or an array, which is constant along
    the path when its series is zero), else None."""
    if isinstance(p, Node):
        if p.kind != "const" or p.value.shape != ():
            return None
        p = p.value
    p = np.asarray(p)
    return float(p) if p.shape == () and p.dtype.kind in "biuf" else None


#: the rules written with operators and :func:`call` alone, which run on arrays as well as
#: on nodes (the numeric Taylor mode of :func:`diffkit.differentiators.taylor.jet` calls
#: them on values; every other rule is built once as IR and compiled)
ARRAY_RULES: frozenset = frozenset()


# ---- linear and bilinear ----------------------------------------------------------------
def add_rule(node, series, order):
    # (a + b)_k = a_k + b_k
    a, b = series
    return [_sum(a[k], b[k]) for k in range(1, order + 1)]


def sub_rule(node, series, order):
    # (a - b)_k = a_k - b_k
    a, b = series
    return [_sum(a[k], _neg(b[k])) for k in range(1, order + 1)]


def neg_rule(node, series, order):
    # (-a)_k = -a_k
    return [_neg(c) for c in series[0][1:]]


def mul_rule(node, series, order):
    # (a b)_k = sum_(j=0..k) a_j b_(k-j)
    a, b = series
    return [conv(a, b, k) for k in range(1, order + 1)]


def div_rule(node, series, order):
    # y = a / b: b_0 y_k = a_k - sum_(j=1..k) b_j y_(k-j)
    a, b = series
    y = [node]
    for k in range(1, order + 1):
        top = _sum(a[k], _neg(conv(b, y, k, 1, k)))
        y.append(None if top is None else top / b[0])
    return y[1:]


def _power_const(a: list, p, y0, order: int) -> list:
    # y = a^p: k a_0 y_k = sum_(j=1..k) (p j - (k - j)) a_j y_(k-j)
    y = [y0]
    for k in range(1, order + 1):
        terms = [_mul(_mul(a[j], y[k - j]), p * j - (k - j)) for j in range(1, k + 1)]
        top = _sum(*terms)
        y.append(None if top is None else top / (a[0] * k))
    return y[1:]


def pow_rule(node, series, order):
    # y = a^b; a small natural power b: Cauchy products (exact at a_0 = 0); a constant
    # power: the recurrence of a y' = b a' y; a varying power: exp(b log a)
    a, b = series
    p = b[0]
    if all(c is None for c in b[1:]):
        value = _constant_scalar(p)
        if value is not None and value.is_integer() and 1 <= value <= 16:
            power, result = int(value), None
            base = list(a)
            while power:  # binary powering of truncated series
                if power & 1:
                    result = base if result is None else _product(result, base, order)
                power >>= 1
                if power:
                    base = _product(base, base, order)
            return result[1:]
        return _power_const(a, p, node, order)
    logs = [call("log", a[0])] + _log_series(a, order)
    m = [p * logs[0]] + [conv(b, logs, k) for k in range(1, order + 1)]
    return _exp_series(m, node, order)[1:]


def _product(a: list, b: list, order: int) -> list:
    return [a[0] * b[0]] + [conv(a, b, k) for k in range(1, order + 1)]


# ---- exponentials and logarithms --------------------------------------------------------
def exp_rule(node, series, order):
    # y = e^a: y' = y a'
    return _exp_series(series[0], node, order)[1:]


def exp2_rule(node, series, order):
    # y = 2^a: y' = ln 2 y a'
    return _exp_series(series[0], node, order, math.log(2.0))[1:]


def expm1_rule(node, series, order):
    # y = e^a - 1: y' = (y + 1) a'
    return _exp_series(series[0], node + 1.0, order)[1:]


def log_rule(node, series, order):
    # y = log a: a y' = a'
    return _log_series(series[0], order)


def log2_rule(node, series, order):
    # y = log a / ln 2
    return [_scale(c, 1 / math.log(2.0)) for c in _log_series(series[0], order)]


def log10_rule(node, series, order):
    # y = log a / ln 10
    return [_scale(c, 1 / math.log(10.0)) for c in _log_series(series[0], order)]


def log1p_rule(node, series, order):
    # y = log(1 + a): (1 + a) y' = a'
    a = series[0]
    return _log_series([1.0 + a[0]] + list(a[1:]), order)


# ---- trigonometric and hyperbolic ---------------------------------------------------------
def _pair(a, first, second, order, sign):
    # s' = c a', c' = sign s a' (sin/cos: sign -1; sinh/cosh: +1)
    s, c = [first], [second]
    for k in range(1, order + 1):
        s.append(_ode(a, c, k))
        c.append(_scale(_ode(a, s, k), sign))
    return s, c


def sin_rule(node, series, order):
    # sin' = cos, cos' = -sin
    a = series[0]
    return _pair(a, node, call("cos", a[0]), order, -1.0)[0][1:]


def cos_rule(node, series, order):
    # cos' = -sin, sin' = cos
    a = series[0]
    s, c = _pair(a, call("sin", a[0]), node, order, -1.0)
    return c[1:]


def sinh_rule(node, series, order):
    # sinh' = cosh, cosh' = sinh
    a = series[0]
    return _pair(a, node, call("cosh", a[0]), order, 1.0)[0][1:]


def cosh_rule(node, series, order):
    # cosh' = sinh, sinh' = cosh
    a = series[0]
    s, c = _pair(a, call("sinh", a[0]), node, order, 1.0)
    return c[1:]


def _self_ode(a, node, order, g0, g_k):
    # y' = g(y) a', with g's coefficients g_k(y, k) from y's up to k
    y, g = [node], [g0]
    for k in range(1, order + 1):
        y.append(_ode(a, g, k))
        g.append(g_k(y, k))
    return y[1:]


def tan_rule(node, series, order):
    # tan' = 1 + tan^2
    return _self_ode(series[0], node, order, 1.0 + node * node, lambda y, k: conv(y, y, k))


def tanh_rule(node, series, order):
    # tanh' = 1 - tanh^2
    return _self_ode(series[0], node, order, 1.0 - node * node, lambda y, k: _neg(conv(y, y, k)))


def sigmoid_rule(node, series, order):
    # sigmoid' = sigmoid (1 - sigmoid)
    g0 = node * (1.0 - node)
    return _self_ode(series[0], node, order, g0, lambda y, k: _sum(y[k], _neg(conv(y, y, k))))


def _inverse_sqrt_rule(series, order, c0, sign, negate=False):
    # y' = a' / sqrt(c0 + sign a^2): solve u y' = a' with u the root's series
    a = series[0]
    v = _square(a, order, c0, sign)
    u = _sqrt_series(v, call("sqrt", v[0]), order)
    y = [None]
    for k in range(1, order + 1):
        y.append(_ode_div(a, u, y, k))
    return [_neg(c) for c in y[1:]] if negate else y[1:]


def arcsin_rule(node, series, order):
    # arcsin' = 1 / sqrt(1 - a^2)
    return _inverse_sqrt_rule(series, order, 1.0, -1.0)


def arccos_rule(node, series, order):
    # arccos' = -1 / sqrt(1 - a^2)
    return _inverse_sqrt_rule(series, order, 1.0, -1.0, negate=True)


def arcsinh_rule(node, series, order):
    # arcsinh' = 1 / sqrt(1 + a^2)
    return _inverse_sqrt_rule(series, order, 1.0, 1.0)


def arccosh_rule(node, series, order):
    # arccosh' = 1 / sqrt(a^2 - 1)
    return _inverse_sqrt_rule(series, order, -1.0, 1.0)


def _inverse_square_rule(series, order, sign):
    # y' = a' / (1 + sign a^2)
    a = series[0]
    u = _square(a, order, 1.0, sign)
    y = [None]
    for k in range(1, order + 1):
        y.append(_ode_div(a, u, y, k))
    return y[1:]


def arctan_rule(node, series, order):
    # arctan' = 1 / (1 + a^2)
    return _inverse_square_rule(series, order, 1.0)


def arctanh_rule(node, series, order):
    # arctanh' = 1 / (1 - a^2)
    return _inverse_square_rule(series, order, -1.0)


# ---- roots, error functions, softplus ------------------------------------------------------
def sqrt_rule(node, series, order):
    # y^2 = a
    return _sqrt_series(series[0], node, order)[1:]


def cbrt_rule(node, series, order):
    # y = a^(1/3): a y' = y a' / 3
    return _power_const(series[0], 1.0 / 3.0, node, order)


def _erf_series(series, order, factor):
    # erf' = (2 / sqrt(pi)) exp(-a^2)
    a = series[0]
    q = _square(a, order, 0.0, -1.0)
    e = _exp_series(q, call("exp", q[0]), order)
    return _integrate(a, e, order, factor)


def erf_rule(node, series, order):
    # erf' = (2 / sqrt(pi)) exp(-a^2)
    return _erf_series(series, order, 2 / math.sqrt(math.pi))


def erfc_rule(node, series, order):
    # erfc' = -(2 / sqrt(pi)) exp(-a^2)
    return _erf_series(series, order, -2 / math.sqrt(math.pi))


def erfinv_rule(node, series, order):
    # erfinv' = (sqrt(pi) / 2) exp(y^2): y and e = exp(y^2) advance together
    a = series[0]
    y, e, q = [node], [call("exp", node * node)], [node * node]
    for k in range(1, order + 1):
        y.append(_scale(_ode(a, e, k), math.sqrt(math.pi) / 2))
        q.append(conv(y, y, k))
        e.append(_ode(q, e, k))
    return y[1:]


def _sigmoid_series(d: list, order: int) -> list:
    s0 = call("sigmoid", d[0])
    return [s0] + sigmoid_rule(s0, [d], order)


def softplus_rule(node, series, order):
    # softplus' = sigmoid
    a = series[0]
    return _integrate(a, _sigmoid_series(a, order), order)


def _logaddexp(series, order, factor):
    # y' = s a' + (1 - s) b' with s = sigmoid(factor (a - b))
    a, b = series
    d = [_scale(_sum(a[k], _neg(b[k])), factor) for k in range(order + 1)]
    s = _sigmoid_series(d, order)
    r = [1.0 - s[0]] + [_neg(c) for c in s[1:]]
    return [_sum(_ode(a, s, k), _ode(b, r, k)) for k in range(1, order + 1)]


def logaddexp_rule(node, series, order):
    # d log(e^a + e^b) = sigmoid(a - b) da + sigmoid(b - a) db
    return _logaddexp(series, order, 1.0)


def logaddexp2_rule(node, series, order):
    # d log2(2^a + 2^b) = sigmoid((a - b) ln 2) da + sigmoid((b - a) ln 2) db
    return _logaddexp(series, order, math.log(2.0))


def hypot_rule(node, series, order):
    # y^2 = a^2 + b^2
    a, b = series
    v = [None] + [_sum(conv(a, a, k), conv(b, b, k)) for k in range(1, order + 1)]
    return _sqrt_series(v, node, order)[1:]


def arctan2_rule(node, series, order):
    # (a^2 + b^2) y' = b a' - a b'
    a, b = series
    u = [a[0] * a[0] + b[0] * b[0]] + [
        _sum(conv(a, a, k), conv(b, b, k)) for k in range(1, order + 1)
    ]
    y = [node]
    for k in range(1, order + 1):
        rhs = _sum(
            *[
                _sum(_mul(b[j], _scale(a[k - j], k - j)), _neg(_mul(a[j], _scale(b[k - j], k - j))))
                for j in range(k)
            ]
        )
        rest = _sum(*[_scale(_mul(u[j], y[k - j]), k - j) for j in range(1, k)])
        top = _sum(rhs, _neg(rest))
        y.append(None if top is None else top / (u[0] * k))
    return y[1:]


# ---- the rule kind --------------------------------------------------------------------------
def _derived(op):
    if isinstance(op.jvp, Unsupported):
        return op.jvp
    return JVP_EACH if op.jvp is LINEAR else NESTED_JVP


ARRAY_RULES = frozenset(globals()[name] for name in __all__ if name.endswith("_rule"))

rule_kind("taylor", elementwise=_derived, reduction=_derived, axis=_derived, other=_derived)

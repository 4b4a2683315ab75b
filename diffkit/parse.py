"""From text and from SymPy into the IR: ``dk.parse`` and ``dk.from_sympy``.

>>> import diffkit as dk
>>> f = dk.parse("exp(x)*sin(x)")
>>> round(dk.evaluate(f, at={"x": 1.0}), 12)
2.287355287179
"""

from __future__ import annotations

import re
import tokenize
from fractions import Fraction

import sympy
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from . import ops
from .ir.node import Node, const, variable

__all__ = ["parse", "from_sympy", "ParseError", "FUNCTIONS"]


class ParseError(ValueError):
    """Raised for text that is not an expression diffkit can build."""


_SIGMOID = sympy.Function("sigmoid")
_RELU = sympy.Function("relu")
_SOFTPLUS = sympy.Function("softplus")

#: name in the text -> SymPy function used while parsing
FUNCTIONS = {
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "tanh": sympy.tanh,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "Abs": sympy.Abs,
    "max": sympy.Max,
    "min": sympy.Min,
    "maximum": sympy.Max,
    "minimum": sympy.Min,
    "sigmoid": _SIGMOID,
    "relu": _RELU,
    "softplus": _SOFTPLUS,
    "log1p": lambda x: sympy.log(1 + x),
}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def parse(text: str) -> Node:
    """Build IR from an expression in Python/SymPy syntax (``^`` is accepted for powers).

    Known functions: exp, log, sin, cos, tan, tanh, sqrt, abs, max, min, sigmoid,
    relu, softplus, log1p; constants pi and E; every other name is a scalar variable.

    Raises:
        ParseError: for bad syntax or an unknown function, naming it.
    """
    if not isinstance(text, str) or not text.strip():
        raise ParseError("empty expression")
    local = dict(_CONSTANTS)
    for match in _IDENT.finditer(text):
        name = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("("):
            if name not in FUNCTIONS:
                known = ", ".join(sorted(FUNCTIONS))
                raise ParseError(f"unknown function {name!r} in {text!r}; known functions: {known}")
            local[name] = FUNCTIONS[name]
        elif name not in local:
            if name in FUNCTIONS:
                raise ParseError(f"{name!r} is a function and needs an argument, in {text!r}")
            local[name] = sympy.Symbol(name, real=True)
    try:
        expr = parse_expr(
            text,
            local_dict=local,
            global_dict={
                "Integer": sympy.Integer,
                "Float": sympy.Float,
                "Rational": sympy.Rational,
                "Symbol": sympy.Symbol,
            },
            transformations=standard_transformations + (convert_xor,),
            evaluate=True,
        )
    except (SyntaxError, tokenize.TokenError, TypeError, AttributeError) as err:
        raise ParseError(f"cannot parse {text!r}: {err.__class__.__name__}: {err}") from None
    if not isinstance(expr, sympy.Basic):
        raise ParseError(f"{text!r} is not an expression")
    return from_sympy(expr)


def from_sympy(expr) -> Node:
    """The IR of a SymPy expression (symbols become scalar variables of the same name).

    >>> import diffkit as dk, sympy
    >>> x = sympy.Symbol("x")
    >>> dk.evaluate(dk.from_sympy(sympy.sin(x) ** 2 + sympy.cos(x) ** 2), at={"x": 0.3})
    1.0
    """
    memo: dict = {}

    def build(e) -> Node:
        hit = memo.get(e)
        if hit is None:
            hit = memo[e] = convert(e)
        return hit

    def convert(e) -> Node:
        if e.is_Symbol:
            return variable(e.name)
        if e.is_Integer:
            return const(int(e))
        if e.is_Rational:
            return const(Fraction(int(e.p), int(e.q)))
        if e.is_Number or e in (sympy.pi, sympy.E) or e.is_NumberSymbol:
            if e.is_real is False:
                raise ParseError(f"complex constant {e} is not supported")
            return const(float(e))
        args = [build(a) for a in e.args]
        if e.is_Add:
            return _fold(ops.add, args)
        if e.is_Mul:
            return _fold(ops.mul, args)
        if e.is_Pow:
            base, exponent = e.args
            if exponent == sympy.Rational(1, 2):
                return ops.sqrt(args[0])
            if exponent == -1:
                return ops.div(1.0, args[0])
            return ops.power(args[0], args[1])
        table = {
            sympy.exp: ops.exp,
            sympy.log: ops.log,
            sympy.sin: ops.sin,
            sympy.cos: ops.cos,
            sympy.tan: ops.tan,
            sympy.tanh: ops.tanh,
            sympy.Abs: ops.abs,
            sympy.sign: ops.sign,
        }
        func = e.func
        if func in table and len(args) == 1:
            return table[func](args[0])
        if func == sympy.Max:
            return _fold(ops.maximum, args)
        if func == sympy.Min:
            return _fold(ops.minimum, args)
        name = getattr(func, "__name__", str(func))
        if name == "sigmoid":
            return ops.sigmoid(args[0])
        if name == "relu":
            return ops.relu(args[0])
        if name == "softplus":
            return ops.softplus(args[0])
        if func == sympy.Piecewise:
            raise ParseError("Piecewise expressions are not supported by from_sympy")
        raise ParseError(f"unknown function {name!r} in {e}")

    if not isinstance(expr, sympy.Basic):
        expr = sympy.sympify(expr)
    return build(expr)


def _fold(fn, args):
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out

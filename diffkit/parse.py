"""From text and from SymPy into the IR: ``dk.parse`` and ``dk.from_sympy``.

``parse`` is diffkit's own parser of a small grammar; it evaluates nothing. It reads
numbers (kept exact: ``0.1`` is one tenth until a numeric interpreter rounds it once),
names (scalar variables), ``+ - * / % **`` (``^`` too), unary minus, parentheses,
comparisons (``< <= > >= == !=``, giving 1 or 0), calls of the functions in
:data:`FUNCTIONS` (numpy's names, their common aliases and SymPy's spellings, so what
SymPy prints parses back), and the constants ``pi``, ``e`` and ``E``. Anything else,
attribute access and subscripts included, is refused with a one-line
:class:`ParseError` naming the problem and its column. Length, nesting depth and the
size of numbers are limited, so no input takes long to refuse.

>>> import diffkit as dk
>>> f = dk.parse("exp(x)*sin(x)")
>>> round(dk.evaluate(f, at={"x": 1.0}), 12)
2.287355287179
>>> dk.parse("x/3 + 0.1").inputs[1].exact
Fraction(1, 10)
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Callable

from . import ops
from .ir.node import Node, const, math_const, variable

__all__ = ["parse", "from_sympy", "ParseError", "FUNCTIONS", "MAX_LENGTH", "MAX_DEPTH"]

#: the longest expression ``parse`` reads, in characters
MAX_LENGTH = 10_000
#: the deepest nesting of parentheses, calls and unary signs
MAX_DEPTH = 100
_MAX_DIGITS = 1_000  # digits of one number
_MAX_EXPONENT = 1_000  # |exponent| of one number in scientific notation


class ParseError(ValueError):
    """Text that is not an expression diffkit can build.

    Attributes:
        text: the expression.
        column: 1-based column of the problem (``None`` when it concerns the whole text).
    """

    def __init__(self, message: str, text: str = "", column: int | None = None):
        self.text = text
        self.column = column
        if column is not None:
            message = f"{message} at column {column}"
        if text and len(text) <= 80:
            message = f"cannot parse {text!r}: {message}"
        elif text:
            message = f"cannot parse the expression: {message}"
        super().__init__(message)

    @property
    def caret(self) -> str:
        """The expression with a caret under the column of the problem (two lines)."""
        if self.column is None or not self.text or len(self.text) > 200:
            return ""
        line = self.text.replace("\n", " ").replace("\t", " ")
        return f"  {line}\n  {' ' * (self.column - 1)}^"


def _variadic(fn: Callable) -> Callable:
    def build(*args):
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
        return out

    return build


def _log(x, base=None):
    return ops.log(x) if base is None else ops.log(x) / ops.log(base)


def _heaviside(x, at_zero=Fraction(1, 2)):
    # SymPy's Heaviside: 1 for x > 0, ``at_zero`` at 0 (1/2 by default), 0 for x < 0
    return ops.greater(x, 0) + ops.equal(x, 0) * at_zero


#: function name -> (builder, fewest arguments, most arguments or None for any number)
FUNCTIONS: dict[str, tuple[Callable, int, int | None]] = {}


def _add(names: str, builder: Callable, low: int = 1, high: int | None = 1) -> None:
    for name in names.split():
        FUNCTIONS[name] = (builder, low, high)


_add("exp", ops.exp)
_add("exp2", ops.exp2)
_add("expm1", ops.expm1)
_add("log", _log, 1, 2)
_add("ln", ops.log)
_add("log2", ops.log2)
_add("log10", ops.log10)
_add("log1p", ops.log1p)
_add("sin", ops.sin)
_add("cos", ops.cos)
_add("tan", ops.tan)
_add("arcsin asin", ops.arcsin)
_add("arccos acos", ops.arccos)
_add("arctan atan", ops.arctan)
_add("arctan2 atan2", ops.arctan2, 2, 2)
_add("sinh", ops.sinh)
_add("cosh", ops.cosh)
_add("tanh", ops.tanh)
_add("arcsinh asinh", ops.arcsinh)
_add("arccosh acosh", ops.arccosh)
_add("arctanh atanh", ops.arctanh)
_add("sqrt", ops.sqrt)
_add("cbrt", ops.cbrt)
_add("square", ops.square)
_add("pow power", ops.power, 2, 2)
_add("hypot", ops.hypot, 2, 2)
_add("erf", ops.erf)
_add("erfc", ops.erfc)
_add("logaddexp", ops.logaddexp, 2, 2)
_add("abs Abs fabs", ops.abs)
_add("sign", ops.sign)
_add("floor", ops.floor)
_add("ceil ceiling", ops.ceil)
_add("round", ops.round)
_add("trunc", ops.trunc)
_add("mod Mod remainder", ops.mod, 2, 2)
_add("clip", ops.clip, 3, 3)
_add("max Max", _variadic(ops.maximum), 1, None)
_add("min Min", _variadic(ops.minimum), 1, None)
_add("maximum", ops.maximum, 2, 2)
_add("minimum", ops.minimum, 2, 2)
_add("prod", _variadic(ops.mul), 1, None)
_add("sigmoid", ops.sigmoid)
_add("relu", ops.relu)
_add("softplus", ops.softplus)
_add("where", ops.where, 3, 3)
_add("Heaviside heaviside", _heaviside, 1, 2)
_add("Eq equal", ops.equal, 2, 2)
_add("Ne not_equal", ops.not_equal, 2, 2)
_add("less", ops.less, 2, 2)
_add("less_equal", ops.less_equal, 2, 2)
_add("greater", ops.greater, 2, 2)
_add("greater_equal", ops.greater_equal, 2, 2)

_CONSTANTS = {"pi": None, "e": None, "E": None, "True": 1, "False": 0}
_COMPARISONS = {
    "<": ops.less,
    "<=": ops.less_equal,
    ">": ops.greater,
    ">=": ops.greater_equal,
    "==": ops.equal,
    "!=": ops.not_equal,
}
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|<=|>=|==|!=|[-+*/%^(),<>])"
)
# binding power of each infix operator; ** is right-associative
_INFIX = {"+": 10, "-": 10, "*": 20, "/": 20, "%": 20, "**": 40, "^": 40}
_UNARY = 30


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, column) for each token, and an end marker."""
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            hint = ""
            if ch == ".":
                hint = " (attribute access is not part of the grammar)"
            elif ch in "[]{}":
                hint = " (subscripts, lists and sets are not part of the grammar)"
            elif ch in "'\"":
                hint = " (strings are not part of the grammar)"
            raise ParseError(f"unexpected character {ch!r}{hint}", text, pos + 1)
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group(), pos + 1))
        pos = m.end()
    out.append(("end", "", len(text) + 1))
    return out


def _number(token: str, text: str, column: int) -> Node:
    mantissa, _, exponent = token.lower().partition("e")
    if len(mantissa) > _MAX_DIGITS:
        raise ParseError(f"number with more than {_MAX_DIGITS} digits", text, column)
    if exponent and abs(int(exponent)) > _MAX_EXPONENT:
        raise ParseError(
            f"number {token[:20]}{'...' if len(token) > 20 else ''} has an exponent beyond "
            f"±{_MAX_EXPONENT}",
            text,
            column,
        )
    return const(Fraction(token))


class _Parser:
    """A Pratt parser over the token list; builds IR as it goes."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0

    def error(self, message: str, column: int | None = None) -> ParseError:
        if column is None:
            column = self.tokens[self.pos][2]
        return ParseError(message, self.text, column)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.pos]

    def next(self) -> tuple[str, str, int]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, value: str, context: str) -> None:
        kind, text, column = self.next()
        if text != value:
            found = "the end of the expression" if kind == "end" else repr(text)
            raise self.error(f"expected {value!r} {context}, found {found}", column)

    def enter(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nested deeper than {MAX_DEPTH} levels", column)

    def parse(self) -> Node:
        node = self.comparison()
        kind, text, column = self.peek()
        if kind != "end":
            hint = (
                " (use * for multiplication)" if kind in ("name", "number") or text == "(" else ""
            )
            raise self.error(f"unexpected {text!r}{hint}", column)
        return node

    def comparison(self) -> Node:
        left = self.expression(0)
        kind, text, column = self.peek()
        if text in _COMPARISONS:
            self.next()
            right = self.expression(0)
            if self.peek()[1] in _COMPARISONS:
                raise self.error("chained comparisons are not supported; use a product")
            return _COMPARISONS[text](left, right)
        return left

    def expression(self, rbp: int) -> Node:
        left = self.prefix()
        while True:
            kind, text, column = self.peek()
            lbp = _INFIX.get(text, -1) if kind == "op" else -1
            if lbp <= rbp:
                return left
            self.next()
            if lbp == 40:  # right-associative: x**y**z recurses, so it counts as nesting
                self.enter(column)
                right = self.expression(lbp - 1)
                self.depth -= 1
            else:
                right = self.expression(lbp)
            left = self.infix(text, left, right, column)

    @staticmethod
    def infix(op: str, left: Node, right: Node, column: int) -> Node:
        if op == "+":
            return ops.add(left, right)
        if op == "-":
            return ops.sub(left, right)
        if op == "*":
            return ops.mul(left, right)
        if op == "/":
            return ops.div(left, right)
        if op == "%":
            return ops.mod(left, right)
        return ops.power(left, right)

    def prefix(self) -> Node:
        kind, text, column = self.next()
        if kind == "number":
            return _number(text, self.text, column)
        if kind == "name":
            return self.name(text, column)
        if text in ("-", "+"):
            self.enter(column)
            operand = self.expression(_UNARY)
            self.depth -= 1
            return ops.neg(operand) if text == "-" else operand
        if text == "(":
            self.enter(column)
            inner = self.comparison()
            self.expect(")", f"to close the '(' of column {column}")
            self.depth -= 1
            return inner
        if kind == "end":
            raise self.error("the expression ends too early", column)
        raise self.error(f"unexpected {text!r}", column)

    def name(self, name: str, column: int) -> Node:
        is_call = self.peek()[1] == "("
        if name in _CONSTANTS:
            if is_call:
                raise self.error(f"{name!r} is a constant, not a function", column)
            if name == "pi":
                return math_const("pi")
            if name in ("e", "E"):
                return math_const("e")
            return const(_CONSTANTS[name])
        if not is_call:
            if name in FUNCTIONS:
                raise self.error(f"{name!r} is a function and needs arguments", column)
            if name.startswith("__") or name in ("lambda", "import", "exec", "eval"):
                raise self.error(f"{name!r} is not allowed as a variable name", column)
            return variable(name)
        if name == "Piecewise":
            return self.piecewise(column)
        entry = FUNCTIONS.get(name)
        if entry is None:
            known = ", ".join(sorted(FUNCTIONS, key=str.lower))
            raise self.error(f"unknown function {name!r}; known functions: {known};", column)
        builder, low, high = entry
        self.enter(column)
        args = self.arguments(name)
        self.depth -= 1
        if len(args) < low or (high is not None and len(args) > high):
            wanted = (
                str(low) if low == high else f"{low} or more" if high is None else f"{low}-{high}"
            )
            raise self.error(f"{name} takes {wanted} arguments, got {len(args)}", column)
        return builder(*args)

    def arguments(self, name: str) -> list[Node]:
        self.expect("(", f"after {name}")
        args: list[Node] = []
        if self.peek()[1] == ")":
            self.next()
            return args
        while True:
            args.append(self.comparison())
            kind, text, column = self.next()
            if text == ")":
                return args
            if text != ",":
                found = "the end of the expression" if kind == "end" else repr(text)
                raise self.error(
                    f"expected ',' or ')' in the arguments of {name}, found {found}", column
                )

    def piecewise(self, column: int) -> Node:
        """SymPy's ``Piecewise((value, condition), ..., (value, True))`` as nested wheres."""
        self.enter(column)
        self.expect("(", "after Piecewise")
        pieces = []
        while True:
            _, _, col = self.peek()
            self.expect("(", "to open a (value, condition) pair of Piecewise")
            value = self.comparison()
            self.expect(",", "between the value and the condition of a Piecewise pair")
            condition = self.comparison()
            self.expect(")", "to close a (value, condition) pair of Piecewise")
            pieces.append((value, condition))
            _, text, col = self.next()
            if text == ")":
                break
            if text != ",":
                raise self.error("expected ',' or ')' in Piecewise", col)
        self.depth -= 1
        out = const(float("nan"))  # no condition holds: Piecewise is undefined
        for value, condition in reversed(pieces):
            out = ops.where(condition, value, out)
        return out


def parse(text: str) -> Node:
    """Build IR from an expression in Python/SymPy syntax, evaluating nothing.

    Numbers stay exact (``1/3``, ``0.1``); every name that is not a function or a
    constant (``pi``, ``e``, ``E``) is a scalar variable. ``^`` is a power, as in SymPy.

    Raises:
        ParseError: one line naming the problem and its column; its ``caret``
            attribute shows the place.

    >>> import diffkit as dk
    >>> dk.evaluate(dk.parse("atan2(y, x) + x^2/3"), at={"x": 1.0, "y": 0.0})
    0.3333333333333333
    >>> dk.parse("x.__class__")
    Traceback (most recent call last):
    ...
    diffkit.parse.ParseError: cannot parse 'x.__class__': unexpected character '.' ...
    """
    if not isinstance(text, str):
        raise TypeError(
            f"dk.parse takes a string, got {type(text).__name__}; "
            "use dk.from_sympy for SymPy expressions"
        )
    if len(text) > MAX_LENGTH:
        raise ParseError(
            f"cannot parse an expression of {len(text)} characters; the limit is {MAX_LENGTH}"
        )
    if not text.strip():
        raise ParseError("cannot parse an empty expression")
    return _Parser(text).parse()


# ---- from SymPy ---------------------------------------------------------------------------


def from_sympy(expr) -> Node:
    """The IR of a SymPy expression (symbols become scalar variables of the same name).

    Only SymPy objects are accepted (a string raises ``TypeError``: use ``dk.parse``).
    What SymPy's derivatives contain is understood too: ``Piecewise`` and
    ``Heaviside`` become selections, ``DiracDelta(x)`` is 0 where ``x != 0`` and
    undefined (NaN) at 0, ``zoo`` and ``nan`` are NaN, ``oo`` infinity.

    >>> import diffkit as dk, sympy
    >>> x = sympy.Symbol("x")
    >>> dk.evaluate(dk.from_sympy(sympy.sin(x) ** 2 + sympy.cos(x) ** 2), at={"x": 0.3})
    1.0
    """
    import sympy

    if not isinstance(expr, sympy.Basic):
        if isinstance(expr, str):
            raise TypeError("dk.from_sympy takes a SymPy expression; parse text with dk.parse")
        if isinstance(expr, (int, float, Fraction)) and not isinstance(expr, bool):
            return const(expr)
        raise TypeError(f"dk.from_sympy takes a SymPy expression, got {type(expr).__name__}")
    return _SympyConverter(sympy).build(expr)


class _SympyConverter:
    def __init__(self, sympy):
        self.sp = sympy
        self.memo: dict = {}
        sp = sympy
        from sympy.codegen import cfunctions, numpy_nodes

        from .ops.comparison import (
            SYMPY_ABS,
            SYMPY_CEILING,
            SYMPY_FLOOR,
            SYMPY_ROUND,
            SYMPY_SIGN,
            SYMPY_TRUNC,
        )

        self.unary = {
            sp.exp: ops.exp,
            sp.log: ops.log,
            sp.sin: ops.sin,
            sp.cos: ops.cos,
            sp.tan: ops.tan,
            sp.asin: ops.arcsin,
            sp.acos: ops.arccos,
            sp.atan: ops.arctan,
            sp.sinh: ops.sinh,
            sp.cosh: ops.cosh,
            sp.tanh: ops.tanh,
            sp.asinh: ops.arcsinh,
            sp.acosh: ops.arccosh,
            sp.atanh: ops.arctanh,
            sp.erf: ops.erf,
            sp.erfc: ops.erfc,
            sp.Abs: ops.abs,
            sp.sign: ops.sign,
            sp.floor: ops.floor,
            sp.ceiling: ops.ceil,
            SYMPY_FLOOR: ops.floor,
            SYMPY_CEILING: ops.ceil,
            SYMPY_ROUND: ops.round,
            SYMPY_TRUNC: ops.trunc,
            SYMPY_SIGN: ops.sign,
            SYMPY_ABS: ops.abs,
            sp.re: lambda x: x,  # evaluation is real: a value that is not real is NaN anyway
            sp.im: lambda x: x * 0,
        }
        self.steps = (sp.sign, sp.floor, sp.ceiling, SYMPY_ROUND, SYMPY_TRUNC)
        self.round_class = SYMPY_ROUND
        self.unary.update(
            {
                cfunctions.expm1: ops.expm1,
                cfunctions.log1p: ops.log1p,
                cfunctions.exp2: ops.exp2,
                cfunctions.log2: ops.log2,
                cfunctions.log10: ops.log10,
            }
        )
        self.binary = {
            sp.atan2: ops.arctan2,
            sp.Mod: ops.mod,
            cfunctions.hypot: ops.hypot,
            numpy_nodes.logaddexp: ops.logaddexp,
        }
        self.relations = {
            sp.StrictGreaterThan: ops.greater,
            sp.GreaterThan: ops.greater_equal,
            sp.StrictLessThan: ops.less,
            sp.LessThan: ops.less_equal,
            sp.Equality: ops.equal,
            sp.Unequality: ops.not_equal,
        }

    def build(self, e) -> Node:
        # an explicit stack instead of recursion: deep SymPy trees do not overflow
        stack = [e]
        while stack:
            top = stack[-1]
            if top in self.memo:
                stack.pop()
                continue
            pending = [a for a in self.children(top) if a not in self.memo]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self.memo[top] = self.convert(top)
        return self.memo[e]

    def children(self, e) -> list:
        if isinstance(e, (self.sp.Derivative, self.sp.Subs)):
            return []  # refused whole by convert
        if e.func is self.sp.Piecewise:
            return [part for pair in e.args for part in pair.args]
        return list(e.args)

    def arg(self, a) -> Node:
        return self.memo[a] if a in self.memo else self.build(a)

    def convert(self, e) -> Node:
        sp = self.sp
        if e.is_Symbol:
            try:
                return variable(e.name)
            except ValueError as err:
                raise ParseError(f"from_sympy: {err}") from None
        if e is sp.zoo or e is sp.nan:
            return const(float("nan"))
        if e is sp.oo:
            return const(float("inf"))
        if e is sp.S.NegativeInfinity:
            return const(float("-inf"))
        if e is sp.true:
            return const(1)
        if e is sp.false:
            return const(0)
        if e.is_Rational:
            return const(Fraction(int(e.p), int(e.q)))
        if e is sp.pi:
            return math_const("pi")
        if e is sp.E:
            return math_const("e")
        if e.is_Number or e.is_NumberSymbol:
            if e.is_real is False:
                raise ParseError(f"from_sympy: complex constant {e} is not supported")
            return const(float(e))
        if e.is_Add:
            return _fold(ops.add, [self.arg(a) for a in e.args])
        if e.is_Mul:
            return _fold(ops.mul, [self.arg(a) for a in e.args])
        if e.is_Pow:
            base, exponent = e.args
            if exponent == sp.Rational(1, 2):
                return ops.sqrt(self.arg(base))
            if exponent == -1:
                return ops.div(1, self.arg(base))
            return ops.power(self.arg(base), self.arg(exponent))
        func = e.func
        args = e.args
        if func in self.relations:
            return self.relations[func](self.arg(args[0]), self.arg(args[1]))
        if func is sp.Piecewise:
            out = const(float("nan"))
            for pair in reversed(args):
                value, condition = pair.args
                out = ops.where(self.arg(condition), self.arg(value), out)
            return out
        if func is sp.ITE:
            c, a, b = (self.arg(x) for x in args)
            return ops.where(c, a, b)
        if func is sp.And:
            return _fold(ops.mul, [self.arg(a) for a in args])
        if func is sp.Or:
            return _fold(ops.maximum, [self.arg(a) for a in args])
        if func is sp.Not:
            return 1 - self.arg(args[0])
        if func is sp.Heaviside:
            return _heaviside(*[self.arg(a) for a in args])
        if func is sp.DiracDelta:
            if len(args) != 1:
                raise ParseError(f"from_sympy: derivatives of DiracDelta are not supported: {e}")
            x = self.arg(args[0])
            return ops.where(ops.equal(x, 0), float("nan"), 0.0)
        if func is sp.log and len(args) == 2:
            return _log(self.arg(args[0]), self.arg(args[1]))
        if func in self.unary and len(args) == 1:
            return self.unary[func](self.arg(args[0]))
        if func in self.binary and len(args) == 2:
            return self.binary[func](self.arg(args[0]), self.arg(args[1]))
        if func is sp.Max:
            return _fold(ops.maximum, [self.arg(a) for a in args])
        if func is sp.Min:
            return _fold(ops.minimum, [self.arg(a) for a in args])
        if isinstance(e, sp.Derivative) and isinstance(e.expr, self.steps):
            # a step function's derivative: 0 away from its jumps, undefined at them
            u = self.build(e.expr.args[0])
            if isinstance(e.expr, sp.sign):
                jump = ops.equal(u, 0)
            elif isinstance(e.expr, self.round_class):
                jump = ops.equal(u - 0.5, ops.floor(u - 0.5))
            else:
                jump = ops.equal(u, ops.floor(u))
            return ops.where(jump, float("nan"), 0.0)
        if isinstance(e, (sp.Derivative, sp.Subs)):
            raise ParseError(f"from_sympy: SymPy left a derivative unevaluated: {str(e)[:80]}")
        name = getattr(func, "__name__", str(func))
        entry = FUNCTIONS.get(name)
        if entry is not None and isinstance(e, sp.Function):
            builder, low, high = entry
            if low <= len(args) and (high is None or len(args) <= high):
                return builder(*[self.arg(a) for a in args])
        raise ParseError(f"from_sympy: unsupported SymPy object {name!r} in {str(e)[:80]}")


def _fold(fn, args):
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out

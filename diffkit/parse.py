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

import operator
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Callable

from .ir.errors import ParseError
from .ir.node import Node, const, math_const, variable
from .ir.op import front_index
from .ir.sympy_convert import from_sympy

__all__ = ["parse", "from_sympy", "ParseError", "FUNCTIONS", "MAX_LENGTH", "MAX_DEPTH"]

#: the longest expression ``parse`` reads, in characters
MAX_LENGTH = 10_000
#: the deepest nesting of parentheses, calls and unary signs
MAX_DEPTH = 100
_MAX_DIGITS = 1_000  # digits of one number
_MAX_EXPONENT = 1_000  # |exponent| of one number in scientific notation


class _Vocabulary(Mapping):
    """The functions of the expression language, read from the op registry: name ->
    (builder, fewest arguments, most arguments or None for any number). Every scalar op
    is reached by its name and the ``names`` of its record, every composite
    :class:`~diffkit.ir.op.Function` by its ``names``."""

    def __getitem__(self, name: str):
        record = front_index()["names"][name]
        low, high = record.parse_arity
        return record.build, low, high

    def __iter__(self):
        return iter(front_index()["names"])

    def __len__(self) -> int:
        return len(front_index()["names"])


#: function name -> (builder, fewest arguments, most arguments or None for any number)
FUNCTIONS: Mapping[str, tuple[Callable, int, int | None]] = _Vocabulary()

_CONSTANTS = {"pi": None, "e": None, "E": None, "True": 1, "False": 0}
# the comparison operators and the arithmetic ones are the nodes' own operators
_COMPARISONS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITHMETIC = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
    "**": operator.pow,
    "^": operator.pow,
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
            out.append((str(m.lastgroup), m.group(), pos + 1))
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
        return _ARITHMETIC[op](left, right)

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
            return -operand if text == "-" else operand
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
        where = FUNCTIONS["where"][0]
        out = const(float("nan"))  # no condition holds: Piecewise is undefined
        for value, condition in reversed(pieces):
            out = where(condition, value, out)
        return out


def parse(text: str) -> Node:
    """Build IR from an expression in Python/SymPy syntax, evaluating nothing.

    Numbers stay exact (``1/3``, ``0.1``); every name that is not a function or a
    constant (``pi``, ``e``, ``E``) is a scalar variable. ``^`` is a power, as in SymPy.

    Raises:
        ParseError: one line naming the problem and its column; its ``caret``
            attribute shows the place.

    Args:
        text: the expression.

    Returns:
        Node: its graph.

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


# ---- from SymPy: diffkit.ir.sympy_convert, re-exported here -----------------------------

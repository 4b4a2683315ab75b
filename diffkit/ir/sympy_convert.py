"""From SymPy into the IR: ``dk.from_sympy``, beside the SymPy interpreter
(:mod:`diffkit.ir.schedule` translates the other way).

The converter reads the op registry: each record's ``sympy_from`` names the SymPy
classes that come back as that op or function (``sympy.sin`` as ``sin``, ``Add`` as
``add`` folded over its arguments, ``Piecewise`` as nested ``where``). The converter
itself knows only SymPy's atoms: symbols, numbers, ``pi``, ``E``, infinities and NaN.
Derivatives that SymPy leaves unevaluated on a step function (``Derivative(floor(u),
u)``) come back through that op's ``"sympy_derivative"`` rule.
"""

from __future__ import annotations

from fractions import Fraction

from .errors import ParseError
from .node import Node, const, math_const, variable
from .op import front_index

__all__ = ["from_sympy"]


def from_sympy(expr) -> Node:
    """The IR of a SymPy expression (symbols become scalar variables of the same name).

    Only SymPy objects are accepted (a string raises ``TypeError``: use ``dk.parse``).
    What SymPy's derivatives contain is understood too: ``Piecewise`` and
    ``Heaviside`` become selections, ``DiracDelta(x)`` (and ``DiracDelta(x, k)``) is 0
    where ``x != 0`` and undefined (NaN) at 0, ``zoo`` and ``nan`` are NaN, ``oo``
    infinity.

    Args:
        expr: a SymPy expression (or number).

    Returns:
        Node: its graph.

    Raises:
        TypeError: ``expr`` is not a SymPy object.
        ParseError: a SymPy construct diffkit cannot build.

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
    return _Converter(sympy).build(expr)


class _Converter:
    def __init__(self, sympy):
        self.sp = sympy
        self.memo: dict = {}
        self.table = front_index()["sympy"]
        from sympy.functions.elementary.piecewise import ExprCondPair

        self.pair = ExprCondPair

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
        sp = self.sp
        if isinstance(e, (sp.Derivative, sp.Subs)):
            return []  # handled whole by convert
        out = []
        for a in e.args:
            # the (value, condition) pairs of Piecewise are containers, not expressions
            out.extend(a.args if isinstance(a, self.pair) else (a,))
        return out

    def arg(self, a) -> Node:
        return self.memo[a] if a in self.memo else self.build(a)

    def lookup(self, cls):
        for klass in cls.__mro__:
            entry = self.table.get(klass)
            if entry is not None:
                return entry
        return None

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
        if e is sp.I:
            return const(1j)
        if e.is_Number or e.is_NumberSymbol:
            if e.is_real is False:
                return const(complex(e))
            return const(float(e))
        if isinstance(e, sp.Derivative):
            entry = self.lookup(type(e.expr))
            rule = (
                None
                if entry is None
                else getattr(entry[0], "rule", lambda k: None)("sympy_derivative")
            )
            if rule is not None and len(e.expr.args) == 1:
                return rule(self.build(e.expr.args[0]))
        if isinstance(e, (sp.Derivative, sp.Subs)):
            raise ParseError(f"from_sympy: SymPy left a derivative unevaluated: {str(e)[:80]}")
        entry = self.lookup(e.func) if isinstance(e.func, type) else None
        if entry is not None:
            record, converter = entry
            if converter is not None:
                return converter(e, self.arg)
            args = [self.arg(a) for a in e.args]
            low, high = record.parse_arity
            if high is not None and len(args) > high and high == 2:
                out = record.build(args[0], args[1])  # SymPy's n-ary Add, Mul...
                for a in args[2:]:
                    out = record.build(out, a)
                return out
            if len(args) >= low and (high is None or len(args) <= high):
                return record.build(*args)
        name = getattr(e.func, "__name__", str(e.func))
        raise ParseError(f"from_sympy: unsupported SymPy object {name!r} in {str(e)[:80]}")

"""Symbolic differentiation: the IR translated to SymPy, differentiated by ``sympy.diff``.

The translation runs the graph on SymPy objects: scalar ops through their
``sympy`` rule, structural ops (reshape, sum, matmul) through numpy on object
arrays, so small tensor graphs (a tiny MLP) expand to SymPy matrices. An op with
no symbolic form (convolution, pooling) raises an error naming it.

Sizes are reported as SymPy sees them: tree nodes (``preorder_traversal``),
``count_ops``, and the nodes of the DAG left after ``sympy.cse``.

>>> import diffkit as dk
>>> x = dk.variable("x")
>>> r = dk.symbolic_derivative(dk.exp(x) * dk.sin(x), "x")
>>> r.derivative
exp(x)*sin(x) + exp(x)*cos(x)
>>> r.derivative_size.tree
11
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np
import sympy

from ..ir.errors import ParseError
from ..ir.node import DISPLAY, Node
from ..ir.sympy_convert import from_sympy
from ..ir.schedule import UnsupportedBackendError, compile
from ..limits import BudgetExceeded, time_limit
from .common import (
    Cost,
    Differentiator,
    as_output,
    check_at,
    dtype_of,
    register_method,
    variable_shapes,
)

__all__ = [
    "Symbolic",
    "to_sympy",
    "expression_size",
    "ExpressionSize",
    "symbolic_derivative",
    "SymbolicDerivative",
    "SymbolicLimitError",
    "SymbolicError",
    "tree_size",
]


@dataclass(frozen=True)
class ExpressionSize:
    """Size of a SymPy expression: tree nodes, operation count, DAG nodes after CSE.

    Args:
        tree, ops, cse: the three measures.

    >>> import diffkit as dk, sympy
    >>> x, y = sympy.symbols("x y")
    >>> size = dk.expression_size(x * y + x)  # Add(Mul(x, y), x)
    >>> size.tree, size.ops
    (5, 2)
    """

    tree: int
    ops: int
    cse: int


def expression_size(expr) -> ExpressionSize:
    """The three size measures of a SymPy expression (or an array of them, summed).

    Args:
        expr: a SymPy expression, or an array of them.

    Returns:
        ExpressionSize: tree nodes, operations, DAG nodes after CSE.

    >>> import diffkit as dk, sympy
    >>> x = sympy.Symbol("x")
    >>> size = dk.expression_size(x ** 3)  # Pow(x, 3): three nodes, one operation
    >>> size.tree, size.ops
    (3, 1)
    """
    exprs = (
        list(np.ravel(np.asarray(expr, dtype=object)))
        if not isinstance(expr, sympy.Basic)
        else [expr]
    )
    tree = sum(sum(1 for _ in sympy.preorder_traversal(e)) for e in exprs)
    ops = sum(int(sympy.count_ops(e)) for e in exprs)
    replacements, reduced = sympy.cse(exprs)
    cse = sum(sum(1 for _ in sympy.preorder_traversal(rhs)) for _, rhs in replacements)
    cse += sum(sum(1 for _ in sympy.preorder_traversal(e)) for e in reduced)
    return ExpressionSize(tree, ops, cse)


def _symbols(name: str, shape: tuple, real: bool = True):
    if shape == ():
        return sympy.Symbol(name, real=real)
    arr = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        arr[idx] = sympy.Symbol(f"{name}[{','.join(map(str, idx))}]", real=real)
    return arr


def to_sympy(f: Node | list, real: bool = True):
    """``f`` as SymPy: an expression for a scalar node, an object array otherwise.

    Args:
        f: a node or a list of nodes.
        real: give the symbols SymPy's ``real=True`` assumption (for complex points,
            ``False``: then SymPy rewrites nothing that holds only on the real line,
            such as ``sqrt(x**2) = |x|``).

    Returns:
        ``(expr, symbols)`` with ``symbols`` mapping each variable name to its
        SymPy symbol (or object array of symbols).

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.to_sympy(x * y + 1)
    (x*y + 1, {'x': x, 'y': y})
    """
    shapes = variable_shapes(f)
    symbols = {n: _symbols(n, s, real) for n, s in shapes.items()}
    program = compile(f)
    try:
        expr = program.run_objects(symbols, "sympy")
    except UnsupportedBackendError as err:
        raise ValueError(f"symbolic: {err}") from None
    return expr, symbols


@dataclass
class SymbolicDerivative:
    """A symbolic derivative with its sizes and the time it took."""

    function: object
    derivative: object
    simplified: object | None
    function_size: ExpressionSize
    derivative_size: ExpressionSize
    simplified_size: ExpressionSize | None
    seconds_diff: float
    seconds_simplify: float | None


class SymbolicError(ValueError):
    """SymPy could not translate or differentiate the expression.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.symbolic_derivative(x * y, "z")
    Traceback (most recent call last):
    ...
    diffkit.differentiators.symbolic.SymbolicError: f does not depend on a variable named 'z'
    """


class SymbolicLimitError(SymbolicError):
    """A symbolic computation exceeded its size or time limit.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.Symbolic(max_size=5).derivative(dk.sin(dk.sin(x * y)), "x", at={"x": 1.0, "y": 1.0})
    Traceback (most recent call last):
    ...
    diffkit.differentiators.symbolic.SymbolicLimitError: symbolic: the derivative has more ...
    """


@contextlib.contextmanager
def sympy_guard(time_budget: float | None, what: str = "symbolic differentiation"):
    """Run SymPy within a time budget; its failures become :class:`SymbolicError` (running
    out of time, stack or memory: :class:`SymbolicLimitError`), never a raw traceback."""
    try:
        with time_limit(time_budget, what):
            yield
    except SymbolicError:
        raise
    except BudgetExceeded as err:
        raise SymbolicLimitError(f"symbolic: {err}") from None
    except (RecursionError, MemoryError) as err:
        kind = "stack" if isinstance(err, RecursionError) else "memory"
        raise SymbolicLimitError(f"symbolic: SymPy ran out of {kind}") from None
    except (ArithmeticError, TypeError, ValueError) as err:
        raise SymbolicError(f"symbolic: SymPy failed: {type(err).__name__}: {err}") from None


def symbolic_derivative(
    f: Node, wrt, simplify: bool = False, time_budget: float | None = 60.0
) -> SymbolicDerivative:
    """d f / d wrt for a scalar ``f`` and scalar variable ``wrt``, with sizes.

    Args:
        f: a scalar IR node.
        wrt: a variable name or node.
        simplify: also simplify the derivative (and time it).
        time_budget: seconds allowed for all of it (``None``: no limit).

    Raises:
        SymbolicError: where SymPy fails, or :class:`SymbolicLimitError` out of time.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> d = dk.symbolic_derivative(x ** 3, "x")
    >>> d.derivative, d.derivative_size.tree  # 3*x**2: Mul(3, Pow(x, 2))
    (3*x**2, 5)
    """
    name = wrt.name if isinstance(wrt, Node) else wrt
    with sympy_guard(time_budget):
        expr, symbols = to_sympy(f)
        if name not in symbols:
            raise SymbolicError(f"f does not depend on a variable named {name!r}")
        start = time.perf_counter()
        d = _diff(prepare_for_diff(expr), symbols[name])
        t_diff = time.perf_counter() - start
        simp, t_simp = None, None
        if simplify:
            start = time.perf_counter()
            simp = sympy.simplify(d)
            t_simp = time.perf_counter() - start
        return SymbolicDerivative(
            expr,
            d,
            simp,
            expression_size(expr),
            expression_size(d),
            None if simp is None else expression_size(simp),
            t_diff,
            t_simp,
        )


def tree_size(expr, limit: int | None = None) -> int:
    """Nodes of a SymPy expression tree (or of an array of them); stops counting past
    ``limit`` and returns ``limit + 1``."""
    exprs = [expr] if isinstance(expr, sympy.Basic) else list(np.ravel(np.asarray(expr, object)))
    count = 0
    for e in exprs:
        for _ in sympy.preorder_traversal(e):
            count += 1
            if limit is not None and count > limit:
                return limit + 1
    return count


def _as_dtype(values: list, dtype) -> np.ndarray:
    """The derivatives' values as an array of ``dtype``. Where f is real, SymPy's form can
    still leave the real line where the real function is undefined (the log of a negative
    constant): a value with an imaginary part is NaN there, as numpy gives."""
    dtype = np.dtype(dtype)
    if dtype.kind != "c":
        values = [np.asarray(v) for v in values]
        values = [np.where(v.imag == 0, v.real, np.nan) if v.dtype.kind == "c" else v
                  for v in values]  # fmt: skip
    return np.array(values, dtype=dtype)


def _diff(expr, *wrt):
    """``sympy.diff``, except that an expression holding SymPy's ``nan`` (an undefined
    value such as 0 log 0 or oo - oo) has an undefined derivative, NaN, where SymPy's
    would be 0 (the derivative of the constant ``nan``)."""
    if isinstance(expr, sympy.Basic) and expr.has(sympy.nan):
        return sympy.nan
    return sympy.diff(expr, *wrt)


def prepare_for_diff(expr):
    """``expr`` rewritten so that ``sympy.diff`` evaluates every derivative: ``Mod(a, b)``
    as ``a - b floor(a/b)`` (SymPy leaves the derivative of Mod unevaluated)."""
    from ..ops.comparison import SYMPY_FLOOR

    if not isinstance(expr, sympy.Basic) or not expr.has(sympy.Mod):
        return expr
    return expr.replace(sympy.Mod, lambda a, b: a - b * SYMPY_FLOOR(a / b))


class Symbolic(Differentiator):
    """SymPy differentiation; the derivative is translated back to the IR (``from_sympy``)
    and evaluated in the data's dtype, or at ``precision`` digits with mpmath.

    Derivatives that SymPy writes with ``Piecewise``, ``Heaviside`` or ``DiracDelta``
    evaluate like any other (``DiracDelta(x)`` is 0 away from ``x = 0`` and undefined,
    NaN, at it). Sizes and time are bounded: a function or derivative of more than
    ``max_size`` tree nodes, or a computation longer than ``time_budget`` seconds,
    raises :class:`SymbolicLimitError`.

    Args:
        simplify: simplify each derivative before evaluating it.
        precision: if given, evaluate the derivative with mpmath at this many digits.
        time_budget: seconds allowed for translation, differentiation and simplification.
        max_size: the largest expression tree accepted, before and after differentiating.

    ``last_cost.expression_size`` is the tree size of the derivatives produced;
    ``last_cost.extra`` holds the tree size of the function.

    Args:
        simplify: simplify the derivative (``sympy.simplify``) before translating it.
        precision: digits for mpmath evaluation, or None for the data's dtype.
        time_budget: seconds SymPy may take, or None.
        max_size: the most expression-tree nodes accepted.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.Symbolic().derivative(x ** 3, "x", at={"x": 2.0})  # 3x^2
    12.0
    """

    name = "symbolic"

    def __init__(
        self,
        simplify: bool = False,
        precision: int | None = None,
        time_budget: float | None = 20.0,
        max_size: int = 200_000,
    ):
        self.simplify = simplify
        self.precision = precision
        self.time_budget = time_budget
        self.max_size = max_size
        super().__init__()

    def _evaluate(self, exprs: list, symbols: dict, at) -> list:
        values = {}
        for n, s in symbols.items():
            syms = np.ravel(np.asarray(s, dtype=object))
            vals = np.ravel(np.asarray(at[n]))
            values.update({sym.name: v for sym, v in zip(syms, vals)})
        try:
            nodes = [from_sympy(e) for e in exprs]
        except ParseError as err:
            raise SymbolicError(f"symbolic: cannot evaluate SymPy's derivative: {err}") from None
        if self.precision is not None:
            return list(compile(nodes)(values, precision=self.precision))
        return list(compile(nodes)(values))

    def _check_size(self, expr, what: str) -> int:
        size = tree_size(expr, self.max_size)
        if size > self.max_size:
            raise SymbolicLimitError(
                f"symbolic: the {what} has more than {self.max_size} expression-tree nodes; "
                f"raise max_size or use reverse mode"
            )
        return size

    def _derivatives(self, f: Node, names: list[str], order: int, at=None):
        # at complex points the symbols are complex: the holomorphic derivative
        real = dtype_of(at).kind != "c"
        with sympy_guard(self.time_budget):
            expr, symbols = to_sympy(f, real=real)
            function_size = self._check_size(expr, "function")
            outs = [prepare_for_diff(e) for e in np.ravel(np.asarray(expr, dtype=object))]
            wrt = [s for n in names for s in np.ravel(np.asarray(symbols[n], dtype=object))]
            start = time.perf_counter()
            if order == 1:
                ders = [_diff(e, s) for e in outs for s in wrt]
            else:
                (e,) = outs
                ders = [_diff(e, a, b) for a in wrt for b in wrt]
            if self.simplify:
                ders = [sympy.simplify(d) for d in ders]
            seconds = time.perf_counter() - start
            size = self._check_size(np.array(ders, dtype=object), "derivative")
        self.last_cost.extra["seconds_symbolic"] = seconds
        self.last_cost.expression_size = size
        self.last_cost.extra["function_tree"] = function_size
        return ders, symbols, len(outs), len(wrt)

    def _jacobian(self, f: Node, at, names: list[str]) -> dict:
        check_at(f, at)
        shapes = variable_shapes(f)
        ders, symbols, m, n = self._derivatives(f, names, 1, at)
        values = self._evaluate(ders, symbols, at)
        if self.precision is not None:
            jac = np.array(values, dtype=object).reshape(m, n)
        else:
            jac = _as_dtype(values, dtype_of(at, f)).reshape(m, n)
        out, col = {}, 0
        for name in names:
            size = int(np.prod(shapes[name], dtype=np.int64))
            block = jac[:, col : col + size].reshape(f.shape + shapes[name])
            if self.precision is not None:
                out[name] = block[()] if block.shape == () else block
            else:
                out[name] = as_output(block)
            col += size
        return out

    def _hessian(self, f: Node, at, names: list[str]) -> np.ndarray:
        check_at(f, at)
        ders, symbols, _, n = self._derivatives(f, names, 2, at)
        values = self._evaluate(ders, symbols, at)
        if self.precision is not None:
            return np.array(values, dtype=object).reshape(n, n)
        return _as_dtype(values, dtype_of(at, f)).reshape(n, n)

    def nth_derivative(self, f: Node, wrt, at, order: int, sizes: bool = True):
        """d^k f / d wrt^k at ``at`` for a scalar variable ``wrt`` (``sympy.diff(e, x, k)``),
        within the time budget and size limit.

        ``last_cost.expression_size`` is the derivative's tree size; ``last_cost.extra``
        holds ``ops`` (``count_ops``), ``cse`` (DAG nodes after ``sympy.cse``, with
        ``sizes``), ``function_tree`` and ``seconds_symbolic`` (the differentiation alone).

        >>> import diffkit as dk
        >>> x = dk.variable("x")
        >>> Symbolic().nth_derivative(dk.exp(2 * x), "x", {"x": 0.0}, 3)
        8.0
        """
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"symbolic: the order must be a positive integer, got {order!r}")
        check_at(f, at)
        name = wrt.name if isinstance(wrt, Node) else wrt
        shapes = variable_shapes(f)
        if name in shapes and shapes[name] != ():
            raise ValueError(
                f"symbolic: derivatives of order {order} need a scalar variable; "
                f"{name!r} has shape {shapes[name]}"
            )
        self.last_cost = Cost(self.name)
        start_all = time.perf_counter()
        real = dtype_of(at).kind != "c"
        with sympy_guard(self.time_budget):
            expr, symbols = to_sympy(f, real=real)
            self.last_cost.extra["function_tree"] = self._check_size(expr, "function")
            outs = [prepare_for_diff(e) for e in np.ravel(np.asarray(expr, dtype=object))]
            start = time.perf_counter()
            if name in symbols:
                ders = [_diff(e, symbols[name], int(order)) for e in outs]
            else:
                ders = [sympy.S.Zero for _ in outs]
            if self.simplify:
                ders = [sympy.simplify(d) for d in ders]
            self.last_cost.extra["seconds_symbolic"] = time.perf_counter() - start
            self.last_cost.expression_size = self._check_size(
                np.array(ders, dtype=object), "derivative"
            )
            self.last_cost.extra["ops"] = sum(int(sympy.count_ops(d)) for d in ders)
            if sizes:
                self.last_cost.extra["cse"] = expression_size(ders).cse
        values = self._evaluate(ders, symbols, at)
        self.last_cost.seconds = time.perf_counter() - start_all
        if self.precision is not None:
            out = np.array(values, dtype=object).reshape(f.shape)
            return out[()] if out.shape == () else out
        return as_output(_as_dtype(values, dtype_of(at, f)).reshape(f.shape))


register_method("symbolic", Symbolic)


def _latex(node: Node):
    """``$...$`` of a node through SymPy, or None for graphs without a SymPy form or too
    large to show (more than 2,000 tree nodes)."""
    try:
        with sympy_guard(2.0, "LaTeX display"):
            expr, _ = to_sympy(node)
            if tree_size(expr, 2000) > 2000:
                return None
            return f"${sympy.latex(sympy.Matrix(expr) if isinstance(expr, np.ndarray) else expr)}$"
    except (SymbolicError, ValueError):
        return None


DISPLAY["latex"] = _latex

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

import time
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy

from ..ir.node import Node
from ..ir.schedule import UnsupportedBackendError, compile
from .common import Differentiator, as_output, check_at, register_method, variable_shapes

__all__ = [
    "Symbolic",
    "to_sympy",
    "expression_size",
    "ExpressionSize",
    "symbolic_derivative",
    "SymbolicDerivative",
    "reference_derivative",
]


@dataclass(frozen=True)
class ExpressionSize:
    """Size of a SymPy expression: tree nodes, operation count, DAG nodes after CSE."""

    tree: int
    ops: int
    cse: int


def expression_size(expr) -> ExpressionSize:
    """The three size measures of a SymPy expression (or an array of them, summed)."""
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


def _symbols(name: str, shape: tuple):
    if shape == ():
        return sympy.Symbol(name, real=True)
    arr = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        arr[idx] = sympy.Symbol(f"{name}[{','.join(map(str, idx))}]", real=True)
    return arr


def to_sympy(f: Node | list):
    """``f`` as SymPy: an expression for a scalar node, an object array otherwise.

    Returns:
        ``(expr, symbols)`` with ``symbols`` mapping each variable name to its
        SymPy symbol (or object array of symbols).
    """
    shapes = variable_shapes(f)
    symbols = {n: _symbols(n, s) for n, s in shapes.items()}
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


def symbolic_derivative(f: Node, wrt, simplify: bool = False) -> SymbolicDerivative:
    """d f / d wrt for a scalar ``f`` and scalar variable ``wrt``, with sizes.

    Args:
        f: a scalar IR node.
        wrt: a variable name or node.
        simplify: also simplify the derivative (and time it).
    """
    name = wrt.name if isinstance(wrt, Node) else wrt
    expr, symbols = to_sympy(f)
    if name not in symbols:
        raise ValueError(f"f does not depend on a variable named {name!r}")
    start = time.perf_counter()
    d = sympy.diff(expr, symbols[name])
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


class Symbolic(Differentiator):
    """SymPy differentiation, evaluated by ``lambdify`` at float64 (or at ``precision`` digits).

    Args:
        simplify: simplify each derivative before evaluating it.
        cse: evaluate through common-subexpression elimination.
        precision: if given, evaluate the derivative with mpmath at this many digits.

    ``last_cost.expression_size`` is the tree size of the derivatives produced;
    ``last_cost.extra`` holds ``count_ops`` and the CSE size.
    """

    name = "symbolic"

    def __init__(self, simplify: bool = False, cse: bool = False, precision: int | None = None):
        self.simplify = simplify
        self.cse = cse
        self.precision = precision
        super().__init__()

    def _evaluate(self, exprs: list, symbols: dict, at) -> list:
        flat_syms, flat_vals = [], []
        for n, s in symbols.items():
            syms = np.ravel(np.asarray(s, dtype=object))
            flat_syms.extend(syms)
            flat_vals.extend(np.ravel(np.asarray(at[n], dtype=np.float64)))
        if self.precision is not None:
            with mpmath.workdps(self.precision):
                fn = sympy.lambdify(flat_syms, exprs, modules="mpmath", cse=self.cse)
                return fn(*[mpmath.mpf(v) for v in flat_vals])
        fn = sympy.lambdify(flat_syms, exprs, modules="numpy", cse=self.cse)
        with np.errstate(all="ignore"):
            return [float(v) for v in fn(*flat_vals)]

    def _derivatives(self, f: Node, names: list[str], order: int):
        expr, symbols = to_sympy(f)
        outs = list(np.ravel(np.asarray(expr, dtype=object)))
        wrt_syms = [s for n in names for s in np.ravel(np.asarray(symbols[n], dtype=object))]
        start = time.perf_counter()
        if order == 1:
            ders = [sympy.diff(e, s) for e in outs for s in wrt_syms]
        else:
            (e,) = outs
            ders = [sympy.diff(e, a, b) for a in wrt_syms for b in wrt_syms]
        if self.simplify:
            ders = [sympy.simplify(d) for d in ders]
        self.last_cost.extra["seconds_symbolic"] = time.perf_counter() - start
        size = expression_size(np.array(ders, dtype=object))
        self.last_cost.expression_size = size.tree
        self.last_cost.extra.update(
            count_ops=size.ops, cse=size.cse, function_tree=expression_size(expr).tree
        )
        return ders, symbols, len(outs), len(wrt_syms)

    def _jacobian(self, f: Node, at, names: list[str]) -> dict:
        check_at(f, at)
        shapes = variable_shapes(f)
        ders, symbols, m, n = self._derivatives(f, names, 1)
        values = self._evaluate(ders, symbols, at)
        if self.precision is not None:
            jac = np.array(values, dtype=object).reshape(m, n)
        else:
            jac = np.array(values, dtype=float).reshape(m, n)
        out, col = {}, 0
        for name in names:
            size = int(np.prod(shapes[name], dtype=np.int64))
            block = jac[:, col : col + size].reshape(f.shape + shapes[name])
            out[name] = (
                block[()]
                if self.precision is not None and block.shape == ()
                else (as_output(block) if self.precision is None else block)
            )
            col += size
        return out

    def _hessian(self, f: Node, at, names: list[str]) -> np.ndarray:
        check_at(f, at)
        ders, symbols, _, n = self._derivatives(f, names, 2)
        values = self._evaluate(ders, symbols, at)
        return np.array(values, dtype=float if self.precision is None else object).reshape(n, n)


def reference_derivative(f: Node, wrt, at, digits: int = 50):
    """d f / d wrt at ``at`` to ``digits`` significant digits, for a scalar graph.

    The graph is evaluated by the mpmath interpreter (each op's mpmath rule) and
    differentiated by ``mpmath.diff``, so the result shares no code path with the
    float64 implementations or with diffkit's derivative rules.

    Returns:
        An ``mpmath.mpf``.
    """
    name = wrt.name if isinstance(wrt, Node) else wrt
    shapes = variable_shapes(f)
    if f.shape != () or any(s != () for s in shapes.values()):
        raise ValueError("reference_derivative needs a scalar graph of scalar variables")
    if name not in shapes:
        raise ValueError(f"f does not depend on a variable named {name!r}")
    check_at(f, at)
    program = compile(f)
    with mpmath.workdps(digits + 15):
        base = {k: mpmath.mpf(v) if not isinstance(v, mpmath.mpf) else v for k, v in at.items()}

        def g(t):
            return program.run_objects({**base, name: t}, "mpmath", precision=None)

        value = mpmath.diff(g, base[name])
    with mpmath.workdps(digits):
        return +value


register_method("symbolic", Symbolic)

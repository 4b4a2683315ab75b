"""The four ways of differentiating an IR graph, behind one interface.

``ReverseMode`` and ``ForwardMode`` (automatic differentiation),
``FiniteDifference`` and ``Symbolic``. Each answers ``gradient``, ``derivative``,
``jacobian`` and ``hessian`` and records the cost of its last call in
``last_cost``; ``methods()`` lists the names the top-level calls accept.
"""

from .api import check_grads, derivative, gradient, hessian, jacobian, jvp, methods, vjp
from .common import Cost, Differentiator, get_method
from .compare import compare
from .reference import NoReference, reference_derivative
from .finite import SCHEMES, FiniteDifference
from .forward import ForwardMode, jvp_graph
from .reverse import ReverseMode, grad_graph, vjp_graph
from .symbolic import (
    ExpressionSize,
    Symbolic,
    SymbolicDerivative,
    SymbolicError,
    SymbolicLimitError,
    expression_size,
    symbolic_derivative,
    to_sympy,
)

__all__ = [
    "ReverseMode",
    "ForwardMode",
    "Differentiator",
    "Cost",
    "methods",
    "get_method",
    "gradient",
    "derivative",
    "jacobian",
    "hessian",
    "jvp",
    "vjp",
    "check_grads",
    "jvp_graph",
    "vjp_graph",
    "grad_graph",
    "FiniteDifference",
    "SCHEMES",
    "Symbolic",
    "SymbolicDerivative",
    "ExpressionSize",
    "expression_size",
    "reference_derivative",
    "NoReference",
    "SymbolicLimitError",
    "SymbolicError",
    "symbolic_derivative",
    "to_sympy",
    "compare",
]

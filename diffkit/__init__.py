"""diffkit: finite differences, symbolic differentiation, forward and reverse mode on one IR.

>>> import diffkit as dk
>>> x, y, z = dk.variables("x y z")
>>> f = (x + y) * z
>>> dk.evaluate(f, at={"x": -2.0, "y": 5.0, "z": -4.0})
-12.0
>>> dk.gradient(f, at={"x": -2.0, "y": 5.0, "z": -4.0})
{'x': -4.0, 'y': -4.0, 'z': 3.0}
"""

from . import ops  # noqa: F401  (fills the op registry)
from .differentiators import (
    SCHEMES,
    Cost,
    ExpressionSize,
    FiniteDifference,
    ForwardMode,
    ReverseMode,
    Symbolic,
    check_grads,
    derivative,
    expression_size,
    get_method,
    grad_graph,
    gradient,
    jacobian,
    jvp_graph,
    methods,
    NoReference,
    SymbolicError,
    SymbolicLimitError,
    reference_derivative,
    symbolic_derivative,
    to_sympy,
    vjp_graph,
)
from .ir import (
    EvaluationError,
    Node,
    Op,
    Program,
    Sample,
    ShapeError,
    Unsupported,
    apply,
    compile,
    const,
    custom_op,
    evaluate,
    graph_size,
    registry,
    variable,
    variables,
)
from .ops import *  # noqa: F401,F403
from .ops import __all__ as _OPS
from .parse import ParseError, from_sympy, parse
from .transforms import grad, jacfwd, jacrev, value_and_grad
from .front import compare, hessian, jvp, vjp  # a node, a Python function or a string
from .differentiators.sparse import (
    SparseHessian,
    SparseJacobian,
    hessian_sparsity,
    jacobian_sparsity,
    sparsity,
)
from .differentiators.coloring import Coloring, coloring
from .differentiators.taylor import jet
from .differentiators.higher import directional_derivative, laplacian
from .differentiators.checkpoint import (
    checkpoint,
    checkpoint_chain,
    checkpoint_name,
    remat,
    revolve_recomputations,
    saved_residuals,
)
from .testing import numerical_gradient
from . import testing  # noqa: E402,F401
from . import nn, train, viz  # noqa: E402

__version__ = "0.1.0"

__all__ = _OPS + [
    "nn",
    "train",
    "viz",
    "variable",
    "variables",
    "const",
    "apply",
    "evaluate",
    "compile",
    "graph_size",
    "Node",
    "Op",
    "Sample",
    "Unsupported",
    "registry",
    "custom_op",
    "Program",
    "ShapeError",
    "EvaluationError",
    "parse",
    "from_sympy",
    "grad",
    "value_and_grad",
    "numerical_gradient",
    "testing",
    "jacfwd",
    "jacrev",
    "ParseError",
    "gradient",
    "derivative",
    "jacobian",
    "hessian",
    "jvp",
    "vjp",
    "check_grads",
    "grad_graph",
    "jvp_graph",
    "vjp_graph",
    "methods",
    "get_method",
    "ReverseMode",
    "ForwardMode",
    "Cost",
    "FiniteDifference",
    "Symbolic",
    "SCHEMES",
    "ExpressionSize",
    "expression_size",
    "reference_derivative",
    "NoReference",
    "SymbolicLimitError",
    "SymbolicError",
    "symbolic_derivative",
    "to_sympy",
    "compare",
    "sparsity",
    "jacobian_sparsity",
    "hessian_sparsity",
    "SparseJacobian",
    "SparseHessian",
    "coloring",
    "Coloring",
    "jet",
    "directional_derivative",
    "laplacian",
    "checkpoint",
    "remat",
    "checkpoint_name",
    "checkpoint_chain",
    "saved_residuals",
    "revolve_recomputations",
]

"""The expression IR: nodes, op records, shapes, schedules and interpreters."""

from .custom import custom_op
from .node import Node, ShapeError, apply, as_node, const, variable, variables
from .op import ELEMENTWISE, LINEAR, STRUCTURAL, Op, Sample, Unsupported, get_op, register, registry
from .schedule import EvaluationError, Program, compile, evaluate, graph_size, topological_order

__all__ = [
    "Node",
    "ShapeError",
    "apply",
    "as_node",
    "const",
    "variable",
    "variables",
    "Op",
    "Sample",
    "Unsupported",
    "ELEMENTWISE",
    "LINEAR",
    "STRUCTURAL",
    "get_op",
    "register",
    "registry",
    "EvaluationError",
    "Program",
    "compile",
    "evaluate",
    "graph_size",
    "topological_order",
    "custom_op",
]

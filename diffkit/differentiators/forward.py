"""Forward mode: the JVP graph, built by pushing tangents through the DAG in topological order.

:func:`jvp_graph` asks each op's record for its JVP rule. Elementwise ops derive
it from their VJP rule (their Jacobian is diagonal), linear ops apply themselves
to the tangents; other ops state it. Like reverse mode, the result is IR.

>>> import diffkit as dk
>>> x = dk.variable("x")
>>> dk.derivative(dk.sin(x) * x, "x", at={"x": 0.0}, method="forward")
0.0
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..ir.node import Node, apply, as_node, const, internal_variable, variable
from ..ir.op import ELEMENTWISE, LINEAR, Unsupported
from ..ir.schedule import graph_size, paused_gc, topological_order
from ..ops.shape import sum_to
from .common import (
    Differentiator,
    as_output,
    check_at,
    dtype_of,
    flat_size,
    register_method,
    variable_shapes,
)
from .batching import basis_passes
from .graphs import cached_graph

__all__ = ["jvp_graph", "ForwardMode", "jvp_rule"]


def jvp_rule(node: Node, tangents: list) -> Node | None:
    """The tangent of ``node`` given its inputs' tangents (``None`` for zero)."""
    op = node.op
    rule = op.jvp
    if rule is ELEMENTWISE:
        total = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            part = op.vjp(t, node, *node.inputs, **node.attrs)[i]
            if part is None:
                continue
            total = part if total is None else total + part
        return total
    if rule is LINEAR:
        args = [
            t if t is not None else const(np.zeros(i.shape)) for t, i in zip(tangents, node.inputs)
        ]
        return apply(op, *args, **node.attrs)
    if isinstance(rule, Unsupported):
        raise ValueError(f"forward mode: op {op.name!r} has no JVP rule: {rule.reason}")
    return rule(tangents, node, *node.inputs, **node.attrs)


@paused_gc()
def jvp_graph(outputs: Sequence[Node], tangents: Mapping[Node, Node]) -> list[Node]:
    """The tangent of each output, J·t, as IR.

    Args:
        outputs: primal output nodes.
        tangents: variable node -> tangent node of the same shape.

    Returns:
        One node per output (a zero constant where no tangent reaches it).

    >>> import diffkit as dk
    >>> x, t = dk.variables("x t")
    >>> [tangent] = dk.jvp_graph([x * x], {x: t})
    >>> dk.evaluate(tangent, at={"x": 3.0, "t": 1.0})  # 2x t
    6.0
    """
    tan: dict[int, Node] = {id(v): as_node(t) for v, t in tangents.items()}
    for node in topological_order(outputs):
        if node.kind != "op":
            continue
        ts = [tan.get(id(i)) for i in node.inputs]
        if all(t is None for t in ts):
            continue
        for i in node.op.nondiff_inputs:
            ts[i] = None
        t = jvp_rule(node, ts)
        if t is not None:
            tan[id(node)] = sum_to(as_node(t), node.shape)
    return [tan.get(id(o), const(np.zeros(o.shape))) for o in outputs]


class ForwardMode(Differentiator):
    """Forward-mode automatic differentiation: one tangent pass per input entry.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> m = dk.ForwardMode()
    >>> m.gradient(x * y, at={"x": 2.0, "y": 3.0}), m.last_cost.passes  # one pass per input
    ({'x': 3.0, 'y': 2.0}, 2)
    """

    name = "forward"

    def _tangent_program(self, f: Node, names: list[str]):
        shapes = variable_shapes(f)
        tvars = [internal_variable(f"tangent[{n}]", shapes[n]) for n in names]
        wrt = [variable(n, shapes[n]) for n in names]
        out = cached_graph(
            ("jvp", f, tuple(names)), lambda: jvp_graph([f], dict(zip(wrt, tvars)))[0]
        )
        return out, tvars, shapes

    def _jacobian(self, f: Node, at, names: list[str]) -> dict:
        check_at(f, at)
        out, tvars, shapes = self._tangent_program(f, names)
        # every tangent basis direction, in batched chunks: row k is the k-th column of J
        rows, evaluations = basis_passes(
            [out], tvars, at, dtype_of(at, f), cache_key=("jvp", f, tuple(names))
        )
        result, row = {}, 0
        for n in names:
            size = flat_size(shapes[n])
            jac = rows[row : row + size].T
            result[n] = as_output(jac.reshape(f.shape + shapes[n]))
            row += size
        self.last_cost.passes, self.last_cost.batches = rows.shape[0], evaluations
        self.last_cost.graph_size = graph_size(out)
        return result

    def _hessian(self, f: Node, at, names: list[str]) -> np.ndarray:
        """Forward over forward: w·H·u for every pair of basis directions, with the u
        directions of each w in batched chunks."""
        check_at(f, at)
        out, tvars, shapes = self._tangent_program(f, names)
        svars = [internal_variable(f"tangent2[{n}]", shapes[n]) for n in names]
        wrt = [variable(n, shapes[n]) for n in names]
        second = cached_graph(
            ("jvp2", f, tuple(names)), lambda: jvp_graph([out], dict(zip(wrt, svars)))[0]
        )
        sizes = [flat_size(shapes[n]) for n in names]
        total = int(np.sum(sizes))
        dt = dtype_of(at, f)
        H = np.zeros((total, total), dt)
        evaluations = 0
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for j in range(total):
            fixed = {}
            for n, sv, lo, size in zip(names, svars, offsets[:-1], sizes):
                e = np.zeros(size, dt)
                if lo <= j < lo + size:
                    e[j - lo] = 1.0
                fixed[sv.name] = e.reshape(shapes[n])
            rows, count = basis_passes(
                [second], tvars, {**at, **fixed}, dt, cache_key=("jvp2", f, tuple(names))
            )
            H[:, j] = rows[:, 0]
            evaluations += count
        self.last_cost.passes, self.last_cost.batches = total * total, evaluations
        self.last_cost.graph_size = graph_size(second)
        return H


register_method("forward", ForwardMode)

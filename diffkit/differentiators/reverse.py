"""Reverse mode: the VJP graph, built by adjoint accumulation in reverse topological order.

:func:`vjp_graph` walks the primal DAG from the outputs back to the variables,
asks each op's record for its VJP rule (written in IR ops), sums broadcast
cotangents back to each input's shape, and adds up the cotangents that reach a
node along several paths. It knows nothing about any particular op. Its result
is IR: evaluate it, differentiate it again, count it.

Inside a checkpointed region (:mod:`diffkit.differentiators.checkpoint`) the walk is
the same, in the same order, but each VJP rule reads its primal values from the
region's recomputed copy, built in the backward pass after the cotangent that first
needs it: the forward values of the region are then dead after the forward pass.

>>> import diffkit as dk
>>> x, y, z = dk.variables("x y z")
>>> dk.gradient((x + y) * z, at={"x": -2.0, "y": 5.0, "z": -4.0})
{'x': -4.0, 'y': -4.0, 'z': 3.0}
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..ir.node import Node, as_node, const, internal_variable, variable
from ..ir.op import Unsupported
from ..ir.schedule import compile, graph_size, paused_gc, topological_order
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
from .checkpoint import Remat
from .graphs import cached_graph

__all__ = ["vjp_graph", "grad_graph", "ReverseMode"]


def _active(order: list[Node], wrt_ids: set[int]) -> set[int]:
    """Ids of the nodes that depend on one of ``wrt_ids``."""
    active: set[int] = set()
    for node in order:
        if id(node) in wrt_ids or any(id(i) in active for i in node.inputs):
            active.add(id(node))
    return active


@paused_gc()
def vjp_graph(
    outputs: Sequence[Node], cotangents: Sequence[Node], wrt: Iterable[Node]
) -> list[Node]:
    """The cotangent of each variable in ``wrt``: sum over outputs of Jᵀ·cotangent, as IR.

    Args:
        outputs: primal output nodes.
        cotangents: one node per output, of the output's shape (or broadcastable to it).
        wrt: variable nodes (or any nodes of the graph: their adjoints are returned).

    Returns:
        One node per entry of ``wrt`` (a zero constant where no path leads).

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> [g] = dk.vjp_graph([x * x], [dk.const(1.0)], [x])
    >>> dk.evaluate(g, at={"x": 3.0})  # 2x
    6.0
    """
    outputs, wrt = list(outputs), list(wrt)
    order = topological_order(outputs)
    active = _active(order, {id(v) for v in wrt})
    remat = Remat(order)
    adjoint: dict[int, Node] = {}

    def accumulate(node: Node, ct: Node) -> None:
        ct = sum_to(as_node(ct), node.shape)
        prev = adjoint.get(id(node))
        adjoint[id(node)] = ct if prev is None else prev + ct

    for out, ct in zip(outputs, cotangents):
        if id(out) in active:
            accumulate(out, ct)
    for node in reversed(order):
        if node.kind != "op" or id(node) not in adjoint:
            continue
        ct = adjoint[id(node)]
        rule = node.op.vjp
        if isinstance(rule, Unsupported):
            raise ValueError(
                f"reverse mode: op {node.op.name!r} is not differentiable: {rule.reason}"
            )
        if remat:
            out, inputs = remat.values(node, ct)
            cts = rule(ct, out, *inputs, **node.attrs)
        else:
            cts = rule(ct, node, *node.inputs, **node.attrs)
        if len(cts) != len(node.inputs):
            raise ValueError(
                f"VJP rule of {node.op.name!r} returned {len(cts)} cotangents for "
                f"{len(node.inputs)} inputs"
            )
        for inp, c in zip(node.inputs, cts):
            if c is not None and id(inp) in active:
                accumulate(inp, c)
    return [adjoint.get(id(v), const(np.zeros(v.shape))) for v in wrt]


def grad_graph(f: Node, wrt=None):
    """The gradient of the scalar ``f`` as IR: a node for a single ``wrt`` name or variable,
    else a dict name -> node (every variable of ``f`` by default).

    The result is a graph like any other: evaluate it, count it with
    ``dk.graph_size``, or differentiate it again.

    Args:
        f: a scalar node.
        wrt: a name, a variable, or a list of them (every variable by default).

    Returns:
        Node, or dict name -> Node.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> d3 = dk.grad_graph(dk.grad_graph(dk.grad_graph(dk.sin(x), "x"), "x"), "x")
    >>> dk.evaluate(d3, at={"x": 0.0})  # -cos(0)
    -1.0
    """
    from .common import resolve_wrt

    if f.shape != ():
        raise ValueError(f"grad_graph needs a scalar output, but f has shape {f.shape}")
    single = isinstance(wrt, (str, Node))
    shapes = variable_shapes(f)
    wrt_list = [wrt] if single else wrt
    if wrt_list is None:
        names = sorted(shapes)
    else:
        # a variable f does not use (or no longer uses, once folded) has gradient zero
        for w in wrt_list:
            if isinstance(w, Node) and w.kind == "var":
                shapes.setdefault(w.name, w.shape)
            elif isinstance(w, str):
                shapes.setdefault(w, ())
        names = resolve_wrt(f, wrt_list, {n: None for n in shapes})
    grads = vjp_graph([f], [const(1.0)], [variable(n, shapes[n]) for n in names])
    return grads[0] if single else dict(zip(names, grads))


class ReverseMode(Differentiator):
    """Reverse-mode automatic differentiation: one backward pass per output entry.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> m = dk.ReverseMode()
    >>> m.derivative(x ** 3, "x", at={"x": 2.0}), m.last_cost.passes  # 3x^2; one backward pass
    (12.0, 1)
    """

    name = "reverse"
    real_output_convention = True

    def _jacobian(self, f: Node, at, names: list[str]) -> dict:
        check_at(f, at)
        shapes = variable_shapes(f)
        wrt = [variable(n, shapes[n]) for n in names]
        if f.shape == ():
            grads = cached_graph(
                ("grad", f, tuple(names)), lambda: vjp_graph([f], [const(1.0)], wrt)
            )
            values = compile(grads)(at, strict=False)
            self.last_cost.passes = self.last_cost.batches = 1
            self.last_cost.graph_size = graph_size(grads)
            return {n: as_output(v) for n, v in zip(names, values)}
        seed = internal_variable(f"cotangent[{id(f)}]", f.shape)
        cts = cached_graph(("vjp", f, tuple(names)), lambda: vjp_graph([f], [seed], wrt))
        # every cotangent basis direction, in batched chunks: row k is the k-th row of J
        rows, evaluations = basis_passes(
            cts, [seed], at, dtype_of(at, f), cache_key=("vjp", f, tuple(names))
        )
        self.last_cost.passes, self.last_cost.batches = rows.shape[0], evaluations
        self.last_cost.graph_size = graph_size(cts)
        out, col = {}, 0
        for n in names:
            size = flat_size(shapes[n])
            out[n] = as_output(rows[:, col : col + size].reshape(f.shape + shapes[n]))
            col += size
        return out

    def _hessian(self, f: Node, at, names: list[str]) -> np.ndarray:
        from .forward import jvp_graph

        check_at(f, at)
        shapes = variable_shapes(f)
        wrt = [variable(n, shapes[n]) for n in names]
        tangents = [internal_variable(f"tangent[{n}]", shapes[n]) for n in names]

        def build():
            grads = vjp_graph([f], [const(1.0)], wrt)
            return jvp_graph(grads, dict(zip(wrt, tangents)))

        hvps = cached_graph(("hvp", f, tuple(names)), build)
        self.last_cost.graph_size = graph_size(hvps)
        # H e_k for every basis direction e_k, in batched chunks (H is symmetric)
        rows, evaluations = basis_passes(
            hvps, tangents, at, dtype_of(at, f), cache_key=("hvp", f, tuple(names))
        )
        self.last_cost.passes, self.last_cost.batches = rows.shape[0], evaluations
        return np.ascontiguousarray(rows.T)


register_method("reverse", ReverseMode)

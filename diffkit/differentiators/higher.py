"""Derivatives of any order, by every method: Taylor mode, nested forward and reverse mode,
forward-over-reverse, symbolic, finite differences and the complex circle.

:func:`derivative` gives ``d^k f / dx^k`` for a scalar variable ``x`` by method name, and
:func:`directional_derivative` ``d^k/dt^k f(x + t v)`` at ``t = 0`` for any variables.
:func:`laplacian` is the trace of the Hessian by Taylor mode: ``"collapsed"`` pushes the
first-order coefficients of all D basis directions through the graph together and sums
their second-order coefficients as it goes, so that only one second-order coefficient per
node is propagated (Dangel et al., 2025); ``"taylor"`` propagates D second-order jets,
``"hessian"`` forms forward-over-reverse Hessian.

Every call can return what it cost and how far off it may be (``full_output=True``):
graph or expression size, evaluations, seconds, and for the numerical methods an error
estimate (zero for the exact methods, whose error is round-off in the evaluation).

>>> import diffkit as dk
>>> x = dk.variable("x")
>>> derivative(dk.exp(2 * x), "x", {"x": 0.0}, method="taylor", order=5)
32.0
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..ir.node import Node, const, internal_variable, variable
from ..ir.schedule import compile, graph_size, topological_order
from ..ops._batch import NotBatchable
from .batching import basis_passes, batch_graph
from ..ops.shape import broadcast_to, sum_to
from .common import check_at, dtype_of, get_method, variable_shapes
from .finite import NTH_SCHEMES, non_analytic_ops, nth_difference
from .forward import jvp_graph
from .reverse import vjp_graph
from .symbolic import Symbolic
from .taylor import jet_graph, jet_values, taylor_rule_of

__all__ = [
    "derivative",
    "directional_derivative",
    "laplacian",
    "HigherInfo",
    "HIGHER_METHODS",
    "derivative_graph",
]

#: the methods :func:`derivative` takes for order k
HIGHER_METHODS = (
    "taylor",
    "forward",
    "reverse",
    "forward-over-reverse",
    "symbolic",
    "complex-step",
) + NTH_SCHEMES


@dataclass
class HigherInfo:
    """What a k-th derivative cost: ``graph_size`` (nodes of the derivative graph; 0 for
    ``"taylor"``, which propagates values and builds none),
    ``expression_size`` (SymPy tree nodes), ``evaluations`` of f, ``build_seconds`` and
    ``seconds`` in all, and ``error_estimate`` (0 for the exact methods)."""

    method: str
    order: int
    error_estimate: float = 0.0
    evaluations: int = 0
    graph_size: int = 0
    expression_size: int = 0
    build_seconds: float = 0.0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"derivative: the order must be a positive integer, got {order!r}")
    return int(order)


def _scalar_variable(f: Node, wrt, at) -> Node:
    name = wrt.name if isinstance(wrt, Node) else wrt
    if not isinstance(name, str):
        raise TypeError(f"derivative: wrt must name a variable, got {wrt!r}")
    shapes = variable_shapes(f)
    if name not in shapes and name not in (at or {}):
        raise ValueError(f"derivative: f has no variable named {name!r}")
    shape = shapes[name] if name in shapes else np.shape(at[name])
    if shape != ():
        raise ValueError(
            f"derivative: higher derivatives need a scalar variable, {name!r} has shape {shape}; "
            f"use directional_derivative"
        )
    return variable(name, ())


def derivative_graph(f: Node, wrt, order: int, method: str = "taylor") -> Node:
    """The graph of ``d^k f / d wrt^k`` built by ``"taylor"``, ``"forward"``, ``"reverse"``
    or ``"forward-over-reverse"``."""
    order = _check_order(order)
    x = _scalar_variable(f, wrt, None)
    one = const(1.0)
    if method == "taylor":
        coeffs = jet_graph([f], {x: [one] + [None] * (order - 1)}, order)[0]
        top = coeffs[-1]
        return top * float(math.factorial(order)) if order > 1 else top
    d = f
    for k in range(order):
        reverse = method == "reverse" or (method == "forward-over-reverse" and k == 0)
        if reverse:
            if d.shape != ():
                raise ValueError(f"derivative: {method} needs a scalar f, got shape {d.shape}")
            d = vjp_graph([d], [one], [x])[0]
        elif method in ("forward", "forward-over-reverse"):
            d = jvp_graph([d], {x: one})[0]
        else:
            raise ValueError(f"derivative: no graph method {method!r}")
    return d


def derivative(
    f: Node,
    wrt,
    at: Mapping[str, Any],
    method: str = "taylor",
    order: int = 1,
    full_output: bool = False,
    **options,
):
    """The k-th derivative ``d^k f / d wrt^k`` of ``f`` at ``at`` for a scalar variable.

    Args:
        f: an IR node (scalar for the reverse methods; others take any shape).
        wrt: the variable (name or node); it must be a scalar.
        at: variable name -> value.
        method: one of :data:`HIGHER_METHODS`.
        order: k >= 1.
        full_output: also return a :class:`HigherInfo`.
        options: for finite differences ``step`` and ``accuracy``; for ``"symbolic"``
            ``time_budget``, ``max_size``, ``simplify``.

    Returns:
        The derivative (a float for scalar float64 ``f``), or ``(value, info)``.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> value, info = derivative(dk.sin(x), "x", {"x": 0.0}, "complex-circle", 3, True)
    >>> round(value, 12), info.error_estimate < 1e-10
    (-1.0, True)
    """
    order = _check_order(order)
    if not isinstance(f, Node):
        raise TypeError(f"derivative: expected an IR node, got {type(f).__name__}")
    if method not in HIGHER_METHODS:
        raise ValueError(
            f"derivative: unknown method {method!r} for order {order}; known: "
            f"{', '.join(HIGHER_METHODS)}"
        )
    check_at(f, at)
    x = _scalar_variable(f, wrt, at)
    info = HigherInfo(method, order)
    start = time.perf_counter()
    if method == "taylor":  # Taylor mode on values: no derivative graph is built
        series = {x.name: [np.ones((), dtype_of(at, f))] + [None] * (order - 1)}
        coeffs = jet_values([f], at, series, order)[1][0]
        value = np.asarray(coeffs[-1]) * float(math.factorial(order))
        value = _plain(np.broadcast_to(value.astype(dtype_of(at, f), copy=False), f.shape))
    elif method in ("forward", "reverse", "forward-over-reverse"):
        graph = derivative_graph(f, x, order, method)
        info.build_seconds = time.perf_counter() - start
        info.graph_size = graph_size(graph)
        value = compile(graph)(at, strict=False)
        value = np.asarray(value).astype(dtype_of(at, f), copy=False)
        value = _plain(np.broadcast_to(value, f.shape))
    elif method == "symbolic":
        sym = Symbolic(**{k: v for k, v in options.items() if k != "sizes"})
        value = sym.nth_derivative(f, x, at, order, sizes=options.get("sizes", True))
        info.expression_size = sym.last_cost.expression_size
        info.extra = dict(sym.last_cost.extra)
        info.build_seconds = sym.last_cost.extra.get("seconds_symbolic", 0.0)
    else:
        value = _finite(f, x, at, method, order, info, options)
    info.seconds = time.perf_counter() - start
    return (value, info) if full_output else value


def _finite(f, x, at, method, order, info, options):
    if method == "complex-step":
        if order != 1:
            raise ValueError(
                f"complex-step gives first derivatives only; use complex-circle for order {order}"
            )
        method = "complex-circle"
    if method == "complex-circle":
        bad = non_analytic_ops(f)
        if bad:
            raise ValueError(
                f"complex-circle: op {bad[0]!r} is not analytic, so f has no Taylor series in "
                f"the complex plane; use central or richardson"
            )
    program = compile(f)
    base = {k: np.asarray(v) for k, v in at.items()}
    dtype = dtype_of(at, f)
    x0 = base[x.name][()] if x.name in base else 0.0

    def evaluate(t):
        return program({**base, x.name: np.asarray(t)}, strict=False)

    eps = float(np.finfo(dtype).eps)
    known = {k: options[k] for k in ("step", "accuracy") if k in options}
    result = nth_difference(evaluate, x0, order, method, eps=eps, **known)
    info.error_estimate = float(result.error_estimate)
    info.evaluations = result.evaluations
    info.extra["step"] = result.step
    value = np.asarray(result.value)
    if value.dtype.kind == "c" and dtype.kind != "c":
        value = value.real
    return _plain(np.broadcast_to(value.astype(dtype, copy=False), f.shape))


def _plain(value):
    arr = np.asarray(value)
    return float(arr) if arr.shape == () and arr.dtype == np.float64 else arr


def directional_derivative(
    f: Node,
    at: Mapping[str, Any],
    direction: Mapping[str, Any],
    order: int = 1,
    method: str = "taylor",
):
    """``d^k/dt^k f(x + t v)`` at ``t = 0`` for ``v`` = ``direction`` (name -> array; names
    left out do not move), by ``"taylor"`` (one jet) or ``"forward"`` (k nested JVPs).

    Args:
        f: a node.
        at: variable name -> value.
        direction: variable name -> direction (names left out do not move).
        order: the order k.
        method: ``"taylor"`` or ``"forward"``.

    Returns:
        The k-th directional derivative (of ``f``'s shape).

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> directional_derivative(x * x * y, {"x": 1.0, "y": 2.0}, {"x": 1.0, "y": 1.0}, 3)
    6.0
    """
    order = _check_order(order)
    check_at(f, at)
    shapes = variable_shapes(f)
    tangents = {}
    for name, v in direction.items():
        if name not in shapes:
            if name in at:
                continue
            raise ValueError(f"directional_derivative: f has no variable named {name!r}")
        v = np.asarray(v, dtype=np.result_type(np.asarray(v).dtype, np.float16))
        if v.shape != shapes[name]:
            raise ValueError(
                f"directional_derivative: the direction of {name!r} has shape {v.shape}, "
                f"expected {shapes[name]}"
            )
        tangents[variable(name, shapes[name])] = const(v)
    if method == "taylor":
        series = {k.name: [t.value] + [None] * (order - 1) for k, t in tangents.items()}
        top = jet_values([f], at, series, order)[1][0][-1]
        value = np.asarray(top) * float(math.factorial(order))
        return _plain(np.broadcast_to(value.astype(dtype_of(at, f), copy=False), f.shape))
    if method == "forward":
        graph = f
        for _ in range(order):
            graph = jvp_graph([graph], tangents)[0]
    else:
        raise ValueError(
            f"directional_derivative: method must be taylor or forward, got {method!r}"
        )
    value = np.asarray(compile(graph)(at, strict=False)).astype(dtype_of(at, f), copy=False)
    return _plain(np.broadcast_to(value, f.shape))


def laplacian(
    f: Node, at: Mapping[str, Any], wrt=None, method: str = "collapsed", full_output: bool = False
):
    """The Laplacian (trace of the Hessian) of the scalar ``f`` over the variables ``wrt``
    (all by default), by ``"collapsed"`` Taylor mode, ``"taylor"`` (one second-order jet
    per basis direction, batched) or ``"hessian"`` (forward-over-reverse, then the trace).

    Args:
        f: a scalar node.
        at: variable name -> value.
        wrt: the variables (all by default).
        method: ``"collapsed"``, ``"taylor"`` or ``"hessian"``.
        full_output: also return the cost.

    Returns:
        float: the Laplacian (with ``full_output``, also the cost).

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> laplacian(dk.sum(x * x * x), {"x": [1.0, 2.0, 3.0]})  # 6 (1 + 2 + 3)
    36.0
    """
    check_at(f, at)
    if f.shape != ():
        raise ValueError(f"laplacian: f must be a scalar, got shape {f.shape}")
    shapes = variable_shapes(f)
    names = (
        sorted(shapes)
        if wrt is None
        else [
            w.name if isinstance(w, Node) else w
            for w in ([wrt] if isinstance(wrt, (str, Node)) else wrt)
        ]
    )
    for n in names:
        if n not in shapes:
            raise ValueError(f"laplacian: f has no variable named {n!r}")
    info = HigherInfo(method, 2)
    start = time.perf_counter()
    dtype = dtype_of(at, f)
    if method == "hessian":
        H = get_method("reverse").hessian(f, at, wrt=names)
        value = float(np.trace(np.asarray(H))) if dtype == np.float64 else np.trace(H)
    elif method == "taylor":
        seeds = [internal_variable(f"laplacian_dir[{n}]", shapes[n]) for n in names]
        jets = {variable(n, shapes[n]): [s, None] for n, s in zip(names, seeds)}
        second = jet_graph([f], jets, 2)[0][1]
        info.build_seconds = time.perf_counter() - start
        info.graph_size = graph_size(second)
        rows, _ = basis_passes([second], seeds, at, dtype)
        value = 2 * np.sum(rows)
    elif method == "collapsed":
        try:
            graph = _collapsed_graph(f, names, shapes)
        except NotBatchable:  # an op without a batching rule: one jet per direction
            info.extra["collapsed"] = False
            return laplacian(f, at, names, "taylor", full_output)
        info.build_seconds = time.perf_counter() - start
        info.graph_size = graph_size(graph)
        value = 2 * np.asarray(compile(graph)(at, strict=False))
    else:
        raise ValueError(f"laplacian: method must be collapsed, taylor or hessian, got {method!r}")
    value = _plain(np.asarray(value).astype(dtype, copy=False))
    info.seconds = time.perf_counter() - start
    return (value, info) if full_output else value


def _collapsed_graph(f: Node, names: list[str], shapes: dict) -> Node:
    """The sum over basis directions of the normalized second coefficient of ``f``.

    Each node carries its first coefficients for all D directions (one batched node) and
    the sum of its second coefficients (one node of its own shape). A rule's second
    coefficient is J a_2 + Q(a_1) with Q quadratic, so the sum over directions is J applied
    to the summed a_2 plus the batched Q(a_1^d) summed over d."""
    sizes = [int(np.prod(shapes[n], dtype=np.int64)) for n in names]
    total = int(sum(sizes))
    first: dict[int, Node] = {}
    summed: dict[int, Node | None] = {}
    offset = 0
    for n, size in zip(names, sizes):
        basis = np.zeros((total, size))
        basis[offset : offset + size] = np.eye(size)
        first[id(variable(n, shapes[n]))] = const(basis.reshape((total,) + shapes[n]))
        summed[id(variable(n, shapes[n]))] = None
        offset += size
    for node in topological_order([f]):
        if node.kind != "op" or id(node) in first:
            continue
        if not any(id(i) in first for i in node.inputs):
            continue
        rule = taylor_rule_of(node.op)
        holders, series_q, series_s = {}, [], []
        for i, x in enumerate(node.inputs):
            if id(x) in first and i not in node.op.nondiff_inputs:
                p = internal_variable(f"collapsed_p[{id(node)}][{i}]", x.shape)
                holders[p] = first[id(x)]
                series_q.append([x, p, None])
                series_s.append([x, None, summed[id(x)]])
            else:
                series_q.append([x, None, None])
                series_s.append([x, None, None])
        y1, q = rule(node, series_q, 2)
        _, linear = (
            rule(node, series_s, 2) if any(s[2] is not None for s in series_s) else (None, None)
        )
        outs = [o for o in (y1, q) if o is not None]
        if not outs:
            continue
        batched = batch_graph(outs, holders, total)
        it = iter(batched)
        b1 = next(it) if y1 is not None else None
        bq = next(it) if q is not None else None
        if b1 is not None:
            b1n, is_b = b1
            first[id(node)] = _to_batch(b1n, is_b, total, node.shape)
        quad = None
        if bq is not None:
            bqn, is_b = bq
            quad = bqn.sum(axis=0) if is_b else bqn * float(total)
        parts = [p for p in (quad, linear) if p is not None]
        s = None
        for p in parts:
            p = _fit(p, node.shape)
            s = p if s is None else s + p
        summed[id(node)] = s
        if id(node) not in first:
            first[id(node)] = const(np.zeros((total,) + node.shape))
    result = summed.get(id(f))
    return const(np.zeros(())) if result is None else result


def _fit(node: Node, shape: tuple) -> Node:
    """``node`` broadcast up to ``shape``, or summed down to it."""
    if node.shape == shape:
        return node
    try:
        grows = np.broadcast_shapes(node.shape, shape) == tuple(shape)
    except ValueError:
        grows = False
    return broadcast_to(node, shape) if grows else sum_to(node, shape)


def _to_batch(node: Node, is_batched: bool, total: int, shape: tuple) -> Node:
    if is_batched:
        return _fit(node, (total,) + shape)
    return broadcast_to(_fit(node, shape), (total,) + shape)

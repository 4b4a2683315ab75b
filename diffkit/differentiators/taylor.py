"""Taylor mode: truncated Taylor polynomials pushed through the graph (``jax.experimental.jet``).

:func:`jet_graph` propagates, for every node, the coefficients ``y_1 ... y_K`` of its value
along the input path ``x(t) = x_0 + x_1 t + ... + x_K t^K``, by each op's ``"taylor"``
rule (:mod:`diffkit.ops._taylor`): one pass of O(K^2) work per op, where K nested JVPs
build graphs that grow much faster with K. Ops whose record has no recurrence get their
coefficients from nested JVPs of the op alone (marked ``NESTED_JVP``), so every
differentiable op joins by its record.

:func:`jet` is JAX's ``jet(fun, primals, series)``: ``series`` holds, for each primal, the
derivatives ``[x'(0), x''(0), ..., x^(K)(0)]`` of the input path (``factorial_scaled``,
JAX's default; ``factorial_scaled=False`` takes normalized coefficients ``x^(k)(0)/k!``),
and the answer is ``(f(primals), [y'(0), ..., y^(K)(0)])`` in the same scaling. ``fun``
is a Python function of numpy arrays (traced once per call) or an IR node, with
``primals`` and ``series`` dicts keyed by variable name.

>>> import numpy as np
>>> import diffkit.differentiators.taylor as tm
>>> y0, ys = tm.jet(np.exp, (0.0,), ([1.0, 0.0, 0.0],))
>>> [float(v) for v in [y0] + ys]
[1.0, 1.0, 1.0, 1.0]
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..ir.node import Node, apply, as_node, const, internal_variable
from ..ir.op import Unsupported
from ..ir.schedule import compile, paused_gc, topological_order
from ..ir.op import LINEAR
from ..ops._taylor import ARRAY_RULES, JVP_EACH, NESTED_JVP
from ..ops.shape import sum_to
from .forward import jvp_graph, jvp_rule

__all__ = [
    "jet",
    "jet_graph",
    "jet_values",
    "taylor_rule_of",
    "nested_jvp_coefficients",
    "substitute",
]


def substitute(outputs: Sequence[Node], mapping: Mapping[Node, Node]) -> list[Node]:
    """``outputs`` rebuilt with each node of ``mapping`` replaced (folds apply again)."""
    new: dict[int, Node] = {id(k): as_node(v) for k, v in mapping.items()}
    for node in topological_order(list(outputs)):
        if id(node) in new or node.kind != "op":
            continue
        ins = [new.get(id(i), i) for i in node.inputs]
        if any(a is not b for a, b in zip(ins, node.inputs)):
            new[id(node)] = apply(node.op, *ins, **node.attrs)
    return [new.get(id(o), o) for o in outputs]


def nested_jvp_coefficients(node: Node, series: list, order: int) -> list:
    """The Taylor coefficients of ``node``'s op along the input polynomial, from ``order``
    nested JVPs in a scalar ``t`` evaluated at ``t = 0``: the generic rule, and the
    independent check of every recurrence."""
    t = internal_variable(f"taylor_t[{id(node)}]", ())
    args = []
    for x, s in zip(node.inputs, series):
        path = x
        for j in range(1, order + 1):
            if s[j] is not None:
                path = path + s[j] * (t**j if j > 1 else t)
        args.append(path)
    g = apply(node.op, *args, **node.attrs)
    outs, d = [], g
    for k in range(1, order + 1):
        d = jvp_graph([d], {t: const(1.0)})[0]
        outs.append(d / float(math.factorial(k)) if k > 1 else d)
    return substitute(outs, {t: const(0.0)})


def _jvp_each(node: Node, series: list, order: int) -> list:
    out = []
    for k in range(1, order + 1):
        ts = [s[k] for s in series]
        out.append(None if all(c is None for c in ts) else jvp_rule(node, ts))
    return out


def taylor_rule_of(op) -> Callable:
    """The Taylor rule of ``op`` as a callable ``(node, series, order) -> coefficients``."""
    rule = op.rule("taylor")
    if rule is NESTED_JVP:
        return nested_jvp_coefficients
    if rule is JVP_EACH:
        return _jvp_each
    if rule is None or isinstance(rule, Unsupported):
        why = f": {rule.reason}" if rule is not None else ""
        raise ValueError(f"taylor mode: op {op.name!r} has no Taylor rule{why}")
    return rule


@paused_gc()
def jet_graph(
    outputs: Sequence[Node], series: Mapping[Node, Sequence], order: int
) -> list[list[Node]]:
    """Normalized Taylor coefficients ``[y_1, ..., y_K]`` of each output, as IR.

    Args:
        outputs: primal output nodes.
        series: variable node -> its normalized coefficients ``[x_1, ..., x_K]`` (nodes,
            arrays or ``None`` for zero), each of the variable's shape.
        order: K.

    Returns:
        One list of K nodes per output (zero constants where nothing reaches it).
    """
    order = _check_order(order)
    coeffs: dict[int, list] = {}
    for var, s in series.items():
        s = list(s)
        if len(s) != order:
            raise ValueError(f"jet: {var} has {len(s)} series terms, expected {order}")
        coeffs[id(var)] = [var] + [None if c is None else as_node(c) for c in s]
    for node in topological_order(list(outputs)):
        if node.kind != "op" or id(node) in coeffs:
            continue
        ins = [coeffs.get(id(i)) for i in node.inputs]
        if all(s is None for s in ins):
            continue
        full = [s if s is not None else [i] + [None] * order for s, i in zip(ins, node.inputs)]
        for i in node.op.nondiff_inputs:
            full[i] = [node.inputs[i]] + [None] * order
        if all(c is None for s in full for c in s[1:]):
            continue
        ys = taylor_rule_of(node.op)(node, full, order)
        ys = [None if y is None else sum_to(as_node(y), node.shape) for y in ys]
        if any(y is not None for y in ys):
            coeffs[id(node)] = [node] + ys
    result = []
    for o in outputs:
        s = coeffs.get(id(o))
        zero = const(np.zeros(o.shape))
        result.append([zero] * order if s is None else [zero if c is None else c for c in s[1:]])
    return result


# ---- Taylor mode in numbers ------------------------------------------------------------------
def jet_values(
    outputs: Sequence[Node], at: Mapping[str, Any], series: Mapping[str, Sequence], order: int
) -> tuple[list, list[list]]:
    """Taylor mode on values: the primal outputs and their normalized coefficients
    ``[y_1, ..., y_K]``, computed without building a derivative graph.

    The primal graph runs once (compiled and cached like any program); then each op maps
    its inputs' coefficient arrays to its own by its Taylor rule called on the arrays
    (the recurrences of :data:`~diffkit.ops._taylor.ARRAY_RULES`), by itself for the
    coefficients of a linear op, and otherwise by a small program built once from the
    rule as IR for the op's signature (op, attributes, input shapes, which coefficients
    are zero, K) and cached. The values equal those of the graph :func:`jet_graph` builds.

    Args:
        outputs: primal output nodes.
        at: variable name -> value (primal point).
        series: variable name -> its normalized coefficients ``[x_1, ..., x_K]`` (arrays
            of the variable's shape, or ``None`` for zero).
        order: K.

    Returns:
        ``(primal values, coefficients)``: one value and one list of K arrays per output.
    """
    order = _check_order(order)
    nodes = topological_order(list(outputs))
    program = compile(nodes)
    raw = program(at, strict=False)
    values = {id(n): _numpy(v) for n, v in zip(nodes, raw)}
    coeffs: dict[int, list] = {}
    by_name = {n.name: n for n in nodes if n.kind == "var"}
    for name, s in series.items():
        var = by_name.get(name)
        if var is None:
            continue
        s = list(s)
        if len(s) != order:
            raise ValueError(f"jet: {name!r} has {len(s)} series terms, expected {order}")
        value = values[id(var)]
        kind = np.asarray(value).dtype
        coeffs[id(var)] = [value] + [None if c is None else _like(c, kind) for c in s]
    with np.errstate(all="ignore"):
        for node in nodes:
            if node.kind != "op" or id(node) in coeffs:
                continue
            ins = [coeffs.get(id(i)) for i in node.inputs]
            if all(s is None for s in ins):
                continue
            full = [
                s if s is not None else [values[id(i)]] + [None] * order
                for s, i in zip(ins, node.inputs)
            ]
            for i in node.op.nondiff_inputs:
                full[i] = [values[id(node.inputs[i])]] + [None] * order
            if all(c is None for s in full for c in s[1:]):
                continue
            ys = _rule_values(node, values[id(node)], full, order)
            ys = [None if y is None else _fit_value(y, node.shape) for y in ys]
            if any(y is not None for y in ys):
                coeffs[id(node)] = [values[id(node)]] + ys
    primal, result = [], []
    for o in outputs:
        value = values[id(o)]
        primal.append(value)
        s = coeffs.get(id(o))
        zero = np.zeros(o.shape, np.asarray(value).dtype)
        zero = zero[()] if zero.ndim == 0 else zero
        result.append([zero] * order if s is None else [zero if c is None else c for c in s[1:]])
    return primal, result


def _numpy(value):
    """A program's output as numpy: a numpy scalar for a Python number (the op
    implementations the rules call take numpy values)."""
    return np.asarray(value)[()] if isinstance(value, (int, float, complex)) else value


def _like(value, kind: np.dtype):
    arr = np.asarray(value)
    arr = arr.astype(np.result_type(arr.dtype, kind), copy=False)
    return arr[()] if arr.ndim == 0 else arr


def _fit_value(value, shape: tuple):
    """``value`` summed over the axes broadcasting added, or broadcast up, to ``shape``."""
    arr = np.asarray(value)
    if arr.shape == shape:
        return value
    lead = arr.ndim - len(shape)
    if lead < 0 or any(d < e for d, e in zip(arr.shape[lead:], shape)):
        arr = np.broadcast_to(arr, np.broadcast_shapes(arr.shape, shape))
        lead = arr.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and arr.shape[lead + i] != 1
    )
    if axes:
        arr = arr.sum(axis=axes).reshape(shape)
    return arr[()] if arr.ndim == 0 else arr


def _rule_values(node: Node, value, full: list, order: int) -> list:
    """The coefficients of ``node`` from its inputs' coefficient arrays ``full``."""
    op = node.op
    rule = taylor_rule_of(op)
    if rule in ARRAY_RULES:
        return rule(value, full, order)
    if rule is _jvp_each and op.jvp is LINEAR and not op.nondiff_inputs:
        out = []
        for k in range(1, order + 1):
            ts = [s[k] for s in full]
            if all(t is None for t in ts):
                out.append(None)
                continue
            args = [np.zeros_like(s[0]) if t is None else t for s, t in zip(full, ts)]
            out.append(op.impl(*args, **node.attrs))  # a linear op maps each coefficient
        return out
    program, names = _local_program(node, full, order)
    given = {}
    for s, row in zip(full, names):
        for c, name in zip(s, row):
            if name is not None:
                given[name] = c
    return [_numpy(y) for y in program(given, strict=False)]


_LOCAL: dict[tuple, tuple] = {}
_TAGS = itertools.count()
_LOCAL_LIMIT = 512


def _local_program(node: Node, full: list, order: int):
    """The compiled Taylor rule of ``node``'s op for its signature, with the variable names
    its inputs' values and coefficients go by (``None`` where a coefficient is zero or an
    input is a constant of the graph)."""
    pattern = tuple(tuple(c is not None for c in s[1:]) for s in full)
    inputs = tuple(
        ("const", id(i)) if i.kind == "const" else ("value", i.shape) for i in node.inputs
    )
    try:
        key = (node.op.name, tuple(sorted(node.attrs.items())), inputs, pattern, order)
        hash(key)
    except TypeError:
        key = None
    hit = _LOCAL.get(key) if key is not None else None
    if hit is not None:
        return hit[0], hit[1]
    tag = next(_TAGS)
    args, names, seeds = [], [], {}
    for i, (x, s) in enumerate(zip(node.inputs, full)):
        if x.kind == "const":
            args.append(x)
            names.append([None] * (order + 1))
            continue
        v = internal_variable(f"jet_local[{tag}].x{i}", x.shape)
        row = [v.name]
        terms = []
        for k, c in enumerate(s[1:], 1):
            if c is None:
                row.append(None)
                terms.append(None)
            else:
                t = internal_variable(f"jet_local[{tag}].x{i}_{k}", x.shape)
                row.append(t.name)
                terms.append(t)
        args.append(v)
        names.append(row)
        if any(t is not None for t in terms):
            seeds[v] = terms
    local = apply(node.op, *args, **node.attrs)
    outs = jet_graph([local], seeds, order)[0]
    program = compile(outs)
    if key is not None:
        if len(_LOCAL) >= _LOCAL_LIMIT:
            _LOCAL.clear()
        _LOCAL[key] = (program, names, node.inputs)  # the inputs keep the constants' ids valid
    return program, names


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"taylor mode: the order must be a positive integer, got {order!r}")
    return int(order)


def _scaled(values: list, factorial_scaled: bool, inverse: bool) -> list:
    if not factorial_scaled:
        return list(values)
    out = []
    for k, v in enumerate(values, 1):
        f = float(math.factorial(k))
        out.append(np.asarray(v) * f if inverse else np.asarray(v) / f)
    return out


def jet(fun, primals, series, factorial_scaled: bool = True) -> tuple[Any, list]:
    """Taylor mode: ``(f(x_0), [y_1, ..., y_K])`` for the input path given by ``series``.

    Args:
        fun: a Python function of arrays (called once on variable nodes), or an IR node.
        primals: a tuple of arrays, one per argument of ``fun``; for a node, a dict
            name -> value.
        series: one list of K arrays per primal (for a node, a dict name -> list; names
            left out have zero series).
        factorial_scaled: JAX's convention (the default): series terms are derivatives
            ``x^(k)(0)`` and so are the results; else normalized ``x^(k)(0)/k!``.

    Returns:
        ``(primal_out, series_out)``.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> y0, ys = jet(dk.sin(x), {"x": 0.0}, {"x": [1.0, 0.0, 0.0, 0.0]})
    >>> [round(float(v), 12) for v in ys]  # sin', sin'', sin''', sin'''' at 0
    [1.0, 0.0, -1.0, 0.0]
    """
    if isinstance(fun, Node):
        return _jet_node(fun, primals, series, factorial_scaled)
    if not callable(fun):
        raise TypeError(f"jet: expected a function or an IR node, got {type(fun).__name__}")
    from ..transforms import _Trace

    primals, series = tuple(primals), tuple(series)
    if len(primals) != len(series):
        raise ValueError(f"jet: {len(primals)} primals but {len(series)} series")
    trace = _Trace(fun, "jet", primals, tuple(range(len(primals))))
    named_series = {}
    for v, s in zip(trace.wrt, series):
        named_series[v.name] = s
    return _jet_node(trace.out, trace.at(primals), named_series, factorial_scaled)


def _jet_node(f: Node, primals: Mapping, series: Mapping, factorial_scaled: bool):
    if not isinstance(primals, Mapping) or not isinstance(series, Mapping):
        raise TypeError("jet: for an IR node, primals and series are dicts name -> value")
    lengths = {len(list(s)) for s in series.values()}
    if len(lengths) != 1:
        raise ValueError(f"jet: every series needs the same number of terms, got {lengths}")
    (order,) = lengths
    order = _check_order(order)
    shapes = {n.name: n.shape for n in topological_order([f]) if n.kind == "var"}
    terms_of = {}
    for name, s in series.items():
        if name not in shapes:
            if name in primals:
                continue  # a variable f does not use
            raise ValueError(f"jet: series given for {name!r}, which is not a variable of f")
        terms = _scaled([np.asarray(c) for c in s], factorial_scaled, inverse=False)
        for k, c in enumerate(terms, 1):
            if c.shape != shapes[name]:
                raise ValueError(
                    f"jet: series term {k} of {name!r} has shape {c.shape}, expected {shapes[name]}"
                )
        terms_of[name] = terms
    (y0,), (ys,) = jet_values([f], primals, terms_of, order)
    ys = _scaled(ys, factorial_scaled, inverse=True)
    kind = np.asarray(y0).dtype
    ys = [np.asarray(y).astype(np.result_type(kind, np.asarray(y).dtype), copy=False) for y in ys]
    return _plain(y0), [_plain(y) for y in ys]


def _plain(value):
    arr = np.asarray(value)
    return float(arr) if arr.shape == () and arr.dtype == np.float64 else arr

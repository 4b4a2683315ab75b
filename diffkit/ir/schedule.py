"""Schedules and interpreters: run a set of output nodes on given variable values.

:func:`compile` sorts the nodes the outputs depend on topologically, once, and
returns a :class:`Program` that can be run many times. Each run frees an
intermediate value right after its last use. Interpreters:

* numpy: float64 by default, float32 when every input is float32, complex when an
  input is complex (the complex step method); constants take the data's dtype.
* mpmath at ``precision`` significant digits, and SymPy, both on object arrays: an
  op's scalar rule is applied elementwise, structural ops (reshape, sum, matmul)
  reuse the numpy implementation.

The schedule visits the outputs in order of their depth (the longest path to them
from a leaf), each depth-first: a gradient program then finishes the gradient of the
last layer (and frees what only it reads) before it goes on to the layer before. An op
that frees at least as much as it allocates runs as soon as its inputs exist, so that
the running sum of a shared parameter's gradient keeps up with the backward pass.
Before running, a program can say how many bytes its values will hold at its peak
(:attr:`Program.peak_bytes`, :meth:`Program.memory`).

>>> import diffkit as dk
>>> x, y = dk.variables("x y")
>>> f = dk.compile([x * y, x + y])
>>> f(at={"x": 2.0, "y": 3.0})
[6.0, 5.0]
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import math
import operator
import threading
from collections import OrderedDict
from typing import Any, Iterable, Mapping

import numpy as np

from ..memory import CACHE_MIN, owned_memory
from ..parallel import parallel_kernels
from .node import Node, topological_order
from .op import STRUCTURAL, Unsupported

__all__ = [
    "compile",
    "evaluate",
    "topological_order",
    "Program",
    "graph_size",
    "EvaluationError",
    "UnsupportedBackendError",
    "MPMATH_LOCK",
]

#: held while mpmath runs at a working precision diffkit set (the mpmath interpreter, the
#: reference derivative): mpmath's precision belongs to the whole process
MPMATH_LOCK = threading.RLock()


class EvaluationError(ValueError):
    """Raised for values that do not fit the graph (missing, unknown, wrong shape).

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.evaluate(x * y, at={"x": 1.0})
    Traceback (most recent call last):
    ...
    diffkit.ir.schedule.EvaluationError: missing value for variable 'y' (shape ()) in at=
    """


class UnsupportedBackendError(ValueError):
    """An op has no rule for the requested interpreter (mpmath or SymPy)."""


@contextlib.contextmanager
def paused_gc():
    """Hold Python's cyclic garbage collector while a graph is built in one go, when the
    calling thread is the process's only Python thread: the collector would otherwise
    rescan every node built so far at each generation-2 pass, which makes the cost of
    building a large graph grow faster than its size (the gradient graph of a chain of
    10^5 nodes took about 1.4 times as long with the collector running). Graphs hold no
    reference cycles that this delays (nodes refer to their inputs). The collector's
    switch belongs to the whole process, so where other threads run (a notebook's
    kernel, a web server, a thread pool) it is left alone; so it is when the user has
    turned it off."""
    pause = threading.active_count() == 1 and gc.isenabled()
    if pause:
        gc.disable()
    try:
        yield
    finally:
        if pause:
            gc.enable()


def graph_size(outputs: Node | Iterable[Node]) -> int:
    """Number of distinct nodes (variables, constants and ops) in the DAG of ``outputs``.

    Args:
        outputs: a node or a list of nodes.

    Returns:
        int: the number of distinct nodes; a shared subexpression counts once.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.graph_size((x + y) * (x + y))  # x, y, x + y, the product
    4
    """
    if isinstance(outputs, Node):
        outputs = [outputs]
    return len(topological_order(outputs))


class Program:
    """A compiled schedule of ``outputs``; call it with ``at={name: value}``.

    Args:
        outputs: a node or a list of nodes.

    Attributes:
        variables: name -> variable node, for every variable the outputs depend on.
        order: the nodes in evaluation order.

    A program may run in several threads at once: each run keeps its values to itself,
    and what a program keeps between runs (its constants per dtype, its straight-line
    code) comes out the same whichever thread makes it first.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> program = dk.Program([x * y, x - y])
    >>> sorted(program.variables), program(at={"x": 2.0, "y": 3.0})
    (['x', 'y'], [6.0, -1.0])
    """

    def __init__(self, outputs: Node | Iterable[Node]):
        self.single = isinstance(outputs, Node)
        self.outputs = [outputs] if self.single else list(outputs)
        for out in self.outputs:
            if not isinstance(out, Node):
                raise TypeError(f"compile: outputs must be IR nodes, got {type(out).__name__}")
        self.order = schedule_order(self.outputs)
        index = {id(n): i for i, n in enumerate(self.order)}
        self.variables: dict[str, Node] = {}
        self._var_slots: list[tuple[int, Node]] = []
        self._const_slots: list[tuple[int, Node]] = []
        for i, node in enumerate(self.order):
            if node.kind == "var":
                other = self.variables.get(node.name)
                if other is not None:
                    raise EvaluationError(
                        f"two variables are named {node.name!r}, with shapes "
                        f"{other.shape} and {node.shape}"
                    )
                self.variables[node.name] = node
                self._var_slots.append((i, node))
            elif node.kind == "const":
                self._const_slots.append((i, node))
        self._complex_consts = any(n.value.dtype.kind == "c" for _, n in self._const_slots)
        self._out_slots = [index[id(o)] for o in self.outputs]
        last_use = {}
        for i, node in enumerate(self.order):
            for inp in node.inputs:
                last_use[index[id(inp)]] = i
        keep = set(self._out_slots)
        frees: dict[int, list[int]] = {}
        for slot, step in last_use.items():
            if slot not in keep:
                frees.setdefault(step, []).append(slot)
        self._steps = [
            (
                i,
                node.op,
                node.op.impl,
                tuple(index[id(x)] for x in node.inputs),
                node.attrs,
                tuple(frees.get(i, ())),
            )
            for i, node in enumerate(self.order)
            if node.kind == "op"
        ]
        self._const_cache: dict[Any, list] = {}
        self._plans: dict[np.dtype, MemoryPlan] = {}
        self._straight = None
        # a program with values of CACHE_MIN bytes or more (in float64) runs with numpy
        # allocating from diffkit's cache, so that repeated runs reuse their blocks
        large = any(math.prod(n.shape) * 8 >= CACHE_MIN for n in self.order)
        self._memory = owned_memory if large else contextlib.nullcontext
        # a program whose compiled loops do the heavy arithmetic gives them the cores, and
        # holds BLAS to one thread meanwhile (diffkit.parallel)
        threaded = any(step[1].threaded for step in self._steps)
        self._blas = parallel_kernels if threaded else contextlib.nullcontext

    def __len__(self) -> int:
        return len(self.order)

    @property
    def peak_bytes(self) -> int:
        """The most bytes the program's own values hold at once when it runs on float64
        inputs (:meth:`memory` for other dtypes, the timeline and the values live at the
        peak).

        >>> import diffkit as dk
        >>> x = dk.variable("x", (1000,))
        >>> dk.compile(dk.sum(dk.sin(x) * dk.cos(x))).peak_bytes  # sin, cos and their product
        24000
        """
        return self.memory().peak_bytes

    def memory(self, dtype: Any = np.float64) -> "MemoryPlan":
        """The program's memory when it runs in ``dtype``, from its schedule and shapes
        alone: the bytes live after each op, the peak, and the values live at it.

        Counted are the values the program computes (each op's output, from its
        allocation until the last use of it and of every view of it); not the inputs
        the caller passes, the constants the program keeps between runs, nor the
        scratch an op uses inside its own implementation. Whether an op's output is a
        view of an input (reshape, transpose) is found once per op and shapes by running
        it on zeros of those shapes.
        """
        dtype = np.dtype(dtype)
        plan = self._plans.get(dtype)
        if plan is None:
            plan = self._plans[dtype] = _memory_plan(self, dtype)
        return plan

    def __repr__(self) -> str:
        return f"Program({len(self.outputs)} outputs, {len(self.order)} nodes)"

    # -- input handling ---------------------------------------------------------
    def _inputs(self, at: Mapping[str, Any] | None, strict: bool) -> list[tuple[int, Any]]:
        at = {} if at is None else at
        if not isinstance(at, Mapping):
            raise EvaluationError(f"at= must be a mapping of variable names to values, got {at!r}")
        if strict:
            unknown = [k for k in at if k not in self.variables]
            if unknown:
                known = ", ".join(sorted(self.variables)) or "none"
                raise EvaluationError(
                    f"unknown variable {unknown[0]!r} in at=; the graph's variables are: {known}"
                )
        out = []
        for slot, var in self._var_slots:
            if var.name not in at:
                raise EvaluationError(
                    f"missing value for variable {var.name!r} (shape {var.shape}) in at="
                )
            out.append((slot, var, at[var.name]))
        return out

    @staticmethod
    def _check_shape(var: Node, shape: tuple) -> None:
        if tuple(shape) != var.shape:
            raise EvaluationError(
                f"variable {var.name!r} has shape {var.shape} but was given a value of "
                f"shape {tuple(shape)}"
            )

    def _working_dtype(self, arrays: list[np.ndarray], unused=()) -> np.dtype:
        """The dtype every value is computed in: that of the floating or complex inputs
        (the values given for names the graph does not use count too, so that a graph that
        folded to a constant still answers in the data's dtype). Integer and boolean inputs
        (labels, counters) do not widen it, as in PyTorch and JAX: float32 data with int64
        labels computes in float32; integers alone compute in float64."""
        dtypes = [a.dtype for a in arrays] + [d for d in unused if d.kind in "biufc"]
        floating = [d for d in dtypes if d.kind in "fc"]
        dt = np.result_type(*floating) if floating else np.dtype(np.float64)
        if self._complex_consts and dt.kind in "biuf":  # a complex constant (1j) makes it complex
            dt = np.result_type(dt if dt.kind == "f" else np.float64, np.complex64)
        if dt.kind in "biu":
            return np.dtype(np.float64)
        if dt.kind == "f" and dt.itemsize < 4:
            return np.dtype(np.float32)
        if dt.kind not in "fc":
            raise EvaluationError(f"cannot evaluate on values of dtype {dt}")
        return dt

    def _consts(self, key, convert) -> list:
        cached = self._const_cache.get(key)
        if cached is None:
            cached = [(slot, convert(node)) for slot, node in self._const_slots]
            self._const_cache[key] = cached
        return cached

    # -- running ----------------------------------------------------------------
    def __call__(
        self,
        at: Mapping[str, Any] | None = None,
        *,
        precision: int | None = None,
        strict: bool = False,
    ):
        """Run the program.

        Args:
            at: variable name -> value (scalar, array, or mpmath/SymPy number).
            precision: if given, evaluate with mpmath at this many significant digits.
            strict: reject names in ``at`` that the graph does not use (a check for
                typos; by default they are accepted, and their dtypes count).

        Returns:
            The value of the output (a list of values when compiled from a list).
        """
        if precision is not None:
            if not isinstance(precision, (int, np.integer)) or precision < 1:
                raise EvaluationError(
                    f"precision must be a positive number of digits, got {precision!r}"
                )
            return self._run_objects(at, strict, "mpmath", precision)
        given = self._inputs(at, strict)
        arrays = []
        for _, var, value in given:
            arr = np.asarray(value)
            if arr.dtype.kind not in "biufc":
                raise EvaluationError(
                    f"variable {var.name!r}: the value {value!r:.60} is not "
                    f"numeric (dtype {arr.dtype})"
                )
            self._check_shape(var, arr.shape)
            arrays.append(arr)
        unused = [
            np.asarray(v).dtype
            for k, v in (at or {}).items()
            if k not in self.variables
            and isinstance(v, (int, float, complex, np.ndarray, np.generic))
        ]
        dtype = self._working_dtype(arrays, unused)
        vals: list[Any] = [None] * len(self.order)
        for (slot, _, _), arr in zip(given, arrays):
            # 0-d values as numpy scalars, whose arithmetic is cheaper than 0-d arrays'
            vals[slot] = dtype.type(arr[()]) if arr.ndim == 0 else arr.astype(dtype, copy=False)
        for slot, value in self._consts(dtype, _const_value(dtype)):
            vals[slot] = value
        with np.errstate(all="ignore"), self._memory(), self._blas():
            if len(self._steps) <= STRAIGHT_LINE_LIMIT:
                if self._straight is None:
                    self._straight = straight_line(self._steps, self._out_slots)
                outs = self._straight(vals)
            else:
                for slot, _op, impl, ins, attrs, frees in self._steps:
                    vals[slot] = impl(*[vals[i] for i in ins], **attrs)
                    for f in frees:
                        vals[f] = None
                outs = [vals[s] for s in self._out_slots]
        outs = [_finish(np.asarray(v)) for v in outs]
        return outs[0] if self.single else outs

    def profile(self, at: Mapping[str, Any] | None = None, repeats: int = 5) -> "Profile":
        """Time every op of the program on ``at`` (the median of ``repeats`` runs per op);
        returns a :class:`~diffkit.ir.schedule.Profile`, whose ``str`` is a table by op,
        costliest first.

        >>> import diffkit as dk
        >>> x = dk.variable("x", (100, 100))
        >>> prof = dk.compile(dk.sum(dk.tanh(x @ x))).profile({"x": np.ones((100, 100))})
        >>> sorted(prof.by_op())
        ['matmul', 'sum', 'tanh']
        """
        import time

        if repeats < 1:
            raise ValueError(f"profile: repeats must be at least 1, got {repeats}")
        times = np.zeros((repeats, len(self._steps)))
        for r in range(repeats):
            given = self._inputs(at, False)
            vals: list[Any] = [None] * len(self.order)
            arrays = [np.asarray(v) for _, _, v in given]
            dtype = self._working_dtype(arrays)
            for (slot, _, _), arr in zip(given, arrays):
                vals[slot] = dtype.type(arr[()]) if arr.ndim == 0 else arr.astype(dtype, copy=False)
            for slot, value in self._consts(dtype, _const_value(dtype)):
                vals[slot] = value
            with np.errstate(all="ignore"), self._memory(), self._blas():
                for k, (slot, _op, impl, ins, attrs, frees) in enumerate(self._steps):
                    args = [vals[i] for i in ins]
                    start = time.perf_counter()
                    vals[slot] = impl(*args, **attrs)
                    times[r, k] = time.perf_counter() - start
                    for f in frees:
                        vals[f] = None
        median = np.median(times, axis=0)
        rows = [
            (op.name, self.order[slot].shape, float(t))
            for (slot, op, *_), t in zip(self._steps, median)
        ]
        return Profile(rows)

    def run_objects(self, at: Mapping[str, Any] | None, backend: str, precision: int | None = 50):
        """Run on object arrays of mpmath (``backend="mpmath"``, at ``precision`` digits, or
        at the current mpmath precision for ``None``) or of SymPy expressions."""
        return self._run_objects(at, False, backend, precision)

    def _run_objects(self, at, strict, backend, precision):
        import mpmath

        given = self._inputs(at, strict)
        import contextlib

        if backend == "mpmath":
            ctx = mpmath.workdps(precision) if precision is not None else contextlib.nullcontext()
            leaf = _mpmath_leaf

            def from_const(node):
                if isinstance(node.exact, str):
                    return np.asarray(getattr(mpmath, node.exact) + 0, dtype=object)
                if node.exact is not None:
                    return np.asarray(
                        mpmath.mpf(node.exact.numerator) / node.exact.denominator, dtype=object
                    )
                complex_const = node.value.dtype.kind == "c"
                return _objects(node.value, mpmath.mpc if complex_const else mpmath.mpf)
        elif backend == "sympy":
            import sympy

            ctx = contextlib.nullcontext()

            leaf = _sympy_leaf

            def from_const(node):
                if isinstance(node.exact, str):
                    return np.asarray({"pi": sympy.pi, "e": sympy.E}[node.exact], dtype=object)
                if node.exact is not None:
                    return np.asarray(
                        sympy.Rational(node.exact.numerator, node.exact.denominator), dtype=object
                    )
                return _objects(
                    node.value,
                    lambda v: (
                        sympy.Float(float(v.real)) + sympy.I * sympy.Float(float(v.imag))
                        if isinstance(v, complex)
                        else sympy.Float(float(v))
                    ),
                )
        else:
            raise ValueError(f"unknown backend {backend!r}; use 'mpmath' or 'sympy'")
        with MPMATH_LOCK if backend == "mpmath" else contextlib.nullcontext(), ctx:
            vals: list[Any] = [None] * len(self.order)
            for slot, var, value in given:
                arr = _objects(value, leaf)
                self._check_shape(var, arr.shape)
                vals[slot] = arr
            for slot, node in self._const_slots:
                vals[slot] = from_const(node)
            for slot, op, impl, ins, attrs, frees in self._steps:
                rule = getattr(op, backend)
                args = [vals[i] for i in ins]
                if rule is STRUCTURAL:
                    out = impl(*args, **attrs)
                elif isinstance(rule, Unsupported) or rule is None:
                    why = rule.reason if isinstance(rule, Unsupported) else "no rule"
                    raise UnsupportedBackendError(f"op {op.name!r} has no {backend} form: {why}")
                else:
                    scalar = _real_mpmath(rule, attrs) if backend == "mpmath" else None
                    out = np.frompyfunc(
                        scalar or (lambda *a, r=rule, kw=attrs: r(*a, **kw)), len(args), 1
                    )(*args)
                vals[slot] = np.asarray(out, dtype=object)
                for f in frees:
                    vals[f] = None
            outs = [vals[s] for s in self._out_slots]
            outs = [o[()] if o.shape == () else o for o in outs]
        return outs[0] if self.single else outs


class MemoryPlan:
    """A program's memory in one dtype (:meth:`Program.memory`).

    Attributes:
        dtype: the working dtype.
        timeline: bytes live right after each op runs (its output allocated, before the
            values it used last are freed), one entry per op in schedule order.
        peak_bytes: the largest entry of ``timeline``.
        peak_step: the index (into ``timeline``) of the first op at the peak.
        live: the nodes whose own buffers are live at the peak.
        returned: of ``timeline``, the bytes of the values the program returns (a
            gradient program's gradients), one entry per op.
        intermediate_timeline: ``timeline - returned``: the bytes of the values the run
            keeps only for itself (the forward values kept for the backward pass, the
            cotangents, recomputed values).
        intermediate_peak_bytes: its largest entry, at op ``intermediate_peak_step``.
        ops: the nodes of the ops in schedule order (``timeline[i]`` is after ``ops[i]``).
    """

    def __init__(self, dtype, timeline, peak_step, live, returned=None, ops=(), events=()):
        self.dtype = dtype
        self.timeline = np.asarray(timeline, dtype=np.int64)
        self.peak_step = peak_step
        self.peak_bytes = int(self.timeline[peak_step]) if len(self.timeline) else 0
        self.live = live
        self.returned = (
            np.zeros_like(self.timeline)
            if returned is None
            else np.asarray(returned, dtype=np.int64)
        )
        self.intermediate_timeline = self.timeline - self.returned
        self.intermediate_peak_step = (
            int(np.argmax(self.intermediate_timeline)) if len(self.timeline) else 0
        )
        self.intermediate_peak_bytes = (
            int(self.intermediate_timeline[self.intermediate_peak_step])
            if len(self.timeline)
            else 0
        )
        self.ops = list(ops)
        self._events = list(events)

    def timeline_of(self, predicate) -> np.ndarray:
        """Of ``timeline``, the bytes of the values whose nodes satisfy ``predicate(node)``
        (a view counts as the value that owns its buffer), one entry per op.

        >>> import diffkit as dk
        >>> x = dk.variable("x", (1000,))
        >>> plan = dk.compile(dk.sum(dk.sin(x) * dk.cos(x))).memory()
        >>> plan.timeline_of(lambda node: node.op.name == "sin").tolist()
        [8000, 8000, 8000, 0]
        """
        current, out = 0, []
        for owner, nbytes, freed in self._events:
            if owner is not None and predicate(owner):
                current += nbytes
            out.append(current)
            current -= sum(n for node, n in freed if predicate(node))
        return np.asarray(out, dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"MemoryPlan({self.peak_bytes} bytes at op {self.peak_step}, "
            f"{len(self.live)} values live, {self.dtype})"
        )

    def table(self) -> str:
        """The values live at the peak, largest first, one per line."""
        rows = sorted(self.live, key=lambda n: -math.prod(n.shape))
        lines = [f"{'op':24s} {'shape':>20s} {'bytes':>12s}"]
        for n in rows:
            nbytes = math.prod(n.shape) * self.dtype.itemsize
            lines.append(f"{n.op.name:24s} {str(n.shape):>20s} {nbytes:12d}")
        lines.append(f"{'total':24s} {'':>20s} {self.peak_bytes:12d}")
        return "\n".join(lines)


_ALIASES: dict = {}
_ALIASES_LOCK = threading.Lock()


def _alias_of(node: Node, dtype: np.dtype) -> int | None:
    """The index of the input whose buffer ``node``'s output shares (a view), or None
    when the op allocates its output; found by running the op once on zeros."""
    try:
        key = (
            node.op,
            tuple(i.shape for i in node.inputs),
            dtype,
            tuple(sorted(node.attrs.items())),
        )
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _ALIASES:
        return _ALIASES[key]
    args = [
        i.value.astype(dtype) if i.kind == "const" else np.zeros(i.shape, dtype)
        for i in node.inputs
    ]
    found = None
    try:
        with np.errstate(all="ignore"):
            out = node.op.impl(*args, **node.attrs)
        if isinstance(out, np.ndarray):
            for k, a in enumerate(args):
                if isinstance(a, np.ndarray) and a.size and np.shares_memory(out, a):
                    found = k
                    break
    except Exception:  # noqa: BLE001 - an op that refuses zeros is counted as allocating
        found = None
    if key is not None:
        with _ALIASES_LOCK:
            _ALIASES[key] = found
    return found


_MAY_VIEW: dict = {}


def _may_view(op) -> bool:
    """Whether ``op`` returns a view of an input on one of its test samples (ops that
    compute, such as matmul or conv2d, never do): a cheap filter before ``_alias_of``."""
    found = _MAY_VIEW.get(op)
    if found is None:
        found = not op.samples
        for sample in op.samples[:4]:
            try:
                args = [np.zeros(shape) for shape in sample.shapes]
                with np.errstate(all="ignore"):
                    out = op.impl(*args, **sample.attrs)
            except Exception:  # noqa: BLE001 - a sample that needs its own inputs
                found = True
                break
            if isinstance(out, np.ndarray) and any(
                a.size and np.shares_memory(out, a) for a in args
            ):
                found = True
                break
        with _ALIASES_LOCK:
            _MAY_VIEW[op] = found
    return found


def _memory_plan(program: Program, dtype: np.dtype) -> MemoryPlan:
    order = program.order
    buffer = [None] * len(order)  # slot -> the slot owning its buffer (None: not owned)
    refs: dict[int, int] = {}
    size = {}
    current, timeline, best, best_live = 0, [], -1, []
    outputs, returned, held, events = set(program._out_slots), [], 0, []
    live_slots: set[int] = set()
    for slot, _op, _impl, ins, _attrs, frees in program._steps:
        node = order[slot]
        alias = _alias_of(node, dtype) if node.inputs else None
        owner = buffer[ins[alias]] if alias is not None else slot
        buffer[slot] = owner
        if owner is not None:
            if owner == slot:
                size[slot] = math.prod(node.shape) * dtype.itemsize
                current += size[slot]
                live_slots.add(slot)
                if slot in outputs:
                    held += size[slot]
            refs[owner] = refs.get(owner, 0) + 1
        timeline.append(current)
        returned.append(held)
        if current > best:
            best, best_live = current, sorted(live_slots)
        freed = []
        for f in frees:
            owner_f = buffer[f]
            if owner_f is None:
                continue
            refs[owner_f] -= 1
            if refs[owner_f] == 0:
                current -= size[owner_f]
                live_slots.discard(owner_f)
                freed.append((order[owner_f], size[owner_f]))
        new = (order[slot], size[slot]) if owner == slot else (None, 0)
        events.append((*new, freed))
    peak_step = int(np.argmax(timeline)) if timeline else 0
    ops = [order[step[0]] for step in program._steps]
    live = [order[i] for i in best_live]
    return MemoryPlan(dtype, timeline, peak_step, live, returned, ops, events)


def _depth_first(outputs: list[Node]) -> list[Node]:
    order = topological_order(outputs)
    if len(outputs) < 2:
        return order
    depth: dict[int, int] = {}
    for node in order:
        depth[id(node)] = 1 + max((depth[id(i)] for i in node.inputs), default=-1)
    roots = sorted(range(len(outputs)), key=lambda k: depth[id(outputs[k])])
    if roots == list(range(len(outputs))):
        return order
    return topological_order([outputs[k] for k in roots])


def _running_sums(outputs: list[Node], consumers: dict) -> set[int]:
    """The nodes of the running sums that outputs are (reverse mode's gradient of a shared
    parameter: ``((c1 + c2) + c3) + ...``, one term per use): the additions, their terms,
    and the single-reader nodes (views) the terms read, a few levels up."""
    marked: set[int] = set()
    terms: list[Node] = []
    for out in outputs:
        stack = [out]
        while stack:
            node = stack.pop()
            if node.op is None or node.op.name != "add" or id(node) in marked:
                continue
            if any(i.shape != out.shape for i in node.inputs):
                continue
            marked.add(id(node))
            for inp in node.inputs:
                if inp.op is not None and inp.op.name == "add" and inp.shape == out.shape:
                    stack.append(inp)
                elif inp.kind == "op":
                    terms.append(inp)
    for term in terms:
        marked.add(id(term))
        node = term
        for _ in range(3):
            ins = [i for i in node.inputs if i.kind == "op" and len(consumers[id(i)]) == 1]
            if len(ins) != 1:
                break
            node = ins[0]
            marked.add(id(node))
    return marked


def schedule_order(outputs: list[Node]) -> list[Node]:
    """A topological order of what ``outputs`` need: the outputs by increasing depth
    (longest path from a leaf; ties in the given order), each visited depth-first; and an
    op runs earlier than that, as soon as its inputs exist, when it is the last reader of
    inputs at least as large as its output (it frees at least what it takes).

    The second rule matters to gradients of shared parameters: a recurrence's weight
    gradient sums one contribution per step, and each contribution (reading that step's
    values) is then made, and added to the running sum, while the backward pass is at
    its step, instead of after the whole backward pass, when every step's values would
    have had to wait for it.
    """
    base = _depth_first(outputs)
    if len(base) < 3:
        return base
    consumers: dict[int, list[Node]] = {id(n): [] for n in base}
    for node in base:
        for inp in {id(i): i for i in node.inputs}.values():
            consumers[id(inp)].append(node)
    remaining = {key: len(users) for key, users in consumers.items()}
    returned = {id(o) for o in outputs}
    summed = _running_sums(outputs, consumers)
    emitted: set[int] = set()
    order: list[Node] = []

    def viewed(node: Node, depth: int = 0) -> bool:
        # whether a view of node's buffer made by an op already run is still read later
        for user in consumers[id(node)]:
            if id(user) in emitted and user.kind == "op" and depth < 8 and _may_view(user.op):
                alias = _alias_of(user, np.dtype(np.float64))
                if alias is not None and user.inputs[alias] is node:
                    if id(user) in returned or remaining[id(user)] > 0 or viewed(user, depth + 1):
                        return True
        return False

    def freed_by(node: Node, skip: Node | None = None) -> int | None:
        # the elements node frees by reading its inputs last (None: not ready); the
        # inputs it reads last are freed only if no view of them lives on
        freed = 0
        for inp in {id(i): i for i in node.inputs}.values():
            if inp is skip:
                continue
            if id(inp) not in emitted and inp.kind == "op":
                return None
            if inp.kind == "op" and id(inp) not in returned and remaining[id(inp)] == 1:
                freed += math.prod(inp.shape)
        return freed

    def frees_enough(node: Node) -> bool:
        freed = freed_by(node)
        if freed is None:
            return False
        if id(node) in summed:
            return True  # a term of a running sum, added as soon as it exists
        need, extra = math.prod(node.shape), 0
        if freed < need:
            # a look ahead: node and its only reader together free enough (a weight's
            # gradient contribution, larger than the state it reads, and the running
            # sum it is added to)
            users = consumers[id(node)]
            if len(users) != 1 or id(node) in returned:
                return False
            extra = freed_by(users[0], skip=node)
            if extra is None:
                return False
            need = math.prod(users[0].shape)
        if freed + extra < need:
            return False
        freed = sum(
            math.prod(i.shape)
            for i in {id(i): i for i in node.inputs}.values()
            if i.kind == "op" and id(i) not in returned and remaining[id(i)] == 1 and not viewed(i)
        )
        return freed + extra >= need

    def emit(node: Node, stack: list) -> None:
        for inp in node.inputs:
            if inp.kind != "op" and id(inp) not in emitted:
                emitted.add(id(inp))
                order.append(inp)
        emitted.add(id(node))
        order.append(node)
        for inp in {id(i): i for i in node.inputs}.values():
            remaining[id(inp)] -= 1
            if remaining[id(inp)] == 1 and inp.kind == "op":
                stack.extend(u for u in consumers[id(inp)] if id(u) not in emitted)
        stack.extend(u for u in consumers[id(node)] if id(u) not in emitted)

    for node in base:
        if id(node) in emitted:
            continue
        stack: list[Node] = []
        emit(node, stack)
        while stack:
            cand = stack.pop()
            if id(cand) not in emitted and cand.kind == "op" and frees_enough(cand):
                emit(cand, stack)
    return order


def _real_mpmath(rule, attrs):
    """``rule`` as the mpmath interpreter applies it: on real arguments a result that is
    not real (``log(-1)``, ``sqrt(-1)``, a division by zero) is NaN, as in numpy's real
    arithmetic; complex arguments (given by the user) keep complex results."""
    import mpmath

    def apply(*args):
        try:
            out = rule(*args, **attrs)
        except ZeroDivisionError:
            return mpmath.nan
        if isinstance(out, mpmath.mpc) and not any(isinstance(a, mpmath.mpc) for a in args):
            return mpmath.nan
        return out

    return apply


def _mpmath_leaf(value):
    """An mpmath number from a value (numbers and mpmath numbers only)."""
    import mpmath
    from fractions import Fraction

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (mpmath.mpf, mpmath.mpc)):
        return value
    if isinstance(value, Fraction):
        return mpmath.mpf(value.numerator) / value.denominator
    if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
        raise EvaluationError(
            f"the mpmath interpreter takes numbers, got {type(value).__name__} {value!r:.40}"
        )
    return mpmath.mpc(value) if isinstance(value, complex) else mpmath.mpf(value)


def _sympy_leaf(value):
    """A SymPy number or expression from a value; never parses a string."""
    import sympy
    from fractions import Fraction

    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, Fraction, np.integer, np.floating)
    ):
        raise EvaluationError(
            f"the SymPy interpreter takes numbers and SymPy expressions, got "
            f"{type(value).__name__} {value!r:.40}"
        )
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    if isinstance(value, (int, np.integer)):
        return sympy.Integer(int(value))
    return sympy.Float(float(value))


def _objects(value, leaf) -> np.ndarray:
    arr = np.asarray(value, dtype=object)
    if arr.shape == ():
        return np.asarray(leaf(arr[()]), dtype=object)
    return np.frompyfunc(leaf, 1, 1)(arr).astype(object)


def _finish(arr: np.ndarray):
    if arr.shape != ():
        return arr
    if arr.dtype in (np.float64, np.complex128):
        return arr.item()
    return arr[()]


_PROGRAMS: "OrderedDict[tuple, tuple[Any, Program]]" = OrderedDict()
_PROGRAMS_LOCK = threading.Lock()
_CACHE_SIZE = 128


class Profile:
    """Per-op times of a program (:meth:`~diffkit.Program.profile`): ``rows`` holds
    ``(op name, output shape, seconds)`` in schedule order."""

    def __init__(self, rows: list):
        self.rows = rows
        self.total = float(sum(t for _, _, t in rows))

    def by_op(self) -> dict:
        """op name -> (count, seconds), costliest first."""
        out: dict[str, list] = {}
        for name, _, t in self.rows:
            entry = out.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += t
        return {k: tuple(v) for k, v in sorted(out.items(), key=lambda kv: -kv[1][1])}

    def __str__(self) -> str:
        lines = [f"{'op':24s} {'count':>5s} {'ms':>9s} {'share':>6s}"]
        for name, (count, t) in self.by_op().items():
            share = t / self.total if self.total else 0.0
            lines.append(f"{name:24s} {count:5d} {1e3 * t:9.3f} {100 * share:5.1f}%")
        lines.append(f"{'total':24s} {len(self.rows):5d} {1e3 * self.total:9.3f}")
        return "\n".join(lines)


# programs of up to this many ops run as generated straight-line Python; longer ones
# through the interpreter loop (compiling the source would cost more than it saves)
STRAIGHT_LINE_LIMIT = 20_000


def _const_value(dtype):
    """A constant in the working dtype: a numpy scalar for a 0-d one (numpy's scalar
    arithmetic is several times cheaper than that of 0-d arrays)."""

    def convert(node):
        value = node.value.astype(dtype)
        return value[()] if value.ndim == 0 else value

    return convert


# the operator forms of ufuncs: the same numpy arithmetic, but on numpy scalars they take
# numpy's scalar fast path (about 0.06 us) instead of the ufunc machinery (about 0.6 us)
_OPERATORS = {
    np.add: operator.add,
    np.subtract: operator.sub,
    np.multiply: operator.mul,
    np.true_divide: operator.truediv,
    np.negative: operator.neg,
}


def straight_line(steps, out_slots):
    """A Python function running ``steps`` as straight-line code: one assignment per op
    into a local variable, a ``del`` after a value's last use, no loop and no list.

    The source is generated from the schedule alone (slot numbers and op records bound
    as globals), never from names or text a user gave.
    """
    env: dict[str, Any] = {}
    read = {i for _, _, _, ins, _, _ in steps for i in ins} | set(out_slots)
    written = {slot for slot, *_ in steps}
    lines = ["def run(vals):"]
    for i in sorted(read - written):
        lines.append(f"    v{i} = vals[{i}]")
    for slot, _op, impl, ins, attrs, frees in steps:
        env[f"f{slot}"] = _OPERATORS.get(impl, impl) if not attrs else impl
        args = ", ".join(f"v{i}" for i in ins)
        if attrs:
            env[f"a{slot}"] = attrs
            args = f"{args}, **a{slot}" if args else f"**a{slot}"
        lines.append(f"    v{slot} = f{slot}({args})")
        if frees:
            lines.append("    del " + ", ".join(f"v{f}" for f in frees))
    lines.append("    return [" + ", ".join(f"v{s}" for s in out_slots) + "]")
    code = builtins.compile("\n".join(lines), "<diffkit program>", "exec")
    exec(code, env)  # noqa: S102 - source built from slot numbers only, see above
    return env["run"]


def compile(outputs: Node | Iterable[Node]) -> Program:
    """A reusable :class:`Program` for ``outputs`` (a node or a list of nodes).

    Programs are cached: compiling the same outputs again returns the same program.

    Args:
        outputs: a node or a list of nodes.

    Returns:
        Program: call it with ``at={name: value}``.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> program = dk.compile([x * y, x + y])
    >>> program(at={"x": 2.0, "y": 3.0}), dk.compile([x * y, x + y]) is program
    ([6.0, 5.0], True)
    """
    single = isinstance(outputs, Node)
    outs = (outputs,) if single else tuple(outputs)
    key = (single,) + tuple(id(o) for o in outs)
    with _PROGRAMS_LOCK:
        hit = _PROGRAMS.get(key)
        if hit is not None:
            _PROGRAMS.move_to_end(key)
            return hit[1]
    program = Program(outputs if single else list(outs))  # outside the lock: can be long
    with _PROGRAMS_LOCK:
        hit = _PROGRAMS.get(key)
        if hit is not None:  # another thread compiled the same outputs meanwhile
            _PROGRAMS.move_to_end(key)
            return hit[1]
        _PROGRAMS[key] = (outs, program)  # the strong reference keeps the ids valid
        if len(_PROGRAMS) > _CACHE_SIZE:
            _PROGRAMS.popitem(last=False)
    return program


def evaluate(
    outputs: Node | Iterable[Node],
    at: Mapping[str, Any] | None = None,
    *,
    precision: int | None = None,
    strict: bool = False,
):
    """Evaluate a node (or a list of nodes) at the variable values ``at``.

    Args:
        outputs: a node or a list of nodes.
        at: variable name -> value. float32 values give a float32 result, complex
            values a complex one.
        precision: evaluate with mpmath at this many significant digits instead.
        strict: refuse names in ``at`` that the graph does not use (a typo check).

    Returns:
        A number for a scalar output, an array otherwise; a list for a list.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> float(dk.evaluate(dk.exp(x), at={"x": 0.0}))
    1.0
    """
    return compile(outputs)(at, precision=precision, strict=strict)

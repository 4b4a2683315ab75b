"""What every differentiator shares: the call signatures, argument checking, cost records.

A differentiator answers ``gradient``, ``derivative``, ``jacobian`` and ``hessian``
on IR graphs, and records what the last call cost (function evaluations, graph
or expression sizes, time) in ``last_cost``. Methods are registered by name so
that studies and tests swap them with a string.

Every answer comes back in the working dtype of the point (:func:`dtype_of`: numpy's
promotion of its float and complex values, float64 for integers): float32 in, float32
out. At complex points the answer is the holomorphic (complex) derivative, as
``jax.hessian(f, holomorphic=True)`` gives it. A function through an op that is not
holomorphic there (``real``, ``abs``, ``maximum``, comparisons, ...) has none, and
:func:`check_holomorphic` refuses it in one line instead of answering with a real part;
the one exception is JAX's ``grad``/``jacrev`` convention for a real-valued ``f`` of
complex inputs (df/dx - i df/dy), which reverse mode follows for gradients and Jacobians.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..ir.node import Node
from ..ir.schedule import EvaluationError, compile, topological_order

__all__ = [
    "Differentiator",
    "Cost",
    "register_method",
    "get_method",
    "methods",
    "resolve_wrt",
    "check_at",
    "as_output",
    "flat_size",
    "dtype_of",
    "check_holomorphic",
    "real_where_real",
]


@dataclass
class Cost:
    """What a derivative cost: evaluations, sizes, seconds (fields a method does not use stay 0).

    ``passes`` counts the directional derivatives (JVPs or VJPs) computed, one per basis
    direction, as the course counts them; ``batches`` the evaluations they were pushed
    through together (several directions per evaluation).

    Args:
        method, function_evaluations, passes, batches: the fields (see above).
        graph_size, expression_size, seconds, extra: the fields (see above).

    >>> import diffkit as dk
    >>> v = dk.variable("v", (3,))
    >>> m = dk.get_method("reverse")
    >>> _ = m.jacobian(v ** 2, at={"v": [1.0, 2.0, 3.0]})
    >>> m.last_cost.method, m.last_cost.passes  # one backward pass per output entry
    ('reverse', 3)
    """

    method: str = ""
    function_evaluations: int = 0
    passes: int = 0
    batches: int = 0
    graph_size: int = 0
    expression_size: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


class Differentiator:
    """The common interface; subclasses implement ``_jacobian`` and may override the rest."""

    name = "?"
    #: JAX's convention for real-valued f of complex inputs (gradients and Jacobians)
    real_output_convention = False

    def __init__(self) -> None:
        self.last_cost = Cost(self.name)

    # -- the public calls ---------------------------------------------------------
    def gradient(self, f: Node, at: Mapping[str, Any], wrt=None) -> dict[str, Any]:
        """The gradient of the scalar ``f`` at ``at``: a dict name -> value.

        Args:
            f: a scalar IR node.
            at: variable name -> value.
            wrt: a name, a variable or a list of them; by default every variable of
                ``f`` and every other name in ``at`` (whose gradient is zero, as in JAX).
        """
        _require_node(f)
        if f.shape != ():
            raise ValueError(
                f"{self.name}: gradient needs a scalar output, but f has shape "
                f"{f.shape}; use jacobian() or vjp()"
            )
        names = resolve_wrt(f, wrt, at)
        check_holomorphic(f, at, self.name, self.real_output_convention)
        return self._timed(lambda: self._with_unused(f, at, names))

    def derivative(self, f: Node, wrt, at: Mapping[str, Any]):
        """d f / d wrt at ``at``: a number for scalar ``f`` and ``wrt``, else an array
        of shape ``f.shape + wrt.shape``."""
        _require_node(f)
        (name,) = resolve_wrt(f, [wrt], at)
        check_holomorphic(f, at, self.name, self.real_output_convention)
        return self._timed(lambda: self._with_unused(f, at, [name]))[name]

    def jacobian(self, f: Node, at: Mapping[str, Any], wrt=None):
        """The Jacobian of ``f``: an array of shape ``f.shape + v.shape`` for a single
        ``wrt`` given as a name or variable, else a dict name -> such an array."""
        _require_node(f)
        single = isinstance(wrt, (str, Node))
        names = resolve_wrt(f, wrt, at)
        check_holomorphic(f, at, self.name, self.real_output_convention)
        out = self._timed(lambda: self._with_unused(f, at, names))
        return out[names[0]] if single else out

    def hessian(self, f: Node, at: Mapping[str, Any], wrt=None):
        """The Hessian of the scalar ``f``: for a single ``wrt`` of shape s, an array of
        shape s + s; otherwise a square array over the flattened variables in the
        order of ``wrt`` (sorted names by default)."""
        _require_node(f)
        if f.shape != ():
            raise ValueError(
                f"{self.name}: hessian needs a scalar output, but f has shape {f.shape}"
            )
        single = isinstance(wrt, (str, Node))
        names = resolve_wrt(f, wrt, at)
        shapes = {**_at_shapes(at), **variable_shapes(f)}
        used = [n for n in names if n in variable_shapes(f)]
        check_holomorphic(f, at, self.name)
        dtype = dtype_of(at, f)

        def run():
            sizes = [flat_size(shapes[n]) for n in names]
            inner = self._hessian(f, at, used) if used else np.zeros((0, 0), dtype)
            # the working dtype (object for mpmath numbers); never a narrowing cast
            kind = inner.dtype if inner.dtype == object else np.result_type(inner.dtype, dtype)
            H = np.zeros((int(np.sum(sizes)), int(np.sum(sizes))), kind)
            index = np.concatenate(
                [
                    np.arange(s) + o
                    for n, s, o in zip(names, sizes, np.cumsum([0] + sizes))
                    if n in used
                ]
                or [np.zeros(0, int)]
            )
            H[np.ix_(index, index)] = inner
            return H

        H = self._timed(run)
        if H.dtype.kind == "c" and not any(np.iscomplexobj(v) for v in at.values()):
            # real inputs and a complex constant: a real-valued f has a real Hessian
            H = real_where_real(f, at, {"H": H}, at_real=True)["H"]
        if single:
            shape = shapes[names[0]]
            return as_output(H.reshape(shape + shape))
        return H

    def _with_unused(self, f: Node, at, names: list[str]) -> dict[str, Any]:
        """``_jacobian`` on the variables ``f`` uses; zeros for the names it does not."""
        shapes = variable_shapes(f)
        used = [n for n in names if n in shapes]
        out = self._jacobian(f, at, used) if used else {}
        out = real_where_real(f, at, out)
        if len(used) < len(names):
            check_at(f, at)
            dtype = dtype_of(at, f)
            for n in names:
                if n not in out:
                    out[n] = as_output(np.zeros(f.shape + np.shape(at[n]), dtype=dtype))
        return {n: out[n] for n in names}

    # -- for subclasses ------------------------------------------------------------
    def _jacobian(self, f: Node, at, names: list[str]) -> dict[str, Any]:
        raise NotImplementedError(f"{self.name} does not compute Jacobians")

    def _hessian(self, f: Node, at, names: list[str]) -> np.ndarray:
        raise NotImplementedError(f"{self.name} does not compute Hessians")

    def _timed(self, run: Callable[[], Any]):
        self.last_cost = Cost(self.name)
        start = time.perf_counter()
        out = run()
        self.last_cost.seconds = time.perf_counter() - start
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


_METHODS: dict[str, Callable[[], Differentiator]] = {}


def register_method(name: str, factory: Callable[[], Differentiator]) -> None:
    """Make ``factory()`` available as ``method=name`` in the top-level calls."""
    _METHODS[name] = factory


def methods() -> list[str]:
    """The names every top-level call accepts as ``method=``."""
    return list(_METHODS)


def get_method(method: str | Differentiator) -> Differentiator:
    """The differentiator for a method name (or the differentiator itself).

    Args:
        method: a method name (``"reverse"``, ``"forward"``, ``"central"``, ``"symbolic"``,
            ...) or a differentiator.

    Returns:
        ~diffkit.differentiators.common.Differentiator: the differentiator.

    Raises:
        ValueError: an unknown method name.

    >>> import diffkit as dk
    >>> type(dk.get_method("reverse")).__name__
    'ReverseMode'
    """
    if isinstance(method, Differentiator):
        return method
    factory = _METHODS.get(method)
    if factory is None:
        raise ValueError(f"unknown method {method!r}; known methods: {', '.join(_METHODS)}")
    return factory()


def _require_node(f) -> None:
    if not isinstance(f, Node):
        raise TypeError(
            f"expected an IR node (built from dk.variable, dk.parse, ...), got "
            f"{type(f).__name__} {f!r:.40}"
        )


def variable_shapes(f: Node | Iterable[Node]) -> dict[str, tuple]:
    """name -> shape of every variable ``f`` depends on."""
    outs = [f] if isinstance(f, Node) else list(f) if isinstance(f, (list, tuple)) else [f]
    for o in outs:
        _require_node(o)
    return {n.name: n.shape for n in topological_order(outs) if n.kind == "var"}


def _at_shapes(at) -> dict[str, tuple]:
    return {k: np.shape(v) for k, v in (at or {}).items()}


def dtype_of(at, f: Node | Iterable[Node] | None = None) -> np.dtype:
    """The working dtype of the values in ``at`` (float64 for none or integers); complex
    where the graph ``f`` holds a complex constant (``1j``)."""
    dtypes = [np.asarray(v).dtype for v in (at or {}).values()]
    dtypes = [d for d in dtypes if d.kind in "fc"]
    dt = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    if f is not None and dt.kind == "f":
        outs = [f] if isinstance(f, Node) else list(f)
        if any(n.kind == "const" and n.value.dtype.kind == "c" for n in topological_order(outs)):
            dt = np.result_type(dt, np.complex64)
    return dt


def real_where_real(f: Node, at, derivatives: dict, value=None, at_real=False) -> dict:
    """Derivatives of a real-valued ``f`` with respect to real inputs are real.

    A complex constant (``1j``) makes the values in between complex, and their
    derivatives with them; where ``f`` and the input are real, the derivative is the real
    part (the projection JAX's convention makes onto a real input), in the input's
    precision. A complex-valued ``f`` keeps its complex derivative. ``value`` is f at
    ``at`` where the caller has it; ``at_real`` says that every input is real."""
    complex_results = [
        n
        for n, d in derivatives.items()
        if np.iscomplexobj(d) and (at_real or (n in at and not np.iscomplexobj(at[n])))
    ]
    if not complex_results:
        return derivatives
    if value is None:
        value = compile([f])(at, strict=False)[0]
    if np.any(np.imag(value)):
        return derivatives
    out = dict(derivatives)
    for n in complex_results:
        kind = np.finfo(np.asarray(derivatives[n]).dtype).dtype  # complex64 -> float32
        real = np.real(np.asarray(derivatives[n])).astype(kind)
        out[n] = as_output(real)
    return out


def check_holomorphic(f: Node | Iterable[Node], at, who: str, real_output_ok: bool = False) -> None:
    """Raise ValueError where ``f`` passes a value that depends on a complex input through
    an op that is not holomorphic: such an ``f`` has no complex derivative there.

    Ops whose record says they are holomorphic pass (``stop_gradient``). With
    ``real_output_ok``, an ``f`` whose value at ``at`` has no imaginary part passes too
    (JAX's convention for real-valued functions of complex inputs, which reverse mode
    follows).
    """
    complex_names = {n for n, v in (at or {}).items() if np.iscomplexobj(v)}
    outs = [f] if isinstance(f, Node) else list(f)
    order = topological_order(outs)
    # reverse mode also meets the complex values that complex constants (1j) make
    constants = real_output_ok and any(
        n.kind == "const" and n.value.dtype.kind == "c" for n in order
    )
    if not complex_names and not constants:
        return
    reached: set[int] = set()
    for node in order:
        if node.kind == "var":
            if node.name in complex_names:
                reached.add(id(node))
            continue
        if node.kind == "const":
            if constants and node.value.dtype.kind == "c":
                reached.add(id(node))
            continue
        if not any(id(i) in reached for i in node.inputs):
            continue
        reached.add(id(node))
        if node.kind == "op" and not node.op.is_holomorphic:
            # real-valued: no imaginary part at the point (the evaluator may hold it complex)
            values = compile(outs)(at, strict=False) if real_output_ok else []
            if real_output_ok and not any(np.any(np.imag(v)) for v in values):
                return
            hint = (
                "; reverse mode differentiates it where f is real-valued (JAX's convention)"
                if real_output_ok or who == "forward"
                else ""
            )
            raise ValueError(
                f"{who}: op {node.op.name!r} is not holomorphic, so f has no complex "
                f"derivative at complex values of "
                f"{', '.join(sorted(complex_names)) or 'its complex constants'}{hint}"
            )


def resolve_wrt(f: Node | Iterable[Node], wrt, at: Mapping[str, Any] | None = None) -> list[str]:
    """``wrt`` (None, a name, a variable or a list) as a list of variable names.

    A name must be a variable of ``f`` or a name in ``at`` (a variable ``f`` does not
    use, whose derivative is zero). ``None`` means every variable of ``f`` and every
    name in ``at``, sorted.
    """
    shapes = variable_shapes(f)
    given = set(at or ())
    if wrt is None:
        return sorted(set(shapes) | given)
    if isinstance(wrt, (str, Node)):
        wrt = [wrt]
    names = []
    for w in wrt:
        name = w.name if isinstance(w, Node) and w.kind == "var" else w
        if not isinstance(name, str):
            raise TypeError(f"wrt must name variables, got {w!r}")
        if name not in shapes and name not in given:
            known = ", ".join(sorted(shapes)) or "none"
            raise ValueError(
                f"f does not depend on a variable named {name!r} and at= gives no value for "
                f"it; its variables are: {known}"
            )
        names.append(name)
    return names


def check_at(f: Node | Iterable[Node], at: Mapping[str, Any]) -> None:
    """Raise EvaluationError unless ``at`` gives every variable of ``f`` with its shape."""
    program = compile(f if isinstance(f, Node) else list(f))
    for _, var, value in program._inputs(at, strict=False):
        shape = np.shape(value)
        if tuple(shape) != var.shape:
            raise EvaluationError(
                f"variable {var.name!r} has shape {var.shape} but was given "
                f"a value of shape {tuple(shape)}"
            )


def flat_size(shape: tuple) -> int:
    return int(np.prod(shape, dtype=np.int64))


def as_output(value):
    """Plain floats for 0-d float64 results, arrays otherwise."""
    arr = np.asarray(value)
    if arr.shape == () and arr.dtype == np.float64:
        return float(arr)
    if arr.shape == () and arr.dtype == np.complex128:
        return complex(arr)
    return arr[()] if arr.shape == () else arr

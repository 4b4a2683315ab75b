"""JAX-style transforms of Python functions: ``grad``, ``value_and_grad``, ``jacfwd``,
``jacrev``, ``hessian``, ``jvp`` and ``vjp``.

A function is traced once per input shapes and dtypes: it is called on variable nodes
(numpy functions on nodes build IR, see ``diffkit.ops.numpy_api``), the derivative graph
is built and compiled, and the program is cached, so later calls with the same shapes
run the compiled program without calling the function again. Arguments and results are
numpy arrays or Python numbers, or tuples, lists and dicts of them (pytrees); float32
stays float32. A transformed function may be called from several threads at once: each
signature is traced once (the others wait for that trace), and the compiled programs
keep no state between runs.

>>> import numpy as np
>>> import diffkit as dk
>>> def loss(w, x):
...     return np.sum(np.tanh(x @ w) ** 2)
>>> g = dk.grad(loss)(np.ones(3), np.eye(3))
>>> g.round(4).tolist()  # 2 tanh(1) (1 - tanh(1)^2)
[0.6397, 0.6397, 0.6397]
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Sequence

import numpy as np

from .differentiators.common import check_holomorphic, get_method, real_where_real
from .differentiators.forward import jvp_graph
from .differentiators.reverse import vjp_graph
from .ir.node import Node, as_node, internal_variable, variable
from .ir.schedule import compile

__all__ = ["grad", "value_and_grad", "jacfwd", "jacrev", "hessian", "jvp", "vjp"]


# ---- pytrees -------------------------------------------------------------------------


def _flatten(tree, path: str) -> tuple[list, list, Any]:
    """(paths, leaves, structure) of a pytree of arrays and numbers."""
    if isinstance(tree, (tuple, list)):
        paths, leaves, subs = [], [], []
        for i, item in enumerate(tree):
            p, v, s = _flatten(item, f"{path}[{i}]")
            paths += p
            leaves += v
            subs.append(s)
        return paths, leaves, (type(tree), subs)
    if isinstance(tree, dict):
        paths, leaves, subs = [], [], []
        for key in sorted(tree):
            p, v, s = _flatten(tree[key], f"{path}[{key!r}]")
            paths += p
            leaves += v
            subs.append((key, s))
        return paths, leaves, (dict, subs)
    return [path], [tree], None


def _unflatten(structure, leaves: list):
    """The pytree of ``structure`` with ``leaves`` (consumed from the front)."""
    if structure is None:
        return leaves.pop(0)
    kind, subs = structure
    if kind is dict:
        return {key: _unflatten(s, leaves) for key, s in subs}
    return kind(_unflatten(s, leaves) for s in subs)


def _as_array(value, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"{where}: expected a number or a numeric array, got {type(value).__name__} "
            f"(dtype {arr.dtype})"
        )
    return arr if arr.dtype.kind in "fc" else arr.astype(np.float64)


def _result(value, like: np.ndarray):
    """A Python float for a 0-d float64 result from Python-number inputs, else an array."""
    arr = np.asarray(value)
    if arr.shape == () and not isinstance(like, np.ndarray):
        return float(arr) if arr.dtype == np.float64 else arr[()]
    return arr


# ---- tracing ---------------------------------------------------------------------------


class _Trace:
    """The graph of ``f`` on variables for one signature of its arguments."""

    def __init__(self, f: Callable, name: str, args: tuple, argnums: tuple[int, ...]):
        self.f, self.name, self.argnums = f, name, argnums
        self.structures, self.paths, self.arrays = [], [], []
        traced_args = []
        for i, arg in enumerate(args):
            paths, leaves, structure = _flatten(arg, f"arg{i}")
            arrays = [_as_array(v, f"{name}: argument {p}") for p, v in zip(paths, leaves)]
            nodes = [variable(p, a.shape) for p, a in zip(paths, arrays)]
            self.structures.append(structure)
            self.paths.append(paths)
            self.arrays.append(arrays)
            traced_args.append(_unflatten(structure, list(nodes)))
        out = f(*traced_args)
        if not isinstance(out, Node):
            try:
                out = as_node(out)
            except TypeError:
                raise TypeError(
                    f"{name}: the function must return one array (a diffkit node when traced), "
                    f"got {type(out).__name__}"
                ) from None
        self.out = out
        self.wrt = [
            variable(p, a.shape) for i in argnums for p, a in zip(self.paths[i], self.arrays[i])
        ]

    def at(self, args: tuple) -> dict:
        values: dict[str, Any] = {}
        for i, arg in enumerate(args):
            _, leaves, _ = _flatten(arg, f"arg{i}")
            values.update(zip(self.paths[i], leaves))
        return values

    def split(self, flat: list, template_args: tuple):
        """Per-argnum pytrees of ``flat`` (one array per differentiated leaf)."""
        flat = list(flat)
        out = []
        for i in self.argnums:
            leaves = [_result(flat.pop(0), leaf) for leaf in _flatten(template_args[i], "")[1]]
            out.append(_unflatten(self.structures[i], leaves))
        return out


def _signature(args: tuple, where: str) -> tuple:
    key = []
    for i, arg in enumerate(args):
        paths, leaves, structure = _flatten(arg, f"arg{i}")
        arrays = [_as_array(v, f"{where}: argument {p}") for p, v in zip(paths, leaves)]
        key.append((repr(structure), tuple((a.shape, a.dtype.str) for a in arrays)))
    return tuple(key)


def _argnums(argnums, nargs: int, name: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in nums:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise ValueError(f"{name}: argnums {argnums!r} is out of range for {nargs} arguments")
    return tuple(n % nargs for n in nums)


class _Transform:
    """A transform of ``f``: traces per signature and caches what ``build`` compiles."""

    def __init__(self, f: Callable, argnums, name: str, build: Callable):
        if not callable(f):
            raise TypeError(f"{name} takes a function, got {type(f).__name__}")
        self.f, self.argnums, self.name, self.build = f, argnums, name, build
        self.cache: dict = {}
        self.traces = 0
        self._lock = threading.RLock()  # one trace per signature, whatever the threads
        functools.update_wrapper(self, f)

    def __call__(self, *args):
        if not args:
            raise TypeError(f"{self.name}: the function needs at least one argument")
        argnums = _argnums(self.argnums, len(args), self.name)
        key = (argnums, _signature(args, self.name))
        entry = self.cache.get(key)
        if entry is None:
            with self._lock:
                entry = self.cache.get(key)
                if entry is None:
                    trace = _Trace(self.f, self.name, args, argnums)
                    self.traces += 1
                    entry = self.cache[key] = (trace, self.build(trace))
        trace, run = entry
        return run(trace, args)


def _single(values: list, argnums) -> Any:
    return values[0] if isinstance(argnums, int) else tuple(values)


# ---- the transforms ----------------------------------------------------------------------


def _scalar(trace: _Trace) -> None:
    if trace.out.shape != ():
        raise ValueError(
            f"{trace.name}: the function must return a scalar, got shape {trace.out.shape}; "
            f"use jacrev or jacfwd"
        )


def _grad_program(trace: _Trace):
    _scalar(trace)
    grads = vjp_graph([trace.out], [as_node(1.0)], trace.wrt)
    return compile([trace.out] + grads)


def value_and_grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """``f`` and its gradient with respect to argument(s) ``argnums``, in one pass.

    Returns:
        A function returning ``(value, gradient)``; the gradient has the structure of
        the argument (a tuple of them for a sequence of ``argnums``).

    Args:
        f: a Python function of arrays (numpy code) returning a scalar.
        argnums: the argument, or a sequence of them, to differentiate.

    >>> import diffkit as dk
    >>> dk.value_and_grad(lambda a: a ** 2)(3.0)  # (a^2, 2a)
    (9.0, 6.0)
    """

    def build(trace):
        program = _grad_program(trace)

        def run(trace, args):
            at = trace.at(args)
            # complex inputs: a holomorphic f, or a real-valued one (JAX's convention)
            check_holomorphic(trace.out, at, trace.name, real_output_ok=True)
            values = program(at)
            names = [v.name for v in trace.wrt]
            real = real_where_real(trace.out, at, dict(zip(names, values[1:])), values[0])
            grads = trace.split([real[n] for n in names], args)
            return _result(values[0], _first_array(args)), _single(grads, argnums)

        return run

    return _Transform(f, argnums, "value_and_grad", build)


def _first_array(args):
    leaves = [leaf for arg in args for leaf in _flatten(arg, "")[1]]
    return next((leaf for leaf in leaves if isinstance(leaf, np.ndarray)), 0.0)


def grad(f: Callable, argnums: int | Sequence[int] = 0) -> Callable:
    """The gradient of a scalar function ``f`` with respect to argument(s) ``argnums``.

    Args:
        f: a Python function of arrays (numpy code) returning a scalar.
        argnums: the argument, or a sequence of them, to differentiate.

    Returns:
        A function of ``f``'s arguments returning the gradient.

    >>> import diffkit as dk, numpy as np
    >>> dk.grad(lambda x: np.sum(np.sin(x) * x))(np.zeros(2)).tolist()
    [0.0, 0.0]
    >>> dk.grad(lambda x, y: x * y ** 2, argnums=(0, 1))(3.0, 2.0)
    (4.0, 12.0)
    """
    vg = value_and_grad(f, argnums)

    def build(trace):
        run = vg.build(trace)
        return lambda trace, args: run(trace, args)[1]

    return _Transform(f, argnums, "grad", build)


def _jacobian_transform(f, argnums, method: str, name: str, sparse: bool = False):
    def build(trace):
        differentiator = get_method(method)
        names = [v.name for v in trace.wrt]
        if sparse:  # pattern and colouring prepared once per signature
            from .differentiators.sparse import SparseJacobian

            prepared = SparseJacobian(trace.out, wrt=names, method=method)
            return lambda trace, args: prepared(trace.at(args))

        def run(trace, args):
            jac = differentiator.jacobian(trace.out, trace.at(args), wrt=names)
            return _single(trace.split([jac[n] for n in names], args), argnums)

        return run

    return _Transform(f, argnums, name, build)


def jacrev(f: Callable, argnums: int | Sequence[int] = 0, sparse: bool = False) -> Callable:
    """The Jacobian of ``f`` by reverse mode: shape ``out.shape + arg.shape``; with
    ``sparse=True`` a ``scipy.sparse`` matrix (out.size, entries of the differentiated
    arguments), one backward pass per row colour.

    Args:
        f: a Python function of arrays (numpy code).
        argnums: the argument, or a sequence of them, to differentiate.
        sparse: return a ``scipy.sparse`` matrix from a colouring.

    Returns:
        A function of ``f``'s arguments returning the Jacobian.

    >>> import diffkit as dk, numpy as np
    >>> dk.jacrev(lambda v: v ** 2)(np.array([1.0, 2.0])).tolist()  # diag(2v)
    [[2.0, 0.0], [0.0, 4.0]]
    """
    return _jacobian_transform(f, argnums, "reverse", "jacrev", sparse)


def jacfwd(f: Callable, argnums: int | Sequence[int] = 0, sparse: bool = False) -> Callable:
    """The Jacobian of ``f`` by forward mode: shape ``out.shape + arg.shape``; with
    ``sparse=True`` a ``scipy.sparse`` matrix (out.size, entries of the differentiated
    arguments), one forward pass per column colour.

    Args:
        f: a Python function of arrays (numpy code).
        argnums: the argument, or a sequence of them, to differentiate.
        sparse: return a ``scipy.sparse`` matrix from a colouring.

    Returns:
        A function of ``f``'s arguments returning the Jacobian.

    >>> import diffkit as dk, numpy as np
    >>> J = dk.jacfwd(lambda v: np.diff(v) ** 2, sparse=True)(np.arange(4.0))
    >>> J.shape, J.nnz
    ((3, 4), 6)
    """
    return _jacobian_transform(f, argnums, "forward", "jacfwd", sparse)


def hessian(f: Callable, argnums: int = 0, sparse: bool | str = False) -> Callable:
    """The Hessian of a scalar ``f`` in one array argument (forward over reverse): shape
    ``arg.shape + arg.shape``; with ``sparse=True``/``"star"``/``"acyclic"``, a
    ``scipy.sparse`` matrix from that colouring of the pattern, prepared once.

    >>> import diffkit as dk, numpy as np
    >>> dk.hessian(lambda x: np.sum(x ** 3))(np.array([1.0, 2.0])).tolist()
    [[6.0, 0.0], [0.0, 12.0]]
    """
    if not isinstance(argnums, int):
        raise TypeError("hessian: argnums must be one integer")
    from .differentiators.sparse import hessian_kind

    kind = hessian_kind(sparse)

    def build(trace):
        _scalar(trace)
        if len(trace.wrt) != 1:
            raise TypeError("hessian: the argument must be one array, not a pytree")
        (var,) = trace.wrt
        differentiator = get_method("reverse")
        if kind is not None:  # a scipy.sparse matrix; pattern and colouring prepared once
            from .differentiators.sparse import SparseHessian

            prepared = SparseHessian(trace.out, wrt=[var.name], kind=kind)
            return lambda trace, args: prepared(trace.at(args))

        def run(trace, args):
            H = differentiator.hessian(trace.out, trace.at(args), wrt=[var.name])
            if var.shape:
                return H.reshape(var.shape + var.shape)
            return _result(H[0, 0], _first_array(args))

        return run

    return _Transform(f, argnums, "hessian", build)


def jvp(f: Callable, primals: Sequence, tangents: Sequence):
    """Forward mode on a Python function: ``(f(*primals), J(primals) · tangents)``.

    >>> import diffkit as dk, numpy as np
    >>> dk.jvp(np.sin, (0.0,), (2.0,))
    (0.0, 2.0)
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    argnums = tuple(range(len(primals)))
    trace = _Trace(f, "jvp", primals, argnums)
    seeds = [internal_variable(f"tangent[{v.name}]", v.shape) for v in trace.wrt]
    out_tangent = jvp_graph([trace.out], dict(zip(trace.wrt, seeds)))[0]
    at = trace.at(primals)
    check_holomorphic(trace.out, at, "jvp")
    flat_tangents = [leaf for t in tangents for leaf in _flatten(t, "")[1]]
    for v, t in zip(trace.wrt, flat_tangents):
        if np.shape(t) != v.shape:
            raise ValueError(
                f"jvp: the tangent of {v.name} has shape {np.shape(t)}, its primal {v.shape}"
            )
    values = compile([trace.out, out_tangent])(
        {**at, **{s.name: t for s, t in zip(seeds, flat_tangents)}}
    )
    like = _first_array(primals)
    return _result(values[0], like), _result(values[1], like)


def vjp(f: Callable, *primals):
    """Reverse mode on a Python function: ``(f(*primals), vjp_fn)`` where
    ``vjp_fn(cotangent)`` returns one cotangent per primal.

    >>> import diffkit as dk, numpy as np
    >>> out, back = dk.vjp(lambda x: x * 3.0, np.ones(2))
    >>> back(np.array([1.0, 2.0]))[0].tolist()
    [3.0, 6.0]
    """
    argnums = tuple(range(len(primals)))
    trace = _Trace(f, "vjp", primals, argnums)
    seed = internal_variable("cotangent[vjp]", trace.out.shape)
    cts = vjp_graph([trace.out], [seed], trace.wrt)
    at = trace.at(primals)
    check_holomorphic(trace.out, at, "vjp", real_output_ok=True)
    like = _first_array(primals)
    out = _result(compile(trace.out)(at), like)
    program = compile(cts)

    def vjp_fn(cotangent):
        ct = np.asarray(cotangent)
        if ct.shape != trace.out.shape:
            raise ValueError(
                f"vjp: the cotangent has shape {ct.shape}, the output {trace.out.shape}"
            )
        values = program({**at, seed.name: ct})
        return tuple(trace.split(values, primals))

    return out, vjp_fn

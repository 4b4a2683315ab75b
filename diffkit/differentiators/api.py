"""The top-level calls: every differentiator by name, JVP/VJP, and ``check_grads``.

>>> import diffkit as dk
>>> x, y = dk.variables("x y")
>>> f = dk.exp(x) * dk.sin(y)
>>> g = dk.gradient(f, at={"x": 0.0, "y": 0.0}, method="forward")
>>> g["y"]
1.0
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..ir.node import Node, as_node, const, internal_variable, variable
from ..ir.schedule import compile
from .common import (
    as_output,
    check_at,
    check_holomorphic,
    get_method,
    methods as _first_order_methods,
    resolve_wrt,
    variable_shapes,
)
from .forward import jvp_graph
from .reverse import vjp_graph

__all__ = [
    "gradient",
    "derivative",
    "jacobian",
    "hessian",
    "jvp",
    "vjp",
    "check_grads",
    "methods",
    "DESCRIPTIONS",
]

#: what each method name computes, one line each (``dk.methods(describe=True)``)
DESCRIPTIONS = {
    "forward": "forward-mode AD: the JVP graph, one pass per input entry; order k nests k JVPs",
    "reverse": "reverse-mode AD: the VJP graph, one pass per output entry; order k nests k VJPs",
    "forward-difference": "one-sided difference (f(x+h) - f(x))/h; order k: the forward "
    "stencil of the k-th derivative, exact rational weights",
    "backward-difference": "one-sided difference (f(x) - f(x-h))/h; order k: the backward "
    "stencil of the k-th derivative, exact rational weights",
    "central": "central difference (f(x+h) - f(x-h))/2h; order k: the central stencil of the "
    "k-th derivative, exact rational weights",
    "five-point": "the five-point central stencil, fourth-order accurate (first derivatives)",
    "richardson": "central differences extrapolated to h = 0 (Richardson), with an error "
    "estimate; any order",
    "complex-step": "Im f(x + ih)/h for analytic f, free of cancellation (first derivatives; "
    "complex-circle for order k)",
    "symbolic": "SymPy differentiates the expression (k times) and evaluates it; expression "
    "sizes and time reported",
    "taylor": "Taylor mode: truncated Taylor series pushed through the program by each op's "
    "recurrence, O(k^2) work per op (jax.experimental.jet); any order",
    "forward-over-reverse": "one reverse pass, then nested forward mode over the gradient "
    "graph; any order",
    "complex-circle": "Cauchy's integral formula on a circle in the complex plane by FFT "
    "(Lyness-Moler; the radius chosen as numdifftools chooses it), analytic f, any order, "
    "with an error estimate",
}


def methods(order: int | None = None, describe: bool = False):
    """The method names.

    Args:
        order: ``None``: the names every top-level call (``gradient``, ``jacobian``,
            ``hessian``, ``derivative``) accepts; an integer k: the names
            ``derivative(f, wrt, at, method=..., order=k)`` accepts.
        describe: return a dict name -> one-line description instead of a list.

    >>> import diffkit as dk
    >>> "complex-circle" in dk.methods(order=3), "complex-step" in dk.methods(order=3)
    (True, False)
    >>> dk.methods(order=2, describe=True)["taylor"].split(":")[0]
    'Taylor mode'
    """
    names = list(_first_order_methods())
    if order is not None:
        from .higher import HIGHER_METHODS

        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"methods: the order must be a positive integer, got {order!r}")
        names = names if order == 1 else []
        names += [
            m for m in HIGHER_METHODS if m not in names and (order == 1 or m != "complex-step")
        ]
    return {n: DESCRIPTIONS.get(n, "") for n in names} if describe else names


def gradient(f: Node, at: Mapping[str, Any], method: str = "reverse", wrt=None) -> dict:
    """The gradient of the scalar ``f`` at ``at``, as a dict name -> value.

    Args:
        f: a scalar IR node.
        at: variable name -> value.
        method: ``"reverse"``, ``"forward"`` or any name in ``dk.methods()``.
        wrt: a name, a variable or a list of them (all variables by default).

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.gradient(x * y + dk.sin(x), at={"x": 0.0, "y": 3.0})  # (y + cos x, x)
    {'x': 4.0, 'y': 0.0}
    """
    return get_method(method).gradient(f, at, wrt=wrt)


def derivative(f: Node, wrt, at: Mapping[str, Any], method: str = "reverse", order: int = 1):
    """d f / d wrt: a number for scalar ``f`` and ``wrt``, else an array; with ``order=k``
    the k-th derivative for a scalar ``wrt`` by any method name, ``"taylor"`` and
    ``"complex-circle"`` among them (``diffkit.differentiators.higher``).

    Args:
        f: a node.
        wrt: a variable or its name.
        at: variable name -> value.
        method: a method name (``dk.methods()``).
        order: the order of the derivative (a scalar ``wrt`` for order > 1).

    Returns:
        float or numpy.ndarray: the derivative.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.derivative(x ** 3, "x", at={"x": 2.0})  # 3x^2
    12.0
    >>> dk.derivative(x ** 3, "x", at={"x": 2.0}, order=3)  # 6
    6.0
    """
    if order != 1 or method in ("taylor", "complex-circle", "forward-over-reverse"):
        from .higher import derivative as higher_derivative

        return higher_derivative(f, wrt, at, method=method, order=order)
    return get_method(method).derivative(f, wrt, at)


def jacobian(
    f: Node, at: Mapping[str, Any], method: str = "reverse", wrt=None, sparse: bool = False
):
    """The Jacobian of ``f`` (shape ``f.shape + v.shape``) for one variable, or a dict.

    With ``sparse=True`` the pattern is read from the graph, coloured, and the Jacobian
    evaluated with one direction per colour (``method`` ``"forward"``, ``"reverse"`` or
    ``"central"``): a ``scipy.sparse.csr_matrix`` of shape ``(f.size, v.size)`` for one
    variable, else a dict of them (``diffkit.differentiators.sparse``).

    Args:
        f: a node.
        at: variable name -> value.
        method: a method name (``dk.methods()``).
        wrt: a variable, a name, or a list of them (all by default).
        sparse: a ``scipy.sparse`` matrix from a colouring of the pattern.

    Returns:
        An array for one variable, else a dict name -> array.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> J = dk.jacobian(x[1:] * x[:-1], {"x": np.arange(4.0)}, wrt="x", sparse=True)
    >>> J.nnz, J.toarray()[1].tolist()
    (6, [0.0, 2.0, 1.0, 0.0])
    """
    if sparse:
        from .sparse import sparse_jacobian

        return _split_columns(f, at, wrt, lambda names: sparse_jacobian(f, at, method, names))
    return get_method(method).jacobian(f, at, wrt=wrt)


def _split_columns(f, at, wrt, compute):
    names = resolve_wrt(f, wrt, at)
    shapes = {**{k: np.shape(v) for k, v in at.items()}, **variable_shapes(f)}
    J = compute(names)
    if isinstance(wrt, (str, Node)):
        return J
    bounds = np.cumsum([0] + [int(np.prod(shapes[n], dtype=np.int64)) for n in names])
    J = J.tocsc()
    return {n: J[:, lo:hi].tocsr() for n, lo, hi in zip(names, bounds[:-1], bounds[1:])}


def hessian(
    f,
    at: Mapping[str, Any] | None = None,
    method: str = "reverse",
    wrt=None,
    sparse: bool | str = False,
):
    """The Hessian of the scalar node ``f`` at ``at``; by default forward-over-reverse
    (``dk.hessian`` also transforms Python functions). With ``sparse=True`` (or
    ``"star"``): forward over reverse on a star colouring of the pattern read from the
    graph, a ``scipy.sparse.csr_matrix`` over the flattened variables of ``wrt``; with
    ``sparse="acyclic"``, on an acyclic colouring (fewer colours, recovery by
    substitution)."""
    from .sparse import hessian_kind

    kind = hessian_kind(sparse)
    if kind is not None:
        from .sparse import sparse_hessian

        if method != "reverse":
            raise ValueError(
                f"hessian(sparse={sparse!r}) is forward over reverse (method='reverse'), "
                f"got {method!r}"
            )
        return sparse_hessian(f, at, wrt=wrt, kind=kind)
    return get_method(method).hessian(f, {} if at is None else at, wrt=wrt)


def jvp(f, at, tangents):
    """Forward mode: ``(f(at), J·tangents)`` (``dk.jvp`` also transforms Python functions).

    Args:
        f: a node or a list of nodes.
        at: variable name -> value.
        tangents: variable name -> tangent (same shape); missing variables get zero.
    """
    outs = [f] if isinstance(f, Node) else list(f)
    check_at(outs, at)
    shapes = variable_shapes(outs)
    for name in tangents:
        if name not in shapes and name not in at:
            raise ValueError(
                f"jvp: tangent given for {name!r}, which is neither a variable of f nor in at="
            )
    tvars = {
        variable(n, shapes[n]): internal_variable(f"tangent[{n}]", shapes[n])
        for n in tangents
        if n in shapes  # a variable f does not use contributes nothing
    }
    touts = jvp_graph(outs, tvars)
    seeds = {}
    for var, t in tvars.items():
        value = np.asarray(tangents[var.name])
        if value.shape != var.shape:
            raise ValueError(
                f"jvp: tangent of {var.name!r} has shape {value.shape}, expected {var.shape}"
            )
        seeds[t.name] = value
    values = compile(outs + touts)({**at, **seeds}, strict=False)
    primal, tangent = values[: len(outs)], values[len(outs) :]
    if isinstance(f, Node):
        return primal[0], tangent[0]
    return primal, tangent


def vjp(f, *args, **kwargs):
    """Reverse mode: ``(f(at), {name: Jᵀ·cotangent})`` for a node, called as
    ``vjp(f, at, cotangent, wrt=None)`` (``dk.vjp`` also transforms Python functions).

    Args:
        f: a node.
        at: variable name -> value.
        cotangent: an array of ``f``'s shape.
        wrt: the variables to return (all by default).
    """
    return _vjp_node(f, *args, **kwargs)


def _vjp_node(f: Node, at: Mapping[str, Any], cotangent, wrt=None):
    check_at(f, at)
    names = resolve_wrt(f, wrt, at)
    shapes = variable_shapes(f)
    ct = np.asarray(cotangent)
    if ct.shape != f.shape:
        raise ValueError(f"vjp: cotangent has shape {ct.shape}, f has shape {f.shape}")
    seed = internal_variable(f"cotangent[{id(f)}]", f.shape)
    cts = vjp_graph(
        [f], [seed], [variable(n, shapes[n] if n in shapes else np.shape(at[n])) for n in names]
    )
    values = compile([f] + cts)({**at, seed.name: ct}, strict=False)
    return values[0], {n: as_output(v) for n, v in zip(names, values[1:])}


def _directional(f: Node, u: dict, v: np.ndarray, shapes) -> Node:
    """The scalar graph <v, J_f(x) u> for constant directions u, v."""
    tan = jvp_graph([f], {variable(n, shapes[n]): const(u[n]) for n in u})[0]
    return (tan * const(v)).sum() if tan.shape else tan * const(v)


def check_grads(
    f: Node,
    at: Mapping[str, Any],
    order: int = 1,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    seed: int = 0,
) -> None:
    """Check forward and reverse mode against each other and against central differences.

    Along random directions u (inputs) and v (outputs) it checks the adjoint
    identity <v, J u> (forward) = <Jᵀ v, u> (reverse), and J u against the central
    difference (f(x + eps u) - f(x - eps u)) / (2 eps). With ``order=2`` it checks
    the directional derivative graph the same way, and so on.

    Raises:
        AssertionError: naming the check that failed and the numbers.

    Args:
        f: a node.
        at: variable name -> value.
        order: the highest order checked.
        eps: the step of the central differences.
        rtol, atol: the tolerances.
        seed: seeds the random directions.

    Raises:
        AssertionError: a check fails (the message names it).

    >>> import diffkit as dk
    >>> x = dk.variable("x", shape=(3,))
    >>> dk.check_grads(dk.sum(dk.tanh(x) ** 2), at={"x": [0.1, 0.2, 0.3]}, order=2)
    """
    check_at(f, at)
    shapes = variable_shapes(f)
    rng = np.random.default_rng(seed)
    # float64 at least (complex points stay complex: their derivative is the holomorphic one)
    at64 = {k: np.asarray(v) for k, v in at.items()}
    at64 = {k: v.astype(np.result_type(v, np.float64)) for k, v in at64.items()}
    check_holomorphic(f, at64, "check_grads")
    u = {n: rng.standard_normal(s) for n, s in shapes.items()}
    v = rng.standard_normal(f.shape)
    directional = _directional(f, u, v, shapes)
    fwd = np.asarray(compile(directional)(at64, strict=False)).item()
    _, cts = vjp(f, at64, v)
    rev = np.asarray(sum(np.sum(np.asarray(cts[n]) * u[n]) for n in shapes)).item()
    scale = max(1.0, abs(fwd), abs(rev))
    if not abs(fwd - rev) <= 1e-9 * scale:
        raise AssertionError(
            f"check_grads: forward <v, J u> = {fwd!r} but reverse <J^T v, u> = {rev!r}"
        )
    program = compile(f)
    plus = program({n: at64[n] + eps * u[n] for n in shapes})
    minus = program({n: at64[n] - eps * u[n] for n in shapes})
    fd = np.asarray(np.sum((np.asarray(plus) - np.asarray(minus)) / (2 * eps) * v)).item()
    if not abs(fd - fwd) <= atol + rtol * max(abs(fd), abs(fwd)):
        raise AssertionError(
            f"check_grads: central difference {fd!r} disagrees with "
            f"automatic differentiation {fwd!r} (order {order})"
        )
    if order > 1:
        inner = variable_shapes(directional)
        if inner:  # a directional derivative that depends on no variable is constant
            check_grads(
                as_node(directional),
                {n: at64[n] for n in inner},
                order - 1,
                eps=eps,
                rtol=rtol,
                atol=atol,
                seed=seed + 1,
            )

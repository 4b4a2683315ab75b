"""The top-level calls that take a graph, a Python function or an expression string.

``dk.hessian``, ``dk.jvp`` and ``dk.vjp`` differentiate an IR node at a point (the
differentiators' calls) or transform a Python function as JAX does (:mod:`diffkit.
transforms`); ``dk.compare`` takes a node or an expression for :func:`dk.parse`. The
dispatch lives here, above both, so that the differentiators never import the front
doors.

>>> import diffkit as dk, numpy as np
>>> x = dk.variable("x")
>>> dk.hessian(x ** 3, at={"x": 2.0}).tolist()
[[12.0]]
>>> dk.hessian(lambda v: np.sum(v ** 3))(np.array([2.0])).tolist()
[[12.0]]
"""

from __future__ import annotations

from typing import Any, Mapping

from . import transforms
from .differentiators import api
from .differentiators.compare import compare as _compare
from .ir.node import Node
from .parse import parse

__all__ = ["hessian", "jvp", "vjp", "compare"]


def _is_function(f) -> bool:
    return callable(f) and not isinstance(f, Node)


def hessian(
    f,
    at: Mapping[str, Any] | None = None,
    method: str = "reverse",
    wrt=None,
    sparse: bool | str = False,
):
    """The Hessian of the scalar ``f``; by default forward-over-reverse.

    ``f`` is a node (then ``at`` is the point), or a Python function: ``dk.hessian(f)`` is
    then the JAX-style transform (its second argument ``argnums``). ``sparse=True`` gives a
    ``scipy.sparse`` matrix from a star colouring of the pattern read from the graph;
    ``sparse="acyclic"`` uses an acyclic colouring (fewer colours, recovery by
    substitution).

    Args:
        f: a scalar node (or a Python function: then the JAX-style transform).
        at: variable name -> value.
        method: ``"reverse"`` (forward over reverse) or another method name.
        wrt: the variables (all by default).
        sparse: ``True`` or ``"star"``: a ``scipy.sparse`` matrix from a star colouring;
            ``"acyclic"``: from an acyclic colouring.

    Raises:
        ValueError: ``sparse`` is not one of those, or is combined with another method.

    Returns:
        The Hessian (an array over the variables in order), or a function for a Python ``f``.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.hessian(x * x * y, at={"x": 1.0, "y": 2.0}).tolist()  # [[2y, 2x], [2x, 0]]
    [[4.0, 2.0], [2.0, 0.0]]
    """
    if _is_function(f):
        if at is None:
            return transforms.hessian(f, sparse=sparse)
        return transforms.hessian(f, at, sparse=sparse)  # type: ignore[arg-type]
    return api.hessian(f, at, method=method, wrt=wrt, sparse=sparse)


def jvp(f, at, tangents):
    """Forward mode: ``(f(at), J·tangents)``.

    Args:
        f: a node or a list of nodes; or a Python function, with ``at`` the tuple of its
            primals and ``tangents`` a tuple of tangents, as ``jax.jvp``.
        at: variable name -> value.
        tangents: variable name -> tangent (same shape); missing variables get zero.

    Returns:
        ``(value, tangent)``.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.jvp(x * y, {"x": 2.0, "y": 3.0}, {"x": 1.0})  # (xy, y dx)
    (6.0, 3.0)
    """
    if _is_function(f):
        return transforms.jvp(f, at, tangents)
    return api.jvp(f, at, tangents)


def vjp(f, *args, **kwargs):
    """Reverse mode: ``(f(at), {name: Jᵀ·cotangent})`` for a node, called as
    ``vjp(f, at, cotangent, wrt=None)``; for a Python function, ``vjp(f, *primals)``
    returns ``(out, vjp_fn)`` as ``jax.vjp``.

    Args:
        f: a node (or a Python function).
        *args: ``at`` (name -> value) and the cotangent (of ``f``'s shape); for a Python
            function, its primals.
        **kwargs: ``wrt``: the variables (all by default).

    Returns:
        ``(value, {name: cotangent})``, or ``(out, vjp_fn)`` for a Python function.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> dk.vjp(x * y, {"x": 2.0, "y": 3.0}, 1.0)  # (xy, {x: y, y: x})
    (6.0, {'x': 3.0, 'y': 2.0})
    """
    if _is_function(f):
        return transforms.vjp(f, *args)
    return api.vjp(f, *args, **kwargs)


def compare(f, at, wrt=None, methods=None, digits: int = 50) -> list[dict]:
    """Every method's derivative of ``f`` (a node or an expression string) side by side,
    against a truth of ``digits`` digits: :func:`diffkit.differentiators.compare.compare`."""
    if isinstance(f, str):
        f = parse(f)
    return _compare(f, at, wrt=wrt, methods=methods, digits=digits)


compare.__doc__ = _compare.__doc__

"""Checking gradients in tests: hand-written backward passes, black boxes, traced functions.

* :func:`numerical_gradient` differentiates any numpy callable by finite differences
  (every scheme of ``dk.FiniteDifference``), with an error estimate where the scheme
  has one.
* :func:`check_gradient` compares a hand-written gradient with reverse mode (when the
  function traces) or with Richardson extrapolation (when it does not), and fails with
  an ``AssertionError`` naming the argument, the worst entry, both values and the
  tolerance.
* :func:`check_grads` checks forward and reverse mode of a traceable function against
  each other and against central differences, as ``jax.test_util.check_grads``.

All three work inside plain pytest tests; no plugin is needed.

>>> import numpy as np
>>> from diffkit.testing import check_gradient
>>> def f(x):
...     return np.sum(x ** 3)
>>> check_gradient(f, lambda x: 3 * x ** 2, np.array([1.0, 2.0]))
>>> check_gradient(f, lambda x: 2 * x ** 2, np.array([1.0, 2.0]))
Traceback (most recent call last):
...
AssertionError: check_gradient: the gradient of argument 0 is wrong at index (1,): ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .differentiators.api import check_grads as _check_graph_grads
from .differentiators.finite import SCHEMES, FiniteDifference
from .ir.node import Node, variable
from .transforms import grad

__all__ = ["numerical_gradient", "NumericalGradientInfo", "check_gradient", "check_grads"]


@dataclass
class NumericalGradientInfo:
    """What a numerical gradient cost and how far it may be off.

    Attributes:
        method: the scheme.
        evaluations: calls of the function.
        error_estimate: Richardson's largest estimated absolute error (``None`` for the
            schemes that have no estimate).
    """

    method: str
    evaluations: int
    error_estimate: float | None


def numerical_gradient(
    f: Callable,
    *args,
    argnums: int = 0,
    method: str = "central",
    step: float | None = None,
    full_output: bool = False,
):
    """The derivative of any numpy callable ``f`` in argument ``argnums`` by finite
    differences: an array of shape ``f(*args).shape + args[argnums].shape``.

    Args:
        f: a function of numpy arrays (a black box: it is only evaluated).
        args: its arguments.
        argnums: which argument to differentiate.
        method: a scheme of ``dk.FiniteDifference`` (``"central"``, ``"richardson"``,
            ``"complex-step"``, ...).
        step: the step (each scheme's rule by default).
        full_output: also return a :class:`NumericalGradientInfo`, as numdifftools does.

    >>> import numpy as np
    >>> g = numerical_gradient(lambda x: np.sum(np.sin(x)), np.zeros(2), method="richardson")
    >>> np.round(g, 12).tolist()
    [1.0, 1.0]
    """
    if not callable(f):
        raise TypeError(f"numerical_gradient takes a function, got {type(f).__name__}")
    if method not in SCHEMES:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(SCHEMES)}")
    if not -len(args) <= argnums < len(args):
        raise ValueError(f"argnums {argnums} is out of range for {len(args)} arguments")
    args = list(args)
    x = np.asarray(args[argnums])
    if x.dtype.kind not in "biuf":
        raise TypeError(f"argument {argnums}: expected a numeric array, got dtype {x.dtype}")
    x = x.astype(np.float64) if x.dtype.kind != "f" else x
    diff = FiniteDifference(method, step=step)
    eps = float(np.finfo(x.dtype).eps)
    flat = x.ravel()

    def at_point(values):
        call = list(args)
        call[argnums] = values.reshape(x.shape) if x.shape else values.reshape(())[()]
        return np.asarray(f(*call))

    base = at_point(flat.copy())
    columns = []
    with np.errstate(all="ignore"):
        for k in range(flat.size):

            def evaluate(t, k=k):
                values = flat.astype(np.result_type(flat.dtype, np.asarray(t).dtype), copy=True)
                values[k] = t
                return at_point(values)

            columns.append(np.ravel(diff._partial(evaluate, flat[k], eps, lambda: base)))
    jac = np.array(columns).T.reshape(base.shape + x.shape) if columns else np.zeros(base.shape)
    result = jac if jac.shape else float(jac)
    if not full_output:
        return result
    estimate = diff.last_cost.extra.get("error_estimate")
    info = NumericalGradientInfo(method, diff.last_cost.function_evaluations + 1, estimate)
    return result, info


def _traceable(f: Callable, args: Sequence, argnums: int) -> Callable | None:
    """``dk.grad(f)`` when ``f`` can be traced on nodes, else ``None``."""
    probe = list(args)
    probe[argnums] = variable("probe", np.shape(args[argnums]))
    try:
        out = f(*probe)
    except Exception:  # any failure means f is not traceable: it is treated as a black box
        return None
    return grad(f, argnums) if isinstance(out, Node) and out.shape == () else None


def check_gradient(
    f: Callable,
    grad_f: Callable,
    *args,
    argnums: int | Sequence[int] = 0,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    method: str | None = None,
) -> None:
    """Assert that ``grad_f(*args)`` is the gradient of the scalar ``f`` at ``args``.

    The reference is reverse mode when ``f`` is built from numpy functions diffkit can
    trace, Richardson extrapolation when it is a black box (or ``method``, a finite
    difference scheme, when given).

    Args:
        f: the scalar function.
        grad_f: the hand-written gradient: returns one array for one ``argnums``, a tuple
            for several.
        args: the point.
        argnums: the argument(s) ``grad_f`` differentiates.
        rtol, atol: the tolerance, ``atol + rtol * |reference|`` per entry.
        method: force a finite-difference scheme as the reference.

    Raises:
        AssertionError: naming the argument, the worst entry's index, both values and the
            tolerance.
    """
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    got = grad_f(*args)
    got = (got,) if isinstance(argnums, int) else tuple(got)
    if len(got) != len(nums):
        raise AssertionError(
            f"check_gradient: grad_f returned {len(got)} gradients for argnums {argnums}"
        )
    for num, hand in zip(nums, got):
        traced = None if method is not None else _traceable(f, args, num)
        if traced is not None:
            reference, name = traced(*args), "reverse mode"
        else:
            scheme = method or "richardson"
            reference, name = numerical_gradient(f, *args, argnums=num, method=scheme), scheme
        hand = np.asarray(hand, dtype=np.float64)
        reference = np.asarray(reference, dtype=np.float64)
        if hand.shape != reference.shape:
            raise AssertionError(
                f"check_gradient: the gradient of argument {num} has shape {hand.shape}, "
                f"expected {reference.shape} (the argument's shape)"
            )
        excess = np.abs(hand - reference) - (atol + rtol * np.abs(reference))
        if hand.size and (np.nanmax(excess) > 0 or np.isnan(excess).any()):
            worst = np.unravel_index(
                int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess))), hand.shape
            )
            tolerance = atol + rtol * abs(reference[worst])
            raise AssertionError(
                f"check_gradient: the gradient of argument {num} is wrong at index "
                f"{tuple(int(i) for i in worst)}: hand-written {hand[worst]:.10g}, {name} "
                f"{reference[worst]:.10g} (|difference| {abs(hand[worst] - reference[worst]):.3g}"
                f" > tolerance {tolerance:.3g})"
            )


def check_grads(
    f: Callable,
    args: Sequence,
    order: int = 1,
    modes: Sequence[str] = ("fwd", "rev"),
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> None:
    """Check a traceable function as ``jax.test_util.check_grads`` does: forward and
    reverse mode against each other (the adjoint identity) and against central
    differences along random directions, up to ``order``. Both modes are always checked
    (each checks the other); ``modes`` is accepted for JAX's signature.

    >>> import numpy as np
    >>> check_grads(lambda x, y: np.sum(np.tanh(x) * y), (np.ones(3), np.arange(3.0)), order=2)
    """
    if not set(modes) <= {"fwd", "rev"}:
        raise ValueError(f"check_grads: modes must be 'fwd' and/or 'rev', got {modes!r}")
    args = tuple(args)
    nodes, at = [], {}
    for i, a in enumerate(args):
        arr = np.asarray(a, dtype=np.float64)
        nodes.append(variable(f"arg{i}", arr.shape))
        at[f"arg{i}"] = arr
    out = f(*nodes)
    if not isinstance(out, Node):
        raise TypeError("check_grads: f must be built from numpy functions diffkit can trace")
    scalar = (
        out
        if out.shape == ()
        else (out * np.random.default_rng(0).standard_normal(out.shape)).sum()
    )
    _check_graph_grads(scalar, at, order=order, eps=eps, rtol=rtol, atol=atol)

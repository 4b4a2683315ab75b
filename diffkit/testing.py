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
from typing import Callable, Sequence, cast

import numpy as np

from .differentiators.api import check_grads as _check_graph_grads
from .differentiators.common import get_method
from .differentiators.finite import SCHEMES, FiniteDifference
from .ir.node import Node, variable

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
        full_output: also return a :class:`~diffkit.testing.NumericalGradientInfo`, as
            numdifftools does.

    >>> import numpy as np
    >>> g = numerical_gradient(lambda x: np.sum(np.sin(x)), np.zeros(2), method="richardson")
    >>> np.round(g, 12).tolist()
    [1.0, 1.0]
    """
    if not callable(f):
        raise TypeError(f"numerical_gradient takes a function, got {type(f).__name__}")
    if method not in SCHEMES:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(SCHEMES)}")
    _check_argnum(argnums, len(args), "numerical_gradient", "one int")
    arglist = list(args)
    x = np.asarray(arglist[argnums])
    if x.dtype.kind == "c":
        raise TypeError(
            f"numerical_gradient: argument {argnums} is complex; a black box cannot be shown "
            f"holomorphic, so build f from diffkit ops and use dk.jacobian at the complex point"
        )
    if x.dtype.kind not in "biuf":
        raise TypeError(
            f"numerical_gradient: argument {argnums}: expected a real numeric array, got "
            f"{type(args[argnums]).__name__} of dtype {x.dtype}"
        )
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


def _check_argnum(num, nargs: int, who: str, kind: str = "an int or a tuple of ints") -> None:
    """A usable argument index (an int, not a bool, in range), or a one-line error."""
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)):
        raise TypeError(f"{who}: argnums must be {kind}, got {num!r}")
    if not -nargs <= num < nargs:
        raise ValueError(f"{who}: argnums {num} is out of range for {nargs} arguments")


def _describe(value) -> str:
    """What came back from a function, in a few words: its type and shape."""
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_describe(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{type(value).__name__} of shape {tuple(shape)}"
    return type(value).__name__


def _gradient_array(hand, num: int, argnums, expected: tuple, nargs: int) -> np.ndarray:
    """``grad_f``'s gradient of argument ``num`` as an array, or a one-line error naming
    ``argnums`` and what came back (several gradients for one argnum, no array)."""
    try:
        arr = np.asarray(hand)
    except (TypeError, ValueError):  # ragged: arrays of different shapes
        arr = np.asarray(None)
    fits = arr.dtype.kind in "biufc" and arr.shape == expected
    if not fits and isinstance(hand, tuple) and 1 < len(hand) <= nargs:
        raise TypeError(
            f"check_gradient: grad_f returned {_describe(hand)} for argnums={argnums!r}, "
            f"which asks for one gradient; to check {len(hand)} gradients pass "
            f"argnums={tuple(range(len(hand)))!r}"
        )
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"check_gradient: grad_f returned {_describe(hand)} as the gradient of argument "
            f"{num} (argnums={argnums!r}); expected an array of shape {expected}"
        )
    return arr


def _traceable(f: Callable, args: Sequence, argnums: int) -> Callable | None:
    """The reverse-mode gradient in argument ``argnums`` (a function of ``args``) when ``f``
    traces on a variable there, else ``None``. Real and complex points alike (a complex
    one gives the holomorphic derivative)."""
    probe = list(args)
    probe[argnums] = variable("probe", np.shape(args[argnums]))
    try:
        out = f(*probe)
    except Exception:  # any failure means f is not traceable: it is treated as a black box
        return None
    if not (isinstance(out, Node) and out.shape == ()):
        return None

    def reference(*values):
        return get_method("reverse").gradient(out, {"probe": values[argnums]}, wrt="probe")["probe"]

    return reference


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
    if not callable(f) or not callable(grad_f):
        bad = f if not callable(f) else grad_f
        which = "f" if not callable(f) else "grad_f"
        raise TypeError(f"check_gradient: {which} must be a function, got {_describe(bad)}")
    if method is not None and method not in SCHEMES:
        raise ValueError(f"check_gradient: unknown method {method!r}; known: {', '.join(SCHEMES)}")
    single = isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool)
    try:
        nums: tuple[int, ...] = (
            (cast(int, argnums),) if single else tuple(cast(Sequence[int], argnums))
        )
    except TypeError:
        raise TypeError(
            f"check_gradient: argnums must be an int or a tuple of ints, got {argnums!r}"
        ) from None
    if not nums:
        raise ValueError("check_gradient: argnums is empty; name the argument(s) to check")
    for num in nums:
        _check_argnum(num, len(args), "check_gradient")
    value = f(*args)
    if np.ndim(value) != 0:
        raise TypeError(
            f"check_gradient: f must return a scalar, got {_describe(value)}; check each "
            f"output's gradient with a scalar function of it"
        )
    got = grad_f(*args)
    if single:
        got = (got,)
    elif not isinstance(got, (tuple, list)) or len(got) != len(nums):
        raise TypeError(
            f"check_gradient: grad_f returned {_describe(got)} for argnums={argnums!r}, "
            f"which asks for a tuple of {len(nums)} gradients"
        )
    for num, hand in zip(nums, got):
        expected = np.shape(args[num])
        hand = _gradient_array(hand, num, argnums, expected, len(args))
        traced = None if method is not None else _traceable(f, args, num)
        if traced is not None:
            reference, name = traced(*args), "reverse mode"
        else:
            scheme = method or "richardson"
            reference, name = numerical_gradient(f, *args, argnums=num, method=scheme), scheme
        reference = np.asarray(reference)
        # compared in float64 at least, complex where either is complex
        wide = np.result_type(hand, reference, np.float64)
        hand, reference = hand.astype(wide), reference.astype(wide)
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
        arr = np.asarray(a)
        if arr.dtype.kind not in "biufc":
            raise TypeError(
                f"check_grads: argument {i} must be a number or a numeric array, got {_describe(a)}"
            )
        arr = arr.astype(np.result_type(arr, np.float64))  # complex stays complex
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

"""The truth a comparison is measured against: the derivative to 50 digits with mpmath.

The graph is evaluated by the mpmath interpreter (each op's mpmath rule) and
differentiated numerically by ``mpmath.diff`` at 15 digits more than asked, so the
result shares no code path with the float64 implementations or with diffkit's
derivative rules. Where the function is not a real number, the derivative is not
finite, or the one-sided derivatives differ (a kink or a jump), there is no truth,
and :class:`NoReference` says which; a time budget bounds the computation, in any thread.
mpmath's working precision belongs to the whole process: a reference derivative holds
:data:`~diffkit.ir.schedule.MPMATH_LOCK` while it runs (so do mpmath evaluations), so that
two threads do not change it under each other, and puts the precision back when it ends.

>>> import diffkit as dk
>>> x = dk.variable("x")
>>> print(dk.reference_derivative(dk.sin(x), "x", at={"x": 0.0}, digits=20))
1.0
>>> dk.reference_derivative(dk.relu(x), "x", at={"x": 0.0})
Traceback (most recent call last):
...
diffkit.differentiators.reference.NoReference: the derivative in x does not exist at x = 0: ...
"""

from __future__ import annotations

import time

import mpmath

from ..ir.node import Node
from ..ir.schedule import MPMATH_LOCK, compile
from ..limits import BudgetExceeded, check_budget, time_limit
from .common import check_at, variable_shapes

__all__ = ["reference_derivative", "NoReference", "MAX_DIGITS"]

#: the most digits a reference derivative may be asked for
MAX_DIGITS = 1000


class NoReference(ValueError):
    """There is no reference derivative at the point (undefined, not finite, a kink), or it
    could not be computed within its time budget.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.reference_derivative(dk.abs(x), "x", at={"x": 0.0})
    Traceback (most recent call last):
    ...
    diffkit.differentiators.reference.NoReference: the derivative in x does not exist at x = 0: ...
    """


def _real(value) -> bool:
    return isinstance(value, mpmath.mpf) and mpmath.isfinite(value)


def check_digits(digits) -> int:
    """``digits`` as an int in [1, MAX_DIGITS], or a ValueError naming it."""
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
        raise ValueError(f"digits must be an integer from 1 to {MAX_DIGITS}, got {digits!r}")
    return digits


def reference_derivative(f: Node, wrt, at, digits: int = 50, time_budget: float | None = 5.0):
    """d f / d wrt at ``at`` to ``digits`` significant digits, for a scalar graph.

    Args:
        f: a scalar graph of scalar variables.
        wrt: the variable (a name or node).
        at: the point.
        digits: significant digits wanted (1 to ``MAX_DIGITS``).
        time_budget: seconds allowed (``None``: no limit).

    Returns:
        An ``mpmath.mpf``.

    Raises:
        NoReference: where f or its derivative is undefined at the point, or the time
            budget ran out.

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> dk.reference_derivative(dk.sin(x), "x", at={"x": 0.0}, digits=20)  # cos 0
    mpf('1.0')
    """
    digits = check_digits(digits)
    name = wrt.name if isinstance(wrt, Node) else wrt
    shapes = variable_shapes(f)
    if f.shape != () or any(s != () for s in shapes.values()):
        raise ValueError("reference_derivative needs a scalar graph of scalar variables")
    if name not in shapes:
        raise ValueError(f"f does not depend on a variable named {name!r}")
    check_at(f, at)
    program = compile(f)
    point = ", ".join(f"{k} = {float(at[k]):.17g}" for k in sorted(shapes))
    what = f"the {digits}-digit reference derivative"
    start = time.monotonic()
    check_budget(time_budget, what)
    try:
        if not MPMATH_LOCK.acquire(timeout=-1 if time_budget is None else time_budget):
            raise BudgetExceeded(f"{what} took longer than its budget of {time_budget:g} s")
        try:
            precision = mpmath.mp.prec
            try:
                left = time_budget and max(time_budget - (time.monotonic() - start), 1e-3)
                with time_limit(left, what):
                    central = _derivative(program, shapes, name, at, digits, point)
            finally:
                mpmath.mp.prec = precision
        finally:
            MPMATH_LOCK.release()
    except BudgetExceeded as err:
        raise NoReference(str(err)) from None
    except (ZeroDivisionError, OverflowError, ValueError) as err:
        if isinstance(err, NoReference):
            raise
        raise NoReference(f"f cannot be evaluated with mpmath at {point}: {err}") from None
    with MPMATH_LOCK, mpmath.workdps(digits):
        return +central


def _derivative(program, shapes: dict, name: str, at, digits: int, point: str):
    """The central derivative at ``digits + 15`` digits, checked (see the module)."""
    with mpmath.workdps(digits + 15):
        base = {
            k: at[k] if isinstance(at[k], mpmath.mpf) else mpmath.mpf(float(at[k])) for k in shapes
        }

        def g(t):
            return program.run_objects({**base, name: t}, "mpmath", precision=None)

        value = g(base[name])
        if not _real(value):
            raise NoReference(f"f is not a finite real number at {point} (it is {value})")
        with mpmath.workdps(digits + 30):
            value_finer = g(base[name])
        if not _real(value_finer) or abs(value_finer - value) > mpmath.mpf(10) ** (
            -(digits // 2)
        ) * max(1, abs(value)):
            raise NoReference(
                f"f cannot be computed reliably at {point}: its value changes with the "
                f"working precision ({mpmath.nstr(value, 6)} at {digits + 15} digits, "
                f"{mpmath.nstr(value_finer, 6)} at {digits + 30}), as where a constant "
                f"that is 0 divides (1/sin(pi))"
            )
        central = mpmath.diff(g, base[name])
        with mpmath.workdps(digits + 30):
            finer = mpmath.diff(g, base[name])
        if not (_real(central) and _real(finer)) or abs(finer - central) > mpmath.mpf(10) ** (
            -(digits // 2)
        ) * max(1, abs(central)):
            raise NoReference(
                f"the derivative in {name} is not finite at {point} (numerical "
                f"differentiation does not converge: {mpmath.nstr(central, 6)} at "
                f"{digits + 15} digits, {mpmath.nstr(finer, 6)} at {digits + 30})"
            )
        left = mpmath.diff(g, base[name], direction=-1)
        right = mpmath.diff(g, base[name], direction=1)
        if not (_real(left) and _real(right)) or abs(left - right) > mpmath.mpf(10) ** (
            -(digits // 2)
        ) * max(1, abs(central)):
            shown = [mpmath.nstr(v, 6) for v in (left, right)]
            raise NoReference(
                f"the derivative in {name} does not exist at {point}: the one-sided "
                f"derivatives are {shown[0]} (left) and {shown[1]} (right)"
            )
    return central

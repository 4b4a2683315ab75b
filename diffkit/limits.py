"""Time budgets for computations that can run away: SymPy's differentiation and
simplification, and the high-precision reference derivative.

:func:`time_limit` interrupts the computation with :class:`BudgetExceeded` once its
budget is spent. It uses a real-time timer signal, which Python delivers only to the
main thread of a Unix process; elsewhere (other threads, Windows) it runs the
computation unbounded, and the size limits of the callers still apply.
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["BudgetExceeded", "time_limit"]


class BudgetExceeded(RuntimeError):
    """A computation took longer than its time budget."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Run the block for at most ``seconds`` (``None``: no limit), else raise
    :class:`BudgetExceeded` naming ``what``.

    >>> import time
    >>> try:
    ...     with time_limit(0.05, "a nap"):
    ...         time.sleep(1)
    ... except BudgetExceeded as err:
    ...     print(err)
    a nap took longer than its budget of 0.05 s
    """
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    previous_timer = signal.getitimer(signal.ITIMER_REAL)
    if previous_timer[0] > 0:  # someone else's timer is running: do not disturb it
        yield
        return

    def expire(signum, frame):
        raise BudgetExceeded(f"{what} took longer than its budget of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

"""Time budgets for computations that can run away: SymPy's differentiation and
simplification, and the high-precision reference derivative.

:func:`time_limit` interrupts the block with :class:`BudgetExceeded` once its budget is
spent, in whichever thread runs it. A watchdog thread asks the interpreter to raise an
exception in the budgeted thread (CPython's ``PyThreadState_SetAsyncExc``), as Ctrl-C
interrupts the main thread but without a signal: no signal handler or timer of the
process changes, and any number of threads can hold budgets at once, nested or not.

The exception arrives between two bytecodes of the budgeted thread, so a single long call
into compiled code (one huge integer multiplication, a ``time.sleep``) finishes first.
An exception raised inside a callback the interpreter runs on its own (a weak
reference's, such as the cleanup of the node cache's weak dictionary, a finalizer, a
``__del__``) would be printed as "Exception ignored" and lost, so while the budgeted
thread's frames show one, the watchdog waits (:data:`CALLBACK_WAIT`) and looks again; a
callback entered in the microseconds between that look and the delivery still loses it.
While it travels it is not an ``Exception`` (a ``except Exception`` inside SymPy or mpmath
does not swallow it), and should something swallow it anyway, it is raised again every
:data:`RESEND` seconds until the block ends; it becomes :class:`BudgetExceeded` as it
leaves the block. Where the interpreter has no such call (not CPython), the block runs
unbounded and the callers' size limits still apply.
"""

from __future__ import annotations

import _weakrefset
import contextlib
import ctypes
import math
import numbers
import os
import sys
import threading
import weakref

__all__ = ["BudgetExceeded", "time_limit", "check_budget", "RESEND"]

#: seconds between two deliveries of an expired budget's exception, if the first is lost
RESEND = 1.0


class BudgetExceeded(RuntimeError):
    """A computation took longer than its time budget."""


class _Expired(BaseException):
    """Raised inside a budgeted block when its time is up (each budget has a subclass of
    its own, so that nested budgets tell theirs apart); never leaves :func:`time_limit`."""


def _async_raiser():
    """(raise, withdraw) in another thread, by thread id; None where there are none."""
    api = getattr(ctypes, "pythonapi", None)
    if api is None or not hasattr(api, "PyThreadState_SetAsyncExc"):
        return None
    send = api["PyThreadState_SetAsyncExc"]  # [] gives a fresh function object each time
    send.argtypes, send.restype = (ctypes.c_ulong, ctypes.py_object), ctypes.c_int
    withdraw = api["PyThreadState_SetAsyncExc"]
    withdraw.argtypes, withdraw.restype = (ctypes.c_ulong, ctypes.c_void_p), ctypes.c_int
    return send, withdraw


_RAISE = _async_raiser()

#: seconds the watchdog waits while the budgeted thread runs a callback
CALLBACK_WAIT = 0.0005
# code run as a callback of the interpreter (a weak reference's, a finalizer's, the
# cleanup of weak containers): an exception raised inside one is printed as "Exception
# ignored" and lost, not propagated to the budgeted block
_CALLBACK_FILES = frozenset(
    os.path.normcase(os.path.abspath(m.__file__)) for m in (weakref, _weakrefset)
)
_CALLBACK_NAMES = frozenset({"__del__", "_remove_dead_weakref"})


def _in_callback(thread: int) -> bool:
    """Whether the thread ``thread`` is inside a weak-reference callback, a finalizer or
    a ``__del__`` method, as far as its Python frames tell (``sys._current_frames``)."""
    frame = sys._current_frames().get(thread)
    depth = 0
    while frame is not None and depth < 64:
        code = frame.f_code
        if code.co_name in _CALLBACK_NAMES or _normalized(code.co_filename) in _CALLBACK_FILES:
            return True
        frame = frame.f_back
        depth += 1
    return False


def _normalized(filename: str) -> str:
    return os.path.normcase(os.path.abspath(filename)) if filename[:1] != "<" else filename


class _Budget:
    """The watchdog of one budgeted block, run by a daemon thread."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.thread = threading.get_ident()
        self.expired = type("_Expired", (_Expired,), {})
        self.lock = threading.Lock()  # orders "send" against "the block ended"
        self.ended = threading.Event()
        self.done = False
        self.sent = False
        self.watcher: threading.Thread | None = None

    def start(self) -> None:
        self.watcher = threading.Thread(target=self._watch, name="diffkit-time-limit")
        self.watcher.daemon = True
        self.watcher.start()

    def _watch(self) -> None:
        wait = self.seconds
        while not self.ended.wait(wait):
            if _in_callback(self.thread):
                wait = CALLBACK_WAIT  # an exception raised there would be lost: wait it out
                continue
            with self.lock:
                if self.done:
                    return
                _RAISE[0](self.thread, self.expired)
                self.sent = True
            wait = RESEND

    def finish(self) -> None:
        """The block has ended: stop the watchdog, and withdraw an exception it sent that
        has not been raised yet."""
        with self.lock:
            self.done = True
            sent = self.sent
        if sent:
            _flush(self.thread)
        self.ended.set()
        if self.watcher is not None:
            self.watcher.join()  # it returns at once: no thread outlives its budget


class _Flush(BaseException):
    """Takes the place of a budget's exception that may still be on its way, and is
    raised and caught at once by :func:`_flush`."""


def _checkpoint() -> None:
    """A Python call: the interpreter looks for pending asynchronous exceptions here."""


def _flush(thread: int) -> None:
    """Withdraw an asynchronous exception that may be pending for ``thread`` (the
    calling thread), leaving the interpreter as it was before any was sent.

    Withdrawing by sending ``NULL`` leaves CPython 3.11 with its "something is
    pending" flag set and nothing to deliver: every later function call of the process
    then takes the slow path, and under a trace function (coverage, a debugger) the
    thread spins at the entry of the next function it calls. So the pending exception is
    instead replaced by :class:`_Flush` and delivered here, which clears the flag. An
    exception raised meanwhile by something else (a signal handler's
    ``KeyboardInterrupt``) is raised again once the flush has landed.
    """
    other: BaseException | None = None
    send, withdraw = _RAISE  # type: ignore[misc]
    try:
        for _ in range(64):
            try:
                send(thread, _Flush)
                for _ in range(8):
                    _checkpoint()
            except _Flush:
                return
            except BaseException as err:  # delivered before the flush: keep it for later
                other = other or err
        withdraw(thread, None)  # never delivered: withdraw it the plain way
    finally:
        if other is not None:
            raise other


def check_budget(seconds, what: str) -> None:
    """A ValueError naming ``what`` unless ``seconds`` is a positive number or None."""
    if seconds is None:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not seconds > 0:
        raise ValueError(
            f"{what}: a time budget must be a positive number of seconds or None, got {seconds!r}"
        )


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str):
    """Run the block for at most ``seconds`` (``None``: no limit), else raise
    :class:`BudgetExceeded` naming ``what``; in any thread.

    >>> try:
    ...     with time_limit(0.05, "a busy loop"):
    ...         while True:
    ...             pass
    ... except BudgetExceeded as err:
    ...     print(err)
    a busy loop took longer than its budget of 0.05 s
    """
    check_budget(seconds, what)
    if seconds is None or _RAISE is None or math.isinf(seconds):
        yield
        return
    budget = _Budget(float(seconds))
    try:
        budget.start()
        yield
    except budget.expired:
        raise BudgetExceeded(f"{what} took longer than its budget of {seconds:g} s") from None
    finally:
        _finish(budget)


def _finish(budget: _Budget) -> None:
    """``budget.finish()``, even if an expired budget's exception lands while it runs (the
    block is over by then: that exception has nothing left to interrupt)."""
    while True:
        try:
            budget.finish()
            return
        except _Expired:
            continue

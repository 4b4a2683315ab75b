"""Time budgets never deliver their interrupt into a callback the interpreter runs on its
own (a ``__del__``, a weak reference's callback), where it would be printed as
"Exception ignored" and lost."""

from __future__ import annotations

import sys
import threading
import time
import weakref

import pytest

from diffkit import limits
from diffkit.limits import BudgetExceeded, time_limit


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # bytecodes all along, so an interrupt could land here
        pass


def test_the_watchdog_sees_callback_frames():
    inside, release = threading.Event(), threading.Event()
    assert limits._in_callback(threading.get_ident()) is False

    class Dying:
        def __del__(self):
            inside.set()
            release.wait(5)

    t = threading.Thread(target=lambda: Dying())
    t.start()
    assert inside.wait(5)
    assert limits._in_callback(t.ident) is True
    release.set()
    t.join(5)
    # the node cache's weak dictionary drops its entries by a callback from weakref.py
    assert limits._normalized(weakref.__file__) in limits._CALLBACK_FILES


def test_an_expired_budget_waits_for_a_running_del(monkeypatch):
    lost = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: lost.append(u))

    class Dying:
        def __del__(self):
            _busy(0.3)  # the budget below expires in here

    with pytest.raises(BudgetExceeded, match="the block took longer"):
        with time_limit(0.05, "the block"):
            obj = Dying()
            del obj
            while True:
                pass
    assert lost == []


def test_budgets_around_node_building_lose_no_interrupt(monkeypatch):
    """Node building drops nodes, whose cache entries go by weak-dictionary callbacks."""
    import diffkit as dk

    lost = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: lost.append(u))
    x = dk.variable("x")
    for trial in range(30):
        with pytest.raises(BudgetExceeded):
            with time_limit(0.002, "building"):
                i = 0
                while True:
                    i += 1
                    y = dk.sin(x * float(i % 97 + 1000 * trial)) + 1.0
                    del y
    assert [repr(u.object) for u in lost] == []

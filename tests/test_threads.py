"""diffkit from several threads at once: the same transformed function and the same LeNet-5
training step give, bit for bit, what a serial run gives; BLAS's thread count and numpy's
allocator are as before afterwards, whatever order threads enter and leave the BLAS limit
in; and time budgets hold in any thread.

No assertion here depends on timing: the bounds on budgets are the budget plus several
seconds, and the interleavings are forced with events, not hoped for with sleeps."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy._core.multiarray import get_handler_name

import diffkit as dk
from diffkit import parallel
from diffkit.limits import RESEND, BudgetExceeded, time_limit
from diffkit.train.loop import StepGraph

THREADS = 4


def _in_threads(fn, args: list) -> list:
    """``fn(arg)`` for every arg, THREADS at a time, all released together."""
    start = threading.Barrier(min(THREADS, len(args)))

    def run(arg):
        start.wait()
        return fn(arg)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, args))


def _same(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def test_the_same_grad_on_four_threads_is_the_serial_result_bit_for_bit():
    def loss(w, x):
        return np.sum(np.tanh(x @ w) ** 2) + np.sum(np.sin(w) * w)

    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal(5), rng.standard_normal((7, 5))) for _ in range(3 * THREADS)]
    serial = [dk.grad(loss, argnums=(0, 1))(w, x) for w, x in inputs]
    g = dk.grad(loss, argnums=(0, 1))  # fresh: the threads race to trace it
    for _ in range(3):
        threaded = _in_threads(lambda wx: g(*wx), inputs)
        for got, want in zip(threaded, serial):
            _same(got[0], want[0])
            _same(got[1], want[1])
    assert g.traces == 1


def test_lenet5_steps_on_four_threads_match_a_serial_run(monkeypatch):
    monkeypatch.setenv("DIFFKIT_THREADS", "2")  # the compiled loops split batches, BLAS limited
    blas, handler = parallel.blas_threads(), get_handler_name()
    model = dk.nn.LeNet5(input_size=16)
    step = StepGraph(model, (6, 1, 16, 16), 10)
    rng = np.random.default_rng(1)
    batches = [
        (
            rng.standard_normal((6, 1, 16, 16)).astype(np.float32),
            np.eye(10, dtype=np.float32)[rng.integers(0, 10, 6)],
        )
        for _ in range(2 * THREADS)
    ]

    def run(batch):
        loss, logits, grads, _ = step(model, *batch)
        assert get_handler_name() == handler  # the cache was this run's only
        return loss, logits, grads

    serial = [run(b) for b in batches]
    for _ in range(3):
        threaded = _in_threads(run, batches)
        for (loss, logits, grads), (loss0, logits0, grads0) in zip(threaded, serial):
            assert loss == loss0
            _same(logits, logits0)
            assert grads.keys() == grads0.keys()
            for name in grads:
                _same(grads[name], grads0[name])
    assert parallel.blas_threads() == blas
    assert get_handler_name() == handler


class _FakeBlas:
    """A BLAS thread count that records every change."""

    def __init__(self, count: int):
        self.count, self.history = count, [count]

    def set(self, n):
        self.count = n
        self.history.append(n)

    def get(self):
        return self.count


@pytest.mark.parametrize("order", ["AB AB", "AB BA", "AAB ABA", "AAB BAA"])
def test_the_blas_limit_is_reference_counted_in_any_interleaving(order):
    """Threads A and B enter (first letter group) and leave (second) the limit in the
    given order, each step in its own thread, forced by events; a letter repeated is a
    nested entry of the same thread."""
    blas = _FakeBlas(8)
    fns = (blas.set, blas.get)
    enter, leave = order.split()
    steps = [("in", t) for t in enter] + [("out", t) for t in leave]
    go = {t: [threading.Event() for _ in steps] for t in "AB"}
    done = threading.Semaphore(0)

    def thread(name):
        for i, (what, who) in enumerate(steps):
            if who != name:
                continue
            go[name][i].wait(10)
            if what == "in":
                parallel._acquire_blas_limit(fns)
            else:
                parallel._release_blas_limit(fns)
            done.release()

    workers = [threading.Thread(target=thread, args=(t,)) for t in "AB"]
    for w in workers:
        w.start()
    for i, (_, who) in enumerate(steps):
        go[who][i].set()
        assert done.acquire(timeout=10)
        inside = i < len(steps) - 1
        assert blas.count == (1 if inside else 8), (order, i, blas.history)
    for w in workers:
        w.join(10)
    assert blas.history == [8, 1, 8]
    assert not parallel._holders


def test_real_blas_interleaving_leaves_its_count(monkeypatch):
    monkeypatch.setenv("DIFFKIT_THREADS", "2")
    before = parallel.blas_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with parallel.parallel_kernels():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def b():
        a_in.wait(10)
        with parallel.parallel_kernels():
            b_in.set()
            a_out.wait(10)
            seen["inside after A left"] = parallel.blas_threads()

    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    ta.start(), tb.start()
    ta.join(20), tb.join(20)
    if before is not None:
        assert seen["inside after A left"] == 1
    assert parallel.blas_threads() == before


def test_compare_in_a_thread_returns_within_its_budget():
    budget = 5.0  # reference_derivative's default
    out = {}

    def run():
        start = time.monotonic()
        out["rows"] = dk.compare("exp(exp(exp(x)))", at={"x": 10.0}, methods=["reverse"])
        out["seconds"] = time.monotonic() - start

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(budget + 60)  # a bound for a broken budget, so the test ends
    assert not worker.is_alive()
    assert out["seconds"] < budget + 5  # generous: no flake on a loaded machine
    row = out["rows"][0]
    assert row["truth"] is None and "budget" in row["truth_note"]
    assert row["derivative"] is not None


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_time_limit_in_threads_and_nested():
    def budgeted(seconds):
        start = time.monotonic()
        with pytest.raises(BudgetExceeded, match="a loop took longer than its budget of"):
            with time_limit(seconds, "a loop"):
                while True:
                    sum(range(100))
        return time.monotonic() - start

    for took in _in_threads(budgeted, [0.2, 0.3, 0.4, 0.5]):
        assert took < 0.5 + 5
    with pytest.raises(BudgetExceeded, match="outer"):
        with time_limit(0.3, "outer"):
            try:
                with time_limit(30, "inner"):
                    while True:
                        pass
            except BudgetExceeded:  # the outer budget is not the inner's
                pytest.fail("the inner budget caught the outer one's exception")


def test_a_swallowed_expiry_is_raised_again():
    swallowed = []
    start = time.monotonic()
    with pytest.raises(BudgetExceeded):
        with time_limit(0.1, "stubborn"):
            while True:
                try:
                    while True:
                        pass
                except BaseException as err:  # noqa: BLE001 - code that swallows everything
                    if swallowed:
                        raise
                    swallowed.append(err)
    assert swallowed and time.monotonic() - start < 0.1 + RESEND + 5


def test_no_budget_outlives_its_block():
    """Blocks ending about when their budget does: no exception arrives afterwards, and no
    watchdog thread is left."""
    threads = threading.active_count()
    for i in range(40):
        try:
            with time_limit(0.002, "short"):
                _busy(0.001 + 0.00005 * i)
        except BudgetExceeded:
            pass
    _busy(RESEND + 0.5)  # a stray expiry, or a resent one, would land here
    assert threading.active_count() == threads


def test_bad_budgets_are_refused():
    for bad in (0, -1, float("nan"), "5", True):
        with pytest.raises(ValueError, match="time budget"):
            with time_limit(bad, "x"):
                pass
    with time_limit(None, "x"), time_limit(float("inf"), "y"):
        pass

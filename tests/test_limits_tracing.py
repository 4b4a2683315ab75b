"""Time budgets under a trace function (coverage.py, a debugger): an expired budget must
leave the interpreter with nothing pending, or the traced thread spins at the entry of the
next function it calls."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import sys, threading
    from diffkit.limits import BudgetExceeded, time_limit

    def tracer(frame, event, arg):
        return tracer if frame.f_code.co_name == "busy" else None

    def busy():
        while True:
            pass

    def run(results):
        expired = 0
        for _ in range(20):
            try:
                with time_limit(0.02, "a busy loop"):
                    busy()
            except BudgetExceeded:
                expired += 1
        results.append(expired)

    sys.settrace(tracer)
    threading.settrace(tracer)
    results = []
    run(results)
    worker = threading.Thread(target=run, args=(results,))
    worker.start()
    worker.join()
    print(results)
    """
)


def test_budgets_expire_and_return_under_a_trace_function():
    # the failure this guards against is a thread spinning for ever, so the timeout only
    # bounds a hang: a loaded machine passes well within it
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[20, 20]"

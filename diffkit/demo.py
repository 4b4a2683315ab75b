"""The main job: the worked examples, every study, and a LeNet-5 training run."""

from __future__ import annotations

import time

__all__ = ["run_demo"]


def _worked_examples() -> None:
    import diffkit as dk

    x, y, z = dk.variables("x y z")
    f = (x + y) * z
    at = {"x": -2.0, "y": 5.0, "z": -4.0}
    print("f(x, y, z) = (x + y) z at x=-2, y=5, z=-4")
    print(f"  f = {dk.evaluate(f, at)}")
    for method in ("reverse", "forward"):
        print(f"  {method:8s} gradient: {dk.gradient(f, at, method=method)}")
    s = dk.parse("exp(x)*sin(x)")
    d = dk.derivative(s, "x", {"x": 1.0})
    print(f"d/dx exp(x) sin(x) at x=1: {d!r}")


def run_demo(quick: bool = False, out: str = "reports") -> int:
    """Run the demo; returns the exit status."""
    start = time.perf_counter()
    _worked_examples()
    print(f"demo finished in {time.perf_counter() - start:.1f} s")
    return 0

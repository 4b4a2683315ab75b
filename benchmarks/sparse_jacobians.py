"""Coloured against dense Jacobians of the 2-D Brusselator right-hand side (2 n^2 unknowns,
periodic n x n grid): forward mode with one pass per column colour (pattern detection and
colouring included, and excluded) against dense forward mode (one pass per unknown, all
pushed through the batched evaluation), alternating rounds so that both see the same state
of the machine; medians with their spread and the ratio. Also the colour counts of every
vertex order against the lower bound, for the columns and rows of the Brusselator and
banded Jacobians and the star colourings of the arrowhead and Brusselator Hessians.

Targets: coloured forward at least 100x faster than dense at n = 64 (8,192 unknowns),
detection and colouring included; time linear in the unknowns at a fixed band.

Run: python benchmarks/sparse_jacobians.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import diffkit as dk
from diffkit.differentiators.coloring import ORDERS, coloring
from diffkit.differentiators.sparse import SparseJacobian, hessian_sparsity, jacobian_sparsity


def brusselator(n: int):
    """du = 1 + u^2 v - 4.4 u + 10 lap(u), dv = 3.4 u - u^2 v + 10 lap(v), periodic."""
    uv = dk.variable("uv", (2, n, n))
    u, v = uv[0], uv[1]

    def lap(w):
        return np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) - 4 * w

    du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
    dv = 3.4 * u - u * u * v + 10.0 * lap(v)
    at = {"uv": np.random.default_rng(0).uniform(0.5, 1.5, (2, n, n))}
    return dk.stack([du, dv]).ravel(), at


def banded(n: int, half: int = 2):
    x = dk.variable("x", (n,))
    out = dk.exp(x)
    for k in range(1, half + 1):
        out = out + dk.sin(dk.pad(x[k:], (0, k))) * dk.pad(x[:-k], (k, 0))
    return out, {"x": np.linspace(-1, 1, n)}


def _times(fn, rounds):
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _spread(ts) -> str:
    return f"{statistics.median(ts) * 1e3:9.2f} ms [{min(ts) * 1e3:.2f}, {max(ts) * 1e3:.2f}]"


def speed(sizes, rounds):
    print("Brusselator Jacobian, forward mode: dense vs coloured (ms, median [min, max])")
    print(
        f"{'n':>4} {'unknowns':>8} {'colours':>7}  {'dense':>30}  {'coloured, all in':>30}  "
        f"{'coloured, prepared':>30}  ratio (all in)"
    )
    for n in sizes:
        f, at = brusselator(n)
        dense_t, full_t, prep_t = [], [], []
        prepared = SparseJacobian(f, method="forward")
        prepared(at)
        for _ in range(rounds):  # alternating rounds
            dense_t += _times(lambda: dk.jacobian(f, at, method="forward", wrt="uv"), 1)

            def all_in():  # detection, colouring, evaluation (graphs cached on both sides)
                SparseJacobian(f, method="forward")(at)

            full_t += _times(all_in, 1)
            prep_t += _times(lambda: prepared(at), 3)
        ratio = statistics.median(dense_t) / statistics.median(full_t)
        print(
            f"{n:>4} {2 * n * n:>8} {prepared.coloring.count:>7}  {_spread(dense_t)}  "
            f"{_spread(full_t)}  {_spread(prep_t)}  {ratio:8.1f}x"
        )


def colours(n_bruss, n_band):
    f, at = brusselator(n_bruss)
    g, _ = banded(n_band)
    x = dk.variable("x", (n_band,))
    arrow = dk.sum(dk.cos(x) * x[-1]) + dk.sum(x**4)
    energy = dk.sum(f**2) / 2
    cases = [
        ("banded columns", jacobian_sparsity(g), "column"),
        ("Brusselator columns", jacobian_sparsity(f), "column"),
        ("Brusselator rows", jacobian_sparsity(f), "row"),
        ("arrowhead Hessian (star)", hessian_sparsity(arrow), "star"),
        ("Brusselator energy Hessian (star)", hessian_sparsity(energy), "star"),
    ]
    print("\ncolours by vertex order (lower bound in brackets)")
    print(f"{'pattern':<36}" + "".join(f"{o:>18}" for o in ORDERS))
    for label, pattern, kind in cases:
        cells = []
        for order in ORDERS:
            c = coloring(pattern, kind, order)
            cells.append(f"{c.count} [{c.lower_bound}]")
        print(f"{label:<36}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    speed([8, 16] if quick else [16, 32, 64], 2 if quick else 5)
    colours(8 if quick else 32, 64 if quick else 2048)

"""Higher-order derivatives: Taylor mode against nested forward mode, and how their cost
grows with the order k, on the functions of the ``higher-order`` study.

Targets (issue 24): Taylor mode's cost for the k-th derivative grows at most
quadratically in k on every study function; at k = 10 it is at least 10x faster than
nested forward mode on the tanh network; the best finite-difference scheme of order k
(Richardson or the complex circle) is within 1e-6 relative of the truth for k <= 6 on every
smooth study function. Cost is measured two ways: a new derivative (Taylor mode on values,
as ``dk.jet`` and ``derivative(method="taylor")`` compute it, against building, compiling
and running the nested forward-mode graph, and the Taylor-mode graph beside them), and
running the compiled graphs again. The methods alternate within each round; medians over
rounds, their ranges, and the median of the per-round ratios. JAX's
``jax.experimental.jet`` and jet-for-pytorch run the same functions in a subprocess, in
the interpreter ``DIFFKIT_JAX_PYTHON`` / ``DIFFKIT_JET_TORCH_PYTHON`` names or this one
if it has them, and their derivatives are checked against diffkit's.

Run: python benchmarks/higher_order.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from common import median_time
from diffkit.differentiators.higher import derivative, derivative_graph
from diffkit.ir.schedule import compile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))
import higher_order as study  # noqa: E402


def _fresh(f, k, method):
    """A new k-th derivative at x = 0.3: Taylor mode on values (``"taylor"``), or the
    graph of ``"taylor-graph"`` / ``"forward"`` built, compiled and run."""
    if method == "taylor":
        return lambda: derivative(f, "x", {"x": 0.3}, "taylor", k)
    graph_method = "taylor" if method == "taylor-graph" else method

    def run():
        g = derivative_graph(f, "x", k, graph_method)
        return compile(g)({"x": 0.3})

    return run


def _growth(functions, ks, rounds):
    print("Taylor mode on values (a new derivative), median seconds over rounds, against k:")
    for name, (f, _, x0) in functions.items():
        med = []
        for k in ks:
            times = [median_time(_fresh(f, k, "taylor"), 5)[0] for _ in range(rounds)]
            med.append(statistics.median(times))
        _, _, text = study.fit_growth(ks, med)
        slope = float(np.polyfit(np.log(ks), np.log(med), 1)[0])  # the power-law exponent
        print(
            f"  {name:24s} "
            + " ".join(f"k={k}:{1e3 * t:.2f}ms" for k, t in zip(ks, med))
            + f"  -> best fit {text}; log-log slope {slope:.2f}"
            + f" [{'meets' if slope <= 2.0 else 'misses'} <= k^2]"
        )


def _report(res, base, other, target=False):
    ratios = [a / b for a, b in zip(res[other], res[base])]
    r = statistics.median(ratios)
    verdict = f" [{'meets' if r >= 10 else 'misses'} >= 10]" if target else ""
    print(f"    {other} / {base} = {r:.1f} (rounds {min(ratios):.1f}-{max(ratios):.1f}){verdict}")


def _versus(f, k, rounds):
    methods = ("taylor", "taylor-graph", "forward")
    runs = {m: _fresh(f, k, m) for m in methods}
    values = {m: float(runs[m]()) for m in methods}
    assert all(abs(v / values["forward"] - 1) < 1e-9 for v in values.values()), values
    progs = {m: compile(derivative_graph(f, "x", k, m)) for m in ("taylor", "forward")}
    fresh = {m: [] for m in methods}
    compiled = {m: [] for m in progs}
    for _ in range(rounds):  # alternating
        for m in methods:
            fresh[m].append(median_time(runs[m], 3)[0])
        for m in progs:
            compiled[m].append(median_time(lambda: progs[m]({"x": 0.3}), 20)[0])
    print("  a new derivative (Taylor mode on values; graphs built, compiled and run):")
    for m, v in fresh.items():
        print(
            f"    {m:12s} median {1e3 * statistics.median(v):8.3f} ms "
            f"(range {1e3 * min(v):.3f}-{1e3 * max(v):.3f})"
        )
    _report(fresh, "taylor", "forward", target=True)
    _report(fresh, "taylor-graph", "forward")
    print("  the compiled graphs run again (no build):")
    for m, v in compiled.items():
        print(
            f"    {m:12s} median {1e3 * statistics.median(v):8.3f} ms "
            f"(range {1e3 * min(v):.3f}-{1e3 * max(v):.3f})"
        )
    _report(compiled, "taylor", "forward")
    return statistics.median(fresh["taylor"])


def _peers(functions, k):
    """JAX's jax.experimental.jet and jet-for-pytorch on the study's functions at order k,
    in their own interpreters, beside diffkit's Taylor mode on values."""
    for peer in study.PEERS:
        answer = study.run_peer(peer, list(functions), [k], repeats=20)
        if "error" in answer:
            print(f"  {peer}: {answer['error']}")
            continue
        print(f"  {answer['version']} (float64, CPU), k = {k}, median ms:")
        for name, (f, _, x0) in functions.items():
            row = answer["results"][name][str(k)]
            if "error" in row:
                print(f"    {name:24s} {peer} failed: {row['error']}")
                continue
            ours_value = float(derivative(f, "x", {"x": x0}, "taylor", k))
            ours = statistics.median(
                median_time(lambda: derivative(f, "x", {"x": x0}, "taylor", k), 5)[0]
                for _ in range(3)
            )
            diff = abs(row["value"] - ours_value) / abs(ours_value)
            eager = f"eager {1e3 * row['eager']:8.3f}  " if "eager" in row else ""
            later = "compiled" if "eager" in row else "later calls"
            print(
                f"    {name:24s} diffkit jet {1e3 * ours:7.3f}  {peer} {eager}"
                f"first call {1e3 * row['first']:8.1f}  "
                f"{later} {1e3 * row['run']:7.4f}  relative difference {diff:.1e}"
                f" [{'agrees' if diff <= 1e-10 else 'DISAGREES'}]"
            )


def _accuracy(functions):
    print("Best finite-difference scheme of order k (relative error, k = 1..6):")
    for name, (f, fn, x0) in functions.items():
        exact = study.truth(fn, x0, 6)
        worst = 0.0
        for k in range(1, 7):
            best = min(
                abs(derivative(f, "x", {"x": x0}, m, k) - exact[k]) / abs(exact[k])
                for m in ("richardson", "complex-circle")
            )
            worst = max(worst, best)
        print(f"  {name:24s} worst over k: {worst:.1e} [{'meets' if worst <= 1e-6 else 'misses'}]")


def main(rounds: int = 7) -> None:
    functions = study.functions()
    start = time.perf_counter()
    _growth(functions, [2, 4, 6, 8, 10, 14, 20], max(3, rounds // 2))
    f = functions["tanh network 8-8"][0]
    print(f"k = 10 on the tanh network, {rounds} rounds, the methods alternating:")
    _versus(f, 10, rounds)
    print("Peers' Taylor mode (subprocess; DIFFKIT_JAX_PYTHON / DIFFKIT_JET_TORCH_PYTHON):")
    _peers(functions, 10)
    _accuracy(functions)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

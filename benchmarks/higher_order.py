"""Higher-order derivatives: Taylor mode against nested forward mode, and how their cost
grows with the order k, on the functions of the ``higher-order`` study.

Targets (issue 24): Taylor mode's cost for the k-th derivative grows at most
quadratically in k on every study function; at k = 10 it is at least 10x faster than
nested forward mode on the tanh network; the best finite-difference scheme of order k
(Richardson or the complex circle) is within 1e-6 relative of the truth for k <= 6 on every
smooth study function. Cost is measured two ways: building the derivative graph and
running it once (a new derivative), and running the compiled graph alone. Taylor mode and
nested forward mode alternate within each round; medians over rounds, their ranges, and
the median of the per-round ratios. JAX's ``jax.experimental.jet`` is timed on the same
network where JAX is installed.

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
    def run():
        g = derivative_graph(f, "x", k, method)
        return compile(g)({"x": 0.3})

    return run


def _growth(functions, ks, rounds):
    print("Taylor mode, build + run, median seconds over rounds, against k:")
    for name, (f, _, x0) in functions.items():
        med = []
        for k in ks:
            times = [median_time(_fresh(f, k, "taylor"), 3)[0] for _ in range(rounds)]
            med.append(statistics.median(times))
        _, _, text = study.fit_growth(ks, med)
        slope = float(np.polyfit(np.log(ks), np.log(med), 1)[0])  # the power-law exponent
        print(
            f"  {name:24s} "
            + " ".join(f"k={k}:{1e3 * t:.2f}ms" for k, t in zip(ks, med))
            + f"  -> best fit {text}; log-log slope {slope:.2f}"
            + f" [{'meets' if slope <= 2.0 else 'misses'} <= k^2]"
        )


def _versus(f, k, rounds):
    runs = {"taylor": _fresh(f, k, "taylor"), "forward": _fresh(f, k, "forward")}
    progs = {m: compile(derivative_graph(f, "x", k, m)) for m in runs}
    assert abs(float(progs["taylor"]({"x": 0.3})) / float(progs["forward"]({"x": 0.3})) - 1) < 1e-9
    fresh = {m: [] for m in runs}
    compiled = {m: [] for m in runs}
    for _ in range(rounds):  # alternating
        for m in runs:
            fresh[m].append(median_time(runs[m], 3)[0])
            compiled[m].append(median_time(lambda: progs[m]({"x": 0.3}), 20)[0])
    for label, res in (("build + run", fresh), ("compiled run", compiled)):
        ratios = [a / b for a, b in zip(res["forward"], res["taylor"])]
        print(f"  {label}:")
        for m, v in res.items():
            print(
                f"    {m:8s} median {1e3 * statistics.median(v):8.3f} ms "
                f"(range {1e3 * min(v):.3f}-{1e3 * max(v):.3f})"
            )
        r = statistics.median(ratios)
        print(
            f"    nested forward / Taylor = {r:.1f} (rounds {min(ratios):.1f}-{max(ratios):.1f})"
            f" [{'meets' if r >= 10 else 'misses'} >= 10]"
        )


def _jax(k, rounds):
    try:
        import jax
        from jax.experimental import jet
    except ImportError:
        print("  JAX is not installed: no jax.experimental.jet comparison")
        return
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal(8), rng.standard_normal(8)
    w2, b2 = rng.standard_normal((8, 8)) / 3, rng.standard_normal(8)
    w3 = rng.standard_normal(8) / 3

    def net(x):
        h = jnp.tanh(w1 * x + b1)
        return jnp.sum(w3 * jnp.tanh(jnp.sum(w2 * h, axis=1) + b2))

    series = ([1.0] + [0.0] * (k - 1),)
    taylor = jax.jit(lambda x: jet.jet(net, (x,), series)[1][-1])
    nested = net
    for _ in range(k):
        nested = jax.grad(nested)
    nested = jax.jit(nested)
    taylor(0.3).block_until_ready()
    nested(0.3).block_until_ready()
    t = [median_time(lambda: taylor(0.3).block_until_ready(), 20)[0] for _ in range(rounds)]
    n = [median_time(lambda: nested(0.3).block_until_ready(), 20)[0] for _ in range(rounds)]
    print(
        f"  jax jet (jit) median {1e3 * statistics.median(t):.3f} ms, nested jax.grad (jit) "
        f"{1e3 * statistics.median(n):.3f} ms"
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
    print(f"k = 10 on the tanh network, {rounds} rounds, Taylor and nested forward alternating:")
    _versus(f, 10, rounds)
    _jax(10, rounds)
    _accuracy(functions)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

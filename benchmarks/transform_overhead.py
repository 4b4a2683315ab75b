"""The cost of tracing: ``dk.grad(f)`` on a small numpy function, first call (trace, build
the gradient graph, compile) against later calls (the cached program only), and against
``jax.grad`` without jit where JAX is installed. The rounds of the two sides alternate.

Run: python benchmarks/transform_overhead.py
"""

from __future__ import annotations

import time

import numpy as np

import diffkit as dk
from common import median_time


def fun(x):
    return np.sum(np.tanh(x) * np.sin(x) + x**2)


def main(size: int = 100, rounds: int = 9, calls: int = 200) -> None:
    x = np.linspace(-1.0, 1.0, size)
    firsts = []
    for i in range(rounds):
        # a new transform and a new shape: the first call traces, builds and compiles anew
        g, xi = dk.grad(fun), np.linspace(-1.0, 1.0, size + 1 + i)
        start = time.perf_counter()
        g(xi)
        firsts.append(time.perf_counter() - start)
    g = dk.grad(fun)
    g(x)
    later, lo, hi = median_time(lambda: g(x), repeats=calls)
    first = float(np.median(firsts))
    print(
        f"dk.grad(f), f a 5-op numpy function on {size} entries: first call {first * 1e6:.0f} us "
        f"(median of {rounds}; min {min(firsts) * 1e6:.0f}, max {max(firsts) * 1e6:.0f}), "
        f"later calls {later * 1e6:.1f} us (min {lo * 1e6:.1f}, max {hi * 1e6:.1f}); "
        f"first / later = {first / later:.0f}"
    )
    assert g.traces == 1, "a later call with the same shapes traced again"
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        print("jax.grad: JAX is not installed here; install jax to compare")
        return

    def jfun(v):
        return jnp.sum(jnp.tanh(v) * jnp.sin(v) + v**2)

    jg = jax.grad(jfun)
    jx = jnp.asarray(x)
    jg(jx).block_until_ready()
    ours, theirs = [], []
    for _ in range(rounds):  # alternate the two sides, round by round
        ours.append(median_time(lambda: g(x), repeats=calls // 10)[0])
        theirs.append(median_time(lambda: jg(jx).block_until_ready(), repeats=calls // 10)[0])
    a, b = float(np.median(ours)), float(np.median(theirs))
    print(
        f"later calls: diffkit {a * 1e6:.1f} us, jax.grad (no jit) {b * 1e6:.1f} us, "
        f"ratio {a / b:.2f}"
    )


if __name__ == "__main__":
    main()

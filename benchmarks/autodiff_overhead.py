"""Interpreter overhead per node, and the cost of a reverse-mode gradient relative to the
function (the cheap-gradient principle) for a 784-256-10 tanh MLP, batch 256, float32.

Run: python benchmarks/autodiff_overhead.py
"""

from __future__ import annotations

import numpy as np

import diffkit as dk
from common import median_time


def chain_overhead(length: int = 2000) -> None:
    x = dk.variable("x")
    y = x
    for i in range(length):
        y = dk.sin(y) if i % 2 else y * 1.0001 + 0.5
    program = dk.compile(y)
    med, lo, hi = median_time(lambda: program({"x": 0.3}), repeats=30)
    print(
        f"scalar chain of {len(program)} nodes: {med * 1e3:.2f} ms per evaluation "
        f"(min {lo * 1e3:.2f}, max {hi * 1e3:.2f}), {med / len(program) * 1e6:.2f} us per node"
    )


def mlp_ratio(batch: int = 256) -> float:
    rng = np.random.default_rng(0)
    dk.nn.manual_seed(0)
    model = dk.nn.MLP([784, 256, 10], activation="tanh")
    x = dk.variable("input", (batch, 784))
    y = dk.variable("target", (batch, 10))
    loss = dk.nn.CrossEntropyLoss()(model(x), y)
    names = list(dict(model.named_parameters()))
    grads = dk.vjp_graph(
        [loss],
        [dk.const(1.0)],
        [dk.variable(n, p.shape) for n, p in model.named_parameters()],
    )
    f_prog = dk.compile(loss)
    g_prog = dk.compile([loss] + grads)
    at = {
        **model.inputs(),
        "input": rng.standard_normal((batch, 784)).astype(np.float32),
        "target": np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)],
    }
    assert g_prog(at)[1].dtype == np.float32
    t_f, _, _ = median_time(lambda: f_prog(at), repeats=50)
    t_g, _, _ = median_time(lambda: g_prog(at), repeats=50)
    print(f"784-256-10 tanh MLP, batch {batch}, float32 ({len(names)} parameter arrays):")
    print(f"  function          median {t_f * 1e3:.3f} ms")
    print(f"  loss + gradient   median {t_g * 1e3:.3f} ms")
    print(f"  ratio time(gradient)/time(function) = {t_g / t_f:.2f} (target <= 2.5)")
    return t_g / t_f


if __name__ == "__main__":
    chain_overhead()
    mlp_ratio()


def graph_scaling(sizes=(1_000, 10_000, 100_000)) -> None:
    """Per-node time to build a scalar chain and its reverse-mode graph, at growing sizes:
    constant per-node times mean linear cost."""
    import time

    for n in sizes:
        start = time.perf_counter()
        x = dk.variable("x")
        y = x
        for i in range(int(n / 1.5)):
            y = dk.sin(y) if i % 2 else y * 1.0001 + 0.5
        built = time.perf_counter()
        nodes = dk.graph_size(y)
        (g,) = dk.vjp_graph([y], [dk.const(1.0)], [x])
        done = time.perf_counter()
        print(
            f"{nodes:7d} nodes: build {1e6 * (built - start) / nodes:5.2f} us/node, reverse "
            f"graph {1e6 * (done - built) / nodes:5.2f} us/node ({dk.graph_size(g)} nodes)"
        )

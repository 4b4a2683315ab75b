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
    child = _torch_child(batch)
    rounds = {"f": [], "g": [], "torch": []}
    for _ in range(7):  # alternating rounds: diffkit here, PyTorch in its child process
        rounds["f"].append(median_time(lambda: f_prog(at), repeats=30)[0])
        rounds["g"].append(median_time(lambda: g_prog(at), repeats=30)[0])
        if child is not None:
            child.stdin.write("30\n")
            child.stdin.flush()
            rounds["torch"].append(float(child.stdout.readline()))
    if child is not None:
        child.stdin.close()
        child.wait()
    med = {k: float(np.median(v)) for k, v in rounds.items() if v}
    spread = {k: (1e3 * min(v), 1e3 * max(v)) for k, v in rounds.items() if v}
    print(f"784-256-10 tanh MLP, batch {batch}, float32 ({len(names)} parameter arrays), 7 rounds:")
    for key, label in (("f", "function        "), ("g", "loss + gradient ")):
        low, high = spread[key]
        print(f"  {label}  median {med[key] * 1e3:.3f} ms (range {low:.3f}-{high:.3f})")
    print(f"  ratio time(gradient)/time(function) = {med['g'] / med['f']:.2f} (target <= 2.0)")
    if "torch" in med:
        print(
            f"  PyTorch loss + backward median {med['torch'] * 1e3:.3f} ms (range "
            f"{spread['torch'][0]:.3f}-{spread['torch'][1]:.3f}); diffkit / PyTorch = "
            f"{med['g'] / med['torch']:.2f}"
        )
    else:
        print("  PyTorch is not installed (the oracle extra): no comparison")
    return med["g"] / med["f"]


_TORCH_MLP = """
import sys, torch, numpy as np
from common import median_time
torch.set_num_threads(2)
torch.manual_seed(0)
batch = int(sys.argv[1])
net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.Tanh(), torch.nn.Linear(256, 10))
x, y = torch.randn(batch, 784), torch.randint(0, 10, (batch,))
def step():
    net.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x), y).backward()
print("ready", flush=True)
for line in sys.stdin:
    print(median_time(step, repeats=int(line))[0], flush=True)
"""


def _torch_child(batch: int):
    """PyTorch in a child process (its OpenMP threads would slow this one), or None."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _TORCH_MLP, str(batch)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=__file__.rsplit("/", 1)[0] or ".",
    )
    if proc.stdout.readline().strip() != "ready":
        proc.wait()
        return None
    return proc


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


if __name__ == "__main__":
    chain_overhead(2000)
    mlp_ratio()
    graph_scaling()

"""Memory against time of a deep MLP's training step with and without checkpointing.

MLP of L = 64 hidden layers of width 512 (tanh), batch 128, float32: the gradient of a
squared loss with respect to every weight, unchecked, with sqrt(L) = 8 checkpointed
segments (``checkpoint_sequential``), and, where PyTorch is installed, PyTorch's step
with ``torch.utils.checkpoint.checkpoint_sequential`` at the same segment count. The
sides alternate within each round; printed are the medians over rounds with their
spread, the ratios, diffkit's predicted peak bytes and the peak measured while it runs.

    python benchmarks/memory.py [rounds]
"""

from __future__ import annotations

import sys
import time

import numpy as np

import diffkit as dk
from diffkit.memory import measured_peak
from diffkit.nn.checkpoint import checkpoint_sequential

L, WIDTH, BATCH = 64, 512, 128


def diffkit_step(segments: int | None):
    x = dk.variable("x", (BATCH, WIDTH))
    ws = [dk.variable(f"w{i}", (WIDTH, WIDTH)) for i in range(L)]
    layers = [lambda h, w=w: dk.tanh(h @ w) for w in ws]
    if segments:
        y = checkpoint_sequential(layers, segments, x)
    else:
        y = x
        for layer in layers:
            y = layer(y)
    loss = dk.sum(y**2)
    grads = dk.grad_graph(loss, [f"w{i}" for i in range(L)])
    program = dk.compile([loss] + list(grads.values()))
    rng = np.random.default_rng(0)
    at = {"x": rng.standard_normal((BATCH, WIDTH)).astype(np.float32)}
    scale = 1 / np.sqrt(WIDTH)
    for i in range(L):
        at[f"w{i}"] = (rng.standard_normal((WIDTH, WIDTH)) * scale).astype(np.float32)
    return program, at


def torch_step(segments: int):
    try:
        import torch
        from torch.utils.checkpoint import checkpoint_sequential as torch_cs
    except ImportError:
        return None
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        *[m for _ in range(L) for m in (torch.nn.Linear(WIDTH, WIDTH, bias=False), torch.nn.Tanh())]
    )
    x = torch.randn(BATCH, WIDTH)

    def run():
        model.zero_grad()
        y = torch_cs(model, segments, x, use_reentrant=False)
        (y**2).sum().backward()

    return run


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(rounds: int = 7) -> None:
    act = BATCH * WIDTH * 4
    segments = int(round(np.sqrt(L)))
    sides = {
        "diffkit unchecked": diffkit_step(None),
        f"diffkit {segments} segments": diffkit_step(segments),
    }
    for name, (program, at) in sides.items():
        program(at)
        peak, _ = measured_peak(program, at)
        plan = program.memory(np.float32)
        print(
            f"{name}: predicted peak {plan.peak_bytes / 2**20:.1f} MiB "
            f"({plan.peak_bytes / act:.1f} activations), measured {peak / 2**20:.1f} MiB"
        )
    runs = {name: (lambda p=p, a=a: p(a)) for name, (p, a) in sides.items()}
    torch_run = torch_step(segments)
    if torch_run is not None:
        runs[f"torch {segments} segments"] = torch_run
        torch_run()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(_timed(fn))
    base = np.array(times["diffkit unchecked"])
    for name, ts in times.items():
        ts = np.array(ts)
        ratio = ts / base
        print(
            f"{name:28s} median {1e3 * np.median(ts):8.1f} ms "
            f"(rounds {1e3 * ts.min():.1f} to {1e3 * ts.max():.1f}); "
            f"ratio to unchecked {np.median(ratio):.2f} ({ratio.min():.2f} to {ratio.max():.2f})"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

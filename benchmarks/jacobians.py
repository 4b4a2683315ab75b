"""Jacobians and Hessians: diffkit's batched passes against one pass per basis direction
(diffkit's former way, interpreted), and against torch.func (when the `oracle` extra is
installed), in alternating rounds within one run: medians, ranges and ratios.

Cases: the Hessian of a tanh network's loss in its n = 200 inputs; the Jacobian of a
map R^100 -> R^100 (x -> tanh(W x) * sin(x)) in forward and reverse mode.

Run: python benchmarks/jacobians.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import diffkit as dk
from diffkit.differentiators import batching, graphs
from diffkit.ir import schedule

RNG = np.random.default_rng(0)
N_HESS, N_JAC, HIDDEN = 200, 100, 64
W1 = RNG.standard_normal((HIDDEN, N_HESS)) / np.sqrt(N_HESS)
W2 = RNG.standard_normal((10, HIDDEN)) / 8
A = RNG.standard_normal((N_JAC, N_JAC)) / 10
X_HESS, X_JAC = RNG.standard_normal(N_HESS), RNG.standard_normal(N_JAC)


def diffkit_cases():
    x = dk.variable("x", (N_HESS,))
    loss = dk.sum(dk.tanh(dk.const(W2) @ dk.tanh(dk.const(W1) @ x)) ** 2)
    y = dk.variable("y", (N_JAC,))
    g = dk.tanh(dk.const(A) @ y) * dk.sin(y)
    return {
        "hessian n=200": lambda: dk.hessian(loss, {"x": X_HESS}, method="reverse"),
        "jacfwd 100x100": lambda: dk.jacobian(g, {"y": X_JAC}, method="forward")["y"],
        "jacrev 100x100": lambda: dk.jacobian(g, {"y": X_JAC}, method="reverse")["y"],
    }


def torch_cases():
    try:
        import torch
        from torch.func import hessian, jacfwd, jacrev
    except ImportError:
        return None
    torch.set_num_threads(2)
    w1, w2, a = (torch.tensor(m) for m in (W1, W2, A))
    xh, xj = torch.tensor(X_HESS), torch.tensor(X_JAC)

    def loss(x):
        return (torch.tanh(w2 @ torch.tanh(w1 @ x)) ** 2).sum()

    def g(y):
        return torch.tanh(a @ y) * torch.sin(y)

    return {
        "hessian n=200": lambda: hessian(loss)(xh),
        "jacfwd 100x100": lambda: jacfwd(g)(xj),
        "jacrev 100x100": lambda: jacrev(g)(xj),
    }


class OneDirectionAtATime:
    """diffkit's former evaluation: one interpreted pass per basis direction."""

    def __enter__(self):
        self.saved = batching.MAX_BATCH_ENTRIES, schedule.STRAIGHT_LINE_LIMIT
        batching.MAX_BATCH_ENTRIES, schedule.STRAIGHT_LINE_LIMIT = 1, 0
        graphs._CACHE.clear()

    def __exit__(self, *exc):
        batching.MAX_BATCH_ENTRIES, schedule.STRAIGHT_LINE_LIMIT = self.saved
        graphs._CACHE.clear()


def _time(fn, repeats=5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(rounds: int = 7) -> None:
    ours = diffkit_cases()
    theirs = torch_cases()
    results = {name: {"batched": [], "per direction": [], "torch.func": []} for name in ours}
    check = {name: fn() for name, fn in ours.items()}
    with OneDirectionAtATime():
        for name, fn in ours.items():
            assert np.allclose(fn(), check[name], rtol=1e-12, atol=1e-12)
    for _ in range(rounds):
        for name, fn in ours.items():
            results[name]["batched"].append(_time(fn))
            with OneDirectionAtATime():
                results[name]["per direction"].append(_time(fn, 2))
            if theirs is not None:
                results[name]["torch.func"].append(_time(theirs[name]))
    if theirs is None:
        print("PyTorch is not installed (the oracle extra): no torch.func comparison")
    for name, sides in results.items():
        med = {k: statistics.median(v) for k, v in sides.items() if v}
        print(f"{name}:")
        for side, values in sides.items():
            if values:
                print(
                    f"  {side:14s} median {1e3 * med[side]:8.2f} ms over {rounds} rounds "
                    f"(range {1e3 * min(values):.2f}-{1e3 * max(values):.2f})"
                )
        print(f"  per direction / batched = {med['per direction'] / med['batched']:.1f}")
        if "torch.func" in med:
            print(f"  batched / torch.func    = {med['batched'] / med['torch.func']:.2f}")


if __name__ == "__main__":
    main()

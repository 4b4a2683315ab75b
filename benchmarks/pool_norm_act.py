"""Forward and backward pass of each pooling, normalization and activation layer on a
(32, 32, 16, 16) float32 batch: diffkit's compiled gradient program against PyTorch eager,
medians with their spread over alternating rounds, measured in one run.

    .venv/bin/python benchmarks/pool_norm_act.py [NAME ...]

With names, only the layers whose description contains one of them (``GELU``, ``Norm``).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import diffkit as dk
from diffkit import nn

SHAPE = (32, 32, 16, 16)

LAYERS = [
    ("MaxPool2d(3, 2, 1, dilation=2)", lambda L: L.MaxPool2d(3, 2, 1, dilation=2)),
    ("AvgPool2d(3, 2, 1, divisor_override=4)", lambda L: L.AvgPool2d(3, 2, 1, divisor_override=4)),
    ("AdaptiveAvgPool2d(1)", lambda L: L.AdaptiveAvgPool2d(1)),
    ("AdaptiveAvgPool2d((5, 3))", lambda L: L.AdaptiveAvgPool2d((5, 3))),
    ("AdaptiveMaxPool2d((5, 3))", lambda L: L.AdaptiveMaxPool2d((5, 3))),
    ("GroupNorm(4, 32)", lambda L: L.GroupNorm(4, 32)),
    ("InstanceNorm2d(32, affine=True)", lambda L: L.InstanceNorm2d(32, affine=True)),
    ("GELU()", lambda L: L.GELU()),
    ("ELU()", lambda L: L.ELU()),
    ("SiLU()", lambda L: L.SiLU()),
    ("Mish()", lambda L: L.Mish()),
    ("LeakyReLU()", lambda L: L.LeakyReLU()),
    ("Hardtanh()", lambda L: L.Hardtanh()),
    ("Softplus(2, 1)", lambda L: L.Softplus(2.0, 1.0)),
]


def diffkit_step(make, x):
    layer = make(nn)
    loss = dk.sum(layer(dk.variable("x", x.shape)))
    used = dk.compile(loss).variables
    at = {k: v for k, v in {**layer.inputs(), "x": x}.items() if k in used}
    program = dk.compile([loss] + list(dk.grad_graph(loss, list(at)).values()))
    return lambda: program(at)


def torch_step(make, x):
    import torch

    layer = make(torch.nn)

    def run():
        t = torch.tensor(x, requires_grad=True)
        layer(t).sum().backward()

    return run


def _times(fn, repeats):
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(rounds: int = 5, repeats: int = 5, only: tuple = ()) -> None:
    import torch

    torch.set_num_threads(1)  # numpy's elementwise loops run on one core too
    x = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    print(f"input {SHAPE} float32, forward + backward, torch {torch.__version__}, 1 thread")
    print(f"{'layer':40s} {'diffkit ms (min-max)':>24s} {'torch ms (min-max)':>24s} ratio")
    for name, make in LAYERS:
        if only and not any(word in name for word in only):
            continue
        ours, theirs = diffkit_step(make, x), torch_step(make, x)
        ours()
        theirs()
        a, b = [], []
        for _ in range(rounds):  # alternating rounds: both see the same machine load
            a += _times(ours, repeats)
            b += _times(theirs, repeats)
        ma, mb = statistics.median(a), statistics.median(b)
        print(
            f"{name:40s} {ma * 1e3:8.2f} ({min(a) * 1e3:.2f}-{max(a) * 1e3:.2f})"
            f"{mb * 1e3:12.2f} ({min(b) * 1e3:.2f}-{max(b) * 1e3:.2f}) {ma / mb:6.2f}"
        )


if __name__ == "__main__":
    main(only=tuple(sys.argv[1:]))

"""The training step of the deeper models with their normalization built from separate
ops (a mean, a centring, a square, a second mean, a square root, a division: the graph
reverse mode differentiates op by op) against the ``moments``/``normalize`` records with
written-out derivatives: step medians with their spread, and the per-round speed-up,
alternating rounds in one run.

    .venv/bin/python benchmarks/normalization_records.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys

import numpy as np

import diffkit as dk
import diffkit.nn.norm as norm
from common import median_time, spread
from diffkit import ops
from diffkit.train import StepGraph
from diffkit.train.data import one_hot
from diffkit.train.loop import model_inputs

RECORDS = norm.normalize


def composite(x, axes, eps):
    """The normalization as separate ops (how the layers built it before the records)."""
    mean = ops.mean(x, axes, keepdims=True)
    centred = x - mean
    var = ops.mean(centred * centred, axes, keepdims=True)
    return centred / ops.sqrt(var + eps), mean, var


def step(model_name: str, batch: int, normalize):
    """The compiled step program of a model whose layers normalize with ``normalize``."""
    norm.normalize = normalize
    try:
        dk.nn.manual_seed(0)
        model = dk.nn.VGG() if model_name == "vgg" else dk.nn.ResNet()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
        y = one_hot(rng.integers(0, 10, batch), 10)
        graph = StepGraph(model, x.shape, 10)
        at = model_inputs(graph.program, model, input=x, target=y)
    finally:
        norm.normalize = RECORDS
    return graph.program, at


def main(rounds: int = 9, repeats: int = 5) -> None:
    print(f"{rounds} rounds of {repeats} steps each, alternating; float32")
    for model_name in ("vgg", "resnet"):
        for batch in (16, 64):
            sides = {name: step(model_name, batch, fn) for name, fn in
                     (("composite", composite), ("records", RECORDS))}  # fmt: skip
            times = {name: [] for name in sides}
            for _ in range(rounds):
                for name, (program, at) in sides.items():
                    times[name].append(
                        median_time(lambda: program(at, strict=False), repeats=repeats)[0]
                    )
            ratios = [a / b for a, b in zip(times["composite"], times["records"])]
            sizes = {name: len(program) for name, (program, _) in sides.items()}
            print(
                f"{model_name:6s} batch {batch:3d}: separate ops {spread(times['composite'])} "
                f"({sizes['composite']} nodes), records {spread(times['records'])} "
                f"({sizes['records']} nodes), speed-up {statistics.median(ratios):.2f} "
                f"(rounds: {min(ratios):.2f} to {max(ratios):.2f})"
            )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))

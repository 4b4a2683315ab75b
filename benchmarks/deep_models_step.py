"""One float32 training step (forward, backward, SGD update with momentum) of the VGG-style
network and the small ResNet (``diffkit.nn.VGG``, ``diffkit.nn.ResNet``; 1x28x28 MNIST
inputs) in diffkit and in PyTorch eager (CPU, in child processes with 1 and with 2 threads),
at batch 16 and 64: medians over rounds with their spread (min to max), and the ratio
diffkit/PyTorch per round, diffkit and PyTorch alternating. On a loaded machine PyTorch's
2 OpenMP threads wait for each other at every barrier, so both thread counts are timed.

Run: python benchmarks/deep_models_step.py   (PyTorch from the `oracle` extra is optional)
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import diffkit as dk
from common import PAUSE, TorchChild, median_time, spread
from diffkit.train import SGD, StepGraph
from diffkit.train.data import one_hot

MODELS = ("vgg", "resnet")
BATCHES = (16, 64)


def _data(batch: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    return x, rng.integers(0, 10, batch)


def diffkit_step(model_name: str, batch: int):
    dk.nn.manual_seed(0)
    model = dk.nn.VGG() if model_name == "vgg" else dk.nn.ResNet()
    x, labels = _data(batch)
    y = one_hot(labels, 10)
    step = StepGraph(model, x.shape, 10)
    opt = SGD(model, lr=0.01, momentum=0.9)

    def run():
        _, _, grads, stats = step(model, x, y)
        opt.step(grads)
        step.update_statistics(stats)

    return run


def torch_model(model_name: str):
    """The twins of diffkit's defaults (the same layers, names and shapes)."""
    import torch.nn as tnn

    if model_name == "vgg":
        layers, c = [], 1
        for v in (16, 16, "M", 32, 32, "M", 64, "M"):
            if v == "M":
                layers.append(tnn.MaxPool2d(2))
            else:
                layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.BatchNorm2d(v), tnn.ReLU()]
                c = v
        return tnn.Sequential(
            *layers,
            tnn.Flatten(),
            tnn.Linear(64 * 3 * 3, 128),
            tnn.ReLU(),
            tnn.Dropout(0.0),
            tnn.Linear(128, 10),
        )

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample = (
                tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else None
            )

        def forward(self, x):
            out = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
            return (out + (x if self.downsample is None else self.downsample(x))).relu()

    return tnn.Sequential(
        tnn.Conv2d(1, 16, 3, 1, 1, bias=False),
        tnn.BatchNorm2d(16),
        tnn.ReLU(),
        Block(16, 16, 1),
        Block(16, 32, 2),
        Block(32, 64, 2),
        tnn.AdaptiveAvgPool2d(1),
        tnn.Flatten(),
        tnn.Linear(64, 10),
    )


def torch_step(model_name: str, batch: int):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    net = torch_model(model_name)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, labels = _data(batch)
    x, y = torch.tensor(x), torch.tensor(labels)

    def run():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return run


def main(rounds: int = 5, repeats: int = 5) -> None:
    """``rounds`` times, for each model and batch: ``repeats`` diffkit steps (this
    process), then ``repeats`` PyTorch steps in each child; medians over rounds, their
    range, and the median and range of the per-round ratios."""
    cases = [(m, b) for m in MODELS for b in BATCHES]
    steps = {case: diffkit_step(*case) for case in cases}
    try:
        children = [TorchChild("deep_models_step", 1), TorchChild("deep_models_step", 2)]
    except ModuleNotFoundError:
        children = []
        print("PyTorch is not installed (pip install -e '.[oracle]'): diffkit only")
    ours = {case: [] for case in cases}
    theirs = {(case, c.threads): [] for case in cases for c in children}
    for _ in range(rounds):
        for case in cases:
            ours[case].append(median_time(steps[case], repeats=repeats)[0])
            for child in children:
                time.sleep(PAUSE)
                theirs[case, child.threads].append(child.median(case, repeats))
                time.sleep(PAUSE)
    for child in children:
        child.close()
        print(child.version)
    print(f"{rounds} rounds of {repeats} steps each, diffkit and PyTorch alternating; float32")
    for case in cases:
        a = ours[case]
        print(f"{case[0]:6s} batch {case[1]:3d}: diffkit {spread(a)}")
        for child in children:
            b = theirs[case, child.threads]
            ratios = [x / y for x, y in zip(a, b)]
            print(
                f"{'':17s}PyTorch, {child.threads} thread(s) {spread(b)}  ratio diffkit/PyTorch "
                f"{statistics.median(ratios):.2f} (rounds: {min(ratios):.2f} to "
                f"{max(ratios):.2f})"
            )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))

"""One LeNet-5 training step (forward, backward, SGD update; 1x32x32, float32) in diffkit
and in PyTorch (CPU, same thread count), at batch 64 and 256: medians, the ratio
diffkit/PyTorch (target <= 1.5 at batch 256), and the peak memory of a diffkit step.

Run: python benchmarks/lenet_step.py   (PyTorch from the `oracle` extra is optional)
"""

from __future__ import annotations

import tracemalloc

import numpy as np

import diffkit as dk
from common import median_time
from diffkit.train import SGD, StepGraph
from diffkit.train.data import one_hot


def diffkit_step(batch: int):
    rng = np.random.default_rng(0)
    dk.nn.manual_seed(0)
    model = dk.nn.LeNet5()
    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    y = one_hot(rng.integers(0, 10, batch), 10)
    step = StepGraph(model, x.shape, 10)
    opt = SGD(model.named_parameters(), lr=0.01, momentum=0.9)

    def run():
        _, _, grads, _ = step(model, x, y)
        opt.step(grads)

    return run, step.size


def torch_step(batch: int):
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = (
                tnn.Linear(400, 120),
                tnn.Linear(120, 84),
                tnn.Linear(84, 10),
            )

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 32, 32)
    y = torch.randint(0, 10, (batch,))

    def run():
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()

    return run


def main() -> None:
    try:
        import torch

        torch.set_num_threads(2)
        have_torch = True
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        have_torch = False
        print("PyTorch is not installed (pip install -e '.[oracle]'): diffkit only")
    for batch in (64, 256):
        run, size = diffkit_step(batch)
        ours, lo, hi = median_time(run, repeats=30)
        tracemalloc.start()
        run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        line = (
            f"batch {batch:3d}: diffkit median {ours * 1e3:6.2f} ms (min {lo * 1e3:.2f}, max "
            f"{hi * 1e3:.2f}; step graph {size} nodes; peak memory {peak / 2**20:.1f} MiB)"
        )
        if have_torch:
            theirs, _, _ = median_time(torch_step(batch), repeats=30)
            line += f"  PyTorch median {theirs * 1e3:6.2f} ms  ratio {ours / theirs:.2f}"
        print(line)


if __name__ == "__main__":
    main()

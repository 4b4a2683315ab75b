"""One LeNet-5 training step (forward, backward, SGD update; 1x32x32, float32) in diffkit
and in PyTorch (CPU, 2 threads, measured in a child process within the same run), at batch
64 and 256: medians, the ratio diffkit/PyTorch (target <= 1.5 at batch 256), and the peak
memory of a diffkit step.

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


def _torch_medians(batches) -> dict | None:
    """PyTorch's medians, measured in a child process: PyTorch's OpenMP threads keep
    spinning after its steps and would slow whatever runs next in the same process."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; sys.path.insert(0, '.'); import torch; torch.set_num_threads(2);"
        "import lenet_step as b; from common import median_time;"
        f"print(json.dumps({{n: median_time(b.torch_step(n), repeats=30)[0] "
        f"for n in {list(batches)}}}));"
        "print(torch.__version__, torch.get_num_threads())"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=__file__.rsplit("/", 1)[0] or ".").stdout
    except subprocess.CalledProcessError as err:
        if "No module named 'torch'" in err.stderr:
            return None
        raise
    lines = out.strip().splitlines()
    medians = {int(k): v for k, v in json.loads(lines[0]).items()}
    version, threads = lines[1].split()
    _torch_medians.version = f"PyTorch {version}, {threads} threads, in a child process"
    return medians


def main(rounds: int = 3) -> None:
    """Alternate diffkit (this process) and PyTorch (a child process) ``rounds`` times and
    print each round and the medians over rounds: PyTorch's own time varies between
    processes on this machine (seen: 9.5 to 16.5 ms at batch 256)."""
    import statistics

    batches = (64, 256)
    ours = {b: [] for b in batches}
    theirs = {b: [] for b in batches}
    sizes, peaks = {}, {}
    for r in range(rounds):
        for batch in batches:
            run, sizes[batch] = diffkit_step(batch)
            ours[batch].append(median_time(run, repeats=30)[0])
            if r == 0:
                tracemalloc.start()
                run()
                peaks[batch] = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        child = _torch_medians(batches)
        if child is None:
            print("PyTorch is not installed (pip install -e '.[oracle]'): diffkit only")
            theirs = None
        else:
            for batch in batches:
                theirs[batch].append(child[batch])
        line = "  ".join(f"batch {b}: diffkit {ours[b][-1] * 1e3:.2f} ms" +
                         (f", PyTorch {theirs[b][-1] * 1e3:.2f} ms" if theirs else "")
                         for b in batches)
        print(f"round {r + 1}: {line}")
        if theirs is None:
            break
    if theirs:
        print(_torch_medians.version)
    for batch in batches:
        med = statistics.median(ours[batch])
        line = (f"batch {batch:3d}: diffkit median {med * 1e3:6.2f} ms (step graph "
                f"{sizes[batch]} nodes; peak memory {peaks[batch] / 2**20:.1f} MiB)")
        if theirs:
            t = statistics.median(theirs[batch])
            line += f"  PyTorch median {t * 1e3:6.2f} ms  ratio {med / t:.2f}"
        print(line)


if __name__ == "__main__":
    main()

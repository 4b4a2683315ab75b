"""One LeNet-5 training step (forward, backward, SGD update; 1x32x32, float32) in diffkit
and in PyTorch (CPU, 2 threads, measured in a child process within the same run), at batch
1, 16, 64 and 256: medians, the ratio diffkit/PyTorch (targets: <= 1.0 at batch 1 and 16,
<= 0.8 at 64 and 256), the most memory diffkit's live arrays take during a step
(tracemalloc), and for both sides the resident memory the first steps add at their peak
(each in a fresh process).

Run: python benchmarks/lenet_step.py   (PyTorch from the `oracle` extra is optional)
"""

from __future__ import annotations

import tracemalloc

import numpy as np

import diffkit as dk
from common import PAUSE, TorchChild, median_time
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


MEMORY_CODE = """
import gc, sys
sys.path.insert(0, '.')
import lenet_step as b
side, batch = sys.argv[1], int(sys.argv[2])
if side == 'torch':
    import torch
    torch.set_num_threads(2)
    run = b.torch_step(batch)
else:
    run = b.diffkit_step(batch)[0]
gc.collect()
with open('/proc/self/clear_refs', 'w') as f:
    f.write('5')  # resets the peak resident size (VmHWM)
status = lambda key: int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1])
before = status('VmRSS:')
for _ in range(3):
    run()
print((status('VmHWM:') - before) * 1024)
"""


def step_memory(side: str, batch: int) -> int | None:
    """The resident memory the first three training steps add at their peak (bytes): peak
    RSS during the steps minus RSS before them, in a fresh process (Linux only; None
    elsewhere or if the side cannot run). Both sides are measured alike; diffkit's cache of
    freed blocks counts, as it stays resident."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        return None
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_CODE, side, str(batch)],
        capture_output=True,
        text=True,
        cwd=__file__.rsplit("/", 1)[0] or ".",
    )
    try:
        return int(proc.stdout.split()[-1])
    except (IndexError, ValueError):
        return None


def main(rounds: int = 9, repeats: int = 10) -> None:
    """``rounds`` times, for each batch size: ``repeats`` diffkit steps (this process),
    then ``repeats`` PyTorch steps (the child). Prints the medians over rounds and the
    median of the per-round ratios."""
    import statistics
    import time

    batches = (1, 16, 64, 256)
    steps, sizes, peaks = {}, {}, {}
    for batch in batches:
        steps[batch], sizes[batch] = diffkit_step(batch)
        tracemalloc.start()
        steps[batch]()
        peaks[batch] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    try:
        child = TorchChild("lenet_step", 2)
    except ModuleNotFoundError:
        child = None
        print("PyTorch is not installed (pip install -e '.[oracle]'): diffkit only")
    ours = {b: [] for b in batches}
    theirs = {b: [] for b in batches}
    for _ in range(rounds):
        for batch in batches:
            ours[batch].append(median_time(steps[batch], repeats=repeats)[0])
            if child is not None:
                time.sleep(PAUSE)  # let the idle threads of both sides stop spinning
                theirs[batch].append(child.median((batch,), repeats))
                time.sleep(PAUSE)
    if child is not None:
        child.close()
        print(child.version)
    memory = {
        b: (step_memory("diffkit", b), step_memory("torch", b) if child else None) for b in batches
    }
    print(f"{rounds} rounds of {repeats} steps each, diffkit and PyTorch alternating")
    for batch in batches:
        med = statistics.median(ours[batch])
        line = (
            f"batch {batch:3d}: diffkit median {med * 1e3:6.2f} ms (step graph "
            f"{sizes[batch]} nodes; live arrays at most {peaks[batch] / 2**20:.1f} MiB)"
        )
        ours_rss, theirs_rss = memory[batch]
        if child is not None:
            t = statistics.median(theirs[batch])
            ratios = [a / b for a, b in zip(ours[batch], theirs[batch])]
            line += (
                f"  PyTorch median {t * 1e3:6.2f} ms  ratio {statistics.median(ratios):.2f}"
                f" (rounds: {min(ratios):.2f} to {max(ratios):.2f})"
            )
        print(line)
        if ours_rss is not None:
            mem = f"           resident memory a step adds: diffkit {ours_rss / 2**20:.1f} MiB"
            if theirs_rss is not None:
                mem += f", PyTorch {theirs_rss / 2**20:.1f} MiB"
            print(mem)


if __name__ == "__main__":
    main()

"""`diffkit train` with its defaults against the same training written in PyTorch: LeNet-5
on the bundled digits (32×32), SGD with momentum 0.9 and weight decay 5e-4, learning rate
0.05 on a cosine schedule, batch 32, random shifts of up to 2 pixels, 30 epochs, test
accuracy after every epoch. Both read the same arrays and draw the same shuffles and
shifts (diffkit's data code feeds both); PyTorch runs in a child process with 2 threads.
Rounds alternate between the two; prints the medians, their ratio and the accuracies.

Run: python benchmarks/train_wall_time.py [--rounds N] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

TORCH_CODE = r"""
import json, math, sys, time
import numpy as np, torch, torch.nn as tnn, torch.nn.functional as F
from diffkit.train import load_digits
from diffkit.train.data import batches, random_shift
torch.set_num_threads(2)
epochs = int(sys.argv[1])
train, test = load_digits()

class LeNet5(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), tnn.Linear(84, 10)
    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

torch.manual_seed(0)
net = LeNet5()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
rng = np.random.default_rng(0)
test_x, test_y = torch.from_numpy(test.images), torch.from_numpy(test.labels)
start = time.perf_counter()
for epoch in range(epochs):
    for g in opt.param_groups:
        g["lr"] = 0.05 * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    net.train()
    for idx in batches(len(train), 32, rng):
        images = random_shift(train.images[idx], rng, 2)
        opt.zero_grad()
        logits = net(torch.from_numpy(images))
        F.cross_entropy(logits, torch.from_numpy(train.labels[idx])).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(test_x).argmax(1) == test_y).float().mean().item()
print(json.dumps({"seconds": time.perf_counter() - start, "test_acc": acc}))
"""


def diffkit_run(epochs: int) -> dict:
    from diffkit.train import TrainConfig, run

    start = time.perf_counter()
    result = run(TrainConfig(epochs=epochs), progress=False)
    return {"seconds": time.perf_counter() - start, "test_acc": result.final_test_accuracy}


def torch_run(epochs: int) -> dict | None:
    done = subprocess.run(
        [sys.executable, "-c", TORCH_CODE, str(epochs)], capture_output=True, text=True
    )
    if done.returncode != 0:
        if "No module named 'torch'" in done.stderr:
            return None
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(rounds: int = 3, epochs: int = 30) -> None:
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(diffkit_run(epochs))
        other = torch_run(epochs)
        if other is None:
            print("PyTorch is not installed (the oracle extra): diffkit only")
        else:
            theirs.append(other)
    t = [r["seconds"] for r in ours]
    print(
        f"diffkit train (defaults, {epochs} epochs): median {statistics.median(t):.2f} s over "
        f"{rounds} rounds (range {min(t):.2f}-{max(t):.2f}), test accuracy "
        f"{100 * ours[-1]['test_acc']:.2f}%"
    )
    if theirs:
        p = [r["seconds"] for r in theirs]
        print(
            f"PyTorch, the same training:   median {statistics.median(p):.2f} s "
            f"(range {min(p):.2f}-{max(p):.2f}), test accuracy "
            f"{100 * statistics.median(r['test_acc'] for r in theirs):.2f}% (median)"
        )
        print(
            f"wall time ratio diffkit / PyTorch = {statistics.median(t) / statistics.median(p):.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    main(args.rounds, args.epochs)

"""Dilated, grouped and depthwise convolutions, forward and backward (the value of
sum(conv(x) * ct) and its gradients for the input, the weight and the bias; float32,
batch 16, 32x32 images): diffkit's compiled loops against its numpy path, and against
PyTorch eager (CPU, 2 threads, in a child process), alternating in rounds. Prints each
side's median over rounds with its spread (min to max) and the medians of the per-round
ratios.

Run: python benchmarks/conv_options.py [--quick]   (PyTorch from the `oracle` extra is
optional)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

import numpy as np

import diffkit as dk
from common import median_time
from diffkit.ops import native

BATCH, SIZE = 16, 32

#: name -> (in channels, out channels, kernel, keyword arguments of conv2d)
CONFIGS = {
    "dilated 3x3 (d=2), 16->32": (16, 32, 3, {"dilation": 2, "padding": 2}),
    "dilated 3x3 (d=2), 32->32, grouped 4": (32, 32, 3, {"dilation": 2, "padding": 2, "groups": 4}),
    "grouped 3x3 (g=4), 32->64": (32, 64, 3, {"padding": 1, "groups": 4}),
    "depthwise 3x3, 32 channels": (32, 32, 3, {"padding": 1, "groups": 32}),
    "depthwise 5x5, 64 channels": (64, 64, 5, {"padding": 2, "groups": 64}),
}


def _arrays(cin, cout, k, kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, cin, SIZE, SIZE)).astype(np.float32)
    w = rng.standard_normal((cout, cin // kwargs.get("groups", 1), k, k)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, w, b


def diffkit_run(name: str):
    """One forward and backward pass as a compiled program."""
    cin, cout, k, kwargs = CONFIGS[name]
    x, w, b = _arrays(cin, cout, k, kwargs)
    nodes = [dk.variable(n, a.shape) for n, a in zip("xwb", (x, w, b))]
    out = dk.conv2d(*nodes, **kwargs)
    ct = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    loss = dk.sum(out * dk.const(ct))
    grads = dk.grad_graph(loss)
    program = dk.compile([loss, grads["x"], grads["w"], grads["b"]])
    at = {"x": x, "w": w, "b": b}
    return lambda: program(at)


def torch_run(name: str):
    import torch
    import torch.nn.functional as F

    cin, cout, k, kwargs = CONFIGS[name]
    x, w, b = (torch.tensor(a, requires_grad=True) for a in _arrays(cin, cout, k, kwargs))
    out_shape = F.conv2d(x, w, b, **kwargs).shape
    ct = torch.tensor(np.random.default_rng(1).standard_normal(out_shape).astype(np.float32))

    def run():
        x.grad = w.grad = b.grad = None
        (F.conv2d(x, w, b, **kwargs) * ct).sum().backward()

    return run


CHILD = (
    "import json, sys; sys.path.insert(0, '.'); import torch; torch.set_num_threads(2);"
    "import conv_options as b; from common import median_time;"
    "print(torch.__version__, torch.get_num_threads(), flush=True); runs = {}\n"
    "for line in sys.stdin:\n"
    "    name, repeats = json.loads(line)\n"
    "    run = runs.setdefault(name, b.torch_run(name))\n"
    "    print(json.dumps(median_time(run, repeats=repeats)[0]), flush=True)\n"
)


def _torch_child():
    """PyTorch in a child process (its spinning OpenMP threads stay out of this one), or
    None without PyTorch."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=__file__.rsplit("/", 1)[0] or ".",
    )
    header = proc.stdout.readline().split()
    if len(header) != 2:
        proc.wait()
        return None, None
    return proc, f"PyTorch {header[0]}, {header[1]} threads, in a child process"


def _torch_median(proc, name: str, repeats: int) -> float:
    proc.stdin.write(json.dumps([name, repeats]) + "\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


PAUSE = 0.2  # idle BLAS/OpenMP threads spin for about 0.1 s after a product


def _summary(times) -> str:
    return (
        f"{statistics.median(times) * 1e3:8.2f} ms ({min(times) * 1e3:.2f}-{max(times) * 1e3:.2f})"
    )


def main(rounds: int = 7, repeats: int = 5) -> None:
    """``rounds`` times, for each configuration: ``repeats`` runs on the compiled loops,
    on the numpy path, then in PyTorch. Medians over rounds, spreads, per-round ratios."""
    if not (native.available() and native._DIRECT):
        print("the compiled direct convolution is not available here: numpy path only")
    runs = {name: diffkit_run(name) for name in CONFIGS}
    proc, version = _torch_child()
    print(version or "PyTorch is not installed (pip install -e '.[oracle]'): diffkit only")
    times = {name: {"compiled": [], "numpy": [], "torch": []} for name in CONFIGS}
    for _ in range(rounds):
        for name, run in runs.items():
            with native.use_native(True):
                times[name]["compiled"].append(median_time(run, repeats=repeats)[0])
            with native.use_native(False):
                times[name]["numpy"].append(median_time(run, repeats=repeats)[0])
            if proc is not None:
                time.sleep(PAUSE)
                times[name]["torch"].append(_torch_median(proc, name, repeats))
                time.sleep(PAUSE)
    if proc is not None:
        proc.stdin.close()
        proc.wait()
    print(f"float32, batch {BATCH}, {SIZE}x{SIZE}, forward + backward (x, w, b gradients);")
    print(f"medians over {rounds} rounds of {repeats} runs (min-max over rounds)")
    for name, t in times.items():
        print(f"\n{name}")
        for side in ("compiled", "numpy", "torch"):
            if t[side]:
                print(f"  {side:9s} {_summary(t[side])}")
        vs_numpy = [c / n for c, n in zip(t["compiled"], t["numpy"])]
        print(
            f"  compiled / numpy   {statistics.median(vs_numpy):.2f} "
            f"({min(vs_numpy):.2f}-{max(vs_numpy):.2f})"
        )
        if t["torch"]:
            vs_torch = [c / p for c, p in zip(t["compiled"], t["torch"])]
            print(
                f"  compiled / PyTorch {statistics.median(vs_torch):.2f} "
                f"({min(vs_torch):.2f}-{max(vs_torch):.2f})"
            )


if __name__ == "__main__":
    if "--quick" in sys.argv:
        main(rounds=2, repeats=2)
    else:
        main()

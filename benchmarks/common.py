"""What the benchmarks share: medians over repeats (see diffkit.timing), PyTorch timed in
a child process, and the "median (min to max)" form of a list of times."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from diffkit.timing import median_time

__all__ = ["median_time", "TorchChild", "spread", "PAUSE"]

#: seconds between the two sides of a round: the idle BLAS/OpenMP threads of the side that
#: ran stop spinning, which would take a core from the other side
PAUSE = 0.3


def spread(times: list, unit: float = 1e3, digits: int = 1) -> str:
    """``median (min to max)`` of ``times`` in milliseconds (``unit`` 1e3)."""
    return (
        f"{statistics.median(times) * unit:.{digits}f} ms ({min(times) * unit:.{digits}f} to "
        f"{max(times) * unit:.{digits}f})"
    )


class TorchChild:
    """PyTorch in a child process that times a step on request: its OpenMP threads keep
    spinning after its steps and would slow whatever runs next in the same process. The
    parent alternates short slices of diffkit and PyTorch, so that both see the same state
    of the shared machine, whose speed drifts over seconds.

    The child imports the benchmark ``module`` (a file of this directory) and times
    ``module.torch_step(*case)``, built once per case.
    """

    CODE = (
        "import json, sys; sys.path.insert(0, '.'); import torch;"
        "torch.set_num_threads(int(sys.argv[2])); import importlib;"
        "from common import median_time; b = importlib.import_module(sys.argv[1]);"
        "print(torch.__version__, torch.get_num_threads(), flush=True); steps = {}\n"
        "for line in sys.stdin:\n"
        "    case, repeats = json.loads(line)\n"
        "    run = steps.setdefault(json.dumps(case), b.torch_step(*case))\n"
        "    print(json.dumps(median_time(run, repeats=repeats)[0]), flush=True)\n"
    )

    def __init__(self, module: str, threads: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.CODE, module, str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent,
        )
        header = self.proc.stdout.readline().split()
        if len(header) != 2:
            err = self.proc.stderr.read()
            self.proc.wait()
            if "No module named 'torch'" in err:
                raise ModuleNotFoundError("torch")
            raise RuntimeError(f"the PyTorch child process failed:\n{err}")
        self.threads = int(header[1])
        self.version = f"PyTorch {header[0]}, {self.threads} thread(s), in a child process"

    def median(self, case: tuple, repeats: int) -> float:
        """The median seconds of ``repeats`` runs of ``torch_step(*case)``."""
        self.proc.stdin.write(json.dumps([list(case), repeats]) + "\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()

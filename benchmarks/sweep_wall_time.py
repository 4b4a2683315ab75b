"""Wall time of the normalization study, quick and full, serially against 2 worker
processes, in alternating rounds (each round runs both, in turn; medians and ranges).

The study trains LeNet-5 for every normalization, learning rate and seed; each run
is a task. Usage: python sweep_wall_time.py [--rounds N] [--full-rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffkit.demo import load_study  # noqa: E402
from diffkit.tasks import executor  # noqa: E402


def wall_time(quick: bool, workers: int) -> float:
    study = load_study("normalization")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        with executor(workers) as ex:  # the pool's start-up is part of the cost
            study.main(Path(out) / "normalization", quick=quick, executor=ex)
        return time.perf_counter() - start


def compare(quick: bool, rounds: int) -> None:
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(rounds):
        for workers in (1, 2):
            times[workers].append(wall_time(quick, workers))
    mode = "quick" if quick else "full"
    med = {w: statistics.median(t) for w, t in times.items()}
    for w, t in times.items():
        print(
            f"normalization study, {mode}, {'serial' if w == 1 else f'{w} workers':10s}: "
            f"median {med[w]:7.2f} s over {rounds} rounds (range {min(t):.2f}–{max(t):.2f} s)"
        )
    print(f"  speed-up with 2 workers: {med[1] / med[2]:.2f}×")


def main(rounds: int = 3, full_rounds: int = 1) -> None:
    compare(True, rounds)
    if full_rounds:
        compare(False, full_rounds)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=3, help="rounds in quick mode")
    p.add_argument("--full-rounds", type=int, default=1, help="rounds in full mode (0: skip)")
    a = p.parse_args()
    main(a.rounds, a.full_rounds)

"""Timing helpers for the benchmarks: medians over repeats, printed with their spread."""

from __future__ import annotations

import statistics
import time


def median_time(fn, repeats: int = 20, warmup: int = 3) -> tuple[float, float, float]:
    """(median, min, max) seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)

"""Timing for studies and benchmarks: the median of repeated runs after a warm-up."""

from __future__ import annotations

import statistics
import time
from typing import Callable

__all__ = ["median_time"]


def median_time(
    fn: Callable[[], object], repeats: int = 20, warmup: int = 1
) -> tuple[float, float, float]:
    """(median, min, max) seconds of ``fn()`` over ``repeats`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)

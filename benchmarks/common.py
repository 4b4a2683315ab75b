"""Timing helper for the benchmarks (medians over repeats, see diffkit.timing)."""

from diffkit.timing import median_time

__all__ = ["median_time"]

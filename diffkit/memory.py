"""The memory of compiled programs: a caching allocator for numpy's array data, which a
:class:`~diffkit.ir.Program` holding large values installs while it runs.

A training step allocates and frees arrays of the same sizes on every batch (LeNet-5's
first convolution writes 4.8 MB at batch 256, and its gradient as much again). glibc's
``malloc`` serves such blocks with fresh memory mappings, or returns them to the system
when they are freed, so every step would pay again for the kernel to map and zero-fill
each page: about a third of a LeNet-5 step's time (``benchmarks/lenet_step.py``).

The cache (compiled loops in ``diffkit/_native.c``) keeps each freed block of at least
64 KiB on a list for its exact size, and hands it to the next request of that size, so
after its first run a step takes no memory from the system. It is installed through
numpy's allocation-handler context variable (NEP 49) for the duration of the program's
run only: arrays allocated elsewhere, before, after, or in other threads, use numpy's
default allocator, and nothing about the process's ``malloc`` changes. Arrays remember
their handler, so an array the program returned goes back to the cache when it is freed.
At most :func:`cache_info`\\ ``().limit`` bytes (1 GiB by default) are kept;
:func:`release_cache` frees them, and can set another limit. ``DIFFKIT_CACHE=0`` in the
environment turns the cache off.
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

__all__ = [
    "owned_memory",
    "cache_info",
    "release_cache",
    "CacheInfo",
    "CACHE_MIN",
    "measured_peak",
]

# blocks of at least this many bytes are cached (as _native.c's CACHE_MIN); smaller ones
# come from malloc's own free lists, which do not go back to the system
CACHE_MIN = 64 * 1024


def _load():
    if os.environ.get("DIFFKIT_CACHE", "1") == "0":
        return None
    try:
        from . import _native
    except ImportError:
        return None
    try:
        previous = _native.swap_handler(None)  # numpy >= 1.22 has allocation handlers
        _native.swap_handler(previous)
    except (AttributeError, RuntimeError):
        return None
    return _native


_NATIVE = _load()


class CacheInfo(NamedTuple):
    """The cache's state: bytes it holds, requests of at least ``CACHE_MIN`` bytes it served
    from its lists (hits) and from ``malloc`` (misses), and its limit in bytes."""

    held: int
    hits: int
    misses: int
    limit: int


def available() -> bool:
    """Whether the cache is built and on (see the module's description)."""
    return _NATIVE is not None


@contextlib.contextmanager
def owned_memory():
    """Within the block, numpy allocates array data from the cache (in this context only);
    without the compiled extension, or with ``DIFFKIT_CACHE=0``, it does nothing."""
    if _NATIVE is None:
        yield
        return
    previous = _NATIVE.swap_handler(None)
    try:
        yield
    finally:
        _NATIVE.swap_handler(previous)


def cache_info() -> CacheInfo:
    """The cache's :class:`CacheInfo` (all zero when it is not available)."""
    if _NATIVE is None:
        return CacheInfo(0, 0, 0, 0)
    return CacheInfo(*_NATIVE.cache_info())


def release_cache(limit: int | None = None) -> None:
    """Free every block the cache holds; with ``limit``, keep at most that many bytes from
    now on (0 turns caching off: blocks are freed as numpy frees them)."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ValueError(f"release_cache: limit must be a whole number of bytes, got {limit!r}")
    if _NATIVE is not None:
        _NATIVE.cache_release(-1 if limit is None else limit)


def measured_peak(run, *args, **kwargs) -> tuple[int, object]:
    """``(peak bytes, result)`` of ``run(*args, **kwargs)``: the most bytes allocated at
    once during the call beyond those held before it, as Python's ``tracemalloc`` sees
    them (numpy reports every array's data to it, from the cache as from ``malloc``).
    Tracing is started for the call if it was off, and stopped again.

    >>> import numpy as np
    >>> peak, _ = measured_peak(np.ones, 100_000)
    >>> 800_000 <= peak < 900_000
    True
    """
    import tracemalloc

    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = run(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if started:
            tracemalloc.stop()
    return peak, result

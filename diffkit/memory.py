"""Keep freed memory in the process for reuse, as deep-learning frameworks' caching
allocators do.

A training step allocates and frees the same large arrays on every batch (the unfolded
windows of a convolution are 20 MB at batch 256). By default glibc's ``malloc`` serves
large blocks with fresh memory mappings and returns freed memory at the top of the heap
to the system, so every step pays again for the kernel to map and zero-fill each page:
thousands of page faults per step, about a quarter of a LeNet-5 step's time
(``benchmarks/lenet_step.py``). :func:`retain_freed_memory` raises glibc's mmap and trim
thresholds, so freed blocks stay in the heap and the next step reuses them.

It changes the whole process's allocator settings, once; ``DIFFKIT_RETAIN_MEMORY=0`` in
the environment turns it off. On a C library other than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["retain_freed_memory"]

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc accepts mmap thresholds up to 32 MiB on 64-bit systems
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 512 * 2**20

_state: dict[str, bool] = {}


def retain_freed_memory() -> bool:
    """Raise glibc's mmap threshold to 32 MiB and its trim threshold to 512 MiB, once per
    process, so that blocks freed by one training step are reused by the next.

    Returns:
        True if the settings are in effect, False if they were turned off with
        ``DIFFKIT_RETAIN_MEMORY=0`` or the C library is not glibc.
    """
    if "applied" in _state:
        return _state["applied"]
    applied = False
    if os.environ.get("DIFFKIT_RETAIN_MEMORY", "1") != "0":
        applied = _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(
            _M_TRIM_THRESHOLD, TRIM_THRESHOLD
        )
    _state["applied"] = applied
    return applied


def _mallopt(param: int, value: int) -> bool:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # present in glibc only
    except (OSError, AttributeError, TypeError):
        return False
    del gnu_get_libc_version
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(param, value) == 1

"""Threads of the compiled loops, and the BLAS library's threads while they run.

The compiled image kernels (:mod:`diffkit.ops.native`) can split a batch between
:func:`threads` threads (``DIFFKIT_THREADS``; by default as many as the cores this process
may run on). numpy's BLAS (OpenBLAS) has its own pool, whose threads keep spinning for a
while after each matrix product: where products and kernels alternate, the two pools
would fight over the same cores (LeNet-5's step at batch 256 on 2 cores took longer on two
threads than on one). So the cores go to one pool or the other, per program: a compiled
program holding ops whose compiled loops do the heavy arithmetic (direct convolution,
``Op.threaded``) runs within :func:`parallel_kernels`, where the kernels use all
:func:`threads` and OpenBLAS is set to one thread. Any other program leaves BLAS alone and
runs the kernels on one thread (a convolution through im2col and a matrix product, for
example). Where numpy's BLAS is not OpenBLAS (or its library cannot be found), BLAS is
left alone.

OpenBLAS's thread count belongs to the whole process, so the limit is reference-counted
under a lock: the first thread to enter :func:`parallel_kernels` saves the count and sets
1, the last to leave puts the saved count back, whatever order threads enter and leave
in (while any is inside, the limit applies to BLAS calls from every thread). A child
process forked meanwhile starts with no holder and its BLAS as it was before the limit.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import os
import threading

__all__ = ["threads", "kernel_threads", "parallel_kernels", "blas_threads"]

# (setter, getter) symbol names of OpenBLAS builds: numpy's wheels bundle scipy-openblas
_OPENBLAS_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)
_blas: dict = {}
# whether the kernels called in this context may use several threads
_PARALLEL = contextvars.ContextVar("diffkit_parallel_kernels", default=False)


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_CORES = _cores()  # the cores this process may run on, read once


def threads() -> int:
    """How many threads the compiled loops share a batch between: ``DIFFKIT_THREADS``, or
    the number of cores this process may run on."""
    value = os.environ.get("DIFFKIT_THREADS", "").strip()
    if value.lstrip("-").isdigit():
        return max(1, int(value))
    return _CORES  # unset, or not a whole number


def _openblas():
    """(set, get) of the OpenBLAS numpy loaded, or None."""
    if "fns" in _blas:
        return _blas["fns"]
    fns = None
    try:
        import numpy  # noqa: F401  (loads its BLAS)

        with open("/proc/self/maps") as maps:  # Linux: the libraries this process loaded
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_SYMBOLS:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype = (ctypes.c_int,), None
                getter.argtypes, getter.restype = (), ctypes.c_int
                fns = (setter, getter)
                break
        if fns:
            break
    _blas["fns"] = fns
    return fns


def blas_threads() -> int | None:
    """How many threads numpy's OpenBLAS uses now (None if it is not found)."""
    fns = _openblas()
    return None if fns is None else int(fns[1]())


def kernel_threads() -> int:
    """How many threads a compiled loop called now may use: :func:`threads` within
    :func:`parallel_kernels` (in this thread), else 1."""
    return threads() if _PARALLEL.get() else 1


# the process-wide BLAS limit: how many parallel_kernels blocks each thread is in (by
# thread id), and the count BLAS had before the first of them; changed under _LIMIT_LOCK
_LIMIT_LOCK = threading.Lock()
_holders: dict[int, int] = {}
_saved: list = [None]


def _acquire_blas_limit(fns) -> None:
    me = threading.get_ident()
    with _LIMIT_LOCK:
        if not _holders:
            _saved[0] = int(fns[1]())
            fns[0](1)
        _holders[me] = _holders.get(me, 0) + 1


def _release_blas_limit(fns) -> None:
    me = threading.get_ident()
    with _LIMIT_LOCK:
        left = _holders.get(me, 0) - 1
        if left > 0:
            _holders[me] = left
            return
        _holders.pop(me, None)
        if not _holders and _saved[0] is not None:
            fns[0](_saved[0])
            _saved[0] = None


def _after_fork_in_child() -> None:
    """In a child after fork only the forking thread runs: the lock may have been held by
    a thread that did not come along, and the other holders will never leave."""
    global _LIMIT_LOCK
    _LIMIT_LOCK = threading.Lock()
    me = threading.get_ident()
    mine = _holders.get(me, 0)
    _holders.clear()
    if mine:
        _holders[me] = mine
    elif _saved[0] is not None:
        fns = _blas.get("fns")
        if fns is not None:
            fns[0](_saved[0])
        _saved[0] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def parallel_kernels():
    """Within the block (in this thread), the compiled loops use all :func:`threads` and
    numpy's OpenBLAS runs on one thread (see the module's description)."""
    if threads() == 1:
        yield
        return
    fns = _openblas()
    token = _PARALLEL.set(True)
    if fns is not None:
        _acquire_blas_limit(fns)
    try:
        yield
    finally:
        if fns is not None:
            _release_blas_limit(fns)
        _PARALLEL.reset(token)

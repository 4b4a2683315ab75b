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

import numpy as np

__all__ = [
    "owned_memory",
    "cache_info",
    "release_cache",
    "CacheInfo",
    "CACHE_MIN",
    "measured_peak",
    "held_for_backward",
    "SavedTensorMeter",
    "step_rss",
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


# ---- measuring a run's memory: diffkit's values, PyTorch's saved tensors, the process ------


def held_for_backward(plan, seeds) -> np.ndarray:
    """Of a gradient program's :class:`~diffkit.ir.schedule.MemoryPlan`, the bytes of the
    values computed from the primal inputs alone (forward values, kept or recomputed) and
    not from the cotangent ``seeds`` (the nodes the gradient was seeded with), one entry
    per op: what the backward pass holds of the forward pass, as PyTorch's saved tensors.

    A ``recompute_after(x, dep)`` counts as ``x``: ``dep`` only orders the schedule.
    """
    tainted = {id(s) for s in seeds}
    for node in plan.ops:
        ins = node.inputs[:1] if node.op.name == "recompute_after" else node.inputs
        if any(id(i) in tainted for i in ins):
            tainted.add(id(node))
    return np.asarray(plan.timeline_of(lambda node: id(node) not in tainted), dtype=np.int64)


class _Held:
    """A tensor saved for backward, counted while the autograd graph holds it."""

    __slots__ = ("meter", "key", "nbytes", "tensor")

    def __init__(self, meter, key, nbytes, tensor):
        self.meter, self.key, self.nbytes, self.tensor = meter, key, nbytes, tensor

    def __del__(self):
        self.meter._release(self.key, self.nbytes)


class SavedTensorMeter:
    """The bytes PyTorch's autograd holds for the backward pass, from
    ``torch.autograd.graph.saved_tensors_hooks``: each storage counted once while any
    saved tensor refers to it, parameters (``exclude``) not at all; ``peak`` is the most
    held at once. Use it as a context around the forward and backward pass.
    """

    def __init__(self, exclude=()):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.count: dict = {}
        self.current = 0
        self.peak = 0
        self._hooks = None

    def _pack(self, tensor):
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key in self.exclude:
            return tensor
        if self.count.get(key, 0) == 0:
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
        self.count[key] = self.count.get(key, 0) + 1
        return _Held(self, key, storage.nbytes(), tensor)

    @staticmethod
    def _unpack(held):
        return held.tensor if isinstance(held, _Held) else held

    def _release(self, key, nbytes):
        self.count[key] -= 1
        if self.count[key] == 0:
            del self.count[key]
            self.current -= nbytes

    def __enter__(self):
        import torch

        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self._hooks.__exit__(*exc)
        return False


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _child(path: str, function: str, args: list) -> dict:
    """In a fresh process: ``run = function(*args)`` from the script at ``path``; one warm
    run; then the resident set's high-water mark of a second run above the resident set
    before it (the process's freed memory returned to the system first)."""
    import ctypes
    import gc
    import importlib.util

    spec = importlib.util.spec_from_file_location("_measured", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = getattr(module, function)(*args)
    run()
    reset = getattr(run, "reset", None)
    if reset is not None:
        reset()  # what the warm run left that the measured one makes anew
    gc.collect()
    release_cache()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    run()
    return {"rss_step": (_status_kib("VmHWM") - before) * 1024, "rss_before": before * 1024}


def step_rss(path: str, function: str, *args, timeout: float = 600) -> int | None:
    """The most resident memory (bytes) one call of ``run = function(*args)`` adds, where
    ``function`` is a setup function of the script at ``path``, measured in a fresh Python
    process on Linux (``/proc``): every allocation counts, numpy's, PyTorch's, malloc's
    own. ``run`` is called once before (warm); ``run.reset()``, where it exists, then drops
    what that call left (a model's gradients). None where the process cannot be measured so.
    """
    import json
    import subprocess
    import sys

    if not os.path.exists("/proc/self/clear_refs"):
        return None
    code = (
        "import json, sys\nfrom diffkit.memory import _child\n"
        "print(json.dumps(_child(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path), function, json.dumps(list(args))],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return int(json.loads(done.stdout.strip().splitlines()[-1])["rss_step"])
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError, OSError):
        return None

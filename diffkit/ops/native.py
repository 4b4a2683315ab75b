"""The compiled loops of the image ops (``diffkit/_native.c``): their addresses are found
through ctypes, and the extension's ``run_kernel`` runs them on the kernels' threads.

Each function here returns None when it does not apply: the extension was not built (no
C compiler at install), it is switched off (``DIFFKIT_NATIVE=0`` in the environment, or
:func:`use_native`), or the arrays are not float32/float64 of one dtype (and, for the
direct convolution, the CPU lacks AVX2 and FMA). The caller then runs its numpy
version, which computes the same thing and stays the reference. So does an array of no
entries (a batch of 0, no channels, an empty image, or an output of no entries): the
compiled loops only ever see arrays that hold something.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

import numpy as np

from .. import parallel

__all__ = [
    "available",
    "enabled",
    "use_native",
    "im2col",
    "col2im",
    "max_pool_2x2",
    "max_pool_backward",
    "direct_applies",
    "conv_direct",
    "conv_direct_weight_grad",
    "conv_direct_input_grad",
]

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


def _load():
    """The extension module and its library through ctypes, or (None, None)."""
    try:
        from .. import _native
    except ImportError:
        return None, None
    try:
        lib = ctypes.CDLL(_native.__file__)
        for suffix in _SUFFIX.values():
            for name in ("im2col", "col2im", "max_pool_2x2", "max_pool_backward"):
                getattr(lib, f"{name}_{suffix}").restype = None
        _native.run_kernel  # noqa: B018  (an extension built from this source)
        lib.conv_direct_supported.restype = ctypes.c_int
        if lib.conv_direct_supported():
            for suffix in _SUFFIX.values():
                for name in ("conv_direct", "conv_direct_wgrad", "conv_direct_igrad"):
                    getattr(lib, f"{name}_{suffix}").restype = None
    except (OSError, AttributeError):
        return None, None
    return _native, lib


_MODULE, _LIB = _load()
_state = {"on": _LIB is not None and os.environ.get("DIFFKIT_NATIVE", "1") != "0"}
# the direct convolution: float32 and float64, strides up to DIRECT_MAX_STRIDE (a
# sample's buffer holds stride x stride phase planes per channel), windows of at most this
# many entries (C/G·KH·KW, as _native.c's DIRECT_MAX_K) and at most this many output channels
# per group (its scratch holds O x K partial sums a vector wide), on a CPU with AVX2 and FMA
DIRECT_MAX_WINDOW = 1024
DIRECT_MAX_STRIDE = 4
DIRECT_MAX_OUT = 256
DIRECT_MAX_TOTAL_OUT = 2048  # output channels of all groups (the scratch holds them)
_MR = 4  # output channels per register block of the kernels (_native.c's MR)
_DIRECT = _LIB is not None and bool(_LIB.conv_direct_supported())


# a kernel shares its batch between threads when it has at least this many input entries
# per thread (below, handing work to a thread costs more than it saves)
PARALLEL_MIN_ENTRIES = 1 << 12
MAX_THREADS = 64  # the calling thread and _native.c's MAX_WORKERS
MAX_RANGES = 64  # _native.c's MAX_RANGES
# ranges per thread: the threads claim them as they come free, so that on a loaded
# machine a thread the system does not run leaves its share to those it does
SPLIT = 4


def threads() -> int:
    """How many threads a kernel called now may use (:func:`diffkit.parallel.kernel_threads`:
    all cores within a program that runs direct convolutions, else one)."""
    return parallel.kernel_threads()


def _ranges(n: int, entries: int) -> list[tuple[int, int]]:
    """The batch [0, n) split for the threads, by how much work it is: one range each."""
    k = min(threads(), MAX_THREADS, n, max(1, entries // PARALLEL_MIN_ENTRIES))
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k)]


def _plan(n: int, entries: int, split: int = SPLIT) -> tuple[list[tuple[int, int]], int]:
    """The batch [0, n) in ranges for the threads to claim (``split`` per thread when
    there are several), and how many threads share them."""
    t = len(_ranges(n, entries))
    k = min(n, t * split, MAX_RANGES) if t > 1 else 1
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(k)], t


_FN_ADDRESS: dict = {}


def _address(fn) -> int:
    """The address of a kernel of the extension."""
    address = _FN_ADDRESS.get(fn.__name__)
    if address is None:
        address = _FN_ADDRESS[fn.__name__] = ctypes.cast(fn, ctypes.c_void_p).value
    return address


def _run(fn, plan, args) -> None:
    """``fn(*args(r), n0, n1)`` for each batch range (n0, n1) of ``plan`` (the ranges and
    the threads, from :func:`_plan`), where ``args(r)`` gives the arguments of the r-th
    range (arrays, passed as the address of their first element, and integers): on the
    calling thread and the kernels' worker threads, which claim the ranges as they come
    free (_native.c's run_kernel, which lets go of the interpreter lock while the kernel
    runs)."""
    ranges, nt = plan
    bounds = [ranges[0][0]] + [n1 for _, n1 in ranges]
    _MODULE.run_kernel(_address(fn), bounds, tuple(args(r) for r in range(len(ranges))), nt)


def available() -> bool:
    """Whether the compiled extension was built and loads."""
    return _LIB is not None


def enabled() -> bool:
    """Whether the image ops use the compiled loops."""
    return _state["on"]


@contextlib.contextmanager
def use_native(on: bool):
    """Within the block, use the compiled loops (if built) or force the numpy versions."""
    before = _state["on"]
    _state["on"] = bool(on) and _LIB is not None
    try:
        yield
    finally:
        _state["on"] = before


def _holds_entries(arrays, shapes=()) -> bool:
    """Whether every array and every (output) shape has at least one entry."""
    return all(a.size for a in arrays) and all(all(shape) for shape in shapes)


def _kernel(name: str, *arrays, out_shape=()):
    """The kernel ``name`` for the arrays' dtype, or None (see the module's description)."""
    if not _state["on"] or not _holds_entries(arrays, (out_shape,)):
        return None
    dtype = arrays[0].dtype
    if dtype not in _SUFFIX or any(a.dtype != dtype for a in arrays):
        return None
    return getattr(_LIB, f"{name}_{_SUFFIX[dtype]}")


class _Ints:
    """Groups of integers (shapes, strides, geometry) in one int64 array, each group passed
    to a kernel as a pointer into it (``pointers``); keep the object while the kernel runs."""

    def __init__(self, *groups):
        groups = [[int(v) for v in g] for g in groups]
        self.array = np.array([v for g in groups for v in g], np.int64)
        base, offset, self.pointers = self.array.ctypes.data, 0, []
        for g in groups:
            self.pointers.append(base + 8 * offset)
            offset += len(g)


def _strides(a: np.ndarray) -> list[int]:
    """Element strides; the array's data pointer is its first element, whatever the signs."""
    return [s // a.itemsize for s in a.strides]


def _geo(kernel_size, stride, padding, out_hw) -> tuple:
    return (*kernel_size, *stride, *padding, *out_hw)


def im2col(x, kernel_size, stride, padding, out_hw):
    """(C·KH·KW, N·OH·OW) windows of NCHW ``x``, zero padded."""
    n, c, _, _ = x.shape
    kh, kw = kernel_size
    shape = (c * kh * kw, n * out_hw[0] * out_hw[1])
    fn = _kernel("im2col", x, out_shape=shape)
    if fn is None:
        return None
    out = np.empty(shape, x.dtype)
    ints = _Ints(x.shape, _strides(x), _geo(kernel_size, stride, padding, out_hw))
    args = (x, *ints.pointers, out)
    _run(fn, _plan(n, out.size), lambda r: args)
    return out


def col2im(cols, input_shape, kernel_size, stride, padding, out_hw):
    """Scatter-add (C·KH·KW, N·OH·OW) windows into an NCHW array of ``input_shape``."""
    fn = _kernel("col2im", cols, out_shape=tuple(input_shape))
    if fn is None:
        return None
    cols = np.ascontiguousarray(cols)
    out = np.empty(input_shape, cols.dtype)
    ints = _Ints(input_shape, _geo(kernel_size, stride, padding, out_hw))
    args = (cols, *ints.pointers, out)
    _run(fn, _plan(input_shape[0], cols.size), lambda r: args)
    return out


def _like(x: np.ndarray, shape) -> np.ndarray:
    """An empty array of ``shape`` whose axes lie in memory in the order of ``x``'s: the
    gradient of a pool over a convolution's (transposed) output is then laid out as the
    convolution's gradient wants it, without a copy."""
    order = sorted(range(x.ndim), key=lambda i: -abs(x.strides[i]))
    base = np.empty([shape[i] for i in order], x.dtype)
    return base.transpose(np.argsort(order))


def max_pool_2x2(x, out_hw):
    """Max-pooling of NCHW ``x`` over 2x2 windows at stride 2, without padding, for output
    sizes whose windows all lie inside ``x``; laid out as ``x``. None otherwise."""
    fn = _kernel("max_pool_2x2", x, out_shape=tuple(out_hw))
    if fn is None or 2 * out_hw[0] > x.shape[2] or 2 * out_hw[1] > x.shape[3]:
        return None
    out = _like(x, x.shape[:2] + tuple(out_hw))
    ints = _Ints(x.shape, _strides(x), _geo((2, 2), (2, 2), (0, 0), out_hw), _strides(out))
    args = (x, *ints.pointers[:3], out, ints.pointers[3])
    _run(fn, _plan(x.shape[0], x.size), lambda r: args)
    return out


def max_pool_backward(ct, x, y, kernel_size, stride, padding):
    """Each window's cotangent at the window's first element equal to its maximum ``y``;
    laid out as ``x``."""
    fn = _kernel("max_pool_backward", ct, x, y)
    if fn is None:
        return None
    grad = _like(x, x.shape)
    strides = [s for a in (x, grad, y, ct) for s in _strides(a)]
    ints = _Ints(x.shape, strides, _geo(kernel_size, stride, padding, y.shape[2:]))
    args = (ct, x, y, *ints.pointers)
    _run(fn, _plan(x.shape[0], x.size), lambda r: args + (grad,))
    return grad


def direct_applies(weight_shape, stride, groups: int = 1) -> bool:
    """Whether a convolution of this geometry has a direct kernel (whatever the dtype). A
    strided 1x1 convolution does not: it reads a subsample of its input, which the window
    matrix (im2col) and one matrix product handle in less time."""
    o, cg, kh, kw = weight_shape
    return (
        max(stride) <= DIRECT_MAX_STRIDE
        and ((kh, kw) != (1, 1) or tuple(stride) == (1, 1))
        and cg * kh * kw <= DIRECT_MAX_WINDOW
        and o // groups <= DIRECT_MAX_OUT
        and o <= DIRECT_MAX_TOTAL_OUT
    )


def _direct(weight_shape, stride, groups, *arrays, out_shape=()) -> str | None:
    """The dtype suffix of the direct kernels for these arrays, or None if they do not
    apply (see the module's description)."""
    if not (_state["on"] and _DIRECT and direct_applies(weight_shape, stride, groups)):
        return None
    if not _holds_entries(arrays, (weight_shape, out_shape)):
        return None
    dtype = arrays[0].dtype
    if dtype not in _SUFFIX or any(a.dtype != dtype for a in arrays):
        return None
    return _SUFFIX[dtype]


def _padded_rows(w2: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``w2`` (O, K) in the top-left corner of a zero (rows, cols) array."""
    out = np.zeros((rows, cols), w2.dtype)
    out[: w2.shape[0], : w2.shape[1]] = w2
    return out


def _direct_geo(kernel_size, stride, padding, out_hw, dilation, groups) -> tuple:
    """The geometry the direct kernels read (_native_direct.h's conv_geometry)."""
    return (*_geo(kernel_size, stride, padding, out_hw), *dilation, groups)


def _group_rows(a: np.ndarray, groups: int, rows: int) -> np.ndarray:
    """The rows of ``a`` (O, ...) group by group, each group's O/G rows followed by zero
    rows up to ``rows``: (G·rows, ...)."""
    out = np.zeros((groups, rows) + a.shape[1:], a.dtype)
    out[:, : a.shape[0] // groups] = a.reshape((groups, -1) + a.shape[1:])
    return out.reshape((groups * rows,) + a.shape[1:])


def conv_direct(x, w, bias, stride, padding, out_hw, dilation=(1, 1), groups=1):
    """The convolution of NCHW ``x`` with OIHW ``w`` as (O, N·OH·OW), computed directly, plus
    ``bias`` (O,) unless it is None; with ``groups``, group g's output rows read its
    channels of ``x`` only."""
    arrays = (x, w) if bias is None else (x, w, bias)
    suffix = _direct(w.shape, stride, groups, *arrays, out_shape=out_hw)
    if suffix is None:
        return None
    o = w.shape[0]
    opg = -(-(o // groups) // _MR) * _MR  # each group's rows, padded to register blocks
    wp = _group_rows(w.reshape(o, -1), groups, opg)
    bp = _group_rows(np.zeros(o, x.dtype) if bias is None else bias, groups, opg)
    out = np.empty((o, x.shape[0] * out_hw[0] * out_hw[1]), x.dtype)
    geo = _direct_geo(w.shape[2:], stride, padding, out_hw, dilation, groups)
    ints = _Ints(x.shape, _strides(x), geo)
    args = (x, *ints.pointers, wp, bp, o, out)
    _run(getattr(_LIB, f"conv_direct_{suffix}"), _plan(x.shape[0], out.size), lambda r: args)
    return out


# the weight gradient sums the batch in parts of this many samples (or more, so that there
# are at most MAX_RANGES parts), which the threads share; the parts depend on the batch
# only, and are added in order, so the result does not depend on the number of threads
WGRAD_PART = 16


def conv_direct_weight_grad(
    ct, x, weight_shape, stride, padding, out_hw, dilation=(1, 1), groups=1
):
    """The weight gradient of :func:`conv_direct` for a cotangent ``ct`` (O, N·OH·OW)."""
    suffix = _direct(weight_shape, stride, groups, ct, x)
    if suffix is None:
        return None
    ct = np.ascontiguousarray(ct)
    n, o = x.shape[0], weight_shape[0]
    step = max(WGRAD_PART, -(-n // MAX_RANGES))
    ranges = [(n0, min(n, n0 + step)) for n0 in range(0, n, step)]
    parts = np.empty((len(ranges),) + tuple(weight_shape), x.dtype)
    geo = _direct_geo(weight_shape[2:], stride, padding, out_hw, dilation, groups)
    ints = _Ints(x.shape, _strides(x), geo)
    args = (x, *ints.pointers, ct, o)
    plan = (ranges, min(len(ranges), len(_ranges(n, ct.size))))
    _run(getattr(_LIB, f"conv_direct_wgrad_{suffix}"), plan, lambda r: args + (parts[r],))
    if len(ranges) == 1:
        return parts[0]
    dw = parts[0].copy()
    for part in parts[1:]:  # in order
        dw += part
    return dw


def conv_direct_input_grad(ct, w, x_shape, stride, padding, out_hw, dilation=(1, 1), groups=1):
    """The input gradient of :func:`conv_direct` for a cotangent ``ct`` (O, N·OH·OW): NCHW
    of ``x_shape``."""
    suffix = _direct(w.shape, stride, groups, ct, w, out_shape=tuple(x_shape))
    if suffix is None:
        return None
    ct = np.ascontiguousarray(ct)
    o, k = w.shape[0], w[0].size
    wk = _padded_rows(w.reshape(o, k), o, -(-k // 4) * 4)
    dx = np.empty(tuple(x_shape), ct.dtype)
    geo = _direct_geo(w.shape[2:], stride, padding, out_hw, dilation, groups)
    ints = _Ints(x_shape, geo)
    args = (ct, *ints.pointers, wk, o, dx)
    _run(getattr(_LIB, f"conv_direct_igrad_{suffix}"), _plan(x_shape[0], ct.size), lambda r: args)
    return dx

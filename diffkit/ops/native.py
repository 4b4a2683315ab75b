"""The compiled loops of the image ops (``diffkit/_native.c``), called through ctypes.

Each function here returns None when it does not apply: the extension was not built (no
C compiler at install), it is switched off (``DIFFKIT_NATIVE=0`` in the environment, or
:func:`use_native`), or the arrays are not float32/float64 of one dtype. The caller then
runs its numpy version, which computes the same thing and stays the reference.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

import numpy as np

__all__ = [
    "available",
    "enabled",
    "use_native",
    "im2col",
    "col2im",
    "max_pool_backward",
]

_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_IDX = ctypes.POINTER(ctypes.c_int64)


def _load():
    try:
        from .. import _native
    except ImportError:
        return None
    try:
        lib = ctypes.CDLL(_native.__file__)
        for suffix in _SUFFIX.values():
            for name in ("im2col", "col2im", "max_pool_backward"):
                getattr(lib, f"{name}_{suffix}").restype = None
    except (OSError, AttributeError):
        return None
    return lib


_LIB = _load()
_state = {"on": _LIB is not None and os.environ.get("DIFFKIT_NATIVE", "1") != "0"}


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


def _kernel(name: str, *arrays):
    if not _state["on"]:
        return None
    dtype = arrays[0].dtype
    if dtype not in _SUFFIX or any(a.dtype != dtype for a in arrays):
        return None
    return getattr(_LIB, f"{name}_{_SUFFIX[dtype]}")


def _ptr(a: np.ndarray):
    return ctypes.c_void_p(a.ctypes.data)


def _ints(values) -> ctypes.Array:
    values = [int(v) for v in values]
    return (ctypes.c_int64 * len(values))(*values)


def _strides(a: np.ndarray) -> ctypes.Array:
    """Element strides; the array's data pointer is its first element, whatever the signs."""
    return _ints(s // a.itemsize for s in a.strides)


def _geo(kernel_size, stride, padding, out_hw) -> ctypes.Array:
    return _ints((*kernel_size, *stride, *padding, *out_hw))


def im2col(x, kernel_size, stride, padding, out_hw):
    """(C·KH·KW, N·OH·OW) windows of NCHW ``x``, zero padded."""
    fn = _kernel("im2col", x)
    if fn is None:
        return None
    n, c, _, _ = x.shape
    kh, kw = kernel_size
    out = np.empty((c * kh * kw, n * out_hw[0] * out_hw[1]), x.dtype)
    fn(_ptr(x), _ints(x.shape), _strides(x), _geo(kernel_size, stride, padding, out_hw), _ptr(out))
    return out


def col2im(cols, input_shape, kernel_size, stride, padding, out_hw):
    """Scatter-add (C·KH·KW, N·OH·OW) windows into an NCHW array of ``input_shape``."""
    fn = _kernel("col2im", cols)
    if fn is None:
        return None
    cols = np.ascontiguousarray(cols)
    out = np.empty(input_shape, cols.dtype)
    fn(_ptr(cols), _ints(input_shape), _geo(kernel_size, stride, padding, out_hw), _ptr(out))
    return out


def max_pool_backward(ct, x, y, kernel_size, stride, padding):
    """Each window's cotangent at the window's first element equal to its maximum ``y``."""
    fn = _kernel("max_pool_backward", ct, x, y)
    if fn is None:
        return None
    ct, y = np.ascontiguousarray(ct), np.ascontiguousarray(y)
    grad = np.empty(x.shape, x.dtype)
    xs, geo = _strides(x), _geo(kernel_size, stride, padding, y.shape[2:])
    fn(_ptr(ct), _ptr(x), _ptr(y), _ints(x.shape), xs, geo, _ptr(grad))
    return grad

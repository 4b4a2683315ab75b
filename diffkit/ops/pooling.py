"""Pooling: max-pooling is a max over each window (the derivative goes to the first
maximum, as in PyTorch), average pooling a sum divided by the window's size (or by
``divisor_override``), and adaptive pooling the same over PyTorch's bins
[floor(i·H/OH), ceil((i+1)·H/OH)) of an output size chosen in advance.

Windows of max-pooling may be dilated: offset (p, q) of a window reads the input
``dilation`` entries apart. Output sizes follow floor((H + 2P - D(K-1) - 1) / S) + 1
(ceil with ``ceil_mode``, whose last window must start inside the input or its left
padding, as PyTorch). The builders take NCHW inputs and unbatched CHW ones.

The max-pooling gradient, and max-pooling over 2x2 windows at stride 2, run compiled
loops where the extension is built (:mod:`diffkit.ops.native`); their numpy versions
here are the reference. Adaptive average pooling is linear and separable: a product
with a bin-averaging matrix on each side.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import Op, Sample, Unsupported, register
from . import native
from .comparison import RELU, relu
from .reduce import mean as reduce_mean, sum as reduce_sum
from .shape import matmul, reshape
from ._batch import all_batched, with_attrs
from ._sparsity import windows_rule
from .windows import _NO_SCALAR, _unfold_impl, pair, unfold
from .windows import _geometry as _window_geometry

__all__ = [
    "max_pool2d",
    "max_pool2d_indices",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_indices",
]

_ONE = (1, 1)


def _geometry(shape, kernel_size, stride, padding, dilation, ceil_mode, op="max_pool2d"):
    """(n, c, h, w, oh, ow, eh, ew): sizes, output sizes and the extra bottom/right
    padding that keeps every (ceil-mode) window inside the padded array."""
    n, c, h, w, _, _, _, _, _, _, oh, ow, eh, ew = _window_geometry(
        shape, kernel_size, stride, padding, ceil_mode, op, dilation=dilation
    )
    return n, c, h, w, oh, ow, eh, ew


def _padded(x, padding, eh, ew, value):
    (ph, pw), (n, c, h, w) = padding, x.shape
    if not (ph or pw or eh or ew):
        return x
    out = np.full((n, c, h + 2 * ph + eh, w + 2 * pw + ew), value, dtype=x.dtype)
    out[:, :, ph : ph + h, pw : pw + w] = x
    return out


def _pool_windows(x, kernel_size, stride, padding, dilation, ceil_mode, value):
    """The padded input and, per kernel offset (p, q) in row-major order, the strided
    slice of the padded input it contributes to every output."""
    _, _, _, _, oh, ow, eh, ew = _geometry(
        x.shape, kernel_size, stride, padding, dilation, ceil_mode
    )
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    padded = _padded(x, padding, eh, ew, value)
    slices = [
        np.s_[:, :, p * dh : p * dh + sh * oh : sh, q * dw : q * dw + sw * ow : sw]
        for p in range(kh)
        for q in range(kw)
    ]
    return padded, slices


def _real(a):
    return a.real if a.dtype.kind == "c" else a


def _first_maxima(x, out, kernel_size, stride, padding, dilation, ceil_mode):
    """Per kernel offset, in row-major order over the window (as PyTorch scans it): the
    offset's strided slice of the padded input and the mask of the windows whose first
    maximum sits at that offset. The masks are disjoint; one buffer is reused for all of
    them, so use each before taking the next."""
    padded, slices = _pool_windows(
        _real(x), kernel_size, stride, padding, dilation, ceil_mode, -np.inf
    )
    target = _real(out)
    free = np.ones(out.shape, dtype=bool)  # windows whose maximum is not placed yet
    mask = np.empty(out.shape, dtype=bool)
    for sl in slices:
        np.equal(padded[sl], target, out=mask)
        mask &= free
        yield sl, mask
        free ^= mask


def _max_pool_impl(x, kernel_size, stride, padding, ceil_mode=False, dilation=_ONE):
    plain = tuple(dilation) == _ONE and tuple(padding) == (0, 0)
    if plain and tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2):
        hw = _pool_shape((x.shape,), kernel_size, stride, padding, ceil_mode, dilation)[2:]
        out = native.max_pool_2x2(x, hw)
        if out is not None:
            return out
    padded, slices = _pool_windows(
        _real(x), kernel_size, stride, padding, dilation, ceil_mode, -np.inf
    )
    # the result takes the input's memory layout (numpy's choice for a binary op), so
    # every pass streams through both in the same order
    if len(slices) == 1:
        out = padded[slices[0]].copy(order="K")
    else:
        out = np.maximum(padded[slices[0]], padded[slices[1]])
    for sl in slices[2:]:
        np.maximum(out, padded[sl], out=out)
    if x.dtype.kind != "c":
        return out
    # complex inputs (complex step through a graph holding a pool): select by the real part
    return _max_pool_select_impl(x, x, out, kernel_size, stride, padding, ceil_mode, dilation)


def _max_pool_backward_impl(
    ct, x, out, kernel_size, stride, padding, ceil_mode=False, dilation=_ONE
):
    if tuple(dilation) == _ONE and x.size:
        grad = native.max_pool_backward(ct, x, out, kernel_size, stride, padding)
        if grad is not None:
            return grad
    n, c, h, w, _, _, eh, ew = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    grad = np.zeros((n, c, h + 2 * ph + eh, w + 2 * pw + ew), np.result_type(ct.dtype, x.dtype))
    disjoint = sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1
    for sl, placed in _at_first_maxima(
        ct, x, out, kernel_size, stride, padding, dilation, ceil_mode
    ):
        if disjoint:  # windows do not overlap: each entry receives at most one cotangent
            grad[sl] = placed
        else:
            grad[sl] += placed
    return grad[:, :, ph : ph + h, pw : pw + w]


def _max_pool_select_impl(t, x, out, kernel_size, stride, padding, ceil_mode=False, dilation=_ONE):
    tpad, _ = _pool_windows(t, kernel_size, stride, padding, dilation, ceil_mode, 0)
    result = np.zeros(out.shape, dtype=t.dtype)
    for _, placed in _at_first_maxima(
        tpad, x, out, kernel_size, stride, padding, dilation, ceil_mode, True
    ):
        result += placed  # the masks are disjoint
    return result


def _at_first_maxima(
    values, x, out, kernel_size, stride, padding, dilation, ceil_mode, windowed=False
):
    """Per kernel offset: its slice, and ``values`` (their slice at that offset if
    ``windowed``) where the offset holds its window's first maximum, 0 elsewhere. The
    product with the 0/1 mask is much faster than ``np.where``, and is used when the values
    are finite (0 times an infinite value would be NaN)."""
    finite = bool(np.isfinite(values).all())
    for sl, mask in _first_maxima(x, out, kernel_size, stride, padding, dilation, ceil_mode):
        v = values[sl] if windowed else values
        yield sl, (v * mask if finite else np.where(mask, v, 0))


def _pool_shape(shapes, kernel_size, stride, padding, ceil_mode=False, dilation=_ONE):
    n, c, _, _, oh, ow, _, _ = _geometry(
        shapes[0], kernel_size, stride, padding, dilation, ceil_mode
    )
    return (n, c, oh, ow)


_POOL_SAMPLES = (
    Sample(((2, 2, 5, 4),), {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}),
    Sample(
        ((1, 2, 5, 5),),
        {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1), "ceil_mode": True},
    ),
    Sample(
        ((1, 2, 7, 6),),
        {"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 1), "dilation": (3, 2)},
    ),
    Sample(((0, 2, 4, 4),), {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}),
)


def _fold_max_pool(x, **attrs):
    """max_pool(relu(x)) -> relu(max_pool(x)): ReLU is monotone, so it commutes with a max;
    the ReLU then runs on KH·KW times fewer values. The derivatives agree too: a window
    whose maximum is positive sends its cotangent to the same first maximum either way,
    and one whose maximum is at most 0 sends none (ReLU's derivative is 0 there)."""
    if x.kind == "op" and x.op is RELU:
        return relu(apply(MAX_POOL2D, x.inputs[0], **attrs))
    return None


#: the image kernels take one batch axis (N of NCHW); Jacobians through them evaluate one
#: direction at a time
_NO_BATCH = Unsupported("an image kernel with one batch axis")


def _batch_into_images(node, inputs, batch):
    """Batching rule: B batches of N images are B·N images (every input is NCHW, its
    images independent of one another)."""
    folded = [reshape(x, (batch * x.shape[1],) + x.shape[2:]) for x in all_batched(inputs, batch)]
    out = with_attrs(node, folded)
    return reshape(out, (batch,) + node.shape)


def _window_attrs(node):
    return {
        k: node.attrs[k]
        for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")
        if k in node.attrs
    }


# max over a window: an output depends on its window's entries (padding: none)
_SPARSITY_POOL = windows_rule(_unfold_impl, _window_attrs, True)


_PLAIN = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}
_DILATED = {"kernel_size": (2, 2), "stride": (1, 2), "padding": (0, 0), "dilation": (2, 2)}

MAX_POOL2D = register(
    Op(
        name="max_pool2d",
        shape=_pool_shape,
        impl=_max_pool_impl,
        # d max(window) = d x at the window's first maximum
        vjp=lambda ct, out, x, **a: (apply(MAX_POOL2D_BACKWARD, ct, x, out, **a),),
        jvp=lambda tangents, out, x, **a: apply(MAX_POOL2D_SELECT, tangents[0], x, out, **a),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=_POOL_SAMPLES,
        analytic=False,
        fold=_fold_max_pool,
        doc="max over (dilated) KxK windows (padding counts as -inf)",
        rules={"batch": _NO_BATCH, "sparsity": _SPARSITY_POOL},
    )
)

MAX_POOL2D_BACKWARD = register(
    Op(
        name="max_pool2d_backward",
        shape=lambda shapes, **a: shapes[1],
        impl=_max_pool_backward_impl,
        # linear in the cotangent, whose adjoint is the selection; the mask has derivative 0
        vjp=lambda ct, out, g, x, y, **a: (apply(MAX_POOL2D_SELECT, ct, x, y, **a), None, None),
        jvp=lambda tangents, out, g, x, y, **a: (
            None if tangents[0] is None else apply(MAX_POOL2D_BACKWARD, tangents[0], x, y, **a)
        ),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        nondiff_inputs=(1, 2),
        samples=(
            Sample(
                ((1, 2, 2, 2), (1, 2, 4, 4), (1, 2, 2, 2)),
                {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)},
                const=(1, 2),
                make=lambda rng: _pool_grad_sample(rng),
            ),
            Sample(  # a batch of 0
                ((0, 2, 2, 2), (0, 2, 4, 4), (0, 2, 2, 2)),
                {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)},
                const=(1, 2),
                make=lambda rng: _pool_grad_sample(rng, 0),
            ),
            Sample(  # dilated, overlapping windows
                ((1, 2, 3, 2), (1, 2, 5, 4), (1, 2, 3, 2)),
                _DILATED,
                const=(1, 2),
                make=lambda rng: _pool_grad_sample(rng, 1, _DILATED, (5, 4)),
            ),
        ),
        analytic=False,
        doc="the gradient of max_pool2d: the cotangent at each first maximum",
        rules={"batch": _NO_BATCH},
    )
)

MAX_POOL2D_SELECT = register(
    Op(
        name="max_pool2d_select",
        shape=lambda shapes, **a: shapes[2],
        impl=_max_pool_select_impl,
        vjp=lambda ct, out, t, x, y, **a: (apply(MAX_POOL2D_BACKWARD, ct, x, y, **a), None, None),
        jvp=lambda tangents, out, t, x, y, **a: (
            None if tangents[0] is None else apply(MAX_POOL2D_SELECT, tangents[0], x, y, **a)
        ),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        nondiff_inputs=(1, 2),
        samples=(
            Sample(
                ((1, 2, 4, 4), (1, 2, 4, 4), (1, 2, 2, 2)),
                {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)},
                const=(1, 2),
                make=lambda rng: _pool_select_sample(rng),
            ),
            Sample(  # a batch of 0
                ((0, 2, 4, 4), (0, 2, 4, 4), (0, 2, 2, 2)),
                {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)},
                const=(1, 2),
                make=lambda rng: _pool_select_sample(rng, 0),
            ),
            Sample(  # dilated, overlapping windows
                ((1, 2, 5, 4), (1, 2, 5, 4), (1, 2, 3, 2)),
                _DILATED,
                const=(1, 2),
                make=lambda rng: _pool_select_sample(rng, 1, _DILATED, (5, 4)),
            ),
        ),
        analytic=False,
        doc="the tangent of max_pool2d: t at each window's first maximum",
        rules={"batch": _NO_BATCH},
    )
)


def _pool_grad_sample(rng, n=1, attrs=_PLAIN, hw=(4, 4)):
    x = rng.standard_normal((n, 2) + hw)
    y = _max_pool_impl(x, **attrs)
    return [rng.standard_normal(y.shape), x, y]


def _pool_select_sample(rng, n=1, attrs=_PLAIN, hw=(4, 4)):
    x = rng.standard_normal((n, 2) + hw)
    y = _max_pool_impl(x, **attrs)
    return [rng.standard_normal(x.shape), x, y]


def _max_pool_indices_impl(x, kernel_size, stride, padding, ceil_mode=False, dilation=_ONE):
    """PyTorch's ``return_indices``: per window, the flat index into H·W of its first
    maximum, or of its last NaN where it holds one (PyTorch's scan lets a NaN win)."""
    out = _max_pool_impl(x, kernel_size, stride, padding, ceil_mode, dilation)
    _, _, _, w, oh, ow, _, _ = _geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    rows, cols = np.arange(oh) * sh - ph, np.arange(ow) * sw - pw
    offsets = [(p * dh, q * dw) for p in range(kh) for q in range(kw)]
    index = np.zeros(out.shape, dtype=np.int64)
    found = _first_maxima(x, out, kernel_size, stride, padding, dilation, ceil_mode)
    for (p, q), (_, mask) in zip(offsets, found):
        np.copyto(index, (rows[:, None] + p) * w + (cols[None, :] + q), where=mask)
    if np.isnan(_real(out)).any():
        padded, slices = _pool_windows(
            _real(x), kernel_size, stride, padding, dilation, ceil_mode, -np.inf
        )
        for (p, q), sl in zip(offsets, slices):
            pos = (rows[:, None] + p) * w + (cols[None, :] + q)
            np.copyto(index, pos, where=np.isnan(padded[sl]))
    return index


MAX_POOL2D_INDICES = register(
    Op(
        name="max_pool2d_indices",
        shape=_pool_shape,
        impl=_max_pool_indices_impl,
        # integer positions: piecewise constant, derivative 0
        vjp=lambda ct, out, x, **a: (None,),
        jvp=lambda tangents, out, x, **a: None,
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(_POOL_SAMPLES[1].shapes, _POOL_SAMPLES[1].attrs, zero_derivative=True),
            Sample(_POOL_SAMPLES[2].shapes, _POOL_SAMPLES[2].attrs, zero_derivative=True),
        ),
        analytic=False,
        discontinuous=True,
        doc="the flat index into H·W of each window's first maximum (int64)",
        rules={"batch": _batch_into_images, "sparsity": lambda node, values=None: [None]},
    )
)


def max_pool2d_indices(
    x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False
) -> Node:
    """The indices PyTorch's ``max_pool2d(..., return_indices=True)`` returns: per
    window, the flat position in its H×W plane of the input of the first maximum (int64,
    no derivative). ``x`` is NCHW or CHW."""
    x, was = _batched(x, "max_pool2d")
    attrs = _max_pool_attrs(kernel_size, stride, padding, dilation, ceil_mode)
    return _unbatched(apply(MAX_POOL2D_INDICES, x, **attrs), was)


# ---- adaptive max-pooling: PyTorch's bins, first maximum of each ---------------------------


def adaptive_bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive-pooling bins along one axis: starts floor(i·size/out) and ends
    ceil((i+1)·size/out), for i = 0 ... out-1."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _adaptive_index(size, out):
    """(out, widest bin) input indices of each bin, and the mask of the real entries."""
    starts, ends = adaptive_bins(size, out)
    width = int((ends - starts).max()) if out else 0
    idx = starts[:, None] + np.arange(width)[None, :]
    valid = idx < ends[:, None]
    return np.where(valid, idx, 0), valid


def _adaptive_windows(x, output_size, value=0.0):
    """The bins of NCHW ``x`` as (N, C, OH, OW, KH, KW), KH×KW the widest bin, the
    entries beyond a narrower bin set to ``value``. Each bin's entries keep their
    row-major order."""
    (oh, ow), (h, w) = output_size, x.shape[2:]
    rows, rvalid = _adaptive_index(h, oh)
    cols, cvalid = _adaptive_index(w, ow)
    win = x[:, :, rows[:, None, :, None], cols[None, :, None, :]]
    valid = rvalid[:, None, :, None] & cvalid[None, :, None, :]
    if not valid.all():
        win = np.where(valid, win, np.asarray(value, dtype=x.dtype))
    return win


def _adaptive_argmax(x, output_size):
    """Flat indices into H·W of each bin's first maximum, shape (N, C, OH, OW)."""
    (oh, ow), (h, w) = output_size, x.shape[2:]
    rows, _ = _adaptive_index(h, oh)
    cols, _ = _adaptive_index(w, ow)
    win = _adaptive_windows(x, output_size, -np.inf)
    n, c, _, _, kh, kw = win.shape
    if win.size == 0:
        return np.zeros((n, c, oh, ow), dtype=np.int64)
    flat = win.reshape(n, c, oh, ow, kh * kw)
    a = np.argmax(flat, axis=-1)  # the first maximum
    nan = np.isnan(flat)
    if nan.any():  # PyTorch's scan lets every NaN win: the last one stays
        last = kh * kw - 1 - np.argmax(nan[..., ::-1], axis=-1)
        a = np.where(nan.any(axis=-1), last, a)
    i, j = np.arange(oh)[:, None], np.arange(ow)[None, :]
    return rows[i, a // kw] * w + cols[j, a % kw]


def _gather(values, index):
    n, c, h, w = values.shape
    flat = values.reshape(n, c, h * w)
    picked = index.reshape(n, c, index.shape[2] * index.shape[3])
    return np.take_along_axis(flat, picked, axis=2).reshape(index.shape)


def _adaptive_max_impl(x, output_size):
    return _gather(x, _adaptive_argmax(x, output_size))


def _adaptive_max_backward_impl(ct, x, output_size):
    n, c, h, w = x.shape
    index = _adaptive_argmax(x, output_size).reshape(n * c, output_size[0] * output_size[1])
    flat = index + (np.arange(n * c) * (h * w))[:, None]
    dtype = np.result_type(ct.dtype, x.dtype)
    grad = np.zeros(n * c * h * w, dtype=dtype)
    np.add.at(grad, flat.ravel(), ct.reshape(-1).astype(dtype, copy=False))
    return grad.reshape(x.shape)


def _adaptive_select_impl(t, x, output_size):
    return _gather(t, _adaptive_argmax(x, output_size))


def _adaptive_shape(shapes, output_size):
    shape = shapes[0]
    if len(shape) != 4:
        raise ShapeError(
            f"adaptive_max_pool2d: expected an NCHW input of 4 dimensions, got shape {shape}"
        )
    if min(output_size) < 0 or (min(shape[2:]) == 0 and min(output_size) > 0):
        raise ShapeError(
            f"adaptive_max_pool2d: cannot pool an input of shape {shape} to {output_size}"
        )
    return tuple(shape[:2]) + tuple(output_size)


def _adaptive_attrs(node):
    return {"output_size": node.attrs["output_size"]}


def _adaptive_sample(rng, kind, n=1, hw=(5, 7), out=(2, 3)):
    x = rng.standard_normal((n, 2) + hw)
    y = _adaptive_max_impl(x, out)
    return [rng.standard_normal(y.shape if kind == "grad" else x.shape), x]


ADAPTIVE_MAX_POOL2D = register(
    Op(
        name="adaptive_max_pool2d",
        shape=_adaptive_shape,
        impl=_adaptive_max_impl,
        # d max(bin) = d x at the bin's first maximum
        vjp=lambda ct, out, x, **a: (apply(ADAPTIVE_MAX_POOL2D_BACKWARD, ct, x, **a),),
        jvp=lambda tangents, out, x, **a: apply(ADAPTIVE_MAX_POOL2D_SELECT, tangents[0], x, **a),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(((2, 2, 5, 7),), {"output_size": (2, 3)}),
            Sample(((1, 3, 4, 3),), {"output_size": (3, 5)}),  # more bins than entries
            Sample(((1, 2, 4, 4),), {"output_size": (1, 1)}),
        ),
        analytic=False,
        doc="max over PyTorch's adaptive bins of an NCHW input",
        rules={
            "batch": _batch_into_images,
            "sparsity": windows_rule(_adaptive_windows, _adaptive_attrs, True),
        },
    )
)

ADAPTIVE_MAX_POOL2D_BACKWARD = register(
    Op(
        name="adaptive_max_pool2d_backward",
        shape=lambda shapes, output_size: shapes[1],
        impl=_adaptive_max_backward_impl,
        # linear in the cotangent, whose adjoint is the selection
        vjp=lambda ct, out, g, x, **a: (apply(ADAPTIVE_MAX_POOL2D_SELECT, ct, x, **a), None),
        jvp=lambda tangents, out, g, x, **a: (
            None
            if tangents[0] is None
            else apply(ADAPTIVE_MAX_POOL2D_BACKWARD, tangents[0], x, **a)
        ),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        nondiff_inputs=(1,),
        samples=(
            Sample(
                ((1, 2, 2, 3), (1, 2, 5, 7)),
                {"output_size": (2, 3)},
                const=(1,),
                make=lambda rng: _adaptive_sample(rng, "grad"),
            ),
            Sample(
                ((0, 2, 2, 3), (0, 2, 5, 7)),
                {"output_size": (2, 3)},
                const=(1,),
                make=lambda rng: _adaptive_sample(rng, "grad", 0),
            ),
        ),
        analytic=False,
        doc="the gradient of adaptive_max_pool2d: the cotangent at each bin's first maximum",
        rules={"batch": _batch_into_images},
    )
)

ADAPTIVE_MAX_POOL2D_SELECT = register(
    Op(
        name="adaptive_max_pool2d_select",
        shape=lambda shapes, output_size: _adaptive_shape(shapes[1:], output_size),
        impl=_adaptive_select_impl,
        vjp=lambda ct, out, t, x, **a: (apply(ADAPTIVE_MAX_POOL2D_BACKWARD, ct, x, **a), None),
        jvp=lambda tangents, out, t, x, **a: (
            None if tangents[0] is None else apply(ADAPTIVE_MAX_POOL2D_SELECT, tangents[0], x, **a)
        ),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        nondiff_inputs=(1,),
        samples=(
            Sample(
                ((1, 2, 5, 7), (1, 2, 5, 7)),
                {"output_size": (2, 3)},
                const=(1,),
                make=lambda rng: _adaptive_sample(rng, "select"),
            ),
            Sample(
                ((0, 2, 5, 7), (0, 2, 5, 7)),
                {"output_size": (2, 3)},
                const=(1,),
                make=lambda rng: _adaptive_sample(rng, "select", 0),
            ),
        ),
        analytic=False,
        doc="the tangent of adaptive_max_pool2d: t at each bin's first maximum",
        rules={"batch": _batch_into_images},
    )
)


ADAPTIVE_MAX_POOL2D_INDICES = register(
    Op(
        name="adaptive_max_pool2d_indices",
        shape=_adaptive_shape,
        impl=_adaptive_argmax,
        # integer positions: piecewise constant, derivative 0
        vjp=lambda ct, out, x, **a: (None,),
        jvp=lambda tangents, out, x, **a: None,
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(Sample(((2, 2, 5, 7),), {"output_size": (2, 3)}, zero_derivative=True),),
        analytic=False,
        discontinuous=True,
        doc="the flat index into H·W of each adaptive bin's first maximum (int64)",
        rules={"batch": _batch_into_images, "sparsity": lambda node, values=None: [None]},
    )
)


# ---- builders ---------------------------------------------------------------------------------


def _batched(x, op):
    """``x`` as NCHW, and whether it came unbatched (CHW), which PyTorch also takes."""
    x = as_node(x)
    if x.ndim == 3:
        return reshape(x, (1,) + x.shape), True
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected a CHW or NCHW input, got shape {x.shape}")
    return x, False


def _unbatched(y, was):
    return reshape(y, y.shape[1:]) if was else y


def _check_sizes(x, op):
    if 0 in x.shape[2:]:
        raise ShapeError(
            f"{op}: expected an input of non-zero height and width, got shape {x.shape}"
        )


def max_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
) -> Node:
    """Max over each (dilated) window, padding counting as -inf; the derivative goes to
    the first maximum of each window, as in PyTorch. ``x`` is NCHW or CHW.

    >>> import diffkit as dk
    >>> dk.max_pool2d(dk.variable("x", (1, 3, 8, 8)), 2).shape
    (1, 3, 4, 4)
    """
    x, was = _batched(x, "max_pool2d")
    attrs = _max_pool_attrs(kernel_size, stride, padding, dilation, ceil_mode)
    return _unbatched(apply(MAX_POOL2D, x, **attrs), was)


def _max_pool_attrs(kernel_size, stride, padding, dilation, ceil_mode) -> dict:
    kernel_size = pair(kernel_size, "kernel_size")
    stride = kernel_size if stride is None or stride == () else pair(stride, "stride")
    padding, dilation = pair(padding, "padding"), pair(dilation, "dilation")
    for k, p, d in zip(kernel_size, padding, dilation):
        if 2 * p > d * (k - 1) + 1:
            raise ShapeError(
                f"max_pool2d: padding {padding} should be at most half the effective "
                f"kernel (kernel {kernel_size}, dilation {dilation})"
            )
    return dict(
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=bool(ceil_mode),
    )


def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override=None,
) -> Node:
    """Mean over each window; the zero padding counts in the divisor by default
    (PyTorch's), and ``divisor_override`` replaces the divisor. ``x`` is NCHW or CHW."""
    x, was = _batched(x, "avg_pool2d")
    kernel_size = pair(kernel_size, "kernel_size")
    stride = kernel_size if stride is None or stride == () else pair(stride, "stride")
    padding = pair(padding, "padding")
    if 2 * padding[0] > kernel_size[0] or 2 * padding[1] > kernel_size[1]:
        raise ShapeError(
            f"avg_pool2d: padding {padding} should be at most half the kernel {kernel_size}"
        )
    if divisor_override is not None and not (
        isinstance(divisor_override, (int, np.integer)) and divisor_override > 0
    ):
        raise ValueError(
            f"avg_pool2d: divisor_override must be a positive integer, got {divisor_override!r}"
        )
    _geometry(x.shape, kernel_size, stride, padding, _ONE, ceil_mode, "avg_pool2d")
    cols = unfold(x, kernel_size, stride, padding, value=0.0, ceil_mode=ceil_mode)
    total = reduce_sum(cols, axis=(4, 5))
    if divisor_override is not None:
        return _unbatched(total / float(divisor_override), was)
    _, _, h, w = x.shape
    counts = np.outer(
        _counts(h, kernel_size[0], stride[0], padding[0], cols.shape[2], count_include_pad),
        _counts(w, kernel_size[1], stride[1], padding[1], cols.shape[3], count_include_pad),
    )
    if np.all(counts == kernel_size[0] * kernel_size[1]):
        return _unbatched(total / float(kernel_size[0] * kernel_size[1]), was)
    return _unbatched(total / const(counts), was)


def _counts(size, k, s, p, out, include_pad):
    """Per output position along one axis: how many entries PyTorch divides by."""
    starts = np.arange(out) * s - p
    ends = np.minimum(starts + k, size + p)
    if not include_pad:
        return (np.minimum(ends, size) - np.maximum(starts, 0)).astype(float)
    return (ends - starts).astype(float)


def _output_size(x, output_size, op):
    """PyTorch's ``output_size``: an int or a pair whose ``None`` entries keep the input's
    size."""
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size, output_size)
    try:
        oh, ow = output_size
    except (TypeError, ValueError):
        raise ValueError(
            f"{op}: output_size must be an int or a pair, got {output_size!r}"
        ) from None
    sizes = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate((oh, ow)))
    if not all(isinstance(s, (int, np.integer)) and s >= 0 for s in sizes):
        raise ValueError(
            f"{op}: output_size must hold non-negative ints or None, got {output_size!r}"
        )
    return tuple(int(s) for s in sizes)


def _bin_matrix(size: int, out: int) -> np.ndarray:
    """(out, size): row i averages bin i of one axis."""
    starts, ends = adaptive_bins(size, out)
    j = np.arange(size)
    inside = (j[None, :] >= starts[:, None]) & (j[None, :] < ends[:, None])
    return inside / (ends - starts)[:, None].astype(float)


def adaptive_avg_pool2d(x, output_size) -> Node:
    """The mean of each of PyTorch's adaptive bins, for an output of ``output_size`` (an
    int or a pair; ``None`` keeps the input's size). ``x`` is NCHW or CHW. Global
    average pooling is ``output_size=1``.

    >>> import diffkit as dk
    >>> dk.adaptive_avg_pool2d(dk.variable("x", (2, 3, 7, 5)), (2, None)).shape
    (2, 3, 2, 5)
    """
    x, was = _batched(x, "adaptive_avg_pool2d")
    _check_sizes(x, "adaptive_avg_pool2d")
    oh, ow = _output_size(x, output_size, "adaptive_avg_pool2d")
    _, _, h, w = x.shape
    if (oh, ow) == (1, 1):
        return _unbatched(reduce_mean(x, axis=(2, 3), keepdims=True), was)
    y = x
    if ow != w:  # the mean over each column bin: (N, C, H, W) @ (W, OW)
        y = matmul(y, const(_bin_matrix(w, ow).T))
    if oh != h:  # over each row bin: (OH, H) @ (N, C, H, OW)
        y = matmul(const(_bin_matrix(h, oh)), y)
    return _unbatched(y, was)


def adaptive_max_pool2d(x, output_size) -> Node:
    """The maximum of each of PyTorch's adaptive bins (the derivative to its first
    maximum), for an output of ``output_size`` (an int or a pair; ``None`` keeps the
    input's size). ``x`` is NCHW or CHW."""
    x, was = _batched(x, "adaptive_max_pool2d")
    _check_sizes(x, "adaptive_max_pool2d")
    size = _output_size(x, output_size, "adaptive_max_pool2d")
    return _unbatched(apply(ADAPTIVE_MAX_POOL2D, x, output_size=size), was)


def adaptive_max_pool2d_indices(x, output_size) -> Node:
    """The indices PyTorch's ``adaptive_max_pool2d(..., return_indices=True)`` returns:
    per bin, the flat position in the H×W plane of its first maximum (int64, no
    derivative). ``x`` is NCHW or CHW."""
    x, was = _batched(x, "adaptive_max_pool2d")
    _check_sizes(x, "adaptive_max_pool2d")
    size = _output_size(x, output_size, "adaptive_max_pool2d")
    return _unbatched(apply(ADAPTIVE_MAX_POOL2D_INDICES, x, output_size=size), was)

"""Pooling: max-pooling is a max over each window (the derivative goes to the first
maximum, as in PyTorch; ``max_pool2d_indices`` gives PyTorch's ``return_indices``), and
average pooling a sum divided by the window's size (or by ``divisor_override``). Adaptive
pooling is in :mod:`diffkit.ops.adaptive_pooling`.

Windows of max-pooling may be dilated: offset (p, q) of a window reads the input
``dilation`` entries apart. Output sizes follow floor((H + 2P - D(K-1) - 1) / S) + 1
(ceil with ``ceil_mode``, whose last window must start inside the input or its left
padding, as PyTorch). The builders take NCHW inputs and unbatched CHW ones.

The max-pooling gradient, and max-pooling over 2x2 windows at stride 2, run compiled
loops where the extension is built (:mod:`diffkit.ops.native`); their numpy versions
here are the reference.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import Op, Sample, Unsupported, register
from . import native
from .comparison import RELU, relu
from .reduce import sum as reduce_sum
from .shape import reshape
from ._batch import all_batched, with_attrs
from ._sparsity import gradient_rule, windows_rule
from .windows import _NO_SCALAR, _unfold_impl, pair, unfold
from .windows import _geometry as _window_geometry

__all__ = ["max_pool2d", "max_pool2d_indices", "avg_pool2d"]

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
        rules={"batch": _NO_BATCH, "sparsity": gradient_rule(_SPARSITY_POOL, True)},
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
        rules={"batch": _NO_BATCH, "sparsity": gradient_rule(_SPARSITY_POOL, False)},
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
    no derivative). ``x`` is NCHW or CHW.

    Args:
        x: an NCHW or CHW node.
        kernel_size: an int or a pair.
        stride: an int or a pair; None for the kernel size.
        padding: an int or a pair (at most half the kernel).
        dilation: an int or a pair: the spacing of a window's entries.
        ceil_mode: round the output size up, as PyTorch's.

    Returns:
        Node: int64 flat indices into H×W, of the pooled shape.

    Raises:
        ShapeError: the input is not NCHW/CHW or is smaller than a window.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (1, 1, 2, 4))
    >>> at = {"x": [[[[1.0, 5.0, 2.0, 2.0], [3.0, 0.0, 2.0, 1.0]]]]}
    >>> dk.evaluate(dk.max_pool2d_indices(x, 2), at=at).tolist()  # 5 at 1; the first 2 at 2
    [[[[1, 2]]]]
    """
    x, was = _batched(x, "max_pool2d")
    attrs = _max_pool_attrs(kernel_size, stride, padding, dilation, ceil_mode)
    return _unbatched(apply(MAX_POOL2D_INDICES, x, **attrs), was)


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

    Args:
        x: an NCHW or CHW node.
        kernel_size: an int or a pair.
        stride: an int or a pair; None for the kernel size.
        padding: an int or a pair (at most half the kernel).
        dilation: an int or a pair: the spacing of a window's entries.
        ceil_mode: round the output size up, as PyTorch's.

    Returns:
        Node: the maxima, (N, C, OH, OW) (CHW for CHW input).

    Raises:
        ShapeError: the input is not NCHW/CHW or is smaller than a window.

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
    (PyTorch's), and ``divisor_override`` replaces the divisor. ``x`` is NCHW or CHW.

    Args:
        x: an NCHW or CHW node.
        kernel_size: an int or a pair.
        stride: an int or a pair; None for the kernel size.
        padding: an int or a pair (at most half the kernel).
        ceil_mode: round the output size up, as PyTorch's.
        count_include_pad: count the zero padding in the divisor.
        divisor_override: a divisor for every window instead.

    Returns:
        Node: the means, (N, C, OH, OW) (CHW for CHW input).

    Raises:
        ShapeError: the input is not NCHW/CHW or is smaller than a window.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (1, 1, 4, 4))
    >>> dk.evaluate(dk.avg_pool2d(x, 2), at={"x": np.arange(16.0).reshape(1, 1, 4, 4)}).tolist()
    [[[[2.5, 4.5], [10.5, 12.5]]]]
    >>> y = dk.variable("y", (1, 1, 2, 2))  # padding 1: each window holds one entry of y
    >>> dk.evaluate(dk.avg_pool2d(y, 2, padding=1), at={"y": np.ones((1, 1, 2, 2))}).tolist()
    [[[[0.25, 0.25], [0.25, 0.25]]]]
    """
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

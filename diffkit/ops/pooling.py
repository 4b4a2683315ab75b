"""Pooling: max-pooling is a max over each window (the derivative goes to the first
maximum, as in PyTorch), average pooling a sum divided by the window's size.

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
from ._sparsity import windows_rule
from .windows import _NO_SCALAR, _geometry, _unfold_attrs, _unfold_impl, pair, unfold

__all__ = ["max_pool2d", "avg_pool2d"]


def _pool_windows(x, kernel_size, stride, padding, ceil_mode, value):
    """The padded input and, per kernel offset (p, q), the strided slice it contributes."""
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew = _geometry(
        x.shape, kernel_size, stride, padding, ceil_mode, "max_pool2d"
    )
    if ph or pw or eh or ew:
        padded = np.full((n, c, h + 2 * ph + eh, w + 2 * pw + ew), value, dtype=x.dtype)
        padded[:, :, ph : ph + h, pw : pw + w] = x
    else:
        padded = x
    slices = [
        (np.s_[:, :, p : p + sh * oh : sh, q : q + sw * ow : sw])
        for p in range(kh)
        for q in range(kw)
    ]
    return padded, slices, (ph, pw, h, w)


def _real(a):
    return a.real if a.dtype.kind == "c" else a


def _first_maxima(x, out, kernel_size, stride, padding, ceil_mode):
    """Per kernel offset, in row-major order over the window (as PyTorch scans it): the
    offset's strided slice of the padded input and the mask of the windows whose first
    maximum sits at that offset. The masks are disjoint; one buffer is reused for all of
    them, so use each before taking the next."""
    padded, slices, _ = _pool_windows(_real(x), kernel_size, stride, padding, ceil_mode, -np.inf)
    target = _real(out)
    free = np.ones(out.shape, dtype=bool)  # windows whose maximum is not placed yet
    mask = np.empty(out.shape, dtype=bool)
    for sl in slices:
        np.equal(padded[sl], target, out=mask)
        mask &= free
        yield sl, mask
        free ^= mask


def _max_pool_impl(x, kernel_size, stride, padding, ceil_mode=False):
    if tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0):
        hw = _pool_shape((x.shape,), kernel_size, stride, padding, ceil_mode)[2:]
        out = native.max_pool_2x2(x, hw)
        if out is not None:
            return out
    padded, slices, _ = _pool_windows(_real(x), kernel_size, stride, padding, ceil_mode, -np.inf)
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
    return _max_pool_select_impl(x, x, out, kernel_size, stride, padding, ceil_mode)


def _max_pool_backward_impl(ct, x, out, kernel_size, stride, padding, ceil_mode=False):
    grad = native.max_pool_backward(ct, x, out, kernel_size, stride, padding)
    if grad is not None:
        return grad
    n, c, h, w, kh, kw, sh, sw, ph, pw, _, _, eh, ew = _geometry(
        x.shape, kernel_size, stride, padding, ceil_mode, "max_pool2d"
    )
    grad = np.zeros((n, c, h + 2 * ph + eh, w + 2 * pw + ew), np.result_type(ct.dtype, x.dtype))
    disjoint = sh >= kh and sw >= kw
    for sl, placed in _at_first_maxima(ct, x, out, kernel_size, stride, padding, ceil_mode):
        if disjoint:  # windows do not overlap: each entry receives at most one cotangent
            grad[sl] = placed
        else:
            grad[sl] += placed
    return grad[:, :, ph : ph + h, pw : pw + w]


def _max_pool_select_impl(t, x, out, kernel_size, stride, padding, ceil_mode=False):
    tpad, _, _ = _pool_windows(t, kernel_size, stride, padding, ceil_mode, 0)
    result = np.zeros(out.shape, dtype=t.dtype)
    for _, placed in _at_first_maxima(tpad, x, out, kernel_size, stride, padding, ceil_mode, True):
        result += placed  # the masks are disjoint
    return result


def _at_first_maxima(values, x, out, kernel_size, stride, padding, ceil_mode, windowed=False):
    """Per kernel offset: its slice, and ``values`` (their slice at that offset if
    ``windowed``) where the offset holds its window's first maximum, 0 elsewhere. The
    product with the 0/1 mask is much faster than ``np.where``, and is used when the values
    are finite (0 times an infinite value would be NaN)."""
    finite = bool(np.isfinite(values).all())
    for sl, mask in _first_maxima(x, out, kernel_size, stride, padding, ceil_mode):
        v = values[sl] if windowed else values
        yield sl, (v * mask if finite else np.where(mask, v, 0))


def _pool_shape(shapes, kernel_size, stride, padding, ceil_mode=False):
    n, c, _, _, _, _, _, _, ph, pw, oh, ow, _, _ = _geometry(
        shapes[0], kernel_size, stride, padding, ceil_mode, "max_pool2d"
    )
    return (n, c, oh, ow)


_POOL_SAMPLES = (
    Sample(((2, 2, 5, 4),), {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}),
    Sample(
        ((1, 2, 5, 5),),
        {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1), "ceil_mode": True},
    ),
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


# max over a window: an output depends on its window's entries (padding: none)
_SPARSITY_POOL = windows_rule(_unfold_impl, lambda node: _unfold_attrs(node.attrs), True)


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
        doc="max over KxK windows (padding counts as -inf)",
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
        ),
        analytic=False,
        doc="the tangent of max_pool2d: t at each window's first maximum",
        rules={"batch": _NO_BATCH},
    )
)


def _pool_grad_sample(rng, n=1):
    x = rng.standard_normal((n, 2, 4, 4))
    y = _max_pool_impl(x, (2, 2), (2, 2), (0, 0))
    return [rng.standard_normal((n, 2, 2, 2)), x, y]


def _pool_select_sample(rng, n=1):
    x = rng.standard_normal((n, 2, 4, 4))
    y = _max_pool_impl(x, (2, 2), (2, 2), (0, 0))
    return [rng.standard_normal((n, 2, 4, 4)), x, y]


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Node:
    """Max over each window (padding counts as -inf); the derivative goes to the first
    maximum of each window, as in PyTorch."""
    x = as_node(x)
    kernel_size = pair(kernel_size, "kernel_size")
    stride = kernel_size if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding")
    if padding[0] * 2 > kernel_size[0] or padding[1] * 2 > kernel_size[1]:
        raise ShapeError(
            f"max_pool2d: padding {padding} should be at most half the kernel {kernel_size}"
        )
    return apply(
        MAX_POOL2D,
        x,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        ceil_mode=bool(ceil_mode),
    )


def avg_pool2d(
    x, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True
) -> Node:
    """Mean over each window; the zero padding counts in the divisor by default (PyTorch)."""
    x = as_node(x)
    kernel_size = pair(kernel_size, "kernel_size")
    stride = kernel_size if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding")
    cols = unfold(x, kernel_size, stride, padding, value=0.0, ceil_mode=ceil_mode)
    total = reduce_sum(cols, axis=(4, 5))
    _, _, h, w = x.shape
    counts = np.outer(
        _counts(h, kernel_size[0], stride[0], padding[0], cols.shape[2], count_include_pad),
        _counts(w, kernel_size[1], stride[1], padding[1], cols.shape[3], count_include_pad),
    )
    if np.all(counts == kernel_size[0] * kernel_size[1]):
        return total / float(kernel_size[0] * kernel_size[1])
    return total / const(counts)


def _counts(size, k, s, p, out, include_pad):
    """Per output position along one axis: how many entries PyTorch divides by."""
    starts = np.arange(out) * s - p
    ends = np.minimum(starts + k, size + p)
    if not include_pad:
        return (np.minimum(ends, size) - np.maximum(starts, 0)).astype(float)
    return (ends - starts).astype(float)

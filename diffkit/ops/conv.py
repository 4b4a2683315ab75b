"""Windows of images: ``unfold`` (im2col as a strided view) and its adjoint ``fold``
(col2im), the window matrix ``im2col`` and its adjoint ``col2im``, and what is composed
from them: ``conv2d``, ``max_pool2d``, ``avg_pool2d``.

``unfold`` returns the K×K windows of a padded, strided NCHW input as a strided
view of shape (N, C, OH, OW, KH, KW): no copy, no loop over pixels. Its VJP is
``fold``, a scatter-add with one vectorised step per kernel offset; ``fold``'s
VJP is ``unfold``. ``im2col`` lays the same windows out as one matrix
(C·KH·KW, N·OH·OW), the operand of convolution's single matrix product; ``col2im`` is
its adjoint. Max-pooling is a max over each window (the derivative goes to the first
maximum, as in PyTorch), average pooling a sum divided by the window's size. Output
sizes follow floor((W - K + 2P) / S) + 1 (ceil with ``ceil_mode``, as PyTorch).

im2col, col2im and the max-pooling gradient run compiled loops where the extension is
built (:mod:`diffkit.ops.native`); their numpy versions here are the reference.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import LINEAR, Op, Sample, Unsupported, register
from . import native
from .comparison import RELU, relu
from .reduce import sum as reduce_sum
from .shape import _sum_tangents, matmul, reshape, transpose

__all__ = [
    "unfold",
    "fold",
    "im2col",
    "col2im",
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "output_size",
    "pair",
]

_NO_SCALAR = Unsupported(
    "an image op: no scalar form (convolution and pooling are not expanded symbolically)"
)


def pair(value, name: str = "argument") -> tuple[int, int]:
    """``value`` (an int or a pair) as a pair of ints."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """floor((size - kernel + 2 padding) / stride) + 1, or PyTorch's ceil mode."""
    span = size + 2 * padding - kernel
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:  # the last window must start inside the input
        out -= 1
    return out


def _geometry(shape, kernel_size, stride, padding, ceil_mode, op="unfold"):
    if len(shape) != 4:
        raise ShapeError(f"{op}: expected an NCHW input of 4 dimensions, got shape {shape}")
    n, c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ShapeError(
            f"{op}: kernel {kernel_size} and stride {stride} must be positive and "
            f"padding {padding} non-negative"
        )
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ShapeError(
            f"{op}: input of size {h}x{w} with padding {ph}x{pw} is smaller than "
            f"the kernel {kh}x{kw}"
        )
    oh = output_size(h, kh, sh, ph, ceil_mode)
    ow = output_size(w, kw, sw, pw, ceil_mode)
    # extra right/bottom padding so that every (ceil-mode) window lies in the array
    eh = max(0, (oh - 1) * sh + kh - (h + 2 * ph))
    ew = max(0, (ow - 1) * sw + kw - (w + 2 * pw))
    return n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew


def _unfold_shape(shapes, kernel_size, stride, padding, value=0.0, ceil_mode=False):
    n, c, _, _, kh, kw, _, _, _, _, oh, ow, _, _ = _geometry(
        shapes[0], kernel_size, stride, padding, ceil_mode
    )
    return (n, c, oh, ow, kh, kw)


def _unfold_impl(x, kernel_size, stride, padding, value=0.0, ceil_mode=False):
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew = _geometry(
        x.shape, kernel_size, stride, padding, ceil_mode
    )
    if ph or pw or eh or ew:
        padded = np.full((n, c, h + 2 * ph + eh, w + 2 * pw + ew), value, dtype=x.dtype)
        padded[:, :, ph : ph + h, pw : pw + w] = x
    else:
        padded = np.ascontiguousarray(x)
    s = padded.strides
    return np.lib.stride_tricks.as_strided(
        padded,
        (n, c, oh, ow, kh, kw),
        (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]),
        writeable=False,
    )


def _fold_impl(cols, input_shape, kernel_size, stride, padding, ceil_mode=False):
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew = _geometry(
        input_shape, kernel_size, stride, padding, ceil_mode
    )
    # accumulate channel-major: conv2d's windows are laid out (C, KH, KW, N, OH, OW), so each
    # (p, q) block read below is contiguous
    src = cols.transpose(4, 5, 1, 0, 2, 3)
    out = np.zeros((c, n, h + 2 * ph + eh, w + 2 * pw + ew), dtype=cols.dtype)
    for p in range(kh):  # one vectorised scatter-add per kernel offset
        for q in range(kw):
            out[:, :, p : p + sh * oh : sh, q : q + sw * ow : sw] += src[p, q]
    return out[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)


def _unfold_attrs(attrs):
    return {k: attrs[k] for k in ("kernel_size", "stride", "padding", "ceil_mode") if k in attrs}


UNFOLD = register(
    Op(
        name="unfold",
        shape=_unfold_shape,
        impl=_unfold_impl,
        # the adjoint of gathering windows is scatter-adding them back
        vjp=lambda ct, out, x, **a: (fold(ct, x.shape, **_unfold_attrs(a)),),
        # linear in x; the tangent's padding is zero whatever the primal's padding value
        jvp=lambda tangents, out, x, **a: apply(UNFOLD, tangents[0], value=0.0, **_unfold_attrs(a)),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(((2, 2, 5, 4),), {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0)}),
            Sample(
                ((1, 1, 5, 5),),
                {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": True},
            ),
        ),
        analytic=True,
        doc="the KxK windows of an NCHW input: (N, C, OH, OW, KH, KW)",
    )
)

FOLD = register(
    Op(
        name="fold",
        shape=lambda shapes, input_shape, **a: _check_fold(shapes[0], input_shape, a),
        impl=_fold_impl,
        # the adjoint of scatter-adding windows is gathering them
        vjp=lambda ct, out, cols, input_shape, **a: (apply(UNFOLD, ct, value=0.0, **a),),
        jvp=LINEAR,
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(
                ((2, 2, 5, 2, 3, 2),),
                {
                    "input_shape": (2, 2, 5, 4),
                    "kernel_size": (3, 2),
                    "stride": (1, 2),
                    "padding": (1, 0),
                },
            ),
        ),
        analytic=True,
        doc="scatter-add windows back into an NCHW array (col2im)",
    )
)


def _check_fold(shape, input_shape, attrs):
    expected = _unfold_shape((tuple(input_shape),), **attrs)
    if tuple(shape) != expected:
        raise ShapeError(
            f"fold: windows of shape {shape} do not match input {input_shape} (expected {expected})"
        )
    return tuple(input_shape)


def unfold(x, kernel_size, stride=1, padding=0, value: float = 0.0, ceil_mode: bool = False):
    """The windows of an NCHW input, shape (N, C, OH, OW, KH, KW).

    Args:
        x: an NCHW node.
        kernel_size, stride, padding: ints or pairs.
        value: the padding value (0 for convolution, -inf for max-pooling).
        ceil_mode: round the output size up, as PyTorch's pooling does.
    """
    return apply(
        UNFOLD,
        x,
        kernel_size=pair(kernel_size, "kernel_size"),
        stride=pair(stride, "stride"),
        padding=pair(padding, "padding"),
        value=float(value),
        ceil_mode=bool(ceil_mode),
    )


def fold(cols, input_shape, kernel_size, stride=1, padding=0, ceil_mode: bool = False):
    """Scatter-add windows (N, C, OH, OW, KH, KW) back into an array of ``input_shape``."""
    return apply(
        FOLD,
        cols,
        input_shape=tuple(input_shape),
        kernel_size=pair(kernel_size),
        stride=pair(stride),
        padding=pair(padding),
        ceil_mode=bool(ceil_mode),
    )


def _im2col_geometry(shape, kernel_size, stride, padding, op="im2col"):
    n, c, _, _, kh, kw, _, _, _, _, oh, ow, _, _ = _geometry(
        shape, kernel_size, stride, padding, False, op
    )
    return n, c, kh, kw, oh, ow


def _im2col_impl(x, kernel_size, stride, padding):
    n, c, kh, kw, oh, ow = _im2col_geometry(x.shape, kernel_size, stride, padding)
    out = native.im2col(x, kernel_size, stride, padding, (oh, ow))
    if out is not None:
        return out
    cols = _unfold_impl(x, kernel_size, stride, padding)
    return cols.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)


def _col2im_impl(cols, input_shape, kernel_size, stride, padding):
    n, c, kh, kw, oh, ow = _im2col_geometry(input_shape, kernel_size, stride, padding, "col2im")
    out = native.col2im(cols, input_shape, kernel_size, stride, padding, (oh, ow))
    if out is not None:
        return out
    windows = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
    return _fold_impl(windows, input_shape, kernel_size, stride, padding)


def _im2col_shape(shapes, kernel_size, stride, padding):
    n, c, kh, kw, oh, ow = _im2col_geometry(shapes[0], kernel_size, stride, padding)
    return (c * kh * kw, n * oh * ow)


def _check_col2im(shape, input_shape, attrs):
    expected = _im2col_shape((tuple(input_shape),), **attrs)
    if tuple(shape) != expected:
        raise ShapeError(
            f"col2im: windows of shape {shape} do not match input {input_shape} "
            f"(expected {expected})"
        )
    return tuple(input_shape)


_IM2COL_ATTRS = {"kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 0)}

IM2COL = register(
    Op(
        name="im2col",
        shape=_im2col_shape,
        impl=_im2col_impl,
        vjp=lambda ct, out, x, **a: (apply(COL2IM, ct, input_shape=x.shape, **a),),
        jvp=LINEAR,
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(((2, 2, 5, 4),), _IM2COL_ATTRS),
            Sample(((1, 3, 4, 6),), {"kernel_size": (2, 3), "stride": (2, 1), "padding": (0, 2)}),
        ),
        analytic=True,
        doc="the windows of an NCHW input as one matrix (C·KH·KW, N·OH·OW), zero padded",
    )
)

COL2IM = register(
    Op(
        name="col2im",
        shape=lambda shapes, input_shape, **a: _check_col2im(shapes[0], input_shape, a),
        impl=_col2im_impl,
        vjp=lambda ct, out, cols, input_shape, **a: (apply(IM2COL, ct, **a),),
        jvp=LINEAR,
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(Sample(((12, 20),), {"input_shape": (2, 2, 5, 4), **_IM2COL_ATTRS}),),
        analytic=True,
        doc="scatter-add a window matrix (C·KH·KW, N·OH·OW) back into an NCHW array",
    )
)


def im2col(x, kernel_size, stride=1, padding=0) -> Node:
    """The zero-padded windows of NCHW ``x`` as one matrix, shape (C·KH·KW, N·OH·OW):
    row (c, p, q) holds input channel c at kernel offset (p, q) for every output pixel.
    Its adjoint is :func:`col2im`."""
    return apply(
        IM2COL,
        as_node(x),
        kernel_size=pair(kernel_size, "kernel_size"),
        stride=pair(stride, "stride"),
        padding=pair(padding, "padding"),
    )


def col2im(cols, input_shape, kernel_size, stride=1, padding=0) -> Node:
    """Scatter-add a window matrix (C·KH·KW, N·OH·OW) into an NCHW array of
    ``input_shape``: the adjoint of :func:`im2col`."""
    return apply(
        COL2IM,
        as_node(cols),
        input_shape=tuple(input_shape),
        kernel_size=pair(kernel_size, "kernel_size"),
        stride=pair(stride, "stride"),
        padding=pair(padding, "padding"),
    )


def _windows(x, weight_shape, stride, padding):
    """im2col of x for a kernel of ``weight_shape``."""
    return _im2col_impl(x, tuple(weight_shape[2:]), stride, padding)


def _out_hw(x_shape, weight_shape, stride, padding):
    geo = _geometry(x_shape, tuple(weight_shape[2:]), stride, padding, False, "conv2d")
    return geo[10], geo[11]


def _direct_impl(x, w, stride, padding):
    out = native.conv_direct(x, w, stride, padding, _out_hw(x.shape, w.shape, stride, padding))
    if out is not None:
        return out
    return w.reshape(w.shape[0], -1) @ _windows(x, w.shape, stride, padding)


def _direct_weight_grad_impl(ct, x, weight_shape, stride, padding):
    hw = _out_hw(x.shape, weight_shape, stride, padding)
    dw = native.conv_direct_weight_grad(ct, x, weight_shape, stride, padding, hw)
    if dw is not None:
        return dw
    return (ct @ _windows(x, weight_shape, stride, padding).T).reshape(weight_shape)


def _direct_shape(shapes, stride, padding):
    x, w = shapes
    if len(x) != 4 or len(w) != 4 or x[1] != w[1]:
        raise ShapeError(f"conv2d_direct: input {x} does not match weight {w}")
    oh, ow = _out_hw(x, w, stride, padding)
    return (w[0], x[0] * oh * ow)


def _conv_input_grad(ct, weight, x_shape, stride, padding):
    """The input gradient of a convolution whose product is (O, N·OH·OW): col2im of the
    transposed weight times the cotangent."""
    o, c, kh, kw = weight.shape
    w2 = transpose(reshape(weight, (o, c * kh * kw)), (1, 0))
    return col2im(matmul(w2, ct), x_shape, (kh, kw), stride, padding)


CONV2D_DIRECT = register(
    Op(
        name="conv2d_direct",
        shape=_direct_shape,
        impl=_direct_impl,
        vjp=lambda ct, out, x, w, **a: (
            _conv_input_grad(ct, w, x.shape, **a),
            apply(CONV2D_DIRECT_WEIGHT_GRAD, ct, x, weight_shape=w.shape, **a),
        ),
        jvp=lambda tangents, out, x, w, **a: _sum_tangents(
            None if tangents[0] is None else apply(CONV2D_DIRECT, tangents[0], w, **a),
            None if tangents[1] is None else apply(CONV2D_DIRECT, x, tangents[1], **a),
        ),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(((2, 2, 5, 4), (3, 2, 3, 2)), {"stride": (2, 1), "padding": (1, 0)}),
            Sample(((1, 1, 6, 7), (2, 1, 3, 3)), {"stride": (1, 1), "padding": (1, 1)}),
        ),
        analytic=True,
        doc="reshape(w, (O, C·KH·KW)) @ im2col(x), computed without the window matrix",
    )
)

CONV2D_DIRECT_WEIGHT_GRAD = register(
    Op(
        name="conv2d_direct_weight_grad",
        shape=lambda shapes, weight_shape, **a: _check_weight_grad(shapes, weight_shape, a),
        impl=_direct_weight_grad_impl,
        # <G, ct im2col(x)^T> = <conv2d_direct(x, G), ct> = <x, col2im(G^T ct)>
        vjp=lambda g, out, ct, x, weight_shape, **a: (
            apply(CONV2D_DIRECT, x, g, **a),
            _conv_input_grad(ct, g, x.shape, **a),
        ),
        jvp=lambda tangents, out, ct, x, **a: _sum_tangents(
            None if tangents[0] is None else apply(CONV2D_DIRECT_WEIGHT_GRAD, tangents[0], x, **a),
            None if tangents[1] is None else apply(CONV2D_DIRECT_WEIGHT_GRAD, ct, tangents[1], **a),
        ),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(
                ((3, 18), (2, 2, 5, 4)),
                {"weight_shape": (3, 2, 3, 2), "stride": (2, 1), "padding": (1, 0)},
            ),
        ),
        analytic=True,
        doc="the weight gradient of conv2d_direct: ct @ im2col(x)^T, reshaped as the weight",
    )
)


def _check_weight_grad(shapes, weight_shape, attrs):
    ct, x = shapes
    expected = _direct_shape((x, tuple(weight_shape)), **attrs)
    if tuple(ct) != expected:
        raise ShapeError(
            f"conv2d_direct_weight_grad: cotangent {ct} does not match input {x} and weight "
            f"{weight_shape} (expected {expected})"
        )
    return tuple(weight_shape)


def conv2d(x, weight, bias=None, stride=1, padding=0) -> Node:
    """2-D cross-correlation (PyTorch's ``conv2d``) of NCHW ``x`` with OIHW ``weight``.

    Computed as one matrix product, (O, C·KH·KW) @ (C·KH·KW, N·OH·OW), of the weight and
    the input's window matrix (:func:`im2col`); the window matrix is one node, shared by
    the weight gradient, and the input gradient is its adjoint :func:`col2im`. Small
    windows (at most 64 entries and 16 columns, stride 1 along the rows: first layers on
    images of few channels) take the op ``conv2d_direct`` instead, which computes the same
    product without the window matrix (with compiled loops for float32 on CPUs with AVX2).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (1, 1, 4, 4)); w = dk.variable("w", (2, 1, 3, 3))
    >>> dk.conv2d(x, w, padding=1).shape
    (1, 2, 4, 4)
    """
    x, weight = as_node(x), as_node(weight)
    if weight.ndim != 4:
        raise ShapeError(f"conv2d: weight must have shape (out, in, kh, kw), got {weight.shape}")
    if x.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ShapeError(
            f"conv2d: input of shape {x.shape} does not match weight of shape "
            f"{weight.shape} (expected NCHW with C = {weight.shape[1]})"
        )
    o, c, kh, kw = weight.shape
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    n, _, _, _, _, _, _, _, _, _, oh, ow, _, _ = _geometry(
        x.shape, (kh, kw), stride, padding, False, "conv2d"
    )
    if bias is not None:
        bias = as_node(bias)
        if bias.shape != (o,):
            raise ShapeError(f"conv2d: bias must have shape ({o},), got {bias.shape}")
    if native.direct_applies(weight.shape, stride):  # small windows: no window matrix
        out = apply(CONV2D_DIRECT, x, weight, stride=stride, padding=padding)
    else:
        flat = im2col(x, (kh, kw), stride, padding)  # (C·KH·KW, N·OH·OW)
        out = matmul(reshape(weight, (o, c * kh * kw)), flat)  # (O, N·OH·OW)
    if bias is not None:  # added along the rows, so that its gradient sums contiguous rows
        out = out + reshape(bias, (o, 1))
    return transpose(reshape(out, (o, n, oh, ow)), (1, 0, 2, 3))


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
        ),
        analytic=False,
        doc="the gradient of max_pool2d: the cotangent at each first maximum",
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
        ),
        analytic=False,
        doc="the tangent of max_pool2d: t at each window's first maximum",
    )
)


def _pool_grad_sample(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    y = _max_pool_impl(x, (2, 2), (2, 2), (0, 0))
    return [rng.standard_normal((1, 2, 2, 2)), x, y]


def _pool_select_sample(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    y = _max_pool_impl(x, (2, 2), (2, 2), (0, 0))
    return [rng.standard_normal((1, 2, 4, 4)), x, y]


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

"""Convolution: ``conv2d`` as one matrix product of the weight with the ``im2col`` matrix
of the input, or, at stride 1, a direct convolution (``conv2d_direct``, its weight
gradient and its input gradient: compiled loops for float32 and float64, with numpy
versions as the reference).
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import Op, Sample, Unsupported, register
from . import native
from .reduce import sum as reduce_sum
from .shape import _sum_tangents, broadcast_to, matmul, reshape, transpose
from ._sparsity import windows_rule
from .windows import _NO_SCALAR, _col2im_impl, _geometry, _im2col_impl, _unfold_impl, im2col, pair

__all__ = ["conv2d"]


def _windows(x, weight_shape, stride, padding):
    """im2col of x for a kernel of ``weight_shape``."""
    return _im2col_impl(x, tuple(weight_shape[2:]), stride, padding)


def _out_hw(x_shape, weight_shape, stride, padding):
    geo = _geometry(x_shape, tuple(weight_shape[2:]), stride, padding, False, "conv2d")
    return geo[10], geo[11]


# the window matrix is built for this many entries at a time (2 MiB in float32: it stays
# in cache between im2col and the product that reads it), a slice of the batch at a time
CHUNK_ENTRIES = 1 << 20


def _chunks(x_shape, weight_shape, stride, padding):
    """Slices of the batch, and the matching column ranges of the (·, N·OH·OW) products,
    each with at most CHUNK_ENTRIES entries of window matrix (one sample at least); a
    batch of 0 is one empty slice."""
    oh, ow = _out_hw(x_shape, weight_shape, stride, padding)
    per_sample = int(np.prod(weight_shape[1:])) * oh * ow
    step = max(1, CHUNK_ENTRIES // max(per_sample, 1))
    n = x_shape[0]
    for n0 in range(0, max(n, 1), step):
        n1 = min(n, n0 + step)
        yield slice(n0, n1), slice(n0 * oh * ow, n1 * oh * ow)


def _matrix(w):
    """The OIHW weight as the (O, C·KH·KW) matrix of the product (any of them may be 0)."""
    return w.reshape(w.shape[0], int(np.prod(w.shape[1:])))


def _direct_impl(x, w, *bias, stride, padding):
    """(O, N·OH·OW): the weight times the input's windows, plus the bias (O,) if given."""
    b = bias[0] if bias else None
    out = native.conv_direct(x, w, b, stride, padding, _out_hw(x.shape, w.shape, stride, padding))
    if out is not None:
        return out
    w2 = _matrix(w)
    chunks = list(_chunks(x.shape, w.shape, stride, padding))
    if len(chunks) == 1:
        out = w2 @ _windows(x, w.shape, stride, padding)
    else:
        out = np.empty((w.shape[0], chunks[-1][1].stop), np.result_type(x, w))
        for b_, cols in chunks:  # each product written into its columns of the result
            np.matmul(w2, _windows(x[b_], w.shape, stride, padding), out=out[:, cols])
    if b is not None:
        out = out + b.reshape(-1, 1)  # not in place: the dtypes may differ
    return out


def _direct_weight_grad_impl(ct, x, weight_shape, stride, padding):
    hw = _out_hw(x.shape, weight_shape, stride, padding)
    dw = native.conv_direct_weight_grad(ct, x, weight_shape, stride, padding, hw)
    if dw is not None:
        return dw
    total = part = None
    for b, cols in _chunks(x.shape, weight_shape, stride, padding):
        windows = _windows(x[b], weight_shape, stride, padding)
        if total is None:
            total = ct[:, cols] @ windows.T
            part = np.empty_like(total)
        else:
            total += np.matmul(ct[:, cols], windows.T, out=part)
    return total.reshape(weight_shape)


def _input_grad_impl(ct, w, x_shape, stride, padding):
    """col2im(w2ᵀ ct): the input gradient, a slice of the batch at a time."""
    hw = _out_hw(x_shape, w.shape, stride, padding)
    dx = native.conv_direct_input_grad(ct, w, x_shape, stride, padding, hw)
    if dx is not None:
        return dx
    o, c, kh, kw = w.shape
    w2t = _matrix(w).T
    dx = np.empty(tuple(x_shape), np.result_type(ct, w))
    for b, cols in _chunks(x_shape, w.shape, stride, padding):
        shape = (b.stop - b.start,) + tuple(x_shape[1:])
        dx[b] = _col2im_impl(w2t @ ct[:, cols], shape, (kh, kw), stride, padding)
    return dx


def _direct_shape(shapes, stride, padding):
    x, w = shapes[:2]
    if len(x) != 4 or len(w) != 4 or x[1] != w[1]:
        raise ShapeError(f"conv2d_direct: input {x} does not match weight {w}")
    if len(shapes) == 3 and tuple(shapes[2]) != (w[0],):
        raise ShapeError(f"conv2d_direct: bias {shapes[2]} does not match weight {w}")
    oh, ow = _out_hw(x, w, stride, padding)
    return (w[0], x[0] * oh * ow)


def _direct_vjp(ct, out, x, w, *bias, **a):
    grads = (
        _conv_input_grad(ct, w, x.shape, **a),
        apply(CONV2D_DIRECT_WEIGHT_GRAD, ct, x, weight_shape=w.shape, **a),
    )
    return grads + ((reduce_sum(ct, axis=1),) if bias else ())


def _direct_jvp(tangents, out, x, w, *bias, **a):
    tx, tw = tangents[:2]
    tb = tangents[2] if bias else None
    return _sum_tangents(
        None if tx is None else apply(CONV2D_DIRECT, tx, w, **a),
        None if tw is None else apply(CONV2D_DIRECT, x, tw, **a),
        None if tb is None else broadcast_to(reshape(tb, (w.shape[0], 1)), out.shape),
    )


def _conv_input_grad(ct, weight, x_shape, stride, padding):
    """The input gradient of a convolution whose product is (O, N·OH·OW): col2im of the
    transposed weight times the cotangent."""
    return apply(
        CONV2D_INPUT_GRAD, ct, weight, x_shape=tuple(x_shape), stride=stride, padding=padding
    )


def _input_grad_shape(shapes, x_shape, stride, padding):
    ct, w = shapes
    expected = _direct_shape((tuple(x_shape), w), stride, padding)
    if tuple(ct) != expected:
        raise ShapeError(
            f"conv2d_input_grad: cotangent {ct} does not match input {tuple(x_shape)} and "
            f"weight {w} (expected {expected})"
        )
    return tuple(x_shape)


#: the image kernels take one batch axis (N of NCHW); Jacobians through them evaluate one
#: direction at a time
_NO_BATCH = Unsupported("an image kernel with one batch axis")


CONV2D_INPUT_GRAD = register(
    Op(
        name="conv2d_input_grad",
        shape=_input_grad_shape,
        impl=_input_grad_impl,
        # <col2im(W2ᵀ ct), g> = <ct, W2 im2col(g)> = <ct, conv2d_direct(g, W)>
        vjp=lambda g, out, ct, w, x_shape, **a: (
            apply(CONV2D_DIRECT, g, w, **a),
            apply(CONV2D_DIRECT_WEIGHT_GRAD, ct, g, weight_shape=w.shape, **a),
        ),
        jvp=lambda tangents, out, ct, w, **a: _sum_tangents(
            None if tangents[0] is None else apply(CONV2D_INPUT_GRAD, tangents[0], w, **a),
            None if tangents[1] is None else apply(CONV2D_INPUT_GRAD, ct, tangents[1], **a),
        ),
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(
                ((3, 18), (3, 2, 3, 2)),
                {"x_shape": (2, 2, 5, 4), "stride": (2, 1), "padding": (1, 0)},
            ),
            # a batch of 0, and no output channels (the gradient is 0)
            Sample(
                ((3, 0), (3, 2, 3, 2)),
                {"x_shape": (0, 2, 5, 4), "stride": (1, 1), "padding": (1, 0)},
            ),
            Sample(
                ((0, 30), (0, 2, 3, 2)),
                {"x_shape": (2, 2, 5, 4), "stride": (1, 1), "padding": (1, 0)},
            ),
        ),
        analytic=True,
        doc="the input gradient of conv2d_direct: col2im(w2ᵀ @ ct)",
        threaded=True,
        rules={"batch": _NO_BATCH, "remat": "dot"},
    )
)


def _conv_windows(node):
    w = node.inputs[1]
    return {
        "kernel_size": tuple(w.shape[2:]),
        "stride": node.attrs["stride"],
        "padding": node.attrs["padding"],
    }


# an output depends on its window over every input channel, and on its channel's weights
_SPARSITY_CONV = windows_rule(_unfold_impl, _conv_windows, False)


CONV2D_DIRECT = register(
    Op(
        name="conv2d_direct",
        shape=_direct_shape,
        impl=_direct_impl,
        vjp=_direct_vjp,
        jvp=_direct_jvp,
        mpmath=_NO_SCALAR,
        sympy=_NO_SCALAR,
        samples=(
            Sample(((2, 2, 5, 4), (3, 2, 3, 2)), {"stride": (2, 1), "padding": (1, 0)}),
            Sample(((1, 1, 6, 7), (2, 1, 3, 3)), {"stride": (1, 1), "padding": (1, 1)}),
            Sample(((2, 3, 5, 6), (5, 3, 2, 3), (5,)), {"stride": (1, 1), "padding": (0, 1)}),
            # no input channels: the output is the bias
            Sample(((2, 0, 5, 6), (5, 0, 2, 3), (5,)), {"stride": (1, 1), "padding": (0, 1)}),
        ),
        analytic=True,
        doc="reshape(w, (O, C·KH·KW)) @ im2col(x) (+ bias), computed without the window matrix",
        threaded=True,
        rules={"batch": _NO_BATCH, "sparsity": _SPARSITY_CONV, "remat": "dot"},
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
            # a batch of 0: the gradient is 0
            Sample(
                ((3, 0), (0, 2, 5, 4)),
                {"weight_shape": (3, 2, 3, 2), "stride": (1, 1), "padding": (1, 0)},
            ),
        ),
        analytic=True,
        doc="the weight gradient of conv2d_direct: ct @ im2col(x)^T, reshaped as the weight",
        threaded=True,
        rules={"batch": _NO_BATCH, "remat": "dot"},
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
    the weight gradient, and the input gradient is its adjoint :func:`col2im`. At stride 1
    (windows of at most 1024 entries, at most 256 output channels) the op
    ``conv2d_direct`` computes the same product without the window matrix (with compiled
    loops on CPUs with AVX2 and FMA, which read each sample in place); so does
    a window matrix of more than ``CHUNK_ENTRIES`` entries, which ``conv2d_direct`` and
    its gradients then build a slice of the batch at a time.

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
    window_entries = c * kh * kw * n * oh * ow
    if native.direct_applies(weight.shape, stride) or window_entries > CHUNK_ENTRIES:
        # directly (stride 1), or through the window matrix a slice of the batch at a
        # time, so that it never exists whole; the bias is added as the product is stored
        inputs = (x, weight) if bias is None else (x, weight, bias)
        out = apply(CONV2D_DIRECT, *inputs, stride=stride, padding=padding)
    else:  # one window matrix, shared by the product and the weight gradient
        flat = im2col(x, (kh, kw), stride, padding)  # (C·KH·KW, N·OH·OW)
        out = matmul(reshape(weight, (o, c * kh * kw)), flat)  # (O, N·OH·OW)
        if bias is not None:  # added along the rows: its gradient sums contiguous rows
            out = out + reshape(bias, (o, 1))
    return transpose(reshape(out, (o, n, oh, ow)), (1, 0, 2, 3))

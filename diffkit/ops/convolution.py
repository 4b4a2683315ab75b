"""Convolution: ``conv2d`` as one matrix product of the weight with the ``im2col`` matrix
of the input, or, for small windows in float32, a direct convolution (``conv2d_direct``
and its weight gradient, compiled loops with numpy versions as the reference).
"""

from __future__ import annotations


from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import Op, Sample, register
from . import native
from .shape import _sum_tangents, matmul, reshape, transpose
from .windows import _NO_SCALAR, _geometry, _im2col_impl, col2im, im2col, pair

__all__ = ["conv2d"]


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

"""Convolution: ``conv2d`` as one matrix product of the weight with the ``im2col`` matrix
of the input, or a direct convolution (``conv2d_direct``, its weight gradient and its
input gradient: compiled loops for float32 and float64 at strides up to 4, with numpy
versions as the reference).
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import Op, Sample, Unsupported, register
from . import native
from .joining import pad
from .reduce import sum as reduce_sum
from .shape import _sum_tangents, broadcast_to, matmul, reshape, transpose
from ._sparsity import _from_pairs, _numbered, grouped
from .windows import _NO_SCALAR, _col2im_impl, _geometry, _im2col_impl, _unfold_impl, im2col, pair

__all__ = ["conv2d", "conv_transpose2d"]


def _windows(x, weight_shape, stride, padding, dilation=(1, 1)):
    """im2col of x for a kernel of ``weight_shape``."""
    return _im2col_impl(x, tuple(weight_shape[2:]), stride, padding, dilation)


def _out_hw(x_shape, weight_shape, stride, padding, dilation=(1, 1)):
    geo = _geometry(
        x_shape, tuple(weight_shape[2:]), stride, padding, False, "conv2d", dilation=dilation
    )
    return geo[10], geo[11]


# the window matrix is built for this many entries at a time (2 MiB in float32: it stays
# in cache between im2col and the product that reads it), a slice of the batch at a time
CHUNK_ENTRIES = 1 << 20


def _chunks(x_shape, weight_shape, stride, padding, dilation=(1, 1)):
    """Slices of the batch, and the matching column ranges of the (·, N·OH·OW) products,
    each with at most CHUNK_ENTRIES entries of window matrix (one sample at least); a
    batch of 0 is one empty slice."""
    oh, ow = _out_hw(x_shape, weight_shape, stride, padding, dilation)
    per_sample = int(x_shape[1] * np.prod(weight_shape[2:])) * oh * ow
    step = max(1, CHUNK_ENTRIES // max(per_sample, 1))
    n = x_shape[0]
    for n0 in range(0, max(n, 1), step):
        n1 = min(n, n0 + step)
        yield slice(n0, n1), slice(n0 * oh * ow, n1 * oh * ow)


def _grouped(w, groups):
    """The OIHW weight as ``groups`` matrices (G, O/G, C/G·KH·KW) (any size may be 0)."""
    return w.reshape(groups, w.shape[0] // groups, int(np.prod(w.shape[1:])))


def _direct_impl(x, w, *bias, stride, padding, dilation=(1, 1), groups=1):
    """(O, N·OH·OW): the weight times the input's windows, group by group, plus the bias
    (O,) if given."""
    b = bias[0] if bias else None
    hw = _out_hw(x.shape, w.shape, stride, padding, dilation)
    out = native.conv_direct(x, w, b, stride, padding, hw, dilation, groups)
    if out is not None:
        return out
    w3 = _grouped(w, groups)
    chunks = list(_chunks(x.shape, w.shape, stride, padding, dilation))
    out = np.empty((w.shape[0], chunks[-1][1].stop), np.result_type(x, w))
    out3 = out.reshape(w3.shape[:2] + out.shape[1:])
    for b_, cols in chunks:  # each product written into its columns of the result
        windows = _windows(x[b_], w.shape, stride, padding, dilation)
        windows = windows.reshape(w3.shape[0], w3.shape[2], cols.stop - cols.start)
        np.matmul(w3, windows, out=out3[:, :, cols])
    if b is not None:
        out = out + b.reshape(-1, 1)  # not in place: the dtypes may differ
    return out


def _direct_weight_grad_impl(ct, x, weight_shape, stride, padding, dilation=(1, 1), groups=1):
    hw = _out_hw(x.shape, weight_shape, stride, padding, dilation)
    dw = native.conv_direct_weight_grad(ct, x, weight_shape, stride, padding, hw, dilation, groups)
    if dw is not None:
        return dw
    ct3 = ct.reshape(groups, ct.shape[0] // groups, ct.shape[1])
    total = part = None
    for b, cols in _chunks(x.shape, weight_shape, stride, padding, dilation):
        windows = _windows(x[b], weight_shape, stride, padding, dilation)
        windows = windows.reshape(groups, windows.shape[0] // groups, windows.shape[1])
        windows = windows.transpose(0, 2, 1)
        if total is None:
            total = ct3[:, :, cols] @ windows
            part = np.empty_like(total)
        else:
            total += np.matmul(ct3[:, :, cols], windows, out=part)
    return total.reshape(weight_shape)


def _input_grad_impl(ct, w, x_shape, stride, padding, dilation=(1, 1), groups=1):
    """col2im(w2ᵀ ct), group by group: the input gradient, a slice of the batch at a time."""
    hw = _out_hw(x_shape, w.shape, stride, padding, dilation)
    dx = native.conv_direct_input_grad(ct, w, x_shape, stride, padding, hw, dilation, groups)
    if dx is not None:
        return dx
    w3t = _grouped(w, groups).transpose(0, 2, 1)
    ct3 = ct.reshape(groups, ct.shape[0] // groups, ct.shape[1])
    dx = np.empty(tuple(x_shape), np.result_type(ct, w))
    for b, cols in _chunks(x_shape, w.shape, stride, padding, dilation):
        shape = (b.stop - b.start,) + tuple(x_shape[1:])
        rows = x_shape[1] * w.shape[2] * w.shape[3]
        windows = (w3t @ ct3[:, :, cols]).reshape(rows, cols.stop - cols.start)
        dx[b] = _col2im_impl(windows, shape, w.shape[2:], stride, padding, dilation)
    return dx


def _direct_shape(shapes, stride, padding, dilation=(1, 1), groups=1):
    x, w = shapes[:2]
    if len(x) != 4 or len(w) != 4 or x[1] != w[1] * groups or w[0] % groups:
        raise ShapeError(
            f"conv2d_direct: input {x} does not match weight {w}"
            + (f" in {groups} groups" if groups != 1 else "")
        )
    if len(shapes) == 3 and tuple(shapes[2]) != (w[0],):
        raise ShapeError(f"conv2d_direct: bias {shapes[2]} does not match weight {w}")
    oh, ow = _out_hw(x, w, stride, padding, dilation)
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


def _conv_input_grad(ct, weight, x_shape, **attrs):
    """The input gradient of a convolution whose product is (O, N·OH·OW): col2im of the
    transposed weight times the cotangent."""
    return apply(CONV2D_INPUT_GRAD, ct, weight, x_shape=tuple(x_shape), **attrs)


def _input_grad_shape(shapes, x_shape, **attrs):
    ct, w = shapes
    expected = _direct_shape((tuple(x_shape), w), **attrs)
    if tuple(ct) != expected:
        raise ShapeError(
            f"conv2d_input_grad: cotangent {ct} does not match input {tuple(x_shape)} and "
            f"weight {w} (expected {expected})"
        )
    return tuple(x_shape)


#: the image kernels take one batch axis (N of NCHW); Jacobians through them evaluate one
#: direction at a time
_NO_BATCH = Unsupported("an image kernel with one batch axis")

# the samples' dilated, grouped and depthwise geometries
_DG = {"dilation": (2, 1), "groups": 2}
_DW = {"dilation": (1, 2), "groups": 3}


def _window_pairs(x_shape, w_shape, attrs):
    """For every window entry that falls inside the input (not the padding) and every
    output channel that reads it: the output channel, the column of the product
    (N·OH·OW), the weight's flat index and the input's flat index."""
    groups = attrs.get("groups", 1)
    o, cg, kh, kw = w_shape
    windows = _unfold_impl(
        _numbered(x_shape),
        (kh, kw),
        attrs["stride"],
        attrs["padding"],
        dilation=attrs.get("dilation", (1, 1)),
    )  # entry numbers (N, C, OH, OW, KH, KW), 0 in the padding
    _, _, oh, ow = windows.shape[:4]
    n, c, i, j, p, q = np.nonzero(windows > 0)
    entry = windows[n, c, i, j, p, q].astype(np.int64) - 1
    og = o // groups
    channel = (c // cg)[:, None] * og + np.arange(og)[None, :]  # (entries, og)
    column = np.broadcast_to(((n * oh + i) * ow + j)[:, None], channel.shape)
    weight = ((channel * cg + (c % cg)[:, None]) * kh + p[:, None]) * kw + q[:, None]
    return channel, column, weight, np.broadcast_to(entry[:, None], channel.shape)


def _sparsity_input_grad(node, values=None) -> list:
    """Input entry e of col2im(W2ᵀ ct) depends on ct (o, p) where window p reads e for
    output channel o, and on the weight entries that multiply it there: the transpose of
    ``conv2d_direct``'s input pattern, and its weight pattern entry by entry."""
    ct, w = node.inputs
    channel, column, weight, entry = _window_pairs(node.shape, w.shape, node.attrs)
    m = ct.shape[1]
    size = int(np.prod(node.shape, dtype=np.int64))
    return [
        _from_pairs(entry, channel * m + column, (size, _size(ct.shape))),
        _from_pairs(entry, weight, (size, _size(w.shape))),
    ]


def _sparsity_weight_grad(node, values=None) -> list:
    """Weight entry (o, c, kh, kw) of ct im2col(x)ᵀ depends on row o of ct at the windows
    whose offset (kh, kw) falls inside the input, and on the input entries at that
    offset of every window."""
    ct, x = node.inputs
    channel, column, weight, entry = _window_pairs(x.shape, node.shape, node.attrs)
    size = int(np.prod(node.shape, dtype=np.int64))
    return [
        _from_pairs(weight, channel * ct.shape[1] + column, (size, _size(ct.shape))),
        _from_pairs(weight, entry, (size, _size(x.shape))),
    ]


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


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
            # dilated and grouped, at strides 1 and 2
            Sample(
                ((4, 40), (4, 1, 2, 3)),
                {"x_shape": (2, 2, 5, 6), "stride": (1, 1), "padding": (1, 0), **_DG},
            ),
            Sample(
                ((6, 18), (6, 1, 2, 2)),
                {"x_shape": (2, 3, 6, 5), "stride": (2, 2), "padding": (0, 1), **_DW},
            ),
        ),
        analytic=True,
        doc="the input gradient of conv2d_direct: col2im(w2ᵀ @ ct)",
        threaded=True,
        rules={"batch": _NO_BATCH, "remat": "dot", "sparsity": _sparsity_input_grad},
    )
)


def _sparsity_direct(node, values=None) -> list:
    """Output (o, p) of the product (O, N·OH·OW) depends on the window of pixel p over the
    channels of o's group (the padding on none), on row o of the weight and on bias o."""
    x, w = node.inputs[:2]
    groups = node.attrs.get("groups", 1)
    o, cg, kh, kw = w.shape
    windows = _unfold_impl(
        _numbered(x.shape),
        (kh, kw),
        node.attrs["stride"],
        node.attrs["padding"],
        dilation=node.attrs.get("dilation", (1, 1)),
    )  # entry numbers (N, C, OH, OW, KH, KW), 0 in the padding
    n, _, oh, ow = windows.shape[:4]
    m, og, k = n * oh * ow, o // groups, cg * kh * kw
    windows = windows.reshape(n, groups, cg, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    entries = np.broadcast_to(windows.reshape(groups, 1, m, k), (groups, og, m, k))
    rows = np.arange(o).reshape(groups, og, 1, 1) * m + np.arange(m).reshape(1, 1, m, 1)
    rows = np.broadcast_to(rows, entries.shape)
    inside = entries > 0
    pattern = _from_pairs(rows[inside], entries[inside].astype(np.int64) - 1, (o * m, x.size))
    channel = np.repeat(np.arange(o), m)  # of each output entry
    rules = [pattern, grouped(channel, np.repeat(np.arange(o), k))]
    return rules + ([grouped(channel, np.arange(o))] if len(node.inputs) == 3 else [])


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
            Sample(
                ((2, 2, 5, 6), (4, 1, 2, 3), (4,)), {"stride": (1, 1), "padding": (1, 0), **_DG}
            ),
            Sample(((2, 3, 6, 5), (6, 1, 2, 2)), {"stride": (2, 2), "padding": (0, 1), **_DW}),
        ),
        analytic=True,
        doc="reshape(w, (O, C·KH·KW)) @ im2col(x) (+ bias), computed without the window matrix",
        threaded=True,
        rules={"batch": _NO_BATCH, "sparsity": _sparsity_direct, "remat": "dot"},
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
            Sample(
                ((4, 40), (2, 2, 5, 6)),
                {"weight_shape": (4, 1, 2, 3), "stride": (1, 1), "padding": (1, 0), **_DG},
            ),
            Sample(
                ((6, 18), (2, 3, 6, 5)),
                {"weight_shape": (6, 1, 2, 2), "stride": (2, 2), "padding": (0, 1), **_DW},
            ),
        ),
        analytic=True,
        doc="the weight gradient of conv2d_direct: ct @ im2col(x)^T, reshaped as the weight",
        threaded=True,
        rules={"batch": _NO_BATCH, "remat": "dot", "sparsity": _sparsity_weight_grad},
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


def _conv_attrs(stride, padding, dilation=(1, 1), groups=1) -> dict:
    """The attributes of the convolution records; dilation and groups only when they are
    not 1 (an undilated, ungrouped record keeps the attributes it always had)."""
    attrs = {"stride": stride, "padding": padding}
    if tuple(dilation) != (1, 1):
        attrs["dilation"] = tuple(dilation)
    if groups != 1:
        attrs["groups"] = groups
    return attrs


def _groups(groups, op: str) -> int:
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer, got {groups!r}")
    return int(groups)


def same_padding(kernel_size, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """PyTorch's ``padding="same"``: per axis, dilation (k - 1) entries in all, the smaller
    half before and the larger after: ((top, bottom), (left, right))."""
    sides = []
    for k, d in zip(kernel_size, dilation):
        total = d * (k - 1)
        sides.append((total // 2, total - total // 2))
    return tuple(sides)


def conv_padding(padding, kernel_size, stride, dilation, op="conv2d"):
    """``padding`` (an int, a pair, ``"same"`` or ``"valid"``) as ((top, bottom),
    (left, right))."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise ValueError(
                f"{op}: padding must be 'same', 'valid', an int or a pair, got {padding!r}"
            )
        if tuple(stride) != (1, 1):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
        return same_padding(kernel_size, dilation)
    ph, pw = pair(padding, "padding")
    if min(ph, pw) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return ((ph, ph), (pw, pw))


def _batched(x, op: str):
    """An NCHW node and whether it was an unbatched (C, H, W) input."""
    if x.ndim == 3:
        return reshape(x, (1,) + x.shape), True
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected a (C, H, W) or (N, C, H, W) input, got shape {x.shape}")
    return x, False


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Node:
    """2-D cross-correlation (PyTorch's ``conv2d``) of NCHW (or unbatched CHW) ``x`` with
    OIHW ``weight``, of shape (out, in / groups, kh, kw).

    Args:
        stride, dilation: ints or pairs.
        padding: an int, a pair, ``"valid"`` (none) or ``"same"`` (the output as large as
            the input at stride 1; for an even span the extra row/column goes at the
            bottom/right, as PyTorch's).
        groups: the input and output channels split into this many groups, each
            convolved on its own (``groups = in`` is a depthwise convolution).

    Computed as one matrix product, (O, C·KH·KW) @ (C·KH·KW, N·OH·OW), of the weight and
    the input's window matrix (``im2col``); the window matrix is one node, shared by
    the weight gradient, and the input gradient is its adjoint ``col2im``. At strides
    up to 4 (except a strided 1x1 convolution, a subsample and one product; windows of at
    most 1024 entries, at most 256 output channels per group) the op
    ``conv2d_direct`` computes the same product without the window matrix (with compiled
    loops on CPUs with AVX2 and FMA, which read each sample in place); so does
    a window matrix of more than ``CHUNK_ENTRIES`` entries, which ``conv2d_direct`` and
    its gradients then build a slice of the batch at a time, and so do dilated and grouped
    convolutions (a product per group).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (1, 1, 4, 4)); w = dk.variable("w", (2, 1, 3, 3))
    >>> dk.conv2d(x, w, padding=1).shape
    (1, 2, 4, 4)
    """
    x, weight = as_node(x), as_node(weight)
    groups = _groups(groups, "conv2d")
    if weight.ndim != 4:
        raise ShapeError(
            f"conv2d: weight must have shape (out, in / groups, kh, kw), got {weight.shape}"
        )
    x, unbatched = _batched(x, "conv2d")
    o, cg, kh, kw = weight.shape
    if x.shape[1] != cg * groups or o % groups:
        raise ShapeError(
            f"conv2d: input of shape {x.shape} does not match weight of shape "
            f"{weight.shape} in {groups} group(s) (expected C = {cg * groups} channels and "
            f"out channels divisible by {groups})"
        )
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    (pt, pb), (pl, pr) = conv_padding(padding, (kh, kw), stride, dilation)
    if (pb, pr) != (pt, pl):  # the extra bottom/right padding of "same"
        x = pad(x, ((0, 0), (0, 0), (0, pb - pt), (0, pr - pl)))
    padding = (pt, pl)
    n, _, _, _, _, _, _, _, _, _, oh, ow, _, _ = _geometry(
        x.shape, (kh, kw), stride, padding, False, "conv2d", dilation
    )
    if bias is not None:
        bias = as_node(bias)
        if bias.shape != (o,):
            raise ShapeError(f"conv2d: bias must have shape ({o},), got {bias.shape}")
    window_entries = x.shape[1] * kh * kw * n * oh * ow
    plain = groups == 1 and dilation == (1, 1)
    if not plain or native.direct_applies(weight.shape, stride) or window_entries > CHUNK_ENTRIES:
        # directly (small strides), or through the window matrix a slice of the batch at a
        # time, so that it never exists whole; the bias is added as the product is stored
        inputs = (x, weight) if bias is None else (x, weight, bias)
        out = apply(CONV2D_DIRECT, *inputs, **_conv_attrs(stride, padding, dilation, groups))
    else:  # one window matrix, shared by the product and the weight gradient
        flat = im2col(x, (kh, kw), stride, padding)  # (C·KH·KW, N·OH·OW)
        out = matmul(reshape(weight, (o, cg * kh * kw)), flat)  # (O, N·OH·OW)
        if bias is not None:  # added along the rows: its gradient sums contiguous rows
            out = out + reshape(bias, (o, 1))
    out = transpose(reshape(out, (o, n, oh, ow)), (1, 0, 2, 3))
    return reshape(out, out.shape[1:]) if unbatched else out


def transposed_size(size, kernel, stride, padding, output_padding, dilation) -> int:
    """The output size of a transposed convolution along one axis (PyTorch's):
    (size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d(
    x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> Node:
    """The transposed convolution (PyTorch's ``conv_transpose2d``) of NCHW (or unbatched
    CHW) ``x`` with ``weight`` of shape (in, out / groups, kh, kw): the adjoint of
    :func:`conv2d` with respect to its input, computed by the op ``conv2d_input_grad``
    (col2im of the weight times the input, group by group). ``output_padding`` adds rows
    and columns at the bottom/right of the output (it must be smaller than the stride or
    the dilation).

    Args:
        x: the input, (N, C_in, H, W) or (C_in, H, W).
        weight: the kernels, (C_in, C_out / groups, kh, kw).
        bias: (C_out,), or None.
        stride, padding, dilation: ints or pairs, as the convolution this is the adjoint of.
        output_padding: an int or pair of rows/columns added at the bottom/right.
        groups: the number of channel groups.

    Returns:
        Node: the output, (N, C_out, H', W') (no N for an unbatched input).

    Raises:
        ShapeError: the shapes, channels or geometry do not fit.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (1, 2, 4, 4)); w = dk.variable("w", (2, 3, 3, 3))
    >>> dk.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).shape
    (1, 3, 8, 8)
    """
    x, weight = as_node(x), as_node(weight)
    groups = _groups(groups, "conv_transpose2d")
    if weight.ndim != 4:
        raise ShapeError(
            f"conv_transpose2d: weight must have shape (in, out / groups, kh, kw), "
            f"got {weight.shape}"
        )
    x, unbatched = _batched(x, "conv_transpose2d")
    c, og, kh, kw = weight.shape
    if x.shape[1] != c or c % groups:
        raise ShapeError(
            f"conv_transpose2d: input of shape {x.shape} does not match weight of shape "
            f"{weight.shape} in {groups} group(s) (expected C = {c}, divisible by {groups})"
        )
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    padding, output_padding = pair(padding, "padding"), pair(output_padding, "output_padding")
    if min(stride + dilation) < 1 or min(padding + output_padding) < 0:
        raise ValueError(
            f"conv_transpose2d: stride {stride} and dilation {dilation} must be positive, "
            f"padding {padding} and output_padding {output_padding} non-negative"
        )
    for op_, s_, d_ in zip(output_padding, stride, dilation):
        if op_ >= s_ and op_ >= d_:
            raise ValueError(
                f"conv_transpose2d: output_padding {output_padding} must be smaller than "
                f"either the stride {stride} or the dilation {dilation}"
            )
    n, _, h, w = x.shape
    size = tuple(
        transposed_size(*args)
        for args in zip((h, w), (kh, kw), stride, padding, output_padding, dilation)
    )
    if min(size) < 1:
        raise ShapeError(
            f"conv_transpose2d: input of size {h}x{w} gives an output of size {size[0]}x{size[1]}"
        )
    out_shape = (n, og * groups) + size
    if bias is not None:
        bias = as_node(bias)
        if bias.shape != (og * groups,):
            raise ShapeError(
                f"conv_transpose2d: bias must have shape ({og * groups},), got {bias.shape}"
            )
    # the convolution whose input gradient this is maps out_shape to (fh, fw) >= (h, w):
    # an output_padding of a stride or more (below the dilation) adds windows that the
    # input does not reach, whose entries are zero
    fh, fw = _out_hw(out_shape, (c, og, kh, kw), stride, padding, dilation)
    if (fh, fw) != (h, w):
        x = pad(x, ((0, 0), (0, 0), (0, fh - h), (0, fw - w)))
    ct = reshape(transpose(x, (1, 0, 2, 3)), (c, n * fh * fw))
    attrs = _conv_attrs(stride, padding, dilation, groups)
    out = apply(CONV2D_INPUT_GRAD, ct, weight, x_shape=out_shape, **attrs)
    if bias is not None:
        out = out + reshape(bias, (1, og * groups, 1, 1))
    return reshape(out, out.shape[1:]) if unbatched else out

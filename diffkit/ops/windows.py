"""Windows of images: ``unfold`` (im2col as a strided view) and its adjoint ``fold``
(col2im), and the window matrix ``im2col`` and its adjoint ``col2im``: the primitives
convolution and pooling are built from.

``unfold`` returns the K×K windows of a padded, strided NCHW input as a strided
view of shape (N, C, OH, OW, KH, KW): no copy, no loop over pixels. Its VJP is
``fold``, a scatter-add with one vectorised step per kernel offset; ``fold``'s
VJP is ``unfold``. ``im2col`` lays the same windows out as one matrix
(C·KH·KW, N·OH·OW), the operand of convolution's single matrix product; ``col2im`` is
its adjoint. Output sizes follow floor((W - D (K - 1) - 1 + 2P) / S) + 1 for a dilation D
(ceil with ``ceil_mode``, as PyTorch); window entry (p, q) reads the input D·p rows and
D·q columns from the window's corner.

im2col and col2im run compiled loops where the extension is built
(:mod:`diffkit.ops.native`); their numpy versions here are the reference.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import LINEAR, Op, Sample, Unsupported, register
from . import native
from ._sparsity import adjoint_selection, selection

__all__ = ["unfold", "fold", "im2col", "col2im", "output_size", "pair"]

_NO_SCALAR = Unsupported(
    "an image op: no scalar form (convolution and pooling are not expanded symbolically)"
)


def pair(value, name: str = "argument") -> tuple[int, int]:
    """``value`` (an int or a pair) as a pair of ints.

    Args:
        value: an int, or a sequence of two ints.
        name: the argument's name, for the error message.

    Returns:
        tuple[int, int]: ``(value, value)`` for an int, else ``tuple(value)``.

    Raises:
        ValueError: ``value`` is neither.

    >>> import diffkit as dk
    >>> dk.pair(3), dk.pair((2, 1))
    ((3, 3), (2, 1))
    """
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def output_size(
    size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False, dilation: int = 1
) -> int:
    """floor((size - dilation (kernel - 1) - 1 + 2 padding) / stride) + 1, or PyTorch's
    ceil mode.

    Args:
        size: the input's length along the axis.
        kernel, stride, padding, dilation: the window's geometry along the axis.
        ceil_mode: round up instead of down (a last window must start inside the input
            or its left padding, as PyTorch's).

    Returns:
        int: the number of windows.

    >>> import diffkit as dk
    >>> dk.output_size(32, 5, 1, 0)  # LeNet-5's first convolution: 32 - 5 + 1
    28
    >>> dk.output_size(7, 2, 2, 0), dk.output_size(7, 2, 2, 0, ceil_mode=True)  # 5/2 + 1
    (3, 4)
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:  # the last window must start inside the input
        out -= 1
    return out


def _geometry(shape, kernel_size, stride, padding, ceil_mode, op="unfold", dilation=(1, 1)):
    """(n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew): the input's and the windows'
    sizes, and the extra bottom/right padding (eh, ew) that puts every window in the array.
    A window of a dilation (dh, dw) spans dh (kh - 1) + 1 rows, dw (kw - 1) + 1 columns."""
    if len(shape) != 4:
        raise ShapeError(f"{op}: expected an NCHW input of 4 dimensions, got shape {shape}")
    n, c, h, w = shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ShapeError(
            f"{op}: kernel {kernel_size}, stride {stride} and dilation {dilation} must be "
            f"positive and padding {padding} non-negative"
        )
    sph, spw = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the window's span
    if h + 2 * ph < sph or w + 2 * pw < spw:
        raise ShapeError(
            f"{op}: input of size {h}x{w} with padding {ph}x{pw} is smaller than "
            f"the kernel {kh}x{kw}" + (f" dilated {dh}x{dw}" if (dh, dw) != (1, 1) else "")
        )
    oh = output_size(h, kh, sh, ph, ceil_mode, dh)
    ow = output_size(w, kw, sw, pw, ceil_mode, dw)
    # extra right/bottom padding so that every (ceil-mode) window lies in the array
    eh = max(0, (oh - 1) * sh + sph - (h + 2 * ph))
    ew = max(0, (ow - 1) * sw + spw - (w + 2 * pw))
    return n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew


def _unfold_shape(
    shapes, kernel_size, stride, padding, value=0.0, ceil_mode=False, dilation=(1, 1)
):
    n, c, _, _, kh, kw, _, _, _, _, oh, ow, _, _ = _geometry(
        shapes[0], kernel_size, stride, padding, ceil_mode, dilation=dilation
    )
    return (n, c, oh, ow, kh, kw)


def _unfold_impl(x, kernel_size, stride, padding, value=0.0, ceil_mode=False, dilation=(1, 1)):
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew = _geometry(
        x.shape, kernel_size, stride, padding, ceil_mode, dilation=dilation
    )
    dh, dw = dilation
    if ph or pw or eh or ew:
        padded = np.full((n, c, h + 2 * ph + eh, w + 2 * pw + ew), value, dtype=x.dtype)
        padded[:, :, ph : ph + h, pw : pw + w] = x
    else:
        padded = np.ascontiguousarray(x)
    s = padded.strides
    return np.lib.stride_tricks.as_strided(
        padded,
        (n, c, oh, ow, kh, kw),
        (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw),
        writeable=False,
    )


def _fold_impl(cols, input_shape, kernel_size, stride, padding, ceil_mode=False, dilation=(1, 1)):
    n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow, eh, ew = _geometry(
        input_shape, kernel_size, stride, padding, ceil_mode, dilation=dilation
    )
    dh, dw = dilation
    # accumulate channel-major: conv2d's windows are laid out (C, KH, KW, N, OH, OW), so each
    # (p, q) block read below is contiguous
    src = cols.transpose(4, 5, 1, 0, 2, 3)
    out = np.zeros((c, n, h + 2 * ph + eh, w + 2 * pw + ew), dtype=cols.dtype)
    for p in range(kh):  # one vectorised scatter-add per kernel offset
        for q in range(kw):
            y, x = p * dh, q * dw
            out[:, :, y : y + sh * oh : sh, x : x + sw * ow : sw] += src[p, q]
    return out[:, :, ph : ph + h, pw : pw + w].transpose(1, 0, 2, 3)


def _unfold_attrs(attrs):
    keys = ("kernel_size", "stride", "padding", "ceil_mode", "dilation")
    return {k: attrs[k] for k in keys if k in attrs}


#: the image kernels take one batch axis (N of NCHW); Jacobians through them evaluate one
#: direction at a time
_NO_BATCH = Unsupported("an image kernel with one batch axis")


def _sparsity_unfold(node, values=None):
    # each window entry is one input entry; the padding (whatever its value) is none
    return selection(node, value=0.0)


def _sparsity_fold(node, values=None):
    # fold adds each window entry into its input entry: the adjoint of unfold
    attrs = _unfold_attrs(node.attrs)
    return adjoint_selection(node, lambda out: _unfold_impl(out, **attrs, value=0.0))


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
            Sample(
                ((2, 1, 7, 6),),
                {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1), "dilation": (2, 3)},
            ),
            Sample(
                ((1, 2, 6, 7),),
                {
                    "kernel_size": (2, 3),
                    "stride": (2, 2),
                    "padding": (1, 0),
                    "ceil_mode": True,
                    "dilation": (2, 2),
                },
            ),
        ),
        analytic=True,
        doc="the KxK windows of an NCHW input: (N, C, OH, OW, KH, KW)",
        rules={"batch": _NO_BATCH, "sparsity": _sparsity_unfold},
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
            # a batch of 0 (the registry's empty walk keeps attributes as they are)
            Sample(
                ((0, 2, 5, 2, 3, 2),),
                {
                    "input_shape": (0, 2, 5, 4),
                    "kernel_size": (3, 2),
                    "stride": (1, 2),
                    "padding": (1, 0),
                },
            ),
            Sample(
                ((2, 1, 3, 3, 3, 2),),
                {
                    "input_shape": (2, 1, 7, 6),
                    "kernel_size": (3, 2),
                    "stride": (2, 2),
                    "padding": (1, 1),
                    "dilation": (2, 3),
                },
            ),
        ),
        analytic=True,
        doc="scatter-add windows back into an NCHW array (col2im)",
        rules={"batch": _NO_BATCH, "sparsity": _sparsity_fold},
    )
)


def _check_fold(shape, input_shape, attrs):
    expected = _unfold_shape((tuple(input_shape),), **attrs)
    if tuple(shape) != expected:
        raise ShapeError(
            f"fold: windows of shape {shape} do not match input {input_shape} (expected {expected})"
        )
    return tuple(input_shape)


def _dilation_attr(dilation) -> dict:
    """The ``dilation`` attribute, left out when it is 1 (records made before it existed
    keep their attributes)."""
    dilation = pair(dilation, "dilation")
    return {} if dilation == (1, 1) else {"dilation": dilation}


def unfold(
    x, kernel_size, stride=1, padding=0, value: float = 0.0, ceil_mode: bool = False, dilation=1
):
    """The windows of an NCHW input, shape (N, C, OH, OW, KH, KW).

    Args:
        x: an NCHW node.
        kernel_size, stride, padding: ints or pairs.
        value: the padding value (0 for convolution, -inf for max-pooling).
        ceil_mode: round the output size up, as PyTorch's pooling does.
        dilation: an int or a pair; window entry (p, q) reads input offset
            (dh·p, dw·q) from the window's corner.

    Returns:
        Node: the windows, (N, C, OH, OW, KH, KW).

    Raises:
        ShapeError: ``x`` is not NCHW, or smaller than a window.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (1, 1, 3, 3))
    >>> w = dk.evaluate(dk.unfold(x, 2), at={"x": np.arange(9.0).reshape(1, 1, 3, 3)})
    >>> w.shape, w[0, 0, 0, 1].tolist()  # the window at row 0, column 1
    ((1, 1, 2, 2, 2, 2), [[1.0, 2.0], [4.0, 5.0]])
    """
    return apply(
        UNFOLD,
        x,
        kernel_size=pair(kernel_size, "kernel_size"),
        stride=pair(stride, "stride"),
        padding=pair(padding, "padding"),
        value=float(value),
        ceil_mode=bool(ceil_mode),
        **_dilation_attr(dilation),
    )


def fold(cols, input_shape, kernel_size, stride=1, padding=0, ceil_mode: bool = False, dilation=1):
    """Scatter-add windows (N, C, OH, OW, KH, KW) back into an array of ``input_shape``.

    Args:
        cols: a node of windows, (N, C, OH, OW, KH, KW).
        input_shape: the NCHW shape to fold into.
        kernel_size, stride, padding, dilation: ints or pairs, as :func:`unfold`'s.
        ceil_mode: as :func:`unfold`'s.

    Returns:
        Node: an array of ``input_shape``; each entry is the sum of the window entries
        that read it (the adjoint of :func:`unfold`).

    Raises:
        ShapeError: the windows do not match ``input_shape``.

    >>> import diffkit as dk, numpy as np
    >>> c = dk.variable("c", (1, 1, 2, 2, 2, 2))
    >>> folded = dk.evaluate(dk.fold(c, (1, 1, 3, 3), 2), at={"c": np.ones(c.shape)})
    >>> folded[0, 0].tolist()  # how many 2x2 windows cover each entry
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    return apply(
        FOLD,
        cols,
        input_shape=tuple(input_shape),
        kernel_size=pair(kernel_size),
        stride=pair(stride),
        padding=pair(padding),
        ceil_mode=bool(ceil_mode),
        **_dilation_attr(dilation),
    )


def _im2col_geometry(shape, kernel_size, stride, padding, op="im2col", dilation=(1, 1)):
    n, c, _, _, kh, kw, _, _, _, _, oh, ow, _, _ = _geometry(
        shape, kernel_size, stride, padding, False, op, dilation
    )
    return n, c, kh, kw, oh, ow


def _im2col_impl(x, kernel_size, stride, padding, dilation=(1, 1)):
    n, c, kh, kw, oh, ow = _im2col_geometry(
        x.shape, kernel_size, stride, padding, "im2col", dilation
    )
    if tuple(dilation) == (1, 1):  # the compiled loop reads undilated windows
        out = native.im2col(x, kernel_size, stride, padding, (oh, ow))
        if out is not None:
            return out
    cols = _unfold_impl(x, kernel_size, stride, padding, dilation=dilation)
    return cols.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)


def _col2im_impl(cols, input_shape, kernel_size, stride, padding, dilation=(1, 1)):
    n, c, kh, kw, oh, ow = _im2col_geometry(
        input_shape, kernel_size, stride, padding, "col2im", dilation
    )
    if tuple(dilation) == (1, 1):
        out = native.col2im(cols, input_shape, kernel_size, stride, padding, (oh, ow))
        if out is not None:
            return out
    windows = cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
    return _fold_impl(windows, input_shape, kernel_size, stride, padding, dilation=dilation)


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


def _sparsity_col2im(node, values=None):
    # col2im adds each column entry into its input entry: the adjoint of im2col
    attrs = {k: node.attrs[k] for k in ("kernel_size", "stride", "padding")}
    return adjoint_selection(node, lambda out: _im2col_impl(out, **attrs))


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
        rules={"batch": _NO_BATCH, "sparsity": selection},
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
        samples=(
            Sample(((12, 20),), {"input_shape": (2, 2, 5, 4), **_IM2COL_ATTRS}),
            Sample(((12, 0),), {"input_shape": (0, 2, 5, 4), **_IM2COL_ATTRS}),  # a batch of 0
        ),
        analytic=True,
        doc="scatter-add a window matrix (C·KH·KW, N·OH·OW) back into an NCHW array",
        rules={"batch": _NO_BATCH, "sparsity": _sparsity_col2im},
    )
)


def im2col(x, kernel_size, stride=1, padding=0) -> Node:
    """The zero-padded windows of NCHW ``x`` as one matrix, shape (C·KH·KW, N·OH·OW):
    row (c, p, q) holds input channel c at kernel offset (p, q) for every output pixel.
    Its adjoint is ``col2im``.

    Args:
        x: an NCHW node.
        kernel_size, stride, padding: ints or pairs.

    Returns:
        Node: the window matrix, (C·KH·KW, N·OH·OW).

    Raises:
        ShapeError: ``x`` is not NCHW, or smaller than a window.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (1, 1, 3, 3))
    >>> m = dk.evaluate(dk.im2col(x, 2), at={"x": np.arange(9.0).reshape(1, 1, 3, 3)})
    >>> m.shape, m[0].tolist()  # offset (0, 0): the top-left entry of each window
    ((4, 4), [0.0, 1.0, 3.0, 4.0])
    """
    return apply(
        IM2COL,
        as_node(x),
        kernel_size=pair(kernel_size, "kernel_size"),
        stride=pair(stride, "stride"),
        padding=pair(padding, "padding"),
    )


def col2im(cols, input_shape, kernel_size, stride=1, padding=0) -> Node:
    """Scatter-add a window matrix (C·KH·KW, N·OH·OW) into an NCHW array of
    ``input_shape``: the adjoint of ``im2col``.

    Args:
        cols: a node, (C·KH·KW, N·OH·OW).
        input_shape: the NCHW shape to fold into.
        kernel_size, stride, padding: ints or pairs, as ``im2col``'s.

    Returns:
        Node: an array of ``input_shape``.

    Raises:
        ShapeError: the matrix does not match ``input_shape``.

    >>> import diffkit as dk, numpy as np
    >>> c = dk.variable("c", (4, 4))
    >>> dk.evaluate(dk.col2im(c, (1, 1, 3, 3), 2), at={"c": np.ones((4, 4))})[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    return apply(
        COL2IM,
        as_node(cols),
        input_shape=tuple(input_shape),
        kernel_size=pair(kernel_size, "kernel_size"),
        stride=pair(stride, "stride"),
        padding=pair(padding, "padding"),
    )

"""Adaptive pooling: the mean or the maximum over each of PyTorch's bins, row i of an
output of height OH covering input rows [floor(i·H/OH), ceil((i+1)·H/OH)) (and the same
for the columns), for an output size chosen in advance: ``output_size=1`` is global
pooling. Bins may overlap (more bins than entries).

Adaptive average pooling is linear and separable: a product with a bin-averaging matrix on
each side. Adaptive max-pooling is an op record whose gradient goes to each bin's first
maximum (PyTorch's scan, where a NaN wins), with its gradient and tangent ops and
``adaptive_max_pool2d_indices`` for PyTorch's ``return_indices``.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, const
from ..ir.op import Op, Sample, register
from .pooling import _batch_into_images, _batched, _unbatched
from .reduce import mean as reduce_mean
from .shape import matmul
from ._sparsity import gradient_rule, windows_rule
from .windows import _NO_SCALAR

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_indices",
]


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


def _winners(entries, positions, out_pos):
    """PyTorch's scan over ``entries`` (arrays of one shape, in scan order): their maximum,
    and in ``out_pos`` the ``positions`` entry (an int or an array) of the first maximum,
    or of the last NaN where there is one (a NaN always wins)."""
    best = entries[0].copy()
    for e in entries[1:]:
        np.maximum(best, e, out=best)  # propagates NaN
    for e, pos in zip(entries[::-1], positions[::-1]):  # backwards: the first match stays
        np.copyto(out_pos, pos, where=e == best)
    if np.isnan(best).any():
        for e, pos in zip(entries, positions):  # forwards: the last NaN stays
            np.copyto(out_pos, pos, where=np.isnan(e))
    return best


def _adaptive_argmax(x, output_size):
    """Flat indices into H·W of each bin's first maximum in row-major order (the last NaN
    where the bin holds one), shape (N, C, OH, OW). Separable: per row, each column bin's
    winner; then per column bin, the first row whose winner is the bin's."""
    (oh, ow), (n, c, h, w) = output_size, x.shape
    index = np.zeros((n, c, oh, ow), dtype=np.int64)
    if x.size == 0 or oh * ow == 0:
        return index
    rs, re = adaptive_bins(h, oh)
    cs, ce = adaptive_bins(w, ow)
    best = np.empty((n, c, h, ow), dtype=x.dtype)  # each row's maximum in each column bin
    col = np.zeros((n, c, h, ow), dtype=np.int64)  # and its column
    for j in range(ow):
        span = range(cs[j], ce[j])
        best[..., j] = _winners([x[..., q] for q in span], list(span), col[..., j])
    for i in range(oh):
        span = range(rs[i], re[i])
        at = np.zeros((n, c, ow), dtype=np.int64)
        _winners([best[:, :, r, :] for r in span], [r * w + col[:, :, r, :] for r in span], at)
        index[:, :, i, :] = at
    return index


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
    size, flat, ct = n * c * h * w, flat.ravel(), ct.reshape(-1)
    if dtype.kind == "c":
        grad = np.zeros(size, dtype=dtype)
        np.add.at(grad, flat, ct.astype(dtype, copy=False))
    else:  # a sum per input entry of the cotangents of the bins it is the maximum of
        grad = np.bincount(flat, weights=ct, minlength=size).astype(dtype, copy=False)
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


# max over a bin: an output depends on its bin's entries
_SPARSITY_ADAPTIVE = windows_rule(_adaptive_windows, _adaptive_attrs, True)

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
            "sparsity": _SPARSITY_ADAPTIVE,
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
        rules={"batch": _batch_into_images, "sparsity": gradient_rule(_SPARSITY_ADAPTIVE, True)},
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
        rules={"batch": _batch_into_images, "sparsity": gradient_rule(_SPARSITY_ADAPTIVE, False)},
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


def _check_sizes(x, op):
    if 0 in x.shape[2:]:
        raise ShapeError(
            f"{op}: expected an input of non-zero height and width, got shape {x.shape}"
        )


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

    Args:
        x: an NCHW or CHW node.
        output_size: an int or a pair (an entry None keeps the input's size).

    Returns:
        Node: the means, of the output size.

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
    input's size). ``x`` is NCHW or CHW.

    Args:
        x: an NCHW or CHW node.
        output_size: an int or a pair (an entry None keeps the input's size).

    Returns:
        Node: the maxima, of the output size.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (1, 1, 1, 5))
    >>> # the bins of 5 into 2: [floor(5i/2), ceil(5(i+1)/2)) = [0, 3) and [2, 5)
    >>> at = {"x": [[[[1.0, 4.0, 2.0, 0.0, 3.0]]]]}
    >>> dk.evaluate(dk.adaptive_max_pool2d(x, (1, 2)), at=at).tolist()
    [[[[4.0, 3.0]]]]
    """
    x, was = _batched(x, "adaptive_max_pool2d")
    _check_sizes(x, "adaptive_max_pool2d")
    size = _output_size(x, output_size, "adaptive_max_pool2d")
    return _unbatched(apply(ADAPTIVE_MAX_POOL2D, x, output_size=size), was)


def adaptive_max_pool2d_indices(x, output_size) -> Node:
    """The indices PyTorch's ``adaptive_max_pool2d(..., return_indices=True)`` returns:
    per bin, the flat position in the H×W plane of its first maximum (int64, no
    derivative). ``x`` is NCHW or CHW.

    Args:
        x: an NCHW or CHW node.
        output_size: an int or a pair (an entry None keeps the input's size).

    Returns:
        Node: int64 flat indices into H×W, of the output size.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (1, 1, 1, 5))
    >>> i = dk.adaptive_max_pool2d_indices(x, (1, 2))
    >>> dk.evaluate(i, at={"x": [[[[1.0, 4.0, 2.0, 0.0, 3.0]]]]}).tolist()  # bins [0, 3), [2, 5)
    [[[[1, 4]]]]
    """
    x, was = _batched(x, "adaptive_max_pool2d")
    _check_sizes(x, "adaptive_max_pool2d")
    size = _output_size(x, output_size, "adaptive_max_pool2d")
    return _unbatched(apply(ADAPTIVE_MAX_POOL2D_INDICES, x, output_size=size), was)

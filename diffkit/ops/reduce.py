"""Reductions and the stable softmax family: sum, prod, max, min, mean, var, std, cumsum,
logsumexp, log_softmax.

``max`` and ``min`` split their derivative evenly between tied extrema of a slice (the
convention of ``jnp.max`` and ``torch.amax``); ``logsumexp`` and ``log_softmax`` subtract
the maximum before exponentiating, so large inputs do not overflow. Empty arrays reduce
as numpy's: ``sum`` to 0, ``prod`` to 1, ``logsumexp`` to -inf, ``mean`` and ``var`` to
NaN, and ``max``/``min`` over no entries are refused when the graph is built, as numpy
refuses them.
"""

from __future__ import annotations

import builtins

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import LINEAR, STRUCTURAL, Op, Sample, Unsupported, builds, function, register
from ..ir.shapes import normalize_axes, reduce_shape
from .comparison import equal, where as where_
from .transcendental import exp, sqrt
from .shape import broadcast_to, reshape
from ._sparsity import cumulative_rule

__all__ = [
    "sum",
    "prod",
    "max",
    "min",
    "mean",
    "var",
    "std",
    "cumsum",
    "logsumexp",
    "log_softmax",
    "softmax",
    "argmax_mask",
]

_NO_MP = Unsupported("a reduction over a tensor: compose it from scalar ops for mpmath")


def _keepdims_shape(x: Node, axis) -> tuple:
    axes = normalize_axes("reduce", axis, x.ndim)
    return tuple(1 if i in axes else d for i, d in enumerate(x.shape))


def _expand(ct: Node, x: Node, axis, keepdims: bool) -> Node:
    """A reduced cotangent broadcast back over the reduced axes of ``x``."""
    if not keepdims:
        ct = reshape(ct, _keepdims_shape(x, axis))
    return broadcast_to(ct, x.shape)


# ---- sum ----------------------------------------------------------------------------


def _sum_impl(x, axis=None, keepdims=False):
    if x.dtype == object:
        out = (
            np.sum(x, axis=axis, keepdims=keepdims)
            if x.size
            else np.zeros(reduce_shape("sum", x.shape, axis, keepdims))
        )
        return np.asarray(out, dtype=object)
    return np.sum(x, axis=axis, keepdims=keepdims)


SUM = register(
    Op(
        name="sum",
        shape=lambda s, axis=None, keepdims=False: reduce_shape("sum", s[0], axis, keepdims),
        impl=_sum_impl,
        # d sum(x) = sum(dx): the cotangent is replicated over the summed axes
        vjp=lambda ct, out, x, axis=None, keepdims=False: (_expand(ct, x, axis, keepdims),),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((3, 4),), {"axis": None}),
            Sample(((3, 4),), {"axis": 1}),
            Sample(((2, 3, 4),), {"axis": (0, 2), "keepdims": True}),
        ),
        analytic=True,
        fold=lambda x, axis=None, keepdims=False: x if axis == () else None,
        doc="sum over axes",
        kind="reduction",
    )
)


@builds(SUM, numpy=(np.sum,))
def sum(x, axis=None, keepdims: bool = False) -> Node:  # noqa: A001 - numpy-like name
    """Sum of ``x`` over ``axis`` (all axes by default).

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes (negative counts from the end); None for all.
        keepdims: keep the reduced axes, with length 1.

    Returns:
        Node: the sum.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (2, 2))
    >>> dk.evaluate(dk.sum(x, axis=1), at={"x": [[1.0, 2.0], [3.0, 4.0]]}).tolist()
    [3.0, 7.0]
    >>> dk.gradient(dk.sum(x), at={"x": [[1.0, 2.0], [3.0, 4.0]]})["x"].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    x = as_node(x)
    axes = normalize_axes("sum", axis, x.ndim)
    if not axes:
        return x
    return apply(SUM, x, axis=axes, keepdims=bool(keepdims))


@function(
    numpy=(np.mean,),
    samples=(Sample(((3, 4),)), Sample(((2, 3, 4),), {"axis": (0, 2), "keepdims": True})),
)
def mean(a, axis=None, dtype=None, out=None, keepdims: bool = False, *, where=None) -> Node:
    """Mean of ``a`` over ``axis`` (all axes by default); NaN over no entries, as numpy.

    Args:
        a: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes; None for all.
        dtype: a float dtype for the result (numpy's argument).
        out, where: numpy's arguments, refused (TypeError) on IR nodes.
        keepdims: keep the reduced axes, with length 1.

    Returns:
        Node: the mean.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (2, 2))
    >>> dk.evaluate(dk.mean(x, axis=0), at={"x": [[1.0, 2.0], [3.0, 5.0]]}).tolist()
    [2.0, 3.5]
    """
    _moment_args("mean", dtype, out, 0, where, None, None)
    x = as_node(a)
    axes = normalize_axes("mean", axis, x.ndim)
    return sum(x, axes, bool(keepdims)) / float(_count(x, axes))


def _count(x: Node, axes: tuple) -> int:
    return int(np.prod([x.shape[a] for a in axes], dtype=np.int64))


def _moment_args(name, dtype, out, ddof, where, mean, correction) -> float:
    """numpy's ``ddof``/``correction`` of var and std, refusing what the IR cannot do."""
    if out is not None:
        raise TypeError(f"{name}: out= is not supported on IR nodes (the IR is functional)")
    if where is not None:
        raise TypeError(f"{name}: where= is not supported on IR nodes; mask with dk.where")
    if mean is not None:
        raise TypeError(f"{name}: mean= is not supported on IR nodes")
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        raise TypeError(f"{name}: dtype={np.dtype(dtype)} is not a float dtype")
    if correction is not None:
        if ddof != 0:
            raise ValueError(f"{name}: give ddof or correction, not both")
        ddof = correction
    return float(ddof)


_MOMENT_SAMPLES = (
    Sample(((3, 4),)),
    Sample(((3, 4),), {"axis": 1, "ddof": 1}),
    Sample(((2, 3, 4),), {"axis": (0, 2), "ddof": 1, "keepdims": True}),
    Sample(((5,),), {"ddof": 2}),
)


@function(numpy=(np.var,), samples=_MOMENT_SAMPLES)
def var(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof=0,
    keepdims: bool = False,
    *,
    where=None,
    mean=None,
    correction=None,
) -> Node:
    """Variance over ``axis``: sum((a - mean)^2) / (n - ddof), numpy's signature (``ddof``
    or ``correction``). ``ddof >= n`` gives inf (NaN for a constant slice), as numpy.

    Args:
        a: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes; None for all.
        dtype: a float dtype for the result (numpy's argument).
        out, where, mean: numpy's arguments, refused (TypeError) on IR nodes.
        ddof: the "delta degrees of freedom" subtracted from the count n.
        keepdims: keep the reduced axes, with length 1.
        correction: numpy's other name for ``ddof`` (give one of the two).

    Returns:
        Node: the variance.

    Raises:
        ShapeError: an axis is out of range.
        ValueError: both ``ddof`` and ``correction`` are given.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> round(float(dk.evaluate(np.var(x, ddof=1), at={"x": [1.0, 2.0, 4.0]})), 12)
    2.333333333333
    """
    return _var("var", a, axis, dtype, out, ddof, keepdims, where, mean, correction)


def _var(name, a, axis, dtype, out, ddof, keepdims, where, mean, correction) -> Node:
    ddof = _moment_args(name, dtype, out, ddof, where, mean, correction)
    x = as_node(a)
    axes = normalize_axes(name, axis, x.ndim)
    n = _count(x, axes)
    centred = x - sum(x, axes, keepdims=True) / float(n)
    # numpy divides by max(n - ddof, 0): x / 0 is inf, 0 / 0 is NaN
    return sum(centred * centred, axes, bool(keepdims)) / float(builtins.max(n - ddof, 0))


@function(numpy=(np.std,), samples=_MOMENT_SAMPLES)
def std(
    a,
    axis=None,
    dtype=None,
    out=None,
    ddof=0,
    keepdims: bool = False,
    *,
    where=None,
    mean=None,
    correction=None,
) -> Node:
    """Standard deviation over ``axis``, sqrt(var(a, axis, ddof=ddof)), numpy's signature.

    At zero spread (every entry of a slice equal) the gradient is 0, as PyTorch's
    ``torch.std`` (JAX's ``sqrt(var)`` gives NaN there: inf times 0); 0 is the minimum-norm
    subgradient, the convention of ``norm`` at 0.

    Args:
        a: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes; None for all.
        dtype: a float dtype for the result (numpy's argument).
        out, where, mean: numpy's arguments, refused (TypeError) on IR nodes.
        ddof: the "delta degrees of freedom" subtracted from the count n.
        keepdims: keep the reduced axes, with length 1.
        correction: numpy's other name for ``ddof`` (give one of the two).

    Returns:
        Node: the standard deviation.

    Raises:
        ShapeError: an axis is out of range.
        ValueError: both ``ddof`` and ``correction`` are given.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> dk.gradient(np.std(x, ddof=1), at={"x": [2.0, 2.0, 2.0]})["x"].tolist()
    [0.0, 0.0, 0.0]
    """
    v = _var("std", a, axis, dtype, out, ddof, keepdims, where, mean, correction)
    # d sqrt(v) = dv / (2 sqrt v), taken as 0 where v == 0 (the sqrt never sees the 0)
    zero = equal(v, 0.0)
    return where_(zero, 0.0, sqrt(where_(zero, 1.0, v)))


# ---- prod ---------------------------------------------------------------------------


def _last_axes(x, axes):
    """``x`` with ``axes`` moved last and flattened into one: (rest..., n), and the undo."""
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, rest + list(axes))
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = moved.reshape(moved.shape[: len(rest)] + (n,))

    def undo(y):
        return np.transpose(y.reshape(moved.shape), np.argsort(rest + list(axes)))

    return flat, undo


def _prod_others_impl(x, axis):
    """For each entry, the product of the other entries of its slice along ``axis``."""
    flat, undo = _last_axes(x, axis)
    if flat.shape[-1] == 0:  # a product over no entries: nothing to differentiate
        return np.zeros_like(x)
    ones = np.ones(flat.shape[:-1] + (1,), dtype=flat.dtype)
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return undo(left * right)


def _prod_others_vjp(ct, out, x, axis):
    # d/dx_k prod_{j!=i} x_j = prod_{j!=i,k} x_j = out_i / x_k for i != k (x_k != 0)
    total = _expand(sum(ct * out, axis, keepdims=True), x, axis, True)
    return ((total - ct * out) / x,)


def _prod_others_jvp(tangents, out, x, axis):
    # (J t)_i = sum_{k != i} t_k out_i / x_k
    t_over_x = tangents[0] / x
    return out * (_expand(sum(t_over_x, axis, keepdims=True), x, axis, True) - t_over_x)


PROD_OTHERS = register(
    Op(
        name="prod_others",
        shape=lambda s, axis: s[0],
        impl=_prod_others_impl,
        vjp=_prod_others_vjp,
        jvp=_prod_others_jvp,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((3, 4),), {"axis": (1,)}), Sample(((2, 3, 2),), {"axis": (0, 2)})),
        analytic=True,
        doc="product of the other entries of each slice (the gradient of prod)",
        kind="reduction",
    )
)


def _prod_impl(x, axis=None, keepdims=False):
    out = np.prod(x, axis=axis, keepdims=keepdims)
    return np.asarray(out, dtype=object) if x.dtype == object else out


PROD = register(
    Op(
        name="prod",
        shape=lambda s, axis=None, keepdims=False: reduce_shape("prod", s[0], axis, keepdims),
        impl=_prod_impl,
        # d prod(x) / d x_k = product of the other entries (exact where x has zeros)
        vjp=lambda ct, out, x, axis=None, keepdims=False: (
            _expand(ct, x, axis, keepdims) * apply(PROD_OTHERS, x, axis=axis),
        ),
        jvp=lambda tangents, out, x, axis=None, keepdims=False: sum(
            tangents[0] * apply(PROD_OTHERS, x, axis=axis), axis, keepdims
        ),
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((3, 4),), {"axis": (0, 1)}),
            Sample(((2, 3, 4),), {"axis": (1,), "keepdims": True}),
            Sample(
                ((3, 4),),
                {"axis": (1,)},
                make=lambda rng: [np.where(np.eye(3, 4) > 0, 0.0, rng.uniform(-2, 2, (3, 4)))],
                second_order=False,
            ),
        ),
        analytic=True,
        doc="product over axes",
        kind="reduction",
    )
)


@builds(PROD, numpy=(np.prod,))
def prod(x, axis=None, keepdims: bool = False) -> Node:
    """Product of ``x`` over ``axis`` (all axes by default). Its gradient is the product
    of the other entries, exact where ``x`` has zeros (second derivatives need x != 0).

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes (negative counts from the end); None for all.
        keepdims: keep the reduced axes, with length 1.

    Returns:
        Node: the product.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk
    >>> x = dk.variable("x", shape=(3,))
    >>> dk.gradient(dk.prod(x), at={"x": [2.0, 0.0, 5.0]})["x"].tolist()
    [0.0, 10.0, 0.0]
    """
    x = as_node(x)
    axes = normalize_axes("prod", axis, x.ndim)
    if not axes:
        return x
    return apply(PROD, x, axis=axes, keepdims=bool(keepdims))


# ---- cumsum ---------------------------------------------------------------------------


def _cumsum_impl(x, axis, reverse=False):
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
    return np.cumsum(x, axis=axis)


CUMSUM = register(
    Op(
        name="cumsum",
        shape=lambda s, axis, reverse=False: s[0],
        impl=_cumsum_impl,
        # the adjoint of a running sum is the running sum from the other end
        vjp=lambda ct, out, x, axis, reverse=False: (
            apply(CUMSUM, ct, axis=axis, reverse=not reverse),
        ),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((5,),), {"axis": 0}),
            Sample(((3, 4),), {"axis": 1, "reverse": True}),
        ),
        analytic=True,
        doc="running sum along an axis",
        kind="axis",
        rules={"sparsity": cumulative_rule},
    )
)


@builds(CUMSUM, numpy=(np.cumsum,))
def cumsum(x, axis: int | None = None) -> Node:
    """Running sum of ``x`` along ``axis`` (of the flattened ``x`` by default, as numpy).

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: the axis; None for the flattened ``x``.

    Returns:
        Node: the running sums.

    >>> import diffkit as dk
    >>> dk.evaluate(dk.cumsum(dk.variable("x", (3,))), at={"x": [1.0, 2.0, 3.0]}).tolist()
    [1.0, 3.0, 6.0]
    """
    x = as_node(x)
    if axis is None:
        x = reshape(x, (x.size,))
        axis = 0
    (ax,) = normalize_axes("cumsum", int(axis), x.ndim)
    return apply(CUMSUM, x, axis=ax)


# ---- max ----------------------------------------------------------------------------


def _first_max_mask(x, axis=None):
    """One-hot (per reduced slice) at the first maximum along ``axis``."""
    axes = normalize_axes("argmax_mask", axis, x.ndim)
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x.real if x.dtype.kind == "c" else x, rest + list(axes))
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    flat = moved.reshape(moved.shape[: len(rest)] + (n,))
    if n == 0:
        return np.zeros(x.shape, dtype=x.dtype if x.dtype != object else np.float64)
    idx = np.argmax(flat, axis=-1)
    mask = np.zeros(flat.shape, dtype=x.dtype if x.dtype != object else np.float64)
    np.put_along_axis(mask, idx[..., None], 1, axis=-1)
    mask = mask.reshape(moved.shape)
    return np.transpose(mask, np.argsort(rest + list(axes)))


def _zero_vjp(ct, out, *inputs, **_):
    # a selection mask: piecewise constant, derivative 0
    return (None,) * len(inputs)


ARGMAX_MASK = register(
    Op(
        name="argmax_mask",
        shape=lambda s, axis=None: s[0],
        impl=_first_max_mask,
        vjp=_zero_vjp,
        jvp=lambda tangents, out, x, axis=None: None,
        mpmath=_NO_MP,
        sympy=Unsupported("a selection mask has no closed form"),
        samples=(Sample(((3, 4),), {"axis": (1,)}, second_order=False),),
        analytic=False,
        doc="1 at the first maximum of each slice along axis, else 0",
        kind="reduction",
    )
)


@builds(ARGMAX_MASK)
def argmax_mask(x, axis=None) -> Node:
    """1.0 at the first maximum of each slice along ``axis``, 0.0 elsewhere.

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: the axis of the slices; None for the whole (flattened) array.

    Returns:
        Node: 0.0/1.0 entries of ``x``'s shape, with no derivative.

    Raises:
        ShapeError: the axis is out of range.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.argmax_mask(x), at={"x": [1.0, 3.0, 3.0, 0.0]}).tolist()  # np.argmax: 1
    [0.0, 1.0, 0.0, 0.0]
    """
    x = as_node(x)
    return apply(ARGMAX_MASK, x, axis=normalize_axes("argmax_mask", axis, x.ndim))


def _max_impl(x, axis=None, keepdims=False):
    if x.dtype.kind == "c":
        mask = _first_max_mask(x, axis)
        return np.sum(x * mask, axis=axis, keepdims=keepdims)
    if x.dtype == object:
        return np.asarray(np.max(x, axis=axis, keepdims=keepdims), dtype=object)
    return np.max(x, axis=axis, keepdims=keepdims)


def _max_shape(shapes, axis=None, keepdims=False):
    (s,) = shapes
    axes = normalize_axes("max", axis, len(s))
    if any(s[a] == 0 for a in axes):
        raise ShapeError(
            f"max: a reduction over no entries has no maximum (numpy refuses it): input shape "
            f"{s}, axis {axis}"
        )
    return reduce_shape("max", s, axis, keepdims)


def _max_share(out, x, axis, keepdims):
    """1/k at each of the k maxima of a slice, 0 elsewhere (ties share the derivative)."""
    hit = equal(x, _expand(out, x, axis, keepdims))
    return hit / sum(hit, axis, keepdims=True)


MAX = register(
    Op(
        name="max",
        shape=_max_shape,
        impl=_max_impl,
        # d max(x) = mean of dx over the maxima of each slice (split evenly at ties)
        vjp=lambda ct, out, x, axis=None, keepdims=False: (
            _expand(ct, x, axis, keepdims) * _max_share(out, x, axis, keepdims),
        ),
        jvp=lambda tangents, out, x, axis=None, keepdims=False: sum(
            tangents[0] * _max_share(out, x, axis, keepdims), axis, keepdims
        ),
        mpmath=STRUCTURAL,
        sympy=Unsupported("max over a tensor has no smooth SymPy form"),
        samples=(
            Sample(((3, 4),), {"axis": (1,)}),
            Sample(((2, 3, 4),), {"axis": (0, 2)}),
            Sample(((4, 5),), {"axis": (1,), "keepdims": True}),
        ),
        analytic=False,
        doc="maximum over axes; derivative shared evenly by tied maxima",
        kind="reduction",
    )
)


@builds(MAX, numpy=(np.max, np.amax))
def max(  # noqa: A001 - numpy-like name
    a, axis=None, out=None, keepdims: bool = False, initial=None, where=None
) -> Node:
    """Maximum of ``a`` over ``axis`` (numpy's ``max``). Tied maxima share the derivative
    evenly, as ``jnp.max`` and ``torch.amax``; a reduction over no entries is refused.

    Args:
        a: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes (negative counts from the end); None for all.
        keepdims: keep the reduced axes, with length 1.
        out, initial, where: numpy's arguments, refused (TypeError) on IR nodes.

    Returns:
        Node: the maximum.

    Raises:
        ShapeError: an axis is out of range, or there are no entries.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> dk.gradient(dk.max(x), at={"x": [1.0, 3.0, 3.0, 0.0]})["x"].tolist()
    [0.0, 0.5, 0.5, 0.0]
    """
    if out is not None or initial is not None or where is not None:
        raise TypeError("max: out=, initial= and where= are not supported on IR nodes")
    x = as_node(a)
    axes = normalize_axes("max", axis, x.ndim)
    if not axes:
        return x
    return apply(MAX, x, axis=axes, keepdims=bool(keepdims))


@function(
    numpy=(np.min, np.amin),
    samples=(Sample(((3, 4),), {"axis": 1}), Sample(((4, 5),))),
)
def min(  # noqa: A001 - numpy-like name
    a, axis=None, out=None, keepdims: bool = False, initial=None, where=None
) -> Node:
    """Minimum of ``a`` over ``axis``; tied minima share the derivative evenly.

    Args:
        a: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes (negative counts from the end); None for all.
        keepdims: keep the reduced axes, with length 1.
        out, initial, where: numpy's arguments, refused (TypeError) on IR nodes.

    Returns:
        Node: the minimum.

    Raises:
        ShapeError: an axis is out of range, or there are no entries.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> dk.gradient(dk.min(x), at={"x": [1.0, 0.0, 0.0, 3.0]})["x"].tolist()  # a tie: 1/2 each
    [0.0, 0.5, 0.5, 0.0]
    """
    if out is not None or initial is not None or where is not None:
        raise TypeError("min: out=, initial= and where= are not supported on IR nodes")
    x = as_node(a)
    if any(x.shape[i] == 0 for i in normalize_axes("min", axis, x.ndim)):
        raise ShapeError(
            f"min: a reduction over no entries has no minimum (numpy refuses it): input shape "
            f"{x.shape}, axis {axis}"
        )
    return -max(-x, axis, keepdims=keepdims)


# ---- logsumexp, log_softmax ------------------------------------------------------------


def _lse_impl(x, axis=None, keepdims=False):
    real = x.real if x.dtype.kind == "c" else x
    # initial: over no entries the shift is 0 and the sum 0, so the result is -inf (numpy's)
    m = np.max(real, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0).astype(real.dtype)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _lse_vjp(ct, out, x, axis=None, keepdims=False):
    # d logsumexp(x) = softmax(x) . dx
    out_k = out if keepdims else reshape(out, _keepdims_shape(x, axis))
    return (_expand(ct, x, axis, keepdims) * exp(x - out_k),)


def _lse_jvp(tangents, out, x, axis=None, keepdims=False):
    out_k = out if keepdims else reshape(out, _keepdims_shape(x, axis))
    return sum(tangents[0] * exp(x - out_k), axis, keepdims)


LOGSUMEXP = register(
    Op(
        name="logsumexp",
        shape=lambda s, axis=None, keepdims=False: reduce_shape("logsumexp", s[0], axis, keepdims),
        impl=_lse_impl,
        vjp=_lse_vjp,
        jvp=_lse_jvp,
        mpmath=_NO_MP,
        sympy=Unsupported("build log(sum(exp(x))) from scalar ops for SymPy"),
        samples=(Sample(((3, 4),), {"axis": (1,)}), Sample(((5,),), {"axis": (0,)})),
        analytic=True,
        doc="log(sum(exp(x))) over axes, computed stably",
        kind="reduction",
    )
)


@builds(LOGSUMEXP)
def logsumexp(x, axis=None, keepdims: bool = False) -> Node:
    """log(sum(exp(x))) over ``axis``, without overflow for large ``x``.

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes (negative counts from the end); None for all.
        keepdims: keep the reduced axes, with length 1.

    Returns:
        Node: the log of the sum of exponentials.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk
    >>> x = dk.variable("x", shape=(2,))
    >>> round(dk.evaluate(dk.logsumexp(x), at={"x": [1e4, 1e4]}) - 1e4, 9)  # log 2
    0.693147181
    """
    x = as_node(x)
    return apply(
        LOGSUMEXP, x, axis=normalize_axes("logsumexp", axis, x.ndim), keepdims=bool(keepdims)
    )


def _shifted(x, axis):
    """x minus its largest (real part) along ``axis``, 0 where that is not finite."""
    real = x.real if x.dtype.kind == "c" else x
    m = np.max(real, axis=axis, keepdims=True, initial=-np.inf)
    return x - np.where(np.isfinite(m), m, 0).astype(real.dtype)


def _ls_impl(x, axis):
    # (x - m) - log(sum(exp(x - m))), as PyTorch and JAX: x - logsumexp(x) would round
    # through x's magnitude, off by up to an ulp of max(x) (1e-10 at 1e6)
    z = _shifted(x, axis)
    with np.errstate(divide="ignore"):
        return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def _sm_impl(x, axis):
    # exp(x - m) / sum(exp(x - m)): equal logits give exactly 1/n, as PyTorch and JAX
    e = np.exp(_shifted(x, axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return e / np.sum(e, axis=axis, keepdims=True)


LOG_SOFTMAX = register(
    Op(
        name="log_softmax",
        shape=lambda s, axis: s[0],
        impl=_ls_impl,
        # d log_softmax(x) = dx - softmax(x) . dx
        vjp=lambda ct, out, x, axis: (ct - exp(out) * sum(ct, axis, keepdims=True),),
        jvp=lambda tangents, out, x, axis: (
            tangents[0] - sum(exp(out) * tangents[0], axis, keepdims=True)
        ),
        mpmath=_NO_MP,
        sympy=Unsupported("build x - logsumexp(x) from scalar ops for SymPy"),
        samples=(Sample(((3, 4),), {"axis": (1,)}), Sample(((2, 3, 2),), {"axis": (1,)})),
        analytic=True,
        doc="x - logsumexp(x) along an axis, computed stably",
        kind="reduction",
    )
)


@builds(LOG_SOFTMAX)
def log_softmax(x, axis: int = -1) -> Node:
    """log(softmax(x)) along ``axis``, computed stably from the logits.

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: the axis of the logits.

    Returns:
        Node: x - logsumexp(x) along ``axis``, of ``x``'s shape.

    Raises:
        ShapeError: the axis is out of range.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(dk.log_softmax(x), at={"x": [0.0, 0.0]}).tolist()  # -ln 2
    [-0.6931471805599453, -0.6931471805599453]
    """
    x = as_node(x)
    return apply(LOG_SOFTMAX, x, axis=normalize_axes("log_softmax", axis, x.ndim))


SOFTMAX = register(
    Op(
        name="softmax",
        shape=lambda s, axis: s[0],
        impl=_sm_impl,
        # d softmax(x) = softmax(x) (dx - softmax(x) . dx)
        vjp=lambda ct, out, x, axis: (out * (ct - sum(ct * out, axis, keepdims=True)),),
        jvp=lambda tangents, out, x, axis: (
            out * (tangents[0] - sum(out * tangents[0], axis, keepdims=True))
        ),
        mpmath=_NO_MP,
        sympy=Unsupported("build exp(x) / sum(exp(x)) from scalar ops for SymPy"),
        samples=(Sample(((3, 4),), {"axis": (1,)}), Sample(((2, 3, 2),), {"axis": (0,)})),
        analytic=True,
        doc="exp(x) / sum(exp(x)) along an axis, computed stably",
        kind="reduction",
    )
)


@builds(SOFTMAX)
def softmax(x, axis: int = -1) -> Node:
    """softmax(x) along ``axis``, computed stably (the largest logit is subtracted first).

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: the axis of the logits.

    Returns:
        Node: exp(x) / sum(exp(x)) along ``axis``, of ``x``'s shape.

    Raises:
        ShapeError: the axis is out of range.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.softmax(x), at={"x": [0.0, 0.0, 0.0, 0.0]}).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    x = as_node(x)
    return apply(SOFTMAX, x, axis=normalize_axes("softmax", axis, x.ndim))

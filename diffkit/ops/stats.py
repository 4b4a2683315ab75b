"""Order statistics and running products: sort, argsort, cumprod, the running maximum and
minimum (``np.maximum.accumulate``, ``np.minimum.accumulate``), median, percentile and
quantile.

Sorting and the running extrema move entries without changing them, so they are built on
one pair of linear primitives: ``gather_by_key`` takes the entries of ``v`` at positions
computed from a second input, the key (the stable sort order of the key, or for each
position the entry that holds the running maximum so far), and ``scatter_by_key`` adds a
cotangent back at those positions. Each is the other's VJP; the key gets no derivative.

Conventions (values as numpy, derivatives as JAX where JAX has a clean rule):

- ``sort``: the derivative is the permutation of numpy's stable sort, so tied entries
  keep their order (the first of two equal entries receives the cotangent of the first
  sorted position), as ``jnp.sort``;
- ``maximum.accumulate`` / ``minimum.accumulate``: the running extremum at position i
  takes its derivative from the latest entry at or before i that equals it, as
  ``torch.cummax`` / ``torch.cummin`` (JAX's rule at ties depends on its scan's tree);
- ``cumprod``: the derivative is the product of the other entries of each prefix, exact
  where the input has zeros (as JAX's, no division by the input);
- ``median`` and ``percentile`` interpolate between sorted entries with constant weights,
  so their derivative is that of ``sort``; a slice holding NaN gives NaN, as numpy.
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import STRUCTURAL, Op, Sample, Unsupported, builds, function, register
from ..ir.shapes import normalize_axes
from .comparison import greater, not_equal, where
from .joining import stack
from .reduce import PROD_OTHERS, sum as _sum
from .shape import reshape
from ._sparsity import cumulative_rule

__all__ = [
    "sort",
    "argsort",
    "cumprod",
    "cummax",
    "cummin",
    "median",
    "ptp",
    "percentile",
    "quantile",
    "gather_by_key",
    "scatter_by_key",
]

_HOW = ("sort", "cummax", "cummin")


# ---- positions computed from a key ----------------------------------------------------------


def _positions(key, axis: int, how: str):
    """Integer positions along ``axis``: numpy's stable sort order of ``key``, or for each
    position the latest entry at or before it that holds the running maximum (minimum)."""
    real = key.real if key.dtype.kind == "c" else np.asarray(key, dtype=float)
    if how == "sort":
        return np.argsort(real, axis=axis, kind="stable")
    running = (np.maximum if how == "cummax" else np.minimum).accumulate(real, axis=axis)
    shape = [1] * real.ndim
    shape[axis] = real.shape[axis]
    here = np.arange(real.shape[axis]).reshape(shape)
    # an entry holds the running extremum where it equals it (NaN holds it from there on)
    holds = (real == running) | np.isnan(real)
    return np.maximum.accumulate(np.where(holds, here, 0), axis=axis)


def _gather_impl(v, key, axis, how):
    return np.take_along_axis(v, _positions(key, axis, how), axis=axis)


def _scatter_impl(ct, key, axis, how):
    idx = _positions(key, axis, how)
    moved_ct, moved_idx = np.moveaxis(ct, axis, -1), np.moveaxis(idx, axis, -1)
    n = moved_ct.shape[-1]
    m = int(np.prod(moved_ct.shape[:-1], dtype=np.int64))
    flat_ct = moved_ct.reshape(m, n)
    rows = np.arange(m)[:, None]
    out = np.zeros_like(flat_ct)
    np.add.at(out, (rows, moved_idx.reshape(m, n)), flat_ct)  # repeated positions add up
    return np.moveaxis(out.reshape(moved_ct.shape), -1, axis)


def _keyed_shape(name):
    def shape(shapes, axis, how):
        v, key = shapes
        if v != key:
            raise ShapeError(f"{name}: the values {v} and the key {key} need one shape")
        if not 0 <= axis < max(len(v), 1) or not v:
            raise ShapeError(f"{name}: axis {axis} is out of range for shape {v}")
        if how not in _HOW:
            raise ValueError(f"{name}: how must be one of {_HOW}, got {how!r}")
        return v

    return shape


def _keyed_samples():
    def draw(shape):
        return lambda rng: [rng.uniform(-2, 2, shape), np.round(rng.uniform(-2, 2, shape))]

    return tuple(
        Sample(((3, 4), (3, 4)), {"axis": ax, "how": how}, make=draw((3, 4)))
        for ax, how in ((1, "sort"), (0, "cummax"), (1, "cummin"))
    )


def _keyed(op, t, key, axis, how):
    """``op`` on a tangent (linear in it: the JVP is the op itself on the tangent)."""
    return None if t is None else apply(op, t, key, axis=axis, how=how)


GATHER_BY_KEY = register(
    Op(
        name="gather_by_key",
        shape=_keyed_shape("gather_by_key"),
        impl=_gather_impl,
        # linear in v: the adjoint of taking entries at positions is adding them back there
        vjp=lambda ct, out, v, key, axis, how: (
            apply("scatter_by_key", ct, key, axis=axis, how=how),
            None,
        ),
        jvp=lambda tangents, out, v, key, axis, how: _keyed(
            GATHER_BY_KEY, tangents[0], key, axis, how
        ),
        mpmath=Unsupported("positions computed from a key: not a scalar function"),
        sympy=Unsupported("positions computed from a key have no SymPy form"),
        samples=_keyed_samples(),
        analytic=False,
        nondiff_inputs=(1,),
        doc="entries of v at positions computed from key along axis (sort order, running max)",
        kind="axis",
    )
)
SCATTER_BY_KEY = register(
    Op(
        name="scatter_by_key",
        shape=_keyed_shape("scatter_by_key"),
        impl=_scatter_impl,
        # the adjoint of scatter-add is the gather at the same positions
        vjp=lambda ct, out, v, key, axis, how: (
            apply(GATHER_BY_KEY, ct, key, axis=axis, how=how),
            None,
        ),
        jvp=lambda tangents, out, v, key, axis, how: _keyed(
            SCATTER_BY_KEY, tangents[0], key, axis, how
        ),
        mpmath=Unsupported("positions computed from a key: not a scalar function"),
        sympy=Unsupported("positions computed from a key have no SymPy form"),
        samples=_keyed_samples(),
        analytic=False,
        nondiff_inputs=(1,),
        doc="v added at positions computed from key along axis (the adjoint of gather_by_key)",
        kind="axis",
    )
)


def gather_by_key(v, key, axis: int = -1, how: str = "sort") -> Node:
    """The entries of ``v`` at positions computed from ``key`` along ``axis``: ``key``'s
    stable sort order (``how="sort"``) or, for each position, the latest entry at or before
    it that holds ``key``'s running maximum (``"cummax"``) or minimum (``"cummin"``).
    ``key`` gets no derivative.

    Args:
        v: a node, or an array (taken as a constant).
        key: a node or array of ``v``'s shape (no derivative).
        axis: the axis.
        how: ``"sort"``, ``"cummax"`` or ``"cummin"``.

    Returns:
        Node: the gathered entries, of ``v``'s shape.

    >>> import diffkit as dk
    >>> v, k = dk.variable("v", (3,)), dk.variable("k", (3,))
    >>> dk.evaluate(dk.gather_by_key(v, k), at={"v": [10.0, 20.0, 30.0], "k": [2.0, 0.0, 1.0]})
    array([20., 30., 10.])
    """
    v, key = as_node(v), as_node(key)
    (ax,) = normalize_axes("gather_by_key", axis, v.ndim)
    return apply(GATHER_BY_KEY, v, key, axis=ax, how=how)


def scatter_by_key(v, key, axis: int = -1, how: str = "sort") -> Node:
    """``v`` added at the positions :func:`gather_by_key` takes from (its adjoint).

    Args:
        v: a node, or an array (taken as a constant).
        key: a node or array of ``v``'s shape (no derivative).
        axis: the axis.
        how: ``"sort"``, ``"cummax"`` or ``"cummin"``.

    Returns:
        Node: the scattered sums, of ``v``'s shape.

    >>> import diffkit as dk
    >>> v, k = dk.variable("v", (3,)), dk.variable("k", (3,))
    >>> at = {"v": [10.0, 20.0, 30.0], "k": [2.0, 0.0, 1.0]}
    >>> dk.evaluate(dk.gather_by_key(v, k), at=at).tolist()  # v[argsort(k)]
    [20.0, 30.0, 10.0]
    >>> dk.evaluate(dk.scatter_by_key(v, k), at=at).tolist()  # w[argsort(k)] = v
    [30.0, 10.0, 20.0]
    """
    v, key = as_node(v), as_node(key)
    (ax,) = normalize_axes("scatter_by_key", axis, v.ndim)
    return apply(SCATTER_BY_KEY, v, key, axis=ax, how=how)


def _flat_axis(name: str, x: Node, axis):
    """``x`` and one axis: numpy's ``axis=None`` flattens."""
    if axis is None:
        return reshape(x, (x.size,)), 0
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an integer or None, got {axis!r}")
    if x.ndim == 0:
        raise ShapeError(f"{name}: a 0-d input has no axis {axis}")
    (ax,) = normalize_axes(name, int(axis), x.ndim)
    return x, ax


# ---- sort, argsort ----------------------------------------------------------------------------


@function(
    numpy=(np.sort,),
    samples=(
        Sample(((6,),)),
        Sample(((3, 4),), {"axis": 0}),
        Sample(((2, 3, 4),), {"axis": None}),
    ),
)
def sort(a, axis=-1, kind=None, order=None, *, stable=None) -> Node:
    """``a`` sorted along ``axis`` (numpy's ``sort``; ``kind`` and ``stable`` are accepted
    and the sort is always stable; ``axis=None`` sorts the flattened array). The derivative
    is the sorting permutation: tied entries keep their order, as ``jnp.sort``.

    Args:
        a: a node, or an array (taken as a constant).
        axis: the axis; None for the flattened array.
        kind, stable: numpy's arguments (the sort is stable).
        order: numpy's argument, for structured arrays (refused).

    Returns:
        Node: the sorted entries.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> dk.gradient(np.sort(x)[0], at={"x": [2.0, 1.0, 1.0]})["x"].tolist()
    [0.0, 1.0, 0.0]
    """
    if order is not None:
        raise TypeError("sort: order= (fields of structured arrays) is not supported")
    x, ax = _flat_axis("sort", as_node(a), axis)
    return apply(GATHER_BY_KEY, x, x, axis=ax, how="sort")


def _argsort_impl(x, axis):
    real = x.real if x.dtype.kind == "c" else x
    dtype = real.dtype if real.dtype.kind == "f" else np.float64
    return np.argsort(real, axis=axis, kind="stable").astype(dtype)


ARGSORT = register(
    Op(
        name="argsort",
        shape=lambda s, axis: s[0],
        impl=_argsort_impl,
        # indices are piecewise constant: derivative 0
        vjp=lambda ct, out, x, axis: (None,),
        jvp=lambda tangents, out, x, axis: None,
        mpmath=Unsupported("indices of a sort: not a scalar function"),
        sympy=Unsupported("indices of a sort have no SymPy form"),
        samples=(Sample(((3, 4),), {"axis": 1}, zero_derivative=True),),
        analytic=False,
        doc="the indices that sort x along axis (as floats; derivative 0)",
        kind="axis",
        discontinuous=True,
    )
)


@builds(ARGSORT, numpy=(np.argsort,))
def argsort(a, axis=-1, kind=None, order=None, *, stable=None) -> Node:
    """The indices that sort ``a`` along ``axis`` (numpy's stable ``argsort``), held as
    floats in the data's dtype: their values are numpy's, their derivative is 0. To
    reorder values by them, use :func:`sort` or :func:`gather_by_key`, which differentiate.

    Args:
        a: a node, or an array (taken as a constant).
        axis: the axis; None for the flattened array.
        kind, stable: numpy's arguments (the sort is stable).
        order: numpy's argument, for structured arrays (refused).

    Returns:
        Node: the integer indices that sort ``a`` (no derivative).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(np.argsort(x), at={"x": [3.0, 1.0, 2.0]}).tolist()
    [1.0, 2.0, 0.0]
    """
    if order is not None:
        raise TypeError("argsort: order= (fields of structured arrays) is not supported")
    x, ax = _flat_axis("argsort", as_node(a), axis)
    return apply(ARGSORT, x, axis=ax)


# ---- running maximum and minimum ----------------------------------------------------------


def _accumulate_args(name, dtype, out):
    if out is not None:
        raise TypeError(f"{name}: out= is not supported on IR nodes (the IR is functional)")
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        raise TypeError(f"{name}: dtype={np.dtype(dtype)} is not a float dtype")


_ACC_SAMPLES = (Sample(((6,),)), Sample(((3, 4),), {"axis": 1}))


@function(numpy=((np.maximum, "accumulate"),), samples=_ACC_SAMPLES)
def cummax(array, axis: int = 0, dtype=None, out=None) -> Node:
    """The running maximum along ``axis`` (``np.maximum.accumulate``, whose default axis is
    0). Each entry's derivative comes from the latest entry at or before it that equals
    it, as ``torch.cummax``.

    Args:
        array: a node, or an array (taken as a constant).
        axis: the axis.
        dtype, out: numpy's arguments.

    Returns:
        Node: the running maxima.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.gradient(dk.sum(np.maximum.accumulate(x)), at={"x": [1.0, 3.0, 3.0, 2.0]})["x"]
    array([1., 1., 2., 0.])
    """
    _accumulate_args("maximum.accumulate", dtype, out)
    x, ax = _flat_axis("maximum.accumulate", as_node(array), axis)
    return apply(GATHER_BY_KEY, x, x, axis=ax, how="cummax")


@function(numpy=((np.minimum, "accumulate"),), samples=_ACC_SAMPLES)
def cummin(array, axis: int = 0, dtype=None, out=None) -> Node:
    """The running minimum along ``axis`` (``np.minimum.accumulate``), as :func:`cummax`.

    Args:
        array: a node, or an array (taken as a constant).
        axis: the axis.
        dtype, out: numpy's arguments.

    Returns:
        Node: the running minima.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.cummin(x), at={"x": [3.0, 1.0, 2.0, 0.0]}).tolist()
    [3.0, 1.0, 1.0, 0.0]
    """
    _accumulate_args("minimum.accumulate", dtype, out)
    x, ax = _flat_axis("minimum.accumulate", as_node(array), axis)
    return apply(GATHER_BY_KEY, x, x, axis=ax, how="cummin")


# ---- cumprod ------------------------------------------------------------------------------


def _prefix_products(x: Node, axis: int):
    """``M`` with ``M[..., i, j, ...] = x_j`` for ``j <= i`` and 1 elsewhere (the i axis
    inserted before ``axis``), the products of its rows' other entries, and the mask."""
    n = x.shape[axis]
    rest = x.shape[axis + 1 :]
    mask = const(np.tril(np.ones((n, n))).reshape((n, n) + (1,) * len(rest)))
    rows = where(mask, reshape(x, x.shape[:axis] + (1, n) + rest), 1.0)
    return apply(PROD_OTHERS, rows, axis=(axis + 1,)), mask


def _cumprod_vjp(ct, out, x, axis):
    # d y_i / d x_k = prod_{j <= i, j != k} x_j for k <= i: exact where x has zeros
    others, mask = _prefix_products(x, axis)
    n, rest = x.shape[axis], x.shape[axis + 1 :]
    ct_rows = reshape(ct, x.shape[:axis] + (n, 1) + rest)
    return (_sum(where(mask, ct_rows * others, 0.0), axis),)


def _cumprod_jvp(tangents, out, x, axis):
    others, mask = _prefix_products(x, axis)
    n, rest = x.shape[axis], x.shape[axis + 1 :]
    t_cols = reshape(tangents[0], x.shape[:axis] + (1, n) + rest)
    return _sum(where(mask, others * t_cols, 0.0), axis + 1)


def _with_zeros(shape):
    def make(rng):
        v = rng.uniform(-2, 2, shape)
        v.reshape(-1)[::3] = 0.0
        return [v]

    return make


CUMPROD = register(
    Op(
        name="cumprod",
        shape=lambda s, axis: s[0],
        impl=lambda x, axis: np.cumprod(x, axis=axis),
        vjp=_cumprod_vjp,
        jvp=_cumprod_jvp,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((5,),), {"axis": 0}),
            Sample(((3, 4),), {"axis": 1}),
            Sample(((2, 3, 2),), {"axis": 1}),
            Sample(((3, 4),), {"axis": 1}, make=_with_zeros((3, 4)), second_order=False),
        ),
        analytic=True,
        doc="running product along an axis",
        kind="axis",
        rules={"sparsity": cumulative_rule},
    )
)


@builds(CUMPROD, numpy=(np.cumprod,))
def cumprod(a, axis=None, dtype=None, out=None) -> Node:
    """Running product of ``a`` along ``axis`` (of the flattened ``a`` by default, as
    numpy). The derivative is the product of the other entries of each prefix, exact where
    ``a`` has zeros (as JAX's); it costs O(n^2) per slice of length n.

    Args:
        a: a node, or an array (taken as a constant).
        axis: the axis; None for the flattened array.
        dtype, out: numpy's arguments.

    Returns:
        Node: the running products.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.gradient(dk.sum(dk.cumprod(x)), at={"x": [2.0, 0.0, 3.0]})["x"].tolist()
    [1.0, 8.0, 0.0]
    """
    _accumulate_args("cumprod", dtype, out)
    x, ax = _flat_axis("cumprod", as_node(a), axis)
    return apply(CUMPROD, x, axis=ax)


# ---- median, percentile, quantile -----------------------------------------------------------


def _order_statistic(name, a, q, axis, keepdims, method):
    """numpy's ``quantile`` at constant ``q`` in [0, 1], linear method, from the sort."""
    if method not in ("linear", "midpoint"):
        raise TypeError(f"{name}: method={method!r} is not supported (linear, midpoint)")
    if isinstance(q, Node):
        raise TypeError(f"{name}: q must be a constant (a number or a numpy array)")
    q = np.asarray(q, dtype=float)
    if np.any((q < 0) | (q > 1)) or np.any(np.isnan(q)):
        raise ValueError(f"{name}: q out of range")
    x = as_node(a)
    flat, ax = _flat_axis(name, x, axis)
    n = flat.shape[ax]
    if n == 0:
        raise ShapeError(f"{name}: no entries along axis {axis} of shape {x.shape}")
    s = sort(flat, axis=ax)

    def take(i):
        return s[(slice(None),) * ax + (int(i),)]

    outs = []
    for qi in q.reshape(-1):
        pos = qi * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        t = float(pos - lo)
        a_, b_ = take(lo), take(hi)
        if method == "midpoint" and hi != lo and t > 0:
            outs.append((a_ + b_) / 2.0)
        elif t == 0 or hi == lo:
            outs.append(a_)
        elif t < 0.5:  # numpy's lerp: a + (b - a) t, or b - (b - a)(1 - t) past the middle
            outs.append(a_ + (b_ - a_) * t)
        else:
            outs.append(b_ - (b_ - a_) * (1.0 - t))
    out = outs[0] if q.ndim == 0 else reshape(stack(outs), q.shape + outs[0].shape)
    # a slice holding NaN gives NaN, as numpy (the sort puts NaN last)
    has_nan = greater(_sum(not_equal(flat, flat), ax), 0)
    out = where(has_nan, float("nan"), out)
    if keepdims:
        kept = tuple(1 if (axis is None or i == ax) else d for i, d in enumerate(x.shape))
        out = reshape(out, q.shape + kept)
    return out


def _check_common(name, out, overwrite_input, weights=None):
    if out is not None:
        raise TypeError(f"{name}: out= is not supported on IR nodes (the IR is functional)")
    if weights is not None:
        raise TypeError(f"{name}: weights= is not supported on IR nodes")


@function(
    numpy=(np.median,),
    samples=(Sample(((7,),)), Sample(((3, 4),), {"axis": 1}), Sample(((4, 3),), {"axis": 0})),
)
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False) -> Node:
    """The median along ``axis`` (numpy's ``median``: the mean of the two middle entries of
    an even count). Its derivative is the sort's: tied entries keep their order.

    Args:
        a: a node, or an array (taken as a constant).
        axis: an axis or tuple of axes; None for all.
        out, overwrite_input: numpy's arguments.
        keepdims: keep the reduced axes, with length 1.

    Returns:
        Node: the median(s).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.gradient(np.median(x), at={"x": [4.0, 1.0, 3.0, 2.0]})["x"].tolist()
    [0.0, 0.0, 0.5, 0.5]
    """
    _check_common("median", out, overwrite_input)
    return _order_statistic("median", a, 0.5, axis, keepdims, "midpoint")


@function(
    numpy=(np.ptp,),
    samples=(Sample(((7,),)), Sample(((3, 4),), {"axis": 1}), Sample(((4, 3),), {"axis": 0})),
)
def ptp(a, axis=None, out=None, keepdims=False) -> Node:
    """The range max - min along ``axis`` (numpy's ``ptp``, "peak to peak"); tied maxima
    and tied minima share their derivative evenly, as ``jnp.ptp``'s.

    Args:
        a: a node, or an array (taken as a constant).
        axis: an axis or tuple of axes; None for all.
        out: numpy's argument, refused on IR nodes.
        keepdims: keep the reduced axes, with length 1.

    Returns:
        Node: the range(s).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.gradient(np.ptp(x), at={"x": [4.0, 1.0, 3.0, 1.0]})["x"].tolist()
    [1.0, -0.5, 0.0, -0.5]
    """
    from .reduce import max as _max, min as _min

    if out is not None:
        raise TypeError("ptp: out= is not supported on IR nodes")
    return _max(a, axis=axis, keepdims=keepdims) - _min(a, axis=axis, keepdims=keepdims)


@function(
    numpy=(np.percentile,),
    samples=(Sample(((7,),), {"q": 30.0}), Sample(((3, 4),), {"q": [10.0, 75.0], "axis": 1})),
    arity=(2, 2),
)
def percentile(
    a,
    q,
    axis=None,
    out=None,
    overwrite_input=False,
    method="linear",
    keepdims=False,
    *,
    weights=None,
    interpolation=None,
) -> Node:
    """The ``q``-th percentiles (constant ``q`` in [0, 100]) along ``axis``, numpy's linear
    interpolation between sorted entries.

    Args:
        a: a node, or an array (taken as a constant).
        q: the percentiles, constants in [0, 100].
        axis: an axis or tuple of axes; None for all.
        out, overwrite_input: numpy's arguments.
        method: numpy's interpolation method.
        keepdims: keep the reduced axes, with length 1.
        weights, interpolation: numpy's arguments.

    Returns:
        Node: the percentiles (``q``'s axes first).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (5,))
    >>> float(dk.evaluate(np.percentile(x, 25), at={"x": [5.0, 1.0, 4.0, 2.0, 3.0]}))
    2.0
    """
    _check_common("percentile", out, overwrite_input, weights)
    if interpolation is not None:
        method = interpolation
    q = np.asarray(q, dtype=float) / 100
    return _order_statistic("percentile", a, q, axis, keepdims, method)


@function(
    numpy=(np.quantile,),
    samples=(Sample(((3, 5),), {"q": 0.3, "axis": 1}),),
    arity=(2, 2),
)
def quantile(
    a,
    q,
    axis=None,
    out=None,
    overwrite_input=False,
    method="linear",
    keepdims=False,
    *,
    weights=None,
    interpolation=None,
) -> Node:
    """The ``q``-th quantiles (constant ``q`` in [0, 1]) along ``axis``, as :func:`percentile`.

    Args:
        a: a node, or an array (taken as a constant).
        q: the quantiles, constants in [0, 1].
        axis: an axis or tuple of axes; None for all.
        out, overwrite_input: numpy's arguments.
        method: numpy's interpolation method.
        keepdims: keep the reduced axes, with length 1.
        weights, interpolation: numpy's arguments.

    Returns:
        Node: the quantiles (``q``'s axes first).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (5,))
    >>> dk.evaluate(dk.quantile(x, 0.25), at={"x": [4.0, 0.0, 3.0, 1.0, 2.0]})  # np.quantile: 1.0
    1.0
    >>> dk.gradient(dk.quantile(x, 0.375), at={"x": [4.0, 0.0, 3.0, 1.0, 2.0]})["x"].tolist()
    [0.0, 0.0, 0.0, 0.5, 0.5]
    """
    _check_common("quantile", out, overwrite_input, weights)
    if interpolation is not None:
        method = interpolation
    return _order_statistic("quantile", a, q, axis, keepdims, method)

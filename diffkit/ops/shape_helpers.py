"""numpy's shape helpers on IR nodes: squeeze, ravel, expand_dims, moveaxis, atleast_1d/2d/3d,
roll, rot90, diff, gradient, append and linspace with traced end points; ``copy`` and the
constants shaped like a node (``zeros_like``, ``ones_like``, ``full_like``).

Each is a composition of the structural primitives (``reshape``, ``transpose``,
``getitem``, ``concatenate``) and arithmetic, so none needs a derivative rule of its own:
their gradients, batching and object-array (mpmath, SymPy) evaluation come from those
ops. All take numpy's arguments, so an unchanged numpy function traces, and return what
numpy returns (a tuple where numpy gives one).

>>> import diffkit as dk, numpy as np
>>> x = dk.variable("x", (3, 4))
>>> np.roll(x, 1, axis=1).shape, np.diff(x, axis=0).shape, np.moveaxis(x, 0, -1).shape
((3, 4), (2, 4), (4, 3))
"""

from __future__ import annotations

import operator

import numpy as np

from ..ir.node import Node, ShapeError, as_node, const
from ..ir.op import Sample, function
from .indexing import getitem
from .joining import concatenate, flip
from .shape import broadcast_to, reshape, transpose

__all__ = [
    "squeeze",
    "ravel",
    "expand_dims",
    "moveaxis",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    "roll",
    "rot90",
    "diff",
    "sampled_gradient",
    "append",
    "linspace",
    "copy",
    "zeros_like",
    "ones_like",
    "full_like",
]


# ---- helpers --------------------------------------------------------------------------------


def _int(name: str, what: str, value) -> int:
    """``value`` as a Python int, or a one-line TypeError naming the function."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: {what} must be an integer, got {value!r}") from None


def _axes(name: str, axis, ndim: int, shape: tuple, *, what: str = "axis", dup=False) -> tuple:
    """``axis`` (an int or a sequence of ints) as non-negative axes of ``ndim`` dimensions;
    an axis out of range raises :class:`ShapeError` naming ``name`` and ``shape``."""
    items = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in items:
        a = _int(name, what, a)
        if not -ndim <= a < ndim:
            raise ShapeError(
                f"{name}: {what} {a} is out of range for {ndim} dimensions (shape {shape})"
            )
        out.append(a % ndim)
    if not dup and len(set(out)) != len(out):
        raise ValueError(f"{name}: repeated {what} in {axis!r}")
    return tuple(out)


def _slice(x: Node, axis: int, start: int, stop: int) -> Node:
    """``x[..., start:stop, ...]`` along ``axis`` (bounds non-negative)."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return getitem(x, tuple(index))


def _unit_axis(shape: tuple, axis: int) -> tuple:
    return shape[:axis] + (1,) + shape[axis + 1 :]


# ---- squeeze, ravel, expand_dims, moveaxis, atleast_nd: reshapes and transposes ------------


@function(
    numpy=(np.squeeze,),
    samples=(
        Sample(((1, 3, 1),)),
        Sample(((1, 3, 1),), {"axis": 2}),
        Sample(((2, 1, 1),), {"axis": (1, -1)}),
    ),
)
def squeeze(a, axis=None) -> Node:
    """``a`` without its unit axes (those of ``axis``, else all), as ``np.squeeze``.

    Args:
        a: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes of length 1; None for every unit axis.

    Returns:
        Node: ``a`` without those axes.

    Raises:
        ValueError: an axis given does not have length 1.

    >>> import diffkit as dk, numpy as np
    >>> np.squeeze(dk.variable("x", (1, 3, 1)), axis=0).shape
    (3, 1)
    """
    x = as_node(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = _axes("squeeze", axis, x.ndim, x.shape)
        wide = [k for k in axes if x.shape[k] != 1]
        if wide:
            raise ValueError(
                f"squeeze: axis {wide[0]} of shape {x.shape} has size {x.shape[wide[0]]}, not 1"
            )
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@function(
    numpy=(np.ravel,),
    samples=(Sample(((2, 3),)), Sample(((2, 3, 2),), {"order": "F"})),
)
def ravel(a, order: str = "C") -> Node:
    """``a`` as one axis, in row-major (``order="C"``, also ``"A"``, ``"K"``: a node has no
    memory layout) or column-major (``"F"``) order, as ``np.ravel``.

    Args:
        a: a node, or a number or array (taken as a constant).
        order: ``"C"`` (also ``"A"``, ``"K"``) for row-major, ``"F"`` for column-major.

    Returns:
        Node: the entries of ``a`` as one axis.

    Raises:
        ValueError: an unknown ``order``.

    >>> import diffkit as dk, numpy as np
    >>> np.ravel(dk.variable("x", (2, 3))).shape, dk.variable("y", (2, 2)).flatten().shape
    ((6,), (4,))
    """
    x = as_node(a)
    if order not in ("C", "F", "A", "K"):
        raise ValueError(f"ravel: order must be one of 'C', 'F', 'A', 'K', got {order!r}")
    if order == "F":
        x = transpose(x)
    return reshape(x, (x.size,))


@function(
    numpy=(np.expand_dims,),
    samples=(Sample(((2, 3),), {"axis": 1}), Sample(((2, 3),), {"axis": (0, -1)})),
)
def expand_dims(a, axis) -> Node:
    """``a`` with unit axes inserted at ``axis`` (an int or a tuple, positions in the
    output), as ``np.expand_dims``.

    Args:
        a: a node, or a number or array (taken as a constant).
        axis: an int or a tuple of ints, positions in the output.

    Returns:
        Node: ``a`` with new axes of length 1.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk, numpy as np
    >>> np.expand_dims(dk.variable("x", (2, 3)), (0, -1)).shape
    (1, 2, 3, 1)
    """
    x = as_node(a)
    count = 1 if np.ndim(axis) == 0 else len(axis)
    ndim = x.ndim + count
    axes = _axes("expand_dims", axis, ndim, x.shape)
    rest = iter(x.shape)
    return reshape(x, tuple(1 if i in axes else next(rest) for i in range(ndim)))


@function(
    numpy=(np.moveaxis,),
    samples=(
        Sample(((2, 3, 4),), {"source": 0, "destination": -1}),
        Sample(((2, 3, 4),), {"source": (0, 1), "destination": (2, 0)}),
    ),
)
def moveaxis(a, source, destination) -> Node:
    """``a`` with axes ``source`` moved to positions ``destination`` (the others keep
    their order), as ``np.moveaxis``.

    Args:
        a: a node, or a number or array (taken as a constant).
        source: an axis or a sequence of axes to move.
        destination: their positions in the output.

    Returns:
        Node: ``a`` with its axes reordered.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk, numpy as np
    >>> np.moveaxis(dk.variable("x", (2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    x = as_node(a)
    src = _axes("moveaxis", source, x.ndim, x.shape, what="source")
    dst = _axes("moveaxis", destination, x.ndim, x.shape, what="destination")
    if len(src) != len(dst):
        raise ValueError(
            f"moveaxis: source {source!r} and destination {destination!r} must have the same "
            f"number of elements"
        )
    order = [k for k in range(x.ndim) if k not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, tuple(order))


def _atleast(arys, grow):
    outs = tuple(grow(as_node(a)) for a in arys)
    return outs[0] if len(outs) == 1 else outs


@function(
    numpy=(np.atleast_1d,),
    arity=(1, None),
    samples=(Sample(((),)), Sample(((), (3,), (2, 3)))),
)
def atleast_1d(*arys):
    """Each array with at least one axis (a scalar becomes shape ``(1,)``); several
    arrays give a tuple, as ``np.atleast_1d``.

    Args:
        *arys: nodes, numbers or arrays.

    Returns:
        Node, or a tuple of nodes when several are given.

    >>> import diffkit as dk, numpy as np
    >>> [y.shape for y in np.atleast_1d(dk.variable("s"), dk.variable("v", (3,)))]
    [(1,), (3,)]
    """
    return _atleast(arys, lambda x: reshape(x, (1,)) if x.ndim == 0 else x)


@function(
    numpy=(np.atleast_2d,),
    arity=(1, None),
    samples=(Sample(((3,),)), Sample(((), (3,), (2, 3), (2, 1, 2)))),
)
def atleast_2d(*arys):
    """Each array with at least two axes (shape ``(n,)`` becomes ``(1, n)``); several
    arrays give a tuple, as ``np.atleast_2d``.

    Args:
        *arys: nodes, numbers or arrays.

    Returns:
        Node, or a tuple of nodes when several are given.

    >>> import diffkit as dk, numpy as np
    >>> np.atleast_2d(dk.variable("v", (3,))).shape
    (1, 3)
    """
    return _atleast(arys, lambda x: reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x)


def _grow3(x: Node) -> Node:
    if x.ndim == 0:
        return reshape(x, (1, 1, 1))
    if x.ndim == 1:
        return reshape(x, (1,) + x.shape + (1,))
    if x.ndim == 2:
        return reshape(x, x.shape + (1,))
    return x


@function(
    numpy=(np.atleast_3d,),
    arity=(1, None),
    samples=(Sample(((2, 3),)), Sample(((), (3,), (2, 3), (2, 1, 2)))),
)
def atleast_3d(*arys):
    """Each array with at least three axes (``(n,)`` becomes ``(1, n, 1)``, ``(m, n)``
    becomes ``(m, n, 1)``); several arrays give a tuple, as ``np.atleast_3d``.

    Args:
        *arys: nodes, numbers or arrays.

    Returns:
        Node, or a tuple of nodes when several are given.

    >>> import diffkit as dk, numpy as np
    >>> np.atleast_3d(dk.variable("v", (3,))).shape, np.atleast_3d(dk.variable("m", (2, 3))).shape
    ((1, 3, 1), (2, 3, 1))
    """
    return _atleast(arys, _grow3)


# ---- roll and rot90: slices joined, flips and transposes ------------------------------------


@function(
    numpy=(np.roll,),
    samples=(
        Sample(((3, 4),), {"shift": 5}),
        Sample(((3, 4),), {"shift": -1, "axis": 1}),
        Sample(((3, 4, 2),), {"shift": (1, -3, 2), "axis": (0, 1, 1)}),
    ),
)
def roll(a, shift, axis=None) -> Node:
    """``a`` rotated by ``shift`` places along ``axis`` (entries leaving one end come back at
    the other), as ``np.roll``: ``shift`` and ``axis`` may be tuples (broadcast together;
    shifts of a repeated axis add up), and ``axis=None`` rolls the flattened array.

    Args:
        a: a node, or a number or array (taken as a constant).
        shift: the number of places (an int or a tuple).
        axis: an axis or a tuple of axes; None for the flattened array.

    Returns:
        Node: the rotated array, of ``a``'s shape.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(np.roll(x, 1), {"x": np.arange(4.0)}).tolist()
    [3.0, 0.0, 1.0, 2.0]
    """
    x = as_node(a)
    if axis is None:
        return reshape(roll(reshape(x, (x.size,)), shift, 0), x.shape)
    try:
        pairs = np.broadcast(np.asarray(shift), np.asarray(axis))
    except ValueError:
        raise ValueError(f"roll: shift {shift!r} and axis {axis!r} do not broadcast") from None
    if pairs.ndim > 1:
        raise ValueError("roll: shift and axis must be scalars or 1-D sequences")
    shifts = [0] * x.ndim
    for s, k in pairs:
        (k,) = _axes("roll", k, x.ndim, x.shape)
        shifts[k] += _int("roll", "shift", s)
    for k, s in enumerate(shifts):
        n = x.shape[k]
        if n == 0 or s % n == 0:
            continue
        cut = n - s % n
        # y[i] = x[(i - s) mod n]: the last s entries, then the first n - s
        x = concatenate([_slice(x, k, cut, n), _slice(x, k, 0, cut)], axis=k)
    return x


@function(
    numpy=(np.rot90,),
    samples=(
        Sample(((3, 4),)),
        Sample(((2, 3, 4),), {"k": 2, "axes": (0, 2)}),
        Sample(((3, 4),), {"k": -1}),
        Sample(((2, 3, 4),), {"k": 3, "axes": (2, 1)}),
    ),
)
def rot90(m, k: int = 1, axes=(0, 1)) -> Node:
    """``m`` rotated by 90 degrees ``k`` times in the plane of ``axes``, from the first axis
    towards the second, as ``np.rot90``.

    Args:
        m: a node, or an array (taken as a constant), of two axes or more.
        k: the number of quarter turns (negative turns the other way).
        axes: the two axes of the plane of rotation.

    Returns:
        Node: the rotated array.

    Raises:
        ValueError: the two axes are equal.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 2))
    >>> dk.evaluate(np.rot90(x), {"x": np.array([[1.0, 2.0], [3.0, 4.0]])}).tolist()
    [[2.0, 4.0], [1.0, 3.0]]
    """
    x = as_node(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError(f"rot90: axes must name two axes, got {axes!r}")
    if x.ndim < 2:
        raise ValueError(f"rot90: needs an input of at least two dimensions, got shape {x.shape}")
    a0, a1 = _axes("rot90", axes, x.ndim, x.shape, dup=True)
    if a0 == a1:
        raise ValueError(f"rot90: axes {axes!r} must be different")
    k = _int("rot90", "k", k) % 4
    if k == 0:
        return x
    if k == 2:
        return flip(flip(x, a0), a1)
    order = list(range(x.ndim))
    order[a0], order[a1] = order[a1], order[a0]
    if k == 1:
        return transpose(flip(x, a1), tuple(order))
    return flip(transpose(x, tuple(order)), a1)


# ---- diff and gradient: differences of slices -----------------------------------------------


def _edge(name: str, value, x: Node, axis: int) -> Node:
    """``prepend``/``append`` of ``np.diff``: a scalar fills one slice along ``axis``."""
    v = as_node(value)
    if v.ndim == 0:
        return broadcast_to(v, _unit_axis(x.shape, axis))
    if v.ndim != x.ndim or any(
        p != q for i, (p, q) in enumerate(zip(v.shape, x.shape)) if i != axis
    ):
        raise ShapeError(
            f"diff: {name} of shape {v.shape} does not fit an input of shape {x.shape} "
            f"along axis {axis}"
        )
    return v


@function(
    numpy=(np.diff,),
    samples=(
        Sample(((5,),)),
        Sample(((3, 5),), {"n": 2, "axis": 0}),
        Sample(((3, 4),), {"n": 3, "prepend": 0.5, "append": np.ones((3, 2))}),
    ),
)
def diff(a, n: int = 1, axis: int = -1, prepend=None, append=None) -> Node:
    """The ``n``-th forward difference ``a[1:] - a[:-1]`` along ``axis``, as ``np.diff``;
    ``prepend`` and ``append`` (scalars, arrays or nodes) are joined to ``a`` first.

    Args:
        a: a node, or a number or array (taken as a constant).
        n: the number of times to take differences.
        axis: the axis.
        prepend, append: values joined before and after ``a`` along ``axis`` first.

    Returns:
        Node: the differences, shorter by ``n`` along ``axis``.

    Raises:
        ValueError: ``n`` is negative.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(np.diff(x, prepend=0.0), {"x": np.array([1.0, 4.0, 9.0, 16.0])}).tolist()
    [1.0, 3.0, 5.0, 7.0]
    """
    x = as_node(a)
    n = _int("diff", "n", n)
    if n < 0:
        raise ValueError(f"diff: the order n must be non-negative, got {n}")
    if n == 0:
        return x
    if x.ndim == 0:
        raise ValueError("diff: needs an input of at least one dimension, got shape ()")
    (axis,) = _axes("diff", axis, x.ndim, x.shape)
    parts = [x]
    if prepend is not None:
        parts.insert(0, _edge("prepend", prepend, x, axis))
    if append is not None:
        parts.append(_edge("append", append, x, axis))
    if len(parts) > 1:
        x = concatenate(parts, axis=axis)
    for _ in range(n):
        size = x.shape[axis]
        # (Δx)_i = x_{i+1} - x_i
        x = _slice(x, axis, min(1, size), size) - _slice(x, axis, 0, max(size - 1, 0))
    return x


def _spacing(value, f: Node, axis: int):
    """One spacing argument of ``np.gradient``: a scalar step (a number or a 0-d node), or
    the differences of coordinates (a 1-D node, or numpy's reduction of uniform constant
    coordinates to their one step)."""
    if np.ndim(value) == 0:
        return value if isinstance(value, Node) else np.asarray(value)[()]
    if np.ndim(value) != 1:
        raise ValueError(
            f"gradient: spacings must be scalars or 1-D coordinates, got shape {np.shape(value)}"
        )
    if np.shape(value)[0] != f.shape[axis]:
        raise ValueError(
            f"gradient: coordinates of shape {np.shape(value)} do not match axis {axis} of "
            f"the input's shape {f.shape}"
        )
    if isinstance(value, Node):
        return _slice(value, 0, 1, value.shape[0]) - _slice(value, 0, 0, value.shape[0] - 1)
    coords = np.asarray(value)
    if coords.dtype.kind in "iub":
        coords = coords.astype(np.float64)
    steps = np.diff(coords)
    return steps[0] if (steps == steps[0]).all() else steps


def _gradient_along(f: Node, axis: int, h, edge_order: int) -> Node:
    n = f.shape[axis]
    if n < edge_order + 1:
        raise ValueError(
            f"gradient: axis {axis} of shape {f.shape} has {n} entries; edge_order="
            f"{edge_order} needs at least {edge_order + 1}"
        )

    def s(start, stop):
        return _slice(f, axis, start, stop)

    uniform = np.ndim(h) == 0
    if uniform:
        # d/dx f_i ≈ (f_{i+1} - f_{i-1}) / 2h
        interior = (s(2, n) - s(0, n - 2)) / (2.0 * h)
    else:
        # second-order differences on a non-uniform grid: exact for quadratics
        dx1, dx2 = h[0:-1], h[1:]
        shape = tuple(-1 if i == axis else 1 for i in range(f.ndim))
        a = reshape(as_node(-dx2 / (dx1 * (dx1 + dx2))), shape)
        b = reshape(as_node((dx2 - dx1) / (dx1 * dx2)), shape)
        c = reshape(as_node(dx1 / (dx2 * (dx1 + dx2))), shape)
        interior = a * s(0, n - 2) + b * s(1, n - 1) + c * s(2, n)
    if edge_order == 1:
        # one-sided first differences at the ends: (f_1 - f_0)/h_0, (f_n - f_{n-1})/h_{n-1}
        first = (s(1, 2) - s(0, 1)) / (h if uniform else h[0])
        last = (s(n - 1, n) - s(n - 2, n - 1)) / (h if uniform else h[-1])
    else:
        # one-sided second-order differences at the ends (exact for quadratics)
        if uniform:
            a, b, c = -1.5 / h, 2.0 / h, -0.5 / h
        else:
            dx1, dx2 = h[0], h[1]
            a = -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2))
            b = (dx1 + dx2) / (dx1 * dx2)
            c = -dx1 / (dx2 * (dx1 + dx2))
        first = a * s(0, 1) + b * s(1, 2) + c * s(2, 3)
        if uniform:
            a, b, c = 0.5 / h, -2.0 / h, 1.5 / h
        else:
            dx1, dx2 = h[-2], h[-1]
            a = dx2 / (dx1 * (dx1 + dx2))
            b = -(dx2 + dx1) / (dx1 * dx2)
            c = (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2))
        last = a * s(n - 3, n - 2) + b * s(n - 2, n - 1) + c * s(n - 1, n)
    pieces = [first, interior, last] if n > 2 else [first, last]
    return concatenate(pieces, axis=axis)


def _coordinates(rng, n):
    """Sorted, well separated coordinates of ``n`` grid points."""
    return np.cumsum(rng.uniform(0.5, 1.5, n)) - 3.0


@function(
    "sampled_gradient",
    numpy=(np.gradient,),
    arity=(1, None),
    samples=(
        Sample(((5, 4),)),
        Sample(((6,),), {"edge_order": 2}),
        Sample(
            ((5, 4), ()),
            {"axis": 0, "edge_order": 2},
            make=lambda rng: [rng.uniform(-2, 2, (5, 4)), rng.uniform(0.5, 1.5)],
        ),
        Sample(
            ((6,), (6,)),
            {"edge_order": 2},
            make=lambda rng: [rng.uniform(-2, 2, 6), _coordinates(rng, 6)],
        ),
        Sample(
            ((4, 5), (5,)),
            {"axis": -1},
            make=lambda rng: [rng.uniform(-2, 2, (4, 5)), _coordinates(rng, 5)],
        ),
        Sample(
            ((3, 4), (3,), ()),
            {"edge_order": 1},
            make=lambda rng: [rng.uniform(-2, 2, (3, 4)), _coordinates(rng, 3), 0.8],
        ),
    ),
)
def sampled_gradient(f, *varargs, axis=None, edge_order: int = 1):
    """The gradient of sampled values ``f`` by finite differences, as ``np.gradient``
    (``dk.gradient`` is the derivative of a graph; this is numpy's function on nodes).

    Second-order central differences inside, one-sided differences of order
    ``edge_order`` (1 or 2) at the ends. ``varargs`` is numpy's spacing: nothing (unit
    steps), one scalar for every axis, or one per axis, each a scalar step or 1-D
    coordinates (non-uniform grids use numpy's second-order formula). Steps and
    coordinates may be nodes, so the result differentiates with respect to the grid too.
    One axis gives an array, several a tuple (one per axis), as numpy.

    Args:
        f: a node (or an array) of samples on a grid.
        *varargs: the spacing: nothing, one step, or one step or coordinate array per axis.
        axis: an axis or a tuple of axes; None for all.
        edge_order: the order (1 or 2) of the one-sided differences at the ends.

    Returns:
        Node, or a tuple of nodes (one per axis) for several axes.

    Raises:
        ValueError: ``edge_order`` is not 1 or 2.

    >>> import diffkit as dk, numpy as np
    >>> f = dk.variable("f", (5,))
    >>> dk.evaluate(np.gradient(f, 0.5), {"f": np.arange(5.0) ** 2}).tolist()
    [2.0, 4.0, 8.0, 12.0, 14.0]
    """
    x = as_node(f)
    axes = tuple(range(x.ndim)) if axis is None else _axes("gradient", axis, x.ndim, x.shape)
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order!r}")
    if not varargs:
        steps = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        steps = [_spacing(varargs[0], x, 0)] * len(axes)
    elif len(varargs) == len(axes):
        steps = [_spacing(v, x, k) for v, k in zip(varargs, axes)]
    else:
        raise TypeError(
            f"gradient: {len(varargs)} spacings for {len(axes)} axes of an input of shape "
            f"{x.shape}; give none, one scalar, or one per axis"
        )
    outs = tuple(_gradient_along(x, k, h, edge_order) for k, h in zip(axes, steps))
    return outs[0] if len(axes) == 1 else outs


# ---- append and linspace -------------------------------------------------------------------


@function(
    numpy=(np.append,),
    samples=(Sample(((3,), (2, 2))), Sample(((2, 3), (1, 3)), {"axis": 0})),
)
def append(arr, values, axis=None) -> Node:
    """``values`` joined after ``arr`` along ``axis``; both flattened first when ``axis``
    is None, as ``np.append``.

    Args:
        arr: a node, or a number or array (taken as a constant).
        values: the values to join after it.
        axis: the axis; None to flatten both first.

    Returns:
        Node: the joined array.

    >>> import diffkit as dk, numpy as np
    >>> np.append(dk.variable("x", (2, 3)), np.zeros((2, 1)), axis=1).shape
    (2, 4)
    """
    x, v = as_node(arr), as_node(values)
    if axis is None:
        return concatenate([ravel(x), ravel(v)], axis=0)
    if x.ndim != v.ndim:
        raise ShapeError(
            f"append: arr of shape {x.shape} and values of shape {v.shape} have different "
            f"numbers of dimensions"
        )
    (k,) = _axes("append", axis, x.ndim, x.shape)
    if any(p != q for i, (p, q) in enumerate(zip(x.shape, v.shape)) if i != k):
        raise ShapeError(
            f"append: arr of shape {x.shape} and values of shape {v.shape} differ off axis {k}"
        )
    return concatenate([x, v], axis=k)


@function(
    numpy=(np.linspace,),
    arity=(2, 2),
    samples=(
        Sample(((), ()), {"num": 5}),
        Sample(((3,), (2, 1)), {"num": 4, "endpoint": False, "axis": -1}),
        Sample(((), ()), {"num": 3, "retstep": True}),
        Sample(((2,), ()), {"num": 1}),
    ),
)
def linspace(
    start,
    stop,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype=None,
    axis: int = 0,
    *,
    device=None,
):
    """``num`` evenly spaced values from ``start`` to ``stop`` (included when ``endpoint``),
    as ``np.linspace``: the end points may be traced nodes or arrays (broadcast together,
    the samples along ``axis``), so the grid is differentiable in them. With ``retstep``,
    ``(samples, step)``; the step of one sample with its end point is NaN, as numpy's.

    Args:
        start, stop: the end points (numbers, arrays or nodes, broadcast together).
        num: the number of samples.
        endpoint: include ``stop``.
        retstep: also return the step.
        dtype: the result's dtype (numpy's argument).
        axis: the axis of the samples in the result.
        device: numpy's argument (CPU only).

    Returns:
        Node, or ``(samples, step)`` with ``retstep``.

    Raises:
        ValueError: ``num`` is negative.

    >>> import diffkit as dk, numpy as np
    >>> b = dk.variable("b")
    >>> dk.evaluate(np.linspace(0.0, b, 5), {"b": 2.0}).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    num = _int("linspace", "num", num)
    if num < 0:
        raise ValueError(f"linspace: the number of samples must be non-negative, got {num}")
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        raise TypeError(
            f"linspace: dtype={np.dtype(dtype)} is not supported; the samples keep the end "
            f"points' float dtype"
        )
    if device not in (None, "cpu"):
        raise ValueError(f"linspace: device={device!r} is not supported")
    a, b = as_node(start), as_node(stop)
    delta = b - a
    shape = delta.shape
    div = (num - 1) if endpoint else num
    ramp = const(np.arange(num, dtype=float).reshape((num,) + (1,) * len(shape)))
    if div != 0:
        step = delta / float(div)
        # x_i = start + i (stop - start) / div
        y = ramp * step + a
        if endpoint and num > 1:  # the last sample is stop itself, as numpy's
            last = reshape(broadcast_to(b, shape), (1,) + shape)
            y = concatenate([_slice(y, 0, 0, num - 1), last])
    else:
        step = const(np.full(shape, np.nan))
        y = ramp * delta + a
    axis = _int("linspace", "axis", axis)
    if not -y.ndim <= axis < y.ndim:
        raise ShapeError(f"linspace: axis {axis} is out of range for samples of shape {y.shape}")
    y = moveaxis(y, 0, axis)
    return (y, step) if retstep else y


# ---- copy and constants shaped like a node ---------------------------------------------------


@function(numpy=(np.copy,), samples=(Sample(((3, 4),)),))
def copy(a, order="K", subok=False):
    """``a`` itself (numpy's ``copy``): a node is never changed in place.

    Args:
        a: a node, or a number or array (taken as a constant).
        order, subok: numpy's arguments (no effect on a node).

    Returns:
        Node: ``a``.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> np.copy(x) is x
    True
    """
    return as_node(a)


def _like(name: str, a, fill, dtype, shape) -> Node:
    if dtype is not None and np.dtype(dtype).kind not in "fc":
        raise TypeError(f"{name}: the IR holds real or complex values, not {np.dtype(dtype)}")
    if shape is None:
        shape = as_node(a).shape
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    kind = np.complex128 if dtype is not None and np.dtype(dtype).kind == "c" else np.float64
    try:
        return const(np.full(shape, fill, dtype=kind))
    except (MemoryError, ValueError, TypeError) as err:
        raise ValueError(f"{name}: cannot make a constant of shape {shape}: {err}") from None


_LIKE = (Sample(((3, 4),), zero_derivative=True),)


@function(numpy=(np.zeros_like,), samples=_LIKE)
def zeros_like(a, dtype=None, order="K", subok=True, shape=None):
    """A constant of zeros shaped like ``a`` (numpy's ``zeros_like``); its derivative with
    respect to ``a`` is zero. Constants take the dtype of the data they meet.

    Args:
        a: a node, or an array.
        dtype: a float or complex dtype (integers and booleans are refused).
        order, subok: numpy's arguments (no effect).
        shape: another shape.

    Returns:
        Node: the constant.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 3))
    >>> dk.evaluate(np.zeros_like(x) + 2 * x, at={"x": np.ones((2, 3))}).tolist()
    [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]]
    """
    return _like("zeros_like", a, 0.0, dtype, shape)


@function(numpy=(np.ones_like,), samples=_LIKE)
def ones_like(a, dtype=None, order="K", subok=True, shape=None):
    """A constant of ones shaped like ``a`` (numpy's ``ones_like``).

    Args:
        a: a node, or an array.
        dtype: a float or complex dtype (integers and booleans are refused).
        order, subok: numpy's arguments (no effect).
        shape: another shape.

    Returns:
        Node: the constant.

    >>> import diffkit as dk, numpy as np
    >>> np.ones_like(dk.variable("x", (2, 3))).shape
    (2, 3)
    """
    return _like("ones_like", a, 1.0, dtype, shape)


@function(
    numpy=(np.full_like,),
    arity=(2, 2),
    samples=(Sample(((3, 4),), {"fill_value": 2.5}, zero_derivative=True),),
)
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    """A constant filled with the number ``fill_value``, shaped like ``a`` (numpy's
    ``full_like``).

    Args:
        a: a node, or an array.
        fill_value: a number or constant node (a traced one is refused: write
            ``fill * np.ones_like(a)``).
        dtype: a float or complex dtype (integers and booleans are refused).
        order, subok: numpy's arguments (no effect).
        shape: another shape.

    Returns:
        Node: the constant.

    >>> import diffkit as dk, numpy as np
    >>> dk.evaluate(np.full_like(dk.variable("x", (2,)), 7.5), at={}).tolist()
    [7.5, 7.5]
    """
    if isinstance(fill_value, Node):
        if fill_value.kind != "const" or fill_value.shape != ():
            raise TypeError("full_like: fill_value must be a number; write fill * np.ones_like(a)")
        fill_value = fill_value.value[()]
    return _like("full_like", a, fill_value, dtype, shape)

"""Joining: ``concatenate``, a primitive whose VJP slices the cotangent, and what is
composed from it and from indexing: ``stack``, ``split``, ``pad``, ``repeat``, ``tile``
and ``flip``.

>>> import diffkit as dk
>>> x = dk.variable("x", (2, 3))
>>> dk.concatenate([x, x]).shape, dk.stack([x, x], axis=-1).shape, dk.flip(x, 0).shape
((4, 3), (2, 3, 2), (2, 3))
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import LINEAR, STRUCTURAL, Op, Sample, builds, function, register
from .indexing import EMBED, GETITEM, _as_numpy_index, _normalize_index, getitem, take
from .shape import broadcast_to, reshape
from ._sparsity import selection

__all__ = ["concatenate", "stack", "split", "pad", "repeat", "tile", "flip"]


# ---- concatenate and what it composes -------------------------------------------------------


def _concat_shape(shapes, axis):
    first = shapes[0]
    for s in shapes[1:]:
        if len(s) != len(first) or any(
            a != b for i, (a, b) in enumerate(zip(s, first)) if i != axis
        ):
            shown = ", ".join(str(x) for x in shapes)
            raise ShapeError(f"concatenate: shapes {shown} differ off axis {axis}")
    return first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1 :]


def _concat_vjp(ct, out, *xs, axis):
    # each input's cotangent is its slice of the output's
    cts, start = [], 0
    for x in xs:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + x.shape[axis])
        cts.append(apply(GETITEM, ct, index=_normalize_index(tuple(index), out.shape)))
        start += x.shape[axis]
    return tuple(cts)


CONCATENATE = register(
    Op(
        name="concatenate",
        shape=_concat_shape,
        impl=lambda *xs, axis: np.concatenate(xs, axis=axis),
        vjp=_concat_vjp,
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((2, 3), (4, 3)), {"axis": 0}),
            Sample(((2, 1), (2, 3), (2, 2)), {"axis": 1}),
        ),
        analytic=True,
        doc="arrays joined along an existing axis",
        kind="axis",
        rules={"sparsity": selection},
    )
)


def _no_out(name: str, out=None, dtype=None) -> None:
    if out is not None:
        raise TypeError(f"{name}: out= is not supported (nodes are immutable)")
    if dtype is not None:
        raise TypeError(f"{name}: dtype= is not supported; the inputs' dtype is kept")


@builds(CONCATENATE, numpy=(np.concatenate,))
def concatenate(arrays, axis: int | None = 0, out=None, *, dtype=None, casting=None) -> Node:
    """Join arrays along an existing ``axis`` (``np.concatenate``; flattened when ``axis``
    is None).

    Args:
        arrays: a sequence of nodes or arrays.
        axis: the axis to join along; None to flatten them first.
        out, dtype, casting: numpy's arguments.

    Returns:
        Node: the joined array.

    Raises:
        ShapeError: the shapes differ off ``axis``.

    >>> import diffkit as dk
    >>> dk.concatenate([dk.variable("a", (2, 3)), dk.variable("b", (1, 3))]).shape
    (3, 3)
    """
    _no_out("concatenate", out, dtype)
    nodes = [as_node(a) for a in arrays]
    if not nodes:
        raise ValueError("concatenate: needs at least one array")
    if axis is None:
        nodes, axis = [reshape(n, (n.size,)) for n in nodes], 0
    ndim = nodes[0].ndim
    if ndim == 0:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"concatenate: axis {axis} is out of range for {ndim} dimensions")
    if len(nodes) == 1:
        return nodes[0]
    return apply(CONCATENATE, *nodes, axis=axis % ndim)


@function(
    numpy=(np.stack,),
    samples=(
        Sample(((2, 3), (2, 3), (2, 3)), {"axis": 1}, pack=True),
        Sample(((4,), (4,)), {"axis": -1}, pack=True),
    ),
)
def stack(arrays, axis: int = 0, out=None, *, dtype=None, casting=None) -> Node:
    """Join arrays of one shape along a new ``axis`` (``np.stack``).

    Args:
        arrays: a sequence of nodes or arrays of one shape.
        axis: the position of the new axis.
        out, dtype, casting: numpy's arguments.

    Returns:
        Node: the stacked array.

    Raises:
        ShapeError: the shapes differ.

    >>> import diffkit as dk
    >>> dk.stack([dk.variable("a", (2,)), dk.variable("b", (2,))], axis=1).shape
    (2, 2)
    """
    _no_out("stack", out, dtype)
    nodes = [as_node(a) for a in arrays]
    if not nodes:
        raise ValueError("stack: needs at least one array")
    shape = nodes[0].shape
    if any(n.shape != shape for n in nodes):
        raise ShapeError(f"stack: all arrays need one shape, got {[n.shape for n in nodes]}")
    if not -len(shape) - 1 <= axis <= len(shape):
        raise ShapeError(f"stack: axis {axis} is out of range for {len(shape) + 1} dimensions")
    axis = axis % (len(shape) + 1)
    expanded = [reshape(n, shape[:axis] + (1,) + shape[axis:]) for n in nodes]
    return concatenate(expanded, axis=axis)


@function(
    numpy=(np.split,),
    samples=(
        Sample(((4, 3),), {"indices_or_sections": 2, "axis": 0}),
        Sample(((4, 3),), {"indices_or_sections": [1, 1, 3], "axis": 1}),
    ),
)
def split(ary, indices_or_sections, axis: int = 0) -> list[Node]:
    """``ary`` split along ``axis`` into equal sections or at indices (``np.split``).

    Args:
        ary: a node, or an array (taken as a constant).
        indices_or_sections: a number of equal parts, or the indices where to cut.
        axis: the axis to cut along.

    Returns:
        list of Node: the parts.

    >>> import diffkit as dk
    >>> [p.shape for p in dk.split(dk.variable("x", (4, 3)), [1], axis=1)]
    [(4, 1), (4, 2)]
    """
    x = as_node(ary)
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"split: axis {axis} is out of range for an input of shape {x.shape}")
    axis = axis % x.ndim
    size = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0 or size % n:
            raise ValueError(f"split: an axis of size {size} does not split into {n} sections")
        bounds = list(range(0, size + 1, size // n)) if size else [0] * (n + 1)
    else:
        cuts = [int(i) + (size if int(i) < 0 else 0) for i in indices_or_sections]
        bounds = [0] + [min(max(c, 0), size) for c in cuts] + [size]
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, max(start, stop))
        parts.append(getitem(x, tuple(index)))
    return parts


def _pad_positions(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each position of a padded axis, the position of the input it copies."""
    i = np.arange(-before, n + after)
    if mode == "edge" or (mode == "reflect" and n == 1):
        return np.clip(i, 0, n - 1)
    if mode == "wrap":
        return np.mod(i, n)
    if mode == "reflect":
        period = 2 * (n - 1)
        i = np.mod(i, period)
        return np.where(i >= n, period - i, i)
    period = 2 * n  # symmetric: the edge is repeated
    i = np.mod(i, period)
    return np.where(i >= n, period - 1 - i, i)


_PAD_MODES = ("constant", "edge", "wrap", "reflect", "symmetric")


@function(
    numpy=(np.pad,),
    samples=(
        Sample(((3, 4),), {"pad_width": ((1, 2), (0, 3))}),
        Sample(((3, 4),), {"pad_width": 2, "mode": "constant", "constant_values": 1.5}),
        Sample(((3, 4),), {"pad_width": ((1, 1), (2, 0)), "mode": "wrap"}),
        Sample(((3, 4),), {"pad_width": ((4, 1), (2, 5)), "mode": "reflect"}),
        Sample(((3, 4),), {"pad_width": ((2, 1), (3, 3)), "mode": "symmetric"}),
        Sample(((3, 4),), {"pad_width": 2, "mode": "edge"}),
    ),
)
def pad(array, pad_width, mode: str = "constant", *, constant_values=0.0, **kwargs) -> Node:
    """``array`` padded as ``np.pad`` does in modes ``"constant"`` (one value, or one per
    side), ``"edge"``, ``"wrap"`` (periodic), ``"reflect"`` and ``"symmetric"``; the
    copies of an entry add their gradients.

    Args:
        array: a node, or an array (taken as a constant).
        pad_width: numpy's widths (before, after) per axis.
        mode: numpy's padding mode.
        constant_values: the value of ``mode="constant"``.
        **kwargs: other numpy arguments of the mode.

    Returns:
        Node: the padded array.

    >>> import diffkit as dk
    >>> dk.pad(dk.variable("x", (3, 4)), ((1, 2), (0, 3)), mode="wrap").shape
    (6, 7)
    """
    x = as_node(array)
    if mode not in _PAD_MODES or kwargs:
        what = f"mode={mode!r}" if mode not in _PAD_MODES else f"{', '.join(kwargs)}="
        raise ValueError(f"pad: {what} is not supported; modes: {', '.join(_PAD_MODES)}")
    try:
        widths = np.broadcast_to(np.asarray(pad_width), (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit {x.ndim} axes") from None
    if widths.dtype.kind not in "iu" or (widths < 0).any():
        raise ValueError(f"pad: widths must be non-negative integers, got {pad_width!r}")
    widths = widths.astype(int)
    if mode == "constant":
        shape = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, widths))
        index = tuple(slice(int(a), int(a) + d) for d, (a, _) in zip(x.shape, widths))
        index = _normalize_index(index, shape, "pad")
        out = apply(EMBED, x, index=index, shape=shape)
        values = np.broadcast_to(np.asarray(constant_values, dtype=float), (x.ndim, 2))
        if values.any():
            # the border holds the constants; later axes win at the corners, as numpy's
            border = np.zeros(shape)
            for k in range(x.ndim):
                a, b = widths[k]
                lead = (slice(None),) * k
                border[lead + (slice(0, a),)] = values[k, 0]
                border[lead + (slice(shape[k] - b, shape[k]),)] = values[k, 1]
            inside = np.ones(shape, dtype=bool)
            inside[_as_numpy_index(index)] = False
            out = out + const(np.where(inside, border, 0.0))
        return out
    for k, (a, b) in enumerate(widths):
        if (a or b) and x.shape[k] == 0:
            raise ValueError(f"pad: mode={mode!r} cannot pad the empty axis {k}")
        if a or b:
            x = take(x, _pad_positions(x.shape[k], int(a), int(b), mode), axis=k)
    return x


@function(
    numpy=(np.repeat,),
    samples=(
        Sample(((3, 4),), {"repeats": 2, "axis": 1}),
        Sample(((3, 2),), {"repeats": [1, 0, 3], "axis": 0}),
        Sample(((2, 2),), {"repeats": 3}),
    ),
)
def repeat(a, repeats, axis: int | None = None) -> Node:
    """Each entry repeated ``repeats`` times along ``axis`` (``np.repeat``).

    Args:
        a: a node, or an array (taken as a constant).
        repeats: the number of repetitions (an int, or one per entry).
        axis: the axis; None for the flattened array.

    Returns:
        Node: the array with repeated entries.

    >>> import diffkit as dk
    >>> dk.repeat(dk.variable("x", (2, 3)), [1, 2], axis=0).shape
    (3, 3)
    """
    x = as_node(a)
    if axis is None:
        x, axis = reshape(x, (x.size,)), 0
    if not -x.ndim <= axis < x.ndim:
        raise ShapeError(f"repeat: axis {axis} is out of range for an input of shape {x.shape}")
    try:
        positions = np.repeat(np.arange(x.shape[axis]), repeats)
    except ValueError as err:
        raise ValueError(f"repeat: {err} (axis of size {x.shape[axis]})") from None
    return take(x, positions, axis=axis)


@function(
    numpy=(np.tile,),
    samples=(Sample(((2, 3),), {"reps": (2, 1)}), Sample(((3,),), {"reps": (2, 1, 2)})),
)
def tile(A, reps) -> Node:
    """``A`` repeated ``reps`` times along each axis (``np.tile``).

    Args:
        A: a node, or an array (taken as a constant).
        reps: the number of copies along each axis.

    Returns:
        Node: the tiled array.

    >>> import diffkit as dk
    >>> dk.tile(dk.variable("x", (2, 3)), 2).shape
    (2, 6)
    """
    x = as_node(A)
    reps = (int(reps),) if np.ndim(reps) == 0 else tuple(int(r) for r in reps)
    ndim = max(x.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    interleaved = tuple(v for d in shape for v in (1, d))
    target = tuple(v for r, d in zip(reps, shape) for v in (r, d))
    out = broadcast_to(reshape(x, interleaved), target)
    return reshape(out, tuple(r * d for r, d in zip(reps, shape)))


@function(
    numpy=(np.flip,),
    samples=(Sample(((3, 4),), {"axis": 0}), Sample(((2, 3, 2),), {"axis": (0, 2)})),
)
def flip(m, axis=None) -> Node:
    """``m`` reversed along ``axis`` (all axes by default), as ``np.flip``.

    Args:
        m: a node, or an array (taken as a constant).
        axis: an axis or tuple of axes; None for all.

    Returns:
        Node: the array with the order of entries reversed.

    >>> import diffkit as dk
    >>> dk.flip(dk.variable("x", (2, 3)), axis=-1).shape
    (2, 3)
    """
    x = as_node(m)
    axes = range(x.ndim) if axis is None else ((axis,) if np.ndim(axis) == 0 else axis)
    index = [slice(None)] * x.ndim
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ShapeError(f"flip: axis {a} is out of range for an input of shape {x.shape}")
        index[a] = slice(None, None, -1)
    return getitem(x, tuple(index))

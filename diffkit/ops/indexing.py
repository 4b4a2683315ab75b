"""Indexing and joining: basic indexing and slicing, integer-array indexing, concatenation,
and what is composed from them (stack, split, pad, repeat, tile, flip).

Four primitives, each with its adjoint as the other's VJP:

* ``getitem`` (basic indices: integers, slices with any step, ``None``, ``...``) and
  ``embed``, which places an array at such an index in zeros (and is ``pad``);
* ``gather`` (integer arrays along one axis, ``np.take``) and ``scatter_add``, which adds
  rows back at their indices, so repeated indices add up their cotangents;
* ``concatenate``, whose VJP slices the cotangent.

All are linear, so their JVP is the op on the tangent, and structural: numpy runs them on
object arrays, so the mpmath and SymPy interpreters reuse them.

>>> import diffkit as dk, numpy as np
>>> W = dk.variable("W", (3, 4))
>>> W[:, 1:3].shape, W[::-1, 0].shape, W[np.array([0, 0, 2])].shape
((3, 2), (3,), (3, 4))
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import LINEAR, STRUCTURAL, Op, Sample, builds, function, register
from ._batch import all_batched, batch_prefix, with_attrs
from .shape import broadcast_to, reshape

__all__ = ["getitem", "concatenate", "stack", "split", "pad", "repeat", "tile", "flip", "take"]


# ---- basic indices as hashable attributes ------------------------------------------------


def _normalize_index(index, shape: tuple, op: str = "getitem") -> tuple:
    """A basic index as a tuple of ("i", k), ("s", start, stop, step) and ("n",) entries,
    covering every axis of ``shape`` (bounds checked, negative integers resolved)."""
    index = index if isinstance(index, tuple) else (index,)
    if sum(1 for i in index if i is Ellipsis) > 1:
        raise IndexError(f"{op}: an index can have only one ellipsis")
    used = sum(1 for i in index if i is not None and i is not Ellipsis)
    if used > len(shape):
        raise IndexError(f"{op}: too many indices ({used}) for an array of shape {shape}")
    out, axis = [], 0
    for item in index:
        if item is Ellipsis:
            for _ in range(len(shape) - used):
                out.append(("s",) + slice(None).indices(shape[axis]))
                axis += 1
        elif item is None:
            out.append(("n",))
        elif isinstance(item, slice):
            out.append(("s",) + item.indices(shape[axis]))
            axis += 1
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            k = int(item)
            if not -shape[axis] <= k < shape[axis]:
                raise IndexError(
                    f"{op}: index {k} is out of bounds for axis {axis} of size {shape[axis]}"
                )
            out.append(("i", k % shape[axis]))
            axis += 1
        else:
            raise IndexError(
                f"{op}: unsupported index {item!r}; use integers, slices, None, ..., or one "
                f"integer array (dk.take)"
            )
    while axis < len(shape):
        out.append(("s",) + slice(None).indices(shape[axis]))
        axis += 1
    return tuple(out)


def _as_numpy_index(index: tuple) -> tuple:
    out = []
    for entry in index:
        if entry[0] == "i":
            out.append(entry[1])
        elif entry[0] == "n":
            out.append(None)
        else:
            start, stop, step = entry[1:]
            # a negative step that ends before index 0 needs stop=None, not -1
            out.append(slice(start, None if stop < 0 else stop, step))
    return tuple(out)


def _index_shape(shape: tuple, index: tuple) -> tuple:
    return np.empty(shape, dtype=np.bool_)[_as_numpy_index(index)].shape


# ---- getitem and embed ---------------------------------------------------------------------


def _embed_impl(x, index, shape):
    out = np.zeros(shape, dtype=x.dtype)
    if x.dtype == object:
        out[...] = 0
    out[_as_numpy_index(index)] = x
    return out


def _embed_shape(shapes, index, shape):
    if _index_shape(tuple(shape), index) != shapes[0]:
        raise ShapeError(
            f"embed: an input of shape {shapes[0]} does not fit the index into shape {shape}"
        )
    return tuple(shape)


def _batch_getitem(node, inputs, batch):
    index = batch_prefix(node.attrs["index"], batch)
    return with_attrs(node, all_batched(inputs, batch), index=index)


def _batch_embed(node, inputs, batch):
    index = batch_prefix(node.attrs["index"], batch)
    shape = (batch,) + tuple(node.attrs["shape"])
    return with_attrs(node, all_batched(inputs, batch), index=index, shape=shape)


GETITEM = register(
    Op(
        name="getitem",
        shape=lambda shapes, index: _index_shape(shapes[0], index),
        impl=lambda x, index: x[_as_numpy_index(index)],
        # the adjoint of selecting is placing back into zeros
        vjp=lambda ct, out, x, index: (apply(EMBED, ct, index=index, shape=x.shape),),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((3, 4),), {"index": _normalize_index((slice(None), slice(1, 3)), (3, 4))}),
            Sample(((3, 4),), {"index": _normalize_index((slice(None, None, -1), 2), (3, 4))}),
            Sample(((2, 3, 4),), {"index": _normalize_index((None, 1, Ellipsis), (2, 3, 4))}),
        ),
        analytic=True,
        doc="basic indexing and slicing",
        rules={"batch": _batch_getitem},
    )
)
EMBED = register(
    Op(
        name="embed",
        shape=_embed_shape,
        impl=_embed_impl,
        # the adjoint of placing into zeros is selecting
        vjp=lambda ct, out, x, index, shape: (apply(GETITEM, ct, index=index),),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(
                ((3, 2),),
                {"index": _normalize_index((slice(None), slice(1, 3)), (3, 4)), "shape": (3, 4)},
            ),
            Sample(
                ((4,),), {"index": _normalize_index((slice(None, None, -2),), (8,)), "shape": (8,)}
            ),
        ),
        analytic=True,
        doc="the input placed at an index of a zero array (zero padding)",
        rules={"batch": _batch_embed},
    )
)


@builds(GETITEM)
def getitem(x, index) -> Node:
    """``x[index]``: integers, slices (any step), ``None`` and ``...``; one integer array
    (alone, or with full slices on the other axes) gathers along its axis.
    """
    x = as_node(x)
    gather_axis = _gather_axis(index, x.ndim)
    if gather_axis is not None:
        items = index if isinstance(index, tuple) else (index,)
        return take(x, items[gather_axis], axis=gather_axis)
    return apply(GETITEM, x, index=_normalize_index(index, x.shape))


def _gather_axis(index, ndim: int):
    items = index if isinstance(index, tuple) else (index,)
    arrays = [i for i, item in enumerate(items) if isinstance(item, (list, np.ndarray, Node))]
    if not arrays:
        return None
    if isinstance(items[arrays[0]], Node):
        raise IndexError("getitem: indices must be constants (numpy arrays), not IR nodes")
    full = all(
        isinstance(item, slice) and item == slice(None)
        for i, item in enumerate(items)
        if i != arrays[0]
    )
    if len(arrays) > 1 or not full or any(item is Ellipsis for item in items):
        raise IndexError(
            "getitem: one integer array with full slices elsewhere is supported "
            "(x[idx], x[:, idx]); combine indexing steps for anything else"
        )
    return arrays[0]


# ---- gather and scatter_add ----------------------------------------------------------------


def _gather_shape(shapes, indices, axis):
    (src,) = shapes
    idx = np.asarray(indices)
    if idx.size and (idx.min() < 0 or idx.max() >= src[axis]):
        raise IndexError(f"take: an index is out of bounds for axis {axis} of size {src[axis]}")
    return src[:axis] + idx.shape + src[axis + 1 :]


def _scatter_add_impl(ct, indices, axis, size):
    idx = np.asarray(indices)
    shape = ct.shape[:axis] + (size,) + ct.shape[axis + idx.ndim :]
    out = np.zeros(shape, dtype=ct.dtype)
    if ct.dtype == object:
        out[...] = 0
    moved = np.moveaxis(out, axis, 0)
    values = np.moveaxis(ct.reshape(ct.shape[:axis] + (idx.size,) + shape[axis + 1 :]), axis, 0)
    np.add.at(moved, idx.ravel(), values)
    return out


def _scatter_shape(shapes, indices, axis, size):
    (src,) = shapes
    nd = np.ndim(indices)
    return src[:axis] + (size,) + src[axis + nd :]


GATHER = register(
    Op(
        name="gather",
        shape=_gather_shape,
        impl=lambda x, indices, axis: np.take(x, np.asarray(indices, dtype=np.intp), axis=axis),
        # the adjoint of reading rows is adding them back (repeated rows add up)
        vjp=lambda ct, out, x, indices, axis: (
            apply(SCATTER_ADD, ct, indices=indices, axis=axis, size=x.shape[axis]),
        ),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((4, 3),), {"indices": (0, 2, 0, 3, 0), "axis": 0}),
            Sample(((2, 5),), {"indices": ((4, 1), (1, 1)), "axis": 1}),
        ),
        analytic=True,
        doc="rows at integer indices along an axis (np.take)",
        kind="axis",
    )
)
SCATTER_ADD = register(
    Op(
        name="scatter_add",
        shape=_scatter_shape,
        impl=_scatter_add_impl,
        vjp=lambda ct, out, x, indices, axis, size: (
            apply(GATHER, ct, indices=indices, axis=axis),
        ),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((5, 3),), {"indices": (0, 2, 0, 3, 0), "axis": 0, "size": 4}),),
        analytic=True,
        doc="rows added into zeros at integer indices along an axis (np.add.at)",
        kind="axis",
    )
)


@builds(GATHER, numpy=(np.take,))
def take(x, indices, axis: int = 0) -> Node:
    """The entries at integer ``indices`` along ``axis`` (``np.take``); repeated indices
    add up their gradients.

    >>> import diffkit as dk, numpy as np
    >>> v = dk.variable("v", (3,))
    >>> dk.gradient(dk.sum(dk.take(v, [0, 0, 2])), {"v": np.ones(3)})["v"].tolist()
    [2.0, 0.0, 1.0]
    """
    x = as_node(x)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise IndexError(f"take: indices must be integers, got dtype {idx.dtype}")
    if not -x.ndim <= axis < max(x.ndim, 1):
        raise ShapeError(f"take: axis {axis} is out of range for an input of shape {x.shape}")
    axis = axis % x.ndim
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return apply(GATHER, x, indices=_nested(idx.tolist()), axis=axis)


def _nested(value):
    return tuple(_nested(v) for v in value) if isinstance(value, list) else value


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
    )
)


@builds(CONCATENATE, numpy=(np.concatenate,))
def concatenate(arrays, axis: int = 0) -> Node:
    """Join arrays along an existing ``axis`` (``np.concatenate``)."""
    nodes = [as_node(a) for a in arrays]
    if not nodes:
        raise ValueError("concatenate: needs at least one array")
    ndim = nodes[0].ndim
    if ndim == 0:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"concatenate: axis {axis} is out of range for {ndim} dimensions")
    if len(nodes) == 1:
        return nodes[0]
    return apply(CONCATENATE, *nodes, axis=axis % ndim)


@function(numpy=(np.stack,))
def stack(arrays, axis: int = 0) -> Node:
    """Join arrays of one shape along a new ``axis`` (``np.stack``)."""
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


@function(numpy=(np.split,))
def split(x, indices_or_sections, axis: int = 0) -> list[Node]:
    """``x`` split along ``axis`` into equal sections or at indices (``np.split``)."""
    x = as_node(x)
    size = x.shape[axis]
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0 or size % indices_or_sections:
            raise ShapeError(
                f"split: an axis of size {size} does not split into {indices_or_sections} "
                f"equal sections"
            )
        step = size // indices_or_sections
        bounds = list(range(0, size + 1, step))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [size]
    parts = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, stop)
        parts.append(getitem(x, tuple(index)))
    return parts


@function(numpy=(np.pad,))
def pad(x, pad_width, mode: str = "constant", constant_values: float = 0.0) -> Node:
    """``x`` padded with zeros (``np.pad`` in constant mode with value 0)."""
    x = as_node(x)
    if mode != "constant" or constant_values != 0:
        raise ValueError("pad: only mode='constant' with constant_values=0 is supported")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: widths must be non-negative, got {pad_width!r}")
    shape = tuple(int(d + a + b) for d, (a, b) in zip(x.shape, widths))
    index = tuple(slice(int(a), int(a) + d) for d, (a, _) in zip(x.shape, widths))
    return apply(EMBED, x, index=_normalize_index(index, shape, "pad"), shape=shape)


@function(numpy=(np.repeat,))
def repeat(x, repeats: int, axis: int | None = None) -> Node:
    """Each entry repeated ``repeats`` times along ``axis`` (``np.repeat``)."""
    x = as_node(x)
    if axis is None:
        x, axis = reshape(x, (x.size,)), 0
    return take(x, np.repeat(np.arange(x.shape[axis]), repeats), axis=axis)


@function(numpy=(np.tile,))
def tile(x, reps) -> Node:
    """``x`` repeated ``reps`` times along each axis (``np.tile``)."""
    x = as_node(x)
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    ndim = max(x.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    shape = (1,) * (ndim - x.ndim) + x.shape
    interleaved = tuple(v for d in shape for v in (1, d))
    target = tuple(v for r, d in zip(reps, shape) for v in (r, d))
    out = broadcast_to(reshape(x, interleaved), target)
    return reshape(out, tuple(r * d for r, d in zip(reps, shape)))


@function(numpy=(np.flip,))
def flip(x, axis=None) -> Node:
    """``x`` reversed along ``axis`` (all axes by default), as ``np.flip``."""
    x = as_node(x)
    axes = range(x.ndim) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    index = [slice(None)] * x.ndim
    for a in axes:
        index[a] = slice(None, None, -1)
    return getitem(x, tuple(index))

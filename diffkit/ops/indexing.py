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

import hashlib

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import LINEAR, STRUCTURAL, Op, Sample, builds, function, get_op, register
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
            try:
                out.append(("s",) + item.indices(shape[axis]))
            except (TypeError, ValueError) as err:
                raise IndexError(f"{op}: bad slice {item!r} on axis {axis}: {err}") from None
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
                f"{op}: unsupported index {_shown(item)} ({type(item).__name__}); use "
                f"integers, slices, None, ..., integer arrays or boolean numpy arrays"
            )
    while axis < len(shape):
        out.append(("s",) + slice(None).indices(shape[axis]))
        axis += 1
    return tuple(out)


def _shown(item) -> str:
    text = repr(item)
    return text if len(text) <= 40 else text[:37] + "..."


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
    """``x[index]`` as numpy reads it: integers, slices (any step), ``None``, ``...``,
    integer arrays and constant boolean masks, in any combination.

    Integer arrays (and lists) broadcast together; their dimensions replace the indexed
    axes in place when the advanced indices (arrays, and integers beside them) are
    adjacent, and go first when a slice, ``None`` or ``...`` separates them, as numpy
    places them. A boolean mask is a numpy array fixed when the graph is built (it
    becomes the integer arrays of its ``nonzero()``); a boolean IR node cannot be a mask,
    since the output's shape would depend on its values (use ``dk.where`` instead).
    Repeated indices add up their gradients.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (4, 5, 6))
    >>> x[3, 2:, [1, 3]].shape, x[[0, 1], [2, 3]].shape, x[..., None, [0, 0, 1]].shape
    ((2, 3), (2, 6), (4, 5, 1, 3))
    >>> mask = np.array([True, False, True, True])
    >>> x[mask, :, 0].shape
    (3, 5)
    """
    x = as_node(x)
    if not _is_advanced(index):
        return apply(GETITEM, x, index=_normalize_index(index, x.shape))
    return _run(x, _plan(x.shape, index).steps)


def _is_advanced(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(
        isinstance(item, (list, tuple, np.ndarray, Node, bool, np.bool_)) for item in items
    )


# ---- advanced indexing: a plan of basic indexing, one gather, transposes and reshapes -----


class Indices:
    """A constant array of non-negative integer indices as a hashable attribute (equal
    when the arrays are), read-only."""

    __slots__ = ("array", "_hash")

    def __init__(self, array) -> None:
        arr = np.array(array, dtype=np.intp)
        arr.setflags(write=False)
        self.array = arr
        digest = hashlib.blake2b(arr.tobytes(), digest_size=16).digest()
        self._hash = hash((arr.shape, digest))

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if not isinstance(other, Indices):
            return NotImplemented
        return self._hash == other._hash and np.array_equal(self.array, other.array)

    def __repr__(self) -> str:
        if self.array.size <= 8:
            return repr(self.array.tolist())
        return f"Indices(shape={self.array.shape})"

    def __reduce__(self):
        return (Indices, (self.array,))


class _Plan:
    """How ``x[index]`` is computed from ``x`` (``steps``: op name, attributes and input
    shape, in order), the shape it gives, and where each element of the broadcast index
    shape ``b`` reads: ``keys`` (the flat position among the indexed axes) and ``at``,
    the position of the broadcast axes in the output."""

    def __init__(self, steps, shape, b, keys, at):
        self.steps, self.shape, self.b, self.keys, self.at = steps, shape, b, keys, at


def _index_error(op: str, text: str) -> IndexError:
    return IndexError(f"{op}: {text}")


def _as_index_array(item, op: str) -> np.ndarray:
    try:
        arr = np.asarray(item)
    except (TypeError, ValueError):
        raise _index_error(
            op, f"a {type(item).__name__} of unequal lengths cannot be an index array"
        ) from None
    if arr.dtype == object and isinstance(item, (list, tuple)) and not arr.size:
        arr = np.zeros(arr.shape, dtype=np.intp)
    if arr.dtype.kind == "f" and arr.size == 0:
        return arr.astype(np.intp)  # numpy reads [] as an empty integer index
    if arr.dtype.kind not in "biu":
        raise _index_error(
            op, f"arrays used as indices must be of integer or boolean type, got {arr.dtype}"
        )
    return arr


def _entries(index, shape: tuple, op: str) -> list:
    """The index as entries covering every axis: ("s", slice, axis), ("i", k, axis),
    ("n",), ("a", integer array, axis) and ("t", count) for a 0-d boolean (a new axis of
    length count, itself advanced)."""
    items = index if isinstance(index, tuple) else (index,)
    parsed = []
    for item in items:
        if isinstance(item, Node):
            raise _index_error(
                op,
                "indices must be constants (numpy arrays), not IR nodes; a boolean node as a "
                "mask would give an output whose shape depends on its values: use "
                "dk.where(mask, x, 0)",
            )
        if item is None or item is Ellipsis or isinstance(item, slice):
            parsed.append(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            parsed.append(int(item))
        elif isinstance(item, (list, tuple, np.ndarray, bool, np.bool_)):
            arr = _as_index_array(item, op)
            parsed.append(int(arr) if arr.ndim == 0 and arr.dtype.kind in "iu" else arr)
        else:
            raise _index_error(
                op,
                f"unsupported index {_shown(item)} ({type(item).__name__}); use integers, "
                f"slices, None, ..., integer arrays or boolean numpy arrays",
            )
    if sum(1 for i in parsed if i is Ellipsis) > 1:
        raise _index_error(op, "an index can have only one ellipsis")

    def width(item):
        if item is None or item is Ellipsis:
            return 0
        return item.ndim if isinstance(item, np.ndarray) and item.dtype == bool else 1

    used = sum(width(i) for i in parsed)
    if used > len(shape):
        raise _index_error(op, f"too many indices ({used}) for an array of shape {shape}")
    out, axis = [], 0
    for item in parsed:
        if item is Ellipsis:
            for _ in range(len(shape) - used):
                out.append(("s", slice(None), axis))
                axis += 1
        elif item is None:
            out.append(("n",))
        elif isinstance(item, slice):
            try:
                item.indices(shape[axis])
            except (TypeError, ValueError) as err:
                raise _index_error(op, f"bad slice {item!r} on axis {axis}: {err}") from None
            out.append(("s", item, axis))
            axis += 1
        elif isinstance(item, int):
            if not -shape[axis] <= item < shape[axis]:
                raise _index_error(
                    op, f"index {item} is out of bounds for axis {axis} of size {shape[axis]}"
                )
            out.append(("i", item % shape[axis], axis))
            axis += 1
        elif item.dtype == bool:
            if item.ndim == 0:
                out.append(("t", int(bool(item))))
                continue
            covered = shape[axis : axis + item.ndim]
            if item.shape != covered:
                raise _index_error(
                    op,
                    f"a boolean index of shape {item.shape} does not match the indexed axes "
                    f"{tuple(range(axis, axis + item.ndim))} of shape {covered}",
                )
            for k, positions in enumerate(np.nonzero(item)):
                out.append(("a", positions.astype(np.intp), axis + k))
            axis += item.ndim
        else:
            size = shape[axis]
            if item.size:
                low, high = int(item.min()), int(item.max())
                bad = low if low < -size else high if high >= size else None
                if bad is not None:
                    raise _index_error(
                        op, f"index {bad} is out of bounds for axis {axis} of size {size}"
                    )
            arr = item.astype(np.intp)
            out.append(("a", np.where(arr < 0, arr + size, arr), axis))
            axis += 1
    while axis < len(shape):
        out.append(("s", slice(None), axis))
        axis += 1
    return out


def _plan(shape: tuple, index, op: str = "getitem") -> _Plan:
    """Advanced indexing as numpy does it: the basic part (slices, integers) first, then one
    gather over the indexed axes (merged into one axis when there are several), then the
    broadcast index axes moved where numpy places them and ``None``'s axes inserted."""
    entries = _entries(index, shape, op)
    advanced = [j for j, e in enumerate(entries) if e[0] in "ait"]
    adjacent = advanced == list(range(advanced[0], advanced[-1] + 1))
    basic, labels, arrays = [], [], []
    for j, e in enumerate(entries):
        if e[0] == "s":
            basic.append(e[1])
            labels.append(("d", j))
        elif e[0] == "i":
            basic.append(e[1])
        elif e[0] == "a":
            basic.append(slice(None))
            labels.append(("a", j))
            arrays.append(e[1])
        elif e[0] == "t":
            basic.append(None)
            labels.append(("a", j))
            arrays.append(np.zeros(e[1], dtype=np.intp))
    try:
        arrays = np.broadcast_arrays(*arrays) if arrays else []
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise _index_error(
            op, f"index arrays of shapes {shapes} cannot be broadcast together"
        ) from None
    b = arrays[0].shape if arrays else ()
    steps = []
    normalized = _normalize_index(tuple(basic), shape, op)
    current = _index_shape(shape, normalized)
    if normalized != _normalize_index((), shape, op):
        steps.append(("getitem", {"index": normalized}, shape))
    else:
        current = shape
    axes = [k for k, label in enumerate(labels) if label[0] == "a"]
    sizes = tuple(current[k] for k in axes)
    keys = np.ravel_multi_index(arrays, sizes) if arrays and sizes else np.zeros(b, np.intp)
    keys = np.asarray(keys, dtype=np.intp).reshape(b)
    if axes and axes != list(range(axes[0], axes[0] + len(axes))):
        # separated indexed axes: bring them to the front, in order
        perm = tuple(axes) + tuple(k for k in range(len(labels)) if k not in axes)
        steps.append(("transpose", {"axes": perm}, current))
        current = tuple(current[k] for k in perm)
        labels = [labels[k] for k in perm]
        axes = list(range(len(axes)))
    first = axes[0] if axes else 0
    if len(axes) != 1:
        merged = current[:first] + (int(np.prod(sizes, dtype=np.int64)),)
        merged += current[first + len(axes) :]
        steps.append(("reshape", {"shape": merged}, current))
        current = merged
    steps.append(("gather", {"indices": Indices(keys), "axis": first}, current))
    bl = [("b", k) for k in range(len(b))]
    labels = labels[:first] + bl + labels[first + len(axes) :]
    current = current[:first] + b + current[first + 1 :]
    # numpy's placement: in place of adjacent advanced indices, else in front
    rest = [("d", j) if e[0] == "s" else ("n", j) for j, e in enumerate(entries) if e[0] in "sn"]
    at = sum(1 for j, e in enumerate(entries) if e[0] in "sn" and j < advanced[0])
    at = at if adjacent else 0
    desired = rest[:at] + bl + rest[at:]
    perm = tuple(labels.index(label) for label in desired if label[0] != "n")
    if perm != tuple(range(len(perm))):
        steps.append(("transpose", {"axes": perm}, current))
        current = tuple(current[k] for k in perm)
    final, it = [], iter(current)
    for label in desired:
        final.append(1 if label[0] == "n" else next(it))
    if tuple(final) != current:
        steps.append(("reshape", {"shape": tuple(final)}, current))
    return _Plan(steps, tuple(final), b, keys, at)


def _run(x: Node, steps) -> Node:
    for name, attrs, _ in steps:
        x = apply(name, x, **attrs)
    return x


def _adjoint(v, steps, numeric: bool = False):
    """The transpose of the plan's linear map applied to ``v`` (shaped as its output):
    values added back at the positions they were read from (repeated positions add up).
    On numpy arrays where ``numeric``, else as IR."""
    for name, attrs, shape in reversed(steps):
        if name == "getitem":
            name, attrs = "embed", {"index": attrs["index"], "shape": shape}
        elif name == "gather":
            attrs = {**attrs, "size": shape[attrs["axis"]]}
            name = "scatter_add"
        elif name == "reshape":
            attrs = {"shape": shape}
        else:
            attrs = {"axes": tuple(int(a) for a in np.argsort(attrs["axes"]))}
        v = get_op(name).impl(v, **attrs) if numeric else apply(name, v, **attrs)
    return v


# ---- gather and scatter_add ----------------------------------------------------------------


def _gather_shape(shapes, indices, axis):
    (src,) = shapes
    idx = np.asarray(indices)
    if not -len(src) <= axis < len(src):
        raise ShapeError(f"gather: axis {axis} is out of range for an input of shape {src}")
    if idx.size and (idx.min() < 0 or idx.max() >= src[axis]):
        raise IndexError(f"gather: an index is out of bounds for axis {axis} of size {src[axis]}")
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
    idx = np.asarray(indices)
    if tuple(src[axis : axis + idx.ndim]) != idx.shape:
        raise ShapeError(
            f"scatter_add: an input of shape {src} does not have the indices' shape "
            f"{idx.shape} at axis {axis}"
        )
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise IndexError(f"scatter_add: an index is out of bounds for an axis of size {size}")
    return src[:axis] + (size,) + src[axis + idx.ndim :]


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
def take(x, indices, axis: int | None = None, out=None, mode: str = "raise") -> Node:
    """The entries at integer ``indices`` along ``axis`` (``np.take``: of the flattened
    array when ``axis`` is None); ``mode`` ``"wrap"`` and ``"clip"`` as numpy's. Repeated
    indices add up their gradients.

    >>> import diffkit as dk, numpy as np
    >>> v = dk.variable("v", (3,))
    >>> dk.gradient(dk.sum(dk.take(v, [0, 0, 2])), {"v": np.ones(3)})["v"].tolist()
    [2.0, 0.0, 1.0]
    """
    x = as_node(x)
    if out is not None:
        raise TypeError("take: out= is not supported (nodes are immutable)")
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError(f"take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    if isinstance(indices, Node):
        raise IndexError("take: indices must be constants (numpy arrays), not IR nodes")
    if axis is None:
        x, axis = reshape(x, (x.size,)), 0
    if not -x.ndim <= axis < max(x.ndim, 1) or x.ndim == 0:
        raise ShapeError(f"take: axis {axis} is out of range for an input of shape {x.shape}")
    axis = int(axis) % x.ndim
    idx = _as_index_array(indices, "take")
    if idx.dtype == bool:
        raise IndexError("take: indices must be integers, got dtype bool")
    size = x.shape[axis]
    if mode == "wrap" and size:
        idx = np.mod(idx, size)
    elif mode == "clip":
        idx = np.clip(idx, 0, max(size - 1, 0))
    if idx.size:
        low, high = int(idx.min()), int(idx.max())
        bad = low if low < -size else high if high >= size else None
        if bad is not None:
            raise IndexError(f"take: index {bad} is out of bounds for axis {axis} of size {size}")
    idx = idx.astype(np.intp)
    return apply(GATHER, x, indices=Indices(np.where(idx < 0, idx + size, idx)), axis=axis)


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


def _no_out(name: str, out=None, dtype=None) -> None:
    if out is not None:
        raise TypeError(f"{name}: out= is not supported (nodes are immutable)")
    if dtype is not None:
        raise TypeError(f"{name}: dtype= is not supported; the inputs' dtype is kept")


@builds(CONCATENATE, numpy=(np.concatenate,))
def concatenate(arrays, axis: int | None = 0, out=None, *, dtype=None, casting=None) -> Node:
    """Join arrays along an existing ``axis`` (``np.concatenate``; flattened when ``axis``
    is None).

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


# ---- functional updates: x.at[index].set(v), .add(v)... as JAX's ---------------------------


class _Indexer:
    """``x.at``: indexing it gives the updates of ``x`` at that index."""

    __slots__ = ("x",)

    def __init__(self, x: Node) -> None:
        self.x = x

    def __getitem__(self, index) -> "_Updates":
        return _Updates(self.x, index)

    def __repr__(self) -> str:
        return f"_Indexer({self.x!r})"


def _no_options(method: str, mode=None, fill_value=None) -> None:
    if mode not in (None, "promise_in_bounds"):
        raise ValueError(
            f"at[...].{method}: mode={mode!r} is not supported; indices are checked when the "
            f"graph is built, and one out of bounds raises IndexError"
        )
    if fill_value is not None:
        raise ValueError(f"at[...].{method}: fill_value is not supported (no index is dropped)")


class _Updates:
    """The functional updates of ``x`` at ``index``, each a new node (``x`` is unchanged).

    Every form of numpy's indexing is accepted. Repeated indices: ``add``/``subtract`` add
    every value (``np.add.at``); ``multiply``/``divide``/``min``/``max`` apply every value
    in index order; ``set`` keeps the last value written, as numpy's ``x[index] = v``
    does, and the overwritten values get no gradient.
    """

    __slots__ = ("x", "plan")

    def __init__(self, x: Node, index) -> None:
        self.x = x
        self.plan = _plan(x.shape, index, op="at")

    def _values(self, values, method: str) -> Node:
        v, shape = as_node(values), self.plan.shape
        extra = v.ndim - len(shape)
        if extra > 0 and all(d == 1 for d in v.shape[:extra]):
            v = reshape(v, v.shape[extra:])  # numpy drops leading unit axes of the values
        try:
            fits = np.broadcast_shapes(v.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"at[...].{method}: values of shape {as_node(values).shape} do not broadcast "
                f"to the indexed shape {shape}"
            )
        return broadcast_to(v, shape) if v.shape != shape else v

    def _rounds(self):
        """Per round, the broadcast index positions it writes (each target once per round:
        the k-th write of every repeated target in round k) laid out to broadcast against
        the indexed shape, and the mask of ``x`` it writes."""
        plan = self.plan
        if not int(np.prod(plan.shape, dtype=np.int64)):
            return []
        keys = plan.keys.ravel()
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        first = np.r_[True, ordered[1:] != ordered[:-1]]
        start = np.maximum.accumulate(np.where(first, np.arange(keys.size), 0))
        rank = np.empty(keys.size, dtype=np.intp)
        rank[order] = np.arange(keys.size) - start
        layout = (1,) * plan.at + plan.b + (1,) * (len(plan.shape) - plan.at - len(plan.b))
        rounds = []
        for r in range(int(rank.max()) + 1):
            chosen = (rank == r).reshape(layout)
            full = np.broadcast_to(chosen, plan.shape).astype(np.float64)
            hit = _adjoint(full, plan.steps, numeric=True) > 0
            rounds.append((None if chosen.all() else chosen, hit))
        return rounds

    def _scattered(self, values: Node, chosen) -> Node:
        part = values if chosen is None else apply("where", const(chosen), values, 0.0)
        return _adjoint(part, self.plan.steps)

    def _combine(self, values, method: str, step) -> Node:
        out = self.x
        for chosen, hit in self._rounds():
            scattered = self._scattered(values, chosen)
            out = step(out, scattered, const(hit), hit.all())
        return out

    def get(self, *, indices_are_sorted=False, unique_indices=False, mode=None, fill_value=None):
        """``x[index]``."""
        _no_options("get", mode, fill_value)
        return _run(self.x, self.plan.steps)

    def set(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``values`` written at ``index`` (numpy's ``x[index] = values``)."""
        _no_options("set", mode)
        # d/dx: zero at the written entries; d/dv: the cotangent gathered (last write only)
        values = self._values(values, "set")
        return self._combine(
            values, "set", lambda out, s, hit, full: s if full else apply("where", hit, s, out)
        )

    def add(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``values`` added at ``index`` (``np.add.at``: repeated indices add up)."""
        _no_options("add", mode)
        # d/dx = identity; d/dv = the cotangent gathered at index
        return self.x + _adjoint(self._values(values, "add"), self.plan.steps)

    def subtract(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``values`` subtracted at ``index`` (``np.subtract.at``)."""
        _no_options("subtract", mode)
        return self.x - _adjoint(self._values(values, "subtract"), self.plan.steps)

    def multiply(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` multiplied by ``values`` at ``index`` (``np.multiply.at``)."""
        _no_options("multiply", mode)
        values = self._values(values, "multiply")
        # d(x * s) = s dx + x ds, with s = 1 off the index
        return self._combine(
            values, "multiply", lambda out, s, hit, full: out * (s if full else _where(hit, s, 1))
        )

    def divide(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` divided by ``values`` at ``index`` (``np.divide.at``)."""
        _no_options("divide", mode)
        values = self._values(values, "divide")
        # d(x / s) = dx / s - x ds / s^2, with s = 1 off the index
        return self._combine(
            values, "divide", lambda out, s, hit, full: out / (s if full else _where(hit, s, 1))
        )

    def min(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``minimum(x, values)`` at ``index`` (``np.minimum.at``); ties split the
        gradient evenly, as ``minimum``'s."""
        _no_options("min", mode)
        values = self._values(values, "min")
        return self._combine(values, "min", _extremal("minimum"))

    def max(self, values, *, indices_are_sorted=False, unique_indices=False, mode=None):
        """``x`` with ``maximum(x, values)`` at ``index`` (``np.maximum.at``); ties split the
        gradient evenly, as ``maximum``'s."""
        _no_options("max", mode)
        values = self._values(values, "max")
        return self._combine(values, "max", _extremal("maximum"))

    def __repr__(self) -> str:
        return f"_Updates({self.x!r}, shape={self.plan.shape})"


def _where(hit, a, b):
    return apply("where", hit, a, b)


def _extremal(name: str):
    def step(out, s, hit, full):
        # d max(x, s) selects the larger (halves at ties); off the index x passes unchanged
        both = apply(name, out, s)
        return both if full else _where(hit, both, out)

    return step


_AT_SAMPLES = (
    Sample(((4, 5), (2,)), {"index": (1, [0, 3]), "method": "set"}),
    Sample(((4, 5), (3, 5)), {"index": [2, 0, 2], "method": "set"}),
    Sample(((3, 4, 2), (2, 3)), {"index": ([0, 2], slice(1, None), 1), "method": "add"}),
    Sample(((4, 3), (4, 3)), {"index": ([1, 1, 0, 1],), "method": "add"}),
    Sample(((4, 3), (2, 3)), {"index": [3, 3], "method": "multiply"}, low=0.5),
    Sample(((4, 3), (3,)), {"index": (slice(None, 3), 2), "method": "divide"}, low=0.5),
    Sample(((4, 3), (3,)), {"index": ([0, 2, 0], [1, 1, 1]), "method": "min"}),
    Sample(((4, 3), ()), {"index": (np.array([1, 3]), slice(None)), "method": "max"}),
    Sample(((3, 4, 5),), {"index": (Ellipsis, None, [1, 0]), "method": "get"}),
    Sample(((3, 4, 5),), {"index": (2, slice(1, None), [1, 3]), "method": "get"}),
    Sample(((3, 4, 5),), {"index": ([[0], [2]], slice(None), [1, 4]), "method": "get"}),
    Sample(((3, 4, 5),), {"index": (slice(None), [0, 3], [[1], [2]]), "method": "get"}),
    Sample(((3, 4),), {"index": (np.array([True, False, True]),), "method": "get"}),
)


@function("at", samples=_AT_SAMPLES)
def at(x, values=None, *, index=None, method=None):
    """Functional updates at an index, as JAX's ``x.at[index]``: ``.get()``, ``.set(v)``,
    ``.add(v)``, ``.subtract(v)``, ``.multiply(v)``, ``.divide(v)``, ``.min(v)``,
    ``.max(v)``. With ``index`` and ``method``, the update itself.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> y = x.at[np.array([0, 0, 2])].add(1.0)
    >>> dk.evaluate(y, {"x": np.zeros(3)}).tolist()
    [2.0, 0.0, 1.0]
    >>> z = x.at[1].set(x[0] * 5)
    >>> dk.gradient(dk.sum(z), {"x": np.ones(3)})["x"].tolist()
    [6.0, 0.0, 1.0]
    """
    updates = _Indexer(as_node(x))
    if index is None and method is None:
        return updates
    chosen = updates[index]
    if method == "get":
        return chosen.get()
    if method not in ("set", "add", "subtract", "multiply", "divide", "min", "max"):
        raise ValueError(f"at: unknown method {method!r}")
    return getattr(chosen, method)(values)

"""Indexing for reading: basic indexing and slicing, integer-array indexing and ``take``.

Two pairs of primitives, each with its adjoint as the other's VJP:

* ``getitem`` (basic indices: integers, slices with any step, ``None``, ``...``) and
  ``embed``, which places an array at such an index in zeros (and is ``pad``);
* ``gather`` (integer arrays along one axis, ``np.take``) and ``scatter_add``, which adds
  rows back at their indices, so repeated indices add up their cotangents.

Every other form of numpy's indexing (integer arrays on several axes, boolean masks) is a
plan of these, transposes and reshapes; the functional updates of :mod:`.updates` run the
same plan's adjoint. All are linear, so their JVP is the op on the tangent, and
structural: numpy runs them on object arrays, so the mpmath and SymPy interpreters reuse
them.

>>> import diffkit as dk, numpy as np
>>> W = dk.variable("W", (3, 4))
>>> W[:, 1:3].shape, W[::-1, 0].shape, W[np.array([0, 0, 2])].shape
((3, 2), (3,), (3, 4))
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import LINEAR, STRUCTURAL, Op, Sample, builds, get_op, register
from ._batch import all_batched, batch_prefix, with_attrs
from ._sparsity import adjoint_selection, selection
from .shape import reshape

__all__ = ["getitem", "take"]


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


def _sparsity_embed(node, values=None):
    # embed places x at the index: the adjoint of reading the index
    index = _as_numpy_index(node.attrs["index"])
    return adjoint_selection(node, lambda out: out[index])


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
        rules={"batch": _batch_getitem, "sparsity": selection},
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
        rules={"batch": _batch_embed, "sparsity": _sparsity_embed},
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

    Args:
        x: a node.
        index: what numpy's ``x[index]`` takes (see above).

    Returns:
        Node: the selected entries.

    Raises:
        IndexError: an index is out of range.

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
    return any(isinstance(item, (list, tuple, np.ndarray, Node, bool, np.bool_)) for item in items)


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


def _sparsity_scatter_add(node, values=None):
    # scatter_add adds rows into their index: the adjoint of reading the rows (np.take)
    indices = np.asarray(node.attrs["indices"], dtype=np.intp)
    return adjoint_selection(node, lambda out: np.take(out, indices, axis=node.attrs["axis"]))


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
        rules={"sparsity": selection},
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
        rules={"sparsity": _sparsity_scatter_add},
    )
)


@builds(GATHER, numpy=(np.take,))
def take(x, indices, axis: int | None = None, out=None, mode: str = "raise") -> Node:
    """The entries at integer ``indices`` along ``axis`` (``np.take``: of the flattened
    array when ``axis`` is None); ``mode`` ``"wrap"`` and ``"clip"`` as numpy's. Repeated
    indices add up their gradients.

    Args:
        x: a node, or an array (taken as a constant).
        indices: integer indices (an int, list or array).
        axis: the axis; None for the flattened array.
        out: numpy's argument, refused on IR nodes.
        mode: ``"raise"``, ``"wrap"`` or ``"clip"``, for indices out of range.

    Returns:
        Node: the entries taken.

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

"""Linear ops that move or replicate entries: reshape, transpose, broadcast_to, matmul.

Their JVP is the op applied to the tangent (``jvp=LINEAR``), except matmul's,
which is bilinear. Their numpy implementations also run on object arrays, so
they serve mpmath and SymPy unchanged (``STRUCTURAL``).
"""

from __future__ import annotations

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import LINEAR, STRUCTURAL, Op, Sample, builds, function, register
from ..ir.shapes import broadcast
from ._batch import all_batched, lift, with_attrs
from ._sparsity import matmul_rule, selection

__all__ = ["reshape", "transpose", "broadcast_to", "matmul", "sum_to", "swapaxes"]


# ---- batching rules (diffkit/ops/_batch.py) ----------------------------------------


def _batch_reshape(node, inputs, batch):
    return with_attrs(node, all_batched(inputs, batch), shape=(batch,) + node.attrs["shape"])


def _batch_transpose(node, inputs, batch):
    axes = (0,) + tuple(a + 1 for a in node.attrs["axes"])
    return with_attrs(node, all_batched(inputs, batch), axes=axes)


def _batch_broadcast_to(node, inputs, batch):
    ((x, _),) = inputs
    target = tuple(node.attrs["shape"])
    return apply(node.op, lift(x, batch, len(target)), shape=(batch,) + target)


def _batch_matmul(node, inputs, batch):
    # the batch axis is one more leading axis of the stacked matrix product
    ndim = max(len(i.shape) for i in node.inputs)
    return apply(node.op, *(lift(x, batch, ndim) if b else x for x, b in inputs))


# ---- reshape ---------------------------------------------------------------------


def _reshape_shape(shapes, shape):
    (src,) = shapes
    size = int(np.prod(src, dtype=np.int64))
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: more than one -1 in {shape}")
    if -1 in shape:
        rest = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if rest == 0 or size % rest:
            raise ShapeError(f"reshape: cannot reshape {src} into {shape}")
        shape = tuple(size // rest if s == -1 else s for s in shape)
    if int(np.prod(shape, dtype=np.int64)) != size:
        raise ShapeError(f"reshape: cannot reshape {src} ({size} entries) into {shape}")
    return shape


def _fold_reshape(x, shape):
    shape = _reshape_shape((x.shape,), shape)
    if shape == x.shape:
        return x
    if x.kind == "op" and x.op.name == "reshape":
        return reshape(x.inputs[0], shape)
    return None


RESHAPE = register(
    Op(
        name="reshape",
        shape=_reshape_shape,
        impl=lambda x, shape: np.reshape(x, shape),
        # the adjoint of a reshape is the reshape back
        vjp=lambda ct, out, x, shape: (reshape(ct, x.shape),),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((2, 6),), {"shape": (3, 4)}), Sample(((2, 3, 2),), {"shape": (-1,)})),
        analytic=True,
        fold=_fold_reshape,
        doc="the same entries in a new shape",
        rules={"batch": _batch_reshape, "sparsity": selection},
    )
)


@builds(RESHAPE, numpy=(np.reshape,))
def reshape(x, shape) -> Node:
    """``x`` with a new shape (one entry may be -1).

    Args:
        x: a node, or a number or array (taken as a constant).
        shape: the new shape (a tuple of ints, one of which may be -1).

    Returns:
        Node: the entries of ``x`` in row-major order, in ``shape``.

    Raises:
        ShapeError: the number of entries differs.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 3))
    >>> dk.evaluate(dk.reshape(x, (3, -1)), at={"x": np.arange(6.0).reshape(2, 3)}).tolist()
    [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    x = as_node(x)
    return apply(RESHAPE, x, shape=_reshape_shape((x.shape,), shape))


# ---- transpose -------------------------------------------------------------------


def _transpose_shape(shapes, axes):
    (src,) = shapes
    if sorted(axes) != list(range(len(src))):
        raise ShapeError(f"transpose: axes {axes} are not a permutation for shape {src}")
    return tuple(src[a] for a in axes)


def _fold_transpose(x, axes):
    if tuple(axes) == tuple(range(len(axes))):
        return x
    return None


TRANSPOSE = register(
    Op(
        name="transpose",
        shape=_transpose_shape,
        impl=lambda x, axes: np.transpose(x, axes),
        # the adjoint of a permutation is the inverse permutation
        vjp=lambda ct, out, x, axes: (transpose(ct, tuple(np.argsort(axes))),),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((2, 3),), {"axes": (1, 0)}), Sample(((2, 3, 4),), {"axes": (2, 0, 1)})),
        analytic=True,
        fold=_fold_transpose,
        doc="permute the axes",
        rules={"batch": _batch_transpose, "sparsity": selection},
    )
)


@builds(TRANSPOSE, numpy=(np.transpose,))
def transpose(x, axes=None) -> Node:
    """Permute the axes of ``x`` (reverse them by default).

    Args:
        x: a node, or a number or array (taken as a constant).
        axes: a permutation of ``range(x.ndim)``; None reverses the axes.

    Returns:
        Node: ``x`` with axis ``axes[i]`` as its axis i.

    Raises:
        ShapeError: ``axes`` is not a permutation.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (2, 3, 4))
    >>> dk.transpose(x).shape, dk.transpose(x, (1, 0, 2)).shape
    ((4, 3, 2), (3, 2, 4))
    """
    x = as_node(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    else:
        axes = tuple(int(a) for a in axes)
        bad = [a for a in axes if not -x.ndim <= a < x.ndim]
        if bad:
            raise ShapeError(
                f"transpose: axis {bad[0]} is out of range for an input of shape {x.shape}"
            )
        axes = tuple(a % x.ndim for a in axes) if x.ndim else axes
    return apply(TRANSPOSE, x, axes=axes)


@function(numpy=(np.swapaxes,), samples=(Sample(((2, 3, 4),), {"axis1": 0, "axis2": 2}),))
def swapaxes(x, axis1: int = -1, axis2: int = -2) -> Node:
    """``x`` with axes ``axis1`` and ``axis2`` exchanged (numpy's ``swapaxes``).

    Args:
        x: a node, or a number or array (taken as a constant).
        axis1, axis2: the axes to exchange (negative counts from the end).

    Returns:
        Node: ``x`` with the two axes exchanged.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk
    >>> dk.swapaxes(dk.variable("x", (2, 3, 4)), 0, 2).shape
    (4, 3, 2)
    """
    x = as_node(x)
    axes = list(range(x.ndim))
    for a in (axis1, axis2):
        if not -x.ndim <= a < x.ndim:
            raise ShapeError(f"swapaxes: axis {a} is out of range for an input of shape {x.shape}")
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return transpose(x, axes)


# ---- broadcast_to and its adjoint ---------------------------------------------------


def _broadcast_shape(shapes, shape):
    (src,) = shapes
    if broadcast("broadcast_to", src, shape) != tuple(shape):
        raise ShapeError(f"broadcast_to: cannot broadcast shape {src} to {tuple(shape)}")
    return tuple(shape)


BROADCAST_TO = register(
    Op(
        name="broadcast_to",
        shape=_broadcast_shape,
        impl=lambda x, shape: np.broadcast_to(x, shape),
        # the adjoint of replication is summation, done by the engine's sum_to
        vjp=lambda ct, out, x, shape: (ct,),
        jvp=LINEAR,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((3,),), {"shape": (2, 3)}), Sample(((2, 1),), {"shape": (2, 4)})),
        analytic=True,
        fold=lambda x, shape: x if x.shape == tuple(shape) else None,
        doc="replicate along new or unit axes",
        rules={"batch": _batch_broadcast_to, "sparsity": selection},
    )
)


@builds(BROADCAST_TO, numpy=(np.broadcast_to,))
def broadcast_to(x, shape) -> Node:
    """``x`` replicated to ``shape`` under numpy's broadcasting rules.

    Args:
        x: a node, or a number or array (taken as a constant).
        shape: the target shape.

    Returns:
        Node: ``x`` repeated along the broadcast axes.

    Raises:
        ShapeError: ``x``'s shape does not broadcast to ``shape``.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(dk.broadcast_to(x, (2, 3)), at={"x": [1.0, 2.0, 3.0]}).tolist()
    [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    >>> dk.gradient(dk.sum(dk.broadcast_to(x, (2, 3))), at={"x": [1.0, 2.0, 3.0]})["x"].tolist()
    [2.0, 2.0, 2.0]
    """
    return apply(BROADCAST_TO, x, shape=tuple(shape))


def sum_to(x: Node, shape: tuple) -> Node:
    """Sum ``x`` over the axes that broadcasting added, so that it has ``shape``.

    This is the adjoint of broadcasting ``shape`` to ``x.shape``; when ``x`` is
    smaller than ``shape`` it is broadcast instead.

    Args:
        x: a node.
        shape: a shape that broadcasts to ``x.shape``.

    Returns:
        Node: ``x`` summed down to ``shape``.

    Raises:
        ShapeError: the shapes do not broadcast.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 3))
    >>> dk.evaluate(dk.sum_to(x, (1, 3)), at={"x": np.arange(6.0).reshape(2, 3)}).tolist()
    [[3.0, 5.0, 7.0]]
    """
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0:
        return _broadcast_for_sum_to(x, shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1
    )
    out = apply("sum", x, axis=axes, keepdims=False) if axes else x
    kept = tuple(1 if d == 1 else x.shape[lead + i] for i, d in enumerate(shape))
    out = reshape(out, kept)
    return out if kept == shape else _broadcast_for_sum_to(out, shape, x.shape)


def _broadcast_for_sum_to(x: Node, shape: tuple, original: tuple | None = None) -> Node:
    try:
        return broadcast_to(x, shape)
    except ShapeError:
        raise ShapeError(
            f"sum_to: cannot sum shape {original or x.shape} to {shape} (nor broadcast it there)"
        ) from None


# ---- matmul ----------------------------------------------------------------------


def _matmul_shape(shapes):
    a, b = shapes
    if len(a) < 2 or len(b) < 2:
        raise ShapeError(
            f"matmul: the primitive takes arrays of 2 or more dimensions, got {a} and {b}"
        )
    if a[-1] != b[-2]:
        raise ShapeError(
            f"matmul: shapes {a} and {b} do not match (inner dimensions {a[-1]} and {b[-2]})"
        )
    batch = broadcast("matmul", a[:-2], b[:-2])
    return batch + (a[-2], b[-1])


# A product with a handful of output rows (or columns) and a long inner dimension, such as
# a first convolution's weight gradient (6, N·OH·OW) @ (N·OH·OW, 25), is as fast again
# computed as one matrix-vector product per row: OpenBLAS runs such a GEMM on one core,
# its GEMV on all of them (benchmarks/lenet_step.py).
_GEMV_ROWS = 8
_GEMV_INNER = 16384


def _matmul_impl(a, b):
    if a.dtype == object or b.dtype == object:
        return np.matmul(a.astype(object), b.astype(object))
    if a.ndim == 2 and b.ndim == 2 and a.shape[1] >= _GEMV_INNER:
        (m, _), (_, n) = a.shape, b.shape
        if m <= _GEMV_ROWS and m <= n:
            out = np.empty((m, n), np.result_type(a, b))
            for i in range(m):
                np.matmul(b.T, a[i], out=out[i])
            return out
        if n <= _GEMV_ROWS:
            out = np.empty((n, m), np.result_type(a, b))
            for j in range(n):
                np.matmul(a, b[:, j], out=out[j])
            return out.T
    return np.matmul(a, b)


MATMUL = register(
    Op(
        name="matmul",
        shape=_matmul_shape,
        impl=_matmul_impl,
        # d(AB) = dA B + A dB
        vjp=lambda ct, out, a, b: (matmul(ct, swapaxes(b)), matmul(swapaxes(a), ct)),
        jvp=lambda tangents, out, a, b: _sum_tangents(
            None if tangents[0] is None else matmul(tangents[0], b),
            None if tangents[1] is None else matmul(a, tangents[1]),
        ),
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((3, 4), (4, 2))),
            Sample(((2, 3, 4), (4, 5))),
            Sample(((1, 2), (3, 2, 2))),
        ),
        analytic=True,
        doc="matrix product with batch broadcasting",
        rules={"batch": _batch_matmul, "sparsity": matmul_rule, "remat": "dot"},
    )
)


def _sum_tangents(*ts):
    ts = [t for t in ts if t is not None]
    if not ts:
        return None
    out = ts[0]
    for t in ts[1:]:
        out = out + t
    return out


@builds(MATMUL, numpy=(np.matmul,))
def matmul(a, b) -> Node:
    """The matrix product ``a @ b``, with numpy's rules for 1-D and batched operands.

    Args:
        a, b: nodes or arrays: matrices, stacks of matrices (broadcast), or vectors.

    Returns:
        Node: the product, of numpy's ``matmul`` shape.

    Raises:
        ShapeError: the inner dimensions differ.

    >>> import diffkit as dk, numpy as np
    >>> W = dk.variable("W", shape=(2, 3)); x = dk.variable("x", shape=(3,))
    >>> (W @ x).shape
    (2,)
    """
    a, b = as_node(a), as_node(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(
            f"matmul: operands must have at least one dimension, got {a.shape} and {b.shape}"
        )
    va, vb = a.ndim == 1, b.ndim == 1
    inner_b = b.shape[0] if vb else b.shape[-2]
    if a.shape[-1] != inner_b:
        raise ShapeError(
            f"matmul: shapes {a.shape} and {b.shape} do not match "
            f"(inner dimensions {a.shape[-1]} and {inner_b})"
        )
    if va:
        a = reshape(a, (1,) + a.shape)
    if vb:
        b = reshape(b, b.shape + (1,))
    out = apply(MATMUL, a, b)
    if va and vb:
        return reshape(out, out.shape[:-2])
    if va:
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if vb:
        return reshape(out, out.shape[:-1])
    return out


# numpy's dot, beyond 2-D, is composed from einsum in diffkit/ops/contract.py

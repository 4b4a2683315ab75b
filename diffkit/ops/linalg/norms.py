"""Norms: ``norm``, ``vector_norm`` and ``matrix_norm`` (vector p-norms from the op
``pnorm``, matrix norms from sums, extrema and singular values) and the condition number
``cond``."""

from __future__ import annotations

import numpy as np

from ...ir.node import Node, apply, as_node
from ...ir.op import Op, Sample, function, register
from ...ir.shapes import normalize_axes
from .._batch import all_batched, with_attrs
from .._sparsity import reduction_rule
from ..arithmetic import power
from ..comparison import abs as _abs, equal, not_equal, sign
from ..reduce import max as _max, min as _min, sum as _sum
from ..shape import reshape, transpose
from ._helpers import _NO_MP, _NO_SP, _matrix, _square
from .systems import INV
from .singular_values import SVDVALS


# ---- norm ---------------------------------------------------------------------------------


def _vnorm_shape(shapes, ord, axis, keepdims):  # noqa: A002 - numpy's name
    s = shapes[0]
    return tuple(1 if i in axis else d for i, d in enumerate(s) if keepdims or i not in axis)


def _vnorm_impl(x, ord, axis, keepdims):  # noqa: A002
    return np.asarray(np.linalg.vector_norm(x, ord=ord, axis=axis, keepdims=keepdims))


def _keep(node: Node, x: Node, axis, keepdims) -> Node:
    if keepdims:
        return node
    return reshape(node, tuple(1 if i in axis else d for i, d in enumerate(x.shape)))


def _vnorm_grad(out, x, ord, axis, keepdims):  # noqa: A002
    """d ||x||_p / dx = sign(x) |x|^(p-1) / ||x||^(p-1), 0 where the norm is 0."""
    n = _keep(out, x, axis, keepdims)
    safe = n + equal(n, 0.0)
    if ord == 1:
        return sign(x)
    if ord == 2:
        return x / safe
    return sign(x) * power(_abs(x), ord - 1) / power(safe, ord - 1)


def _vnorm_vjp(ct, out, x, ord, axis, keepdims):  # noqa: A002
    return (_keep(ct, x, axis, keepdims) * _vnorm_grad(out, x, ord, axis, keepdims),)


def _vnorm_jvp(tangents, out, x, ord, axis, keepdims):  # noqa: A002
    (dx,) = tangents
    if dx is None:
        return None
    return _sum(dx * _vnorm_grad(out, x, ord, axis, keepdims), axis=axis, keepdims=keepdims)


def _batch_vnorm(node, inputs, batch):
    axis = tuple(a + 1 for a in node.attrs["axis"])
    return with_attrs(node, all_batched(inputs, batch), axis=axis)


VECTOR_NORM = register(
    Op(
        name="pnorm",
        shape=_vnorm_shape,
        impl=_vnorm_impl,
        vjp=_vnorm_vjp,
        jvp=_vnorm_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((5,),), {"ord": 2.0, "axis": (0,), "keepdims": False}),
            Sample(((3, 4),), {"ord": 1.0, "axis": (1,), "keepdims": True}),
            Sample(((3, 4),), {"ord": 3.0, "axis": (0, 1), "keepdims": False}),
            Sample(((2, 3, 2),), {"ord": 2.0, "axis": (0, 2), "keepdims": False}),
        ),
        analytic=False,
        doc="p-norm over axes (sum |x|^p)^(1/p); subgradient 0 at 0",
        rules={"batch": _batch_vnorm, "sparsity": reduction_rule},
    )
)


def _vector_norm(x: Node, p: float, axis: tuple, keepdims: bool) -> Node:
    if p == np.inf:
        out = _max(_abs(x), axis=axis, keepdims=keepdims)
    elif p == -np.inf:
        out = _min(_abs(x), axis=axis, keepdims=keepdims)
    elif p == 0:
        out = _sum(not_equal(x, 0.0), axis=axis, keepdims=keepdims)
    else:
        out = apply(VECTOR_NORM, x, ord=float(p), axis=axis, keepdims=bool(keepdims))
    return out


def _matrix_norm(x: Node, ord, axis: tuple, keepdims: bool) -> Node:  # noqa: A002
    row, col = axis
    if ord in (None, "fro"):
        return apply(VECTOR_NORM, x, ord=2.0, axis=tuple(sorted(axis)), keepdims=keepdims)
    if ord in ("nuc", 2, -2):
        rest = [i for i in range(x.ndim) if i not in axis]
        s = apply(SVDVALS, transpose(x, rest + [row, col]))
        out = _sum(s, axis=-1) if ord == "nuc" else (_max if ord == 2 else _min)(s, axis=-1)
        if keepdims:
            shape = tuple(1 if i in axis else d for i, d in enumerate(x.shape))
            out = reshape(out, shape)
        return out
    if ord in (1, -1, np.inf, -np.inf):
        summed, picked = (row, col) if ord in (1, -1) else (col, row)
        reduce = _max if ord in (1, np.inf) else _min
        out = reduce(_sum(_abs(x), axis=summed, keepdims=True), axis=picked, keepdims=True)
        if not keepdims:
            out = reshape(out, tuple(d for i, d in enumerate(x.shape) if i not in axis))
        return out
    raise ValueError(f"norm: invalid norm order {ord!r} for matrices")


@function(
    numpy=(np.linalg.norm,),
    samples=(
        Sample(((5,),)),
        Sample(((3, 4),)),
        Sample(((3, 4),), {"ord": 1}),
        Sample(((3, 4),), {"ord": np.inf}),
        Sample(((3, 4),), {"ord": "nuc"}),
        Sample(((3, 4),), {"ord": 2}),
        Sample(((3, 4),), {"ord": 3, "axis": 1}),
        Sample(((2, 3, 4),), {"axis": (2, 0), "keepdims": True}),
        Sample(((5,),), {"ord": -np.inf}),
        Sample(((5,),), {"ord": 0}),
    ),
)
def norm(x, ord=None, axis=None, keepdims: bool = False) -> Node:  # noqa: A002
    """Vector or matrix norm, as ``np.linalg.norm`` (vector ords: p > 0, ``inf``,
    ``-inf``, 0; matrix ords: ``'fro'``, ``'nuc'``, 1, -1, 2, -2, ``inf``, ``-inf``).

    Derivatives: the (sub)gradient at 0 is 0 (JAX, PyTorch); ``inf``/``-inf`` norms route
    the derivative to the first largest/smallest entry; ``ord=0`` counts and has
    derivative 0; the 2-norm of a matrix is its largest singular value.

    Args:
        x: a node or array.
        ord: the order of the norm, as numpy's.
        axis: an axis (vector norm) or two (matrix norm); None for all.
        keepdims: keep the reduced axes, with length 1.

    Returns:
        Node: the norm(s).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2,))
    >>> dk.gradient(np.linalg.norm(x), at={"x": [3.0, 4.0]})["x"].tolist()
    [0.6, 0.8]
    >>> dk.gradient(np.linalg.norm(x), at={"x": [0.0, 0.0]})["x"].tolist()
    [0.0, 0.0]
    """
    x = as_node(x)
    if axis is None:
        if ord is None:
            out = apply(VECTOR_NORM, x, ord=2.0, axis=tuple(range(x.ndim)), keepdims=False)
            if keepdims:
                out = reshape(out, (1,) * x.ndim)
            return out
        if x.ndim not in (1, 2):
            raise ValueError(
                f"norm: an ord needs a 1-D or 2-D input or an axis, got shape {x.shape}"
            )
        axis = tuple(range(x.ndim))
    elif isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    axes = normalize_axes("norm", tuple(axis), x.ndim)
    given = tuple(int(a) % x.ndim for a in axis)
    if len(set(given)) != len(given):
        raise ValueError(f"norm: duplicate axes in {axis!r}")
    if len(given) == 1:
        if isinstance(ord, str):
            raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
        p = 2.0 if ord is None else float(ord)
        return _vector_norm(x, p, axes, keepdims)
    if len(given) == 2:
        return _matrix_norm(x, ord, given, keepdims)
    raise ValueError(f"norm: axis must name 1 or 2 axes, got {axis!r}")


# ---- numpy 2's array-API spellings ------------------------------------------------------


@function(
    numpy=(np.linalg.vector_norm,),
    samples=(
        Sample(((5,),)),
        Sample(((3, 4),), {"axis": 1, "ord": 3}),
        Sample(((2, 3, 4),), {"axis": (0, 2), "keepdims": True}),
        Sample(((3, 4),), {"ord": np.inf}),
    ),
)
def vector_norm(x, /, *, axis=None, keepdims: bool = False, ord=2) -> Node:  # noqa: A002
    """The vector norm over ``axis`` (all axes, flattened, by default), as
    ``np.linalg.vector_norm``; ``norm``'s conventions for derivatives.

    Args:
        x: a node or array.
        axis: an axis or tuple of axes; None for all.
        keepdims: keep the reduced axes, with length 1.
        ord: the order of the norm.

    Returns:
        Node: the norm(s).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 2))
    >>> dk.evaluate(np.linalg.vector_norm(x, ord=1), at={"x": [[1.0, -2.0], [3.0, -4.0]]})
    10.0
    """
    x = as_node(x)
    if isinstance(ord, str):
        raise ValueError(f"vector_norm: invalid norm order {ord!r}")
    axes = normalize_axes("vector_norm", axis, x.ndim)
    out = _vector_norm(x, float(ord), axes, True)
    if keepdims:
        return out
    return reshape(out, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@function(
    numpy=(np.linalg.matrix_norm,),
    samples=(Sample(((3, 4),)), Sample(((2, 3, 4),), {"ord": "nuc", "keepdims": True})),
)
def matrix_norm(x, /, *, keepdims: bool = False, ord="fro") -> Node:  # noqa: A002
    """The norm of each matrix over the last two axes, as ``np.linalg.matrix_norm``.

    Args:
        x: a node or array: a matrix or a stack of them.
        keepdims: keep the reduced axes, with length 1.
        ord: ``"fro"``, ``"nuc"``, 1, -1, 2, -2, inf or -inf.

    Returns:
        Node: the norm(s).

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 2))
    >>> dk.evaluate(np.linalg.matrix_norm(x, ord=1), at={"x": [[1.0, -2.0], [3.0, -4.0]]})
    6.0
    """
    x = as_node(x)
    _matrix("matrix_norm", x.shape)
    return _matrix_norm(x, ord, (x.ndim - 2, x.ndim - 1), keepdims)


@function(
    numpy=(np.linalg.cond,),
    samples=(Sample(((3, 3),)), Sample(((3, 3),), {"p": "fro"}), Sample(((2, 4, 3),))),
)
def cond(x, p=None) -> Node:
    """The condition number, as ``np.linalg.cond``: the ratio of extreme singular values
    (``p`` None, 2, -2), else ``norm(x, p) * norm(inv(x), p)``.

    Args:
        x: a node or array: a matrix or a stack of them.
        p: the order of the norm, as numpy's; None for 2.

    Returns:
        Node: the condition number(s).

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.evaluate(np.linalg.cond(A), at={"A": [[4.0, 0.0], [0.0, 2.0]]})
    2.0
    """
    x = as_node(x)
    _matrix("cond", x.shape)
    if p in (None, 2, -2):
        s = apply(SVDVALS, x)
        ratio = _max(s, axis=-1) / _min(s, axis=-1)
        return 1.0 / ratio if p == -2 else ratio
    _square("cond", x.shape)
    axes = (x.ndim - 2, x.ndim - 1)
    return _matrix_norm(x, p, axes, False) * _matrix_norm(apply(INV, x), p, axes, False)

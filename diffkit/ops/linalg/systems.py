"""Linear systems and inverses: ``inv``, ``solve`` and ``solve_triangular`` (whose
triangular solves also serve the derivatives of ``cholesky`` and ``qr``)."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ...ir.node import Node, ShapeError, apply, as_node
from ...ir.op import Op, Sample, builds, register
from ...ir.shapes import broadcast
from ..shape import matmul, reshape
from .._sparsity import dense
from ._helpers import (
    _BATCH,
    _NO_MP,
    _NO_SP,
    _T,
    _add,
    _batch_broadcasting,
    _square,
    _square_shape,
    _tril,
    _triu,
    _well_conditioned,
)


# ---- inv -------------------------------------------------------------------------------


def _inv_vjp(ct, out, a):
    # d inv(A) = -inv(A) dA inv(A)
    return (-matmul(matmul(_T(out), ct), _T(out)),)


def _inv_jvp(tangents, out, a):
    (da,) = tangents
    return None if da is None else -matmul(matmul(out, da), out)


INV = register(
    Op(
        name="inv",
        shape=_square_shape("inv"),
        impl=lambda a: np.linalg.inv(a),
        vjp=_inv_vjp,
        jvp=_inv_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3),), make=_well_conditioned((3, 3))),
            Sample(((2, 3, 3),), make=_well_conditioned((2, 3, 3))),
            Sample(((4, 4),)),
        ),
        analytic=True,
        doc="matrix inverse",
        rules=_BATCH,
    )
)


@builds(INV, numpy=(np.linalg.inv,))
def inv(a) -> Node:
    """The inverse of a square matrix (or of each matrix of a stack).

    Args:
        a: a node or array: a square matrix, or a stack of them (leading axes).

    Returns:
        Node: the inverse(s).

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.evaluate(np.linalg.inv(A), at={"A": [[2.0, 0.0], [0.0, 4.0]]}).tolist()
    [[0.5, 0.0], [0.0, 0.25]]
    """
    a = as_node(a)
    return apply(INV, a)


# ---- solve -----------------------------------------------------------------------------


def _solve_shape(shapes):
    a, b = shapes
    _square("solve", a)
    if len(b) < 2 or b[-2] != a[-1]:
        raise ShapeError(
            f"solve: the right-hand side of shape {b} does not fit a matrix of shape {a} "
            f"(expected (..., {a[-1]}, K))"
        )
    return broadcast("solve", a[:-2], b[:-2]) + b[-2:]


def _solve_impl(a, b):
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:]
    if a.size == 0 or b.size == 0:
        return np.zeros(shape, dtype=np.result_type(a, b))
    return np.linalg.solve(a, b)


def _solve_vjp(ct, out, a, b):
    # X = A^-1 B: dX = A^-1 (dB - dA X), so B's cotangent is A^-T ct and A's is -that X^T
    gb = apply(SOLVE, _T(a), ct)
    return (-matmul(gb, _T(out)), gb)


def _solve_jvp(tangents, out, a, b):
    da, db = tangents
    rhs = _add(db, None if da is None else -matmul(da, out))
    return None if rhs is None else apply(SOLVE, a, rhs)


SOLVE = register(
    Op(
        name="solve",
        shape=_solve_shape,
        impl=_solve_impl,
        vjp=_solve_vjp,
        jvp=_solve_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3), (3, 2))),
            Sample(((2, 3, 3), (3, 1))),
            Sample(((3, 3), (2, 3, 2))),
        ),
        analytic=True,
        doc="solution X of A X = B (stacks broadcast)",
        rules={"batch": _batch_broadcasting, "sparsity": dense},
    )
)


@builds(SOLVE, numpy=(np.linalg.solve,))
def solve(a, b) -> Node:
    """The solution ``x`` of ``a @ x = b``, as ``np.linalg.solve``: ``b`` is a vector when
    it is 1-D, else a (stack of) matrices; stacks broadcast.

    Args:
        a: a node or array: a square matrix, or a stack of them (leading axes).
        b: a node or array: the right-hand side(s).

    Returns:
        Node: ``x`` with ``a x = b``.

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2)); b = dk.variable("b", (2,))
    >>> dk.evaluate(np.linalg.solve(A, b), at={"A": np.diag([2.0, 4.0]), "b": [1.0, 1.0]})
    array([0.5 , 0.25])
    """
    a, b = as_node(a), as_node(b)
    _square("solve", a.shape)
    if b.ndim == 1:
        if b.shape[0] != a.shape[-1]:
            raise ShapeError(
                f"solve: the right-hand side of shape {b.shape} does not fit a matrix of "
                f"shape {a.shape}"
            )
        x = apply(SOLVE, a, reshape(b, b.shape + (1,)))
        return reshape(x, x.shape[:-1])
    return apply(SOLVE, a, b)


# ---- solve_triangular ---------------------------------------------------------------------


def _tri_shape(shapes, lower=False, trans=False, unit_diagonal=False):
    a, b = shapes
    _square("solve_triangular", a)
    if len(b) < 2 or b[-2] != a[-1]:
        raise ShapeError(
            f"solve_triangular: the right-hand side of shape {b} does not fit a matrix of "
            f"shape {a} (expected (..., {a[-1]}, K))"
        )
    return broadcast("solve_triangular", a[:-2], b[:-2]) + b[-2:]


def _tri_impl(a, b, lower=False, trans=False, unit_diagonal=False):
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + b.shape[-2:]
    if a.size == 0 or b.size == 0 or int(np.prod(shape[:-2], dtype=np.int64)) == 0:
        return np.zeros(shape, dtype=np.result_type(a, b))
    a, b = np.broadcast_to(a, shape[:-2] + a.shape[-2:]), np.broadcast_to(b, shape)
    return scipy.linalg.solve_triangular(
        a,
        b,
        trans=1 if trans else 0,
        lower=lower,
        unit_diagonal=unit_diagonal,
        check_finite=False,
    )


def _tri_mask(x: Node, lower: bool, unit_diagonal: bool) -> Node:
    """The entries of ``x`` where the triangular solve reads its matrix."""
    k = -1 if unit_diagonal else 0
    return _tril(x, k) if lower else _triu(x, -k)


def _tri(a, b, lower, trans, unit_diagonal):
    return apply(SOLVE_TRIANGULAR, a, b, lower=lower, trans=trans, unit_diagonal=unit_diagonal)


def _tri_vjp(ct, out, a, b, lower=False, trans=False, unit_diagonal=False):
    # op(A) X = B with op(A) = A or A^T: dX = op(A)^-1 (dB - op(dA) X)
    gb = _tri(a, ct, lower, not trans, unit_diagonal)
    ga = -(matmul(out, _T(gb)) if trans else matmul(gb, _T(out)))
    return (_tri_mask(ga, lower, unit_diagonal), gb)


def _tri_jvp(tangents, out, a, b, lower=False, trans=False, unit_diagonal=False):
    da, db = tangents
    if da is not None:
        da = _tri_mask(da, lower, unit_diagonal)
        da = -matmul(_T(da) if trans else da, out)
    rhs = _add(db, da)
    return None if rhs is None else _tri(a, rhs, lower, trans, unit_diagonal)


def _triangular(lower: bool, n: int = 3, batch: tuple = (), k: int = 2):
    def make(rng):
        a = rng.uniform(-1, 1, batch + (n, n)) + 2 * np.eye(n)
        a = np.tril(a) if lower else np.triu(a)
        return [a, rng.uniform(-2, 2, (n, k))]

    return make


SOLVE_TRIANGULAR = register(
    Op(
        name="solve_triangular",
        shape=_tri_shape,
        impl=_tri_impl,
        vjp=_tri_vjp,
        jvp=_tri_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3), (3, 2)), {"lower": True}, make=_triangular(True)),
            Sample(((3, 3), (3, 2)), {"lower": False, "trans": True}, make=_triangular(False)),
            Sample(
                ((2, 3, 3), (3, 2)),
                {"lower": True, "unit_diagonal": True},
                make=_triangular(True, batch=(2,)),
            ),
        ),
        analytic=True,
        doc="solution of a triangular system (scipy.linalg.solve_triangular)",
        rules={"batch": _batch_broadcasting, "sparsity": dense},
    )
)


@builds(SOLVE_TRIANGULAR)
def solve_triangular(
    a,
    b,
    trans=0,
    lower: bool = False,
    unit_diagonal: bool = False,
    overwrite_b=False,
    check_finite=True,
) -> Node:
    """The solution ``x`` of ``a @ x = b`` for a triangular ``a``, as
    ``scipy.linalg.solve_triangular`` (only the triangle named by ``lower`` is read;
    ``trans`` 0/'N' or 1/'T'; stacks broadcast). The derivative in ``a`` lives on that
    triangle.

    Args:
        a: a node or array: a triangular matrix.
        b: a node or array: the right-hand side(s).
        trans: 0, 1 or 2 (``a``, its transpose, its conjugate transpose), as scipy's.
        lower: ``a`` is lower (not upper) triangular.
        unit_diagonal: take the diagonal as ones.
        overwrite_b, check_finite: scipy's arguments.

    Returns:
        Node: ``x`` with ``a x = b``.

    >>> import diffkit as dk, numpy as np
    >>> L = dk.variable("L", (2, 2)); b = dk.variable("b", (2,))
    >>> x = dk.solve_triangular(L, b, lower=True)
    >>> dk.evaluate(x, at={"L": [[2.0, 0.0], [1.0, 1.0]], "b": [2.0, 3.0]}).tolist()
    [1.0, 2.0]
    """
    codes = {0: False, "N": False, 1: True, "T": True}
    if trans not in codes:
        raise ValueError(
            f"solve_triangular: trans must be 0/'N' or 1/'T', got {trans!r} (complex "
            f"conjugate transposes are not supported)"
        )
    a, b = as_node(a), as_node(b)
    _square("solve_triangular", a.shape)
    vector = b.ndim == 1
    if vector:
        if b.shape[0] != a.shape[-1]:
            raise ShapeError(
                f"solve_triangular: the right-hand side of shape {b.shape} does not fit a "
                f"matrix of shape {a.shape}"
            )
        b = reshape(b, b.shape + (1,))
    x = _tri(a, b, bool(lower), codes[trans], bool(unit_diagonal))
    return reshape(x, x.shape[:-1]) if vector else x

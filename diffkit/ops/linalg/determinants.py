"""Determinants: ``det`` (whose gradient is the ``adjugate``, finite at singular
matrices) and ``slogdet`` from the ops ``logabsdet`` and ``det_sign``."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ir.node import Node, apply, as_node
from ...ir.op import Op, Sample, builds, function, register
from ..reduce import sum as _sum
from ..shape import matmul
from ._helpers import (
    _BATCH,
    _NO_MP,
    _NO_SP,
    _T,
    _empty_safe,
    _scalar_matrix,
    _spd,
    _square,
    _square_shape,
    _well_conditioned,
)
from .systems import INV

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])


# ---- det, adjugate, slogdet ----------------------------------------------------------------


def _adjugate_impl(a):
    """adj(A) = det(A) A^-1, computed from the SVD so that it is exact for singular A:
    A = U S Vh gives adj(A) = det(U) det(Vh) Vh^H diag(prod_{j!=i} s_j) U^H."""
    if a.size == 0:
        return np.zeros(a.shape, dtype=a.dtype)
    n = a.shape[-1]
    u, s, vh = np.linalg.svd(a)
    ones = np.ones(s.shape[:-1] + (1,), dtype=s.dtype)
    left = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = left * right if n else s
    phase = np.linalg.det(u) * np.linalg.det(vh)
    vh_h = np.swapaxes(vh, -1, -2).conj()
    u_h = np.swapaxes(u, -1, -2).conj()
    return (phase[..., None, None] * vh_h * others[..., None, :]) @ u_h


def _tr_inv(a: Node, da: Node) -> Node:
    """tr(A^-1 dA) for each matrix of the stack."""
    return _sum(_T(apply(INV, a)) * da, axis=(-2, -1))


def _adjugate_vjp(ct, out, a):
    # d adj(A) = tr(A^-1 dA) adj(A) - adj(A) dA A^-1 (A invertible)
    inv_t = _T(apply(INV, a))
    inner = _sum(ct * out, axis=(-2, -1))
    return (_scalar_matrix(inner) * inv_t - matmul(matmul(_T(out), ct), inv_t),)


def _adjugate_jvp(tangents, out, a):
    (da,) = tangents
    if da is None:
        return None
    return _scalar_matrix(_tr_inv(a, da)) * out - matmul(matmul(out, da), apply(INV, a))


ADJUGATE = register(
    Op(
        name="adjugate",
        shape=_square_shape("adjugate"),
        impl=_adjugate_impl,
        vjp=_adjugate_vjp,
        jvp=_adjugate_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3),), make=_well_conditioned((3, 3))),
            Sample(((2, 3, 3),)),
        ),
        analytic=True,
        doc="adjugate det(A) A^-1 (exact for singular A), the gradient of det",
        rules=_BATCH,
    )
)


@builds(ADJUGATE)
def adjugate(a) -> Node:
    """The adjugate ``det(A) A^-1`` (the transposed cofactor matrix), finite for singular
    matrices; its own derivative needs ``A`` invertible.

    Args:
        a: a node or array: a square matrix, or a stack of them (leading axes).

    Returns:
        Node: the adjugates (det(a) inv(a) where ``a`` is invertible).

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> np.round(dk.evaluate(dk.adjugate(A), at={"A": [[1.0, 2.0], [2.0, 4.0]]}), 12).tolist()
    [[4.0, -2.0], [-2.0, 1.0]]
    """
    return apply(ADJUGATE, as_node(a))


def _det_shape(shapes):
    _square("det", shapes[0])
    return tuple(shapes[0][:-2])


def _singular(rng):
    m = rng.uniform(-2, 2, (3, 2))
    return [m @ rng.uniform(-2, 2, (2, 3))]


DET = register(
    Op(
        name="det",
        shape=_det_shape,
        impl=lambda a: np.asarray(_empty_safe(np.linalg.det, a, a.shape[:-2])),
        # d det(A) = tr(adj(A) dA)
        vjp=lambda ct, out, a: (_scalar_matrix(ct) * _T(apply(ADJUGATE, a)),),
        jvp=lambda tangents, out, a: (
            None
            if tangents[0] is None
            else _sum(_T(apply(ADJUGATE, a)) * tangents[0], axis=(-2, -1))
        ),
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3),)),
            Sample(((2, 4, 4),), make=_well_conditioned((2, 4, 4))),
            Sample(((3, 3),), make=_singular, second_order=False),
        ),
        analytic=True,
        doc="determinant",
        rules=_BATCH,
    )
)


@builds(DET, numpy=(np.linalg.det,))
def det(a) -> Node:
    """The determinant of a square matrix (or of each of a stack). Its gradient is the
    transposed adjugate, finite at singular matrices (as JAX and PyTorch).

    Args:
        a: a node or array: a square matrix, or a stack of them (leading axes).

    Returns:
        Node: the determinants.

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.gradient(np.linalg.det(A), at={"A": [[1.0, 2.0], [2.0, 4.0]]})["A"].round(12)
    array([[ 4., -2.],
           [-2.,  1.]])
    """
    return apply(DET, as_node(a))


LOGABSDET = register(
    Op(
        name="logabsdet",
        shape=_det_shape,
        impl=lambda a: np.asarray(np.linalg.slogdet(a)[1]),
        # d log|det A| = tr(A^-1 dA)
        vjp=lambda ct, out, a: (_scalar_matrix(ct) * _T(apply(INV, a)),),
        jvp=lambda tangents, out, a: None if tangents[0] is None else _tr_inv(a, tangents[0]),
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(Sample(((3, 3),)), Sample(((2, 3, 3),), make=_spd(3, (2,)))),
        analytic=False,
        doc="log |det A| (slogdet's second output)",
        rules=_BATCH,
    )
)

DET_SIGN = register(
    Op(
        name="det_sign",
        shape=_det_shape,
        impl=lambda a: np.asarray(np.linalg.slogdet(a)[0]),
        # the sign is piecewise constant: derivative 0
        vjp=lambda ct, out, a: (None,),
        jvp=lambda tangents, out, a: None,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(Sample(((3, 3),), zero_derivative=True),),
        analytic=False,
        doc="sign of det A (slogdet's first output), derivative 0",
        rules=_BATCH,
    )
)


@function(
    numpy=(np.linalg.slogdet,),
    samples=(Sample(((3, 3),)), Sample(((2, 4, 4),), make=_spd(4, (2,)))),
)
def slogdet(a) -> SlogdetResult:
    """``(sign, logabsdet)`` of the determinant, as ``np.linalg.slogdet``: no overflow for
    large matrices. The sign carries no derivative; d logabsdet = tr(A^-1 dA).

    Args:
        a: a node or array: a square matrix, or a stack of them (leading axes).

    Returns:
        ``SlogdetResult``: the named pair ``(sign, logabsdet)``, as numpy's.

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> sign, logdet = np.linalg.slogdet(A)
    >>> dk.gradient(logdet, at={"A": [[2.0, 1.0], [0.0, 4.0]]})["A"].tolist()
    [[0.5, 0.0], [-0.125, 0.25]]
    """
    a = as_node(a)
    return SlogdetResult(apply(DET_SIGN, a), apply(LOGABSDET, a))

"""Triangular factorizations: the Cholesky factor ``cholesky`` of a symmetric positive
definite matrix, and ``qr`` from the ops ``qr_q`` and ``qr_r`` (the reduced QR,
differentiable for tall or square matrices of full rank). The derivatives of both go
through triangular solves."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ir.node import Node, apply, as_node, const
from ...ir.op import Op, Sample, builds, function, register
from ..shape import matmul
from ._helpers import (
    _BATCH,
    _NO_MP,
    _NO_SP,
    _T,
    _empty_safe,
    _matrix,
    _spd,
    _square_shape,
    _sym,
    _sym_impl,
    _tril,
)
from .systems import _tri

QRResult = namedtuple("QRResult", ["Q", "R"])


# ---- cholesky ------------------------------------------------------------------------------


def _phi(x: Node) -> Node:
    """The lower triangle of ``x`` with its diagonal halved."""
    n = x.shape[-1]
    return x * const(np.tril(np.ones((n, n))) - 0.5 * np.eye(n))


def _cholesky_vjp(ct, out, a):
    # A = L L^T: dL = L Phi(L^-1 dA L^-T), so dA's cotangent is L^-T Phi(L^T ct) L^-1,
    # symmetrized
    lower = dict(lower=True, unit_diagonal=False)
    m = _phi(matmul(_T(out), ct))
    y = _tri(out, m, trans=True, **lower)  # L^-T M
    g = _T(_tri(out, _T(y), trans=True, **lower))  # L^-T M L^-1
    return (_sym(g),)


def _cholesky_jvp(tangents, out, a):
    (da,) = tangents
    if da is None:
        return None
    lower = dict(lower=True, unit_diagonal=False)
    z = _tri(out, _sym(da), trans=False, **lower)  # L^-1 dA
    p = _T(_tri(out, _T(z), trans=False, **lower))  # L^-1 dA L^-T
    return matmul(out, _phi(p))


def _cholesky_impl(a):
    return _empty_safe(lambda m: np.linalg.cholesky(_sym_impl(m)), a, a.shape)


CHOLESKY = register(
    Op(
        name="cholesky",
        shape=_square_shape("cholesky"),
        impl=_cholesky_impl,
        vjp=_cholesky_vjp,
        jvp=_cholesky_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3),), make=_spd(3)),
            Sample(((2, 4, 4),), make=_spd(4, (2,))),
        ),
        analytic=False,
        doc="lower Cholesky factor of the symmetric part of a positive definite matrix",
        rules=_BATCH,
    )
)


@builds(CHOLESKY, numpy=(np.linalg.cholesky,))
def cholesky(a, /, *, upper: bool = False) -> Node:
    """The lower Cholesky factor ``L`` (``A = L L^T``) of a symmetric positive definite
    matrix, or of each of a stack; ``upper=True`` gives ``L^T`` as numpy does.

    The input's symmetric part ``(A + A^T)/2`` is factored (JAX's choice: numpy reads the
    lower triangle, the same for a symmetric input), so the gradient is symmetric.

    Args:
        a: a node or array: a symmetric positive definite matrix, or a stack of them.
        upper: return the upper factor instead of the lower.

    Returns:
        Node: the triangular factor.

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.evaluate(np.linalg.cholesky(A), at={"A": [[4.0, 2.0], [2.0, 2.0]]}).tolist()
    [[2.0, 0.0], [1.0, 1.0]]
    """
    a = as_node(a)
    out = apply(CHOLESKY, a)
    return _T(out) if upper else out


# ---- qr -----------------------------------------------------------------------------------


def _qr_shape(which):
    def rule(shapes):
        s = shapes[0]
        _matrix(("qr_q", "qr_r")[which], s)
        m, n = s[-2:]
        k = min(m, n)
        return s[:-2] + ((m, k), (k, n))[which]

    return rule


def _qr_impl(which):
    def impl(a):
        m, n = a.shape[-2:]
        k = min(m, n)
        if a.size == 0:
            return np.zeros(a.shape[:-2] + ((m, k), (k, n))[which], dtype=a.dtype)
        return np.linalg.qr(a, mode="reduced")[which]

    return impl


def _qr_tall(a):
    m, n = a.shape[-2:]
    if m < n:
        raise ValueError(
            f"qr: the derivative of the QR decomposition of a wide matrix of shape {a.shape} "
            f"is not supported (as JAX); differentiate the QR of a tall or square matrix"
        )


def _right_solve_rt(g: Node, r: Node) -> Node:
    """G R^-T for upper triangular R: (R^-1 G^T)^T."""
    return _T(_tri(r, _T(g), False, False, False))


def _qr_jvp(which):
    # X = dA R^-1, C = Q^T X, O = tril(C, -1) - tril(C, -1)^T:
    # dQ = Q (O - C) + X, dR = (C - O) R
    def jvp(tangents, out, a):
        (da,) = tangents
        if da is None or a.size == 0:
            return None
        _qr_tall(a)
        q, r = apply(QR_Q, a), apply(QR_R, a)
        x = _T(_tri(r, _T(da), False, True, False))  # dA R^-1
        c = matmul(_T(q), x)
        low = _tril(c, -1)
        omega = low - _T(low)
        return matmul(q, omega - c) + x if which == 0 else matmul(c - omega, r)

    return jvp


def _qr_vjp(which):
    # the adjoint of the JVP: M = Q^T Qbar - Rbar R^T, B = tril(M - M^T, -1) - M,
    # dA's cotangent = (Qbar + Q B) R^-T
    def vjp(ct, out, a):
        if a.size == 0:
            return (None,)
        _qr_tall(a)
        q, r = apply(QR_Q, a), apply(QR_R, a)
        m = matmul(_T(q), ct) if which == 0 else -matmul(ct, _T(r))
        b = _tril(m - _T(m), -1) - m
        g = matmul(q, b) + (ct if which == 0 else 0.0)
        return (_right_solve_rt(g, r),)

    return vjp


_QR_SAMPLES = (
    Sample(((3, 3),)),
    Sample(((4, 3),)),
    Sample(((2, 4, 2),)),
)

QR_Q = register(
    Op(
        name="qr_q",
        shape=_qr_shape(0),
        impl=_qr_impl(0),
        vjp=_qr_vjp(0),
        jvp=_qr_jvp(0),
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=_QR_SAMPLES,
        analytic=False,
        doc="orthonormal factor Q of the reduced QR decomposition",
        rules=_BATCH,
    )
)
QR_R = register(
    Op(
        name="qr_r",
        shape=_qr_shape(1),
        impl=_qr_impl(1),
        vjp=_qr_vjp(1),
        jvp=_qr_jvp(1),
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=_QR_SAMPLES,
        analytic=False,
        doc="upper triangular factor R of the reduced QR decomposition",
        rules=_BATCH,
    )
)


@function(
    numpy=(np.linalg.qr,),
    samples=(Sample(((3, 3),)), Sample(((4, 3),)), Sample(((2, 4, 2),), {"mode": "r"})),
)
def qr(a, mode: str = "reduced"):
    """``(Q, R)`` with ``a = Q @ R``, as ``np.linalg.qr`` (modes ``'reduced'`` and
    ``'r'``); numpy's signs (R's diagonal may be negative). Differentiable for tall or
    square matrices of full rank, as in JAX.

    Args:
        a: a node or array: a matrix or a stack of them.
        mode: numpy's ``"reduced"``, ``"complete"``, ``"r"`` or ``"raw"``.

    Returns:
        ``(Q, R)`` (``R`` alone for ``mode="r"``), as numpy's.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (3, 2))
    >>> Q, R = np.linalg.qr(A)
    >>> Q.shape, R.shape
    ((3, 2), (2, 2))
    """
    a = as_node(a)
    _matrix("qr", a.shape)
    if mode == "r":
        return apply(QR_R, a)
    if mode != "reduced":
        raise ValueError(f"qr: mode must be 'reduced' or 'r', got {mode!r}")
    return QRResult(apply(QR_Q, a), apply(QR_R, a))

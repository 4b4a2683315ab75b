"""The singular value decomposition: ``svdvals`` and ``svd`` from the ops ``svdvals``,
``svd_u`` and ``svd_vh`` (the reduced SVD)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ir.node import Node, apply, as_node
from ...ir.op import Op, Sample, builds, function, register
from ..comparison import equal
from ..shape import matmul
from ._helpers import _BATCH, _NO_MP, _NO_SP, _T, _col, _diag, _gap_inverse, _matrix, _row

SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])


# ---- svd ----------------------------------------------------------------------------------


def _svd_impl(which):
    def impl(a):
        m, n = a.shape[-2:]
        k = min(m, n)
        shapes = (a.shape[:-2] + (m, k), a.shape[:-2] + (k,), a.shape[:-2] + (k, n))
        if a.size == 0:
            dtype = a.real.dtype if which == 1 else a.dtype
            return np.zeros(shapes[which], dtype=dtype)
        if which == 1:
            return np.linalg.svd(a, compute_uv=False)
        return np.linalg.svd(a, full_matrices=False)[which]

    return impl


def _svd_shape(which):
    def rule(shapes):
        s = shapes[0]
        _matrix(("svd_u", "svdvals", "svd_vh")[which], s)
        m, n = s[-2:]
        k = min(m, n)
        return (s[:-2] + (m, k), s[:-2] + (k,), s[:-2] + (k, n))[which]

    return rule


def _svd_parts(a):
    return apply(SVD_U, a), apply(SVDVALS, a), apply(SVD_VH, a)


def _svd_common(a, s):
    """F_ij = 1/(s_j^2 - s_i^2) off the diagonal, and 1/s with 0 where s = 0 (JAX's)."""
    f = _gap_inverse((_row(s) + _col(s)) * (_row(s) - _col(s)))
    zero = equal(s, 0.0)
    s_inv = 1.0 / (s + zero) - zero
    return f, s_inv


def _svdvals_vjp(ct, out, a):
    # d s_i = u_i^T dA v_i
    u, _, vh = _svd_parts(a)
    return (matmul(u * _row(ct), vh),)


def _svdvals_jvp(tangents, out, a):
    (da,) = tangents
    if da is None:
        return None
    u, _, vh = _svd_parts(a)
    return _diag(matmul(matmul(_T(u), da), _T(vh)))


def _svd_u_vjp(ct, out, a):
    # dU = U (F o (dP S + S dP^T)) + (I - U U^T) dA V S^-1, dP = U^T dA V
    u, s, vh = _svd_parts(a)
    f, s_inv = _svd_common(a, s)
    m = f * matmul(_T(u), ct)
    inner = matmul(u, (m + _T(m)) * _row(s))
    rest = (ct - matmul(u, matmul(_T(u), ct))) * _row(s_inv)
    return (matmul(inner + rest, vh),)


def _svd_u_jvp(tangents, out, a):
    (da,) = tangents
    if da is None:
        return None
    u, s, vh = _svd_parts(a)
    f, s_inv = _svd_common(a, s)
    dav = matmul(da, _T(vh))
    dp = matmul(_T(u), dav)
    core = f * (dp * _row(s) + _col(s) * _T(dp))
    return matmul(u, core) + (dav - matmul(u, dp)) * _row(s_inv)


def _svd_vh_vjp(ct, out, a):
    # dV = V (F o (S dP + dP^T S)) + (I - V V^T) dA^T U S^-1, and Vh = V^T
    u, s, vh = _svd_parts(a)
    f, s_inv = _svd_common(a, s)
    n = f * matmul(vh, _T(ct))  # F o (V^T Vbar), Vbar = ct^T
    inner = matmul(u, _col(s) * (n + _T(n)))
    rest = _col(s_inv) * (ct - matmul(matmul(ct, _T(vh)), vh))
    return (matmul(inner, vh) + matmul(u, rest),)


def _svd_vh_jvp(tangents, out, a):
    (da,) = tangents
    if da is None:
        return None
    u, s, vh = _svd_parts(a)
    f, s_inv = _svd_common(a, s)
    dtu = matmul(_T(da), u)
    dp = matmul(vh, dtu)  # dP^T = V^T dA^T U
    core = f * (_col(s) * _T(dp) + dp * _row(s))
    dv = matmul(_T(vh), core) + (dtu - matmul(_T(vh), dp)) * _row(s_inv)
    return _T(dv)


_SVD_SAMPLES = (
    Sample(((3, 3),)),
    Sample(((4, 3),)),
    Sample(((3, 4),)),
    Sample(((2, 3, 2),)),
)


def _svd_op(which, name, vjp, jvp, doc):
    return register(
        Op(
            name=name,
            shape=_svd_shape(which),
            impl=_svd_impl(which),
            vjp=vjp,
            jvp=jvp,
            mpmath=_NO_MP,
            sympy=_NO_SP,
            samples=_SVD_SAMPLES,
            analytic=False,
            doc=doc,
            rules=_BATCH,
        )
    )


SVDVALS = _svd_op(1, "svdvals", _svdvals_vjp, _svdvals_jvp, "singular values, descending")
SVD_U = _svd_op(0, "svd_u", _svd_u_vjp, _svd_u_jvp, "left singular vectors (reduced SVD)")
SVD_VH = _svd_op(2, "svd_vh", _svd_vh_vjp, _svd_vh_jvp, "right singular vectors (reduced SVD)")


@builds(SVDVALS, numpy=(np.linalg.svdvals,))
def svdvals(x, /) -> Node:
    """Singular values, descending; finite derivative ``u_i v_i^T`` even at ties and zeros.

    Args:
        x: a node or array: a matrix or a stack of them.

    Returns:
        Node: the singular values, descending.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.evaluate(np.linalg.svdvals(A), at={"A": [[3.0, 0.0], [0.0, -4.0]]}).tolist()
    [4.0, 3.0]
    """
    return apply(SVDVALS, as_node(x))


@function(
    numpy=(np.linalg.svd,),
    samples=(
        Sample(((3, 3),)),
        Sample(((4, 3),), {"full_matrices": False}),
        Sample(((2, 3, 4),), {"full_matrices": False}),
        Sample(((3, 4),), {"compute_uv": False}),
    ),
)
def svd(a, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False):
    """``(U, S, Vh)`` with ``a = U @ diag(S) @ Vh``, as ``np.linalg.svd`` (``S`` alone for
    ``compute_uv=False``).

    The singular vectors' derivative divides by differences of squared singular values:
    at exactly repeated singular values it is inf/NaN (as JAX and PyTorch), and it needs
    nonzero singular values when the matrix is not square. ``full_matrices=True`` on a
    non-square matrix is refused: its extra singular vectors are not unique and have no
    derivative (pass ``full_matrices=False``).

    Args:
        a: a node or array: a matrix or a stack of them.
        full_matrices: square U and Vh instead of the reduced ones.
        compute_uv: return U and Vh (else the singular values alone).
        hermitian: ``a`` is symmetric (or Hermitian).

    Returns:
        ``(U, S, Vh)``, or ``S`` without ``compute_uv``, as numpy's.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (3, 2))
    >>> U, S, Vh = np.linalg.svd(A, full_matrices=False)
    >>> U.shape, S.shape, Vh.shape
    ((3, 2), (2,), (2, 2))
    """
    a = as_node(a)
    _matrix("svd", a.shape)
    if hermitian:
        raise ValueError("svd: hermitian=True is not supported; use np.linalg.eigh")
    if not compute_uv:
        return apply(SVDVALS, a)
    m, n = a.shape[-2:]
    if full_matrices and m != n:
        raise ValueError(
            f"svd: full_matrices=True on a non-square matrix of shape {a.shape} has no "
            f"derivative (the extra singular vectors are not unique); pass full_matrices=False"
        )
    return SVDResult(*_svd_parts(a))

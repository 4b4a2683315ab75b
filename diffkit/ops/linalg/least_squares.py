"""The pseudo-inverse ``pinv`` and the least-squares solution ``lstsq`` built on it."""

from __future__ import annotations

import numpy as np

from ...ir.node import Node, ShapeError, apply, as_node, const
from ...ir.op import Op, Sample, builds, function, register
from ..comparison import greater
from ..reduce import max as _max, sum as _sum
from ..shape import matmul, reshape
from ._helpers import _BATCH, _NO_MP, _NO_SP, _T, _matrix
from .singular_values import SVDVALS


# ---- pinv, lstsq --------------------------------------------------------------------------


def _pinv_shape(shapes, **_):
    s = shapes[0]
    _matrix("pinv", s)
    return s[:-2] + (s[-1], s[-2])


def _pinv_vjp(ct, out, a, rtol=None):
    # dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P (constant rank)
    p = out
    term1 = -matmul(matmul(_T(p), ct), _T(p))
    ctt = _T(ct)
    left = ctt - matmul(a, matmul(p, ctt))  # (I - A P) ct^T
    term2 = matmul(left, matmul(p, _T(p)))
    right = ctt - matmul(matmul(ctt, p), a)  # ct^T (I - P A)
    term3 = matmul(matmul(_T(p), p), right)
    return (term1 + term2 + term3,)


def _pinv_jvp(tangents, out, a, rtol=None):
    (da,) = tangents
    if da is None:
        return None
    p = out
    dat = _T(da)
    t1 = -matmul(matmul(p, da), p)
    t2 = matmul(matmul(p, _T(p)), dat - matmul(dat, matmul(a, p)))
    t3 = matmul(dat - matmul(matmul(p, a), dat), matmul(_T(p), p))
    return t1 + t2 + t3


def _pinv_impl(a, rtol=None):
    shape = a.shape[:-2] + (a.shape[-1], a.shape[-2])
    if a.size == 0:
        return np.zeros(shape, dtype=a.dtype)
    return np.linalg.pinv(a) if rtol is None else np.linalg.pinv(a, rtol=rtol)


PINV = register(
    Op(
        name="pinv",
        shape=_pinv_shape,
        impl=_pinv_impl,
        vjp=_pinv_vjp,
        jvp=_pinv_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(Sample(((4, 3),)), Sample(((3, 4),)), Sample(((2, 3, 3),))),
        analytic=False,
        doc="Moore-Penrose pseudo-inverse",
        rules=_BATCH,
    )
)


@builds(PINV, numpy=(np.linalg.pinv,))
def pinv(a, rcond=None, hermitian: bool = False, *, rtol=None) -> Node:
    """The Moore-Penrose pseudo-inverse, as ``np.linalg.pinv``. Its derivative assumes
    the rank is constant near the point (JAX's convention); singular values below the
    cut-off count as zero.

    Args:
        a: a node or array: a matrix or a stack of them.
        rcond, rtol: the cutoff of small singular values, as numpy's.
        hermitian: ``a`` is symmetric (or Hermitian).

    Returns:
        Node: the Moore-Penrose pseudo-inverse.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 1))
    >>> dk.evaluate(np.linalg.pinv(A), at={"A": [[1.0], [1.0]]}).round(12).tolist()
    [[0.5, 0.5]]
    """
    if rcond is not None and rtol is not None:
        raise ValueError("pinv: give rcond or rtol, not both")
    cut = rtol if rtol is not None else rcond
    if cut is not None and np.ndim(cut) != 0:
        raise ValueError("pinv: only a scalar rcond/rtol is supported")
    a = as_node(a)
    return apply(PINV, a, rtol=None if cut is None else float(cut))


@function(
    numpy=(np.linalg.lstsq,),
    samples=(Sample(((5, 3), (5,))), Sample(((5, 3), (5, 2)))),
)
def lstsq(a, b, rcond=None):
    """Least-squares solution of ``a @ x = b``, as ``np.linalg.lstsq``: ``(x, residuals,
    rank, s)``. ``x`` is ``pinv(a) @ b`` (differentiable at full rank); ``residuals`` is
    the squared residual norm per column when ``a`` is tall (assumed of full rank), else
    empty; ``rank`` is a node counting the singular values above the cut-off.

    Args:
        a: a node or array: the (M, N) matrix.
        b: a node or array: (M,) or (M, K).
        rcond: the cutoff of small singular values, as numpy's.

    Returns:
        ``(x, residuals, rank, singular_values)``, as numpy's.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (3, 1)); b = dk.variable("b", (3,))
    >>> x, res, rank, s = np.linalg.lstsq(A, b)
    >>> dk.evaluate(x, at={"A": [[1.0], [1.0], [1.0]], "b": [1.0, 2.0, 3.0]}).tolist()
    [2.0]
    """
    a, b = as_node(a), as_node(b)
    if a.ndim != 2 or b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise ShapeError(
            f"lstsq: expected a matrix (M, N) and b of shape (M,) or (M, K), got {a.shape} "
            f"and {b.shape}"
        )
    x = matmul(apply(PINV, a, rtol=rcond), b)
    s = apply(SVDVALS, a)
    m, n = a.shape
    if m > n:
        r = matmul(a, x) - b
        residuals = _sum(r * r, axis=0)
        residuals = reshape(residuals, (1,)) if b.ndim == 1 else residuals
    else:
        residuals = const(np.zeros((0,)))
    # numpy's rank: singular values above rcond * max(s), rcond = eps * max(M, N) by default
    tol = float(np.finfo(np.float64).eps * max(m, n)) if rcond is None else float(rcond)
    rank = _sum(greater(s, _max(s) * tol))
    return x, residuals, rank, s

"""The symmetric eigen-decomposition: ``eigvalsh`` and ``eigh`` from the ops
``eigvalsh`` and ``eigh_vectors``."""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ir.node import Node, apply, as_node
from ...ir.op import Op, Sample, builds, function, register
from ..shape import matmul
from ._helpers import (
    _BATCH,
    _NO_MP,
    _NO_SP,
    _T,
    _col,
    _diag,
    _gap_inverse,
    _row,
    _square,
    _square_shape,
    _sym,
    _sym_impl,
    _symmetric,
)

EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


# ---- eigh ---------------------------------------------------------------------------------


def _eigh_impl(which):
    def impl(a):
        shape = a.shape[:-1] if which == 0 else a.shape
        dtype = a.real.dtype if which == 0 else a.dtype
        if a.size == 0:
            return np.zeros(shape, dtype=dtype)
        return np.linalg.eigh(_sym_impl(a))[which]

    return impl


def _eigvalsh_shape(shapes):
    _square("eigvalsh", shapes[0])
    return tuple(shapes[0][:-1])


def _eigvalsh_vjp(ct, out, a):
    # d w_i = v_i^T dA v_i
    v = apply(EIGH_VECTORS, a)
    return (matmul(v * _row(ct), _T(v)),)


def _eigvalsh_jvp(tangents, out, a):
    (da,) = tangents
    if da is None:
        return None
    v = apply(EIGH_VECTORS, a)
    return _diag(matmul(matmul(_T(v), da), v))


EIGVALSH = register(
    Op(
        name="eigvalsh",
        shape=_eigvalsh_shape,
        impl=_eigh_impl(0),
        vjp=_eigvalsh_vjp,
        jvp=_eigvalsh_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3),), make=_symmetric(3)),
            Sample(((2, 4, 4),), make=_symmetric(4, (2,))),
        ),
        analytic=False,
        doc="eigenvalues (ascending) of the symmetric part of a matrix",
        rules=_BATCH,
    )
)


def _eig_gaps(w: Node) -> Node:
    """F_ij = 1 / (w_j - w_i) off the diagonal, 0 on it."""
    return _gap_inverse(_row(w) - _col(w))


def _eigh_vectors_vjp(ct, out, a):
    # dV = V (F o (V^T dA V)) with F_ij = 1/(w_j - w_i)
    f = _eig_gaps(apply(EIGVALSH, a))
    return (_sym(matmul(matmul(out, f * matmul(_T(out), ct)), _T(out))),)


def _eigh_vectors_jvp(tangents, out, a):
    (da,) = tangents
    if da is None:
        return None
    f = _eig_gaps(apply(EIGVALSH, a))
    return matmul(out, f * matmul(matmul(_T(out), _sym(da)), out))


EIGH_VECTORS = register(
    Op(
        name="eigh_vectors",
        shape=_square_shape("eigh_vectors"),
        impl=_eigh_impl(1),
        vjp=_eigh_vectors_vjp,
        jvp=_eigh_vectors_jvp,
        mpmath=_NO_MP,
        sympy=_NO_SP,
        samples=(
            Sample(((3, 3),), make=_symmetric(3)),
            Sample(((2, 4, 4),), make=_symmetric(4, (2,))),
        ),
        analytic=False,
        doc="eigenvectors (columns, numpy's signs) of the symmetric part of a matrix",
        rules=_BATCH,
    )
)


def _check_uplo(name: str, uplo) -> None:
    if uplo not in ("L", "U"):
        raise ValueError(f"{name}: UPLO must be 'L' or 'U', got {uplo!r}")


@builds(EIGVALSH, numpy=(np.linalg.eigvalsh,))
def eigvalsh(a, UPLO: str = "L") -> Node:  # noqa: N803 - numpy's name
    """Eigenvalues, ascending, of a symmetric matrix (its symmetric part is used). Their
    derivative is finite even at repeated eigenvalues.

    Args:
        a: a node or array: a symmetric (or Hermitian) matrix, or a stack of them.
        UPLO: ``"L"`` or ``"U"``: the triangle read.

    Returns:
        Node: the eigenvalues, ascending.

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.gradient(np.linalg.eigvalsh(A).sum(), at={"A": np.eye(2)})["A"].tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    _check_uplo("eigvalsh", UPLO)
    return apply(EIGVALSH, as_node(a))


@function(
    numpy=(np.linalg.eigh,),
    samples=(Sample(((3, 3),), make=_symmetric(3)), Sample(((2, 4, 4),), make=_symmetric(4, (2,)))),
)
def eigh(a, UPLO: str = "L") -> EighResult:  # noqa: N803 - numpy's name
    """``(eigenvalues, eigenvectors)`` of a symmetric matrix, as ``np.linalg.eigh``.

    The symmetric part ``(A + A^T)/2`` is used (as JAX). The eigenvectors' derivative
    divides by differences of eigenvalues, so at exactly repeated eigenvalues it is
    inf/NaN, as in JAX and PyTorch (the eigenvectors are not unique there); the
    eigenvalues' derivative stays finite.

    Args:
        a: a node or array: a symmetric (or Hermitian) matrix, or a stack of them.
        UPLO: ``"L"`` or ``"U"``: the triangle read.

    Returns:
        ``EighResult``: the named pair ``(eigenvalues, eigenvectors)``, values ascending.

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> w, V = np.linalg.eigh(A)
    >>> dk.evaluate(w, at={"A": [[2.0, 1.0], [1.0, 2.0]]}).round(12).tolist()
    [1.0, 3.0]
    """
    _check_uplo("eigh", UPLO)
    a = as_node(a)
    _square("eigh", a.shape)
    return EighResult(apply(EIGVALSH, a), apply(EIGH_VECTORS, a))

"""Linear algebra: ``np.linalg`` on IR nodes, with derivatives written in IR ops.

Primitives (one op per output, each computed by numpy/LAPACK or ``scipy.linalg``):
``inv``, ``solve``, ``solve_triangular``, ``cholesky``, ``det`` (with ``adjugate`` for its
gradient), ``logabsdet`` and ``det_sign`` (``slogdet``), ``eigvalsh`` and ``eigh_vectors``
(``eigh``), ``svdvals``, ``svd_u`` and ``svd_vh`` (``svd``), ``qr_q`` and ``qr_r``
(``qr``), ``pinv`` and ``pnorm`` (the p-norm). A numpy function with several outputs (``eigh``,
``svd``, ``qr``, ``slogdet``) is a composite returning one node per output, so that an
output that is not used costs nothing and brings no term into the derivative (the
gradient of a function of the eigenvalues alone stays finite at repeated eigenvalues).
Every matrix op works on stacks ``(..., M, N)`` as numpy's do.

Conventions (values as numpy, derivatives as JAX):

* ``cholesky``, ``eigh`` and ``eigvalsh`` read the symmetric part ``(A + A^T) / 2`` of their
  input (as JAX does; numpy reads one triangle, which is the same for a symmetric input), so
  their gradients are symmetric matrices.
* ``eigh``'s eigenvectors and ``svd``'s singular vectors divide by differences of
  eigenvalues (squared singular values): at exact ties their derivative is inf/NaN, as in
  JAX and PyTorch. Eigenvalues and singular values alone have finite derivatives there.
* ``norm``'s (sub)gradient at 0 is 0; ``ord=inf`` routes the derivative to the first
  largest entry (diffkit's ``max``).
* ``det``'s gradient is the transposed adjugate, finite at singular matrices.
* ``svd(full_matrices=True)`` of a non-square matrix is refused (its extra singular vectors
  are not unique, so they have no derivative; JAX refuses it too); ``qr`` is differentiable
  for tall or square matrices of full rank.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import scipy.linalg

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import Op, Sample, Unsupported, builds, function, register
from ..ir.shapes import broadcast, normalize_axes
from ._batch import all_batched, lift, with_attrs
from .arithmetic import power
from .comparison import abs as _abs, equal, greater, not_equal, sign
from .reduce import max as _max, min as _min, sum as _sum
from .shape import broadcast_to, matmul, reshape, transpose

__all__ = [
    "inv",
    "solve",
    "solve_triangular",
    "cholesky",
    "det",
    "adjugate",
    "slogdet",
    "eigh",
    "eigvalsh",
    "svd",
    "svdvals",
    "qr",
    "pinv",
    "norm",
    "matrix_power",
    "multi_dot",
    "lstsq",
    "vector_norm",
    "matrix_norm",
    "matrix_transpose",
    "cond",
]

_NO_MP = Unsupported("a matrix factorization: mpmath has no stacked-array form here")
_NO_SP = Unsupported("a matrix factorization: no elementwise SymPy form")

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = namedtuple("QRResult", ["Q", "R"])


# ---- IR helpers ------------------------------------------------------------------------


def _T(x: Node) -> Node:
    """The last two axes exchanged (a stack of transposes)."""
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


def _sym(x: Node) -> Node:
    return (x + _T(x)) * 0.5


def _eye(n: int) -> Node:
    return const(np.eye(n))


def _tril(x: Node, k: int = 0) -> Node:
    """The lower triangle (below diagonal ``k``) of each matrix of ``x``."""
    return x * const(np.tril(np.ones(x.shape[-2:]), k))


def _triu(x: Node, k: int = 0) -> Node:
    return x * const(np.triu(np.ones(x.shape[-2:]), k))


def _row(v: Node) -> Node:
    """A stack of vectors (..., n) as rows (..., 1, n), to scale columns."""
    return reshape(v, v.shape[:-1] + (1, v.shape[-1]))


def _col(v: Node) -> Node:
    """A stack of vectors (..., n) as columns (..., n, 1), to scale rows."""
    return reshape(v, v.shape + (1,))


def _diag(x: Node) -> Node:
    """The diagonal of each (square) matrix of ``x``."""
    return _sum(x * _eye(x.shape[-1]), axis=-1)


def _scalar_matrix(c: Node) -> Node:
    """A stack of scalars (...) as (..., 1, 1), to scale whole matrices."""
    return reshape(c, c.shape + (1, 1))


def _gap_inverse(d: Node) -> Node:
    """1 / d off the diagonal and 0 on it, for a stack of matrices ``d`` with zero diagonal
    (differences of eigenvalues): ties off the diagonal give inf, as JAX's ``Fmat``."""
    eye = _eye(d.shape[-1])
    return 1.0 / (d + eye) - eye


def _add(*terms):
    terms = [t for t in terms if t is not None]
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


def _square(name: str, shape: tuple) -> None:
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeError(
            f"{name}: expected a square matrix or a stack of them (..., M, M), got shape {shape}"
        )


def _matrix(name: str, shape: tuple) -> None:
    if len(shape) < 2:
        raise ShapeError(
            f"{name}: expected a matrix or a stack of them (..., M, N), got shape {shape}"
        )


def _square_shape(name: str):
    def rule(shapes, **_):
        _square(name, shapes[0])
        return tuple(shapes[0])

    return rule


def _batch_unary(node, inputs, batch):
    # a stacked matrix op: the batch axis is one more leading axis of the stack
    return with_attrs(node, all_batched(inputs, batch))


def _batch_broadcasting(node, inputs, batch):
    ndim = max(len(i.shape) for i in node.inputs)
    return with_attrs(node, [lift(x, batch, ndim) if b else x for x, b in inputs])


_BATCH = {"batch": _batch_unary}


def _spd(n: int, batch: tuple = ()):
    """A sample maker: symmetric positive definite matrices, exactly symmetric."""

    def make(rng):
        m = rng.uniform(-1, 1, batch + (n, n))
        return [(m + np.swapaxes(m, -1, -2)) / 2 + n * np.eye(n)]

    return make


def _symmetric(n: int, batch: tuple = ()):
    """A sample maker: exactly symmetric matrices (distinct eigenvalues almost surely)."""

    def make(rng):
        m = rng.uniform(-2, 2, batch + (n, n))
        return [(m + np.swapaxes(m, -1, -2)) / 2]

    return make


def _well_conditioned(shape: tuple):
    """A sample maker: random matrices with a dominant diagonal (well conditioned)."""

    def make(rng):
        n = shape[-1]
        return [rng.uniform(-1, 1, shape) + n * np.eye(shape[-2], n)]

    return make


def _sym_impl(a):
    return (a + np.swapaxes(a, -1, -2).conj()) / 2 if a.size else a


def _empty_safe(fn, a, shape, dtype=None):
    """``fn(a)``, or an empty result of ``shape`` when the stack is empty."""
    if a.size == 0:
        return np.zeros(shape, dtype=dtype or a.dtype)
    return fn(a)


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
        rules={"batch": _batch_broadcasting},
    )
)


@builds(SOLVE, numpy=(np.linalg.solve,))
def solve(a, b) -> Node:
    """The solution ``x`` of ``a @ x = b``, as ``np.linalg.solve``: ``b`` is a vector when
    it is 1-D, else a (stack of) matrices; stacks broadcast.

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
        a, b, trans=1 if trans else 0, lower=lower, unit_diagonal=unit_diagonal,
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
        rules={"batch": _batch_broadcasting},
    )
)


@builds(SOLVE_TRIANGULAR)
def solve_triangular(
    a, b, trans=0, lower: bool = False, unit_diagonal: bool = False, overwrite_b=False,
    check_finite=True,
) -> Node:
    """The solution ``x`` of ``a @ x = b`` for a triangular ``a``, as
    ``scipy.linalg.solve_triangular`` (only the triangle named by ``lower`` is read;
    ``trans`` 0/'N' or 1/'T'; stacks broadcast). The derivative in ``a`` lives on that
    triangle.

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

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.evaluate(np.linalg.cholesky(A), at={"A": [[4.0, 2.0], [2.0, 2.0]]}).tolist()
    [[2.0, 0.0], [1.0, 1.0]]
    """
    a = as_node(a)
    out = apply(CHOLESKY, a)
    return _T(out) if upper else out


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

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> sign, logdet = np.linalg.slogdet(A)
    >>> dk.gradient(logdet, at={"A": [[2.0, 1.0], [0.0, 4.0]]})["A"].tolist()
    [[0.5, 0.0], [-0.125, 0.25]]
    """
    a = as_node(a)
    return SlogdetResult(apply(DET_SIGN, a), apply(LOGABSDET, a))


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

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> w, V = np.linalg.eigh(A)
    >>> dk.evaluate(w, at={"A": [[2.0, 1.0], [1.0, 2.0]]}).round(12).tolist()
    [1.0, 3.0]
    """
    _check_uplo("eigh", UPLO)
    a = as_node(a)
    return EighResult(apply(EIGVALSH, a), apply(EIGH_VECTORS, a))


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
        rules={"batch": _batch_vnorm},
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


# ---- matrix_power, multi_dot --------------------------------------------------------------


@function(
    numpy=(np.linalg.matrix_power,),
    samples=(
        Sample(((3, 3),), {"n": 3}),
        Sample(((2, 3, 3),), {"n": 0}),
        Sample(((3, 3),), {"n": -2}, make=_well_conditioned((3, 3))),
    ),
)
def matrix_power(a, n: int) -> Node:
    """``a`` raised to the integer power ``n`` by repeated squaring (``n < 0`` inverts
    first), as ``np.linalg.matrix_power``.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.evaluate(np.linalg.matrix_power(A, 3), at={"A": [[1.0, 1.0], [0.0, 1.0]]}).tolist()
    [[1.0, 3.0], [0.0, 1.0]]
    """
    a = as_node(a)
    _square("matrix_power", a.shape)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"matrix_power: the exponent must be an integer, got {n!r}")
    n = int(n)
    if n == 0:
        return broadcast_to(_eye(a.shape[-1]), a.shape)
    if n < 0:
        a, n = apply(INV, a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


@function(
    numpy=(np.linalg.multi_dot,),
    samples=(Sample(((2, 3), (3, 4), (4,)), pack=True),),
    arity=(1, None),
)
def multi_dot(arrays, *, out=None) -> Node:
    """The product of a chain of matrices (the first may be 1-D, the last too), as
    ``np.linalg.multi_dot``.

    >>> import diffkit as dk, numpy as np
    >>> a, b = dk.variable("a", (2, 3)), dk.variable("b", (3,))
    >>> np.linalg.multi_dot([a, b]).shape
    (2,)
    """
    if out is not None:
        raise TypeError("multi_dot: out= is not supported on IR nodes")
    arrays = [as_node(x) for x in arrays]
    if len(arrays) < 2:
        raise ValueError("multi_dot: give at least two arrays")
    result = arrays[0]
    for x in arrays[1:]:
        result = matmul(result, x)
    return result


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

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 2))
    >>> dk.evaluate(np.linalg.matrix_norm(x, ord=1), at={"x": [[1.0, -2.0], [3.0, -4.0]]})
    6.0
    """
    x = as_node(x)
    _matrix("matrix_norm", x.shape)
    return _matrix_norm(x, ord, (x.ndim - 2, x.ndim - 1), keepdims)


@function(numpy=(np.linalg.matrix_transpose,), samples=(Sample(((2, 3, 4),)),))
def matrix_transpose(x, /) -> Node:
    """Each matrix of a stack transposed (the last two axes exchanged)."""
    x = as_node(x)
    _matrix("matrix_transpose", x.shape)
    return _T(x)


@function(
    numpy=(np.linalg.cond,),
    samples=(Sample(((3, 3),)), Sample(((3, 3),), {"p": "fro"}), Sample(((2, 4, 3),))),
)
def cond(x, p=None) -> Node:
    """The condition number, as ``np.linalg.cond``: the ratio of extreme singular values
    (``p`` None, 2, -2), else ``norm(x, p) * norm(inv(x), p)``.

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

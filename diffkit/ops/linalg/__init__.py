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

Modules, each importing only the ones before it: ``_helpers`` (stacked-matrix pieces,
shape checks, batching rules, sample makers), ``systems`` (``inv``, ``solve``,
``solve_triangular``), ``factorizations`` (``cholesky``, ``qr``), ``determinants``
(``det``, ``adjugate``, ``slogdet``), ``eigen`` (``eigh``, ``eigvalsh``),
``singular_values`` (``svd``, ``svdvals``), ``least_squares`` (``pinv``, ``lstsq``),
``products`` (``matrix_power``, ``multi_dot``, ``matrix_transpose``) and ``norms``
(``norm``, ``vector_norm``, ``matrix_norm``, ``cond``). Each record registers once, when
its module is first imported.
"""

from __future__ import annotations

from .systems import inv, solve, solve_triangular
from .factorizations import cholesky, qr
from .determinants import adjugate, det, slogdet
from .eigen import eigh, eigvalsh
from .singular_values import svd, svdvals
from .least_squares import lstsq, pinv
from .products import matrix_power, matrix_transpose, multi_dot
from .norms import cond, matrix_norm, norm, vector_norm

# the op records and the result types, attributes of the package as before
from .systems import INV, SOLVE, SOLVE_TRIANGULAR  # noqa: F401
from .factorizations import CHOLESKY, QR_Q, QR_R, QRResult  # noqa: F401
from .determinants import ADJUGATE, DET, DET_SIGN, LOGABSDET, SlogdetResult  # noqa: F401
from .eigen import EIGH_VECTORS, EIGVALSH, EighResult  # noqa: F401
from .singular_values import SVD_U, SVD_VH, SVDVALS, SVDResult  # noqa: F401
from .least_squares import PINV  # noqa: F401
from .norms import VECTOR_NORM  # noqa: F401

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

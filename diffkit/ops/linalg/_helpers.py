"""Helpers shared by the linear-algebra ops: stacked-matrix pieces written in IR ops
(transposes, triangles, diagonals, scaling by rows and columns), shape checks, batching
rules, and the sample makers of the op records."""

from __future__ import annotations

import numpy as np

from ...ir.node import Node, ShapeError, const
from ...ir.op import Unsupported
from .._batch import all_batched, lift, with_attrs
from .._sparsity import dense
from ..reduce import sum as _sum
from ..shape import reshape, transpose

_NO_MP = Unsupported("a matrix factorization: mpmath has no stacked-array form here")
_NO_SP = Unsupported("a matrix factorization: no elementwise SymPy form")


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


# a function of whole matrices: every entry of the result depends on every input entry
_BATCH = {"batch": _batch_unary, "sparsity": dense}


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

"""Linear algebra against ``torch.linalg`` in float64: values, and vector-Jacobian
products along random cotangents (the gradient of <W, f(A)> for a random W), including
the conventions at repeated eigenvalues, singular matrices and zero vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffkit as dk

RNG = np.random.default_rng(2024)


def spd(n, batch=()):
    m = RNG.standard_normal(batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


def symmetric(n, batch=()):
    m = RNG.standard_normal(batch + (n, n))
    return (m + np.swapaxes(m, -1, -2)) / 2


def against_torch(f_np, f_torch, args, rtol=1e-10, atol=1e-11):
    """``f_np`` traced by diffkit and ``f_torch`` on tensors give the same value and the
    same gradient in every argument. Both compute the same scalar, usually <W, op(A)>."""
    nums = tuple(range(len(args)))
    value = dk.evaluate(f_np(*(dk.const(a) for a in args)))
    grads = dk.grad(f_np, argnums=nums)(*args)
    tensors = [torch.tensor(a, requires_grad=True) for a in args]
    out = f_torch(*tensors)
    out.backward()
    np.testing.assert_allclose(value, out.item(), rtol=rtol, atol=atol)
    for g, t in zip(grads, tensors, strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=atol)


def cotangent(shape):
    w = RNG.standard_normal(shape)
    return w, torch.tensor(w)


def vjp_case(op_np, op_torch, *args):
    """The VJP of one op along a random cotangent, against torch's."""
    out = op_np(*args)
    w, wt = cotangent(out.shape)
    against_torch(lambda *a: np.sum(op_np(*a) * w), lambda *t: torch.sum(op_torch(*t) * wt), args)


def test_inv():
    vjp_case(np.linalg.inv, torch.linalg.inv, RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3))


def test_solve_matrix_vector_and_broadcast_stacks():
    a = RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    vjp_case(np.linalg.solve, torch.linalg.solve, a, RNG.standard_normal((2, 3, 4)))
    vjp_case(np.linalg.solve, torch.linalg.solve, a[0], RNG.standard_normal(3))
    vjp_case(np.linalg.solve, torch.linalg.solve, a, RNG.standard_normal((3, 2)))


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular(lower, unit):
    a = RNG.standard_normal((2, 4, 4)) + 4 * np.eye(4)
    a = np.tril(a) if lower else np.triu(a)
    b = RNG.standard_normal((2, 4, 3))
    vjp_case(
        lambda a, b: dk.solve_triangular(a, b, lower=lower, unit_diagonal=unit),
        lambda a, b: torch.linalg.solve_triangular(a, b, upper=not lower, unitriangular=unit),
        a,
        b,
    )


def test_solve_triangular_transposed():
    a = np.tril(RNG.standard_normal((4, 4)) + 4 * np.eye(4))
    b = RNG.standard_normal((4, 2))
    vjp_case(
        lambda a, b: dk.solve_triangular(a, b, trans="T", lower=True),
        lambda a, b: torch.linalg.solve_triangular(a.mT, b, upper=True),
        a,
        b,
    )


def test_cholesky():
    vjp_case(np.linalg.cholesky, torch.linalg.cholesky, spd(4, (2,)))


def test_det_and_slogdet():
    a = RNG.standard_normal((3, 4, 4))
    vjp_case(np.linalg.det, torch.linalg.det, a)
    vjp_case(lambda a: np.linalg.slogdet(a)[1], lambda a: torch.linalg.slogdet(a)[1], a)
    sign = dk.evaluate(np.linalg.slogdet(dk.const(a))[0])
    np.testing.assert_array_equal(sign, torch.linalg.slogdet(torch.tensor(a))[0].numpy())


def test_det_at_a_singular_matrix():
    a = RNG.standard_normal((4, 2)) @ RNG.standard_normal((2, 4))  # rank 2
    against_torch(np.linalg.det, torch.linalg.det, (a,), atol=1e-10)
    b = RNG.standard_normal((3, 1)) @ RNG.standard_normal((1, 3))  # rank 1: adjugate 0
    against_torch(np.linalg.det, torch.linalg.det, (b,), atol=1e-10)


def test_eigh_and_eigvalsh():
    a = symmetric(4, (2,))
    vjp_case(np.linalg.eigvalsh, torch.linalg.eigvalsh, a)
    w1, w1t = cotangent((2, 4))
    w2, w2t = cotangent((2, 4, 4))

    def f(a):
        w, v = np.linalg.eigh(a)
        return np.sum(w * w1) + np.sum(v * v * w2)  # v*v: independent of the signs

    def ft(a):
        w, v = torch.linalg.eigh(a)
        return torch.sum(w * w1t) + torch.sum(v * v * w2t)

    against_torch(f, ft, (a,), rtol=1e-9, atol=1e-10)


def test_eigenvalues_at_a_tie():
    a = np.diag([1.0, 1.0, 3.0]) + 0.0
    w, wt = cotangent(3)
    against_torch(
        lambda a: np.sum(np.linalg.eigvalsh(a) * w),
        lambda a: torch.sum(torch.linalg.eigvalsh(a) * wt),
        (a,),
    )


def test_svd_svdvals():
    for shape in [(4, 3), (3, 5), (2, 3, 3)]:
        a = RNG.standard_normal(shape)
        vjp_case(lambda a: np.linalg.svd(a, compute_uv=False), torch.linalg.svdvals, a)
        k = min(shape[-2:])
        ws, wst = cotangent(shape[:-2] + (k,))
        wu, wut = cotangent(shape[:-1] + (k,))
        wv, wvt = cotangent(shape[:-2] + (k, shape[-1]))
        c, ct = cotangent(shape[:-2] + (1, k))

        def f(a):
            u, s, vh = np.linalg.svd(a, full_matrices=False)
            # sign-invariant: squares of the singular vectors and U diag(c) Vh
            return (
                np.sum(s * ws)
                + np.sum(u * u * wu)
                + np.sum(vh * vh * wv)
                + np.sum(((u * c) @ vh) ** 2)
            )

        def ft(a):
            u, s, vh = torch.linalg.svd(a, full_matrices=False)
            return (
                torch.sum(s * wst)
                + torch.sum(u * u * wut)
                + torch.sum(vh * vh * wvt)
                + torch.sum(((u * ct) @ vh) ** 2)
            )

        against_torch(f, ft, (a,), rtol=1e-9, atol=1e-10)


def test_qr():
    for shape in [(5, 3), (3, 3), (2, 4, 2)]:
        a = RNG.standard_normal(shape)
        vjp_case(lambda a: np.linalg.qr(a)[0], lambda a: torch.linalg.qr(a)[0], a)
        vjp_case(lambda a: np.linalg.qr(a)[1], lambda a: torch.linalg.qr(a)[1], a)


def test_pinv_and_lstsq():
    for shape in [(5, 3), (3, 5)]:
        vjp_case(np.linalg.pinv, torch.linalg.pinv, RNG.standard_normal(shape))
    a, b = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))
    vjp_case(
        lambda a, b: np.linalg.lstsq(a, b)[0],
        lambda a, b: torch.linalg.lstsq(a, b, driver="gelsd").solution,
        a,
        b,
    )


def test_matrix_power_and_multi_dot():
    a = RNG.standard_normal((3, 3)) + 2 * np.eye(3)
    for n in (0, 1, 4, -2):
        vjp_case(
            lambda a: np.linalg.matrix_power(a, n), lambda a: torch.linalg.matrix_power(a, n), a
        )
    b, c = RNG.standard_normal((3, 4)), RNG.standard_normal(4)
    vjp_case(
        lambda a, b, c: np.linalg.multi_dot([a, b, c]),
        lambda a, b, c: torch.linalg.multi_dot([a, b, c]),
        a,
        b,
        c,
    )


VECTOR_ORDS = [None, 1, 2, 3, 0.5, np.inf, -np.inf]
MATRIX_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
def test_vector_norms(ord):  # noqa: A002
    x = RNG.standard_normal((3, 5))
    against_torch(
        lambda x: np.sum(np.linalg.norm(x, ord=ord, axis=1)),
        lambda x: torch.sum(torch.linalg.vector_norm(x, ord=2 if ord is None else ord, dim=1)),
        (x,),
    )


@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
def test_matrix_norms(ord):  # noqa: A002
    x = RNG.standard_normal((2, 3, 4))
    against_torch(
        lambda x: np.sum(np.linalg.norm(x, ord=ord, axis=(1, 2))),
        lambda x: torch.sum(torch.linalg.matrix_norm(x, ord="fro" if ord is None else ord)),
        (x,),
        rtol=1e-9,
    )


@pytest.mark.parametrize("ord", [None, 1, 3], ids=str)
def test_norm_at_zero(ord):  # noqa: A002
    z = np.zeros(4)
    against_torch(
        lambda x: np.linalg.norm(x, ord),
        lambda x: torch.linalg.vector_norm(x, 2 if ord is None else ord),
        (z,),
    )


def test_condition_number():
    for shape in [(4, 4), (2, 5, 3)]:
        x = RNG.standard_normal(shape)
        against_torch(
            lambda x: np.sum(np.linalg.cond(x)),
            lambda x: torch.sum(torch.linalg.cond(x)),
            (x,),
            rtol=1e-9,
        )
    x = RNG.standard_normal((3, 3))
    against_torch(
        lambda x: np.linalg.cond(x, "fro"),
        # torch.linalg.cond(x, "fro") cannot be differentiated (an in-place inverse)
        lambda x: torch.linalg.matrix_norm(x) * torch.linalg.matrix_norm(torch.linalg.inv(x)),
        (x,),
        rtol=1e-9,
    )

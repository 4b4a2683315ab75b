"""Linear algebra in users' numpy code: Gaussian-process likelihoods, ridge regression,
eigen and singular value problems traced from plain ``np.linalg`` calls, checked against
numpy's values and against finite differences; the conventions at ties, kinks and
singular matrices; and bad input refused in one line naming the function and shapes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import diffkit as dk
from diffkit.testing import check_grads

RNG = np.random.default_rng(20)


def spd(n, rng=RNG, batch=()):
    m = rng.standard_normal(batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


# ---- research code, unchanged numpy -------------------------------------------------------


def rbf_kernel(x, log_ell, log_sf):
    d = x[:, None, :] - x[None, :, :]
    sq = np.sum(d * d, axis=-1)
    return np.exp(2 * log_sf) * np.exp(-0.5 * sq / np.exp(2 * log_ell))


def gp_nll_cholesky(x, y, log_ell, log_sf, log_sn):
    n = y.shape[0]
    k = rbf_kernel(x, log_ell, log_sf) + np.exp(2 * log_sn) * np.eye(n)
    chol = np.linalg.cholesky(k)
    alpha = dk.solve_triangular(chol, y, lower=True)
    return (
        0.5 * np.sum(alpha * alpha)
        + np.sum(np.log(np.diagonal(chol)))
        + 0.5 * n * np.log(2 * np.pi)
    )


def gp_nll_solve(x, y, log_ell, log_sf, log_sn):
    n = y.shape[0]
    k = rbf_kernel(x, log_ell, log_sf) + np.exp(2 * log_sn) * np.eye(n)
    _, logdet = np.linalg.slogdet(k)
    return 0.5 * y @ np.linalg.solve(k, y) + 0.5 * logdet + 0.5 * n * np.log(2 * np.pi)


def _gp_reference(x, y, log_ell, log_sf, log_sn):
    n = y.shape[0]
    k = rbf_kernel(x, log_ell, log_sf) + np.exp(2 * log_sn) * np.eye(n)
    c = scipy.linalg.cho_factor(k, lower=True)
    return (
        0.5 * y @ scipy.linalg.cho_solve(c, y)
        + np.sum(np.log(np.diag(c[0])))
        + 0.5 * n * np.log(2 * np.pi)
    )


GP = (RNG.uniform(-2, 2, (6, 2)), RNG.standard_normal(6), 0.1, 0.2, -1.0)


@pytest.mark.parametrize("nll", [gp_nll_cholesky, gp_nll_solve])
def test_gaussian_process_likelihood(nll):
    x, y, *theta = GP
    assert dk.evaluate(nll(*(dk.const(v) for v in GP))) == pytest.approx(
        _gp_reference(*GP), rel=1e-12
    )
    # gradients in the hyperparameters and in the inputs, to second order
    check_grads(lambda le, ls, sn: nll(x, y, le, ls, sn), tuple(theta), order=2)
    check_grads(lambda xx, yy: nll(xx, yy, *theta), (x, y), order=1)


def test_both_gp_likelihoods_have_the_same_gradient():
    x, y, *theta = GP
    g1 = dk.grad(lambda t: gp_nll_cholesky(x, y, t[0], t[1], t[2]))(np.array(theta))
    g2 = dk.grad(lambda t: gp_nll_solve(x, y, t[0], t[1], t[2]))(np.array(theta))
    np.testing.assert_allclose(g1, g2, rtol=1e-10)


def ridge_validation_loss(log_lam, x, y, xv, yv):
    d = x.shape[1]
    w = np.linalg.solve(x.T @ x + np.exp(log_lam) * np.eye(d), x.T @ y)
    r = xv @ w - yv
    return np.mean(r * r)


def test_ridge_regression_gradient_in_the_penalty_and_the_data():
    x, y = RNG.standard_normal((20, 4)), RNG.standard_normal(20)
    xv, yv = RNG.standard_normal((10, 4)), RNG.standard_normal(10)
    check_grads(ridge_validation_loss, (0.3, x, y, xv, yv), order=2)
    # the hypergradient against a hand-written one: dw/dlam = -(X^T X + lam I)^-1 w lam
    lam = np.exp(0.3)
    a = x.T @ x + lam * np.eye(4)
    w = np.linalg.solve(a, x.T @ y)
    dw = -np.linalg.solve(a, w) * lam
    hand = np.mean(2 * (xv @ w - yv) * (xv @ dw))
    got = dk.grad(ridge_validation_loss)(0.3, x, y, xv, yv)
    assert got == pytest.approx(hand, rel=1e-10)


def test_batched_solves_and_vector_right_hand_sides():
    a, b = spd(3, batch=(4,)), RNG.standard_normal((4, 3))

    def f(a, b):
        x = np.linalg.solve(a, b[..., None])[..., 0]
        return np.sum(x**2) + np.sum(np.linalg.inv(a) * a.transpose(0, 2, 1))

    check_grads(f, (a, b), order=2)
    v = RNG.standard_normal(3)
    check_grads(lambda a, v: np.sum(np.linalg.solve(a, v) ** 2), (a[0], v), order=2)


def test_whitening_with_eigh_and_pca_with_svd():
    x = RNG.standard_normal((12, 3))

    def whiten_loss(x):
        xc = x - np.mean(x, axis=0)
        cov = xc.T @ xc / x.shape[0]
        w, v = np.linalg.eigh(cov)
        white = xc @ v / np.sqrt(w)
        return np.sum(white[:, 0] ** 3) + np.sum(np.log(w))

    check_grads(whiten_loss, (x,), order=2)

    def pca_energy(x):
        u, s, vh = np.linalg.svd(x - np.mean(x, axis=0), full_matrices=False)
        return np.sum(s[:2] ** 2) + np.sum((u[:, 0] * vh[0, 0]) ** 2)

    check_grads(pca_energy, (x,), order=2)


def test_qr_orthogonal_projection_and_matrix_functions():
    a, b = RNG.standard_normal((6, 3)), RNG.standard_normal(6)

    def residual(a, b):
        q, r = np.linalg.qr(a)
        return np.sum((b - q @ (q.T @ b)) ** 2) + np.sum(np.diagonal(r) ** 2 * r[0])

    check_grads(residual, (a, b), order=2)
    m = RNG.standard_normal((3, 3)) / 3
    check_grads(lambda m: np.sum(np.linalg.matrix_power(m, 5)), (m,), order=2)
    check_grads(lambda m: np.linalg.det(m) + np.linalg.norm(m, "nuc"), (m,), order=2)
    check_grads(lambda a: np.sum(np.linalg.pinv(a) ** 2), (a,), order=2)
    check_grads(lambda a, b: np.sum(np.linalg.lstsq(a, b)[0] ** 2), (a, b), order=1)


# ---- values against numpy -----------------------------------------------------------------

CASES = {
    "inv": (np.linalg.inv, [spd(3)]),
    "solve": (np.linalg.solve, [spd(3, batch=(2,)), RNG.standard_normal((3, 2))]),
    "solve_vec": (np.linalg.solve, [spd(3), RNG.standard_normal(3)]),
    "det": (np.linalg.det, [RNG.standard_normal((2, 3, 3))]),
    "slogdet": (np.linalg.slogdet, [RNG.standard_normal((3, 3))]),
    "cholesky": (np.linalg.cholesky, [spd(4, batch=(2,))]),
    "eigh": (np.linalg.eigh, [spd(4)]),
    "eigvalsh": (np.linalg.eigvalsh, [spd(4, batch=(3,))]),
    "svd": (lambda a: np.linalg.svd(a, full_matrices=False), [RNG.standard_normal((5, 3))]),
    "svdvals": (lambda a: np.linalg.svd(a, compute_uv=False), [RNG.standard_normal((3, 5))]),
    "qr": (np.linalg.qr, [RNG.standard_normal((5, 3))]),
    "pinv": (np.linalg.pinv, [RNG.standard_normal((5, 3))]),
    "lstsq": (lambda a, b: np.linalg.lstsq(a, b)[0], [RNG.standard_normal((5, 3)), np.ones(5)]),
    "matrix_power": (lambda a: np.linalg.matrix_power(a, -3), [spd(3)]),
    "vector_norm": (
        lambda a: np.linalg.vector_norm(a, axis=0, ord=3),
        [RNG.standard_normal((4, 2))],
    ),
    "matrix_norm": (lambda a: np.linalg.matrix_norm(a, ord=-1), [RNG.standard_normal((2, 4, 3))]),
    "cond": (np.linalg.cond, [RNG.standard_normal((2, 4, 3))]),
    "multi_dot": (
        lambda a, b, c: np.linalg.multi_dot([a, b, c]),
        [np.ones(3), RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2))],
    ),
}

NORMS = [
    ((5,), {}),
    ((5,), {"ord": 1}),
    ((5,), {"ord": np.inf}),
    ((5,), {"ord": -np.inf}),
    ((5,), {"ord": 0}),
    ((5,), {"ord": 0.5}),
    ((5,), {"ord": -2}),
    ((3, 4), {}),
    ((3, 4), {"ord": "fro"}),
    ((3, 4), {"ord": "nuc"}),
    ((3, 4), {"ord": 2}),
    ((3, 4), {"ord": -2}),
    ((3, 4), {"ord": 1}),
    ((3, 4), {"ord": -1}),
    ((3, 4), {"ord": np.inf}),
    ((3, 4), {"ord": -np.inf}),
    ((2, 3, 4), {}),
    ((2, 3, 4), {"axis": 1, "keepdims": True}),
    ((2, 3, 4), {"axis": (2, 0), "ord": 1}),
    ((2, 3, 4), {"axis": (0, 2), "ord": "nuc", "keepdims": True}),
    ((2, 3, 4), {"keepdims": True}),
]


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_numpy(name):
    fn, args = CASES[name]
    nodes = [dk.variable(f"a{i}", np.shape(a)) for i, a in enumerate(args)]
    at = {f"a{i}": a for i, a in enumerate(args)}
    expected, got = fn(*args), fn(*nodes)
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    got = list(got) if isinstance(got, tuple) else [got]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(dk.evaluate(g, at), e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape,kw", NORMS)
def test_norm_matches_numpy_and_differentiates(shape, kw):
    x = RNG.standard_normal(shape)
    node = dk.variable("x", shape)
    np.testing.assert_allclose(
        dk.evaluate(np.linalg.norm(node, **kw), {"x": x}), np.linalg.norm(x, **kw), rtol=1e-12
    )
    check_grads(lambda x: np.linalg.norm(x, **kw), (x,), order=1)


def test_float32_stays_float32():
    a = spd(3).astype(np.float32)
    b = np.ones(3, np.float32)
    for f in (
        lambda a: np.linalg.det(a),
        lambda a: np.linalg.slogdet(a)[1],
        lambda a: np.sum(np.linalg.solve(a, b)),
        lambda a: np.sum(np.linalg.cholesky(a)),
        lambda a: np.sum(np.linalg.eigh(a)[1][:, 0] ** 2) + np.linalg.eigvalsh(a)[0],
        lambda a: np.linalg.norm(a, 2),
        lambda a: np.sum(np.linalg.qr(a)[1]),
    ):
        g = dk.grad(f)(a)
        assert g.dtype == np.float32


# ---- conventions: ties, kinks, singular matrices -------------------------------------------


def test_norm_subgradient_at_zero_is_zero():
    z = np.zeros(4)
    for kw in ({}, {"ord": 1}, {"ord": 3}, {"ord": np.inf}):
        g = dk.grad(lambda x: np.linalg.norm(x, **kw))(z)
        np.testing.assert_array_equal(g, np.zeros(4))
    np.testing.assert_array_equal(dk.grad(lambda m: np.linalg.norm(m))(np.zeros((2, 3))), 0.0)


def test_eigenvalue_gradients_are_finite_at_repeated_eigenvalues():
    a = np.diag([1.0, 1.0, 2.0])
    g = dk.grad(lambda a: np.sum(np.linalg.eigvalsh(a) ** 2))(a)
    np.testing.assert_allclose(g, 2 * a, atol=1e-14)
    g = dk.grad(lambda a: np.linalg.eigh(a)[0][0])(a)
    assert np.all(np.isfinite(g))
    s = dk.grad(lambda a: np.sum(np.linalg.svd(a, compute_uv=False)))(np.eye(3))
    np.testing.assert_allclose(s, np.eye(3), atol=1e-14)


def test_eigenvector_derivative_at_a_tie_is_not_finite_as_in_jax():
    a = np.diag([1.0, 1.0, 2.0])
    g = dk.grad(lambda a: np.linalg.eigh(a)[1][0, 0])(a)
    assert not np.all(np.isfinite(g))


def test_det_gradient_at_a_singular_matrix_is_the_adjugate():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 5.0]])
    g = dk.grad(np.linalg.det)(a)
    cof = np.array(
        [
            [np.linalg.det(np.delete(np.delete(a, i, 0), j, 1)) * (-1) ** (i + j) for j in range(3)]
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(g, cof, atol=1e-12)


def test_cholesky_and_eigh_gradients_are_symmetric():
    a = spd(4)
    for f in (
        lambda a: np.sum(np.linalg.cholesky(a) * np.arange(16.0).reshape(4, 4)),
        lambda a: np.linalg.eigh(a)[1][1, 2],
    ):
        g = dk.grad(f)(a)
        np.testing.assert_allclose(g, g.T, atol=1e-13)


# ---- bad input, in one line ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda a, v: np.linalg.solve(a, v[:2]), ["solve", "(2,)", "(3, 3)"]),
        (lambda a, v: np.linalg.inv(a[:2]), ["inv", "(2, 3)"]),
        (lambda a, v: np.linalg.cholesky(v), ["cholesky", "(3,)"]),
        (lambda a, v: np.linalg.det(a[:, :2]), ["det", "(3, 2)"]),
        (lambda a, v: np.linalg.svd(a[:2]), ["svd", "full_matrices", "(2, 3)"]),
        (lambda a, v: np.linalg.norm(a, "bad"), ["norm", "'bad'"]),
        (lambda a, v: np.linalg.norm(v, "fro"), ["norm", "'fro'"]),
        (lambda a, v: np.linalg.qr(a, mode="complete"), ["qr", "mode"]),
        (lambda a, v: np.linalg.matrix_power(a, 1.5), ["matrix_power", "1.5"]),
        (lambda a, v: dk.solve_triangular(a, v, trans="C"), ["solve_triangular", "trans"]),
        (lambda a, v: np.linalg.eigh(a, UPLO="X"), ["eigh", "UPLO"]),
    ],
)
def test_bad_input_is_refused_in_one_line(call, words):
    a, v = dk.variable("a", (3, 3)), dk.variable("v", (3,))
    with pytest.raises((ValueError, TypeError)) as err:
        call(a, v)
    text = str(err.value)
    assert "\n" not in text
    for w in words:
        assert w in text, (w, text)


def test_wide_qr_derivative_is_refused_but_its_value_is_numpys():
    a = RNG.standard_normal((2, 4))
    node = dk.variable("a", a.shape)
    q, r = np.linalg.qr(node)
    np.testing.assert_allclose(dk.evaluate(r, {"a": a}), np.linalg.qr(a)[1], rtol=1e-12)
    with pytest.raises(ValueError, match="qr: .*wide"):
        dk.gradient(np.sum(r), {"a": a})

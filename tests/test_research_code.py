"""Thirty short functions of the kind found in research code, written in plain numpy
(nothing diffkit-specific), traced by ``dk.grad`` and checked the way
``jax.test_util.check_grads`` does: forward against reverse mode, both against central
differences, to second order where the function is smooth at the point."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.testing import check_grads

rng = np.random.default_rng(2026)
A = rng.standard_normal((5, 5))
SPD = A @ A.T + 5 * np.eye(5)
X = rng.standard_normal((6, 3))
Y = rng.standard_normal(6)
P = rng.standard_normal((4, 2))  # particle positions


def gp_negative_log_likelihood(log_ell, y=Y, x=X):
    d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    K = np.exp(-0.5 * d2 / np.exp(2 * log_ell)) + 0.1 * np.eye(len(y))
    sign, logdet = np.linalg.slogdet(K)
    return 0.5 * y @ np.linalg.solve(K, y) + 0.5 * logdet


def gp_by_cholesky(log_ell, y=Y, x=X):
    d2 = np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    K = np.exp(-0.5 * d2 / np.exp(2 * log_ell)) + 0.1 * np.eye(len(y))
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L, y)
    return 0.5 * alpha @ alpha + np.sum(np.log(np.diagonal(L)))


def attention(q, k=X, v=X):
    scores = np.einsum("id,jd->ij", q, k) / np.sqrt(q.shape[-1])
    scores = scores - scores.max(axis=-1, keepdims=True)
    w = np.exp(scores)
    w = w / w.sum(axis=-1, keepdims=True)
    return np.sum(np.einsum("ij,jd->id", w, v) ** 2)


def layer_norm(x):
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return np.sum(((x - mu) / np.sqrt(var + 1e-5)) ** 3)


def z_score(x):
    return np.sum(np.tanh((x - np.mean(x)) / np.std(x, ddof=1)))


def lennard_jones(p):
    diff = p[:, None, :] - p[None, :, :]
    i, j = np.triu_indices(len(p), k=1)
    r2 = np.sum(diff[i, j] ** 2, axis=-1)
    inv6 = 1.0 / r2**3
    return np.sum(4 * (inv6**2 - inv6))


def ring_of_springs(p):
    return 0.5 * np.sum((np.linalg.norm(p - np.roll(p, 1, axis=0), axis=1) - 1.0) ** 2)


def total_variation(img):
    dx, dy = np.diff(img, axis=0)[:, :-1], np.diff(img, axis=1)[:-1]
    return np.sum(np.sqrt(dx**2 + dy**2 + 1e-3))


def trimmed_mean(x):
    s = np.sort(x)
    return np.mean(s[1:-1] ** 2)


def ridge_solution(lam, x=X, y=Y):
    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
    return np.sum((x @ w - y) ** 2)


def gaussian_log_density(mu, cov=SPD, z=Y[:5]):
    d = z - mu
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (d @ np.linalg.inv(cov) @ d + logdet + len(z) * np.log(2 * np.pi))


def softmax_cross_entropy(logits, labels=np.array([0, 2, 1, 1])):
    lse = np.log(np.sum(np.exp(logits), axis=1))
    return np.mean(lse - logits[np.arange(len(labels)), labels])


def logistic_loss(w, x=X, y=(Y > 0).astype(float)):
    z = x @ w
    return np.mean(np.logaddexp(0, z) - y * z)


def huber(r):
    a = np.abs(r)
    return np.sum(np.where(a < 1.0, 0.5 * r**2, a - 0.5))


def smooth_l1_clipped(x):
    return np.sum(np.clip(x, -1.0, 1.0) * x)


def bilinear_form(x, M=SPD):
    return x @ M @ x + np.trace(np.outer(x, x))


def kron_quadratic(x):
    return np.sum(np.kron(np.eye(2), np.outer(x, x)))


def frobenius_procrustes(R):
    return np.linalg.norm(R @ X[:3].T - X[3:].T, "fro") ** 2


def log_det_spd(L):
    M = L @ L.T + np.eye(len(L))
    return np.linalg.slogdet(M)[1]


def eigen_energy(S):
    w = np.linalg.eigvalsh(S + S.T)
    return np.sum(w**2)


def nuclear_norm(M):
    return np.sum(np.linalg.svd(M, compute_uv=False))


def cumulative_returns(r):
    return np.sum(np.cumprod(1 + 0.1 * r))


def running_max_drawdown(r):
    wealth = np.cumsum(r)
    peak = np.maximum.accumulate(wealth)
    return np.sum((peak - wealth) ** 2)


def finite_difference_laplacian(u):
    gx = np.gradient(u, axis=0)
    gy = np.gradient(u, axis=1)
    return np.sum(gx**2 + gy**2)


def polynomial_fit_residual(c, t=np.linspace(0, 1, 7)):
    V = np.stack([t**k for k in range(len(c))], axis=1)
    return np.sum((V @ c - np.sin(3 * t)) ** 2)


def batched_matrix_products(W):
    H = np.tanh(np.einsum("bij,jk->bik", W, SPD[:3, :3]))
    return np.sum(np.swapaxes(H, 1, 2) ** 2)


def padded_convolution_1d(x):
    k = np.array([0.25, 0.5, 0.25])
    xp = np.pad(x, 1, mode="edge")
    return np.sum((xp[:-2] * k[0] + xp[1:-1] * k[1] + xp[2:] * k[2]) ** 2)


def masked_mean(x, mask=np.array([True, False, True, True, False, True])):
    return np.mean(x[mask] ** 2) + np.sum(np.expand_dims(x, 0) @ np.atleast_2d(x).T)


def complex_wave_power(z):
    return np.sum(np.abs(z * np.exp(1j)) ** 2)


def kl_divergence(logits, q=np.full(5, 0.2)):
    p = np.exp(logits - np.max(logits))
    p = p / np.sum(p)
    return np.sum(p * (np.log(p) - np.log(q)))


CASES = [
    (gp_negative_log_likelihood, (0.3,), 2),
    (gp_by_cholesky, (0.3,), 2),
    (attention, (rng.standard_normal((4, 3)),), 2),
    (layer_norm, (rng.standard_normal((3, 5)),), 2),
    (z_score, (rng.standard_normal(7),), 2),
    (lennard_jones, (P * 1.5,), 2),
    (ring_of_springs, (P,), 2),
    (total_variation, (rng.standard_normal((4, 5)),), 2),
    (trimmed_mean, (rng.standard_normal(6),), 2),
    (ridge_solution, (0.7,), 2),
    (gaussian_log_density, (rng.standard_normal(5),), 2),
    (softmax_cross_entropy, (rng.standard_normal((4, 3)),), 2),
    (logistic_loss, (rng.standard_normal(3),), 2),
    (huber, (np.array([0.3, -2.0, 1.7, -0.4]),), 2),
    (smooth_l1_clipped, (np.array([0.3, -2.0, 1.7, -0.4]),), 2),
    (bilinear_form, (rng.standard_normal(5),), 2),
    (kron_quadratic, (rng.standard_normal(3),), 2),
    (frobenius_procrustes, (rng.standard_normal((3, 3)),), 2),
    (log_det_spd, (rng.standard_normal((3, 3)),), 2),
    (eigen_energy, (rng.standard_normal((4, 4)),), 2),
    (nuclear_norm, (rng.standard_normal((4, 3)),), 1),
    (cumulative_returns, (rng.standard_normal(6),), 2),
    (running_max_drawdown, (rng.standard_normal(8),), 2),
    (finite_difference_laplacian, (rng.standard_normal((4, 5)),), 2),
    (polynomial_fit_residual, (rng.standard_normal(4),), 2),
    (batched_matrix_products, (rng.standard_normal((2, 4, 3)),), 2),
    (padded_convolution_1d, (rng.standard_normal(6),), 2),
    (masked_mean, (rng.standard_normal(6),), 2),
    (kl_divergence, (rng.standard_normal(5),), 2),
]


@pytest.mark.parametrize("f,args,order", CASES, ids=[c[0].__name__ for c in CASES])
def test_research_function_traces_and_differentiates(f, args, order):
    dk.grad(f)(*args)  # traces the unchanged numpy function
    check_grads(f, args, order=order)


def test_a_real_loss_of_complex_parameters():
    z = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    np.testing.assert_allclose(dk.grad(complex_wave_power)(z), 2 * np.conj(z), rtol=1e-14)

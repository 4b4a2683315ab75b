"""The fused activation records (diffkit/ops/activations.py) against independent truths:
the float32 normal CDF of GELU against scipy's float64 ``ndtr`` on a dense grid, the
branches joined by mask arithmetic exactly equal to the branch taken, float32 kept."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

import diffkit as dk
from diffkit.ops import activations as act


def _value_and_grad(build, x):
    v = dk.variable("x", x.shape)
    out = build(v)
    return dk.evaluate(out, {"x": x}), dk.gradient(dk.sum(out), {"x": x})["x"]


def test_float32_gelu_follows_the_normal_cdf_to_float32_rounding():
    """x Φ(x) and Φ(x) + x φ(x) in float32 against float64 scipy at the same float32
    points: within 2.5e-7 absolutely or relatively (the accuracy of PyTorch's float32
    0.5 x (1 + erf(x / sqrt 2))), and 1/2 exactly at ±0."""
    x = np.concatenate([np.linspace(-15, 15, 60001), [0.0, -0.0]]).astype(np.float32)
    y, g = _value_and_grad(act.gelu, x)
    assert y.dtype == np.float32 and g.dtype == np.float32
    x64 = x.astype(np.float64)
    phi = scipy.special.ndtr(x64)
    np.testing.assert_allclose(y, x64 * phi, rtol=2.5e-7, atol=2.5e-7)
    want = phi + x64 * np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(g, want, rtol=2.5e-7, atol=2.5e-7)
    assert g[-1] == g[-2] == 0.5
    # relative accuracy where Φ >= 1/2: a few units in the last place
    right = x > 0
    assert np.max(np.abs(y[right] / (x64[right] * phi[right]) - 1)) < 4e-7


def test_float64_gelu_is_x_times_scipys_ndtr():
    x = np.linspace(-12, 12, 2001)
    y, g = _value_and_grad(act.gelu, x)
    phi = scipy.special.ndtr(x)
    np.testing.assert_allclose(y, x * phi, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(g, phi + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi), atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_joined_branches_give_the_taken_branch_exactly(dtype):
    """Mask arithmetic m a + (1 - m) b returns a branch bit for bit: leaky ReLU is x (and
    s x), ELU's slope is 1 right of 0, softplus' linear tail is x, hardtanh is clip."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(4000) * 5).astype(dtype)
    y, g = _value_and_grad(lambda v: act.leaky_relu(v, 0.37), x)
    assert y.dtype == dtype and g.dtype == dtype
    pos = x > 0
    assert np.array_equal(y[pos], x[pos]) and np.array_equal(y[~pos], x[~pos] * dtype(0.37))
    assert np.all(g[pos] == 1) and np.all(g[~pos] == dtype(0.37))
    y, g = _value_and_grad(lambda v: act.leaky_relu(v, 2.5), x)
    assert np.array_equal(y[pos], x[pos]) and np.array_equal(y[~pos], x[~pos] * dtype(2.5))
    y, g = _value_and_grad(lambda v: act.elu(v, 0.7), x)
    assert np.array_equal(y[pos], x[pos]) and np.all(g[pos] == 1)
    np.testing.assert_allclose(g[~pos], 0.7 * np.exp(x[~pos].astype(float)), rtol=1e-6)
    y, g = _value_and_grad(lambda v: act.softplus_beta(v, 2.0, 3.0), x)
    linear = 2.0 * x > 3.0
    assert np.array_equal(y[linear], x[linear]) and np.all(g[linear] == 1)
    smooth = np.logaddexp(0, 2.0 * x[~linear].astype(float)) / 2
    np.testing.assert_allclose(y[~linear], smooth, rtol=1e-6 if dtype == np.float32 else 1e-15)
    y, g = _value_and_grad(lambda v: act.hardtanh(v, -0.5, 2.0), x)
    assert np.array_equal(y, np.clip(x, dtype(-0.5), dtype(2.0)))
    assert np.array_equal(g, ((x > -0.5) & (x < 2.0)).astype(dtype))


def test_softplus_with_a_negative_beta_keeps_pytorchs_formula():
    x = np.linspace(-3, 3, 13)
    y, g = _value_and_grad(lambda v: act.softplus_beta(v, -2.0, 1.0), x)
    z = -2.0 * x
    np.testing.assert_allclose(y, np.where(z > 1.0, x, np.logaddexp(0, z) / -2.0), rtol=1e-14)
    np.testing.assert_allclose(g, np.where(z > 1.0, 1.0, scipy.special.expit(z)), rtol=1e-14)

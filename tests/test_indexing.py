"""Indexing, slicing and joining: values against numpy and loops, gradients against central
differences, over random shapes, steps and repeated indices."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk

RNG = np.random.default_rng(3)


def _random_slice(rng, size):
    step = int(rng.choice([-3, -2, -1, 1, 2]))
    start = int(rng.integers(-size, size)) if rng.uniform() < 0.7 else None
    stop = int(rng.integers(-size - 1, size + 1)) if rng.uniform() < 0.7 else None
    return slice(start, stop, step)


def _check(build, x):
    """Value equals numpy's; gradient of a random weighting equals central differences."""
    node = dk.variable("x", x.shape)
    out = build(node)
    np.testing.assert_array_equal(dk.evaluate(out, {"x": x}), build(x))
    if out.size == 0:
        return
    weights = RNG.standard_normal(out.shape)
    f = dk.sum(out * dk.const(weights)) if out.shape else out * float(weights)
    grad = dk.gradient(f, {"x": x})["x"]
    fd = dk.gradient(f, {"x": x}, method="central")["x"]
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
    # the loop reference: d/dx_k sum(w * build(x)) by perturbing one entry at a time
    loop = np.zeros(x.size)
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = 1.0
        loop[k] = np.sum(weights * (build(x + e.reshape(x.shape)) - build(x)))
    np.testing.assert_allclose(grad.ravel(), loop, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(25))
def test_basic_slicing_with_any_step(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, rng.integers(1, 4)))
    x = rng.standard_normal(shape)
    index = tuple(
        _random_slice(rng, d) if rng.uniform() < 0.7 else int(rng.integers(-d, d)) for d in shape
    )
    _check(lambda a: a[index], x)


@pytest.mark.parametrize("seed", range(10))
def test_integer_array_indexing_adds_up_repeated_indices(seed):
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((4, 3))
    idx = rng.integers(-4, 4, int(rng.integers(1, 8)))
    _check(lambda a: a[idx], x)
    cols = rng.integers(0, 3, (2, 2))
    _check(lambda a: a[:, cols], x)


def test_gradient_of_a_repeated_gather_counts_each_use():
    v = dk.variable("v", (3,))
    g = dk.gradient(dk.sum(v[np.array([0, 0, 0, 2])]), {"v": np.ones(3)})["v"]
    assert g.tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "build",
    [
        lambda a: np.concatenate([a, a[::-1], a * 2], axis=0),
        lambda a: np.concatenate([a, a], axis=-1),
        lambda a: np.stack([a, a + 1, a[:, ::-1]], axis=1),
        lambda a: np.split(a, 2, axis=0)[1] * np.split(a, [1], axis=1)[0][:2],
        lambda a: np.pad(a, ((1, 2), (0, 3))),
        lambda a: np.repeat(a, 3, axis=1),
        lambda a: np.repeat(a, 2),
        lambda a: np.tile(a, (2, 3)),
        lambda a: np.tile(a, 2),
        lambda a: np.flip(a) + np.flip(a, axis=0),
        lambda a: a[None, ..., 1:],
    ],
)
def test_joining_and_composed_ops(build):
    _check(build, RNG.standard_normal((4, 3)))


def test_index_errors_name_the_problem():
    W = dk.variable("W", (3, 4))
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 of size 3"):
        W[3]
    with pytest.raises(IndexError, match="too many indices"):
        W[0, 0, 0]
    with pytest.raises(IndexError, match="out of bounds for axis 0"):
        W[np.array([0, 5])]
    with pytest.raises(dk.ShapeError, match="concatenate: shapes"):
        np.concatenate([W, dk.variable("V", (3, 5))], axis=0)
    with pytest.raises(ValueError, match="pad: mode='median' is not supported"):
        np.pad(W, 1, mode="median")

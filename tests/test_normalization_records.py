"""The records behind the norm layers: values against numpy, the derivative against the
separate-op graph it replaces, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit import ops

RNG = np.random.default_rng(4)


@pytest.mark.parametrize("axis", [(0, 2, 3), (1, 2, 3), (2, 3), 1])
def test_moments_and_normalize_against_numpy_and_the_separate_ops(axis):
    x = RNG.standard_normal((3, 4, 2, 5)) * 3 + 1
    v = dk.variable("x", x.shape)
    axes = (axis,) if isinstance(axis, int) else axis
    stats = dk.evaluate(dk.moments(v, axis), {"x": x})
    np.testing.assert_allclose(stats[0], x.mean(axis=axes, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(stats[1], x.var(axis=axes, keepdims=True), rtol=1e-13)
    z = dk.normalize(v, axis, 1e-3)
    mean = ops.mean(v, axes, keepdims=True)
    centred = v - mean
    separate = centred / ops.sqrt(ops.mean(centred * centred, axes, keepdims=True) + 1e-3)
    w = dk.const(RNG.standard_normal(x.shape))
    for method in ("reverse", "forward"):
        np.testing.assert_allclose(
            dk.gradient(dk.sum(z * w), {"x": x}, method=method)["x"],
            dk.gradient(dk.sum(separate * w), {"x": x}, method=method)["x"],
            rtol=1e-10,
            atol=1e-12,
        )
    # second order through normalize_grad's own rules
    small = {"x": x[:1, :2, :1, :3]}
    s = dk.variable("x", (1, 2, 1, 3))
    m2 = ops.mean(s, (2, 3), keepdims=True)
    c2 = s - m2
    ref = dk.sum(c2 / ops.sqrt(ops.mean(c2 * c2, (2, 3), keepdims=True) + 1e-3) * dk.const(
        np.arange(6.0).reshape(1, 2, 1, 3)))  # fmt: skip
    new = dk.sum(dk.normalize(s, (2, 3), 1e-3) * dk.const(np.arange(6.0).reshape(1, 2, 1, 3)))
    np.testing.assert_allclose(
        np.asarray(dk.hessian(new, small)), np.asarray(dk.hessian(ref, small)), atol=1e-10
    )


@pytest.mark.parametrize("bad", ["a", -1.0, float("nan"), True, None])
def test_normalize_refuses_a_bad_eps(bad):
    with pytest.raises(ValueError, match="normalize: eps must be a non-negative number"):
        dk.normalize(dk.variable("x", (3, 4)), 1, bad)


def test_shapes_are_checked_with_names():
    x = dk.variable("x", (3, 4))
    with pytest.raises(dk.ShapeError, match="moments: axis 5 is out of range"):
        dk.moments(x, 5)
    with pytest.raises(dk.ShapeError, match="normalize_grad: cotangent"):
        dk.normalize_grad(x, x, dk.variable("s", (2, 3)), 1)

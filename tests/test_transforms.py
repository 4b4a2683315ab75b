"""JAX-style transforms of plain numpy functions, against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk

RNG = np.random.default_rng(1)


def fun(x):
    return np.sum(np.sin(x) * x)


def net(params, x):
    hidden = np.tanh(x @ params["W1"] + params["b1"])
    return np.mean((hidden @ params["W2"]) ** 2)


def _central(f, x, h=1e-6):
    """Central differences of f (any output shape) in the array x."""
    x = np.asarray(x, dtype=float)
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.moveaxis(np.array(cols), 0, -1).reshape(np.shape(f(x)) + x.shape)


def test_grad_of_a_plain_numpy_function_against_central_differences():
    x = RNG.uniform(-2, 2, 6)
    np.testing.assert_allclose(dk.grad(fun)(x), _central(fun, x), rtol=1e-8)
    value, g = dk.value_and_grad(fun)(x)
    assert value == pytest.approx(fun(x), rel=1e-15)
    np.testing.assert_allclose(g, dk.grad(fun)(x), rtol=1e-15)


def test_grad_over_a_pytree_of_parameters():
    params = {
        "W1": RNG.standard_normal((3, 4)),
        "b1": RNG.standard_normal(4),
        "W2": RNG.standard_normal((4, 2)),
    }
    x = RNG.standard_normal((5, 3))
    g = dk.grad(net)(params, x)
    assert set(g) == {"W1", "b1", "W2"}
    for key in params:

        def partial(v, key=key):
            return net({**params, key: v}, x)

        np.testing.assert_allclose(g[key], _central(partial, params[key]), rtol=1e-7, atol=1e-9)
    gx = dk.grad(net, argnums=1)(params, x)
    np.testing.assert_allclose(gx, _central(lambda v: net(params, v), x), rtol=1e-7, atol=1e-9)


def test_jacobians_and_hessian_against_central_differences():
    def f(x):
        return np.tanh(np.cumsum(x) * x)

    x = RNG.uniform(-1, 1, 4)
    expected = _central(f, x)
    np.testing.assert_allclose(dk.jacrev(f)(x), expected, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(dk.jacfwd(f)(x), expected, rtol=1e-7, atol=1e-10)
    H = dk.hessian(fun)(x)
    np.testing.assert_allclose(H, _central(dk.grad(fun), x), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(H, H.T, atol=1e-14)


def test_jvp_and_vjp_satisfy_the_adjoint_identity():
    def f(x, y):
        return np.sin(x) * y + np.exp(x * y)

    x, y = RNG.uniform(-1, 1, 3), RNG.uniform(-1, 1, 3)
    tx, ty = RNG.standard_normal(3), RNG.standard_normal(3)
    ct = RNG.standard_normal(3)
    out, tangent = dk.jvp(f, (x, y), (tx, ty))
    out2, back = dk.vjp(f, x, y)
    cx, cy = back(ct)
    np.testing.assert_allclose(out, f(x, y), rtol=1e-15)
    np.testing.assert_allclose(out2, out, rtol=1e-15)
    assert np.dot(ct, tangent) == pytest.approx(np.dot(cx, tx) + np.dot(cy, ty), rel=1e-12)
    h = 1e-6
    np.testing.assert_allclose(
        tangent, (f(x + h * tx, y + h * ty) - f(x - h * tx, y - h * ty)) / (2 * h), rtol=1e-7
    )


def test_tracing_is_cached_per_shapes_and_dtypes():
    calls = []

    def f(x):
        calls.append(1)
        return np.sum(x**2)

    g = dk.grad(f)
    for _ in range(3):
        g(np.ones(3))
    assert len(calls) == 1 and g.traces == 1
    g(np.ones(4))  # a new shape traces again
    g(np.ones(3, np.float32))  # so does a new dtype
    assert g.traces == 3


def test_float32_stays_float32_and_python_floats_stay_floats():
    g = dk.grad(fun)(np.ones(3, np.float32))
    assert g.dtype == np.float32
    assert isinstance(dk.grad(lambda x: x * x)(3.0), float)
    assert dk.grad(lambda x: x * x)(3.0) == 6.0


def test_errors_name_the_argument_and_the_shape():
    with pytest.raises(ValueError, match="must return a scalar, got shape \\(3,\\)"):
        dk.grad(np.sin)(np.ones(3))
    with pytest.raises(TypeError, match="argument arg0\\['a'\\].*str"):
        dk.grad(lambda p: p["a"])({"a": "text"})
    with pytest.raises(ValueError, match="argnums 2 is out of range for 1 arguments"):
        dk.grad(fun, argnums=2)(np.ones(2))
    with pytest.raises(ValueError, match="tangent of arg0 has shape \\(2,\\)"):
        dk.jvp(np.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(TypeError, match="takes a function"):
        dk.grad(3)


def test_node_forms_of_hessian_jvp_vjp_still_work():
    x = dk.variable("x")
    assert dk.hessian(x**3, {"x": 1.0}).tolist() == [[6.0]]
    assert dk.jvp(dk.sin(x), {"x": 0.0}, {"x": 2.0}) == (0.0, 2.0)
    assert dk.vjp(x * 3, {"x": 1.0}, 2.0)[1] == {"x": 6.0}

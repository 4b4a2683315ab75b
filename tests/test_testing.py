"""diffkit.testing: checking hand-written backward passes, as a course exercise writes them."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.testing import check_gradient, check_grads, numerical_gradient

RNG = np.random.default_rng(2)
X = RNG.standard_normal((8, 3))
Y = RNG.standard_normal((8, 4))


def forward(W1, W2):
    """A two-layer network's mean squared error, in plain numpy."""
    hidden = np.maximum(X @ W1, 0.0)
    return np.mean((hidden @ W2 - Y) ** 2)


def backward(W1, W2, *, relu_mask=True, transpose=False, mean=True):
    """Its hand-written gradient, with switches for three classic mistakes."""
    pre = X @ W1
    hidden = np.maximum(pre, 0.0)
    err = hidden @ W2 - Y
    d_out = 2 * err / (err.size if mean else 1)
    dW2 = (d_out.T @ hidden) if transpose else (hidden.T @ d_out)  # W2 is square
    d_hidden = d_out @ W2.T
    if relu_mask:
        d_hidden = d_hidden * (pre > 0)
    dW1 = X.T @ d_hidden
    return dW1, dW2


W1, W2 = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 4))


def test_a_right_backward_passes_against_reverse_mode_and_a_black_box():
    check_gradient(forward, lambda a, b: backward(a, b), W1, W2, argnums=(0, 1))
    check_gradient(forward, lambda a, b: backward(a, b), W1, W2, argnums=(0, 1), method="central")


@pytest.mark.parametrize(
    "mistake, argument",
    [({"relu_mask": False}, 0), ({"transpose": True}, 1), ({"mean": False}, 0)],
)
def test_classic_mistakes_are_caught_naming_the_argument(mistake, argument):
    with pytest.raises(AssertionError) as info:
        check_gradient(
            forward, lambda a, b: backward(a, b, **mistake), W1, W2, argnums=(0, 1), rtol=1e-6
        )
    message = str(info.value)
    assert f"gradient of argument {argument} is wrong at index" in message
    assert "hand-written" in message and "reverse mode" in message and "tolerance" in message


def test_black_boxes_are_checked_by_finite_differences():
    def opaque(x):  # not traceable: it leaves numpy for Python floats
        return float(sum(np.sin(v) * v for v in np.asarray(x).tolist()))

    x = RNG.uniform(-1, 1, 4)
    check_gradient(opaque, lambda x: np.sin(x) + x * np.cos(x), x)
    with pytest.raises(AssertionError, match="richardson"):
        check_gradient(opaque, lambda x: np.sin(x), x)
    with pytest.raises(AssertionError, match="has shape \\(3,\\), expected \\(4,\\)"):
        check_gradient(opaque, lambda x: np.zeros(3), x)


@pytest.mark.parametrize("method", dk.SCHEMES)
def test_numerical_gradient_of_a_black_box(method):
    x = RNG.uniform(0.5, 1.5, 3)
    g, info = numerical_gradient(
        lambda v: np.prod(v) * np.exp(v[0]), x, method=method, full_output=True
    )
    exact = np.prod(x) * np.exp(x[0]) / x + np.array([np.prod(x) * np.exp(x[0]), 0, 0])
    tolerance = {"forward-difference": 1e-6, "backward-difference": 1e-6}.get(method, 1e-9)
    np.testing.assert_allclose(g, exact, rtol=tolerance)
    assert info.evaluations > 0
    assert (info.error_estimate is not None) == (method == "richardson")


def test_numerical_gradient_of_a_vector_function_and_errors():
    J = numerical_gradient(np.sin, np.array([0.0, 1.0]), method="complex-step")
    np.testing.assert_allclose(J, np.diag(np.cos([0.0, 1.0])), rtol=1e-15)
    with pytest.raises(ValueError, match="unknown method"):
        numerical_gradient(np.sin, 1.0, method="nope")
    with pytest.raises(ValueError, match="argnums 3"):
        numerical_gradient(np.sin, 1.0, argnums=3)


def test_check_grads_as_jax():
    check_grads(lambda x, y: np.sum(np.tanh(x) * y), (np.ones(3), np.arange(3.0)), order=2)
    check_grads(lambda x: np.sin(x) * x, (np.linspace(-1, 1, 4),), order=2)
    with pytest.raises(ValueError, match="modes"):
        check_grads(np.sin, (1.0,), modes=("sideways",))

"""Ops and their gradients against PyTorch in float64, including the conventions at kinks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffkit as dk

UNARY = {
    "exp": torch.exp,
    "log": torch.log,
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "tanh": torch.tanh,
    "sqrt": torch.sqrt,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "abs": torch.abs,
    "log1p": torch.log1p,
    "softplus": torch.nn.functional.softplus,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_against_torch(name):
    rng = np.random.default_rng(0)
    v = rng.uniform(0.2, 1.4, (5, 4)) * rng.choice([-1, 1], (5, 4))
    if name in ("log", "sqrt"):
        v = np.abs(v)
    v[0, :2] = 0.0 if name in ("relu", "abs") else v[0, :2]  # the kink itself
    x = dk.variable("x", v.shape)
    w = rng.standard_normal(v.shape)
    f = dk.sum(getattr(dk, name)(x) * dk.const(w))
    t = torch.tensor(v, requires_grad=True)
    (UNARY[name](t) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(
        dk.evaluate(f, {"x": v}),
        float((UNARY[name](torch.tensor(v)) * torch.tensor(w)).sum()),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        dk.gradient(f, {"x": v})["x"], t.grad.numpy(), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_binary_ties_against_torch(name):
    a = np.array([1.0, 2.0, 3.0, -1.0])
    b = np.array([1.0, 1.0, 4.0, -1.0])
    x, y = dk.variable("a", (4,)), dk.variable("b", (4,))
    g = dk.gradient(dk.sum(getattr(dk, name)(x, y)), {"a": a, "b": b})
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    getattr(torch, name)(ta, tb).sum().backward()
    np.testing.assert_array_equal(g["a"], ta.grad.numpy())
    np.testing.assert_array_equal(g["b"], tb.grad.numpy())


def test_log_softmax_and_logsumexp_against_torch():
    rng = np.random.default_rng(1)
    v = rng.standard_normal((4, 6)) * 30
    w = rng.standard_normal((4, 6))
    x = dk.variable("x", v.shape)
    f = dk.sum(dk.log_softmax(x, axis=1) * dk.const(w)) + dk.sum(dk.logsumexp(x, axis=0))
    t = torch.tensor(v, requires_grad=True)
    ft = (torch.log_softmax(t, 1) * torch.tensor(w)).sum() + torch.logsumexp(t, 0).sum()
    ft.backward()
    assert dk.evaluate(f, {"x": v}) == pytest.approx(float(ft.detach()), rel=1e-12)
    np.testing.assert_allclose(
        dk.gradient(f, {"x": v})["x"], t.grad.numpy(), rtol=1e-10, atol=1e-12
    )


def test_max_reduction_against_torch_amax():
    # ties split evenly, as torch.amax (torch.max(dim) picks one index)
    v = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    x = dk.variable("x", v.shape)
    g = dk.gradient(dk.sum(dk.max(x, axis=1)), {"x": v})["x"]
    t = torch.tensor(v, requires_grad=True)
    torch.amax(t, dim=1).sum().backward()
    np.testing.assert_array_equal(g, t.grad.numpy())

"""autograd-style numpy functions through diffkit's transforms, against PyTorch float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffkit as dk

RNG = np.random.default_rng(7)

# (numpy form, torch form) of functions written the way autograd's tests write them
CASES = {
    "sin_times_x": (lambda x: np.sum(np.sin(x) * x), lambda x: torch.sum(torch.sin(x) * x)),
    "log1p_tanh": (
        lambda x: np.mean(np.log1p(np.tanh(x) ** 2)),
        lambda x: torch.mean(torch.log1p(torch.tanh(x) ** 2)),
    ),
    "maximum_where": (
        lambda x: np.sum(np.maximum(x, 0.1) * np.where(x > 0, x, -2 * x)),
        lambda x: torch.sum(torch.maximum(x, torch.tensor(0.1)) * torch.where(x > 0, x, -2 * x)),
    ),
    "slices_and_joins": (
        lambda x: np.sum(np.concatenate([x[::-1], x[1:] * x[:-1]]) ** 2),
        lambda x: torch.sum(torch.cat([torch.flip(x, (0,)), x[1:] * x[:-1]]) ** 2),
    ),
    "new_functions": (
        lambda x: np.sum(np.arctan(x) * np.cbrt(x + 3) + np.expm1(x) * np.hypot(x, 1.0)),
        lambda x: torch.sum(
            torch.arctan(x) * torch.sign(x + 3) * torch.abs(x + 3) ** (1 / 3)
            + torch.expm1(x) * torch.hypot(x, torch.tensor(1.0))
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_and_hessian_against_torch(name):
    np_f, torch_f = CASES[name]
    x = RNG.uniform(-1.5, 1.5, 5)
    t = torch.tensor(x, requires_grad=True)
    expected = torch.autograd.grad(torch_f(t), t)[0].numpy()
    np.testing.assert_allclose(dk.grad(np_f)(x), expected, rtol=1e-12, atol=1e-14)
    H = torch.autograd.functional.hessian(torch_f, torch.tensor(x)).numpy()
    np.testing.assert_allclose(dk.hessian(np_f)(x), H, rtol=1e-10, atol=1e-12)


def test_jacobians_against_torch_func():
    def np_f(x):
        return np.tanh(np.cumsum(x)) * x[::-1]

    def torch_f(x):
        return torch.tanh(torch.cumsum(x, 0)) * torch.flip(x, (0,))

    x = RNG.uniform(-1, 1, 6)
    expected = torch.func.jacrev(torch_f)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(dk.jacrev(np_f)(x), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dk.jacfwd(np_f)(x), expected, rtol=1e-12, atol=1e-14)

"""Hessians and Jacobians of every method at float32 and complex points, against PyTorch
in float64 and complex128.

PyTorch's reverse mode gives, for a holomorphic f and a cotangent of 1, the conjugate
of f'(z) (its convention for complex autograd); the holomorphic derivative, which diffkit
returns as ``jax.hessian(f, holomorphic=True)`` does, is its conjugate. Hessians are
reverse over reverse, conjugated at each level.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffkit as dk

pytestmark = pytest.mark.filterwarnings("error")

ONE_SIDED = ("forward-difference", "backward-difference")
EXACT = ("forward", "reverse", "symbolic")

# (diffkit graph builder, torch function) on a vector of length 3
CASES = {
    "poly_trig": (
        lambda x: dk.sum(x**3 * dk.sin(x)) + x[0] * x[1] * x[2],
        lambda x: torch.sum(x**3 * torch.sin(x)) + x[0] * x[1] * x[2],
    ),
    "exp_log_tanh": (
        lambda x: dk.sum(dk.exp(x[::-1] * x) * dk.log(x + 2.0)) + dk.sum(dk.tanh(x)) ** 2,
        lambda x: (
            torch.sum(torch.exp(torch.flip(x, (0,)) * x) * torch.log(x + 2.0))
            + torch.sum(torch.tanh(x)) ** 2
        ),
    ),
    "matmul_sqrt": (
        lambda x: dk.sum(dk.sqrt(x + 3.0) * (x @ dk.const(np.arange(9.0).reshape(3, 3) / 9))),
        lambda x: torch.sum(
            torch.sqrt(x + 3.0) * (x @ (torch.arange(9.0).reshape(3, 3) / 9).to(x.dtype))
        ),
    ),
}

POINTS = {
    "float32": np.array([0.3, -0.7, 1.1], np.float32),
    "float64": np.array([0.3, -0.7, 1.1]),
    "complex64": np.array([0.3 + 0.2j, -0.7 + 0.5j, 1.1 - 0.4j], np.complex64),
    "complex128": np.array([0.3 + 0.2j, -0.7 + 0.5j, 1.1 - 0.4j]),
}


def torch_gradient_and_hessian(torch_f, point):
    """f'(z) and f''(z) in float64 / complex128 (holomorphic derivatives for complex z)."""
    wide = np.complex128 if np.iscomplexobj(point) else np.float64
    z = torch.tensor(point.astype(wide), requires_grad=True)
    one = torch.ones((), dtype=z.dtype)
    (g,) = torch.autograd.grad(torch_f(z), z, grad_outputs=one, create_graph=True)
    g = g.conj()  # PyTorch: conj(f'(z)) for a holomorphic f; identity for real z
    rows = [
        torch.autograd.grad(g[i], z, grad_outputs=one, retain_graph=True)[0].conj()
        for i in range(len(point))
    ]
    return g.detach().resolve_conj().numpy(), torch.stack(rows).detach().resolve_conj().numpy()


def _tolerance(method, point, order):
    single = np.finfo(point.dtype).eps > 1e-10
    if method in EXACT:
        return 1e-5 if single else 1e-12
    if order == 2:
        return (5e-2 if single else 2e-4) if method in ONE_SIDED else (2e-2 if single else 1e-6)
    return (5e-3 if single else 1e-6) if method in ONE_SIDED else (2e-3 if single else 1e-8)


def _check(got, truth, point, method, order):
    got = np.asarray(got)
    assert got.dtype == point.dtype, (method, got.dtype)
    err = np.max(np.abs(got.astype(np.complex128) - truth)) / np.max(np.abs(truth))
    assert err <= _tolerance(method, point, order), (method, str(point.dtype), err)


@pytest.mark.parametrize("kind", sorted(POINTS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_method_against_torch(case, kind):
    build, torch_f = CASES[case]
    point = POINTS[kind]
    x = dk.variable("x", (3,))
    f = build(x)
    gradient_graph = dk.grad_graph(f, "x")  # a vector function: its Jacobian is the Hessian
    grad_truth, hess_truth = torch_gradient_and_hessian(torch_f, point)
    at = {"x": point}
    for method in dk.methods():
        if method == "complex-step" and np.iscomplexobj(point):
            with pytest.raises(ValueError, match="complex-step: the point is complex"):
                dk.hessian(f, at, method=method)
            continue
        _check(dk.gradient(f, at, method=method)["x"], grad_truth, point, method, 1)
        _check(dk.hessian(f, at, method=method), hess_truth, point, method, 2)
        if method != "symbolic" or case != "exp_log_tanh":  # SymPy's swell: seconds
            _check(
                dk.jacobian(gradient_graph, at, method=method, wrt="x"),
                hess_truth,
                point,
                method,
                1 if method not in EXACT else 2,
            )

"""Complex differentiation against PyTorch complex128: for a real-valued loss of complex
parameters PyTorch's gradient is df/dx + i df/dy, the conjugate of JAX's convention that
diffkit follows."""

import numpy as np
import pytest
import torch

import diffkit as dk

rng = np.random.default_rng(3)
Z = rng.standard_normal(5) + 1j * rng.standard_normal(5)

LOSSES = {
    "abs": (lambda z: np.sum(np.abs(z) ** 3), lambda t: torch.sum(torch.abs(t) ** 3)),
    "real-imag": (
        lambda z: np.sum(np.real(z) * np.imag(z) ** 2),
        lambda t: torch.sum(torch.real(t) * torch.imag(t) ** 2),
    ),
    "conj": (
        lambda z: np.real(np.sum(np.conj(z) * np.sin(z))),
        lambda t: torch.real(torch.sum(torch.conj(t) * torch.sin(t))),
    ),
    "angle": (lambda z: np.sum(np.angle(z) * np.abs(z)), lambda t: torch.sum(t.angle() * t.abs())),
    "constant": (
        lambda z: np.sum(np.abs(z * np.exp(0.5j) + 1j) ** 2),
        lambda t: torch.sum(torch.abs(t * np.exp(0.5j) + 1j) ** 2),
    ),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_of_real_losses_are_the_conjugate_of_pytorchs(name):
    mine, theirs = LOSSES[name]
    t = torch.tensor(Z, requires_grad=True)
    theirs(t).backward()
    np.testing.assert_allclose(dk.grad(mine)(Z), np.conj(t.grad.numpy()), rtol=1e-12)
    value = float(np.real(dk.value_and_grad(mine)(Z)[0]))
    np.testing.assert_allclose(value, float(theirs(t.detach())), rtol=1e-13)


def test_values_of_the_parts_match_pytorch():
    t = torch.tensor(Z)
    z = dk.variable("z", Z.shape)
    parts = [
        (dk.real, torch.real),
        (dk.imag, torch.imag),
        (dk.conj, torch.conj),
        (dk.abs, torch.abs),
        (dk.angle, torch.angle),
    ]
    for build, ref in parts:
        expected = ref(t).resolve_conj().numpy()
        np.testing.assert_allclose(dk.evaluate(build(z), {"z": Z}), expected, rtol=1e-15)

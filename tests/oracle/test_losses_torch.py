"""CrossEntropyLoss with class indices, masked logits, ignore_index, label smoothing and
every reduction, against PyTorch float64 (values and gradients)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import diffkit as dk

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_with_indices_against_torch(reduction, label_smoothing, ignore):
    z = RNG.standard_normal((6, 4))
    z[1, 2] = -np.inf  # a masked class, not the target of row 1
    labels = np.array([0, 3, 1, 2, 3, 1])
    if ignore:
        labels[[2, 4]] = -100
    if label_smoothing:
        z[1, 2] = -30.0  # smoothing puts weight on every class: -inf would make it infinite
    loss_fn = dk.nn.CrossEntropyLoss(reduction=reduction, label_smoothing=label_smoothing)
    zn, yn = dk.variable("z", z.shape), dk.variable("y", labels.shape)
    loss = loss_fn(zn, yn)
    t = torch.tensor(z, requires_grad=True)
    expected = F.cross_entropy(
        t, torch.tensor(labels), reduction=reduction, label_smoothing=label_smoothing
    )
    np.testing.assert_allclose(
        dk.evaluate(loss, {"z": z, "y": labels.astype(float)}),
        expected.detach().numpy(),
        rtol=1e-12,
    )
    weights = RNG.standard_normal(np.shape(expected.detach().numpy()))
    (expected * torch.tensor(weights)).sum().backward()
    scalar = dk.sum(loss * dk.const(weights)) if loss.shape else loss * float(weights)
    grad = dk.gradient(scalar, {"z": z, "y": labels.astype(float)}, wrt="z")["z"]
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-11, atol=1e-14)


def test_cross_entropy_with_probabilities_against_torch():
    z = RNG.standard_normal((5, 3))
    p = RNG.dirichlet(np.ones(3), 5)
    loss = dk.nn.CrossEntropyLoss()(dk.variable("z", z.shape), dk.const(p))
    t = torch.tensor(z, requires_grad=True)
    expected = F.cross_entropy(t, torch.tensor(p))
    expected.backward()
    assert dk.evaluate(loss, {"z": z}) == pytest.approx(expected.item(), rel=1e-13)
    np.testing.assert_allclose(dk.gradient(loss, {"z": z})["z"], t.grad.numpy(), rtol=1e-12)

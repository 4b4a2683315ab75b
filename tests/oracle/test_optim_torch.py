"""Adam and AdamW over several steps against torch.optim in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffkit.train import Adam, AdamW


@pytest.mark.parametrize(
    "ours, theirs, kwargs",
    [
        (Adam, torch.optim.Adam, {"lr": 0.01}),
        (Adam, torch.optim.Adam, {"lr": 0.003, "betas": (0.8, 0.99), "weight_decay": 0.1}),
        (AdamW, torch.optim.AdamW, {"lr": 0.01}),
        (AdamW, torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.3, "eps": 1e-6}),
    ],
)
def test_adam_against_torch(ours, theirs, kwargs):
    rng = np.random.default_rng(4)
    start = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    params = {k: v.copy() for k, v in start.items()}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    opt, topt = ours(params, **kwargs), theirs(list(tparams.values()), **kwargs)
    for step in range(12):
        grads = {k: rng.standard_normal(v.shape) * (step + 1) for k, v in start.items()}
        for k, t in tparams.items():
            t.grad = torch.tensor(grads[k])
        topt.step()
        opt.step(grads)
    for k in start:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-14)

"""diffkit.nn.functional against torch.nn.functional in float64."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF

import diffkit as dk
from diffkit.nn import functional as F

RNG = np.random.default_rng(12)


def _both(ours, theirs, *arrays):
    nodes = [dk.variable(f"a{i}", a.shape) for i, a in enumerate(arrays)]
    at = {n.name: a for n, a in zip(nodes, arrays)}
    expected = theirs(*[torch.tensor(a) for a in arrays]).numpy()
    np.testing.assert_allclose(dk.evaluate(ours(*nodes), at), expected, rtol=1e-12, atol=1e-13)


def test_functional_forms_against_torch():
    x4 = RNG.standard_normal((2, 3, 6, 6))
    w4 = RNG.standard_normal((4, 3, 3, 3))
    b = RNG.standard_normal(4)
    _both(
        lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1),
        lambda x, w, b: TF.conv2d(x, w, b, stride=1, padding=1),
        x4,
        w4,
        b,
    )
    x2, w2 = RNG.standard_normal((5, 3)), RNG.standard_normal((4, 3))
    _both(F.linear, TF.linear, x2, w2, b)
    _both(lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1), x2)
    _both(lambda x: F.log_softmax(x, 0), lambda x: TF.log_softmax(x, 0), x2)
    g, beta = RNG.standard_normal(3), RNG.standard_normal(3)
    _both(
        lambda x, g, b: F.layer_norm(x, 3, g, b),
        lambda x, g, b: TF.layer_norm(x, (3,), g, b),
        x2,
        g,
        beta,
    )
    rm, rv = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    for training in (True, False):
        _both(
            lambda x, m, v, g, b: F.batch_norm(x, m, v, g, b, training=training),
            lambda x, m, v, g, b: TF.batch_norm(x, m.clone(), v.clone(), g, b, training=training),
            x4,
            rm,
            rv,
            g,
            beta,
        )
    labels = np.array([0, 2, 1, 1, 0])
    _both(
        lambda z: F.cross_entropy(z, labels, label_smoothing=0.2),
        lambda z: TF.cross_entropy(z, torch.tensor(labels), label_smoothing=0.2),
        x2,
    )
    _both(lambda z: F.max_pool2d(z, 2), lambda z: TF.max_pool2d(z, 2), x4)

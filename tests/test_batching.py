"""Batching: every op of the registry, with each input batched in turn, gives what one
evaluation per case gives; batched Jacobians and Hessians equal the per-direction ones."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.differentiators import batching
from diffkit.differentiators.batching import NotBatchable, batch_graph

from test_registry import CASES, OPS, _inputs

# ops whose batching is left to the per-direction fallback (image kernels, whose batch
# axis is the images' own)
UNBATCHED = {
    "im2col",
    "col2im",
    "unfold",
    "fold",
    "conv2d_direct",
    "conv2d_direct_weight_grad",
    "conv2d_input_grad",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_select",
}


@pytest.mark.parametrize("name,index", CASES)
def test_every_op_batches_like_a_loop(name, index):
    op = OPS[name]
    sample = op.samples[index]
    rng = np.random.default_rng(index + 11)
    nodes, at, _ = _inputs(op, sample, rng)
    out = dk.apply(op, *nodes, **sample.attrs)
    batch = 3
    for var in [n for n in nodes if n.kind == "var"]:
        bvar = dk.variable(f"{var.name}_batched", (batch,) + var.shape)
        try:
            ((bout, batched),) = batch_graph([out], {var: bvar}, batch)
        except NotBatchable:
            assert name in UNBATCHED, f"{name}: no batching rule"
            return
        assert name not in UNBATCHED, f"{name} batches now: take it off the list"
        assert batched and bout.shape == (batch,) + out.shape
        low, high = (sample.low, sample.high)
        cases = (
            np.stack([at[var.name]] * batch)
            if sample.make is not None
            else rng.uniform(low, high, (batch,) + var.shape)
        )
        if sample.make is None and name in ("getitem", "embed", "gather"):
            cases = rng.uniform(low, high, (batch,) + var.shape)
        got = dk.evaluate(bout, {**at, bvar.name: cases})
        for b in range(batch):
            want = dk.evaluate(out, {**at, var.name: cases[b]})
            np.testing.assert_allclose(got[b], want, rtol=1e-13, atol=1e-13, err_msg=name)


def _tanh_net(n=30, m=12):
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((16, n)) / np.sqrt(n)
    W2 = rng.standard_normal((m, 16)) / 4
    x = dk.variable("x", (n,))
    y = dk.tanh(dk.const(W2) @ dk.tanh(dk.const(W1) @ x + 0.1))
    return x, y, {"x": rng.standard_normal(n)}


@pytest.mark.parametrize("chunk_entries", [1, 40, 2**24])
def test_batched_jacobians_and_hessians_equal_one_direction_at_a_time(chunk_entries, monkeypatch):
    from diffkit.differentiators import graphs

    x, y, at = _tanh_net()
    f = dk.sum(y**2) + dk.sum(dk.sin(x) * x)
    reference = {}
    monkeypatch.setattr(batching, "MAX_BATCH_ENTRIES", 1)  # one direction per evaluation
    graphs._CACHE.clear()
    for method in ("reverse", "forward"):
        reference[method, "jac"] = dk.jacobian(y, at, method=method)["x"]
        reference[method, "hess"] = dk.hessian(f, at, method=method)
    monkeypatch.setattr(batching, "MAX_BATCH_ENTRIES", chunk_entries)
    graphs._CACHE.clear()
    for method in ("reverse", "forward"):
        jac = dk.jacobian(y, at, method=method)["x"]
        hess = dk.hessian(f, at, method=method)
        np.testing.assert_allclose(jac, reference[method, "jac"], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(hess, reference[method, "hess"], rtol=1e-13, atol=1e-14)
    # and against central differences of the gradient
    h = 1e-6
    g = dk.grad_graph(f, "x")
    fd = np.stack(
        [
            (dk.evaluate(g, {"x": at["x"] + h * e}) - dk.evaluate(g, {"x": at["x"] - h * e}))
            / (2 * h)
            for e in np.eye(30)
        ]
    )
    np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-7)


def test_batched_passes_are_counted_and_convolutions_fall_back():
    x, y, at = _tanh_net()
    rev = dk.differentiators.ReverseMode()
    rev.jacobian(y, at, wrt=["x"])
    assert rev.last_cost.passes == 12 and rev.last_cost.batches == 1
    img = dk.variable("img", (1, 1, 6, 6))
    out = dk.conv2d(img, dk.const(np.ones((2, 1, 3, 3))))
    J = rev.jacobian(dk.tanh(out), {"img": np.random.default_rng(1).random((1, 1, 6, 6))})["img"]
    assert J.shape == (1, 2, 4, 4, 1, 1, 6, 6)
    assert rev.last_cost.passes == 32

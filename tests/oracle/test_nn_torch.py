"""Every layer and loss, forward and all gradients, against PyTorch in float64 (to 1e-10),
batch-norm running statistics after several passes, and full LeNet-5 models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as F

import diffkit as dk
from diffkit import nn

F64 = np.float64
TOL = dict(rtol=1e-10, atol=1e-10)


def _compare(layer, tlayer, x, *, target=None):
    """Forward output and gradients of sum(out * w) for input and parameters."""
    rng = np.random.default_rng(0)
    tlayer.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()}, strict=True)
    xv = dk.variable("x", x.shape)
    out = layer(xv)
    w = rng.standard_normal(out.shape)
    loss = dk.sum(out * dk.const(w))
    at = {k: v for k, v in {**layer.inputs(), "x": x}.items() if k in dk.compile(loss).variables}
    tx = torch.tensor(x, requires_grad=True)
    tout = tlayer(tx)
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(dk.compile(out)(at, strict=False), tout.detach().numpy(), **TOL)
    grads = dk.gradient(loss, at)
    np.testing.assert_allclose(grads["x"], tx.grad.numpy(), **TOL)
    for name, p in tlayer.named_parameters():
        full = f"{layer._path}.{name}" if layer._path else name
        np.testing.assert_allclose(grads[full], p.grad.numpy(), **TOL)


CONV = [(3, 1, 0, True), (5, 2, 2, False), ((3, 2), (2, 1), (1, 0), True), (1, 3, 1, True)]


@pytest.mark.parametrize("k,s,p,bias", CONV)
def test_conv2d(k, s, p, bias):
    x = np.random.default_rng(1).standard_normal((3, 2, 9, 7))
    _compare(
        nn.Conv2d(2, 4, k, s, p, bias=bias, dtype=F64), tnn.Conv2d(2, 4, k, s, p, bias=bias), x
    )


POOL = [(2, None, 0, False), (3, 2, 1, False), (3, 2, 1, True), (2, 3, 1, True)]


@pytest.mark.parametrize("k,s,p,ceil", POOL)
def test_max_pool(k, s, p, ceil):
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 8))
    x[0, 0, :2, :2] = 1.5  # a tie
    _compare(nn.MaxPool2d(k, s, p, ceil_mode=ceil), tnn.MaxPool2d(k, s, p, ceil_mode=ceil), x)


@pytest.mark.parametrize("k,s,p,ceil", POOL)
@pytest.mark.parametrize("include", [True, False])
def test_avg_pool(k, s, p, ceil, include):
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 8))
    _compare(
        nn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=include),
        tnn.AvgPool2d(k, s, p, ceil_mode=ceil, count_include_pad=include),
        x,
    )


def test_linear_and_activations():
    x = np.random.default_rng(4).standard_normal((5, 6))
    x[0, 0] = 0.0
    _compare(nn.Linear(6, 3, dtype=F64), tnn.Linear(6, 3), x)
    for ours, theirs in (
        (nn.ReLU(), tnn.ReLU()),
        (nn.Sigmoid(), tnn.Sigmoid()),
        (nn.Tanh(), tnn.Tanh()),
    ):
        _compare(ours, theirs, x)


@pytest.mark.parametrize("kind", ["bn1d", "bn1d3", "bn2d", "ln", "in"])
def test_normalization(kind):
    rng = np.random.default_rng(5)
    if kind == "bn1d":
        ours, theirs, x = (
            nn.BatchNorm1d(4, dtype=F64),
            tnn.BatchNorm1d(4),
            rng.standard_normal((6, 4)),
        )
    elif kind == "bn1d3":
        ours, theirs, x = (
            nn.BatchNorm1d(4, dtype=F64),
            tnn.BatchNorm1d(4),
            rng.standard_normal((3, 4, 5)),
        )
    elif kind == "bn2d":
        ours, theirs, x = (
            nn.BatchNorm2d(3, dtype=F64),
            tnn.BatchNorm2d(3),
            rng.standard_normal((4, 3, 5, 5)),
        )
    elif kind == "ln":
        ours, theirs, x = (
            nn.LayerNorm((3, 5), dtype=F64),
            tnn.LayerNorm((3, 5)),
            rng.standard_normal((4, 3, 5)),
        )
    else:
        ours, theirs, x = (
            nn.InstanceNorm2d(3, affine=True, dtype=F64),
            tnn.InstanceNorm2d(3, affine=True),
            rng.standard_normal((2, 3, 4, 5)),
        )
    for p in ours.parameters():
        p[...] = rng.standard_normal(p.shape)
    _compare(ours, theirs, x)


def test_batchnorm_running_statistics_after_several_passes():
    rng = np.random.default_rng(6)
    ours, theirs = nn.BatchNorm2d(3, momentum=0.2, dtype=F64), tnn.BatchNorm2d(3, momentum=0.2)
    xv = dk.variable("x", (4, 3, 5, 5))
    out = ours(xv)
    ((mod, mean, var, count),) = ours.batch_statistics()
    program = dk.compile([out, mean, var])
    for _ in range(5):
        x = rng.standard_normal((4, 3, 5, 5)) * 2 + 0.5
        o, m, v = program({**ours.inputs(), "x": x}, strict=False)
        mod.update_running(m, v, count)
        t = theirs(torch.tensor(x))
        np.testing.assert_allclose(o, t.detach().numpy(), **TOL)
    for name, buf in theirs.named_buffers():
        np.testing.assert_allclose(dict(ours.named_buffers())[name], buf.numpy(), **TOL)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3, 5, 5))
    got = dk.compile(ours(dk.variable("x", x.shape)))({**ours.inputs(), "x": x}, strict=False)
    np.testing.assert_allclose(got, theirs(torch.tensor(x)).detach().numpy(), **TOL)


def test_losses():
    rng = np.random.default_rng(7)
    z = rng.standard_normal((5, 4)) * 5
    z[0, 0] = 1e4
    labels = rng.integers(0, 4, 5)
    onehot = np.eye(4)[labels]
    zv, yv = dk.variable("z", z.shape), dk.variable("y", z.shape)
    for ours, theirs, target in (
        (nn.CrossEntropyLoss(), lambda t: F.cross_entropy(t, torch.tensor(labels)), onehot),
        (
            nn.BCEWithLogitsLoss(),
            lambda t: F.binary_cross_entropy_with_logits(t, torch.tensor(onehot)),
            onehot,
        ),
        (nn.MSELoss(), lambda t: F.mse_loss(t, torch.tensor(onehot)), onehot),
    ):
        loss = ours(zv, yv)
        tz = torch.tensor(z, requires_grad=True)
        tl = theirs(tz)
        tl.backward()
        at = {"z": z, "y": target}
        assert dk.evaluate(loss, at) == pytest.approx(tl.item(), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(dk.gradient(loss, at)["z"], tz.grad.numpy(), **TOL)


class TorchLeNet(tnn.Module):
    def __init__(self, bn):
        super().__init__()
        self.conv1, self.conv2 = tnn.Conv2d(1, 6, 5), tnn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = tnn.Linear(400, 120), tnn.Linear(120, 84), tnn.Linear(84, 10)
        ident = tnn.Identity
        self.bn1 = tnn.BatchNorm2d(6) if bn else ident()
        self.bn2 = tnn.BatchNorm2d(16) if bn else ident()
        self.bn3 = tnn.BatchNorm1d(120) if bn else ident()
        self.bn4 = tnn.BatchNorm1d(84) if bn else ident()

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2).flatten(1)
        x = F.relu(self.bn3(self.fc1(x)))
        return self.fc3(F.relu(self.bn4(self.fc2(x))))


@pytest.mark.parametrize("bn", [False, True])
def test_lenet5_with_the_same_weights(bn):
    rng = np.random.default_rng(8)
    ours, theirs = nn.LeNet5(batchnorm=bn, dtype=F64), TorchLeNet(bn)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((6, 1, 32, 32))
    labels = rng.integers(0, 10, 6)
    xv, yv = dk.variable("input", x.shape), dk.variable("target", (6, 10))
    loss = nn.CrossEntropyLoss()(ours(xv), yv)
    at = {
        k: v
        for k, v in {**ours.inputs(), "input": x, "target": np.eye(10)[labels]}.items()
        if k in dk.compile(loss).variables
    }
    tl = F.cross_entropy(theirs(torch.tensor(x)), torch.tensor(labels))
    tl.backward()
    assert dk.evaluate(loss, at) == pytest.approx(tl.item(), rel=1e-12)
    grads = dk.gradient(loss, at, wrt=list(dict(ours.named_parameters())))
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **TOL)
    if bn:  # eval mode after fusion equals PyTorch in eval mode, with the same statistics
        for buf in ours.buffers():
            if buf.dtype.kind == "f":
                buf[...] = rng.random(buf.shape) + 0.5
        theirs = TorchLeNet(bn)
        theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        theirs.eval()
        fused = nn.fuse_conv_bn(ours)
        out = dk.compile(fused(xv))({**fused.inputs(), "input": x}, strict=False)
        np.testing.assert_allclose(out, theirs(torch.tensor(x)).detach().numpy(), **TOL)


def test_dropout_as_torch_in_eval_and_with_the_same_mask_in_training():
    x = np.random.default_rng(3).standard_normal((8, 20))
    ours, theirs = nn.Dropout(0.4, seed=0, dtype=F64), tnn.Dropout(0.4).double()
    xv = dk.variable("x", x.shape)
    ours.eval(), theirs.eval()
    np.testing.assert_array_equal(dk.evaluate(ours(xv), {"x": x}), theirs(torch.tensor(x)).numpy())
    ours.train(), theirs.train()
    torch.manual_seed(0)
    tx = torch.tensor(x, requires_grad=True)
    tout = theirs(tx)
    tout.sum().backward()
    # torch's kept entries are x / (1 - p): recover its mask and feed it to ours
    mask = (tout.detach().numpy() != 0) / 0.6
    y = ours(xv)
    (name,) = ours.inputs()
    at = {"x": x, name: mask}
    np.testing.assert_allclose(dk.evaluate(y, at), tout.detach().numpy(), **TOL)
    g = dk.gradient(dk.sum(y), at, wrt=["x"])["x"]
    np.testing.assert_allclose(g, tx.grad.numpy(), **TOL)


def test_lenet5_gradients_with_convolutions_in_batch_slices(monkeypatch):
    """LeNet-5's second convolution built a slice of the batch at a time (as at large
    batches) gives PyTorch's loss and gradients."""
    from diffkit.ops import convolution

    monkeypatch.setattr(convolution, "CHUNK_ENTRIES", 2 * 150 * 100)  # two images a slice
    test_lenet5_with_the_same_weights(False)


@pytest.mark.parametrize("input_size", [32, 28])
def test_lenet5_training_step_in_float32(input_size):
    """The float32 step of `diffkit train` (direct convolutions, compiled loops on several
    threads, the program's memory cache) against PyTorch in float64 on the same float32
    weights and images: errors of float32 size, as small as PyTorch's own in float32."""
    from diffkit.train import StepGraph

    rng = np.random.default_rng(11)
    ours = nn.LeNet5(input_size=input_size)  # float32
    padding = 2 if input_size == 28 else 0

    def torch_net(dtype):
        net = TorchLeNet(False)
        net.conv1 = tnn.Conv2d(1, 6, 5, padding=padding)
        net.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        return net.to(dtype)

    x = rng.standard_normal((33, 1, input_size, input_size)).astype(np.float32)
    labels = rng.integers(0, 10, 33)
    step = StepGraph(ours, x.shape, 10)
    loss, _, grads, _ = step(ours, x, np.eye(10, dtype=np.float32)[labels])
    assert all(g.dtype == np.float32 for g in grads.values())
    results = {}
    for dtype in (torch.float64, torch.float32):
        net = torch_net(dtype)
        tl = F.cross_entropy(net(torch.tensor(x, dtype=dtype)), torch.tensor(labels))
        tl.backward()
        results[dtype] = tl.item(), {n: p.grad.double().numpy() for n, p in net.named_parameters()}
    truth_loss, truth = results[torch.float64]
    _, theirs32 = results[torch.float32]
    assert loss == pytest.approx(truth_loss, rel=1e-5)
    for name, g in truth.items():
        scale = np.abs(g).max()
        ours_err = np.abs(grads[name] - g).max() / scale
        theirs_err = np.abs(theirs32[name] - g).max() / scale
        # about 1e-6 on this machine for both (float32 rounds at 6e-8)
        assert ours_err < max(5e-6, 3 * theirs_err), (name, ours_err, theirs_err)

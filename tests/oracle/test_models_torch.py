"""VGG and ResNet against their PyTorch twins (the same architecture written in PyTorch
with torchvision's layout) in float64: diffkit's state_dict loads into the twin strictly,
and outputs, input and parameter gradients and the running statistics after a training
step agree to 1e-10, in training and in evaluation mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn

import diffkit as dk
from diffkit import nn

F64 = np.float64
TOL = dict(rtol=1e-10, atol=1e-10)


class TorchVGG(tnn.Module):
    def __init__(self, config, in_channels, input_size, hidden, num_classes):
        super().__init__()
        layers, c, size = [], in_channels, input_size
        for v in config:
            if v == "M":
                layers.append(tnn.MaxPool2d(2))
                size //= 2
            else:
                layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.BatchNorm2d(v), tnn.ReLU()]
                c = v
        self.features = tnn.Sequential(*layers)
        self.classifier = tnn.Sequential(
            tnn.Linear(c * size * size, hidden),
            tnn.ReLU(),
            tnn.Dropout(0.0),
            tnn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class TorchBlock(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = tnn.Sequential(
                tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(tnn.Module):
    def __init__(self, blocks, widths, in_channels, num_classes):
        super().__init__()
        self.conv1 = tnn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(widths[0])
        self.relu = tnn.ReLU()
        c = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stage = []
            for j in range(n):
                stage.append(TorchBlock(c, w, (1 if i == 0 else 2) if j == 0 else 1))
                c = w
            setattr(self, f"layer{i + 1}", tnn.Sequential(*stage))
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc = tnn.Linear(c, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _pair(kind):
    nn.manual_seed(3)
    if kind == "vgg":
        config, size = (4, "M", 6, 6, "M", 8), 10
        ours = nn.VGG(config, num_classes=5, in_channels=2, input_size=size, hidden=7, dtype=F64)
        theirs = TorchVGG(config, 2, size, 7, 5)
    else:
        size = 9
        ours = nn.ResNet((1, 2, 1), (4, 6, 8), num_classes=5, in_channels=2, dtype=F64)
        theirs = TorchResNet((1, 2, 1), (4, 6, 8), 2, 5)
    return ours, theirs.double(), size


def _randomize_statistics(model, rng):
    for _, mod in model.named_modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod._parameters["weight"][...] = rng.uniform(0.5, 1.5, mod.num_features)
            mod._parameters["bias"][...] = rng.standard_normal(mod.num_features)
            mod._buffers["running_mean"][...] = rng.standard_normal(mod.num_features)
            mod._buffers["running_var"][...] = rng.uniform(0.5, 2.0, mod.num_features)


def _load(theirs, ours):
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()}, strict=True)


@pytest.mark.parametrize("kind", ["vgg", "resnet"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_outputs_and_gradients_equal_the_pytorch_twin(kind, mode):
    rng = np.random.default_rng(7)
    ours, theirs, size = _pair(kind)
    _randomize_statistics(ours, rng)
    _load(theirs, ours)
    ours.train(mode == "train")
    theirs.train(mode == "train")
    x = rng.standard_normal((4, 2, size, size))
    xv = dk.variable("x", x.shape)
    out = ours(xv)
    w = rng.standard_normal(out.shape)
    loss = dk.sum(out * dk.const(w))
    program = dk.compile(loss)
    at = {k: v for k, v in {**ours.inputs(), "x": x}.items() if k in program.variables}
    stats = ours.batch_statistics()
    values = dk.compile([out] + [n for _, m, v, _ in stats for n in (m, v)])(at, strict=False)
    tx = torch.tensor(x, requires_grad=True)
    tout = theirs(tx)
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(values[0], tout.detach().numpy(), **TOL)
    grads = dk.gradient(loss, at)
    np.testing.assert_allclose(grads["x"], tx.grad.numpy(), **TOL)
    names = [n for n, _ in theirs.named_parameters()]
    assert sorted(names) == sorted(n for n, _ in ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **TOL, err_msg=name)
    # training mode: the running statistics after the step, as PyTorch's after its forward
    norms = sum(isinstance(m, nn.BatchNorm2d) for _, m in ours.named_modules())
    assert len(stats) == (norms if mode == "train" else 0)
    for i, (mod, _, _, count) in enumerate(stats):
        mod.update_running(values[1 + 2 * i], values[2 + 2 * i], count)
    theirs_state = theirs.state_dict()
    for name, value in ours.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            np.testing.assert_allclose(value, theirs_state[name].numpy(), **TOL, err_msg=name)


@pytest.mark.parametrize("kind", ["vgg", "resnet"])
def test_pytorch_weights_load_into_diffkit(kind):
    """The other way round: the twin's own initialisation, loaded into diffkit."""
    ours, theirs, size = _pair(kind)
    torch.manual_seed(0)
    theirs.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(1).standard_normal((3, 2, size, size))
    out = dk.compile(ours(dk.variable("x", x.shape)))({**ours.inputs(), "x": x}, strict=False)
    np.testing.assert_allclose(out, theirs(torch.tensor(x)).detach().numpy(), **TOL)

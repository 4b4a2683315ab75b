"""Models: LeNet-5, a VGG-style network, a small ResNet, a multilayer perceptron,
logistic regression.

Every model names its layers as PyTorch (and torchvision, for VGG and ResNet) does, so
the same architecture written in PyTorch loads a diffkit ``state_dict`` and computes the
same outputs and gradients. Each model runs its layers as one chain (``layers()``), which
:func:`diffkit.nn.checkpoint.with_checkpoints` cuts into checkpointed segments: the
backward pass then keeps the segments' inputs only and recomputes the rest, with
bit-identical gradients.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir.node import Node
from .checkpoint import checkpoint_sequential
from .layers import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    flatten,
)
from .module import Module, default_rng
from .norm import BatchNorm1d, BatchNorm2d
from .pooling import AdaptiveAvgPool2d

__all__ = [
    "LeNet5",
    "VGG",
    "ResNet",
    "BasicBlock",
    "MLP",
    "LogisticRegression",
    "run_layers",
]

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def run_layers(model: Module, layers: list, x: Node) -> Node:
    """``layers`` applied to ``x`` in order, in the model's checkpointed segments if set
    (``model.checkpoint_segments``, see :func:`diffkit.nn.checkpoint.with_checkpoints`)."""
    segments = getattr(model, "checkpoint_segments", None)
    if segments:
        return checkpoint_sequential(layers, segments, x)
    for layer in layers:
        x = layer(x)
    return x


def _kaiming_normal(model: Module) -> None:
    """He initialisation of every convolution (normal, fan_out, gain sqrt 2), as
    torchvision's VGG and ResNet; biases zero."""
    for _, mod in model.named_modules():
        if isinstance(mod, Conv2d):
            w = mod._parameters["weight"]
            fan_out = w.shape[0] * w.shape[2] * w.shape[3]
            std = math.sqrt(2.0 / fan_out)
            w[...] = default_rng().normal(0.0, std, w.shape).astype(w.dtype)
            if "bias" in mod._parameters:
                mod._parameters["bias"][...] = 0


class LeNet5(Module):
    """(Conv, ReLU, Pool)² → Flatten → (Linear, ReLU)² → Linear.

    conv1: 6 kernels 5×5 (padding 2 for 28×28 inputs, so both sizes give 16×5×5
    features), conv2: 16 kernels 5×5, fc1: 120, fc2: 84, fc3: ``num_classes``.
    ``batchnorm=True`` adds BatchNorm2d after each conv and BatchNorm1d after fc1
    and fc2; ``norm="layer"`` or ``"instance"`` uses LayerNorm / InstanceNorm2d
    after the convolutions instead.

    Args:
        num_classes: the number of outputs.
        in_channels: the input's channels.
        input_size: 32 or 28: the input's height and width.
        pool: ``"max"`` or ``"avg"``.
        batchnorm: add batch normalization layers.
        norm: ``"layer"`` or ``"instance"`` after the convolutions, or None.
        dtype: the dtype of the model's values (float32 by default).

    >>> import diffkit as dk
    >>> model = dk.nn.LeNet5()
    >>> dict(model.named_parameters())["conv1.weight"].shape
    (6, 1, 5, 5)
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 32,
        pool: str = "max",
        batchnorm: bool = False,
        norm: str | None = None,
        dtype=np.float32,
    ):
        super().__init__(dtype)
        if pool not in ("max", "avg"):
            raise ValueError(f"LeNet5: pool must be 'max' or 'avg', got {pool!r}")
        norm = "batch" if batchnorm and norm is None else norm
        if norm not in (None, "batch", "layer", "instance"):
            raise ValueError(
                f"LeNet5: norm must be None, 'batch', 'layer' or 'instance', got {norm!r}"
            )
        padding = 2 if input_size == 28 else 0
        size = input_size + 2 * padding - 4
        if size < 2:
            raise ValueError(f"LeNet5: input_size {input_size} is too small (at least 14)")
        size1 = size // 2
        size2 = (size1 - 4) // 2
        if size1 - 4 < 2 or size2 < 1:
            raise ValueError(f"LeNet5: input_size {input_size} is too small (at least 14)")
        Pool = MaxPool2d if pool == "max" else AvgPool2d
        self.norm_kind = norm
        self.conv1 = Conv2d(in_channels, 6, 5, padding=padding, dtype=dtype)
        self.bn1 = self._norm2d(norm, 6, (6, size, size), dtype)
        self.pool1 = Pool(2)
        self.conv2 = Conv2d(6, 16, 5, dtype=dtype)
        self.bn2 = self._norm2d(norm, 16, (16, size1 - 4, size1 - 4), dtype)
        self.pool2 = Pool(2)
        self.fc1 = Linear(16 * size2 * size2, 120, dtype=dtype)
        self.bn3 = BatchNorm1d(120, dtype=dtype) if norm == "batch" else Identity()
        self.fc2 = Linear(120, 84, dtype=dtype)
        self.bn4 = BatchNorm1d(84, dtype=dtype) if norm == "batch" else Identity()
        self.fc3 = Linear(84, num_classes, dtype=dtype)
        self.relu = ReLU()

    @staticmethod
    def _norm2d(kind, channels, shape, dtype):
        from .norm import InstanceNorm2d, LayerNorm

        if kind == "batch":
            return BatchNorm2d(channels, dtype=dtype)
        if kind == "layer":
            return LayerNorm(shape, dtype=dtype)
        if kind == "instance":
            return InstanceNorm2d(channels, affine=True, dtype=dtype)
        return Identity()

    #: (layer, normalization) pairs that ``fuse_conv_bn`` may fold
    fusable = (("conv1", "bn1"), ("conv2", "bn2"), ("fc1", "bn3"), ("fc2", "bn4"))

    def layers(self) -> list:
        """The chain of layers ``forward`` runs, in order."""
        r = self.relu
        return [
            self.conv1, self.bn1, r, self.pool1,
            self.conv2, self.bn2, r, self.pool2,
            flatten, self.fc1, self.bn3, r, self.fc2, self.bn4, r, self.fc3,
        ]  # fmt: skip

    def forward(self, x: Node) -> Node:
        return run_layers(self, self.layers(), x)


class VGG(Module):
    """A VGG-style network: stacks of 3×3 convolutions (padding 1) with batch
    normalization and ReLU, max pooling by 2 after each stack, and a classifier of two
    linear layers — torchvision's ``vgg*_bn`` layout (``features.0.weight``,
    ``features.1.running_mean``, ``classifier.0.weight``) at the size of MNIST.

    Args:
        config: output channels of each convolution, ``"M"`` for a max pooling.
        num_classes, in_channels, input_size: classes, image channels and side.
        hidden: width of the classifier's hidden layer.
        dropout: dropout probability in the classifier (0: none; the layer stays, so the
            names do not change).

    >>> import diffkit as dk
    >>> model = dk.nn.VGG()
    >>> dict(model.named_parameters())["features.3.weight"].shape
    (16, 16, 3, 3)
    """

    def __init__(
        self,
        config=(16, 16, "M", 32, 32, "M", 64, "M"),
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        hidden: int = 128,
        dropout: float = 0.0,
        dtype=np.float32,
    ):
        super().__init__(dtype)
        layers, channels, size = [], in_channels, input_size
        for v in config:
            if v == "M":
                layers.append(MaxPool2d(2))
                size //= 2
            elif isinstance(v, (int, np.integer)) and v > 0:
                layers += [
                    Conv2d(channels, int(v), 3, padding=1, dtype=dtype),
                    BatchNorm2d(int(v), dtype=dtype),
                    ReLU(),
                ]
                channels = int(v)
            else:
                raise ValueError(f"VGG: config entries are channel counts or 'M', got {v!r}")
        if size < 1:
            raise ValueError(
                f"VGG: input_size {input_size} is too small for "
                f"{sum(v == 'M' for v in config)} poolings"
            )
        self.config = tuple(config)
        self.features = Sequential(*layers)
        self.classifier = Sequential(
            Linear(channels * size * size, hidden, dtype=dtype),
            ReLU(),
            Dropout(dropout, dtype=dtype),
            Linear(hidden, num_classes, dtype=dtype),
        )
        _kaiming_normal(self)

    def layers(self) -> list:
        return [*self.features, flatten, *self.classifier]

    def forward(self, x: Node) -> Node:
        return run_layers(self, self.layers(), x)


class BasicBlock(Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus the shortcut, then ReLU (torchvision's
    ``BasicBlock``). The shortcut is the identity, or a projection (1×1 convolution with
    the block's stride, then BN: ``downsample.0``, ``downsample.1``) where the stride or
    the channels change.

    Args:
        in_planes: the input's channels.
        planes: the output's channels.
        stride: the stride of the first convolution (and of the projection).
        dtype: the dtype of the block's values (float32 by default).

    >>> import diffkit as dk
    >>> block = dk.nn.BasicBlock(4, 8, stride=2)
    >>> block(dk.variable("x", (1, 4, 8, 8))).shape  # (8 + 2 - 3) // 2 + 1 = 4
    (1, 8, 4, 4)
    >>> [name for name, _ in block.named_modules() if name.startswith("downsample.")]
    ['downsample.0', 'downsample.1']
    """

    expansion = 1
    fusable = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dtype=np.float32):
        super().__init__(dtype)
        self.conv1 = Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False, dtype=dtype)
        self.bn1 = BatchNorm2d(planes, dtype=dtype)
        self.relu = ReLU()
        self.conv2 = Conv2d(planes, planes, 3, padding=1, bias=False, dtype=dtype)
        self.bn2 = BatchNorm2d(planes, dtype=dtype)
        if stride != 1 or in_planes != planes:
            self.downsample = Sequential(
                Conv2d(in_planes, planes, 1, stride=stride, bias=False, dtype=dtype),
                BatchNorm2d(planes, dtype=dtype),
            )
        else:
            self.downsample = None

    def forward(self, x: Node) -> Node:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class ResNet(Module):
    """A small ResNet: a 3×3 stem (conv, BN, ReLU), three stages of basic blocks (the
    second and third halve the side and double the channels through a projection
    shortcut), global average pooling and a linear head. Names as torchvision's
    (``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``fc.weight``).

    Args:
        blocks: basic blocks per stage ((1, 1, 1) is ResNet-8, (3, 3, 3) ResNet-20).
        widths: channels of the three stages.

    >>> import diffkit as dk
    >>> model = dk.nn.ResNet()
    >>> dict(model.named_parameters())["layer2.0.downsample.0.weight"].shape
    (32, 16, 1, 1)
    """

    fusable = (("conv1", "bn1"),)

    def __init__(
        self,
        blocks=(1, 1, 1),
        widths=(16, 32, 64),
        num_classes: int = 10,
        in_channels: int = 1,
        dtype=np.float32,
    ):
        super().__init__(dtype)
        blocks, widths = tuple(blocks), tuple(widths)
        if len(blocks) != 3 or len(widths) != 3:
            raise ValueError(f"ResNet: blocks and widths give 3 stages, got {blocks}, {widths}")
        for name, values in (("blocks", blocks), ("widths", widths)):
            if not all(isinstance(v, (int, np.integer)) and v > 0 for v in values):
                raise ValueError(f"ResNet: {name} must be positive integers, got {values}")
        self.blocks, self.widths = blocks, widths
        self.conv1 = Conv2d(in_channels, widths[0], 3, padding=1, bias=False, dtype=dtype)
        self.bn1 = BatchNorm2d(widths[0], dtype=dtype)
        self.relu = ReLU()
        planes = widths[0]
        for i, (n, width) in enumerate(zip(blocks, widths)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(n):
                stage.append(BasicBlock(planes, width, stride if j == 0 else 1, dtype=dtype))
                planes = width
            setattr(self, f"layer{i + 1}", Sequential(*stage))
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(planes, num_classes, dtype=dtype)
        _kaiming_normal(self)

    def layers(self) -> list:
        return [
            self.conv1, self.bn1, self.relu,
            *self.layer1, *self.layer2, *self.layer3,
            self.avgpool, flatten, self.fc,
        ]  # fmt: skip

    def forward(self, x: Node) -> Node:
        return run_layers(self, self.layers(), x)


class MLP(Module):
    """Linear layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with an activation between.

    Inputs of more than 2 dimensions are flattened first.

    Args:
        sizes: the layer sizes, input first (at least two).
        activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"``.
        dtype: the dtype of the model's values (float32 by default).

    Raises:
        ValueError: fewer than two sizes, or an unknown activation.

    >>> import diffkit as dk, numpy as np
    >>> mlp = dk.nn.MLP([4, 3, 2])
    >>> mlp.num_parameters()  # 4·3 + 3 + 3·2 + 2
    23
    >>> x = dk.variable("x", (5, 4)); xv = np.ones((5, 4), np.float32)
    >>> p = mlp.inputs()
    >>> h = np.maximum(xv @ p["fc1.weight"].T + p["fc1.bias"], 0)
    >>> y = dk.evaluate(mlp(x), at={"x": xv, **p})
    >>> bool(np.allclose(y, h @ p["fc2.weight"].T + p["fc2.bias"]))
    True
    """

    def __init__(self, sizes, activation: str = "relu", dtype=np.float32):
        super().__init__(dtype)
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP: needs at least an input and an output size, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP: unknown activation {activation!r}; known: {', '.join(_ACTIVATIONS)}"
            )
        self.sizes = sizes
        self.act = _ACTIVATIONS[activation]()
        self.depth = len(sizes) - 1
        for i in range(self.depth):
            setattr(self, f"fc{i + 1}", Linear(sizes[i], sizes[i + 1], dtype=dtype))

    def layers(self) -> list:
        out = []
        for i in range(self.depth):
            out.append(getattr(self, f"fc{i + 1}"))
            if i < self.depth - 1:
                out.append(self.act)
        return out

    def forward(self, x: Node) -> Node:
        if x.ndim > 2:
            x = flatten(x)
        return run_layers(self, self.layers(), x)


class LogisticRegression(MLP):
    """One linear layer: logits of a (multinomial) logistic regression.

    Args:
        in_features: the number of input features (inputs are flattened).
        num_classes: the number of logits.
        dtype: the dtype of the model's values (float32 by default).

    >>> import diffkit as dk
    >>> model = dk.nn.LogisticRegression(4, 3)
    >>> model.num_parameters(), model(dk.variable("x", (2, 4))).shape  # 4·3 + 3
    (15, (2, 3))
    """

    def __init__(self, in_features: int, num_classes: int, dtype=np.float32):
        super().__init__([in_features, num_classes], dtype=dtype)

"""Models: LeNet-5, a multilayer perceptron, logistic regression."""

from __future__ import annotations

import numpy as np

from ..ir.node import Node
from .layers import (
    AvgPool2d,
    Conv2d,
    Identity,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
    flatten,
)
from .module import Module
from .norm import BatchNorm1d, BatchNorm2d

__all__ = ["LeNet5", "MLP", "LogisticRegression"]

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


class LeNet5(Module):
    """(Conv, ReLU, Pool)² → Flatten → (Linear, ReLU)² → Linear.

    conv1: 6 kernels 5×5 (padding 2 for 28×28 inputs, so both sizes give 16×5×5
    features), conv2: 16 kernels 5×5, fc1: 120, fc2: 84, fc3: ``num_classes``.
    ``batchnorm=True`` adds BatchNorm2d after each conv and BatchNorm1d after fc1
    and fc2; ``norm="layer"`` or ``"instance"`` uses LayerNorm / InstanceNorm2d
    after the convolutions instead.

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

    def forward(self, x: Node) -> Node:
        r = self.relu
        x = self.pool1(r(self.bn1(self.conv1(x))))
        x = self.pool2(r(self.bn2(self.conv2(x))))
        x = flatten(x)
        x = r(self.bn3(self.fc1(x)))
        x = r(self.bn4(self.fc2(x)))
        return self.fc3(x)


class MLP(Module):
    """Linear layers ``sizes[0] -> sizes[1] -> ... -> sizes[-1]`` with an activation between.

    Inputs of more than 2 dimensions are flattened first.
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

    def forward(self, x: Node) -> Node:
        if x.ndim > 2:
            x = flatten(x)
        for i in range(self.depth):
            x = getattr(self, f"fc{i + 1}")(x)
            if i < self.depth - 1:
                x = self.act(x)
        return x


class LogisticRegression(MLP):
    """One linear layer: logits of a (multinomial) logistic regression."""

    def __init__(self, in_features: int, num_classes: int, dtype=np.float32):
        super().__init__([in_features, num_classes], dtype=dtype)

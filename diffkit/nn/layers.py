"""Layers: Linear, Conv2d, pooling, activations, Dropout, Flatten, Sequential, Identity.

Shapes, names and initialisation follow PyTorch (NCHW; ``weight`` is (out, in) or
(out, in, kh, kw); weights and biases drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
"""

from __future__ import annotations

import math

import numpy as np

from .. import ops
from ..ir.node import Node, ShapeError, variable
from ..ops.windows import pair
from .module import Module, default_rng

__all__ = [
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Flatten",
    "Sequential",
    "Identity",
    "Dropout",
]


def _uniform(shape, fan_in, dtype):
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return default_rng().uniform(-bound, bound, shape).astype(dtype)


def _positive(name, **values):
    for key, value in values.items():
        if isinstance(value, tuple):
            ok = all(isinstance(v, (int, np.integer)) and v > 0 for v in value)
        else:
            ok = isinstance(value, (int, np.integer)) and value > 0
        if not ok:
            raise ValueError(f"{name}: {key} must be a positive integer, got {value!r}")


class Linear(Module):
    """y = x Wᵀ + b, with ``weight`` of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__(dtype)
        _positive("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.add_parameter("weight", _uniform((out_features, in_features), in_features, dtype))
        if bias:
            self.add_parameter("bias", _uniform((out_features,), in_features, dtype))

    def forward(self, x: Node) -> Node:
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"Linear({self._path or 'linear'}): expected inputs with "
                f"{self.in_features} features, got shape {x.shape}"
            )
        y = ops.matmul(x, ops.transpose(self.param("weight"), (1, 0)))
        if "bias" in self._parameters:
            y = y + self.param("bias")
        return y

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={'bias' in self._parameters}"


class Conv2d(Module):
    """A bank of ``out_channels`` kernels of shape (in_channels, kh, kw), with zero padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        bias: bool = True,
        dtype=np.float32,
    ):
        super().__init__(dtype)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        _positive(
            "Conv2d",
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
        )
        if min(self.padding) < 0:
            raise ValueError(f"Conv2d: padding must be non-negative, got {padding!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.add_parameter(
            "weight", _uniform((out_channels, in_channels) + self.kernel_size, fan_in, dtype)
        )
        if bias:
            self.add_parameter("bias", _uniform((out_channels,), fan_in, dtype))

    def forward(self, x: Node) -> Node:
        name = self._path or "conv"
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"Conv2d({name}): expected NCHW input with {self.in_channels} "
                f"channels, got shape {x.shape}"
            )
        try:
            return ops.conv2d(
                x,
                self.param("weight"),
                self.param("bias") if "bias" in self._parameters else None,
                stride=self.stride,
                padding=self.padding,
            )
        except ShapeError as err:
            raise ShapeError(f"Conv2d({name}): {err}") from None

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


# the pooling layers live in their own module; imported here so that old imports work
from .pooling import AvgPool2d, MaxPool2d  # noqa: E402


class ReLU(Module):
    """max(x, 0), derivative 0 at 0."""

    def forward(self, x: Node) -> Node:
        return ops.relu(x)


class Dropout(Module):
    """Inverted dropout, as ``torch.nn.Dropout``: in training mode each entry is zeroed with
    probability ``p`` and the others are scaled by 1/(1-p); in eval mode the identity.

    The mask is an input of the graph (a variable per input shape, ``NAME.mask_32x120``)
    drawn afresh by ``model.inputs()`` from the layer's own generator, so a graph built
    once serves every step, and a gradient is that of the mask drawn with it.

    Args:
        p: the probability of zeroing, in [0, 1).
        seed: seeds the layer's generator (default: drawn from ``manual_seed``'s).
    """

    def __init__(self, p: float = 0.5, seed: int | None = None, dtype=np.float32):
        super().__init__(dtype)
        if not (isinstance(p, (int, float)) and 0 <= p < 1):
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        seed = int(default_rng().integers(2**63)) if seed is None else seed
        object.__setattr__(self, "_rng", np.random.default_rng(seed))
        object.__setattr__(self, "_shapes", [])

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def _mask_name(self, shape) -> str:
        base = self._path or "dropout"
        return f"{base}.mask_{'x'.join(map(str, shape))}"

    def forward(self, x: Node) -> Node:
        if not self.training or self.p == 0:
            return x
        if x.shape not in self._shapes:
            self._shapes.append(x.shape)
        return x * variable(self._mask_name(x.shape), x.shape)

    def _step_inputs(self) -> dict[str, np.ndarray]:
        if not self.training or self.p == 0:
            return {}
        keep = 1.0 - self.p
        return {
            self._mask_name(shape): (self._rng.random(shape) < keep).astype(self.dtype)
            / self.dtype.type(keep)
            for shape in self._shapes
        }


class Sigmoid(Module):
    def forward(self, x: Node) -> Node:
        return ops.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Node) -> Node:
        return ops.tanh(x)


class Identity(Module):
    def forward(self, x: Node) -> Node:
        return x


def flatten(x: Node) -> Node:
    """(N, ...) -> (N, prod(...)), the size written out so that a batch of 0 flattens too
    (numpy cannot infer a -1 next to a 0)."""
    return ops.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


class Flatten(Module):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x: Node) -> Node:
        return flatten(x)


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ...; ``checkpoint=k`` runs
    them in k checkpointed segments (:func:`diffkit.nn.checkpoint.with_checkpoints`)."""

    def __init__(self, *modules: Module, checkpoint: int | None = None):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)
        if checkpoint:
            from .checkpoint import with_checkpoints

            with_checkpoints(self, checkpoint)

    def __iter__(self):
        return iter(self._modules.values())

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def forward(self, x: Node) -> Node:
        segments = getattr(self, "checkpoint_segments", None)
        if segments:
            from .checkpoint import checkpoint_sequential

            return checkpoint_sequential(list(self._modules.values()), segments, x)
        for m in self._modules.values():
            x = m(x)
        return x

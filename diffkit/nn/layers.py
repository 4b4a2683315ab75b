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
from .padding import pad

__all__ = [
    "Linear",
    "Conv2d",
    "ConvTranspose2d",
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
    """y = x Wᵀ + b, with ``weight`` of shape (out_features, in_features).

    Args:
        in_features, out_features: the sizes of the input's and the output's last axis.
        bias: add a learned bias.
        dtype: the dtype of the layer's values (float32 by default).

    The weight and bias start uniform in ±1/sqrt(in_features), as PyTorch's.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> lin = nn.Linear(3, 2)
    >>> x = dk.variable("x", (4, 3))
    >>> xv = np.arange(12, dtype=np.float32).reshape(4, 3)
    >>> y = dk.evaluate(lin(x), at={"x": xv, **lin.inputs()})
    >>> w, b = lin.inputs()["weight"], lin.inputs()["bias"]
    >>> y.shape, y.dtype, np.allclose(y, xv @ w.T + b)
    ((4, 2), dtype('float32'), True)
    """

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


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _conv_checks(name, in_channels, out_channels, layer, groups):
    _positive(
        name,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        dilation=layer.dilation,
        groups=groups,
    )
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{name}: in_channels {in_channels} and out_channels {out_channels} must be "
            f"divisible by groups {groups}"
        )


def _conv_repr(layer, defaults: dict) -> str:
    """PyTorch's form: the channels and kernel size, then the options that differ from
    their defaults."""
    text = f"{layer.in_channels}, {layer.out_channels}, kernel_size={layer.kernel_size}"
    text += f", stride={layer.stride}"
    for key, default in defaults.items():
        if getattr(layer, key) != default:
            text += f", {key}={getattr(layer, key)!r}"
    return text + ("" if "bias" in layer._parameters else ", bias=False")


class Conv2d(Module):
    """A bank of ``out_channels`` kernels of shape (in_channels / groups, kh, kw), as
    PyTorch's ``Conv2d``: ``padding`` an int, a pair, ``"same"`` or ``"valid"``, with
    ``padding_mode`` ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``;
    ``dilation`` spaces the kernel's entries; ``groups`` splits the channels into groups
    convolved separately (``groups = in_channels``: depthwise). Inputs are (N, C, H, W)
    or unbatched (C, H, W).

    Args:
        in_channels, out_channels: the channels of the input and the output.
        kernel_size, stride, dilation: ints or pairs.
        padding: an int, a pair, ``"same"`` or ``"valid"``.
        groups: the number of channel groups (dividing both channel counts).
        bias: add a learned bias per output channel.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        dtype: the dtype of the layer's values (float32 by default).

    Raises:
        ValueError: a channel count is not divisible by ``groups``, or an unknown
            ``padding``/``padding_mode``.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> conv = nn.Conv2d(1, 6, 5)
    >>> conv(dk.variable("x", (2, 1, 32, 32))).shape  # 32 - 5 + 1
    (2, 6, 28, 28)
    >>> nn.Conv2d(3, 8, 3, padding="same", groups=1)(dk.variable("y", (3, 9, 9))).shape
    (8, 9, 9)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype=np.float32,
    ):
        super().__init__(dtype)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        _conv_checks("Conv2d", in_channels, out_channels, self, groups)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"Conv2d: padding_mode must be one of {', '.join(_PADDING_MODES)}, "
                f"got {padding_mode!r}"
            )
        # checked as the forward pass will use it ("same" is refused at strides above 1)
        sides = ops.convolution.conv_padding(
            padding, self.kernel_size, self.stride, self.dilation, "Conv2d"
        )
        self.padding = padding if isinstance(padding, str) else (sides[0][0], sides[1][0])
        self._sides = sides
        self.in_channels, self.out_channels = in_channels, out_channels
        self.groups, self.padding_mode = int(groups), padding_mode
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.add_parameter("weight", _uniform(shape, fan_in, dtype))
        if bias:
            self.add_parameter("bias", _uniform((out_channels,), fan_in, dtype))

    def forward(self, x: Node) -> Node:
        name = self._path or "conv"
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ShapeError(
                f"Conv2d({name}): expected NCHW input with {self.in_channels} channels "
                f"(or an unbatched CHW one), got shape {x.shape}"
            )
        padding = self.padding
        if self.padding_mode != "zeros":  # padded first, then convolved without padding
            (top, bottom), (left, right) = self._sides
            x = pad(x, (left, right, top, bottom), self.padding_mode)
            padding = 0
        try:
            return ops.conv2d(
                x,
                self.param("weight"),
                self.param("bias") if "bias" in self._parameters else None,
                stride=self.stride,
                padding=padding,
                dilation=self.dilation,
                groups=self.groups,
            )
        except ShapeError as err:
            raise ShapeError(f"Conv2d({name}): {err}") from None

    def extra_repr(self) -> str:
        defaults = {"padding": (0, 0), "dilation": (1, 1), "groups": 1, "padding_mode": "zeros"}
        return _conv_repr(self, defaults)


class ConvTranspose2d(Module):
    """The transposed convolution, as PyTorch's ``ConvTranspose2d``: the adjoint of a
    ``Conv2d`` of the same arguments with respect to its input; ``weight`` has shape
    (in_channels, out_channels / groups, kh, kw). ``output_padding`` adds rows and columns
    at the bottom/right of the output (smaller than the stride or the dilation), or
    ``forward(x, output_size)`` picks it. Inputs are (N, C, H, W) or unbatched (C, H, W).

    Args:
        in_channels, out_channels: the channels of the input and the output.
        kernel_size, stride, padding, dilation: ints or pairs, as the convolution's.
        output_padding: an int or a pair.
        groups: the number of channel groups.
        bias: add a learned bias per output channel.
        padding_mode: ``"zeros"`` (the only mode PyTorch allows here).
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    >>> up(dk.variable("x", (1, 4, 5, 5))).shape  # (5 - 1) 2 - 2 + 3 + 1
    (1, 2, 10, 10)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        dtype=np.float32,
    ):
        super().__init__(dtype)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = pair(padding, "padding")
        self.output_padding = pair(output_padding, "output_padding")
        _conv_checks("ConvTranspose2d", in_channels, out_channels, self, groups)
        if padding_mode != "zeros":
            raise ValueError(
                f'ConvTranspose2d: only "zeros" padding_mode is supported, got {padding_mode!r}'
            )
        if min(self.padding + self.output_padding) < 0:
            raise ValueError(
                f"ConvTranspose2d: padding {self.padding} and output_padding "
                f"{self.output_padding} must be non-negative"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.groups, self.padding_mode = int(groups), padding_mode
        # PyTorch's fan-in of this weight: its second axis times the kernel
        fan_in = out_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        shape = (in_channels, out_channels // groups) + self.kernel_size
        self.add_parameter("weight", _uniform(shape, fan_in, dtype))
        if bias:
            self.add_parameter("bias", _uniform((out_channels,), fan_in, dtype))

    def _output_padding(self, x: Node, output_size) -> tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = tuple(int(s) for s in output_size)[-2:]
        out = []
        for axis, want in enumerate(size):
            least = ops.convolution.transposed_size(
                x.shape[axis - 2],
                self.kernel_size[axis],
                self.stride[axis],
                self.padding[axis],
                0,
                self.dilation[axis],
            )
            if not least <= want < least + self.stride[axis]:
                raise ValueError(
                    f"ConvTranspose2d({self._path or 'conv'}): output_size {tuple(output_size)} "
                    f"is not between {least} and {least + self.stride[axis] - 1} on axis "
                    f"{axis - 2}"
                )
            out.append(want - least)
        return tuple(out)

    def forward(self, x: Node, output_size=None) -> Node:
        name = self._path or "conv"
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ShapeError(
                f"ConvTranspose2d({name}): expected NCHW input with {self.in_channels} channels "
                f"(or an unbatched CHW one), got shape {x.shape}"
            )
        try:
            return ops.conv_transpose2d(
                x,
                self.param("weight"),
                self.param("bias") if "bias" in self._parameters else None,
                stride=self.stride,
                padding=self.padding,
                output_padding=self._output_padding(x, output_size),
                groups=self.groups,
                dilation=self.dilation,
            )
        except ShapeError as err:
            raise ShapeError(f"ConvTranspose2d({name}): {err}") from None

    def extra_repr(self) -> str:
        defaults = {
            "padding": (0, 0),
            "output_padding": (0, 0),
            "dilation": (1, 1),
            "groups": 1,
            "padding_mode": "zeros",
        }
        return _conv_repr(self, defaults)


from .pooling import AvgPool2d, MaxPool2d  # noqa: E402


class ReLU(Module):
    """max(x, 0), derivative 0 at 0.

    Args:
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(nn.ReLU()(x), at={"x": [-1.0, 0.0, 2.0]}).tolist()
    [0.0, 0.0, 2.0]
    """

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
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> drop = nn.Dropout(0.5, seed=0)
    >>> x = dk.variable("x", (1000,))
    >>> y = dk.evaluate(drop(x), at={"x": np.ones(1000, np.float32), **drop.inputs()})
    >>> sorted(set(y.tolist()))  # zeroed, or scaled by 1/(1 - p)
    [0.0, 2.0]
    >>> drop.eval()(x) is x  # the identity in eval mode
    True
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
    """1 / (1 + exp(-x)), the logistic function of each entry.

    Args:
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1,))
    >>> dk.evaluate(nn.Sigmoid()(x), at={"x": [0.0]}).tolist()
    [0.5]
    """

    def forward(self, x: Node) -> Node:
        return ops.sigmoid(x)


class Tanh(Module):
    """tanh(x) of each entry.

    Args:
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1,))
    >>> dk.evaluate(nn.Tanh()(x), at={"x": [0.0]}).tolist()
    [0.0]
    """

    def forward(self, x: Node) -> Node:
        return ops.tanh(x)


class Identity(Module):
    """x unchanged (a placeholder, as ``torch.nn.Identity``).

    Args:
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.Identity()(x), at={"x": [1.0, 2.0]}).tolist()
    [1.0, 2.0]
    """

    def forward(self, x: Node) -> Node:
        return x


def flatten(x: Node) -> Node:
    """(N, ...) -> (N, prod(...)), the size written out so that a batch of 0 flattens too
    (numpy cannot infer a -1 next to a 0)."""
    return ops.reshape(x, (x.shape[0], math.prod(x.shape[1:])))


class Flatten(Module):
    """(N, ...) -> (N, prod(...)).

    Args:
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> nn.Flatten()(dk.variable("x", (2, 3, 4))).shape
    (2, 12)
    """

    def forward(self, x: Node) -> Node:
        return flatten(x)


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ...; ``checkpoint=k`` runs
    them in k checkpointed segments (:func:`~diffkit.nn.with_checkpoints`).

    Args:
        *modules: the modules, in order.
        checkpoint: the number of checkpointed segments, or None.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.ReLU())
    >>> x = dk.variable("x", (1, 2, 2))
    >>> dk.evaluate(net(x), at={"x": [[[-1.0, 2.0], [3.0, -4.0]]]}).tolist()
    [[0.0, 2.0, 3.0, 0.0]]
    >>> [name for name, _ in net.named_modules()][1:]
    ['0', '1']
    """

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

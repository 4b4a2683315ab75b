"""Activation layers (GELU, ELU, SELU, SiLU, Mish, LeakyReLU, Hardtanh, ReLU6, Softplus,
GLU), channel dropout (``Dropout2d``) and the residual connection ``Residual``, with
PyTorch's constructor arguments and defaults.

The activations are the ops of :mod:`diffkit.ops.activations` (GELU, ELU, SiLU, leaky
ReLU, hardtanh and softplus each one fused op, and one for its derivative; SELU, ReLU6,
Mish and GLU compositions of them), with PyTorch's derivatives at their kinks.

>>> import diffkit as dk
>>> from diffkit import nn
>>> block = nn.Residual(nn.Sequential(nn.Linear(4, 4), nn.GELU()))
>>> block(dk.variable("x", (2, 4))).shape
(2, 4)
"""

from __future__ import annotations

from ..ir.node import Node, ShapeError, variable
from ..ops import activations as act
from .layers import Dropout
from .module import Module

__all__ = [
    "GELU",
    "ELU",
    "SELU",
    "SiLU",
    "Mish",
    "LeakyReLU",
    "Hardtanh",
    "ReLU6",
    "Softplus",
    "GLU",
    "Dropout2d",
    "Residual",
]


class GELU(Module):
    """x Φ(x) (``approximate="none"``) or its tanh approximation (``"tanh"``).

    Args:
        approximate: ``"none"`` (exact, through erf) or ``"tanh"``.

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.GELU()(x), at={"x": [0.0, 1.0]}).tolist()  # Phi(1) = (1 + erf(1/sqrt 2))/2
    [0.0, 0.8413447460685429]
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Node) -> Node:
        return act.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class ELU(Module):
    """x for x > 0, alpha (exp(x) - 1) otherwise.

    Args:
        alpha: the scale of the negative branch.
        inplace: PyTorch's argument, ignored (nodes are immutable).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.ELU()(x), at={"x": [-1.0, 2.0]}).tolist()  # e^-1 - 1
    [-0.6321205588285577, 2.0]
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Node) -> Node:
        return act.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SELU(Module):
    """scale · ELU(x, alpha) with the self-normalizing constants.

    Args:
        inplace: PyTorch's argument, ignored (nodes are immutable).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.SELU()(x), at={"x": [0.0, 1.0]}).tolist()  # the scale
    [0.0, 1.0507009873554805]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x: Node) -> Node:
        return act.selu(x)


class SiLU(Module):
    """x · sigmoid(x).

    Args:
        inplace: PyTorch's argument, ignored (nodes are immutable).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.SiLU()(x), at={"x": [0.0, 2.0]}).tolist()  # 2 sigmoid(2)
    [0.0, 1.7615941559557646]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x: Node) -> Node:
        return act.silu(x)


class Mish(Module):
    """x · tanh(softplus(x)).

    Args:
        inplace: PyTorch's argument, ignored (nodes are immutable).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.Mish()(x), at={"x": [0.0, 1.0]}).tolist()  # tanh(ln(1 + e))
    [0.0, 0.8650983882673103]
    """

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x: Node) -> Node:
        return act.mish(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope · x otherwise.

    Args:
        negative_slope: the slope for x < 0.
        inplace: PyTorch's argument, ignored (nodes are immutable).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.LeakyReLU(0.25)(x), at={"x": [-2.0, 3.0]}).tolist()
    [-0.5, 3.0]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Node) -> Node:
        return act.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Hardtanh(Module):
    """x limited to [min_val, max_val]; derivative 0 at the bounds (PyTorch).

    Args:
        min_val, max_val: the bounds.
        inplace: PyTorch's argument, ignored (nodes are immutable).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(nn.Hardtanh()(x), at={"x": [-2.0, 0.5, 2.0]}).tolist()
    [-1.0, 0.5, 1.0]
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val {min_val} must not exceed max_val {max_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x: Node) -> Node:
        return act.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class ReLU6(Hardtanh):
    """min(max(x, 0), 6).

    Args:
        inplace: PyTorch's argument, ignored (nodes are immutable).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(nn.ReLU6()(x), at={"x": [-1.0, 3.0, 7.0]}).tolist()
    [0.0, 3.0, 6.0]
    """

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold.

    Args:
        beta: the sharpness.
        threshold: where beta x exceeds it, the result is x.

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.Softplus(beta=2.0)(x), at={"x": [0.0, 30.0]}).tolist()  # ln(2)/2; linear
    [0.34657359027997264, 30.0]
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x: Node) -> Node:
        return act.softplus_beta(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class GLU(Module):
    """a · sigmoid(b), a and b the halves of the input along ``dim``.

    Args:
        dim: the axis to halve (its length must be even).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(nn.GLU()(x), at={"x": [3.0, 0.0]}).tolist()  # 3 sigmoid(0)
    [1.5]
    """

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = int(dim)

    def forward(self, x: Node) -> Node:
        return act.glu(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Dropout2d(Dropout):
    """Channel dropout, as ``torch.nn.Dropout2d``: in training mode each channel of each
    sample is zeroed with probability ``p`` and the others are scaled by 1/(1-p); in eval
    mode the identity. Takes (N, C, H, W) inputs, and (N, C, L) ones with one mask entry
    per (N, C) (PyTorch's reading of a 3-d input).

    Args:
        p: the probability of zeroing a channel, in [0, 1).
        seed: seeds the layer's generator (default: drawn from ``manual_seed``'s).
        dtype: the dtype of the layer's values (float32 by default).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> drop = nn.Dropout2d(0.5, seed=0)
    >>> x = dk.variable("x", (1, 64, 2, 2))
    >>> y = dk.evaluate(drop(x), at={"x": np.ones(x.shape, np.float32), **drop.inputs()})
    >>> sorted(set(y.ravel().tolist())), bool((y == y[:, :, :1, :1]).all())  # whole channels
    ([0.0, 2.0], True)
    """

    def forward(self, x: Node) -> Node:
        if x.ndim not in (3, 4):
            raise ShapeError(
                f"Dropout2d({self._path or 'dropout'}): expected an (N, C, H, W) or "
                f"(N, C, L) input, got shape {x.shape}"
            )
        if not self.training or self.p == 0:
            return x
        shape = x.shape[:2] + (1,) * (x.ndim - 2)
        if shape not in self._shapes:
            self._shapes.append(shape)
        return x * variable(self._mask_name(shape), shape)


class Residual(Module):
    """y = body(x) + shortcut(x), the shortcut the identity by default (a residual, or
    skip, connection). The children are named ``body`` and ``shortcut``.

    Args:
        body: the module on the main path.
        shortcut: the module on the skip path (a 1×1 convolution for a projection), or
            ``None`` for the identity.

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> block = nn.Residual(nn.ReLU())
    >>> x = dk.variable("x", (3,))
    >>> dk.evaluate(block(x), at={"x": [-1.0, 0.0, 2.0]}).tolist()  # relu(x) + x
    [-1.0, 0.0, 4.0]
    """

    def __init__(self, body: Module, shortcut: Module | None = None):
        super().__init__()
        self.body = body
        if shortcut is not None:
            self.shortcut = shortcut
        else:
            object.__setattr__(self, "shortcut", None)

    def forward(self, x: Node) -> Node:
        y = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if y.shape != skip.shape:
            raise ShapeError(
                f"Residual({self._path or 'residual'}): the body gives shape {y.shape} but "
                f"the shortcut {skip.shape}"
            )
        return y + skip

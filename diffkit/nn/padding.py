"""Padding as PyTorch's ``torch.nn.functional.pad`` (per-side widths, last axis first;
modes ``"constant"``, ``"reflect"``, ``"replicate"``, ``"circular"``) and its padding
layers (``ZeroPad2d``, ``ConstantPad2d``, ``ReflectionPad2d``, ``ReplicationPad2d``,
``CircularPad2d``). The non-constant modes are :func:`diffkit.pad`'s ``"reflect"``,
``"edge"`` and ``"wrap"``: gathers whose gradients add the copies of an entry.

>>> import diffkit as dk
>>> from diffkit.nn.padding import pad
>>> pad(dk.variable("x", (1, 2, 4, 5)), (1, 2, 0, 3), mode="reflect").shape
(1, 2, 7, 8)
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ir.node import Node, ShapeError, as_node
from .module import Module

__all__ = [
    "pad",
    "ZeroPad2d",
    "ConstantPad2d",
    "ReflectionPad2d",
    "ReplicationPad2d",
    "CircularPad2d",
]

# PyTorch's modes as np.pad's
_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _widths(pad, ndim: int, op: str) -> list[tuple[int, int]]:
    """PyTorch's flat per-side widths (last axis first) as np.pad's (before, after) per axis."""
    try:
        pad = tuple(pad)
    except TypeError:
        raise ValueError(f"{op}: pad must be a sequence of ints, got {pad!r}") from None
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad):
        raise ValueError(f"{op}: pad must be a sequence of ints, got {pad!r}")
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(
            f"{op}: pad {pad} must have an even length of at most twice the input's "
            f"{ndim} dimensions"
        )
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return widths


def _crop(x: Node, widths) -> Node:
    """``x`` without the entries that negative widths remove."""
    if not any(a < 0 or b < 0 for a, b in widths):
        return x
    index = tuple(slice(max(-a, 0), d - max(-b, 0)) for d, (a, b) in zip(x.shape, widths))
    if any(s.stop < s.start for s in index):
        raise ShapeError(f"pad: widths {widths} crop more than the input {x.shape} holds")
    return x[index]


def pad(input, pad, mode: str = "constant", value=None) -> Node:
    """``input`` padded as ``torch.nn.functional.pad``: ``pad`` holds (before, after)
    widths for the last axis, then the one before it, and so on; a negative width crops.
    Constant padding fills with ``value`` (0 by default); the other modes pad the last 1
    to 3 axes of a batched or unbatched input (2, 4 or 6 widths), reflecting, repeating
    or wrapping the input's edges, ``"reflect"`` by less than the axis' size,
    ``"circular"`` by at most its size.

    Args:
        input: a node, or an array (taken as a constant).
        pad: an even number of widths, (before, after) per axis from the last one.
        mode: ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        value: the fill value of ``"constant"`` (0 by default).

    Returns:
        Node: the padded (or cropped) input.

    Raises:
        ValueError: an odd number of widths, an unknown mode, or widths the mode cannot
            take.

    >>> import diffkit as dk
    >>> from diffkit.nn import functional as F
    >>> x = dk.variable("x", (1, 3))
    >>> dk.evaluate(F.pad(x, (1, -1)), at={"x": [[1.0, 2.0, 3.0]]}).tolist()  # crop on the right
    [[0.0, 1.0, 2.0]]
    """
    x = as_node(input)
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    widths = _widths(pad, x.ndim, "pad")
    grow = [(max(a, 0), max(b, 0)) for a, b in widths]
    if mode == "constant":
        x = _crop(x, widths)
        if not any(a or b for a, b in grow):
            return x
        return ops.pad(x, grow, "constant", constant_values=0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: mode {mode!r} takes no value, got {value!r}")
    if mode == "circular":  # as PyTorch's: the crop first, then the wrap of what is left
        x = _crop(x, widths)
    padded = len(tuple(pad)) // 2
    if padded > 3 or x.ndim not in (padded + 1, padded + 2):
        raise ValueError(
            f"pad: mode {mode!r} pads the last 1 to 3 axes of a batched or unbatched input; "
            f"got {padded} axes of an input of shape {x.shape}"
        )
    for k, (a, b) in enumerate(grow):
        size = x.shape[k]
        if not (a or b):
            continue
        if size == 0:
            raise ValueError(f"pad: mode {mode!r} cannot pad the empty axis {k} of {x.shape}")
        if mode == "reflect" and max(a, b) >= size:
            raise ValueError(
                f"pad: reflect padding {(a, b)} must be less than the size {size} of axis {k}"
            )
        if mode == "circular" and max(a, b) > size:
            raise ValueError(
                f"pad: circular padding {(a, b)} must be at most the size {size} of axis {k}"
            )
    # reflect and replicate copy about the input's own edges, then negative widths crop
    if any(a or b for a, b in grow):
        x = ops.pad(x, grow, _MODES[mode])
    return x if mode == "circular" else _crop(x, [(min(a, 0), min(b, 0)) for a, b in widths])


def _four(padding, name: str) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) from an int or a 4-tuple, as PyTorch's padding layers."""
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4
    try:
        left, right, top, bottom = padding
        return int(left), int(right), int(top), int(bottom)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: padding must be an int or 4 ints, got {padding!r}") from None


class _Pad2d(Module):
    mode = "constant"

    def __init__(self, padding, value=None):
        super().__init__()
        self.padding = _four(padding, type(self).__name__)
        self.value = value

    def forward(self, x: Node) -> Node:
        try:
            return pad(x, self.padding, self.mode, self.value)
        except (ValueError, ShapeError) as err:
            raise type(err)(f"{type(self).__name__}({self._path or 'pad'}): {err}") from None

    def extra_repr(self) -> str:
        return f"{self.padding}" + (f", value={self.value}" if self.value is not None else "")


class ZeroPad2d(_Pad2d):
    """Zeros around the last two axes: padding (left, right, top, bottom) or one int.

    Args:
        padding: an int, or (left, right, top, bottom).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 2))
    >>> dk.evaluate(nn.ZeroPad2d((1, 2, 0, 0))(x), at={"x": [[[5.0, 6.0]]]}).tolist()
    [[[0.0, 5.0, 6.0, 0.0, 0.0]]]
    """

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ConstantPad2d(_Pad2d):
    """``value`` around the last two axes: padding (left, right, top, bottom) or one int.

    Args:
        padding: an int, or (left, right, top, bottom).
        value: the fill value.

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 1))
    >>> dk.evaluate(nn.ConstantPad2d(1, 7.0)(x), at={"x": [[[5.0]]]}).tolist()
    [[[7.0, 7.0, 7.0], [7.0, 5.0, 7.0], [7.0, 7.0, 7.0]]]
    """

    def __init__(self, padding, value: float):
        super().__init__(padding, float(value))


class ReflectionPad2d(_Pad2d):
    """The reflection of the last two axes about their edges (the edge not repeated).

    Args:
        padding: an int, or (left, right, top, bottom), each less than the axis' size.
        value: not used (PyTorch's signature).

    Raises:
        ValueError: a width is not less than the axis' size.

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 3))
    >>> dk.evaluate(nn.ReflectionPad2d((2, 1, 0, 0))(x), at={"x": [[[1.0, 2.0, 3.0]]]}).tolist()
    [[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]]
    """

    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """The edge rows and columns repeated.

    Args:
        padding: an int, or (left, right, top, bottom).
        value: not used (PyTorch's signature).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 3))
    >>> dk.evaluate(nn.ReplicationPad2d((2, 1, 0, 0))(x), at={"x": [[[1.0, 2.0, 3.0]]]}).tolist()
    [[[1.0, 1.0, 1.0, 2.0, 3.0, 3.0]]]
    """

    mode = "replicate"


class CircularPad2d(_Pad2d):
    """The last two axes wrapped around (periodic).

    Args:
        padding: an int, or (left, right, top, bottom), each at most the axis' size.
        value: not used (PyTorch's signature).

    >>> import diffkit as dk
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 3))
    >>> dk.evaluate(nn.CircularPad2d((2, 1, 0, 0))(x), at={"x": [[[1.0, 2.0, 3.0]]]}).tolist()
    [[[2.0, 3.0, 1.0, 2.0, 3.0, 1.0]]]
    """

    mode = "circular"

"""Pooling layers: MaxPool2d, AvgPool2d, AdaptiveMaxPool2d and AdaptiveAvgPool2d, with
PyTorch's constructor arguments and defaults. They take NCHW inputs and unbatched CHW
ones, and a batch of 0 gives an empty output.

>>> import diffkit as dk
>>> from diffkit import nn
>>> nn.AdaptiveAvgPool2d((1, 1))(dk.variable("x", (8, 16, 5, 5))).shape
(8, 16, 1, 1)
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..ir.node import Node, ShapeError
from ..ops.windows import pair
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveMaxPool2d", "AdaptiveAvgPool2d"]


def _positive(name, **values):
    for key, value in values.items():
        if not all(isinstance(v, (int, np.integer)) and v > 0 for v in value):
            raise ValueError(f"{name}: {key} must hold positive integers, got {value!r}")


class _Pool(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        empty = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
        self.stride = self.kernel_size if empty else pair(stride, "stride")
        self.padding = pair(padding, "padding")
        self.ceil_mode = bool(ceil_mode)
        _positive(type(self).__name__, kernel_size=self.kernel_size, stride=self.stride)
        if min(self.padding) < 0:
            raise ValueError(
                f"{type(self).__name__}: padding must be non-negative, got {padding!r}"
            )

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"ceil_mode={self.ceil_mode}"
        )

    def _run(self, build, x: Node) -> Node:
        try:
            return build(x)
        except ShapeError as err:
            raise ShapeError(f"{type(self).__name__}({self._path or 'pool'}): {err}") from None


class MaxPool2d(_Pool):
    """Max over (dilated) windows; padding counts as -inf; the gradient goes to each
    window's first maximum (PyTorch).

    Args:
        kernel_size, stride, padding, dilation: ints or pairs; stride defaults to the kernel.
        return_indices: also return the flat index into H×W of each window's first
            maximum (an int64 node without derivative), as PyTorch.
        ceil_mode: round the output size up.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 2, 4))
    >>> y, i = nn.MaxPool2d(2, return_indices=True)(x)
    >>> at = {"x": [[[[1.0, 5.0, 2.0, 2.0], [3.0, 0.0, 2.0, 1.0]]]]}
    >>> dk.evaluate(y, at=at).tolist(), dk.evaluate(i, at=at).tolist()  # torch's
    ([[[[5.0, 2.0]]]], [[[[1, 2]]]])
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = pair(dilation, "dilation")
        _positive("MaxPool2d", dilation=self.dilation)
        self.return_indices = bool(return_indices)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}"

    def forward(self, x: Node):
        args = (self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
        out = self._run(lambda x: ops.max_pool2d(x, *args), x)
        if self.return_indices:
            return out, ops.max_pool2d_indices(x, *args)
        return out


class AvgPool2d(_Pool):
    """Mean over windows; the zero padding counts in the divisor unless
    ``count_include_pad=False``; ``divisor_override`` replaces the divisor.

    Args:
        kernel_size: an int or a pair.
        stride: an int or a pair; None for the kernel size.
        padding: an int or a pair (at most half the kernel).
        ceil_mode: round the output size up.
        count_include_pad: count the zero padding in the divisor.
        divisor_override: a divisor for every window instead.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 2, 2))
    >>> pool = nn.AvgPool2d(2, padding=1, count_include_pad=False)
    >>> dk.evaluate(pool(x), at={"x": [[[[1.0, 2.0], [3.0, 4.0]]]]}).tolist()  # one entry each
    [[[[1.0, 2.0], [3.0, 4.0]]]]
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override=None,
    ):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return super().extra_repr() + f", count_include_pad={self.count_include_pad}"

    def forward(self, x: Node) -> Node:
        return self._run(
            lambda x: ops.avg_pool2d(
                x,
                self.kernel_size,
                self.stride,
                self.padding,
                self.ceil_mode,
                self.count_include_pad,
                self.divisor_override,
            ),
            x,
        )


class _AdaptivePool(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def _run(self, build, x: Node) -> Node:
        try:
            return build(x, self.output_size)
        except ShapeError as err:
            raise ShapeError(f"{type(self).__name__}({self._path or 'pool'}): {err}") from None


class AdaptiveAvgPool2d(_AdaptivePool):
    """The mean over each of ``output_size`` bins (PyTorch's bins
    [floor(i·H/OH), ceil((i+1)·H/OH))); ``None`` in ``output_size`` keeps that size.

    Args:
        output_size: an int or a pair (an entry None keeps the input's size).

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 1, 5))
    >>> y = nn.AdaptiveAvgPool2d((1, 2))(x)  # the bins [0, 3) and [2, 5)
    >>> dk.evaluate(y, at={"x": [[[[1.0, 4.0, 1.0, 0.0, 5.0]]]]}).tolist()
    [[[[2.0, 2.0]]]]
    """

    def forward(self, x: Node) -> Node:
        return self._run(ops.adaptive_avg_pool2d, x)


class AdaptiveMaxPool2d(_AdaptivePool):
    """The maximum over each of ``output_size`` bins, the gradient to its first maximum.

    Args:
        output_size: an int or a pair (an entry None keeps the input's size).
        return_indices: also return the flat index into H×W of each bin's first maximum.

    >>> import diffkit as dk, numpy as np
    >>> from diffkit import nn
    >>> x = dk.variable("x", (1, 1, 1, 5))
    >>> y = nn.AdaptiveMaxPool2d((1, 2))(x)  # the bins [0, 3) and [2, 5)
    >>> dk.evaluate(y, at={"x": [[[[1.0, 4.0, 2.0, 0.0, 3.0]]]]}).tolist()
    [[[[4.0, 3.0]]]]
    """

    def __init__(self, output_size, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, x: Node):
        out = self._run(ops.adaptive_max_pool2d, x)
        if self.return_indices:
            return out, ops.adaptive_max_pool2d_indices(x, self.output_size)
        return out

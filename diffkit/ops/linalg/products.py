"""Products of matrices: ``matrix_power`` by repeated squaring, the chain ``multi_dot``,
and ``matrix_transpose`` of a stack."""

from __future__ import annotations

import numpy as np

from ...ir.node import Node, apply, as_node
from ...ir.op import Sample, function
from ..shape import broadcast_to, matmul
from ._helpers import _T, _eye, _matrix, _square, _well_conditioned
from .systems import INV


# ---- matrix_power, multi_dot --------------------------------------------------------------


@function(
    numpy=(np.linalg.matrix_power,),
    samples=(
        Sample(((3, 3),), {"n": 3}),
        Sample(((2, 3, 3),), {"n": 0}),
        Sample(((3, 3),), {"n": -2}, make=_well_conditioned((3, 3))),
    ),
)
def matrix_power(a, n: int) -> Node:
    """``a`` raised to the integer power ``n`` by repeated squaring (``n < 0`` inverts
    first), as ``np.linalg.matrix_power``.

    Args:
        a: a node or array: a square matrix, or a stack of them (leading axes).
        n: the integer power (negative powers invert).

    Returns:
        Node: ``a`` multiplied by itself ``n`` times.

    Raises:
        ShapeError: the last two axes are not square.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (2, 2))
    >>> dk.evaluate(np.linalg.matrix_power(A, 3), at={"A": [[1.0, 1.0], [0.0, 1.0]]}).tolist()
    [[1.0, 3.0], [0.0, 1.0]]
    """
    a = as_node(a)
    _square("matrix_power", a.shape)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"matrix_power: the exponent must be an integer, got {n!r}")
    n = int(n)
    if n == 0:
        return broadcast_to(_eye(a.shape[-1]), a.shape)
    if n < 0:
        a, n = apply(INV, a), -n
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


@function(
    numpy=(np.linalg.multi_dot,),
    samples=(Sample(((2, 3), (3, 4), (4,)), pack=True),),
    arity=(1, None),
)
def multi_dot(arrays, *, out=None) -> Node:
    """The product of a chain of matrices (the first may be 1-D, the last too), as
    ``np.linalg.multi_dot``.

    Args:
        arrays: a sequence of nodes or arrays (the first and last may be vectors).
        out: numpy's argument, refused on IR nodes.

    Returns:
        Node: the product, in the cheapest order.

    >>> import diffkit as dk, numpy as np
    >>> a, b = dk.variable("a", (2, 3)), dk.variable("b", (3,))
    >>> np.linalg.multi_dot([a, b]).shape
    (2,)
    """
    if out is not None:
        raise TypeError("multi_dot: out= is not supported on IR nodes")
    arrays = [as_node(x) for x in arrays]
    if len(arrays) < 2:
        raise ValueError("multi_dot: give at least two arrays")
    result = arrays[0]
    for x in arrays[1:]:
        result = matmul(result, x)
    return result


@function(numpy=(np.linalg.matrix_transpose,), samples=(Sample(((2, 3, 4),)),))
def matrix_transpose(x, /) -> Node:
    """Each matrix of a stack transposed (the last two axes exchanged).

    Args:
        x: a node or array of two axes or more.

    Returns:
        Node: ``x`` with its last two axes exchanged.

    Raises:
        ShapeError: ``x`` has fewer than two axes.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 2, 3))
    >>> dk.matrix_transpose(x).shape
    (2, 3, 2)
    >>> dk.evaluate(dk.matrix_transpose(x), at={"x": np.arange(12.0).reshape(2, 2, 3)})[1].tolist()
    [[6.0, 9.0], [7.0, 10.0], [8.0, 11.0]]
    """
    x = as_node(x)
    _matrix("matrix_transpose", x.shape)
    return _T(x)

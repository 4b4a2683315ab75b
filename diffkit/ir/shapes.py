"""Shape rules shared by many ops: broadcasting, reductions, axis normalisation."""

from __future__ import annotations

from .node import ShapeError

__all__ = ["broadcast", "reduce_shape", "normalize_axes", "elementwise_shape"]


def broadcast(op: str, *shapes: tuple) -> tuple:
    """The numpy broadcast of ``shapes``, or a ShapeError naming ``op`` and the shapes."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        dims = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            shown = " and ".join(str(tuple(s)) for s in shapes)
            raise ShapeError(f"{op}: cannot broadcast shapes {shown}")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def elementwise_shape(name: str):
    """A shape rule for an elementwise op of any arity called ``name``."""

    def rule(shapes, **_):
        return broadcast(name, *shapes)

    return rule


def normalize_axes(op: str, axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for an input of {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def reduce_shape(op: str, shape: tuple, axis, keepdims: bool) -> tuple:
    axes = normalize_axes(op, axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)

"""Helpers shared by the elementwise op families: record builders and sample sets."""

from __future__ import annotations

from ..ir.node import apply
from ..ir.op import ELEMENTWISE, Op, Sample, register
from ..ir.shapes import elementwise_shape

__all__ = ["keep", "unary", "binary", "binary_samples", "S1", "POS", "real"]

#: a scalar and a matrix sample on [-2, 2]
S1 = (Sample(((),)), Sample(((3, 4),)))
#: the domain of ops defined for positive inputs
POS = dict(low=0.3, high=3.0)


def keep(node, shape):
    """``node`` broadcast to ``shape`` (a fold must not change the output's shape)."""
    if node.shape == shape:
        return node
    return apply("broadcast_to", node, shape=shape)


def real(x):
    """The real part of a numpy array (itself when it is real)."""
    return x.real if x.dtype.kind == "c" else x


def unary(
    name, impl, vjp, mp, sp, *, samples=S1, analytic=True, fold=None, exact=None, doc="", **front
):
    """Register an elementwise op of one input (its JVP derived from its VJP); ``front``
    holds the record's other fields (``names``, ``numpy``, ``sympy_from``...)."""
    return register(
        Op(
            name=name,
            shape=elementwise_shape(name),
            impl=impl,
            vjp=vjp,
            jvp=ELEMENTWISE,
            mpmath=mp,
            sympy=sp,
            samples=samples,
            analytic=analytic,
            fold=fold,
            exact=exact,
            doc=doc,
            kind="elementwise",
            **front,
        )
    )


def binary(
    name, impl, vjp, mp, sp, *, samples=None, analytic=True, fold=None, exact=None, doc="", **front
):
    """Register an elementwise op of two broadcasting inputs."""
    return unary(
        name,
        impl,
        vjp,
        mp,
        sp,
        samples=samples or binary_samples(),
        analytic=analytic,
        fold=fold,
        exact=exact,
        doc=doc,
        **front,
    )


def binary_samples(**kw):
    """Scalar, equal-shape and two broadcasting samples of a binary op."""
    return (
        Sample(((), ()), **kw),
        Sample(((3, 4), (3, 4)), **kw),
        Sample(((2, 3), (3,)), **kw),
        Sample(((4, 1), (1, 5)), **kw),
    )

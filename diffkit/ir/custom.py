"""User-defined blocks with hand-written derivatives.

A block such as the course notes' "Sigmoid" is computed by its own numpy code and
differentiated by the rule its author states, instead of by tracing its
elementary operations. :func:`custom_op` turns such a definition into a full op
record, so every differentiator, interpreter and test treats it like a built-in
op; diffkit's own ``sigmoid`` is defined this way.
"""

from __future__ import annotations

from typing import Callable

from .node import Node, apply
from .op import ELEMENTWISE, Op, Sample, Unsupported, register
from .shapes import elementwise_shape

__all__ = ["custom_op"]


def custom_op(
    name: str,
    impl: Callable,
    vjp: Callable,
    *,
    jvp=ELEMENTWISE,
    shape=None,
    mpmath=None,
    sympy=None,
    samples=None,
    analytic: bool = True,
    doc: str = "",
    **front,
) -> Callable[..., Node]:
    """Register a block with a hand-written derivative and return its builder.

    Args:
        name: the op's name (must be new).
        impl: numpy implementation ``(*arrays) -> array``.
        vjp: ``(cotangent, out, *inputs) -> tuple`` of cotangents, written with
            diffkit ops so that the derivative is a graph that can be
            differentiated again. ``out`` is the block's own output node.
        jvp: a JVP rule; by default derived from ``vjp`` (right for elementwise blocks).
        shape: the shape rule; elementwise broadcasting by default.
        mpmath, sympy: scalar translations; omitted means the block opts out.
        samples: test inputs; one scalar and one 3x4 sample by default.
        analytic: whether the complex step may run through the block.
        doc: one line describing it.
        front: the record's other fields: ``names`` (in the expression language),
            ``numpy`` (numpy functions it implements), ``sympy_from``, ``rules``...
            (see :class:`~diffkit.ir.op.Op`).

    Returns:
        A function building the block's node from its inputs.

    >>> import diffkit as dk, numpy as np
    >>> softsign = dk.custom_op(
    ...     "softsign_example", lambda x: x / (1 + np.abs(x)),
    ...     lambda ct, out, x: (ct / (1 + dk.abs(x)) ** 2,),
    ...     analytic=False)
    >>> x = dk.variable("x")
    >>> dk.derivative(softsign(x), "x", at={"x": 1.0})
    0.25
    """
    record = register(
        Op(
            name=name,
            shape=shape or elementwise_shape(name),
            impl=impl,
            vjp=vjp,
            jvp=jvp,
            mpmath=mpmath if mpmath is not None else Unsupported(f"{name}: no mpmath rule given"),
            sympy=sympy if sympy is not None else Unsupported(f"{name}: no SymPy rule given"),
            samples=samples if samples is not None else (Sample(((),)), Sample(((3, 4),))),
            analytic=analytic,
            doc=doc,
            kind="elementwise" if shape is None else "other",
            **front,
        )
    )

    def build(*inputs, **attrs) -> Node:
        return apply(record, *inputs, **attrs)

    build.__name__ = name
    build.__doc__ = doc or f"The custom block {name!r}."
    build.op = record
    return build

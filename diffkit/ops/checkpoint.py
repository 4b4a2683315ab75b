"""The three ops of checkpointing (rematerialization): region outputs, names, and order.

- ``checkpoint_out(y, region=R)`` is ``y``, marked as an output of the checkpointed
  region ``R`` (a :class:`diffkit.differentiators.checkpoint.Region`): reverse mode
  differentiates the nodes of ``R`` on values recomputed in the backward pass.
- ``checkpoint_name(x, name="...")`` is ``x``, named for the policies that save values by
  name (``jax.ad_checkpoint.checkpoint_name``).
- ``recompute_after(x, dep)`` is ``x``, available only once ``dep`` has been computed:
  the recomputed copy of a region starts from it, so that it is a node of its own (not
  the hash-consed forward value) and is scheduled in the backward pass, after the
  cotangent ``dep`` exists, instead of being kept from the forward pass.

All three return their input unchanged (no copy, no arithmetic), so values and
derivatives are those of the unmarked graph bit for bit.

The rule kind ``"remat"`` says what an op's record tells checkpoint policies: ``"dot"``
(:data:`DOT`) marks a contraction or convolution (matmul, einsum, the conv2d kernels),
whose outputs the ``dots`` policy keeps (JAX's ``dots_saveable``). No op kind derives it.
"""

from __future__ import annotations

import scipy.sparse as sp

from ..ir.node import apply
from ..ir.op import STRUCTURAL, Op, Sample, register, rule_kind
from ._taylor import JVP_EACH

__all__ = [
    "checkpoint_name",
    "recompute_after",
    "is_dot",
    "CHECKPOINT_OUT",
    "RECOMPUTE_AFTER",
    "NAME",
    "DOT",
]

#: the "remat" rule of a contraction or convolution (its record: ``rules={"remat": DOT}``)
DOT = "dot"
rule_kind("remat")


def is_dot(op) -> bool:
    """Whether ``op``'s record marks it a contraction or convolution (``"remat": "dot"``).

    >>> from diffkit.ir.op import get_op
    >>> is_dot(get_op("matmul")), is_dot(get_op("tanh"))
    (True, False)
    """
    return op is not None and op.rule("remat") == DOT


def _first_shape(shapes, **attrs):
    return tuple(shapes[0])


def _broadcast_first(node, inputs, batch):
    (x, batched), *rest = inputs
    if not batched:
        x = apply("broadcast_to", x, shape=(batch,) + x.shape)
    return apply(node.op, x, *[y for y, _ in rest], **node.attrs)


def _identity_pattern(node, values):
    # output entry o depends on entry o of the first input only
    eye = sp.identity(node.size, dtype=bool, format="csr")
    return [eye] + [None] * (len(node.inputs) - 1)


def _unmarked(node, inputs, batch):
    # a batched graph is evaluated, never differentiated again: the mark is dropped
    (x, batched), *_ = inputs
    return x if batched else apply("broadcast_to", x, shape=(batch,) + x.shape)


CHECKPOINT_OUT = register(
    Op(
        name="checkpoint_out",
        shape=_first_shape,
        impl=lambda x, region=None: x,
        # d/dx x = 1: the cotangent passes to the region's output node
        vjp=lambda ct, out, x, region=None: (ct,),
        jvp=lambda tangents, out, x, region=None: tangents[0],
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((3,),)), Sample(((2, 3),), attrs={"region": None})),
        analytic=True,
        doc="an output of a checkpointed region (identity)",
        rules={"batch": _unmarked, "taylor": JVP_EACH, "sparsity": _identity_pattern},
    )
)

NAME = register(
    Op(
        name="checkpoint_name",
        shape=_first_shape,
        impl=lambda x, name="": x,
        # d/dx x = 1
        vjp=lambda ct, out, x, name="": (ct,),
        jvp=lambda tangents, out, x, name="": tangents[0],
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((3,),), attrs={"name": "h"}),),
        analytic=True,
        doc="a value named for checkpoint policies (identity)",
        rules={"batch": _broadcast_first, "taylor": JVP_EACH, "sparsity": _identity_pattern},
    )
)

RECOMPUTE_AFTER = register(
    Op(
        name="recompute_after",
        shape=_first_shape,
        impl=lambda x, dep: x,
        # d/dx x = 1; dep only orders the schedule and carries no derivative
        vjp=lambda ct, out, x, dep: (ct, None),
        jvp=lambda tangents, out, x, dep: tangents[0],
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(Sample(((3,), (2,)), const=(1,)),),
        analytic=True,
        nondiff_inputs=(1,),
        doc="x, computed only once dep is (orders recomputation)",
        rules={"batch": _broadcast_first, "taylor": JVP_EACH, "sparsity": _identity_pattern},
    )
)


def checkpoint_name(x, name: str):
    """``x``, named ``name`` for the ``save_only_these_names`` policy of checkpointing.

    Args:
        x: a node.
        name: the name.

    Returns:
        Node: ``x``'s value, named.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (2,))
    >>> dk.evaluate(checkpoint_name(dk.sin(x), "h"), at={"x": [0.0, 0.0]}).tolist()
    [0.0, 0.0]
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"checkpoint_name: name must be a non-empty string, got {name!r}")
    return apply(NAME, x, name=name)


def recompute_after(x, dep):
    """``x``, scheduled after ``dep`` (the start of a recomputation; see the module)."""
    return apply(RECOMPUTE_AFTER, x, dep)

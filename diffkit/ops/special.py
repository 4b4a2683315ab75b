"""Activation blocks with hand-written derivatives: sigmoid and softplus.

Both are defined with :func:`diffkit.custom_op`, the way the course notes define
a "Sigmoid" block: computed by stable numpy code, differentiated by a stated rule.
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy

from ..ir.custom import custom_op


__all__ = ["sigmoid", "softplus"]


def _sigmoid_impl(x):
    if x.dtype.kind == "c":
        return 1.0 / (1.0 + np.exp(-x))
    # exp(-log(1 + exp(-x))) never overflows
    return np.exp(-np.logaddexp(0.0, -x))


sigmoid = custom_op(
    "sigmoid",
    _sigmoid_impl,
    # d/dx sigmoid x = sigmoid x (1 - sigmoid x)
    lambda ct, out, x: (ct * out * (1 - out),),
    mpmath=lambda x: 1 / (1 + mpmath.exp(-x)),
    sympy=lambda x: 1 / (1 + sympy.exp(-x)),
    doc="1 / (1 + exp(-x)), the logistic function",
)


def _softplus_impl(x):
    if x.dtype.kind == "c":
        return np.log1p(np.exp(x))
    return np.logaddexp(0.0, x)


softplus = custom_op(
    "softplus",
    _softplus_impl,
    # d/dx log(1 + e^x) = sigmoid x
    lambda ct, out, x: (ct * sigmoid(x),),
    mpmath=lambda x: mpmath.log(1 + mpmath.exp(x)),
    sympy=lambda x: sympy.log(1 + sympy.exp(x)),
    doc="log(1 + exp(x)), computed without overflow",
)

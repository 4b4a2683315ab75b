"""Activation blocks with hand-written derivatives: sigmoid and softplus.

Both are defined with :func:`diffkit.custom_op`, the way the course notes define
a "Sigmoid" block: computed by stable numpy code, differentiated by a stated rule.
"""

from __future__ import annotations

import mpmath
import numpy as np
import scipy.special
import sympy

from ..ir.custom import custom_op
from .transcendental import _log1p_impl


__all__ = ["sigmoid", "softplus"]


def _sigmoid_impl(x):
    if x.dtype.kind == "c":  # the branch whose exponential cannot overflow
        ez = np.exp(np.where(x.real < 0, x, -x))
        return np.where(x.real < 0, ez / (1.0 + ez), 1.0 / (1.0 + ez))
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
    numpy=(scipy.special.expit,),
)


def _softplus_impl(x):
    if x.dtype.kind == "c":  # log(1 + e^z) = z + log(1 + e^-z): no overflow for large Re z
        positive = x.real > 0
        tail = _log1p_impl(np.exp(np.where(positive, -x, x)))
        return np.where(positive, x + tail, tail)
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

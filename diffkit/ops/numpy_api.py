"""numpy's own functions on IR nodes: the tables behind ``Node.__array_ufunc__`` and
``Node.__array_function__``.

With them an unchanged numpy function builds IR when called on nodes::

    def f(x):
        return np.sum(np.sin(x) * x)

builds ``sum(mul(sin(x), x))`` for a node ``x``. A numpy function or ufunc that diffkit
does not support raises a ``TypeError`` naming it. The tables live here, filled from the
op library; the IR only reads them (imports run ops -> ir).
"""

from __future__ import annotations

import numpy as np

from ..ir.node import ARRAY_FUNCTIONS, UFUNCS, ShapeError, as_node
from . import arithmetic as ar
from . import comparison as cmp
from . import indexing as ix
from . import reduce as red
from . import shape as sh
from . import transcendental as tr

__all__: list[str] = []


def _dot(a, b):
    a, b = as_node(a), as_node(b)
    if a.ndim == 0 or b.ndim == 0:
        return ar.mul(a, b)
    if b.ndim > 2:
        raise ShapeError(f"dot: arrays of more than 2 dimensions are not supported, got {b.shape}")
    return sh.matmul(a, b)


def _square(x):
    return ar.power(x, 2)


def _positive(x):
    return as_node(x)


UFUNCS.update(
    {
        np.add: ar.add,
        np.subtract: ar.sub,
        np.multiply: ar.mul,
        np.true_divide: ar.div,
        np.negative: ar.neg,
        np.positive: _positive,
        np.power: ar.power,
        np.float_power: ar.power,
        np.square: _square,
        np.mod: ar.mod,
        np.exp: tr.exp,
        np.exp2: tr.exp2,
        np.expm1: tr.expm1,
        np.log: tr.log,
        np.log2: tr.log2,
        np.log10: tr.log10,
        np.log1p: tr.log1p,
        np.sin: tr.sin,
        np.cos: tr.cos,
        np.tan: tr.tan,
        np.arcsin: tr.arcsin,
        np.arccos: tr.arccos,
        np.arctan: tr.arctan,
        np.arctan2: tr.arctan2,
        np.sinh: tr.sinh,
        np.cosh: tr.cosh,
        np.tanh: tr.tanh,
        np.arcsinh: tr.arcsinh,
        np.arccosh: tr.arccosh,
        np.arctanh: tr.arctanh,
        np.sqrt: tr.sqrt,
        np.cbrt: tr.cbrt,
        np.hypot: tr.hypot,
        np.logaddexp: tr.logaddexp,
        np.absolute: cmp.abs,
        np.sign: cmp.sign,
        np.floor: cmp.floor,
        np.ceil: cmp.ceil,
        np.rint: cmp.round,
        np.trunc: cmp.trunc,
        np.matmul: sh.matmul,
        np.maximum: cmp.maximum,
        np.minimum: cmp.minimum,
        np.greater: cmp.greater,
        np.greater_equal: cmp.greater_equal,
        np.less: cmp.less,
        np.less_equal: cmp.less_equal,
        np.equal: cmp.equal,
        np.not_equal: cmp.not_equal,
    }
)

ARRAY_FUNCTIONS.update(
    {
        np.sum: red.sum,
        np.mean: red.mean,
        np.var: red.var,
        np.prod: red.prod,
        np.max: red.max,
        np.amax: red.max,
        np.min: red.min,
        np.amin: red.min,
        np.cumsum: red.cumsum,
        np.dot: _dot,
        np.matmul: sh.matmul,
        np.transpose: sh.transpose,
        np.reshape: sh.reshape,
        np.broadcast_to: sh.broadcast_to,
        np.where: cmp.where,
        np.clip: cmp.clip,
        np.round: cmp.round,
        np.around: cmp.round,
        np.square: _square,
        np.concatenate: ix.concatenate,
        np.stack: ix.stack,
        np.split: ix.split,
        np.pad: ix.pad,
        np.repeat: ix.repeat,
        np.tile: ix.tile,
        np.flip: ix.flip,
        np.take: ix.take,
        "__getitem__": ix.getitem,
    }
)

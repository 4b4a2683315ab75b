"""The standardization of the normalization layers (batch, layer, instance and group
norm) as records with written-out derivatives, instead of a graph of a mean, a centring, a
square, a second mean, a square root and a division:

- ``moments(x, axis)``: the mean and the biased variance over ``axis`` in one array of
  shape ``(2,) + keepdims shape`` (``[mean, var]``);
- ``normalize(x, axis, eps)``: x̂ = (x - μ) / sqrt(σ² + ε) over ``axis``, a function of
  ``x`` alone. Its derivative is the linear map
  L g = (g - mean(g) - x̂ mean(g x̂)) / sqrt(σ² + ε), which is its own adjoint: reverse
  and forward mode both apply ``normalize_grad(g, x̂, moments(x))``, a few passes over
  the data. The ``moments`` node there is the one a batch-norm layer reads its running
  statistics from, so both are computed once.

As in the rest of diffkit, the variance of complex entries is the mean of the squared
(not conjugated) deviations, so that everything stays holomorphic.
"""

from __future__ import annotations

import string

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node
from ..ir.op import Op, Sample, Unsupported, register
from ..ir.shapes import normalize_axes
from ._batch import all_batched, shift_axis, with_attrs
from ._sparsity import grouped
from .joining import stack
from .reduce import mean as reduce_mean, sum as reduce_sum
from .shape import transpose
from .transcendental import sqrt

__all__ = ["moments", "normalize", "normalize_grad"]

_NO_MP = Unsupported("a statistic over a tensor: compose it from scalar ops for mpmath")


def _stats_first(s: Node) -> Node:
    """Statistics batched as (B, 2, ...) as (2, B, ...), or back."""
    return transpose(s, (1, 0) + tuple(range(2, s.ndim)))


def _moments_batch(node, inputs, batch):
    # B cases: the moments over the shifted axes, whose two statistics come first
    (x,) = all_batched(inputs, batch)
    axis = shift_axis(node.attrs["axis"], len(node.inputs[0].shape), True)
    return _stats_first(with_attrs(node, [x], axis=axis))


def _normalize_grad_batch(node, inputs, batch):
    g, xhat, s = all_batched(inputs, batch)
    axis = shift_axis(node.attrs["axis"], len(node.inputs[0].shape), True)
    return with_attrs(node, [g, xhat, _stats_first(s)], axis=axis)


def _keep(shape, axis) -> tuple:
    return tuple(1 if i in axis else d for i, d in enumerate(shape))


def _count(shape, axis) -> int:
    return int(np.prod([shape[a] for a in axis], dtype=np.int64))


def _group_keys(shape, axis) -> np.ndarray:
    """Each entry's group: the flat index of its coordinates off ``axis``."""
    keep = _keep(shape, axis)
    grid = np.indices(shape).reshape(len(shape), -1)
    coords = tuple(np.where(np.asarray(keep)[:, None] == 1, 0, grid)) if keep else ()
    return np.ravel_multi_index(coords, keep) if keep else np.zeros(grid.shape[1], np.int64)


def _sums(axis, ndim):
    """einsum subscripts that sum one array, or the product of two, over ``axis`` with the
    other axes kept (much faster than ``np.sum`` over leading and inner axes)."""
    letters = string.ascii_letters[:ndim]
    kept = "".join(c for i, c in enumerate(letters) if i not in axis)
    return f"{letters}->{kept}", f"{letters},{letters}->{kept}"


def _group_sum(a, axis, b=None):
    """Σ a (or Σ a b) over ``axis``, keepdims."""
    one, two = _sums(axis, a.ndim)
    total = np.einsum(one, a) if b is None else np.einsum(two, a, b)
    return np.reshape(total, _keep(a.shape, axis))


def _statistics(x, axis):
    """(mean, biased var), keepdims; 0/0 = NaN for empty groups."""
    n = _count(x.shape, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _group_sum(x, axis) / x.dtype.type(n)
        centred = x - mean
        var = _group_sum(centred, axis, centred) / x.dtype.type(n)
    return mean, var, centred


# ---- moments -------------------------------------------------------------------------------


def _moments_shape(shapes, axis):
    return (2,) + _keep(shapes[0], axis)


def _moments_impl(x, axis):
    mean, var, _ = _statistics(x, axis)
    return np.stack([mean, var])


def _moments_vjp(ct, out, x, axis):
    # d mean = mean(dx); d var = 2 mean((x - mean) dx): the adjoint spreads ct over each
    # group, the variance's part weighted by 2 (x - mean)
    n = max(_count(x.shape, axis), 1)  # over no entries x is empty, and so is its gradient
    return ((ct[0] + (x - out[0]) * (2 * ct[1])) * (1.0 / n),)


def _moments_jvp(tangents, out, x, axis):
    (t,) = tangents
    return stack(
        [
            reduce_mean(t, axis, keepdims=True),
            2 * reduce_mean((x - out[0]) * t, axis, keepdims=True),
        ]
    )


def _moments_sparsity(node, values=None) -> list:
    # each statistic of a group depends on that group's entries
    x = node.inputs[0]
    axis = node.attrs["axis"]
    groups = int(np.prod(_keep(x.shape, axis), dtype=np.int64))
    return [grouped(np.tile(np.arange(groups), 2), _group_keys(x.shape, axis))]


MOMENTS = register(
    Op(
        name="moments",
        shape=_moments_shape,
        impl=_moments_impl,
        vjp=_moments_vjp,
        jvp=_moments_jvp,
        mpmath=_NO_MP,
        sympy=_NO_MP,
        samples=(
            Sample(((4, 3, 2, 2),), {"axis": (0, 2, 3)}),
            Sample(((3, 5),), {"axis": (1,)}),
            Sample(((2, 3, 4),), {"axis": (1, 2)}),
        ),
        analytic=True,
        doc="[mean, biased variance] over axes, stacked on a new first axis (keepdims)",
        kind="other",
        rules={"batch": _moments_batch, "sparsity": _moments_sparsity},
    )
)


def moments(x, axis) -> Node:
    """The mean and the biased variance of ``x`` over ``axis``, stacked: shape ``(2,)``
    plus ``x``'s shape with ``axis`` kept as length 1 (``[mean, var]``).

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes.

    Returns:
        Node: the statistics.

    Raises:
        ShapeError: an axis is out of range.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (2, 3))
    >>> dk.evaluate(dk.moments(x, 1), at={"x": [[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]]}).tolist()
    [[[2.0], [2.0]], [[0.6666666666666666], [8.0]]]
    """
    x = as_node(x)
    return apply(MOMENTS, x, axis=normalize_axes("moments", axis, x.ndim))


# ---- normalize and its derivative ----------------------------------------------------------


def _normalize_impl(x, axis, eps):
    _, var, centred = _statistics(x, axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred *= 1 / np.sqrt(var + x.dtype.type(eps))
    return centred


def _normalize_grad_node(g, out, x, axis, eps):
    return apply(NORMALIZE_GRAD, g, out, moments(x, axis), axis=axis, eps=eps)


NORMALIZE = register(
    Op(
        name="normalize",
        shape=lambda shapes, axis, eps: tuple(shapes[0]),
        impl=_normalize_impl,
        # the derivative L is its own adjoint
        vjp=lambda ct, out, x, axis, eps: (_normalize_grad_node(ct, out, x, axis, eps),),
        jvp=lambda tangents, out, x, axis, eps: _normalize_grad_node(
            tangents[0], out, x, axis, eps
        ),
        mpmath=_NO_MP,
        sympy=_NO_MP,
        samples=(
            Sample(((4, 3, 2, 2),), {"axis": (0, 2, 3), "eps": 1e-5}),
            Sample(((3, 5),), {"axis": (1,), "eps": 0.0}),
            Sample(((2, 3, 4),), {"axis": (1, 2), "eps": 0.5}),
        ),
        analytic=True,
        doc="(x - mean) / sqrt(var + eps) over axes, with the biased variance",
        kind="reduction",
    )
)


def _scale(var, eps):
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 / np.sqrt(var + var.dtype.type(eps))


def _normalize_grad_impl(g, xhat, s, axis, eps):
    # r (g - mean(g) - x̂ mean(g x̂)), in three passes and one new array
    n = g.dtype.type(max(_count(g.shape, axis), 1))
    r = _scale(s[1], eps)
    with np.errstate(invalid="ignore"):
        out = xhat * (_group_sum(g, axis, xhat) / n)
        np.subtract(g, out, out=out)
        out -= _group_sum(g, axis) / n
        out *= r
    return out


def _normalize_grad_vjp(u, out, g, xhat, s, axis, eps):
    # out = r B with B = g - P g - x̂ P(g x̂) (P: the mean over the group): linear and
    # self-adjoint in g; in x̂, -r (δ P(g x̂) + x̂ P(g δ)), whose adjoint is
    # -r (u P(g x̂) + g P(u x̂)); in var through r = (var + eps)^(-1/2), Σ u B dr
    r = 1.0 / sqrt(s[1] + eps)
    d_g = apply(NORMALIZE_GRAD, u, xhat, s, axis=axis, eps=eps)
    p_gx = reduce_mean(g * xhat, axis, keepdims=True)
    p_ux = reduce_mean(u * xhat, axis, keepdims=True)
    d_xhat = -(r * (u * p_gx + g * p_ux))
    d_var = reduce_sum(u * out, axis, keepdims=True) * (-0.5 * r * r)
    return d_g, d_xhat, stack([d_var * 0.0, d_var])


def _normalize_grad_jvp(tangents, out, g, xhat, s, axis, eps):
    tg, tx, ts = tangents
    r = 1.0 / sqrt(s[1] + eps)
    terms = []
    if tg is not None:
        terms.append(apply(NORMALIZE_GRAD, tg, xhat, s, axis=axis, eps=eps))
    if tx is not None:
        terms.append(
            -(
                r
                * (
                    tx * reduce_mean(g * xhat, axis, keepdims=True)
                    + xhat * reduce_mean(g * tx, axis, keepdims=True)
                )
            )
        )
    if ts is not None:  # d out = B dr = out (dr / r), dr / r = -r^2 dvar / 2
        terms.append(out * (ts[1] * (-0.5 * r * r)))
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _normalize_grad_shape(shapes, axis, eps):
    g, xhat, s = shapes
    if tuple(g) != tuple(xhat) or tuple(s) != (2,) + _keep(g, axis):
        raise ShapeError(
            f"normalize_grad: cotangent {tuple(g)}, output {tuple(xhat)} and statistics "
            f"{tuple(s)} do not match over axis {axis}"
        )
    return tuple(g)


def _normalize_grad_sparsity(node, values=None) -> list:
    # an entry depends on the whole group of g and x̂, and on the group's statistics
    g, _, s = node.inputs
    axis = node.attrs["axis"]
    keys = _group_keys(g.shape, axis)
    groups = int(np.prod(s.shape[1:], dtype=np.int64))
    return [grouped(keys, keys), grouped(keys, keys), grouped(keys, np.tile(np.arange(groups), 2))]


def _grad_sample(rng, shape, axis):
    g, x = rng.standard_normal(shape), rng.standard_normal(shape)
    mean, var, centred = _statistics(x, axis)
    xhat = centred / np.sqrt(var)
    return [g, xhat, np.stack([mean, var + rng.uniform(0.1, 0.5, var.shape)])]


NORMALIZE_GRAD = register(
    Op(
        name="normalize_grad",
        shape=_normalize_grad_shape,
        impl=_normalize_grad_impl,
        vjp=_normalize_grad_vjp,
        jvp=_normalize_grad_jvp,
        mpmath=_NO_MP,
        sympy=_NO_MP,
        samples=(
            Sample(
                ((4, 3, 2), (4, 3, 2), (2, 1, 3, 1)),
                {"axis": (0, 2), "eps": 1e-5},
                make=lambda rng: _grad_sample(rng, (4, 3, 2), (0, 2)),
            ),
            Sample(
                ((3, 5), (3, 5), (2, 3, 1)),
                {"axis": (1,), "eps": 0.0},
                make=lambda rng: _grad_sample(rng, (3, 5), (1,)),
            ),
        ),
        analytic=True,
        doc="the derivative of normalize: (g - mean(g) - x̂ mean(g x̂)) / sqrt(var + eps)",
        kind="other",
        rules={"batch": _normalize_grad_batch, "sparsity": _normalize_grad_sparsity},
    )
)


def _eps(name: str, eps) -> float:
    """``eps`` as a float, or a one-line ValueError naming ``name``."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: eps must be a non-negative number, got {eps!r}")
    if not eps >= 0:
        raise ValueError(f"{name}: eps must be a non-negative number, got {eps!r}")
    return float(eps)


def normalize(x, axis, eps: float = 0.0) -> Node:
    """``(x - mean) / sqrt(var + eps)`` over ``axis`` (the biased variance), the
    standardization of the normalization layers, with its derivative written out.

    Args:
        x: a node, or a number or array (taken as a constant).
        axis: an axis or a tuple of axes.
        eps: added to the variance.

    Returns:
        Node: of ``x``'s shape.

    Raises:
        ShapeError: an axis is out of range.
        ValueError: ``eps`` is not a non-negative number.

    >>> import diffkit as dk
    >>> x = dk.variable("x", (4,))
    >>> dk.evaluate(dk.normalize(x, 0), at={"x": [1.0, 2.0, 3.0, 4.0]}).round(6).tolist()
    [-1.341641, -0.447214, 0.447214, 1.341641]
    """
    x = as_node(x)
    axis = normalize_axes("normalize", axis, x.ndim)
    return apply(NORMALIZE, x, axis=axis, eps=_eps("normalize", eps))


def normalize_grad(g, xhat, s, axis, eps: float = 0.0) -> Node:
    """The derivative of :func:`normalize` applied to ``g``:
    ``(g - mean(g) - x̂ mean(g x̂)) / sqrt(var + eps)`` over ``axis``, with ``x̂`` the
    normalized values and ``s`` the statistics ``[mean, var]`` (as :func:`moments`).

    Args:
        g: a cotangent or tangent of ``x̂``'s shape.
        xhat: the normalized values.
        s: the statistics.
        axis: the axis of the groups.
        eps: added to the variance.

    Returns:
        Node: of ``g``'s shape.

    Raises:
        ShapeError: the shapes do not match.

    >>> import diffkit as dk, numpy as np
    >>> x = dk.variable("x", (3,))
    >>> g = dk.gradient(dk.normalize(x, 0)[0], at={"x": [1.0, 2.0, 4.0]})["x"]
    >>> g.round(6).tolist()
    [0.229081, -0.343622, 0.114541]
    """
    g, xhat = as_node(g), as_node(xhat)
    axis = normalize_axes("normalize_grad", axis, g.ndim)
    return apply(NORMALIZE_GRAD, g, xhat, as_node(s), axis=axis, eps=_eps("normalize_grad", eps))

"""Contractions: einsum, and what numpy composes from products and diagonals (tensordot,
dot, inner, outer, kron, trace, diagonal, diag, triu, tril).

One primitive, ``einsum``, holds a normalized subscripts string (explicit output, no
ellipsis, every index of one size): the builder resolves numpy's implicit output, ``...``,
the interleaved (sublist) form and size-1 broadcasting before the node is built. Its JVP
is linear in each operand, a sum of einsums; its VJP for one operand is one einsum of the
cotangent with the other operands, broadcast along the indices that only that operand
carries, and put back on the diagonal (an einsum with identity matrices) where the
operand repeats an index. The rest are compositions of einsum, slicing, ``where`` and
elementwise products, so they need no rule of their own.

All of these are multilinear, so their derivatives have no ties or kinks; at complex
points the VJP is the transpose, not the conjugate transpose (JAX's convention, the one
``matmul`` follows). ``triu``/``tril``/``diag`` select with ``where`` rather than
multiplying by a mask, so an infinity outside the kept entries gives 0, as numpy.

>>> import diffkit as dk, numpy as np
>>> A = dk.variable("A", (3, 3))
>>> dk.gradient(np.einsum("ii", A), at={"A": np.ones((3, 3))})["A"].tolist()[0]
[1.0, 0.0, 0.0]
"""

from __future__ import annotations

import functools
import string

import numpy as np

from ..ir.node import Node, ShapeError, apply, as_node, const
from ..ir.op import STRUCTURAL, Op, Sample, builds, function, register
from ._batch import NotBatchable
from ._sparsity import einsum_rule
from .comparison import where
from .joining import pad
from .shape import matmul, reshape

__all__ = [
    "einsum",
    "tensordot",
    "dot",
    "inner",
    "outer",
    "kron",
    "trace",
    "diagonal",
    "diag",
    "triu",
    "tril",
]

_LETTERS = string.ascii_uppercase + string.ascii_lowercase  # numpy's 52 subscripts


# ---- the normalized subscripts string of the primitive ------------------------------------


def _split(spec: str) -> tuple[list[str], str]:
    inputs, output = spec.split("->")
    return inputs.split(","), output


def _join(terms, output: str) -> str:
    return ",".join(terms) + "->" + output


def _fresh(used, count: int = 1) -> list[str]:
    free = [c for c in _LETTERS if c not in set(used)]
    if len(free) < count:
        raise ValueError(f"einsum: more than {len(_LETTERS)} distinct indices")
    return free[:count]


def _sizes(shapes, spec: str) -> dict:
    """Index -> size, checking the operands against ``spec``."""
    terms, output = _split(spec)
    if len(terms) != len(shapes):
        raise ShapeError(f"einsum: {len(shapes)} operands for the subscripts {spec!r}")
    sizes, where_from = {}, {}
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        if len(term) != len(shape):
            raise ShapeError(
                f"einsum: operand {k} of shape {tuple(shape)} has {len(shape)} dimensions, "
                f"the subscripts {spec!r} give it {len(term)}"
            )
        for letter, size in zip(term, shape):
            if letter in sizes and sizes[letter] != size:
                raise ShapeError(
                    f"einsum: index {letter!r} has size {sizes[letter]} in operand "
                    f"{where_from[letter][0]} of shape {where_from[letter][1]} and {size} in "
                    f"operand {k} of shape {tuple(shape)} ({spec!r})"
                )
            sizes[letter] = size
            where_from.setdefault(letter, (k, tuple(shape)))
    if len(set(output)) != len(output) or any(c not in sizes for c in output):
        raise ShapeError(f"einsum: output subscripts {output!r} repeat or name a missing index")
    return sizes


def _einsum_shape(shapes, spec):
    sizes = _sizes(shapes, spec)
    return tuple(sizes[c] for c in _split(spec)[1])


#: below this many multiply-adds (the product of every index's size) numpy's own einsum loop
#: beats any reordering into matrix products
_SMALL = 4096


@functools.lru_cache(maxsize=1024)
def _plan(spec: str, shapes: tuple):
    """How to evaluate ``spec`` on operands of ``shapes``, decided once: ``None`` for
    numpy's einsum loop, else numpy's greedy contraction order (pairs through BLAS)."""
    work = float(np.prod(list(_sizes(shapes, spec).values()), dtype=np.float64))
    if len(shapes) == 1 or work < _SMALL:
        return None
    dummies = [np.broadcast_to(np.zeros((), np.uint8), s) for s in shapes]
    return np.einsum_path(spec, *dummies, optimize="greedy")[0]


def _einsum_impl(*arrays, spec):
    plan = _plan(spec, tuple(a.shape for a in arrays))
    if plan is None:
        out = np.einsum(spec, *arrays)
    else:
        out = np.einsum(spec, *arrays, optimize=plan)
    if any(a.dtype == object for a in arrays):
        return np.asarray(out, dtype=object)
    return out


def _fold_einsum(*inputs, spec):
    terms, output = _split(spec)
    if len(terms) == 1 and terms[0] == output:
        return inputs[0]  # the identity
    return None


def _einsum(spec: str, *operands) -> Node:
    return apply(EINSUM, *operands, spec=spec)


def _einsum_vjp(ct, out, *inputs, spec):
    terms, output = _split(spec)
    sizes = _sizes([x.shape for x in inputs], spec)
    grads = []
    for k, term in enumerate(terms):
        others = [(t, x) for j, (t, x) in enumerate(zip(terms, inputs)) if j != k]
        others.append((output, ct))
        seen = set("".join(t for t, _ in others))
        unique = "".join(dict.fromkeys(term))
        kept = "".join(c for c in unique if c in seen)
        # d/dx_k sum(prod x_j) = the product of the other operands (and the cotangent),
        # summed over every index that x_k does not carry
        g = _einsum(_join([t for t, _ in others], kept), *(x for _, x in others))
        if kept != unique:  # indices only x_k carries: the gradient is constant along them
            g = reshape(g, tuple(sizes[c] if c in seen else 1 for c in unique))
            g = apply("broadcast_to", g, shape=tuple(sizes[c] for c in unique))
        if unique != term:  # a repeated index: the gradient sits on the diagonal
            renamed, eyes, used = [], [], set(spec)
            for pos, c in enumerate(term):
                if c in term[:pos]:
                    (f,) = _fresh(used)
                    used.add(f)
                    renamed.append(f)
                    eyes.append((c + f, const(np.eye(sizes[c]))))
                else:
                    renamed.append(c)
            g = _einsum(
                _join([unique] + [t for t, _ in eyes], "".join(renamed)),
                g,
                *(e for _, e in eyes),
            )
        grads.append(g)
    return tuple(grads)


def _einsum_jvp(tangents, out, *inputs, spec):
    # d einsum(x_1, ..., x_n) = sum_k einsum(x_1, ..., dx_k, ..., x_n): linear in each operand
    total = None
    for k, t in enumerate(tangents):
        if t is None:
            continue
        term = _einsum(spec, *inputs[:k], t, *inputs[k + 1 :])
        total = term if total is None else total + term
    return total


def _batch_einsum(node, inputs, batch):
    # one more index, carried by the batched operands and the output
    spec = node.attrs["spec"]
    terms, output = _split(spec)
    try:
        (b,) = _fresh(spec)
    except ValueError:
        raise NotBatchable("batching: einsum uses every index letter already") from None
    terms = [b + t if is_b else t for t, (_, is_b) in zip(terms, inputs)]
    return _einsum(_join(terms, b + output), *(x for x, _ in inputs))


EINSUM = register(
    Op(
        name="einsum",
        shape=_einsum_shape,
        impl=_einsum_impl,
        vjp=_einsum_vjp,
        jvp=_einsum_jvp,
        mpmath=STRUCTURAL,
        sympy=STRUCTURAL,
        samples=(
            Sample(((3, 4), (4, 2)), {"spec": "ij,jk->ik"}),
            Sample(((2, 3, 4), (2, 4, 5)), {"spec": "bij,bjk->bik"}),
            Sample(((3, 3),), {"spec": "ii->"}),
            Sample(((2, 3, 3),), {"spec": "bii->ib"}),
            Sample(((3, 4, 2), (4, 5), (2,)), {"spec": "ijk,jl,k->li"}),
            Sample(((3,), (4,)), {"spec": "i,j->ij"}),
            Sample(((3, 2, 3), (2,)), {"spec": "iji,j->"}),
            Sample(((2, 5), ()), {"spec": "ij,->j"}),
        ),
        analytic=True,
        fold=_fold_einsum,
        doc="Einstein summation over normalized subscripts",
        numpy=(),
        rules={"batch": _batch_einsum, "sparsity": einsum_rule, "remat": "dot"},
    )
)


# ---- numpy's subscripts, resolved -----------------------------------------------------------


def _from_sublists(args) -> tuple[str, list]:
    """numpy's interleaved form ``einsum(x, [0, 1], y, [1, 2], [0, 2])`` as a string."""
    args = list(args)
    output = args.pop() if len(args) % 2 else None
    operands, terms = args[0::2], args[1::2]

    def letters(sub) -> str:
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, (int, np.integer)) and 0 <= s < len(_LETTERS):
                out.append(_LETTERS[s])
            else:
                raise ValueError(f"einsum: subscript {s!r} in a sublist is not an int in [0, 52)")
        return "".join(out)

    spec = ",".join(letters(t) for t in terms)
    if output is not None:
        spec += "->" + letters(output)
    return spec, operands


def _parse(subscripts: str, shapes: list) -> tuple[str, list]:
    """The normalized subscripts of numpy's ``subscripts`` on operands of ``shapes``, and for
    each operand the axes it broadcasts (size 1 against a longer index), which are dropped."""
    spec = subscripts.replace(" ", "")
    for ch in spec:
        if ch not in _LETTERS and ch not in ",.->":
            raise ValueError(f"einsum: invalid subscript {ch!r} in {subscripts!r}; use letters")
    if spec.count("->") > 1 or ("-" in spec.replace("->", "")) or (">" in spec.replace("->", "")):
        raise ValueError(f"einsum: malformed subscripts {subscripts!r}")
    explicit = "->" in spec
    inputs, output = spec.split("->") if explicit else (spec, None)
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: the subscripts {subscripts!r} name {len(terms)} operands, got {len(shapes)}"
        )
    for t in terms + ([output] if explicit else []):
        if t.replace("...", "").count(".") or t.count("...") > 1:
            raise ValueError(f"einsum: malformed ellipsis in {subscripts!r}")
    # '...' stands for the broadcast axes, right-aligned across operands: fresh letters
    counts = []
    for k, (t, shape) in enumerate(zip(terms, shapes)):
        named = len(t.replace("...", ""))
        n = len(shape) - named if "..." in t else 0
        if n < 0 or ("..." not in t and named != len(shape)):
            raise ShapeError(
                f"einsum: operand {k} of shape {tuple(shape)} has {len(shape)} dimensions, "
                f"the subscripts {subscripts!r} give it {named}"
            )
        counts.append(n)
    ell = _fresh(spec, max(counts, default=0))
    terms = [t.replace("...", "".join(ell[len(ell) - n :])) for t, n in zip(terms, counts)]
    if explicit:
        if ell and "..." not in output:
            raise ValueError(
                f"einsum: the operands have broadcast axes but the output {output!r} of "
                f"{subscripts!r} has no '...'"
            )
        output = output.replace("...", "".join(ell))
        named = [c for c in output if c not in ell]
        if len(set(output)) != len(output):
            raise ValueError(f"einsum: the output of {subscripts!r} repeats an index")
        missing = [c for c in named if c not in "".join(terms)]
        if missing:
            raise ValueError(
                f"einsum: output index {missing[0]!r} of {subscripts!r} is not in the inputs"
            )
    else:
        every = "".join(terms)
        once = sorted(c for c in set(every) if every.count(c) == 1 and c not in ell)
        output = "".join(ell) + "".join(once)
    # sizes, with numpy's broadcasting of size-1 axes
    sizes = {}
    for k, (t, shape) in enumerate(zip(terms, shapes)):
        for pos, (c, d) in enumerate(zip(t, shape)):
            if c in t[:pos] and shape[t.index(c)] != d:
                raise ShapeError(
                    f"einsum: operand {k} of shape {tuple(shape)} repeats index {c!r} on axes "
                    f"of sizes {shape[t.index(c)]} and {d} ({subscripts!r})"
                )
            if sizes.get(c, 1) != 1 and d not in (1, sizes[c]):
                raise ShapeError(
                    f"einsum: index {c!r} of {subscripts!r} has sizes {sizes[c]} and {d}; "
                    f"operand shapes {', '.join(str(tuple(s)) for s in shapes)}"
                )
            sizes[c] = max(sizes.get(c, 1), d)
    drops = []
    for k, (t, shape) in enumerate(zip(terms, shapes)):
        drop = [pos for pos, (c, d) in enumerate(zip(t, shape)) if d == 1 and sizes[c] > 1]
        terms[k] = "".join(c for pos, c in enumerate(t) if pos not in drop)
        drops.append(drop)
    return _join(terms, output), drops


@builds(EINSUM, numpy=(np.einsum,))
def einsum(*operands, out=None, dtype=None, order="K", casting="safe", optimize=False) -> Node:
    """numpy's ``einsum``: any subscripts numpy accepts (implicit or explicit output,
    ``...``, repeated indices for diagonals and traces, the interleaved sublist form).

    ``optimize`` is accepted and ignored: the contraction order is always numpy's greedy
    path, computed once per subscripts and shapes. Derivatives are einsums again.

    Args:
        *operands: the subscripts string, then the nodes or arrays.
        out, dtype, order, casting, optimize: numpy's arguments.

    Returns:
        Node: the contraction.

    Raises:
        ShapeError: the subscripts do not fit the operands.

    >>> import diffkit as dk, numpy as np
    >>> q, k = dk.variable("q", (4, 8)), dk.variable("k", (5, 8))
    >>> np.einsum("id,jd->ij", q, k).shape
    (4, 5)
    """
    if out is not None:
        raise TypeError("einsum: out= is not supported on IR nodes")
    if dtype is not None:
        raise TypeError("einsum: dtype= is not supported on IR nodes (the data's dtype is kept)")
    if not operands:
        raise TypeError("einsum: no subscripts given")
    if isinstance(operands[0], str):
        subscripts, arrays = operands[0], list(operands[1:])
    else:
        subscripts, arrays = _from_sublists(operands)
    nodes = [as_node(a) for a in arrays]
    spec, drops = _parse(subscripts, [x.shape for x in nodes])
    for k, drop in enumerate(drops):
        if drop:
            x = nodes[k]
            nodes[k] = reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in drop))
    return _einsum(spec, *nodes)


# ---- products composed from einsum ----------------------------------------------------------


def _axis(op: str, a: int, ndim: int) -> int:
    if not -ndim <= a < ndim:
        raise ShapeError(f"{op}: axis {a} is out of range for an input of {ndim} dimensions")
    return a % ndim


def _contract(op: str, a: Node, b: Node, axes_a, axes_b) -> Node:
    """Sum of ``a * b`` over the paired axes; output: a's free axes, then b's (tensordot)."""
    axes_a = [_axis(op, int(i), a.ndim) for i in axes_a]
    axes_b = [_axis(op, int(i), b.ndim) for i in axes_b]
    if (
        len(axes_a) != len(axes_b)
        or len(set(axes_a)) < len(axes_a)
        or len(set(axes_b)) < len(axes_b)
    ):
        raise ShapeError(f"{op}: axes {axes_a} and {axes_b} do not pair up")
    bad = [(i, j) for i, j in zip(axes_a, axes_b) if a.shape[i] != b.shape[j]]
    if bad:
        i, j = bad[0]
        raise ShapeError(
            f"{op}: shapes {a.shape} and {b.shape} not aligned: {a.shape[i]} (dim {i}) != "
            f"{b.shape[j]} (dim {j})"
        )
    ta = _LETTERS[: a.ndim]
    tb = list(_LETTERS[a.ndim : a.ndim + b.ndim])
    for i, j in zip(axes_a, axes_b):
        tb[j] = ta[i]
    tb = "".join(tb)
    output = "".join(c for i, c in enumerate(ta) if i not in axes_a)
    output += "".join(c for j, c in enumerate(tb) if j not in axes_b)
    return _einsum(_join([ta, tb], output), a, b)


@function(
    numpy=(np.tensordot,),
    arity=(2, 3),
    samples=(
        Sample(((3, 4, 5), (4, 5, 2))),
        Sample(((3, 4), (4, 2)), {"axes": 1}),
        Sample(((3, 4, 5), (5, 2, 3)), {"axes": ([0, 2], [2, 0])}),
        Sample(((3,), (2,)), {"axes": 0}),
    ),
)
def tensordot(a, b, axes=2) -> Node:
    """numpy's ``tensordot``: the sum of ``a * b`` over the last ``axes`` axes of ``a`` and
    the first ones of ``b``, or over the axes of the pair ``axes = (axes_a, axes_b)``.

    Args:
        a, b: nodes or arrays.
        axes: the number of trailing/leading axes to contract, or two sequences of axes.

    Returns:
        Node: the contraction.

    >>> import diffkit as dk
    >>> a, b = dk.variable("a", (3, 4, 5)), dk.variable("b", (4, 5, 2))
    >>> dk.tensordot(a, b).shape, dk.tensordot(a, b, axes=([1], [0])).shape
    ((3, 2), (3, 5, 5, 2))
    """
    a, b = as_node(a), as_node(b)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n < 0 or n > min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot: axes={n} for shapes {a.shape} and {b.shape}")
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        try:
            axes_a, axes_b = axes
        except (TypeError, ValueError):
            raise TypeError(f"tensordot: axes must be an int or a pair, got {axes!r}") from None
        axes_a = [axes_a] if isinstance(axes_a, (int, np.integer)) else list(axes_a)
        axes_b = [axes_b] if isinstance(axes_b, (int, np.integer)) else list(axes_b)
    return _contract("tensordot", a, b, axes_a, axes_b)


@function(
    numpy=(np.dot,),
    arity=(2, 2),
    samples=(
        Sample(((3, 4), (4, 2))),
        Sample(((4,), (4,))),
        Sample(((2, 3, 4), (4,))),
        Sample(((2, 3, 4), (5, 4, 2))),
        Sample(((3,), (2, 3, 4))),
        Sample(((), (2, 3))),
    ),
)
def dot(a, b, out=None) -> Node:
    """numpy's ``dot``: a product for scalars, the matrix product for 1-D and 2-D arrays,
    and beyond, the sum over the last axis of ``a`` and the second-to-last of ``b``.

    Args:
        a, b: nodes or arrays.
        out: numpy's argument, refused on IR nodes.

    Returns:
        Node: numpy's ``dot`` of the two.

    >>> import diffkit as dk
    >>> a, b = dk.variable("a", (2, 3, 4)), dk.variable("b", (5, 4, 6))
    >>> dk.dot(a, b).shape
    (2, 3, 5, 6)
    """
    if out is not None:
        raise TypeError("dot: out= is not supported on IR nodes")
    a, b = as_node(a), as_node(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    j = 0 if b.ndim == 1 else b.ndim - 2
    if a.shape[-1] != b.shape[j]:
        raise ShapeError(
            f"dot: shapes {a.shape} and {b.shape} not aligned: {a.shape[-1]} "
            f"(dim {a.ndim - 1}) != {b.shape[j]} (dim {j})"
        )
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    return _contract("dot", a, b, [a.ndim - 1], [j])


@function(
    numpy=(np.inner,),
    arity=(2, 2),
    samples=(
        Sample(((4,), (4,))),
        Sample(((2, 4), (3, 4))),
        Sample(((2, 3, 4), (4,))),
        Sample(((), (3,))),
    ),
)
def inner(a, b) -> Node:
    """numpy's ``inner``: the sum over the last axes of ``a`` and ``b`` (a product when one
    is a scalar).

    Args:
        a, b: nodes or arrays.

    Returns:
        Node: the sum over the last axes of the products.

    >>> import diffkit as dk
    >>> dk.inner(dk.variable("a", (2, 4)), dk.variable("b", (3, 4))).shape
    (2, 3)
    """
    a, b = as_node(a), as_node(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return _contract("inner", a, b, [a.ndim - 1], [b.ndim - 1])


@function(
    numpy=(np.outer,),
    arity=(2, 2),
    samples=(Sample(((3,), (4,))), Sample(((2, 2), (3,))), Sample(((), (3,)))),
)
def outer(a, b, out=None) -> Node:
    """numpy's ``outer``: ``a.ravel()[:, None] * b.ravel()[None, :]``.

    Args:
        a, b: nodes or arrays (flattened).
        out: numpy's argument, refused on IR nodes.

    Returns:
        Node: the matrix of products a_i b_j.

    >>> import diffkit as dk
    >>> dk.outer(dk.variable("a", (2, 2)), dk.variable("b", (3,))).shape
    (4, 3)
    """
    if out is not None:
        raise TypeError("outer: out= is not supported on IR nodes")
    a, b = as_node(a), as_node(b)
    return reshape(a, (a.size, 1)) * reshape(b, (1, b.size))


@function(
    numpy=(np.kron,),
    arity=(2, 2),
    samples=(
        Sample(((2, 3), (3, 2))),
        Sample(((2,), (3, 4))),
        Sample(((2, 1, 3), (2, 2))),
        Sample(((), (3,))),
    ),
)
def kron(a, b) -> Node:
    """numpy's ``kron``: the Kronecker product; the operand with fewer dimensions gets
    leading unit axes first.

    Args:
        a, b: nodes or arrays.

    Returns:
        Node: the Kronecker product.

    >>> import diffkit as dk
    >>> dk.kron(dk.variable("a", (2, 3)), dk.variable("b", (4, 5))).shape
    (8, 15)
    """
    a, b = as_node(a), as_node(b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    # out[i*nb + j] = a[i] * b[j] along each axis: interleave the axes, then merge pairs
    ia = reshape(a, tuple(v for d in sa for v in (d, 1)))
    ib = reshape(b, tuple(v for d in sb for v in (1, d)))
    return reshape(ia * ib, tuple(x * y for x, y in zip(sa, sb)))


# ---- diagonals and triangles -------------------------------------------------------------------


def _diagonal_spec(op: str, a: Node, offset: int, axis1: int, axis2: int):
    """``a`` cut to the square block holding the ``offset`` diagonal of axes ``axis1`` and
    ``axis2``, the einsum subscripts of that block, and its diagonal index."""
    if a.ndim < 2:
        raise ShapeError(f"{op}: needs an array of at least 2 dimensions, got shape {a.shape}")
    i, j = _axis(op, int(axis1), a.ndim), _axis(op, int(axis2), a.ndim)
    if i == j:
        raise ValueError(f"{op}: axis1 and axis2 cannot be the same axis ({axis1})")
    offset = int(offset)
    start_i, start_j = (0, offset) if offset >= 0 else (-offset, 0)
    n = max(0, min(a.shape[i] - start_i, a.shape[j] - start_j))
    if (n, n) != (a.shape[i], a.shape[j]):
        index = [slice(None)] * a.ndim
        index[i] = slice(start_i, start_i + n) if n else slice(0, 0)
        index[j] = slice(start_j, start_j + n) if n else slice(0, 0)
        a = a[tuple(index)]
    letters = list(_LETTERS[: a.ndim])
    letters[j] = letters[i]
    rest = "".join(c for k, c in enumerate(letters) if k not in (i, j))
    return a, "".join(letters), rest, letters[i]


@function(
    numpy=(np.diagonal,),
    arity=(1, 4),
    samples=(
        Sample(((4, 4),)),
        Sample(((3, 5),), {"offset": 1}),
        Sample(((5, 3),), {"offset": -2}),
        Sample(((2, 3, 4),), {"offset": 1, "axis1": 2, "axis2": 0}),
        Sample(((3, 3),), {"offset": 4}),
    ),
)
def diagonal(a, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Node:
    """numpy's ``diagonal``: the ``offset`` diagonal of the axes ``axis1`` and ``axis2``,
    as the last axis of the result (those two axes removed).

    Args:
        a: a node, or an array (taken as a constant).
        offset: the diagonal (above the main one if positive).
        axis1, axis2: the axes of the matrices.

    Returns:
        Node: the diagonals (as the last axis).

    >>> import diffkit as dk
    >>> dk.diagonal(dk.variable("a", (2, 3, 4)), 1, 2, 0).shape
    (3, 1)
    """
    a = as_node(a)
    block, term, rest, d = _diagonal_spec("diagonal", a, offset, axis1, axis2)
    return _einsum(_join([term], rest + d), block)


@function(
    numpy=(np.trace,),
    arity=(1, 4),
    samples=(
        Sample(((4, 4),)),
        Sample(((3, 5),), {"offset": -1}),
        Sample(((2, 3, 3),), {"axis1": 1, "axis2": 2}),
        Sample(((3, 2, 4),), {"offset": 1, "axis1": 2, "axis2": 0}),
    ),
)
def trace(a, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype=None, out=None) -> Node:
    """numpy's ``trace``: the sum along the ``offset`` diagonal of ``axis1`` and ``axis2``.

    Args:
        a: a node, or an array (taken as a constant).
        offset: the diagonal (above the main one if positive).
        axis1, axis2: the axes of the matrices.
        dtype, out: numpy's arguments.

    Returns:
        Node: the sums of the diagonals.

    >>> import diffkit as dk, numpy as np
    >>> A = dk.variable("A", (3, 3))
    >>> dk.gradient(dk.trace(A @ A), at={"A": np.eye(3)})["A"].tolist()[1]
    [0.0, 2.0, 0.0]
    """
    if dtype is not None or out is not None:
        raise TypeError("trace: dtype= and out= are not supported on IR nodes")
    a = as_node(a)
    block, term, rest, _ = _diagonal_spec("trace", a, offset, axis1, axis2)
    return _einsum(_join([term], rest), block)


@function(
    numpy=(np.diag,),
    arity=(1, 2),
    samples=(
        Sample(((4,),)),
        Sample(((3,),), {"k": 2}),
        Sample(((3,),), {"k": -1}),
        Sample(((3, 4),)),
        Sample(((4, 3),), {"k": -1}),
    ),
)
def diag(v, k: int = 0) -> Node:
    """numpy's ``diag``: a 1-D ``v`` placed on the ``k`` diagonal of a square matrix of
    zeros, or the ``k`` diagonal of a 2-D ``v``.

    Args:
        v: a node or array: a vector (to build a matrix from) or a matrix (to read).
        k: the diagonal (above the main one if positive).

    Returns:
        Node: the matrix, or the diagonal.

    >>> import diffkit as dk
    >>> dk.diag(dk.variable("v", (3,)), k=1).shape, dk.diag(dk.variable("M", (3, 4))).shape
    ((4, 4), (3,))
    """
    v = as_node(v)
    k = int(k)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ShapeError(f"diag: the input must be 1-D or 2-D, got shape {v.shape}")
    n = v.shape[0] + abs(k)
    padded = pad(v, (0, abs(k))) if k else v
    # row i holds v[i] at column i + k (k >= 0); column j holds v[j] at row j - k (k < 0)
    column = reshape(padded, (n, 1) if k >= 0 else (1, n))
    return where(const(np.eye(n, k=k)), column, 0.0)


def _triangle(op: str, m, k, lower: bool) -> Node:
    m = as_node(m)
    if m.ndim == 0:
        raise ShapeError(f"{op}: needs an array of at least 1 dimension, got a scalar")
    keep = np.tri(*m.shape[-2:], k=int(k)) if lower else 1 - np.tri(*m.shape[-2:], k=int(k) - 1)
    return where(const(keep), m, 0.0)


@function(
    numpy=(np.triu,),
    arity=(1, 2),
    samples=(Sample(((4, 4),)), Sample(((2, 3, 4),), {"k": 1}), Sample(((3,),), {"k": -1})),
)
def triu(m, k: int = 0) -> Node:
    """numpy's ``triu``: ``m`` with the entries below the ``k`` diagonal of its last two
    axes set to zero (a 1-D ``m`` is taken as every row of a square matrix).

    Args:
        m: a node or array of two axes or more.
        k: the lowest diagonal kept.

    Returns:
        Node: ``m`` with the entries below that diagonal zeroed.

    >>> import diffkit as dk
    >>> dk.triu(dk.variable("m", (2, 3, 3)), k=1).shape
    (2, 3, 3)
    """
    return _triangle("triu", m, k, lower=False)


@function(
    numpy=(np.tril,),
    arity=(1, 2),
    samples=(Sample(((4, 4),)), Sample(((2, 3, 4),), {"k": -1}), Sample(((3,),), {"k": 1})),
)
def tril(m, k: int = 0) -> Node:
    """numpy's ``tril``: ``m`` with the entries above the ``k`` diagonal of its last two
    axes set to zero.

    Args:
        m: a node or array of two axes or more.
        k: the highest diagonal kept.

    Returns:
        Node: ``m`` with the entries above that diagonal zeroed.

    >>> import diffkit as dk
    >>> dk.tril(dk.variable("m", (4, 3))).shape
    (4, 3)
    """
    return _triangle("tril", m, k, lower=True)

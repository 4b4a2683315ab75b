"""Contractions as users write them: np.einsum in every form numpy accepts, tensordot, dot,
inner, outer, kron, trace, diagonal, diag, triu and tril on traced arrays, checked against
numpy's values and against finite differences; and the one-line errors of bad input."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.testing import check_grads

RNG = np.random.default_rng(0)


def _arrays(*shapes, rng=RNG):
    return [rng.standard_normal(s) for s in shapes]


def _traced_value(f, *values):
    """``f`` traced on variables of the values' shapes, evaluated at the values."""
    nodes = [dk.variable(f"a{i}", np.shape(v)) for i, v in enumerate(values)]
    return dk.evaluate(f(*nodes), {f"a{i}": v for i, v in enumerate(values)})


# ---- einsum: every form of numpy's subscripts ------------------------------------------------

EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),  # implicit output
    ("ba", [(2, 3)]),  # implicit output is in alphabetical order: a transpose
    ("aB", [(2, 3)]),  # upper case sorts first
    ("ii", [(3, 3)]),  # trace
    ("ii->i", [(3, 3)]),  # diagonal
    ("iij->ji", [(3, 3, 2)]),
    ("iji,j->", [(3, 2, 3), (2,)]),
    ("i,i", [(4,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("i,i->i", [(4,), (4,)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),  # ellipsis broadcasting, implicit
    ("i...,i...->...", [(3, 1), (3, 2)]),
    ("...,...", [(4, 3), (2, 1, 1)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),  # size-1 broadcasting of a named index
    ("ij,jk->ik", [(2, 1), (3, 2)]),
    ("ijk,jl,k->li", [(3, 4, 2), (4, 5), (2,)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("i,->i", [(3,), ()]),
    (" i j , j k -> i k ", [(3, 4), (4, 2)]),  # spaces
    ("bhid,bhjd->bhij", [(2, 2, 3, 4), (2, 2, 5, 4)]),
]


@pytest.mark.parametrize("subscripts,shapes", EINSUM_CASES)
def test_einsum_matches_numpy_and_differentiates(subscripts, shapes):
    values = _arrays(*shapes)
    got = _traced_value(lambda *xs: np.einsum(subscripts, *xs), *values)
    expected = np.einsum(subscripts, *values)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    check_grads(lambda *xs: np.einsum(subscripts, *xs), values, order=2)


def test_einsum_sublist_form():
    a, b = _arrays((2, 3), (3, 4))
    expected = np.einsum(a, [0, 1], b, [1, 2], [2, 0])
    got = _traced_value(lambda x, y: np.einsum(x, [0, 1], y, [1, 2], [2, 0]), a, b)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    got = _traced_value(lambda x, y: np.einsum(x, [Ellipsis, 1], y, [1, 2]), a, b)
    np.testing.assert_allclose(got, np.einsum(a, [Ellipsis, 1], b, [1, 2]), rtol=1e-12)


def test_einsum_with_a_constant_operand_and_optimize():
    a = RNG.standard_normal((3, 4))
    w = RNG.standard_normal((4, 4))

    def f(x):
        return np.einsum("ij,jk,lk->il", x, w, x, optimize="optimal").sum()

    check_grads(f, (a,), order=2)
    g = dk.grad(f)(a)
    np.testing.assert_allclose(g, np.ones((3, 3)) @ a @ w.T + np.ones((3, 3)) @ a @ w, rtol=1e-12)


def test_einsum_keeps_float32_and_complex():
    a = RNG.standard_normal((3, 4)).astype(np.float32)
    b = RNG.standard_normal((4,)).astype(np.float32)
    g = dk.grad(lambda x, y: np.sum(np.einsum("ij,j->i", x, y) ** 2), argnums=(0, 1))(a, b)
    assert g[0].dtype == np.float32 and g[1].dtype == np.float32
    z = RNG.standard_normal((3, 3)) + 1j * RNG.standard_normal((3, 3))
    check_grads(lambda x: np.einsum("ij,jk->", x, x), (z,), order=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_large_einsums_take_numpys_contraction_order(dtype):
    """Past a few thousand multiply-adds the impl follows numpy's greedy path (BLAS for
    pairs); values, dtypes and derivatives are the same as numpy's loop."""
    shapes = [(20, 30, 10), (30, 40), (10,)]
    values = [v.astype(dtype) for v in _arrays(*shapes)]
    if dtype == np.complex128:
        values = [v + 1j * w for v, w in zip(values, _arrays(*shapes))]
    got = _traced_value(lambda *xs: np.einsum("ijk,jl,k->li", *xs), *values)
    expected = np.einsum("ijk,jl,k->li", *values)
    assert got.dtype == expected.dtype
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol)
    if dtype == np.float64:
        check_grads(lambda *xs: np.einsum("ijk,jl,k->li", *xs), values, order=1)
    g = dk.grad(lambda a, b, c: np.sum(np.einsum("ijk,jl,k->li", a, b, c)))(*values)
    assert g.dtype == values[0].dtype
    np.testing.assert_allclose(
        g,
        np.einsum("l,jl,k->jk", np.ones(40), values[1], values[2])[None].repeat(20, 0),
        rtol=rtol,
    )


def test_einsum_jacobians_use_the_batching_rule():
    a = RNG.standard_normal((3, 4))

    def f(x):
        return np.einsum("ij,kj->ik", x, x)

    jf, jr = dk.jacfwd(f)(a), dk.jacrev(f)(a)
    expected = np.zeros((3, 3, 3, 4))
    for i in range(3):
        for k in range(3):
            expected[i, k, i] += a[k]
            expected[i, k, k] += a[i]
    np.testing.assert_allclose(jf, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jr, expected, rtol=1e-12, atol=1e-12)


def test_einsum_hessian_of_a_quadratic_form():
    A = RNG.standard_normal((4, 4))
    x = RNG.standard_normal(4)
    H = dk.hessian(lambda v: np.einsum("i,ij,j", v, A, v))(x)
    np.testing.assert_allclose(H, A + A.T, rtol=1e-12)


def test_einsum_trace_gradient_is_the_identity():
    A = dk.variable("A", (4, 4))
    g = dk.gradient(np.einsum("ii", A), at={"A": RNG.standard_normal((4, 4))})["A"]
    np.testing.assert_array_equal(g, np.eye(4))


# ---- the products and diagonals, through numpy ----------------------------------------------

FUNCTION_CASES = [
    ("tensordot", lambda a, b: np.tensordot(a, b), [(3, 4, 5), (4, 5, 2)]),
    ("tensordot", lambda a, b: np.tensordot(a, b, axes=1), [(3, 4), (4, 2)]),
    ("tensordot", lambda a, b: np.tensordot(a, b, axes=0), [(3,), (2, 2)]),
    ("tensordot", lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])), [(3, 4, 5), (5, 2, 3)]),
    ("tensordot", lambda a, b: np.tensordot(a, b, axes=(1, 0)), [(3, 4), (4, 2)]),
    ("dot", lambda a, b: np.dot(a, b), [(3, 4), (4, 2)]),
    ("dot", lambda a, b: np.dot(a, b), [(4,), (4,)]),
    ("dot", lambda a, b: np.dot(a, b), [(2, 3, 4), (4,)]),
    ("dot", lambda a, b: np.dot(a, b), [(2, 3, 4), (5, 4, 2)]),
    ("dot", lambda a, b: np.dot(a, b), [(4,), (2, 4, 3)]),
    ("dot", lambda a, b: a.dot(b), [(3, 4), (4,)]),
    ("dot", lambda a, b: np.dot(a, b), [(), (2, 3)]),
    ("inner", lambda a, b: np.inner(a, b), [(4,), (4,)]),
    ("inner", lambda a, b: np.inner(a, b), [(2, 3, 4), (5, 4)]),
    ("inner", lambda a, b: np.inner(a, b), [(), (3,)]),
    ("outer", lambda a, b: np.outer(a, b), [(3,), (4,)]),
    ("outer", lambda a, b: np.outer(a, b), [(2, 2), (3,)]),
    ("kron", lambda a, b: np.kron(a, b), [(2, 3), (3, 2)]),
    ("kron", lambda a, b: np.kron(a, b), [(2,), (3, 4)]),
    ("kron", lambda a, b: np.kron(a, b), [(2, 1, 3), (2, 2)]),
    ("kron", lambda a, b: np.kron(a, b), [(), (3,)]),
    ("trace", lambda a: np.trace(a), [(4, 4)]),
    ("trace", lambda a: np.trace(a, 1), [(3, 5)]),
    ("trace", lambda a: np.trace(a, offset=-2), [(5, 3)]),
    ("trace", lambda a: np.trace(a, axis1=1, axis2=2), [(2, 3, 3)]),
    ("trace", lambda a: a.trace(offset=1, axis1=2, axis2=0), [(3, 2, 4)]),
    ("trace", lambda a: np.trace(a, 7), [(3, 3)]),
    ("diagonal", lambda a: np.diagonal(a), [(4, 4)]),
    ("diagonal", lambda a: np.diagonal(a, 1), [(3, 5)]),
    ("diagonal", lambda a: np.diagonal(a, -1, 2, 0), [(2, 3, 4)]),
    ("diagonal", lambda a: a.diagonal(axis1=-1, axis2=-2), [(2, 3, 3)]),
    ("diag", lambda v: np.diag(v), [(4,)]),
    ("diag", lambda v: np.diag(v, 2), [(3,)]),
    ("diag", lambda v: np.diag(v, k=-1), [(3,)]),
    ("diag", lambda v: np.diag(v), [(3, 4)]),
    ("diag", lambda v: np.diag(v, -1), [(4, 3)]),
    ("triu", lambda m: np.triu(m), [(4, 4)]),
    ("triu", lambda m: np.triu(m, 1), [(2, 3, 4)]),
    ("triu", lambda m: np.triu(m, k=-1), [(3,)]),
    ("tril", lambda m: np.tril(m), [(4, 3)]),
    ("tril", lambda m: np.tril(m, -1), [(2, 4, 4)]),
    ("tril", lambda m: np.tril(m, 1), [(3,)]),
]


@pytest.mark.parametrize(
    "name,f,shapes", FUNCTION_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FUNCTION_CASES)]
)
def test_function_matches_numpy_and_differentiates(name, f, shapes):
    values = _arrays(*shapes)
    got = _traced_value(f, *values)
    expected = f(*values)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    check_grads(f, values, order=2)


def test_dk_names_reach_the_same_functions():
    a = RNG.standard_normal((3, 3))
    for name in ("trace", "diagonal", "diag", "triu", "tril"):
        got = _traced_value(getattr(dk, name), a)
        np.testing.assert_allclose(got, getattr(np, name)(a), rtol=1e-13)


def test_triangles_and_diag_keep_infinities_out_of_the_zeros():
    m = np.array([[1.0, np.inf], [np.inf, 2.0]])
    np.testing.assert_array_equal(_traced_value(np.triu, m), np.triu(m))
    np.testing.assert_array_equal(_traced_value(np.tril, m), np.tril(m))
    v = np.array([np.inf, 1.0])
    np.testing.assert_array_equal(_traced_value(lambda x: np.diag(x, 1), v), np.diag(v, 1))


def test_empty_contractions():
    a, b = np.ones((0, 3)), np.ones((3, 2))
    got = _traced_value(lambda x, y: np.einsum("ij,jk->ik", x, y), a, b)
    assert got.shape == (0, 2)
    g = dk.grad(lambda x, y: np.einsum("ij,jk->", x, y), argnums=(0, 1))(a, b)
    assert g[0].shape == (0, 3)
    np.testing.assert_array_equal(g[1], np.zeros((3, 2)))
    assert _traced_value(lambda x: np.trace(x, 5), np.ones((3, 3))) == 0.0
    assert _traced_value(lambda x: np.diagonal(x, 5), np.ones((3, 3))).shape == (0,)


# ---- research code in plain numpy --------------------------------------------------------------


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def attention(q, k, v):
    """Scaled dot-product attention, written as in a numpy tutorial."""
    scores = np.einsum("bqd,bkd->bqk", q, k) / np.sqrt(q.shape[-1])
    return np.einsum("bqk,bkd->bqd", _softmax(scores), v)


def multihead(x, wq, wk, wv, wo):
    """Multi-head self-attention with per-head projections and dk.softmax."""
    q = np.einsum("btc,hcd->bhtd", x, wq)
    k = np.einsum("btc,hcd->bhtd", x, wk)
    v = np.einsum("btc,hcd->bhtd", x, wv)
    w = dk.softmax(np.einsum("bhtd,bhsd->bhts", q, k) / np.sqrt(q.shape[-1]), axis=-1)
    return np.einsum("bhts,bhsd,hdc->btc", w, v, wo)


def test_attention_matches_numpy_and_differentiates():
    q, k, v = _arrays((2, 3, 4), (2, 5, 4), (2, 5, 4))
    np.testing.assert_allclose(_traced_value(attention, q, k, v), attention(q, k, v), rtol=1e-12)
    check_grads(lambda q, k, v: np.sum(attention(q, k, v) ** 2), (q, k, v), order=2)


def test_multihead_attention_gradient():
    x, wq, wk, wv = _arrays((2, 4, 6), (2, 6, 3), (2, 6, 3), (2, 6, 3))
    wo = RNG.standard_normal((2, 3, 6))
    loss = dk.grad(lambda *a: np.mean(multihead(*a) ** 2), argnums=(0, 1, 4))
    gx, gq, go = loss(x, wq, wk, wv, wo)
    assert gx.shape == x.shape and gq.shape == wq.shape and go.shape == wo.shape
    check_grads(lambda *a: np.mean(multihead(*a) ** 2), (x, wq, wk, wv, wo), order=1)


def test_bilinear_forms():
    x, y = _arrays((5,), (4,))
    W = RNG.standard_normal((5, 4))

    def bilinear(x, W, y):
        return x @ W @ y + np.einsum("i,ij,j->", x, W, y) + np.inner(x, np.dot(W, y))

    g = dk.grad(bilinear, argnums=(0, 1, 2))(x, W, y)
    np.testing.assert_allclose(g[0], 3 * W @ y, rtol=1e-12)
    np.testing.assert_allclose(g[1], 3 * np.outer(x, y), rtol=1e-12)
    np.testing.assert_allclose(g[2], 3 * W.T @ x, rtol=1e-12)
    check_grads(bilinear, (x, W, y), order=2)


def test_trace_of_a_product_and_frobenius_identities():
    A, B = _arrays((3, 4), (4, 3))
    # d tr(AB)/dA = B^T
    g = dk.grad(lambda A, B: np.trace(A @ B), argnums=(0, 1))(A, B)
    np.testing.assert_allclose(g[0], B.T, rtol=1e-12)
    np.testing.assert_allclose(g[1], A.T, rtol=1e-12)
    # tr(A^T A) is the squared Frobenius norm: gradient 2A
    np.testing.assert_allclose(dk.grad(lambda A: np.trace(A.T @ A))(A), 2 * A, rtol=1e-12)
    check_grads(lambda A, B: np.trace(np.dot(A, B) @ np.dot(A, B)), (A, B), order=2)


def test_kronecker_and_triangular_parametrizations():
    L, x = _arrays((3, 3), (6,))

    def precision_quadratic(L, x):
        # a precision matrix from a lower-triangular factor with a positive diagonal
        Lt = np.tril(L, -1) + np.diag(np.exp(np.diagonal(L)))
        P = np.kron(np.eye(2), Lt @ Lt.T)
        return x @ P @ x - 2 * np.sum(np.diagonal(L))

    check_grads(precision_quadratic, (L, x), order=2)
    g = dk.grad(precision_quadratic)(L, x)
    np.testing.assert_array_equal(np.triu(g, 1), 0.0)  # no gradient above the diagonal


def test_gaussian_process_style_kernel_with_einsum():
    X = RNG.standard_normal((5, 2))

    def kernel_energy(X, ell):
        d = X[:, None, :] - X[None, :, :]
        sq = np.einsum("ijk,ijk->ij", d, d)
        K = np.exp(-0.5 * sq / ell**2)
        return np.trace(K @ K) + np.sum(np.triu(K, 1))

    check_grads(kernel_energy, (X, np.array(0.7)), order=2)


# ---- bad input: one line naming the function and the shapes ---------------------------------


def _one_line_error(exc_type, f, *shapes):
    nodes = [dk.variable(f"b{i}", s) for i, s in enumerate(shapes)]
    with pytest.raises(exc_type) as info:
        f(*nodes)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_einsum_shape_mismatch_names_the_op_and_shapes():
    msg = _one_line_error(dk.ShapeError, lambda a, b: np.einsum("ij,jk->ik", a, b), (3, 4), (5, 2))
    assert "einsum" in msg and "(3, 4)" in msg and "(5, 2)" in msg


@pytest.mark.parametrize(
    "f,shapes,words",
    [
        (lambda a: np.einsum("ij->i", a), [(3,)], ["einsum", "(3,)"]),
        (lambda a: np.einsum("ii->i", a), [(3, 4)], ["einsum", "(3, 4)"]),
        (lambda a, b: np.einsum("ij", a, b), [(3, 4), (4,)], ["einsum", "2"]),
        (lambda a: np.einsum("i1->i", a), [(3, 4)], ["einsum", "'1'"]),
        (lambda a: np.einsum("ij->ik", a), [(3, 4)], ["einsum", "'k'"]),
        (lambda a: np.einsum("ij->ii", a), [(3, 4)], ["einsum", "repeats"]),
        (lambda a: np.einsum("...ij->ij", a), [(2, 3, 4)], ["einsum", "..."]),
        (lambda a: np.einsum("i..j->i", a), [(2, 3)], ["einsum", "ellipsis"]),
        (lambda a, b: np.tensordot(a, b), [(3, 4, 5), (4, 6, 2)], ["tensordot", "(4, 6, 2)"]),
        (lambda a, b: np.dot(a, b), [(2, 3), (4,)], ["dot", "(2, 3)", "(4,)"]),
        (lambda a, b: np.dot(a, b), [(2, 3, 4), (5, 3, 2)], ["dot", "(5, 3, 2)"]),
        (lambda a, b: np.inner(a, b), [(2, 3), (4,)], ["inner", "(2, 3)"]),
        (lambda a: np.trace(a), [(3,)], ["trace", "(3,)"]),
        (lambda a: np.trace(a, axis1=0, axis2=3), [(3, 3)], ["trace", "axis 3"]),
        (lambda a: np.diagonal(a, axis1=1, axis2=1), [(3, 3)], ["diagonal", "same"]),
        (lambda a: np.diag(a), [(2, 2, 2)], ["diag", "(2, 2, 2)"]),
        (lambda a: np.triu(a), [()], ["triu"]),
    ],
)
def test_bad_input_is_one_line(f, shapes, words):
    msg = _one_line_error((ValueError, TypeError), f, *shapes)
    for w in words:
        assert w in msg, (w, msg)


def test_unsupported_arguments_are_named():
    a = dk.variable("a", (3, 3))
    with pytest.raises(TypeError, match="einsum: out="):
        np.einsum("ii", a, out=np.zeros(()))
    with pytest.raises(TypeError, match="einsum: dtype="):
        np.einsum("ii", a, dtype=np.float32)
    with pytest.raises(TypeError, match="trace: dtype= and out="):
        np.trace(a, dtype=np.float32)
    with pytest.raises(TypeError, match="tensordot: axes"):
        np.tensordot(a, a, axes=(0, 1, 2))

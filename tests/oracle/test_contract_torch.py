"""Contractions against PyTorch float64: values and vector-Jacobian products along random
cotangents of einsum, tensordot, dot, inner, outer, kron, trace, diagonal, diag, triu and
tril, second derivatives of einsum, and scaled dot-product attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffkit as dk


def _compare(f_np, f_torch, shapes, seed=0, rtol=1e-12):
    """f traced by diffkit and its torch twin: equal values, equal VJPs along a random
    cotangent (the gradient of <w, f(x)>)."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s) for s in shapes]
    nodes = [dk.variable(f"x{i}", s) for i, s in enumerate(shapes)]
    at = {f"x{i}": v for i, v in enumerate(values)}
    out = f_np(*nodes)
    w = rng.standard_normal(out.shape)
    loss = dk.sum(out * dk.const(w)) if out.shape else out * float(w)
    tensors = [torch.tensor(v, requires_grad=True) for v in values]
    tout = f_torch(*tensors)
    assert tuple(tout.shape) == out.shape
    np.testing.assert_allclose(dk.evaluate(out, at), tout.detach().numpy(), rtol=rtol, atol=1e-12)
    (tout * torch.tensor(w)).sum().backward()
    grads = dk.gradient(loss, at)
    for i, t in enumerate(tensors):
        np.testing.assert_allclose(grads[f"x{i}"], t.grad.numpy(), rtol=rtol, atol=1e-12)


EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ii->", [(4, 4)]),
    ("ii->i", [(4, 4)]),
    ("bii->ib", [(2, 3, 3)]),
    ("iji,j->", [(3, 2, 3), (2,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->", [(3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("ijk,jl,k->li", [(3, 4, 2), (4, 5), (2,)]),
    ("ab,bc,cd,de->ae", [(2, 3), (3, 4), (4, 5), (5, 2)]),
    ("bhid,bhjd->bhij", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
]


@pytest.mark.parametrize("subscripts,shapes", EINSUM)
def test_einsum_against_torch(subscripts, shapes):
    _compare(
        lambda *xs: np.einsum(subscripts, *xs),
        lambda *ts: torch.einsum(subscripts, *ts),
        shapes,
    )


def test_einsum_implicit_output_against_torch():
    # torch's implicit output is also the once-seen indices in alphabetical order
    _compare(
        lambda a, b: np.einsum("kj,ji", a, b),
        lambda a, b: torch.einsum("kj,ji", a, b),
        [(3, 4), (4, 2)],
    )


FUNCTIONS = [
    (
        "tensordot",
        lambda a, b: np.tensordot(a, b),
        lambda a, b: torch.tensordot(a, b),
        [(3, 4, 5), (4, 5, 2)],
    ),
    (
        "tensordot-pairs",
        lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0])),
        lambda a, b: torch.tensordot(a, b, dims=([0, 2], [2, 0])),
        [(3, 4, 5), (5, 2, 3)],
    ),
    (
        "tensordot-0",
        lambda a, b: np.tensordot(a, b, axes=0),
        lambda a, b: torch.tensordot(a, b, dims=0),
        [(3,), (2, 2)],
    ),
    ("dot-2d", np.dot, torch.matmul, [(3, 4), (4, 2)]),
    ("dot-1d", np.dot, torch.dot, [(4,), (4,)]),
    ("dot-nd", np.dot, lambda a, b: torch.tensordot(a, b, dims=([2], [1])), [(2, 3, 4), (5, 4, 2)]),
    ("dot-nd-vec", np.dot, torch.matmul, [(2, 3, 4), (4,)]),
    ("inner", np.inner, torch.inner, [(2, 3, 4), (5, 4)]),
    ("inner-1d", np.inner, torch.inner, [(4,), (4,)]),
    ("outer", np.outer, torch.outer, [(3,), (4,)]),
    ("outer-2d", np.outer, lambda a, b: torch.outer(a.ravel(), b.ravel()), [(2, 2), (3,)]),
    ("kron", np.kron, torch.kron, [(2, 3), (3, 2)]),
    ("kron-ndim", np.kron, torch.kron, [(2,), (3, 4)]),
    ("kron-3d", np.kron, torch.kron, [(2, 1, 3), (2, 2)]),
    ("trace", np.trace, torch.trace, [(4, 4)]),
    ("trace-rect", np.trace, torch.trace, [(3, 5)]),
    (
        "trace-offset",
        lambda a: np.trace(a, 1, 2, 0),
        lambda a: torch.diagonal(a, 1, 2, 0).sum(-1),
        [(3, 2, 4)],
    ),
    ("diagonal", np.diagonal, torch.diagonal, [(4, 4)]),
    (
        "diagonal-offset",
        lambda a: np.diagonal(a, -1, 2, 0),
        lambda a: torch.diagonal(a, -1, 2, 0),
        [(2, 3, 4)],
    ),
    ("diag-vector", np.diag, torch.diag, [(4,)]),
    ("diag-vector-k", lambda v: np.diag(v, 2), lambda v: torch.diag(v, 2), [(3,)]),
    ("diag-vector-neg", lambda v: np.diag(v, -1), lambda v: torch.diag(v, -1), [(3,)]),
    ("diag-matrix", lambda m: np.diag(m, 1), lambda m: torch.diag(m, 1), [(3, 4)]),
    ("triu", np.triu, torch.triu, [(4, 4)]),
    ("triu-k", lambda m: np.triu(m, 1), lambda m: torch.triu(m, 1), [(2, 3, 4)]),
    ("triu-1d", lambda m: np.triu(m, -1), lambda m: torch.triu(m.expand(3, 3), -1), [(3,)]),
    ("tril", np.tril, torch.tril, [(4, 3)]),
    ("tril-k", lambda m: np.tril(m, -1), lambda m: torch.tril(m, -1), [(2, 4, 4)]),
]


@pytest.mark.parametrize("name,f_np,f_torch,shapes", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
def test_function_against_torch(name, f_np, f_torch, shapes):
    _compare(f_np, f_torch, shapes)


def test_einsum_hessian_vector_product_against_torch():
    rng = np.random.default_rng(3)
    A, B, u = rng.standard_normal((3, 4)), rng.standard_normal((4, 3)), rng.standard_normal(12)

    def f_np(a):
        m = np.einsum("ij,jk->ik", a, B)
        return np.einsum("ij,jk,ki->", m, m, m)

    H = dk.hessian(f_np)(A).reshape(12, 12)
    t = torch.tensor(A)
    Bt = torch.tensor(B)

    def f_torch(a):
        m = torch.einsum("ij,jk->ik", a, Bt)
        return torch.einsum("ij,jk,ki->", m, m, m)

    Ht = torch.autograd.functional.hessian(f_torch, t).reshape(12, 12).numpy()
    np.testing.assert_allclose(H @ u, Ht @ u, rtol=1e-11, atol=1e-12)


def test_attention_against_torch_scaled_dot_product_attention():
    rng = np.random.default_rng(4)
    shapes = [(2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4)]

    def attention(q, k, v):
        scores = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(q.shape[-1])
        return np.einsum("bhqk,bhkd->bhqd", dk.softmax(scores, axis=-1), v)

    _compare(
        attention,
        torch.nn.functional.scaled_dot_product_attention,
        shapes,
        seed=int(rng.integers(100)),
        rtol=1e-10,
    )

"""Indexing against PyTorch in float64: reads in every form of numpy's indexing (torch's
advanced indexing places broadcast index dimensions as numpy does), and functional updates
against ``index_put`` (set, accumulate), ``index_add``, ``scatter_reduce`` and ``take``,
values and vector-Jacobian products along random cotangents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffkit as dk

MASK = np.array([True, False, True, True])

READS = [
    (3, slice(2, None), [1, 3]),
    ([0, 1], [2, 3]),
    ([0, 1], slice(None), [2, 3]),
    (slice(None), [[0], [2]], [1, 5]),
    (Ellipsis, None, [0, 0, 1]),
    ([[0, 1]], slice(None, None, 2), None, [[2], [3]]),
    (1, [0, -5], slice(1, 4), None),
    ([3, 3, 0, 3], slice(1, 4, 2), 5),
    (MASK,),
    (MASK, slice(None), 0),
    (slice(None), np.random.default_rng(0).uniform(size=(5, 6)) > 0.5),
    (slice(None), slice(None), [-1, 0, -1]),
]


def _torch_index(index):
    """The same index for torch: arrays as tensors, and beside them integers as one-element
    tensors (numpy counts an integer among arrays as an advanced index, which decides where
    the broadcast dimensions go; torch applies it first)."""
    items = index if isinstance(index, tuple) else (index,)
    arrays = any(isinstance(i, (list, np.ndarray)) for i in items)
    out = []
    for i in items:
        if isinstance(i, (list, np.ndarray)):
            out.append(torch.as_tensor(np.asarray(i)))
        elif isinstance(i, int) and arrays:
            out.append(torch.tensor([i]))
        else:
            out.append(i)
    return tuple(out)


@pytest.mark.parametrize("index", READS, ids=[str(i) for i in range(len(READS))])
def test_reads_and_their_vjps_against_torch(index):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5, 6))
    node = dk.variable("x", x.shape)
    out = node[index]
    t = torch.tensor(x, requires_grad=True)
    tout = t[_torch_index(index)]
    assert out.shape == tuple(tout.shape)
    np.testing.assert_array_equal(dk.evaluate(out, {"x": x}), tout.detach().numpy())
    for _ in range(3):
        w = rng.standard_normal(out.shape)
        (grad,) = torch.autograd.grad(tout, t, torch.tensor(w), retain_graph=True)
        mine = dk.gradient(dk.sum(out * dk.const(w)), {"x": x})["x"]
        np.testing.assert_allclose(mine, grad.numpy(), rtol=1e-14, atol=1e-14)


UPDATES = [
    ((np.array([1, 1, 3]),), (3, 5)),
    ((np.array([0, 2, 0]), np.array([1, 1, 1])), (3,)),
    ((np.array([[0], [2]]), np.array([4, 0, 4])), (2, 3)),
    ((np.array([3, 0]), np.array([[1], [4]])), (2, 2)),
]


def _unique(index) -> bool:
    keys = np.ravel_multi_index(np.broadcast_arrays(*index), (4, 5)[: len(index)]).ravel()
    return len(np.unique(keys)) == keys.size


# torch leaves the winner of repeated writes unspecified: set is compared where unique
UPDATE_CASES = [
    pytest.param(index, vshape, method, id=f"{method}-{name}")
    for (index, vshape), name in zip(UPDATES, ["rows", "pairs", "grid", "unique"])
    for method in ("add", "set")
    if method == "add" or _unique(index)
]


@pytest.mark.parametrize("index,vshape,method", UPDATE_CASES)
def test_updates_against_index_put(index, vshape, method):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5))
    v = rng.standard_normal(vshape)
    X, V = dk.variable("x", x.shape), dk.variable("v", v.shape)
    out = getattr(X.at[index], method)(V)
    tx, tv = torch.tensor(x, requires_grad=True), torch.tensor(v, requires_grad=True)
    tindex = tuple(torch.as_tensor(i) for i in index)
    tout = tx.index_put(tindex, tv, accumulate=(method == "add"))
    at = {"x": x, "v": v}
    np.testing.assert_allclose(dk.evaluate(out, at), tout.detach().numpy(), rtol=1e-15)
    for _ in range(3):
        w = rng.standard_normal(x.shape)
        gx, gv = torch.autograd.grad(tout, (tx, tv), torch.tensor(w), retain_graph=True)
        mine = dk.gradient(dk.sum(out * dk.const(w)), at)
        np.testing.assert_allclose(mine["x"], gx.numpy(), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(mine["v"], gv.numpy(), rtol=1e-14, atol=1e-14)


def test_set_of_unique_rows_and_index_add_against_torch():
    rng = np.random.default_rng(8)
    x, v = rng.standard_normal((5, 3)), rng.standard_normal((3, 3))
    rows = np.array([4, 0, 2])
    at = {"x": x, "v": v}
    X, V = dk.variable("x", x.shape), dk.variable("v", v.shape)
    w = rng.standard_normal(x.shape)
    for mine, build in [
        (X.at[rows].set(V), lambda a, b: a.index_copy(0, torch.as_tensor(rows), b)),
        (X.at[[0, 0, 3]].add(V), lambda a, b: a.index_add(0, torch.as_tensor([0, 0, 3]), b)),
    ]:
        tx, tv = torch.tensor(x, requires_grad=True), torch.tensor(v, requires_grad=True)
        tout = build(tx, tv)
        np.testing.assert_allclose(dk.evaluate(mine, at), tout.detach().numpy(), rtol=1e-15)
        gx, gv = torch.autograd.grad((tout * torch.tensor(w)).sum(), (tx, tv))
        g = dk.gradient(dk.sum(mine * dk.const(w)), at)
        np.testing.assert_allclose(g["x"], gx.numpy(), rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(g["v"], gv.numpy(), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("method,reduce", [("multiply", "prod"), ("min", "amin"), ("max", "amax")])
def test_multiply_min_max_against_scatter_reduce(method, reduce):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 2.0, 6)
    v = rng.uniform(0.5, 2.0, 5)
    rows = np.array([1, 4, 1, 0, 4])
    X, V = dk.variable("x", (6,)), dk.variable("v", (5,))
    out = getattr(X.at[rows], method)(V)
    tx, tv = torch.tensor(x, requires_grad=True), torch.tensor(v, requires_grad=True)
    tout = tx.scatter_reduce(0, torch.as_tensor(rows), tv, reduce=reduce, include_self=True)
    at = {"x": x, "v": v}
    np.testing.assert_allclose(dk.evaluate(out, at), tout.detach().numpy(), rtol=1e-14)
    w = rng.standard_normal(6)
    gx, gv = torch.autograd.grad((tout * torch.tensor(w)).sum(), (tx, tv))
    g = dk.gradient(dk.sum(out * dk.const(w)), at)
    np.testing.assert_allclose(g["x"], gx.numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(g["v"], gv.numpy(), rtol=1e-13, atol=1e-14)


def test_take_and_pad_against_torch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4))
    idx = np.array([[0, 11], [5, 5]])
    X = dk.variable("x", x.shape)
    t = torch.tensor(x, requires_grad=True)
    w = rng.standard_normal(idx.shape)
    (g,) = torch.autograd.grad((torch.take(t, torch.as_tensor(idx)) * torch.tensor(w)).sum(), t)
    mine = dk.gradient(dk.sum(np.take(X, idx) * dk.const(w)), {"x": x})["x"]
    np.testing.assert_allclose(mine, g.numpy(), rtol=1e-14)
    for mode, tmode in [("wrap", "circular"), ("reflect", "reflect"), ("edge", "replicate")]:
        t = torch.tensor(x, requires_grad=True)
        tout = torch.nn.functional.pad(t[None, None], (2, 1, 1, 2), mode=tmode)[0, 0]
        out = np.pad(X, ((1, 2), (2, 1)), mode=mode)
        np.testing.assert_allclose(dk.evaluate(out, {"x": x}), tout.detach().numpy())
        w = rng.standard_normal(out.shape)
        (g,) = torch.autograd.grad((tout * torch.tensor(w)).sum(), t)
        mine = dk.gradient(dk.sum(out * dk.const(w)), {"x": x})["x"]
        np.testing.assert_allclose(mine, g.numpy(), rtol=1e-14, atol=1e-14)

"""Shape helpers against PyTorch float64: values and vector-Jacobian products along random
cotangents of squeeze, ravel, expand_dims, moveaxis, atleast_1d/2d/3d, roll, rot90, diff,
gradient, append and linspace with traced end points (torch's linspace takes no tensors, so
it is compared with the same grid composed in torch), and second derivatives of energies
built from them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import diffkit as dk


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _compare(f_np, f_torch, shapes, seed=0, rtol=1e-12, make=None):
    """f traced by diffkit and its torch twin: equal values, equal VJPs along random
    cotangents (the gradient of the sum of <w_k, f_k(x)> over the outputs)."""
    rng = np.random.default_rng(seed)
    values = make(rng) if make else [rng.standard_normal(s) for s in shapes]
    values = [np.asarray(v, dtype=float) for v in values]
    nodes = [dk.variable(f"x{i}", np.shape(v)) for i, v in enumerate(values)]
    at = {f"x{i}": v for i, v in enumerate(values)}
    outs = _as_list(f_np(*nodes))
    tensors = [torch.tensor(v, requires_grad=True) for v in values]
    touts = _as_list(f_torch(*tensors))
    assert len(outs) == len(touts)
    loss, tloss = None, 0.0
    for o, t in zip(outs, touts):
        assert tuple(t.shape) == o.shape, (tuple(t.shape), o.shape)
        np.testing.assert_allclose(dk.evaluate(o, at), t.detach().numpy(), rtol=rtol, atol=1e-12)
        w = rng.standard_normal(o.shape)
        term = dk.sum(o * dk.const(w)) if o.shape else o * float(w)
        loss = term if loss is None else loss + term
        tloss = tloss + (t * torch.tensor(w)).sum()
    tloss.backward()
    grads = dk.gradient(loss, at)
    for i, t in enumerate(tensors):
        expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(grads[f"x{i}"], expected, rtol=rtol, atol=1e-12)


def _coords(n):
    def make(rng):
        return [rng.standard_normal(n), np.cumsum(rng.uniform(0.5, 1.5, n))]

    return make


def _torch_linspace(a, b, num, endpoint=True):
    """np.linspace's grid from tensors: start + i (stop - start) / div, the last sample stop."""
    div = num - 1 if endpoint else num
    shape = torch.broadcast_shapes(a.shape, b.shape)
    ramp = torch.arange(num, dtype=torch.float64).reshape((num,) + (1,) * len(shape))
    if div == 0:  # one sample with its end point: start
        return (ramp + a).expand((num,) + shape)
    y = ramp * ((b - a) / div) + a
    if endpoint and num > 1:
        y = torch.cat([y[:-1], b.expand(shape).unsqueeze(0)])
    return y


CASES = [
    ("squeeze", np.squeeze, torch.squeeze, [(1, 3, 1, 2)]),
    (
        "squeeze-axis",
        lambda x: np.squeeze(x, axis=2),
        lambda t: torch.squeeze(t, 2),
        [(1, 3, 1, 2)],
    ),
    ("ravel", np.ravel, torch.flatten, [(2, 3, 4)]),
    (
        "ravel-F",
        lambda x: np.ravel(x, order="F"),
        lambda t: t.permute(2, 1, 0).flatten(),
        [(2, 3, 4)],
    ),
    ("flatten", lambda x: x.flatten(), torch.flatten, [(3, 2)]),
    ("expand_dims", lambda x: np.expand_dims(x, 1), lambda t: t.unsqueeze(1), [(2, 3)]),
    (
        "expand_dims-tuple",
        lambda x: np.expand_dims(x, (0, -1)),
        lambda t: t.unsqueeze(0).unsqueeze(-1),
        [(2, 3)],
    ),
    ("moveaxis", lambda x: np.moveaxis(x, 0, -1), lambda t: torch.movedim(t, 0, -1), [(2, 3, 4)]),
    (
        "moveaxis-many",
        lambda x: np.moveaxis(x, (0, 1), (2, 0)),
        lambda t: torch.movedim(t, (0, 1), (2, 0)),
        [(2, 3, 4)],
    ),
    ("atleast_1d", np.atleast_1d, torch.atleast_1d, [()]),
    ("atleast_2d", np.atleast_2d, torch.atleast_2d, [(), (3,), (2, 3)]),
    ("atleast_3d", np.atleast_3d, torch.atleast_3d, [(), (3,), (2, 3), (2, 1, 3)]),
    ("roll", lambda x: np.roll(x, 2), lambda t: torch.roll(t, 2), [(3, 4)]),
    ("roll-axis", lambda x: np.roll(x, -1, axis=1), lambda t: torch.roll(t, -1, 1), [(3, 4)]),
    (
        "roll-tuple",
        lambda x: np.roll(x, (1, -2), axis=(0, 2)),
        lambda t: torch.roll(t, (1, -2), (0, 2)),
        [(3, 4, 5)],
    ),
    ("roll-long", lambda x: np.roll(x, 11, axis=0), lambda t: torch.roll(t, 11, 0), [(4, 2)]),
    ("rot90", np.rot90, torch.rot90, [(3, 4)]),
    (
        "rot90-k2",
        lambda x: np.rot90(x, 2, (1, 2)),
        lambda t: torch.rot90(t, 2, (1, 2)),
        [(2, 3, 4)],
    ),
    (
        "rot90-k3",
        lambda x: np.rot90(x, 3, (2, 0)),
        lambda t: torch.rot90(t, 3, (2, 0)),
        [(2, 3, 4)],
    ),
    ("rot90-k-1", lambda x: np.rot90(x, -1), lambda t: torch.rot90(t, -1), [(3, 4)]),
    ("diff", np.diff, torch.diff, [(6,)]),
    ("diff-n2-axis0", lambda x: np.diff(x, 2, axis=0), lambda t: torch.diff(t, 2, dim=0), [(5, 3)]),
    (
        "diff-prepend-append",
        lambda x, p, a: np.diff(x, axis=1, prepend=p, append=a),
        lambda t, p, a: torch.diff(t, dim=1, prepend=p, append=a),
        [(3, 4), (3, 1), (3, 2)],
    ),
    ("gradient", np.gradient, lambda t: torch.gradient(t)[0], [(6,)]),
    ("gradient-2d", np.gradient, lambda t: torch.gradient(t), [(4, 5)]),
    (
        "gradient-step",
        lambda f: np.gradient(f, 0.3, axis=1),
        lambda t: torch.gradient(t, spacing=0.3, dim=1)[0],
        [(4, 5)],
    ),
    (
        "gradient-steps-edge2",
        lambda f: np.gradient(f, 0.3, 2.0, edge_order=2),
        lambda t: torch.gradient(t, spacing=[0.3, 2.0], edge_order=2),
        [(4, 5)],
    ),
]


@pytest.mark.parametrize("name,f_np,f_torch,shapes", CASES, ids=[c[0] for c in CASES])
def test_helper_against_torch(name, f_np, f_torch, shapes):
    _compare(f_np, f_torch, shapes)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_on_a_traced_grid_against_torch(edge_order):
    """Non-uniform coordinates, differentiated too (torch.gradient takes coordinate
    tensors and applies the same second-order formulas)."""
    _compare(
        lambda f, x: np.gradient(f, x, edge_order=edge_order),
        lambda f, x: torch.gradient(f, spacing=(x,), edge_order=edge_order)[0],
        None,
        make=_coords(7),
    )


def test_gradient_traced_scalar_step_against_torch():
    """A traced step h: numpy's stencil composed in torch (torch.gradient's spacing is a
    number there, not a tensor)."""

    def make(rng):
        return [rng.standard_normal((4, 5)), 0.4]

    def stencil(f, h):
        inner = (f[2:] - f[:-2]) / (2 * h)
        return torch.cat([(f[1:2] - f[:1]) / h, inner, (f[-1:] - f[-2:-1]) / h])

    _compare(lambda f, h: np.gradient(f, h, axis=0), stencil, None, make=make)


APPEND = [
    ("append", np.append, lambda x, y: torch.cat([x.flatten(), y.flatten()]), [(2, 3), (4,)]),
    (
        "append-axis",
        lambda x, y: np.append(x, y, axis=1),
        lambda x, y: torch.cat([x, y], 1),
        [(2, 3), (2, 2)],
    ),
]


@pytest.mark.parametrize("name,f_np,f_torch,shapes", APPEND, ids=[c[0] for c in APPEND])
def test_append_against_torch(name, f_np, f_torch, shapes):
    _compare(f_np, f_torch, shapes)


LINSPACE = [
    (7, True, [(), ()]),
    (7, False, [(), ()]),
    (1, True, [(), ()]),
    (4, True, [(3,), (2, 1)]),
    (5, False, [(2,), ()]),
]


@pytest.mark.parametrize("num,endpoint,shapes", LINSPACE)
def test_linspace_with_traced_end_points_against_torch(num, endpoint, shapes):
    _compare(
        lambda a, b: np.linspace(a, b, num, endpoint=endpoint),
        lambda a, b: _torch_linspace(a, b, num, endpoint),
        shapes,
    )
    if shapes == [(), ()]:  # torch's own linspace, on the values
        a, b = 0.25, 3.5
        np.testing.assert_allclose(
            dk.evaluate(
                np.linspace(dk.variable("a"), dk.variable("b"), num, endpoint=endpoint),
                {"a": a, "b": b},
            ),
            torch.linspace(a, b, num).numpy()
            if endpoint
            else torch.linspace(a, b, num + 1)[:-1].numpy(),
            rtol=1e-14,
        )


def test_linspace_axis_and_retstep_against_torch():
    _compare(
        lambda a, b: np.linspace(a, b, 4, axis=-1, retstep=True),
        lambda a, b: (_torch_linspace(a, b, 4).movedim(0, -1), (b - a) / 3),
        [(3,), (3,)],
    )


# ---- second derivatives of energies against torch's Hessians ---------------------------------


def _hessians_agree(f_np, f_torch, x):
    h = dk.hessian(f_np)(x)
    ht = torch.autograd.functional.hessian(f_torch, torch.tensor(x))
    np.testing.assert_allclose(h, ht.numpy(), rtol=1e-10, atol=1e-12)


def test_ring_of_springs_hessian_against_torch():
    x = np.random.default_rng(1).standard_normal((6, 2))

    def ring(p, lib):
        d = p - lib.roll(p, -1, 0)
        return 1.5 * lib.sum((lib.sqrt(lib.sum(d**2, 1)) - 0.5) ** 2)

    _hessians_agree(lambda p: ring(p, np), lambda p: ring(p, torch), x)


def test_total_variation_hessian_against_torch():
    u = np.random.default_rng(2).standard_normal((4, 5))

    def tv(v, lib, diff):
        dx, dy = diff(v, 1)[:-1, :], diff(v, 0)[:, :-1]
        return lib.sum(lib.sqrt(dx**2 + dy**2 + 1e-2))

    _hessians_agree(
        lambda v: tv(v, np, lambda a, k: np.diff(a, axis=k)),
        lambda v: tv(v, torch, lambda a, k: torch.diff(a, dim=k)),
        u,
    )


def test_laplacian_energy_hessian_against_torch():
    u = np.random.default_rng(3).standard_normal((5, 6))

    def energy_np(v):
        gx, gy = np.gradient(v, 0.5, edge_order=2)
        lap = np.gradient(gx, 0.5, axis=0) + np.gradient(gy, 0.5, axis=1)
        return np.sum(lap**2 * np.cos(v))

    def energy_torch(v):
        gx, gy = torch.gradient(v, spacing=0.5, edge_order=2)
        lap = torch.gradient(gx, spacing=0.5, dim=0)[0] + torch.gradient(gy, spacing=0.5, dim=1)[0]
        return torch.sum(lap**2 * torch.cos(v))

    _hessians_agree(energy_np, energy_torch, u)

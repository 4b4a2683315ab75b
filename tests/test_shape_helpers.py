"""Shape helpers as users write them: np.squeeze, ravel, expand_dims, moveaxis, atleast_nd,
roll, rot90, diff, gradient, append and linspace on traced arrays, against numpy's values and
finite differences; physics and imaging energies built from them (a ring of springs, total
variation, a finite-difference Laplacian); and the one-line errors of bad input."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.testing import check_grads

RNG = np.random.default_rng(0)


def _traced(f, *values):
    """``f`` traced on variables of the values' shapes, evaluated at the values (a tuple
    or list of outputs evaluated one by one)."""
    nodes = [dk.variable(f"a{i}", np.shape(v)) for i, v in enumerate(values)]
    at = {f"a{i}": np.asarray(v) for i, v in enumerate(values)}
    out = f(*nodes)
    if isinstance(out, (tuple, list)):
        return type(out)(dk.evaluate(o, at) for o in out)
    return dk.evaluate(out, at)


def _same(got, expected):
    if isinstance(expected, (tuple, list)):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            _same(g, e)
        return
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


# ---- every helper against numpy, and its derivatives against central differences -----------

CASES = [
    ("squeeze", lambda x: np.squeeze(x), [(1, 3, 1, 2)]),
    ("squeeze-axis", lambda x: np.squeeze(x, axis=(0, -2)), [(1, 3, 1, 2)]),
    ("squeeze-method", lambda x: x.squeeze(), [(2, 1)]),
    ("ravel", np.ravel, [(2, 3, 4)]),
    ("ravel-F", lambda x: np.ravel(x, order="F"), [(2, 3, 4)]),
    ("ravel-K", lambda x: np.ravel(x, "K"), [(2, 3)]),
    ("flatten", lambda x: x.flatten(), [(3, 2)]),
    ("ravel-method", lambda x: x.ravel(), [(3, 2)]),
    ("expand_dims", lambda x: np.expand_dims(x, 0), [(3,)]),
    ("expand_dims-tuple", lambda x: np.expand_dims(x, (0, 2, -1)), [(2, 3)]),
    ("expand_dims-scalar", lambda x: np.expand_dims(x, -1), [()]),
    ("moveaxis", lambda x: np.moveaxis(x, 0, -1), [(2, 3, 4)]),
    ("moveaxis-many", lambda x: np.moveaxis(x, [0, 1], [-1, -2]), [(2, 3, 4, 5)]),
    ("moveaxis-same", lambda x: np.moveaxis(x, 1, 1), [(2, 3)]),
    ("atleast_1d", np.atleast_1d, [()]),
    ("atleast_1d-many", np.atleast_1d, [(), (2,), (2, 3)]),
    ("atleast_2d", np.atleast_2d, [(3,)]),
    ("atleast_2d-many", np.atleast_2d, [(), (4,), (2, 3, 2)]),
    ("atleast_3d", np.atleast_3d, [(3,)]),
    ("atleast_3d-many", np.atleast_3d, [(), (4,), (2, 3), (1, 2, 3, 4)]),
    ("roll", lambda x: np.roll(x, 2), [(5,)]),
    ("roll-flat", lambda x: np.roll(x, -7), [(3, 4)]),
    ("roll-axis", lambda x: np.roll(x, 1, axis=0), [(3, 4)]),
    ("roll-negative", lambda x: np.roll(x, -1, axis=-1), [(3, 4)]),
    ("roll-tuple", lambda x: np.roll(x, (1, 2), axis=(0, 1)), [(3, 4)]),
    ("roll-repeated-axis", lambda x: np.roll(x, (1, 2), axis=(1, 1)), [(3, 4)]),
    ("roll-broadcast-shift", lambda x: np.roll(x, 2, axis=(0, 2)), [(3, 4, 5)]),
    ("roll-whole-turn", lambda x: np.roll(x, 4, axis=1), [(3, 4)]),
    ("rot90", np.rot90, [(3, 4)]),
    ("rot90-k2", lambda x: np.rot90(x, 2), [(3, 4)]),
    ("rot90-k3", lambda x: np.rot90(x, 3), [(3, 4)]),
    ("rot90-k-negative", lambda x: np.rot90(x, -1), [(3, 4)]),
    ("rot90-k4", lambda x: np.rot90(x, 4), [(3, 4)]),
    ("rot90-axes", lambda x: np.rot90(x, 1, axes=(1, 2)), [(2, 3, 4)]),
    ("rot90-axes-reversed", lambda x: np.rot90(x, 1, axes=(2, 0)), [(2, 3, 4)]),
    ("rot90-axes-negative", lambda x: np.rot90(x, 3, axes=(-1, -3)), [(2, 3, 4)]),
    ("diff", np.diff, [(6,)]),
    ("diff-n2", lambda x: np.diff(x, n=2), [(6,)]),
    ("diff-axis0", lambda x: np.diff(x, axis=0), [(4, 3)]),
    ("diff-too-many", lambda x: np.diff(x, n=5), [(3, 2, 4)]),
    ("diff-n0", lambda x: np.diff(x, n=0), [(3,)]),
    ("diff-prepend", lambda x: np.diff(x, prepend=0.0), [(4,)]),
    ("diff-prepend-append", lambda x: np.diff(x, axis=0, prepend=1.0, append=x[:1]), [(3, 2)]),
    ("diff-traced-edges", lambda x, p: np.diff(x, axis=1, prepend=p, append=p), [(3, 4), (3, 1)]),
    ("gradient", np.gradient, [(6,)]),
    ("gradient-2d", np.gradient, [(4, 5)]),
    ("gradient-axis", lambda f: np.gradient(f, axis=1), [(4, 5)]),
    ("gradient-axes", lambda f: np.gradient(f, axis=(-1, 0)), [(4, 5, 3)]),
    ("gradient-step", lambda f: np.gradient(f, 0.25), [(6,)]),
    ("gradient-steps", lambda f: np.gradient(f, 0.25, 2.0), [(4, 5)]),
    ("gradient-edge2", lambda f: np.gradient(f, edge_order=2), [(4, 5)]),
    ("gradient-two-points", np.gradient, [(2,)]),
    ("gradient-three-points-edge2", lambda f: np.gradient(f, 0.5, edge_order=2), [(3,)]),
    (
        "gradient-const-coords",
        lambda f: np.gradient(f, np.array([0.0, 0.1, 0.5, 0.6, 1.5])),
        [(5,)],
    ),
    (
        "gradient-const-coords-edge2",
        lambda f: np.gradient(f, [0.0, 0.1, 0.5, 0.6, 1.5], edge_order=2),
        [(5,)],
    ),
    ("gradient-uniform-int-coords", lambda f: np.gradient(f, np.arange(0, 10, 2)), [(5,)]),
    ("append", np.append, [(3,), (2, 2)]),
    ("append-axis", lambda x, y: np.append(x, y, axis=1), [(2, 3), (2, 2)]),
    ("append-constant", lambda x: np.append(x, [1.0, 2.0]), [(2, 2)]),
    ("append-method-of-numpy", lambda x: np.append(np.zeros(2), x), [(3,)]),
    ("linspace", lambda a, b: np.linspace(a, b), [(), ()]),
    ("linspace-num", lambda a, b: np.linspace(a, b, 7), [(), ()]),
    ("linspace-open", lambda a, b: np.linspace(a, b, 7, endpoint=False), [(), ()]),
    ("linspace-one", lambda a, b: np.linspace(a, b, 1), [(), ()]),
    ("linspace-one-open", lambda a, b: np.linspace(a, b, 1, endpoint=False), [(), ()]),
    ("linspace-none", lambda a, b: np.linspace(a, b, 0), [(), ()]),
    ("linspace-arrays", lambda a, b: np.linspace(a, b, 4), [(3,), (2, 1)]),
    ("linspace-axis", lambda a, b: np.linspace(a, b, 4, axis=-1), [(3,), (2, 1)]),
    ("linspace-axis1", lambda a, b: np.linspace(a, b, 4, axis=1), [(3,), (2, 1)]),
    ("linspace-constant-start", lambda b: np.linspace(0.0, b, 5), [()]),
    ("linspace-retstep", lambda a, b: np.linspace(a, b, 5, retstep=True), [(), ()]),
    ("linspace-retstep-arrays", lambda a, b: np.linspace(a, b, 3, False, True), [(2,), (2,)]),
]


@pytest.mark.parametrize("name,f,shapes", CASES, ids=[c[0] for c in CASES])
def test_helper_matches_numpy_and_differentiates(name, f, shapes):
    values = [RNG.standard_normal(s) for s in shapes]
    got = _traced(f, *values)
    _same(got, f(*values))

    def scalar(*xs):
        out = f(*xs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        total = 0.0
        for k, o in enumerate(outs):
            w = np.random.default_rng(k).standard_normal(np.shape(o))
            total = total + np.sum(np.sin(o) * w)
        return total

    expected = f(*values)
    if any(np.size(e) for e in (expected if isinstance(expected, tuple) else (expected,))):
        check_grads(scalar, values, order=2)


def test_linspace_gradient_in_its_end_points():
    t = np.linspace(0.0, 1.0, 7)

    def f(a, b):
        return np.sum(np.sin(np.linspace(a, b, 7)))

    ga, gb = dk.grad(f, argnums=(0, 1))(0.3, 2.0)
    y = np.linspace(0.3, 2.0, 7)
    np.testing.assert_allclose(ga, np.sum(np.cos(y) * (1 - t)), rtol=1e-13)
    np.testing.assert_allclose(gb, np.sum(np.cos(y) * t), rtol=1e-13)
    # numpy's last sample is stop itself, bit for bit
    assert _traced(lambda a, b: np.linspace(a, b, 7), 0.1, 0.7)[-1] == 0.7


def test_gradient_with_traced_coordinates():
    """np.gradient on a non-uniform grid differentiates with respect to the grid too."""
    x = np.cumsum(RNG.uniform(0.5, 1.5, 7))
    u = np.sin(x)
    for edge_order in (1, 2):
        got = _traced(lambda f, c: np.gradient(f, c, edge_order=edge_order), u, x)
        np.testing.assert_allclose(got, np.gradient(u, x, edge_order=edge_order), rtol=1e-13)
        check_grads(lambda f, c: np.gradient(f, c, edge_order=edge_order), (u, x), order=2)
    # exact for quadratics on any grid
    got = _traced(lambda c: np.gradient(c**2, c, edge_order=2), x)
    np.testing.assert_allclose(got, 2 * x, rtol=1e-10)
    # a traced scalar step, and one step per axis
    check_grads(lambda f, h: np.gradient(f, h), (RNG.standard_normal(5), 0.7), order=2)
    f2 = RNG.standard_normal((4, 5))
    gx, gy = _traced(lambda f, h: np.gradient(f, h, x[:5]), f2, 0.3)
    ex, ey = np.gradient(f2, 0.3, x[:5])
    np.testing.assert_allclose(gx, ex, rtol=1e-13)
    np.testing.assert_allclose(gy, ey, rtol=1e-13)


# ---- energies of research code ----------------------------------------------------------------


def ring_energy(x, k=3.0, rest=0.5):
    """A closed chain of springs: point i is tied to point i+1 (mod n)."""
    d = x - np.roll(x, -1, axis=0)
    length = np.sqrt(np.sum(d**2, axis=1))
    return 0.5 * k * np.sum((length - rest) ** 2)


def test_ring_of_springs_energy_with_roll():
    n = 8
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1) + 0.05 * RNG.standard_normal((n, 2))
    np.testing.assert_allclose(_traced(ring_energy, x), ring_energy(x), rtol=1e-13)
    g = dk.grad(ring_energy)(x)
    # by hand: each spring pulls on both of its ends
    d = x - np.roll(x, -1, axis=0)
    length = np.linalg.norm(d, axis=1, keepdims=True)
    pull = 3.0 * (length - 0.5) * d / length
    np.testing.assert_allclose(g, pull - np.roll(pull, 1, axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g.sum(axis=0), 0.0, atol=1e-12)  # translation invariance
    check_grads(ring_energy, (x,), order=2)
    h = dk.hessian(ring_energy)(x)
    assert h.shape == (n, 2, n, 2)
    np.testing.assert_allclose(h.reshape(2 * n, 2 * n), h.reshape(2 * n, 2 * n).T, atol=1e-10)


def total_variation(u, eps=1e-3):
    """Isotropic total variation of an image, smoothed at flat regions."""
    dx = np.diff(u, axis=1)[:-1, :]
    dy = np.diff(u, axis=0)[:, :-1]
    return np.sum(np.sqrt(dx**2 + dy**2 + eps**2))


def test_total_variation_with_diff():
    u = RNG.standard_normal((6, 7))
    np.testing.assert_allclose(_traced(total_variation, u), total_variation(u), rtol=1e-13)
    check_grads(total_variation, (u,), order=2)
    # anisotropic TV with diff's append: the gradient is a sign pattern's divergence
    v = np.arange(12.0).reshape(3, 4) ** 1.5

    def tv1(u):
        return np.sum(np.abs(np.diff(u, axis=1, append=u[:, -1:])))

    g = dk.grad(tv1)(v)
    s = np.sign(np.diff(v, axis=1))
    expected = np.zeros_like(v)
    expected[:, :-1] -= s
    expected[:, 1:] += s
    np.testing.assert_allclose(g, expected, atol=1e-14)


def laplacian(u, h):
    """The 5-point-like Laplacian of numpy's second-order differences."""
    gx, gy = np.gradient(u, h)
    return np.gradient(gx, h, axis=0) + np.gradient(gy, h, axis=1)


def test_finite_difference_laplacian_with_gradient():
    n, h = 9, 0.1
    xs = np.arange(n) * h
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    u = X**2 + 3 * Y**2
    lap = _traced(lambda v: laplacian(v, h), u)
    np.testing.assert_allclose(lap, laplacian(u, h), rtol=1e-13)
    np.testing.assert_allclose(lap[2:-2, 2:-2], 8.0, rtol=1e-10)  # exact inside for quadratics

    def energy(v):
        return 0.5 * np.sum(laplacian(v, h) ** 2) * h**2

    w = RNG.standard_normal((n, n))
    check_grads(energy, (w,), order=2)
    # linear in u: the gradient of the energy is Lᵀ L u, with L the Laplacian's matrix
    L = dk.jacfwd(lambda v: laplacian(v, h))(w).reshape(n * n, n * n)
    np.testing.assert_allclose(
        dk.grad(energy)(w).ravel(), L.T @ L @ w.ravel() * h**2, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(L, dk.jacrev(lambda v: laplacian(v, h))(w).reshape(L.shape))


def test_dirichlet_energy_with_a_traced_step():
    def energy(u, h):
        gx, gy = np.gradient(u, h, h, edge_order=2)
        return 0.5 * np.sum(gx**2 + gy**2) * h**2

    u = RNG.standard_normal((5, 6))
    check_grads(energy, (u, 0.2), order=2)
    # the differences scale as 1/h and the cell area as h²: the energy does not depend on h
    assert abs(dk.grad(energy, argnums=1)(u, 0.2)) < 1e-10


def test_periodic_convolution_and_image_augmentation():
    """A periodic stencil with roll, and a loss over rotated and flipped copies."""
    img = RNG.standard_normal((5, 5))

    def loss(u):
        smooth = (np.roll(u, 1, 0) + np.roll(u, -1, 0) + np.roll(u, 1, 1) + np.roll(u, -1, 1)) / 4
        views = [np.rot90(smooth, k) for k in range(4)]
        return np.sum(np.stack(views) ** 2) + np.sum(np.moveaxis(np.atleast_3d(u), -1, 0) ** 3)

    check_grads(loss, (img,), order=2)


def test_float32_stays_float32():
    x = RNG.standard_normal((4, 5)).astype(np.float32)
    fns = [
        lambda v: np.sum(np.roll(v, 1, axis=1) * v),
        lambda v: np.sum(np.diff(v, axis=0) ** 2),
        lambda v: np.sum(np.gradient(v, 0.5)[0] ** 2),
        lambda v: np.sum(np.rot90(v) ** 2),
        lambda v: np.sum(np.append(v, v[:1], axis=0) ** 2),
    ]
    for f in fns:
        g = dk.grad(f)(x)
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, dk.grad(f)(x.astype(np.float64)), rtol=1e-4, atol=1e-4)
    g = dk.grad(lambda b: np.sum(np.linspace(np.float32(0), b, 5) ** 2))(np.float32(2.0))
    assert np.asarray(g).dtype == np.float32


def test_complex_values_pass_through():
    z = RNG.standard_normal((3, 4)) + 1j * RNG.standard_normal((3, 4))
    got = _traced(lambda v: np.roll(np.diff(v, axis=0), 1), z)
    np.testing.assert_allclose(got, np.roll(np.diff(z, axis=0), 1), rtol=1e-13)
    check_grads(lambda v: np.sum(np.rot90(v) * np.gradient(v, axis=1).T), (z,), order=1)


def test_jacobians_of_helpers_batch():
    x = RNG.standard_normal((3, 4))

    def f(v):
        return np.gradient(np.roll(v, 1, axis=1), axis=0) + np.rot90(np.rot90(v))

    jf, jr = dk.jacfwd(f)(x), dk.jacrev(f)(x)
    np.testing.assert_allclose(jf, jr, atol=1e-14)
    eye = np.eye(12).reshape(12, 3, 4)
    cols = np.stack([f(e) for e in eye], axis=-1).reshape(3, 4, 3, 4)
    np.testing.assert_allclose(jf, cols, atol=1e-14)


def test_linspace_jacobian_in_its_end_points():
    a, b = np.array([0.0, 1.0]), np.array([2.0, -1.0])

    def grid(a, b):
        return np.linspace(a, b, 5, axis=1)

    t = np.linspace(0.0, 1.0, 5)
    ja, jb = dk.jacfwd(grid, argnums=(0, 1))(a, b)
    ra, rb = dk.jacrev(grid, argnums=(0, 1))(a, b)
    eye = np.eye(2)[:, None, :]
    np.testing.assert_allclose(ja, eye * (1 - t)[None, :, None], atol=1e-15)
    np.testing.assert_allclose(jb, eye * t[None, :, None], atol=1e-15)
    np.testing.assert_allclose(ra, ja, atol=1e-15)
    np.testing.assert_allclose(rb, jb, atol=1e-15)


def test_empty_arrays():
    for f, shape in [
        (lambda v: np.roll(v, 2, axis=0), (0, 3)),
        (lambda v: np.diff(v, axis=0), (0, 3)),
        (lambda v: np.squeeze(v), (0, 1)),
        (lambda v: np.moveaxis(v, 0, 1), (0, 2)),
        (lambda v: np.append(v, v), (0,)),
        (lambda v: np.rot90(v), (0, 2)),
    ]:
        v = np.zeros(shape)
        _same(_traced(f, v), f(v))


# ---- bad input: one line naming the function and the shapes ----------------------------------

ERRORS = [
    (lambda x: np.squeeze(x, axis=0), (2, 1), ValueError, "squeeze: axis 0 of shape (2, 1)"),
    (lambda x: np.squeeze(x, axis=3), (2, 1), ValueError, "squeeze: axis 3 is out of range"),
    (lambda x: np.ravel(x, order="X"), (2,), ValueError, "ravel: order"),
    (lambda x: np.expand_dims(x, 3), (2, 1), ValueError, "expand_dims: axis 3 is out of range"),
    (lambda x: np.expand_dims(x, (0, 0)), (2,), ValueError, "expand_dims: repeated axis"),
    (lambda x: np.moveaxis(x, (0, 1), 0), (2, 3), ValueError, "moveaxis: source (0, 1)"),
    (lambda x: np.moveaxis(x, 0, 2), (2, 3), ValueError, "moveaxis: destination 2"),
    (lambda x: np.roll(x, 1, axis=2), (2, 3), ValueError, "roll: axis 2 is out of range"),
    (lambda x: np.roll(x, 1.5, axis=0), (2, 3), TypeError, "roll: shift must be an integer"),
    (lambda x: np.roll(x, (1, 2, 3), axis=(0, 1)), (2, 3), ValueError, "roll: shift"),
    (lambda x: np.rot90(x), (3,), ValueError, "rot90: needs an input of at least two"),
    (lambda x: np.rot90(x, axes=(1, 1)), (2, 3), ValueError, "rot90: axes (1, 1)"),
    (lambda x: np.rot90(x, axes=(0,)), (2, 3), ValueError, "rot90: axes must name two"),
    (lambda x: np.rot90(x, axes=(0, 4)), (2, 3), ValueError, "rot90: axis 4 is out of range"),
    (lambda x: np.diff(x), (), ValueError, "diff: needs an input of at least one dimension"),
    (lambda x: np.diff(x, n=-1), (3,), ValueError, "diff: the order n must be non-negative"),
    (
        lambda x: np.diff(x, prepend=np.ones((2, 2))),
        (3, 2),
        ValueError,
        "diff: prepend of shape (2, 2) does not fit an input of shape (3, 2)",
    ),
    (lambda x: np.gradient(x), (1, 3), ValueError, "gradient: axis 0 of shape (1, 3) has 1"),
    (lambda x: np.gradient(x, edge_order=2), (2,), ValueError, "edge_order=2 needs at least 3"),
    (lambda x: np.gradient(x, edge_order=3), (5,), ValueError, "gradient: edge_order must be"),
    (lambda x: np.gradient(x, 1.0, 2.0), (5,), TypeError, "gradient: 2 spacings for 1 axes"),
    (
        lambda x: np.gradient(x, np.arange(4.0)),
        (5,),
        ValueError,
        "gradient: coordinates of shape (4,) do not match axis 0",
    ),
    (lambda x: np.gradient(x, np.ones((5, 1))), (5,), ValueError, "gradient: spacings must be"),
    (
        lambda x: np.append(x, np.ones(3), axis=0),
        (2, 3),
        ValueError,
        "append: arr of shape (2, 3) and values of shape (3,)",
    ),
    (
        lambda x: np.append(x, np.ones((2, 2)), axis=0),
        (2, 3),
        ValueError,
        "append: arr of shape (2, 3) and values of shape (2, 2) differ off axis 0",
    ),
    (lambda x: np.linspace(0.0, x, -1), (), ValueError, "linspace: the number of samples"),
    (lambda x: np.linspace(0.0, x, 2.5), (), TypeError, "linspace: num must be an integer"),
    (lambda x: np.linspace(0.0, x, 3, dtype=int), (), TypeError, "linspace: dtype=int64"),
    (lambda x: np.linspace(0.0, x, 3, axis=2), (2,), ValueError, "linspace: axis 2"),
]


@pytest.mark.parametrize("f,shape,error,text", ERRORS, ids=[e[3][:40] for e in ERRORS])
def test_bad_input_gives_one_line_error(f, shape, error, text):
    with pytest.raises(error) as info:
        f(dk.variable("x", shape))
    message = str(info.value)
    assert text in message, message
    assert "\n" not in message

"""Every method keeps the dtype class of the point: float32 in, float32 out; complex in,
the holomorphic derivative out (as ``jax.hessian(f, holomorphic=True)``), or a one-line
refusal where a method cannot give it; never a silent cast or a ComplexWarning.

The truths are mpmath's own numerical derivatives at 30 digits (``mpmath.diff``, which
differentiates analytic functions at complex points), independent of diffkit.
"""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest

import diffkit as dk

pytestmark = pytest.mark.filterwarnings("error")  # a ComplexWarning fails the test

METHODS = dk.methods()
ONE_SIDED = ("forward-difference", "backward-difference")
EXACT = ("forward", "reverse", "symbolic")

REAL = np.array([0.7, 1.3])
COMPLEX = np.array([0.7 + 0.4j, 1.3 - 0.6j])
POINTS = {
    "float32": REAL.astype(np.float32),
    "float64": REAL,
    "complex64": COMPLEX.astype(np.complex64),
    "complex128": COMPLEX,
}

X = dk.variable("x", (2,))
# f(a, b) = e^a sin b + a^3 b + log(b) / a, scalar
F = dk.exp(X[0]) * dk.sin(X[1]) + X[0] ** 3 * X[1] + dk.log(X[1]) / X[0]
# g_i = sin(x_i) x_(1-i) + x_i^2 e^(x_(1-i)), a vector
G = dk.sin(X) * X[::-1] + X**2 * dk.exp(X[::-1])


def _f(a, b):
    return mpmath.exp(a) * mpmath.sin(b) + a**3 * b + mpmath.log(b) / a


def _g(i):
    return lambda a, b: (
        mpmath.sin(a) * b + a**2 * mpmath.exp(b)
        if i == 0
        else mpmath.sin(b) * a + b**2 * mpmath.exp(a)
    )


def _mp(point):
    if np.iscomplexobj(point):
        return [mpmath.mpc(complex(v)) for v in point]
    return [mpmath.mpf(float(v)) for v in point]


def _truth(fun, point, orders) -> complex:
    with mpmath.workdps(30):
        return complex(mpmath.diff(fun, tuple(_mp(point)), orders))


def truth_gradient(point):
    p = point.astype(np.complex128)
    return np.array([_truth(_f, p, (1, 0)), _truth(_f, p, (0, 1))])


def truth_hessian(point):
    p = point.astype(np.complex128)
    faa, fab, fbb = (_truth(_f, p, o) for o in ((2, 0), (1, 1), (0, 2)))
    return np.array([[faa, fab], [fab, fbb]])


def truth_jacobian(point):
    p = point.astype(np.complex128)
    return np.array([[_truth(_g(i), p, o) for o in ((1, 0), (0, 1))] for i in range(2)])


def _close(got, truth, point, method, order):
    """The answer's dtype is the point's, and it is within the method's accuracy there."""
    got = np.asarray(got)
    assert got.dtype == point.dtype, (method, got.dtype, point.dtype)
    if not np.iscomplexobj(point):
        truth = truth.real
    single = np.finfo(point.dtype).eps > 1e-10
    if method in EXACT:
        rtol = 2e-6 if single else 1e-12
    elif order == 2:
        rtol = (5e-2 if single else 2e-4) if method in ONE_SIDED else (1e-2 if single else 1e-6)
    else:
        rtol = (5e-3 if single else 1e-6) if method in ONE_SIDED else (1e-3 if single else 1e-8)
    err = np.max(np.abs(got.astype(np.complex128) - truth)) / np.max(np.abs(truth))
    assert err <= rtol, (method, str(point.dtype), err, rtol)


def _complex_step_refuses(point, call) -> bool:
    if np.iscomplexobj(point):
        with pytest.raises(ValueError, match="complex-step: the point is complex") as info:
            call()
        assert "\n" not in str(info.value)
        return True
    return False


@pytest.mark.parametrize("kind", sorted(POINTS))
@pytest.mark.parametrize("method", METHODS)
def test_hessian_keeps_the_dtype_and_is_holomorphic(method, kind):
    point = POINTS[kind]

    def call():
        return dk.hessian(F, {"x": point}, method=method)

    if method == "complex-step" and _complex_step_refuses(point, call):
        return
    _close(call(), truth_hessian(point), point, method, 2)


@pytest.mark.parametrize("kind", sorted(POINTS))
@pytest.mark.parametrize("method", METHODS)
def test_jacobian_gradient_and_derivative_keep_the_dtype(method, kind):
    point = POINTS[kind]
    at = {"x": point}
    if method == "complex-step" and _complex_step_refuses(
        point, lambda: dk.jacobian(G, at, method=method, wrt="x")
    ):
        _complex_step_refuses(point, lambda: dk.gradient(F, at, method=method))
        return
    _close(dk.jacobian(G, at, method=method, wrt="x"), truth_jacobian(point), point, method, 1)
    _close(dk.gradient(F, at, method=method)["x"], truth_gradient(point), point, method, 1)
    _close(dk.derivative(F, "x", at, method=method), truth_gradient(point), point, method, 1)
    # a Hessian over two variables, one of which f does not use (sorted first), keeps the
    # dtype too
    H = dk.hessian(F, {**at, "unused": np.zeros(1, point.dtype)}, method=method)
    assert H.dtype == point.dtype and H.shape == (3, 3) and not np.any(H[0]) and not np.any(H[:, 0])


def test_the_complex_hessian_of_the_issue():
    x = dk.variable("x", (2,))
    for method in ("reverse", "forward", "symbolic"):
        H = dk.hessian(dk.sum(x**3), at={"x": [1 + 1j, 2 - 0.5j]}, method=method)
        assert H.dtype == np.complex128
        np.testing.assert_array_equal(H, np.diag([6 + 6j, 12 - 3j]))
    H = dk.hessian(dk.sum(x**3), at={"x": [1 + 1j, 2 - 0.5j]}, method="central")
    np.testing.assert_allclose(H, np.diag([6 + 6j, 12 - 3j]), rtol=1e-6, atol=1e-6)


def test_scalar_results_keep_their_dtype():
    x = dk.variable("x")
    f = dk.sin(x) * x
    for method in METHODS:
        d = dk.derivative(f, "x", {"x": np.float32(0.5)}, method=method)
        assert np.asarray(d).dtype == np.float32, method
        if method != "complex-step":
            d = dk.derivative(f, "x", {"x": 0.5 + 0.25j}, method=method)
            assert isinstance(d, complex), method
            truth = np.cos(0.5 + 0.25j) * (0.5 + 0.25j) + np.sin(0.5 + 0.25j)
            assert abs(d - truth) < 1e-6, method


def test_promotion_follows_numpy():
    x, y = dk.variable("x"), dk.variable("y")
    f = x * y**2
    at = {"x": np.float32(2.0), "y": np.float64(3.0)}
    for method in ("reverse", "forward", "central", "symbolic"):
        assert dk.hessian(f, at, method=method).dtype == np.float64, method
    # integers are evaluated in float64
    assert dk.hessian(f, {"x": 2, "y": 3}).dtype == np.float64
    # a complex variable makes the whole answer complex
    H = dk.hessian(f, {"x": np.float32(2.0), "y": np.complex64(3.0 + 1j)})
    assert H.dtype == np.complex64
    np.testing.assert_allclose(H, [[0, 2 * (3 + 1j)], [2 * (3 + 1j), 4]], rtol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_ops_that_are_not_holomorphic_are_refused_at_complex_points(method):
    x = dk.variable("x", (2,))
    z = {"x": COMPLEX}
    for f in (dk.sum(dk.abs(x) * x), dk.sum(dk.maximum(x, 0.5)), dk.sum(dk.relu(x) ** 2)):
        for call in (
            lambda: dk.hessian(f, z, method=method),
            lambda: dk.gradient(f, z, method=method),
            lambda: dk.jacobian(f, z, method=method),
        ):
            with pytest.raises(ValueError, match="is not holomorphic") as info:
                call()
            assert "\n" not in str(info.value)
        # the same functions at real points are differentiated as before
        if method != "complex-step":  # which refuses them for another reason
            assert dk.gradient(f, {"x": REAL}, method=method)["x"].dtype == np.float64


def test_stop_gradient_and_real_variables_beside_complex_ones_pass():
    x, y = dk.variable("x"), dk.variable("y")
    # relu of a real variable beside a complex one is a real function of y
    f = x**2 * dk.relu(y)
    g = dk.gradient(f, {"x": 1 + 1j, "y": 2.0})
    assert g["x"] == 2 * (1 + 1j) * 2 and g["y"] == (1 + 1j) ** 2


def test_check_grads_at_complex_points():
    x = dk.variable("x", (2,))
    dk.check_grads(dk.sum(dk.sin(x) * dk.exp(x)), {"x": COMPLEX}, order=2)
    with pytest.raises(ValueError, match="is not holomorphic"):
        dk.check_grads(dk.sum(dk.abs(x)), {"x": COMPLEX})


def test_no_complex_warning_anywhere():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in METHODS:
            if method == "complex-step":
                continue
            dk.hessian(F, {"x": COMPLEX}, method=method)
            dk.jacobian(G, {"x": COMPLEX}, method=method)


# ---- the transforms of Python functions -----------------------------------------------


def _np_f(x):
    return np.exp(x[0]) * np.sin(x[1]) + x[0] ** 3 * x[1] + np.log(x[1]) / x[0]


def _np_g(x):
    return np.sin(x) * x[::-1] + x**2 * np.exp(x[::-1])


@pytest.mark.parametrize("kind", sorted(POINTS))
def test_transforms_keep_the_dtype(kind):
    point = POINTS[kind]
    calls = {
        "hessian": (lambda: dk.hessian(_np_f)(point), truth_hessian, 2),
        "jacfwd": (lambda: dk.jacfwd(_np_g)(point), truth_jacobian, 1),
        "jacrev": (lambda: dk.jacrev(_np_g)(point), truth_jacobian, 1),
        "grad": (lambda: dk.grad(_np_f)(point), truth_gradient, 1),
    }
    for name, (call, truth, order) in calls.items():
        try:
            got = call()
        except TypeError as err:  # a refusal of complex input is allowed, in one line
            assert np.iscomplexobj(point) and "complex" in str(err), (name, err)
            assert "\n" not in str(err)
            continue
        _close(got, truth(point), point, "reverse", order)


def test_real_valued_functions_of_complex_inputs_follow_jax_in_reverse_mode():
    z = dk.variable("z")
    f = dk.real(z) ** 2 + dk.imag(z) ** 2  # |z|^2: df/dx - i df/dy = 2x - 2iy, as JAX
    assert dk.gradient(f, {"z": 3 + 4j})["z"] == 6 - 8j
    for method in ("forward", "central", "symbolic"):
        with pytest.raises(ValueError, match="'real' is not holomorphic"):
            dk.gradient(f, {"z": 3 + 4j}, method=method)
    with pytest.raises(ValueError, match="is not holomorphic"):
        dk.hessian(f, {"z": 3 + 4j})
    with pytest.raises(ValueError, match="'abs' is not holomorphic"):  # complex-valued
        dk.gradient(dk.abs(z) * z, {"z": 3 + 4j})


def test_integer_inputs_do_not_widen_float32():
    """Integers (labels, batch norm's num_batches_tracked) given beside float32 data, used
    or not, leave the computation in float32, as in PyTorch and JAX."""
    from diffkit import nn

    a, k = dk.variable("a", (2,)), dk.variable("k")
    f32 = np.ones(2, np.float32)
    assert dk.evaluate(a * 2, {"a": f32, "unused": np.array(3)}).dtype == np.float32
    assert dk.evaluate(a * k, {"a": f32, "k": np.int64(3)}).dtype == np.float32
    assert dk.evaluate(a * 2, {"a": np.ones(2, np.int64)}).dtype == np.float64
    layer = nn.BatchNorm2d(3).eval()
    x = dk.variable("x", (2, 3, 4, 4))
    at = {**layer.inputs(), "x": np.ones((2, 3, 4, 4), np.float32)}
    assert at["num_batches_tracked"].dtype.kind == "i"
    assert dk.evaluate(layer(x), at).dtype == np.float32

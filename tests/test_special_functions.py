"""scipy.special's functions of statistics and machine learning: values and derivatives
against mpmath at 50 digits, their conventions at 0 and at the poles, numpy code that
calls them, the expression language and dtypes."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special as ss

import diffkit as dk

EPS = np.finfo(float).eps


def _mp(fn, x):
    with mpmath.workdps(50):
        return fn(mpmath.mpf(x)), mpmath.diff(fn, mpmath.mpf(x))


CASES = [
    ("gammaln", lambda t: mpmath.log(abs(mpmath.gamma(t))), [0.3, 2.5, 7.0, 40.0, -0.5, -3.3]),
    ("gamma", mpmath.gamma, [0.3, 2.5, 7.0, -0.5, -3.3]),
    ("digamma", mpmath.digamma, [0.3, 1.4616, 2.5, 30.0, -0.5, -3.3]),
    ("logit", lambda t: mpmath.log(t / (1 - t)), [1e-6, 0.2, 0.5, 0.9, 1 - 1e-6]),
    ("log_expit", lambda t: -mpmath.log(1 + mpmath.exp(-t)), [-50.0, -2.0, 0.0, 3.0, 50.0]),
    ("entr", lambda t: -t * mpmath.log(t), [1e-8, 0.3, 1.0, 5.0]),
    ("ndtr", mpmath.ncdf, [-8.0, -1.0, 0.0, 2.0, 8.0]),
    ("log_ndtr", lambda t: mpmath.log(mpmath.ncdf(t)), [-40.0, -5.0, 0.0, 3.0, 10.0]),
    ("ndtri", lambda t: mpmath.sqrt(2) * mpmath.erfinv(2 * t - 1), [1e-10, 0.1, 0.5, 0.975]),
    # erfcx's derivative 2x erfcx(x) - 2/sqrt(pi) cancels for large x: checked below 3
    ("erfcx", lambda t: mpmath.exp(t * t) * mpmath.erfc(t), [-2.0, 0.0, 1.0, 2.5]),
]


@pytest.mark.parametrize("name, fn, points", CASES, ids=[c[0] for c in CASES])
def test_values_and_derivatives_against_mpmath(name, fn, points):
    x = dk.variable("x")
    f = getattr(dk, name)(x)
    for p in points:
        value, slope = _mp(fn, p)
        got = dk.evaluate(f, {"x": p})
        # scipy's own accuracy: within a few ulp, 31 ulp for ndtr far in its left tail
        assert abs(got - float(value)) <= 64 * EPS * abs(float(value)) + 1e-300, (p, got, value)
        for method in ("reverse", "forward"):
            d = dk.derivative(f, "x", {"x": p}, method=method)
            assert abs(d - float(slope)) <= 1e-13 * abs(float(slope)) + 1e-300, (p, method)


@pytest.mark.parametrize("n", [0, 1, 2, 4])
def test_polygamma_and_its_derivative_against_mpmath(n):
    x = dk.variable("x")
    for p in (0.4, 3.0, 12.5):
        with mpmath.workdps(50):
            value, slope = mpmath.psi(n, p), mpmath.psi(n + 1, p)
        f = dk.polygamma(n, x)
        assert dk.evaluate(f, {"x": p}) == pytest.approx(float(value), rel=1e-14)
        assert dk.derivative(f, "x", {"x": p}) == pytest.approx(float(slope), rel=1e-13)
    # second derivatives through the records: psi^(n+2)
    with mpmath.workdps(50):
        curvature = float(mpmath.psi(n + 2, 3.0))
    assert dk.derivative(dk.polygamma(n, x), "x", {"x": 3.0}, order=2) == pytest.approx(
        curvature, rel=1e-12
    )


def test_xlogy_conventions_at_zero():
    """0 where x = 0 whatever y; d/dx is log(y) (JAX's), d/dy is 0 where x = 0."""
    x, y = dk.variables("x y")
    for name, log_fn in (("xlogy", math.log), ("xlog1py", math.log1p)):
        f = getattr(dk, name)(x, y)
        assert dk.evaluate(f, {"x": 0.0, "y": 0.0}) == 0.0
        for yv in (0.0, 2.0):
            g = dk.gradient(f, {"x": 0.0, "y": yv})
            assert g["y"] == 0.0
            assert g["x"] == pytest.approx(
                log_fn(yv) if yv else -math.inf if name == "xlogy" else 0.0
            )
        g = dk.gradient(f, {"x": 1.5, "y": 2.0})
        denominator = 2.0 if name == "xlogy" else 3.0
        assert g["x"] == pytest.approx(log_fn(2.0)) and g["y"] == pytest.approx(1.5 / denominator)


def test_entr_and_logit_at_the_ends():
    x = dk.variable("x")
    assert dk.evaluate(dk.entr(x), {"x": 0.0}) == 0.0
    assert dk.evaluate(dk.entr(x), {"x": -1.0}) == -math.inf
    assert dk.derivative(dk.entr(x), "x", {"x": 0.0}) == math.inf  # -(log 0 + 1), PyTorch's
    assert dk.evaluate(dk.logit(x), {"x": 0.0}) == -math.inf
    assert dk.evaluate(dk.logit(x), {"x": 1.0}) == math.inf
    assert math.isnan(dk.evaluate(dk.ndtri(x), {"x": 1.5}))


def test_gamma_family_at_the_poles_follows_scipy():
    x = dk.variable("x")
    for name in ("gammaln", "gamma", "digamma"):
        for p in (0.0, -1.0, -2.0):
            got = dk.evaluate(getattr(dk, name)(x), {"x": p})
            np.testing.assert_equal(got, getattr(ss, name)(p))


def test_numpy_code_calling_scipy_special_is_traced():
    def log_likelihood(theta):  # a Beta-binomial-like score
        a, b = np.exp(theta[0]), np.exp(theta[1])
        k, n = np.array([3.0, 7.0, 1.0]), 10.0
        terms = ss.gammaln(k + a) + ss.gammaln(n - k + b) - ss.gammaln(n + a + b)
        terms += ss.gammaln(a + b) - ss.gammaln(a) - ss.gammaln(b)
        return np.sum(terms) + np.sum(ss.xlogy(k, ss.expit(theta[0]))) + ss.log_ndtr(theta[1])

    theta = np.array([0.3, -0.4])
    grad = dk.grad(log_likelihood)(theta)
    h = 1e-6
    fd = [
        (log_likelihood(theta + h * e) - log_likelihood(theta - h * e)) / (2 * h) for e in np.eye(2)
    ]
    np.testing.assert_allclose(grad, fd, rtol=1e-7)
    hess = dk.hessian(log_likelihood)(theta)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-12)
    fd2 = [(dk.grad(log_likelihood)(theta + h * e) - grad) / h for e in np.eye(2)]
    np.testing.assert_allclose(hess, np.array(fd2).T, rtol=1e-5)


def test_the_expression_language_reads_them():
    at = {"x": 2.5}
    for text, truth in (
        ("digamma(x)", ss.digamma(2.5)),
        ("psi(x)", ss.digamma(2.5)),
        ("polygamma(x)", ss.digamma(2.5)),
        ("polygamma(2, x)", ss.polygamma(2, 2.5)),
        ("gammaln(x) + xlogy(x, x)", ss.gammaln(2.5) + 2.5 * math.log(2.5)),
    ):
        assert dk.evaluate(dk.parse(text), at) == pytest.approx(truth, rel=1e-14), text
    with pytest.raises(ValueError, match="polygamma: the order n must be a constant"):
        dk.parse("polygamma(x, x)")
    with pytest.raises(ValueError, match="non-negative integer"):
        dk.parse("polygamma(1.5, x)")


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
def test_polygamma_refuses_a_bad_order(bad):
    with pytest.raises(ValueError, match="polygamma: the order n must be a non-negative integer"):
        dk.polygamma(bad, dk.variable("x"))


@pytest.mark.parametrize("name", ["gammaln", "digamma", "logit", "entr", "ndtr", "log_ndtr"])
def test_float32_in_float32_out(name):
    x = dk.variable("x", (3,))
    at = {"x": np.array([0.2, 0.5, 0.7], dtype=np.float32)}
    f = dk.sum(getattr(dk, name)(x))
    assert dk.evaluate(getattr(dk, name)(x), at).dtype == np.float32
    assert dk.gradient(f, at)["x"].dtype == np.float32


def test_complex_step_of_sinc_near_zero():
    """sin(pi z) / (pi z) cancels in its imaginary part near 0, where the complex step
    reads the derivative; the series there keeps every digit."""
    x = dk.variable("x")
    for p in (-8.62806436736865e-06, -0.001188091009557483, 1e-9, 0.1):
        with mpmath.workdps(40):
            truth = float(mpmath.diff(mpmath.sincpi, mpmath.mpf(p)))
        got = dk.derivative(dk.sinc(x), "x", {"x": p}, method="complex-step")
        assert got == pytest.approx(truth, rel=1e-14, abs=1e-300), p
    z = np.array([1e-3 + 2e-3j, 0.1 - 0.05j, 0.4j])
    np.testing.assert_allclose(dk.evaluate(dk.sinc(dk.variable("z", (3,))), {"z": z}),
                               np.sinc(z), rtol=1e-15)  # fmt: skip


def test_high_precision_gelu_derivative_in_the_far_tails():
    """The 50-digit form of GELU's derivative is 1 or 0 far out, where mpmath's
    exp(-x^2/2) would overflow its integer conversion."""
    x = dk.variable("x")
    g = dk.grad_graph(dk.nn.functional.gelu(x), "x")
    for p, expected in ((1e300, 1.0), (-1e300, 0.0), (-50.0, 0.0)):
        got = dk.evaluate(g, {"x": p}, precision=40)
        assert float(got) == pytest.approx(expected, abs=1e-300)


def test_symbolic_derivative_where_sympy_folds_an_argument_to_zero():
    """(x - x) x is the number 0 to SymPy: entr and xlogy of it are 0 (scipy's value),
    and the symbolic derivative is the 50-digit one; an expression SymPy reads as nan
    (0 log 0) has a NaN derivative, never SymPy's derivative of a constant, 0."""
    x = dk.variable("x")
    at = {"x": 1.8787985420275994}
    f = dk.sinc(x + x) / 2 + dk.entr((x - x) * x) + dk.xlogy((x - x) * x, x - x)
    truth = dk.reference_derivative(f, "x", at)
    assert dk.derivative(f, "x", at, method="symbolic") == pytest.approx(float(truth), rel=1e-14)
    g = x + (x - x) * dk.log(x - x)
    assert math.isnan(dk.derivative(g, "x", {"x": 2.0}, method="symbolic"))
    assert math.isnan(dk.evaluate(g, {"x": 2.0}))  # as float64 evaluates it


def test_symbolic_outside_the_real_domain_is_nan_as_in_float64():
    """logit(log(1/2)) is the logit of a negative number: NaN in float64 (scipy's), and
    SymPy's complex log there becomes NaN too, not a crash on a complex value."""
    f = dk.parse("arctan2(logit(log(1/2)), ((x / 0.75) - 5/3))")
    at = {"x": -1.338364809521107}
    for method in ("symbolic", "reverse", "forward"):
        assert math.isnan(dk.derivative(f, "x", at, method=method)), method

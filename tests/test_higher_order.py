"""Derivatives of any order: every method against mpmath at 50 digits, the cases of
numdifftools' ``Derivative(n=...)`` tests ported (with error estimates that cover the
errors), exact stencils, the Laplacian three ways, and one-line refusals."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

import diffkit as dk
from diffkit.differentiators.finite import (
    central_stencil,
    nth_difference,
    one_sided_stencil,
    stencil_weights,
)
from diffkit.differentiators.higher import (
    HIGHER_METHODS,
    derivative,
    directional_derivative,
    laplacian,
)

X = dk.variable("x")
EXACT = ("taylor", "forward", "reverse", "forward-over-reverse", "symbolic")


def _truth(fn, x0, k):
    with mpmath.workdps(50):
        return float(mpmath.diff(fn, mpmath.mpf(x0), k))


FUNCTIONS = {
    "exp(sin x)": (dk.exp(dk.sin(X)), lambda t: mpmath.exp(mpmath.sin(t)), 0.7),
    "runge": (1 / (1 + 25 * X * X), lambda t: 1 / (1 + 25 * t * t), 0.3),
    "pole": (1 / (X - 0.9), lambda t: 1 / (t - 0.9), 0.5),
    "tanh net": (
        dk.tanh(0.7 * dk.tanh(1.3 * X - 0.2) + 0.4),
        lambda t: mpmath.tanh(0.7 * mpmath.tanh(1.3 * t - 0.2) + 0.4),
        0.25,
    ),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("method", EXACT)
def test_exact_methods_against_mpmath(name, method):
    f, fn, x0 = FUNCTIONS[name]
    for k in range(1, 7):
        want = _truth(fn, x0, k)
        got = derivative(f, "x", {"x": x0}, method=method, order=k)
        assert abs(got - want) <= 1e-9 * max(1.0, abs(want)), (k, got, want)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@pytest.mark.parametrize("method", ["richardson", "complex-circle", "central"])
def test_numerical_estimates_cover_errors(name, method):
    f, fn, x0 = FUNCTIONS[name]
    for k in range(1, 7):
        want = _truth(fn, x0, k)
        got, info = derivative(f, "x", {"x": x0}, method=method, order=k, full_output=True)
        assert abs(got - want) <= info.error_estimate, (k, got, want, info.error_estimate)
        if method == "complex-circle":  # the best scheme: within 1e-6 relative for k <= 6
            assert abs(got - want) <= 1e-6 * abs(want)


# ---- numdifftools' Derivative(n=...) cases -------------------------------------------------


@pytest.mark.parametrize("method", ["complex-circle", "richardson", "central"])
def test_high_order_derivative_cos(method):
    """numdifftools: the n-th derivative of cos at pi/2 (n up to 6) within 1e-4."""
    truth = (-1.0, 0.0, 1.0, 0.0, -1.0, 0.0)
    for n in range(1, 7):
        got, info = derivative(
            dk.cos(X), "x", {"x": np.pi / 2}, method=method, order=n, full_output=True
        )
        assert abs(got - truth[n - 1]) <= 1e-4
        assert abs(got - truth[n - 1]) <= info.error_estimate + 1e-14


@pytest.mark.parametrize(
    "x0", [0.0, 2.2204460492503134e-14, 1.0, 2.5, 7.6564547238847105, 8.9428143931508, 10.0]
)
@pytest.mark.parametrize("method", ["complex-circle", "richardson", "central"])
def test_derivative_of_cos_x(x0, method):
    """numdifftools: rtol 1e-6 with atol 100 times the error estimate, n up to 6 (7 for
    the complex method); here the estimate must also cover the error by itself."""
    truth = (-np.sin(x0), -np.cos(x0), np.sin(x0), np.cos(x0)) * 2
    top = 7 if method == "complex-circle" else 6
    for n in range(1, top + 1):
        got, info = derivative(dk.cos(X), "x", {"x": x0}, method=method, order=n, full_output=True)
        err = abs(got - truth[n - 1])
        assert err <= 100 * info.error_estimate + 1e-14 + 1e-6 * abs(truth[n - 1])
        assert err <= info.error_estimate + 1e-14, (n, err, info.error_estimate)


@pytest.mark.parametrize("method", ["complex-circle", "richardson", "central"])
def test_derivative_cube_and_exp(method):
    """numdifftools: x^3 at 2 (derivatives 12, 12, 6) and exp at 0 (all 1)."""
    for n, want in zip((1, 2, 3), (12.0, 12.0, 6.0)):
        got = derivative(X * X * X, "x", {"x": 2.0}, method=method, order=n)
        assert abs(got - want) <= 1e-6 * want
    for n in range(1, 7):
        got, info = derivative(dk.exp(X), "x", {"x": 0.0}, method=method, order=n, full_output=True)
        if method != "central":  # the plain stencil loses digits with n; its estimate says so
            assert abs(got - 1.0) <= 1e-6
        assert abs(got - 1.0) <= info.error_estimate


def test_fornberg_one_over_one_minus_x():
    """numdifftools.fornberg: derivatives of 1/(1 - x) at 0 are n!, estimates below 1e-9
    relative."""
    for n in range(1, 7):
        got, info = derivative(
            1 / (1 - X), "x", {"x": 0.0}, method="complex-circle", order=n, full_output=True
        )
        want = float(math.factorial(n))
        assert abs(got - want) <= info.error_estimate
        assert info.error_estimate < 1e-9 * want


def test_log_near_its_domain_edge():
    """numdifftools: log at 0.001 (a step of the usual size leaves the domain)."""
    for n in range(1, 4):
        want = (-1) ** (n - 1) * math.factorial(n - 1) / 0.001**n
        for method in ("richardson", "complex-circle"):
            got, info = derivative(
                dk.log(X), "x", {"x": 0.001}, method=method, order=n, full_output=True
            )
            assert abs(got - want) <= info.error_estimate
            assert abs(got - want) <= 1e-6 * abs(want)


def test_one_sided_estimates_are_honest():
    for method in ("forward-difference", "backward-difference"):
        for n in range(1, 6):
            got, info = derivative(
                dk.sinh(X), "x", {"x": 0.0}, method=method, order=n, full_output=True
            )
            assert abs(got - (n % 2)) <= info.error_estimate


def test_kink_is_not_a_silent_answer():
    """|x| at 0 has no second derivative: the estimate says the answer is not one."""
    got, info = derivative(dk.abs(X) + X * X, "x", {"x": 0.0}, "richardson", 2, True)
    assert info.error_estimate >= 1.0 or not np.isfinite(info.error_estimate)


# ---- stencils ---------------------------------------------------------------------------------


def test_stencil_weights_are_exact():
    assert stencil_weights(2, (-1, 0, 1)) == (1, -2, 1)
    assert stencil_weights(4, (-2, -1, 0, 1, 2)) == (1, -4, 6, -4, 1)
    offsets, weights = central_stencil(1, 4)  # the five-point stencil
    assert weights == (Fraction(1, 12), Fraction(-2, 3), 0, Fraction(2, 3), Fraction(-1, 12))
    offsets, weights = one_sided_stencil(2, 1)
    assert offsets == (0, 1, 2) and weights == (1, -2, 1)
    # exact on polynomials of degree below the number of points, for every order
    for k in range(1, 9):
        offsets, weights = central_stencil(k, 4)
        for degree in range(len(offsets)):
            got = sum(w * Fraction(o) ** degree for o, w in zip(offsets, weights))
            assert got == (math.factorial(k) if degree == k else 0)


def test_nth_difference_refuses_bad_input():
    with pytest.raises(ValueError, match="positive integer"):
        nth_difference(np.exp, 0.0, 0)
    with pytest.raises(ValueError, match="no scheme"):
        nth_difference(np.exp, 0.0, 2, "complex-step")
    with pytest.raises(ValueError, match="distinct offsets"):
        stencil_weights(3, (0, 1, 2))


# ---- directional derivatives and the Laplacian ---------------------------------------------


def test_directional_derivative_taylor_and_forward():
    x, y = dk.variables("x y")
    f = dk.exp(x * y) + dk.sin(x) * y**3
    at = {"x": 0.4, "y": -0.3}
    v = {"x": 0.5, "y": 2.0}
    with mpmath.workdps(40):

        def path(t):
            x, y = 0.4 + 0.5 * t, -0.3 + 2 * t
            return mpmath.exp(x * y) + mpmath.sin(x) * y**3

        for k in range(1, 6):
            want = float(mpmath.diff(path, 0, k))
            for method in ("taylor", "forward"):
                got = directional_derivative(f, at, v, k, method)
                assert abs(got - want) <= 1e-10 * max(1, abs(want))


def test_laplacian_three_ways():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 4))
    x, y = dk.variable("x", (4,)), dk.variable("y", (2,))
    f = dk.sum(dk.tanh(dk.const(W) @ x) ** 2) + dk.sum(dk.exp(y) * dk.sin(x[0]))
    at = {"x": rng.standard_normal(4), "y": rng.standard_normal(2)}
    H = dk.hessian(f, at, wrt=["x", "y"])
    want = float(np.trace(H))
    for method in ("collapsed", "taylor", "hessian"):
        assert abs(laplacian(f, at, method=method) - want) <= 1e-12 * max(1, abs(want))
    # over some variables only
    Hx = dk.hessian(f, at, wrt="x")
    assert abs(laplacian(f, at, wrt="x") - np.trace(Hx.reshape(4, 4))) <= 1e-12


def test_collapsed_graph_is_smaller_than_d_jets():
    """The collapsed graph propagates one second coefficient; its value equals the sum of
    D separate second-order jets."""
    x = dk.variable("x", (8,))
    f = dk.sum(dk.log(1 + dk.exp(dk.sin(x) * x)))
    at = {"x": np.linspace(-1, 1, 8)}
    a, info_c = laplacian(f, at, method="collapsed", full_output=True)
    b, info_t = laplacian(f, at, method="taylor", full_output=True)
    assert abs(a - b) <= 1e-12 * max(1, abs(b))
    assert info_c.graph_size > 0 and info_t.graph_size > 0


# ---- conventions and refusals --------------------------------------------------------------


def test_every_method_name_is_accepted_and_refusals_are_one_line():
    f = dk.exp(X)
    for method in HIGHER_METHODS:
        if method == "complex-step":
            continue
        got = derivative(f, "x", {"x": 0.0}, method=method, order=2)
        assert abs(got - 1.0) < 1e-3
    assert abs(derivative(f, "x", {"x": 0.0}, method="complex-step", order=1) - 1) < 1e-14
    with pytest.raises(ValueError, match="first derivatives only"):
        derivative(f, "x", {"x": 0.0}, method="complex-step", order=2)
    with pytest.raises(ValueError, match="not analytic"):
        derivative(dk.abs(X), "x", {"x": 1.0}, method="complex-circle", order=2)
    with pytest.raises(ValueError, match="scalar variable"):
        v = dk.variable("v", (2,))
        derivative(dk.sum(v), "v", {"v": np.ones(2)}, order=2)
    with pytest.raises(ValueError, match="positive integer"):
        derivative(f, "x", {"x": 0.0}, order=0)
    with pytest.raises(ValueError, match="unknown method"):
        derivative(f, "x", {"x": 0.0}, method="magic", order=2)


def test_float32_in_float32_out():
    got = derivative(dk.sin(X), "x", {"x": np.float32(0.5)}, method="taylor", order=3)
    assert np.asarray(got).dtype == np.float32
    assert abs(float(got) + math.cos(0.5)) < 1e-6


# ---- the study ---------------------------------------------------------------------------------


def test_higher_order_study_quick(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "studies" / "higher_order.py"
    spec = importlib.util.spec_from_file_location("higher_order_study", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    r = study.main(tmp_path / "higher-order", quick=True)
    for name, rec in r["data"].items():
        assert max(rec["taylor"]["error"]) < 1e-9, name
        for m in ("central", "richardson", "complex-circle"):
            for e, est in zip(rec[m]["error"], rec[m]["estimate"]):
                assert e <= est, (name, m)
        kind, rate, _ = r["growth"][(name, "taylor", "size")]
        assert kind == "power" and rate <= 2.0, (name, kind, rate)
    text = (tmp_path / "higher-order" / "README.md").read_text()
    assert "## Findings" in text and "| tanh network 8-8 | 6 | taylor |" in text
    for png in ("higher_order_cost.png", "higher_order_error.png"):
        assert (tmp_path / "higher-order" / png).stat().st_size > 5000


# ---- method names --------------------------------------------------------------------------


@pytest.mark.parametrize("order", [1, 3])
def test_every_listed_method_gives_the_kth_derivative(order):
    """Each name ``dk.methods(order=k)`` lists has a description and gives d^k f/dx^k of
    exp(sin x) through ``dk.derivative``, against mpmath at 50 digits."""
    listed = dk.methods(order=order, describe=True)
    assert "complex-circle" in listed and "taylor" in listed
    assert set(dk.methods()) <= set(listed) if order == 1 else "complex-step" not in listed
    fn, x0 = (lambda t: mpmath.exp(mpmath.sin(t))), 0.7
    want = _truth(fn, x0, order)
    # one-sided stencils of order 3 keep about 4 digits at their chosen step
    loose = {"forward-difference": 1e-3, "backward-difference": 1e-3, "central": 1e-6}
    for method, text in listed.items():
        assert len(text) > 20, method
        got = dk.derivative(dk.exp(dk.sin(X)), "x", {"x": x0}, method=method, order=order)
        assert abs(got - want) <= loose.get(method, 1e-8) * abs(want), (method, got, want)
    with pytest.raises(ValueError, match="positive integer"):
        dk.methods(order=0)

"""Finite differences and symbolic differentiation against the 50-digit truth and each other."""

from __future__ import annotations

import json
import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import diffkit as dk
from diffkit.cli import main
from diffkit.differentiators.finite import optimal_step

EPS = float(np.finfo(float).eps)
TOL = {
    "reverse": 1e-12,
    "forward": 1e-12,
    "symbolic": 1e-12,
    "complex-step": 1e-13,
    "richardson": 1e-10,
    "central": 1e-7,
    "five-point": 1e-7,
    "forward-difference": 1e-5,
    "backward-difference": 1e-5,
}
X, Y, Z = dk.variables("x y z")

UNARY = [
    dk.sin,
    dk.cos,
    dk.tanh,
    dk.sigmoid,
    lambda e: dk.exp(dk.tanh(e)),
    lambda e: dk.log(1 + e * e),
    lambda e: dk.sqrt(1 + e * e),
    lambda e: 1 / (2 + dk.sin(e)),
]
BINARY = [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a * b,
    lambda a, b: a / (1.5 + dk.cos(b)),
]


def expressions(leaves):
    base = st.sampled_from(leaves)
    return st.recursive(
        base,
        lambda sub: st.one_of(
            st.tuples(st.sampled_from(UNARY), sub).map(lambda t: t[0](t[1])),
            st.tuples(st.sampled_from(BINARY), sub, sub).map(lambda t: t[0](t[1], t[2])),
        ),
        max_leaves=6,
    )


def _close(value, truth, tol):
    return abs(value - truth) <= tol * max(1.0, abs(truth))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions([X, X * 1.3, dk.sin(X)]), x=st.floats(-1.5, 1.5))
def test_every_method_agrees_with_the_50_digit_truth(expr, x):
    at = {"x": x}
    if not any(n.kind == "var" for n in dk.ir.topological_order([expr])):
        return
    truth = float(dk.reference_derivative(expr, "x", at))
    for method, tol in TOL.items():
        value = dk.derivative(expr, "x", at, method=method)
        assert _close(value, truth, tol), (method, value, truth)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions([X, Y, Z, X * Y]), p=st.tuples(*[st.floats(-1.2, 1.2)] * 3))
def test_gradients_and_hessians_agree_across_methods(expr, p):
    at = dict(zip("xyz", p))
    names = dk.differentiators.common.resolve_wrt(expr, None)
    at = {k: at[k] for k in names}
    if not at:
        return
    ref_g = dk.gradient(expr, at)
    ref_h = dk.hessian(expr, at)
    for method in ("forward", "symbolic", "complex-step", "richardson", "central"):
        g = dk.gradient(expr, at, method=method)
        for k in at:
            assert _close(g[k], ref_g[k], 1e-6 if method == "central" else 1e-9), (method, k)
    np.testing.assert_allclose(
        dk.hessian(expr, at, method="forward"), ref_h, rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(dk.hessian(expr, at, method="symbolic"), ref_h, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dk.hessian(expr, at, method="central"), ref_h, rtol=1e-3, atol=1e-3)


def _exp_sin_derivs(x):
    """|f^(k)| for f = e^x sin x: f^(k) = 2^(k/2) e^x sin(x + k pi/4)."""
    return {k: abs(2 ** (k / 2) * math.exp(x) * math.sin(x + k * math.pi / 4)) for k in range(6)}


def test_roundoff_of_forward_and_central_differences():
    f = dk.exp(X) * dk.sin(X)
    truth = float(dk.reference_derivative(f, "x", {"x": 1.0}))
    d = _exp_sin_derivs(1.0)
    hs = 10.0 ** -np.arange(1, 17)

    def errors(scheme):
        return np.array(
            [
                abs(dk.FiniteDifference(scheme, step=h).derivative(f, "x", {"x": 1.0}) - truth)
                for h in hs
            ]
        )

    fwd, cen = errors("forward-difference"), errors("central")
    assert fwd.min() <= 10 * math.sqrt(EPS) * abs(truth)
    assert cen.min() <= 10 * EPS ** (2 / 3) * abs(truth)
    for scheme in ("forward-difference", "central", "five-point"):
        h_opt, predicted = optimal_step(scheme, d[0], d)
        err = abs(dk.FiniteDifference(scheme, step=h_opt).derivative(f, "x", {"x": 1.0}) - truth)
        assert err <= 10 * predicted, (scheme, h_opt, err, predicted)
    # below 1e-12 round-off dominates: the error grows like eps |f| / h as h shrinks
    fval = d[0]
    for e, h in zip(fwd[hs < 1e-12], hs[hs < 1e-12]):
        assert 0.05 * EPS * fval / h <= e <= 20 * EPS * fval / h, (h, e)
    assert fwd[-1] > 100 * fwd[hs == 1e-12][0] / 10 and cen[-1] > cen[hs == 1e-12][0]
    # the complex step stays exact to round-off at every step
    cs = [
        abs(dk.FiniteDifference("complex-step", step=h).derivative(f, "x", {"x": 1.0}) - truth)
        for h in hs
    ]
    assert max(cs[7:]) <= 4 * EPS * abs(truth)


def test_expression_swell_of_the_logistic_map():
    ln = X
    sym_sizes, rev_sizes = [], []
    for _ in range(8):
        sym_sizes.append(dk.symbolic_derivative(ln, "x").derivative_size.tree)
        rev_sizes.append(dk.graph_size(dk.grad_graph(ln, "x")))
        ln = 4 * ln * (1 - ln)
    growth = [b / a for a, b in zip(sym_sizes[1:], sym_sizes[2:])]
    assert all(g >= 2 for g in growth), sym_sizes
    steps = np.diff(rev_sizes[1:])
    assert steps.max() <= 12 and steps.min() >= 1, rev_sizes


def test_logistic_map_table_entries():
    """Baydin et al. Table 1: l_3 = 16x(1-x)(1-2x)^2, d/dx l_3 = 16(1 - 10x + 24x^2 - 16x^3)."""
    import sympy

    ln = X
    for _ in range(2):
        ln = 4 * ln * (1 - ln)
    r = dk.symbolic_derivative(ln, "x", simplify=True)
    x = sympy.Symbol("x", real=True)
    assert sympy.expand(r.function - 16 * x * (1 - x) * (1 - 2 * x) ** 2) == 0
    assert sympy.expand(r.simplified - 16 * (1 - 10 * x + 24 * x**2 - 16 * x**3)) == 0


def test_symbolic_tiny_mlp_matches_reverse_mode():
    rng = np.random.default_rng(0)
    W1, b1 = dk.variable("W1", (3, 2)), dk.variable("b1", (3,))
    w2 = dk.variable("w2", (3,))
    xin = dk.const(np.array([0.5, -1.0]))
    f = dk.sum(w2 * dk.tanh(W1 @ xin + b1))
    at = {
        "W1": rng.standard_normal((3, 2)),
        "b1": rng.standard_normal(3),
        "w2": rng.standard_normal(3),
    }
    g_sym, g_rev = dk.gradient(f, at, method="symbolic"), dk.gradient(f, at)
    for k in at:
        np.testing.assert_allclose(g_sym[k], g_rev[k], rtol=1e-12)


def test_from_sympy_round_trip_and_mpmath_evaluation():
    r = dk.symbolic_derivative(dk.exp(X) * dk.sin(X), "x")
    back = dk.from_sympy(r.derivative)
    assert dk.evaluate(back, {"x": 1.0}) == pytest.approx(
        dk.derivative(dk.exp(X) * dk.sin(X), "x", {"x": 1.0}), rel=1e-15
    )
    hi = dk.evaluate(back, {"x": 1}, precision=50)
    assert (
        abs(hi - dk.reference_derivative(dk.exp(X) * dk.sin(X), "x", {"x": 1}))
        < mpmath.mpf(10) ** -45
    )
    sym = dk.Symbolic(precision=50).derivative(dk.exp(X) * dk.sin(X), "x", {"x": 1})
    assert abs(sym - hi) < mpmath.mpf(10) ** -45


def test_float32_finite_differences_show_single_precision_roundoff():
    f = dk.exp(X) * dk.sin(X)
    truth = float(dk.reference_derivative(f, "x", {"x": 1.0}))
    at32 = {"x": np.float32(1.0)}
    e32 = abs(float(dk.derivative(f, "x", at32, method="central")) - truth)
    e64 = abs(dk.derivative(f, "x", {"x": 1.0}, method="central") - truth)
    eps32 = float(np.finfo(np.float32).eps)
    assert e32 <= 10 * eps32 ** (2 / 3) * abs(truth)
    assert e32 > 100 * e64


def test_bad_input():
    with pytest.raises(ValueError, match="positive finite"):
        dk.FiniteDifference("central", step=0.0)
    with pytest.raises(ValueError, match="positive finite"):
        dk.FiniteDifference("central", step=-1e-3)
    with pytest.raises(ValueError, match="positive finite"):
        dk.FiniteDifference("central", step=float("nan"))
    for op in (dk.abs, dk.relu, lambda e: dk.maximum(e, 0.5)):
        with pytest.raises(
            ValueError, match="complex-step: op '(abs|relu|maximum)' is not analytic"
        ):
            dk.derivative(op(X) + X, "x", {"x": 1.0}, method="complex-step")
    with pytest.raises(ValueError, match="unknown method 'newton'.*central"):
        dk.derivative(X * X, "x", {"x": 1.0}, method="newton")
    with pytest.raises(ValueError, match="unknown finite-difference scheme"):
        dk.FiniteDifference("sideways")
    v = dk.variable("v", (3,))
    with pytest.raises(ValueError, match="symbolic: op 'max' has no sympy form"):
        dk.gradient(dk.max(v), {"v": np.ones(3)}, method="symbolic")


def test_methods_list():
    assert set(dk.methods()) == {
        "reverse",
        "forward",
        "symbolic",
        "forward-difference",
        "backward-difference",
        "central",
        "five-point",
        "richardson",
        "complex-step",
    }


def test_compare_cli(capsys):
    assert main(["compare", "exp(x)*sin(x)", "--at", "x=1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["method"]: r for r in data["rows"]}
    assert rows["complex-step"]["rel_error"] < 1e-15
    assert rows["forward-difference"]["rel_error"] > 1e-10
    assert rows["symbolic"]["size"] > 0 and rows["reverse"]["size"] > 0
    assert main(["compare", "exp(x)*sin(x)", "--at", "x=1"]) == 0
    assert "richardson" in capsys.readouterr().out
    for argv, msg in (
        [["compare", "exp(x", "--at", "x=1"], "cannot parse"],
        [["compare", "x*y", "--at", "x=1"], "no value for variable 'y'"],
        [["compare", "x", "--at", "x=1", "--methods", "nope"], "unknown method"],
        [["compare", "x", "--at", "x=one"], "not a number"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1

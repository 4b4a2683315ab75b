"""Taylor mode: every op's Taylor rule against nested JVPs to order 4 and, for scalar ops,
against mpmath's Taylor series at 50 digits; ``jet`` against JAX's conventions."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import diffkit as dk
from diffkit.differentiators.taylor import (
    jet,
    jet_graph,
    jet_values,
    nested_jvp_coefficients,
    taylor_rule_of,
)
from diffkit.ir.op import STRUCTURAL, Unsupported
from diffkit.ops._taylor import NESTED_JVP

OPS = dk.registry()
ORDER = 4
DIFFERENTIABLE = [
    name
    for name, op in sorted(OPS.items())
    if op.samples and op.differentiable and not isinstance(op.jvp, Unsupported)
]


def _inputs(op, sample, rng):
    if sample.make is not None:
        values = [np.asarray(v, dtype=float) for v in sample.make(rng)]
    else:
        values = [rng.uniform(sample.low, sample.high, s) for s in sample.shapes]
    nodes, at, series = [], {}, []
    for i, v in enumerate(values):
        if i in sample.const or i in op.nondiff_inputs:
            nodes.append(dk.const(v))
            series.append([nodes[-1]] + [None] * ORDER)
            continue
        var = dk.variable(f"in{i}", np.shape(v))
        nodes.append(var)
        at[var.name] = v
        terms = []
        for k in range(1, ORDER + 1):
            c = dk.variable(f"in{i}_{k}", np.shape(v))
            at[c.name] = rng.standard_normal(np.shape(v)) * 0.3
            terms.append(c)
        series.append([var] + terms)
    return nodes, at, series, values


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_taylor_rule_against_nested_jvps(name):
    """The op's rule and K nested JVPs along the same input polynomial agree to order 4."""
    op = OPS[name]
    sample = op.samples[0]
    rng = np.random.default_rng(5)
    nodes, at, series, _ = _inputs(op, sample, rng)
    node = dk.apply(op, *nodes, **sample.attrs)
    assert node.kind == "op" and node.op is op, f"{name}: the sample folds away at build time"
    got = taylor_rule_of(op)(node, series, ORDER)
    want = nested_jvp_coefficients(node, series, ORDER)
    for k, (g, w) in enumerate(zip(got, want), 1):
        w = np.broadcast_to(dk.evaluate(w, at, strict=False), node.shape)
        g = np.zeros(node.shape) if g is None else dk.evaluate(g, at, strict=False)
        g = np.broadcast_to(g, node.shape)
        scale = max(1.0, float(np.max(np.abs(w))))
        assert np.allclose(g, w, rtol=1e-9, atol=1e-9 * scale), f"{name}: coefficient {k}"


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_taylor_mode_on_values_equals_the_graph(name):
    """``jet_values`` (rules called on arrays, linear ops on each coefficient, compiled
    per-op programs otherwise) gives the values of the graph ``jet_graph`` builds."""
    op = OPS[name]
    sample = op.samples[0]
    rng = np.random.default_rng(7)
    nodes, at, series, _ = _inputs(op, sample, rng)
    node = dk.apply(op, *nodes, **sample.attrs)
    seeds = {s[0]: s[1:] for s in series if s[0].kind == "var"}
    graph = jet_graph([node], seeds, ORDER)[0]
    want = [np.asarray(dk.evaluate(g, at, strict=False)) for g in graph]
    primal_at = {v.name: at[v.name] for v in seeds}
    numeric = {v.name: [at[c.name] for c in terms] for v, terms in seeds.items()}
    (y0,), (got,) = jet_values([node], primal_at, numeric, ORDER)
    np.testing.assert_allclose(y0, dk.evaluate(node, at, strict=False), rtol=1e-12)
    for k, (g, w) in enumerate(zip(got, want), 1):
        g = np.broadcast_to(g, node.shape)
        scale = max(1.0, float(np.max(np.abs(w), initial=0.0)))
        assert np.allclose(g, w, rtol=1e-10, atol=1e-10 * scale), f"{name}: coefficient {k}"


SCALAR = [
    name
    for name in DIFFERENTIABLE
    if callable(OPS[name].mpmath)
    and OPS[name].mpmath is not STRUCTURAL
    and any(
        all(s == () for s in smp.shapes) and not smp.zero_derivative for smp in OPS[name].samples
    )
]


@pytest.mark.parametrize("name", SCALAR)
def test_scalar_taylor_rule_against_mpmath(name):
    """Normalized coefficients of f(x_0 + x_1 t + ... + x_4 t^4) against ``mpmath.taylor``."""
    op = OPS[name]
    sample = next(
        s for s in op.samples if all(sh == () for sh in s.shapes) and not s.zero_derivative
    )
    rng = np.random.default_rng(9)
    nodes, at, series, values = _inputs(op, sample, rng)
    node = dk.apply(op, *nodes, **sample.attrs)
    got = taylor_rule_of(op)(node, series, ORDER)
    with mpmath.workdps(50):
        polys = []
        for i, s in enumerate(series):
            cs = [mpmath.mpf(float(values[i]))]
            for c in s[1:]:
                cs.append(mpmath.mpf(0) if c is None else mpmath.mpf(float(at[c.name])))
            polys.append(cs)

        def path(t):
            args = [sum(c * t**j for j, c in enumerate(cs)) for cs in polys]
            return op.mpmath(*args, **sample.attrs)

        want = mpmath.taylor(path, 0, ORDER)
    for k in range(1, ORDER + 1):
        g = 0.0 if got[k - 1] is None else float(dk.evaluate(got[k - 1], at, strict=False))
        w = float(want[k])
        assert abs(g - w) <= 1e-9 * max(1.0, abs(w)), f"{name}: coefficient {k}: {g} vs {w}"


def test_recurrences_cover_the_standard_functions():
    """The functions the recurrences are written for do not fall back to nested JVPs."""
    standard = "exp log sin cos tanh pow div sqrt erf mul add sub neg sigmoid arctan".split()
    assert not [n for n in standard if OPS[n].rule("taylor") is NESTED_JVP]
    # matmul has no recurrence: its rule is the generic one, marked as such
    assert OPS["matmul"].rule("taylor") is NESTED_JVP


def test_jet_follows_jax_scaling():
    """Series terms are derivatives of the input path; results are derivatives of f."""
    # f(x(t)) = exp(x0 + t): every derivative is e^x0
    y0, ys = jet(np.exp, (0.5,), ([1.0, 0.0, 0.0, 0.0],))
    np.testing.assert_allclose(ys, [math.exp(0.5)] * 4, rtol=1e-14)
    # x(t) = t + t^2 (series [1, 2]): sin(x(t)) = t + t^2 - t^3/6 ...: derivatives 1, 2, -1
    _, ys = jet(np.sin, (0.0,), ([1.0, 2.0, 0.0],))
    np.testing.assert_allclose(ys, [1.0, 2.0, -1.0], atol=1e-14)
    # normalized coefficients: x(t) = t + t^2 the same path, coefficients 1, 1, -1/6
    _, ys = jet(np.sin, (0.0,), ([1.0, 1.0, 0.0],), factorial_scaled=False)
    np.testing.assert_allclose(ys, [1.0, 1.0, -1.0 / 6.0], atol=1e-14)


def test_jet_on_arrays_and_graphs():
    def f(w, x):
        return np.sum(np.tanh(w * x) ** 2)

    w, x = np.array([0.3, -0.2, 0.5]), np.array([1.0, 2.0, -1.0])
    dw = np.array([1.0, 0.5, -0.25])
    _, ys = jet(f, (w, x), ([dw, np.zeros(3)], [np.zeros(3), np.zeros(3)]))
    # truth: directional derivatives along dw by nested forward mode
    wv, xv = dk.variable("w", (3,)), dk.variable("x", (3,))
    g = dk.sum(dk.tanh(wv * xv) ** 2)
    from diffkit.differentiators.forward import jvp_graph

    d1 = jvp_graph([g], {wv: dk.const(dw)})[0]
    d2 = jvp_graph([d1], {wv: dk.const(dw)})[0]
    np.testing.assert_allclose(ys[0], dk.evaluate(d1, {"w": w, "x": x}), rtol=1e-13)
    np.testing.assert_allclose(ys[1], dk.evaluate(d2, {"w": w, "x": x}), rtol=1e-13)


def test_jet_keeps_float32():
    y0, ys = jet(np.sin, (np.float32(0.5),), ([np.float32(1.0), np.float32(0.0)],))
    assert np.asarray(y0).dtype == np.float32 and ys[1].dtype == np.float32


def test_jet_refuses_bad_input():
    x = dk.variable("x")
    with pytest.raises(ValueError, match="same number of terms"):
        jet(dk.exp(x) * dk.variable("y"), {"x": 0.0, "y": 1.0}, {"x": [1.0], "y": [1.0, 0.0]})
    with pytest.raises(ValueError, match="shape"):
        jet(dk.exp(x), {"x": 0.0}, {"x": [np.ones(2)]})
    with pytest.raises(ValueError, match="primals but"):
        jet(np.exp, (0.0, 1.0), ([1.0],))
    with pytest.raises(ValueError, match="not a variable"):
        jet(dk.exp(x), {"x": 0.0}, {"z": [1.0]})

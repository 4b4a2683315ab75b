"""Every registered op, checked from its record: forward vs reverse vs central differences,
second order, mpmath and SymPy derivatives for scalar ops, and the complex step."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import diffkit as dk
from diffkit.ir.op import STRUCTURAL, Unsupported

OPS = dk.registry()
CASES = [(name, i) for name, op in sorted(OPS.items()) for i in range(len(op.samples))]


def _inputs(op, sample, rng):
    if sample.make is not None:
        values = [np.asarray(v, dtype=float) for v in sample.make(rng)]
    else:
        values = [rng.uniform(sample.low, sample.high, s) for s in sample.shapes]
    nodes, at = [], {}
    for i, v in enumerate(values):
        if i in sample.const or i in op.nondiff_inputs:
            nodes.append(dk.const(v))
        else:
            name = f"in{i}"
            nodes.append(dk.variable(name, np.shape(v)))
            at[name] = v
    return nodes, at, values


def test_every_op_has_samples():
    missing = [name for name, op in OPS.items() if not op.samples]
    assert not missing, f"ops without test samples: {missing}"


@pytest.mark.parametrize("name,index", CASES)
def test_op_derivatives(name, index):
    op = OPS[name]
    sample = op.samples[index]
    rng = np.random.default_rng(index + 7)
    nodes, at, _ = _inputs(op, sample, rng)
    out = dk.apply(op, *nodes, **sample.attrs)
    weights = rng.standard_normal(out.shape)
    f = dk.sum(out * dk.const(weights)) if out.shape else out * float(weights)
    assert at, f"{name}: sample {index} has no differentiable input"
    if sample.zero_derivative:
        for k, g in dk.gradient(f, at).items():
            assert np.all(np.asarray(g) == 0), f"{name}: derivative of {k} should be zero"
        return
    order = 2 if sample.second_order else 1
    dk.check_grads(f, at, order=order)
    # forward and reverse gradients agree entry by entry
    g_rev = dk.gradient(f, at, method="reverse")
    g_fwd = dk.gradient(f, at, method="forward")
    for k in at:
        np.testing.assert_allclose(g_rev[k], g_fwd[k], rtol=1e-12, atol=1e-12)


SCALAR = [
    name
    for name, op in sorted(OPS.items())
    if callable(op.mpmath)
    and op.mpmath is not STRUCTURAL
    and not isinstance(op.mpmath, Unsupported)
    and any(all(s == () for s in smp.shapes) for smp in op.samples)
]


@pytest.mark.parametrize("name", SCALAR)
def test_scalar_op_against_mpmath(name):
    """Value and every partial derivative against mpmath at 50 digits."""
    op = OPS[name]
    sample = next(s for s in op.samples if all(sh == () for sh in s.shapes))
    rng = np.random.default_rng(3)
    nodes, at, values = _inputs(op, sample, rng)
    f = dk.apply(op, *nodes, **sample.attrs)
    with mpmath.workdps(50):
        args = [mpmath.mpf(float(v)) for v in values]
        exact = op.mpmath(*args)
        assert abs(float(exact) - dk.evaluate(f, at)) <= 1e-14 * max(1, abs(float(exact)))
        assert abs(dk.evaluate(f, at, precision=50) - exact) < mpmath.mpf(10) ** -45
        grads = dk.gradient(f, at)
        for i, node in enumerate(nodes):
            if node.kind != "var":
                continue
            partial = mpmath.diff(lambda t: op.mpmath(*(args[:i] + [t] + args[i + 1 :])), args[i])
            assert abs(grads[node.name] - float(partial)) <= 1e-12 * max(1, abs(float(partial)))
            # second derivative, from the derivative graph differentiated again
            d1 = dk.grad_graph(f, node.name)
            if d1.kind == "const":
                continue
            d2 = (
                dk.grad_graph(d1, node.name)
                if node.name in {v.name for v in dk.ir.topological_order([d1]) if v.kind == "var"}
                else None
            )
            if d2 is not None:
                second = mpmath.diff(
                    lambda t: op.mpmath(*(args[:i] + [t] + args[i + 1 :])), args[i], 2
                )
                got = dk.evaluate(
                    d2,
                    {
                        k: v
                        for k, v in at.items()
                        if k in {n.name for n in dk.ir.topological_order([d2])}
                    },
                )
                assert abs(got - float(second)) <= 1e-10 * max(1, abs(float(second)))


ANALYTIC = [name for name, op in sorted(OPS.items()) if op.analytic and op.samples]


@pytest.mark.parametrize("name", ANALYTIC)
def test_complex_step_through_op(name):
    """Analytic ops run on complex inputs: Im f(x + ih u)/h equals the directional derivative."""
    op = OPS[name]
    sample = op.samples[0]
    rng = np.random.default_rng(11)
    nodes, at, _ = _inputs(op, sample, rng)
    assert at, f"{name}: the first sample has no differentiable input"
    out = dk.apply(op, *nodes, **sample.attrs)
    f = dk.sum(out) if out.shape else out
    u = {k: rng.standard_normal(np.shape(v)) for k, v in at.items()}
    h = 1e-30
    shifted = {k: np.asarray(v) + 1j * h * u[k] for k, v in at.items()}
    cs = np.imag(dk.evaluate(f, shifted)) / h
    _, tangent = dk.jvp(f, at, u)
    assert abs(cs - tangent) <= 1e-12 * max(1.0, abs(tangent))

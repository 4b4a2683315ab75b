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


# ---- what the registry promises: every front door and rule kind reads it ----------------

from diffkit.differentiators.batching import NotBatchable, batch_graph  # noqa: E402
from diffkit.ir.op import front_index, functions  # noqa: E402

FUNCS = functions()
FCASES = [(name, i) for name, fn in sorted(FUNCS.items()) for i in range(len(fn.samples))]


def test_every_function_has_samples():
    missing = [name for name, fn in FUNCS.items() if not fn.samples]
    assert not missing, f"functions without test samples: {missing}"


def test_every_scalar_op_parses_and_every_numpy_function_dispatches():
    index = front_index()
    for name, op in OPS.items():
        if op.kind == "elementwise":
            assert index["names"].get(name) is op, f"{name}: not in the expression language"
        for fn in op.numpy:
            assert index["numpy"][fn] is op, f"{name}: numpy's {fn} does not reach it"
    for name, fn in FUNCS.items():
        for f in fn.numpy:
            assert index["numpy"][f] is fn, f"{name}: numpy's {f} does not reach it"


def _draw(sample, rng):
    if sample.make is not None:
        return [np.asarray(v, dtype=float) for v in sample.make(rng)]
    return [rng.uniform(sample.low, sample.high, s) for s in sample.shapes]


def _numpy_name(fn) -> str:
    return getattr(fn, "__name__", repr(fn))


VALUE_CASES = [
    (name, i, k)
    for name, op in sorted(OPS.items())
    for i, smp in enumerate(op.samples)
    for k, fn in enumerate(op.numpy)
    if not smp.attrs and not isinstance(fn, tuple)
]


@pytest.mark.parametrize("name,index,k", VALUE_CASES)
def test_numpy_function_on_nodes_matches_numpy(name, index, k):
    """numpy's function called on nodes builds the op, whose value is numpy's."""
    op = OPS[name]
    fn = op.numpy[k]
    values = _draw(op.samples[index], np.random.default_rng(index))
    nodes = [dk.variable(f"in{i}", np.shape(v)) for i, v in enumerate(values)]
    at = {f"in{i}": v for i, v in enumerate(values)}
    with np.errstate(all="ignore"):
        expected = fn(*values)
        got = dk.evaluate(fn(*nodes), at)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13, equal_nan=True)


@pytest.mark.parametrize("name,index", FCASES)
def test_function_values_and_derivatives(name, index):
    """A composite: its value against its numpy function, its derivatives against
    central differences (to second order unless the sample says not)."""
    fn = FUNCS[name]
    sample = fn.samples[index]
    rng = np.random.default_rng(index + 5)
    values = _draw(sample, rng)
    nodes, at = [], {}
    for i, v in enumerate(values):
        if i in sample.const:
            nodes.append(dk.const(v))
        else:
            nodes.append(dk.variable(f"in{i}", np.shape(v)))
            at[f"in{i}"] = v
    args = [nodes] if sample.pack else nodes
    out = fn.build(*args, **sample.attrs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    plain = [f for f in fn.numpy if not isinstance(f, tuple)]
    if plain:
        with np.errstate(all="ignore"):
            expected = plain[0](*([values] if sample.pack else values), **sample.attrs)
        expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
        for o, e in zip(outs, expected, strict=True):
            np.testing.assert_allclose(dk.evaluate(o, at), e, rtol=1e-12, atol=1e-12)
    if not at or sample.zero_derivative:
        return
    total = None
    for o in outs:
        w = rng.standard_normal(o.shape)
        term = dk.sum(o * dk.const(w)) if o.shape else o * float(w)
        total = term if total is None else total + term
    dk.check_grads(total, at, order=2 if sample.second_order else 1)


def test_every_op_batches_or_says_why_not():
    """A batching rule, derived from the op's kind or written in its record, or an explicit
    ``Unsupported("reason")`` there: no op is left out by forgetting it."""
    silent = [name for name, op in OPS.items() if op.rule("batch") is None]
    assert not silent, f"ops with neither a batching rule nor a reason: {silent}"


BATCH_CASES = [
    (name, i)
    for name, op in sorted(OPS.items())
    if op.rule("batch")
    for i, smp in enumerate(op.samples)
    if any(k not in smp.const and k not in op.nondiff_inputs for k in range(len(smp.shapes)))
]


@pytest.mark.parametrize("name,index", BATCH_CASES)
def test_batched_op_matches_a_loop(name, index):
    """An op's batching rule computes B cases at once exactly as B separate evaluations."""
    op = OPS[name]
    sample = op.samples[index]
    rng = np.random.default_rng(index + 13)
    cases = [_draw(sample, rng) for _ in range(3)]
    nodes, batched, at_b = [], {}, {}
    for i, v in enumerate(cases[0]):
        if i in sample.const or i in op.nondiff_inputs:
            nodes.append(dk.const(v))
            continue
        var = dk.variable(f"in{i}", np.shape(v))
        nodes.append(var)
        bvar = dk.variable(f"in{i}_batched", (3,) + np.shape(v))
        batched[var] = bvar
        at_b[bvar.name] = np.stack([c[i] for c in cases])
    out = dk.apply(op, *nodes, **sample.attrs)
    try:
        ((bout, is_batched),) = batch_graph([out], batched, 3)
    except NotBatchable as err:  # a rule may decline some attributes, saying so
        assert name in str(err)
        return
    assert is_batched
    with np.errstate(all="ignore"):
        got = dk.evaluate(bout, at_b)
        for k, case in enumerate(cases):
            at = {v.name: case[int(v.name[2:])] for v in batched}
            np.testing.assert_allclose(got[k], dk.evaluate(out, at), rtol=1e-13, atol=1e-13)


def _empty_variant(sample):
    """The sample's shapes with a leading axis of length 0 (every input whose leading axis
    matches the first one's), or None where no input has an axis."""
    shapes = [tuple(s) for s in sample.shapes]
    if not shapes or not shapes[0]:
        return None
    lead = shapes[0][0]
    return [(0,) + s[1:] if s and s[0] == lead else s for s in shapes]


EMPTY_CASES = [
    (name, i)
    for name, op in sorted(OPS.items())
    for i, smp in enumerate(op.samples)
    if smp.make is None and _empty_variant(smp) is not None
]


@pytest.mark.parametrize("name,index", EMPTY_CASES)
def test_zero_size_inputs(name, index):
    """Wherever the shape rule allows an empty input, the op runs forward and reverse
    with the shapes numpy gives (JAX and PyTorch return empty results, not errors)."""
    op = OPS[name]
    sample = op.samples[index]
    shapes = _empty_variant(sample)
    nodes, at = [], {}
    for i, s in enumerate(shapes):
        value = np.ones(s)
        if i in sample.const or i in op.nondiff_inputs:
            nodes.append(dk.const(value))
        else:
            nodes.append(dk.variable(f"in{i}", s))
            at[f"in{i}"] = value
    try:
        out = dk.apply(op, *nodes, **sample.attrs)
    except (dk.ShapeError, ValueError, IndexError):
        return  # the shape rule refuses an empty input here, with a message
    value = dk.evaluate(out, at)
    assert np.shape(value) == out.shape
    if not at or not op.differentiable:
        return
    f = dk.sum(out)
    grads = dk.gradient(f, at)
    for k, v in at.items():
        assert np.shape(grads[k]) == np.shape(v), k

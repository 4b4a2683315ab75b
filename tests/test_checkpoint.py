"""Checkpointing: gradients with every policy and schedule bit-identical to unchecked
ones (registry ops, LeNet-5, a deep MLP), nested regions, the residuals the backward pass
keeps, and recomputation counts of the revolve schedule against beta(s, t) theory."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

import diffkit as dk
from diffkit import nn
from diffkit.differentiators.checkpoint import (
    checkpoint,
    checkpoint_chain,
    checkpoint_name,
    revolve_recomputations,
    saved_residuals,
)
from diffkit.ir.op import registry
from diffkit.nn.checkpoint import checkpoint_sequential

POLICIES = [None, "nothing", "everything", "dots", ["h"], lambda node: node.ndim == 2]


def _gradients(loss, names, at):
    grads = dk.grad_graph(loss, names)
    return dict(zip(names, dk.compile([grads[n] for n in names])(at)))


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.asarray(a[k]).dtype == np.asarray(b[k]).dtype
        np.testing.assert_array_equal(a[k], b[k])  # bit for bit (NaN == NaN)


def _mlp(x, weights, region=None):
    h = x
    for i, w in enumerate(weights):

        def layer(h, w=w, last=i == len(weights) - 1):
            z = checkpoint_name(h @ w, "h")
            return z if last else dk.tanh(z)

        h = (region(layer) if region else layer)(h)
    return dk.sum(h**2)


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: str(p)[:12])
def test_every_policy_gives_bit_identical_gradients_on_a_deep_mlp(policy):
    rng = np.random.default_rng(0)
    x = dk.variable("x", (8, 16))
    ws = [dk.variable(f"w{i}", (16, 16)) for i in range(12)]
    at = {"x": rng.standard_normal((8, 16))}
    at.update({f"w{i}": rng.standard_normal((16, 16)) / 4 for i in range(12)})
    names = ["x"] + [f"w{i}" for i in range(12)]
    plain = _gradients(_mlp(x, ws), names, at)
    checked = _gradients(_mlp(x, ws, lambda f: checkpoint(f, policy)), names, at)
    _same(plain, checked)
    at32 = {k: v.astype(np.float32) for k, v in at.items()}
    _same(
        _gradients(_mlp(x, ws), names, at32),
        _gradients(_mlp(x, ws, lambda f: checkpoint(f, policy)), names, at32),
    )


@pytest.mark.parametrize("schedule", ["none", "sqrt", 1, 3, 7, "revolve"])
def test_chain_schedules_give_bit_identical_gradients(schedule):
    x = dk.variable("x", (5,))
    w = dk.variable("w", (5, 5))
    at = {"x": np.linspace(-1, 1, 5), "w": np.random.default_rng(1).standard_normal((5, 5)) / 3}

    def step(h):
        return dk.tanh(w @ h) + 0.5 * h

    plain = _gradients(dk.sum(checkpoint_chain(step, x, 30, "none")), ["x", "w"], at)
    y = checkpoint_chain(step, x, 30, schedule, snapshots=3)
    _same(plain, _gradients(dk.sum(y), ["x", "w"], at))


def test_nested_checkpoints_give_bit_identical_gradients_and_recompute_twice():
    x = dk.variable("x", (4,))
    at = {"x": np.array([0.1, -0.3, 0.7, 2.0])}
    inner = checkpoint(lambda h: dk.tanh(dk.tanh(h)))
    outer = checkpoint(lambda h: dk.tanh(inner(dk.tanh(h))))
    nested = dk.sum(outer(outer(x)))
    plain = dk.sum(dk.tanh(dk.tanh(dk.tanh(dk.tanh(dk.tanh(dk.tanh(dk.tanh(dk.tanh(x)))))))))
    _same(_gradients(plain, ["x"], at), _gradients(nested, ["x"], at))
    program = dk.compile([nested, dk.grad_graph(nested, "x")])
    tanhs = sum(n.op is not None and n.op.name == "tanh" for n in program.order)
    # 8 forward; each outer region recomputes its 4, and each inner region its 2 again
    # from the outer region's recomputed input
    assert tanhs == 8 + 2 * (4 + 2)


@lru_cache(None)
def _fewest(n, s):
    """Revolve's recursion by brute force: advance m, reverse the rest with s-1."""
    if n == 1:
        return 0
    if s == 0:
        return 10**9
    return min(m + _fewest(n - m, s - 1) + _fewest(m, s) for m in range(1, n))


def test_revolve_closed_form_is_the_optimum_of_its_recursion():
    for n in range(1, 60):
        for s in range(1, 6):
            assert revolve_recomputations(n, s) == _fewest(n, s), (n, s)
    # at n = beta(s, t) every step runs t times besides its first: t n - beta(s+1, t-1)
    from math import comb

    for s, t in [(1, 3), (3, 2), (10, 2)]:
        n = comb(s + t, s)
        assert revolve_recomputations(n, s) == t * n - comb(s + 1 + t - 1, s + 1)


@pytest.mark.parametrize("n,s", [(20, 2), (64, 3), (1024, 10)])
def test_revolve_schedule_recomputes_exactly_the_optimum(n, s):
    w = dk.variable("w", (3, 3))
    y = checkpoint_chain(lambda h: dk.tanh(w @ h), dk.variable("v", (3,)), n, "revolve", s)
    grads = dk.grad_graph(dk.sum(y), ["v", "w"])
    program = dk.compile([grads["v"], grads["w"]])
    tanhs = sum(node.op is not None and node.op.name == "tanh" for node in program.order)
    assert tanhs - n == revolve_recomputations(n, s)


def test_registry_ops_in_a_checkpoint_give_bit_identical_gradients():
    rng = np.random.default_rng(2)
    checked = 0
    for op in registry().values():
        if not op.differentiable or not op.samples:
            continue
        sample = op.samples[0]
        if sample.make is not None or sample.pack:
            continue
        names = [f"a{i}" for i in range(len(sample.shapes))]
        xs = [dk.variable(n, s) for n, s in zip(names, sample.shapes)]
        at = {n: rng.uniform(sample.low, sample.high, s) for n, s in zip(names, sample.shapes)}
        wrt = [
            n for i, n in enumerate(names) if i not in sample.const and i not in op.nondiff_inputs
        ]
        try:
            out = dk.apply(op, *xs, **sample.attrs)
        except Exception:  # noqa: BLE001 - samples that need their own inputs
            continue
        if not wrt or out.dtype_kind if hasattr(out, "dtype_kind") else False:
            continue

        def f(*args):
            return dk.sin(dk.apply(op, *args, **sample.attrs))

        try:
            plain = _gradients(dk.sum(f(*xs) ** 2), wrt, at)
        except Exception:  # noqa: BLE001 - integer-valued or complex outputs
            continue
        _same(plain, _gradients(dk.sum(checkpoint(f)(*xs) ** 2), wrt, at))
        checked += 1
    assert checked > 100


def test_lenet5_with_checkpointed_segments_gives_bit_identical_gradients():
    from diffkit.nn.layers import flatten

    m = nn.LeNet5()
    r = m.relu
    stages = [
        lambda x: m.pool1(r(m.bn1(m.conv1(x)))),
        lambda x: flatten(m.pool2(r(m.bn2(m.conv2(x))))),
        lambda x: r(m.bn3(m.fc1(x))),
        lambda x: r(m.bn4(m.fc2(x))),
        m.fc3,
    ]
    rng = np.random.default_rng(3)
    x = dk.variable("input", (2, 1, 32, 32))
    at = {**m.inputs(), "input": rng.standard_normal((2, 1, 32, 32)).astype(np.float32)}
    names = [n for n, _ in m.named_parameters()]
    plain = _gradients(dk.sum(m(x) ** 2), names, at)
    for segments in (1, 2, 5):
        for policy in (None, "dots"):
            checked = dk.sum(checkpoint_sequential(stages, segments, x, policy) ** 2)
            _same(plain, _gradients(checked, names, at))


def test_saved_residuals_lists_what_the_backward_pass_keeps():
    def f(x):
        return np.sum(np.tanh(np.tanh(x)))

    plain = saved_residuals(f, np.ones(3))
    assert [r.what for r in plain] == ["tanh", "tanh"]  # tanh's VJP reads its output
    assert [r.what for r in saved_residuals(checkpoint(f), np.ones(3))] == ["argument arg0"]
    assert saved_residuals(checkpoint(f), np.ones(3, np.float32))[0].nbytes == 12


def test_bad_input_gets_one_line_errors():
    with pytest.raises(ValueError, match="unknown policy"):
        checkpoint(np.sin, policy="some")
    with pytest.raises(TypeError, match="callable"):
        checkpoint(3)
    with pytest.raises(ValueError, match="snapshot"):
        revolve_recomputations(5, 0)
    with pytest.raises(ValueError, match="segments"):
        checkpoint_chain(dk.sin, dk.variable("x"), 3, 5)


def _lenet5_sequential(checkpoint=None):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
        checkpoint=checkpoint,
    )


def _mlp_sequential(checkpoint=None, depth=10):
    layers = [m for _ in range(depth) for m in (nn.Linear(16, 16), nn.Tanh())]
    return nn.Sequential(*layers, nn.Linear(16, 3), checkpoint=checkpoint)


@pytest.mark.parametrize(
    "build,shape", [(_lenet5_sequential, (3, 1, 28, 28)), (_mlp_sequential, (5, 16))]
)
def test_sequential_with_checkpoint_segments_gives_bit_identical_gradients(build, shape):
    from diffkit.nn.module import default_rng

    default_rng().bit_generator.state = np.random.default_rng(7).bit_generator.state
    plain = build()
    rng = np.random.default_rng(4)
    x = dk.variable("input", shape)
    at = {**plain.inputs(), "input": rng.standard_normal(shape).astype(np.float32)}
    names = [n for n, _ in plain.named_parameters()]
    expected = _gradients(dk.sum(plain(x) ** 2), names, at)
    for segments in (1, 2, 3, len(plain)):
        checked = build(checkpoint=segments)
        checked.load_state_dict(plain.state_dict())
        assert list(checked.state_dict()) == list(plain.state_dict())
        assert checked.checkpoint_segments == segments
        loss = dk.sum(checked(x) ** 2)
        _same(expected, _gradients(loss, names, at))
        assert expected["0.weight"].dtype == np.float32
        # the recomputation is real: the checked program runs more ops
        if segments > 1:
            plain_program = dk.compile(list(dk.grad_graph(dk.sum(plain(x) ** 2), names).values()))
            checked_program = dk.compile(list(dk.grad_graph(loss, names).values()))
            assert len(checked_program.order) > len(plain_program.order)


def test_with_checkpoints_sets_and_clears_segments_on_models_with_a_chain():
    from diffkit.nn.checkpoint import with_checkpoints

    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)

        def layers(self):
            return [self.a, self.b, self.c]

        def forward(self, x):
            if getattr(self, "checkpoint_segments", None):
                return checkpoint_sequential(self.layers(), self.checkpoint_segments, x)
            for layer in self.layers():
                x = layer(x)
            return x

    model = Chain()
    keys = list(model.state_dict())
    x = dk.variable("input", (3, 4))
    at = {**model.inputs(), "input": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)}
    names = [n for n, _ in model.named_parameters()]
    plain = _gradients(dk.sum(model(x) ** 2), names, at)
    assert with_checkpoints(model, 3) is model and model.checkpoint_segments == 3
    assert list(model.state_dict()) == keys
    _same(plain, _gradients(dk.sum(model(x) ** 2), names, at))
    assert with_checkpoints(model, None).checkpoint_segments is None
    with pytest.raises(ValueError, match="segments must be 1 to 3"):
        with_checkpoints(model, 4)
    with pytest.raises(ValueError, match="no chain of layers"):
        with_checkpoints(nn.Linear(2, 2), 1)
    with pytest.raises(ValueError, match="segments must be 1 to 2"):
        nn.Sequential(nn.Tanh(), nn.Tanh(), checkpoint=3)


def test_dots_policy_reads_the_records_of_contractions_and_convolutions():
    from diffkit.ops.checkpoint import is_dot

    marked = sorted(name for name, op in registry().items() if is_dot(op))
    assert {"matmul", "einsum", "conv2d_direct"} <= set(marked)
    assert not is_dot(registry()["tanh"]) and not is_dot(registry()["add"])
    w = np.ones((3, 3)) / 3

    def f(x):
        return np.sum(np.tanh(np.tanh(x @ w) @ w))

    kept = [r.what for r in saved_residuals(checkpoint(f, "dots"), np.ones((2, 3)))]
    assert kept.count("matmul") == 2 and "tanh" not in kept
    assert [r.what for r in saved_residuals(checkpoint(f), np.ones((2, 3)))] == ["argument arg0"]


def _evaluations_per_step(n, s):
    """How many times the compiled gradient program of a revolve chain runs each step."""
    consts = []

    def step(h):
        consts.append(dk.const(0.001 * (len(consts) + 1)))  # one constant per step
        return dk.tanh(h + consts[-1])

    y = checkpoint_chain(step, dk.variable("x", (2,)), n, "revolve", snapshots=s)
    program = dk.compile(dk.grad_graph(dk.sum(y), "x"))
    index = {id(c): i for i, c in enumerate(consts)}
    counts = [0] * n
    for node in program.order:
        if node.op is not None and node.op.name == "add":
            for inp in node.inputs:
                if id(inp) in index:
                    counts[index[id(inp)]] += 1
    return counts


@pytest.mark.parametrize("s,t", [(1, 3), (2, 2), (3, 2), (2, 3), (4, 2)])
def test_revolve_reverses_beta_steps_with_t_sweeps_and_no_more(s, t):
    # beta(s, t) = C(s+t, s) steps reverse with s snapshots and each step run at most
    # t + 1 times (its first run and t recomputations); one step more needs a sweep more
    from math import comb

    n = comb(s + t, s)
    counts = _evaluations_per_step(n, s)
    assert max(counts) == t + 1 and min(counts) == 1
    assert sum(counts) - n == t * n - comb(s + 1 + t - 1, s + 1)
    assert max(_evaluations_per_step(n + 1, s)) == t + 2


def test_revolve_counts_equal_those_of_the_checkpoint_schedules_package():
    pytest.importorskip(
        "checkpoint_schedules", reason="checkpoint_schedules is not installed (extra: schedules)"
    )
    from diffkit.differentiators.checkpoint import package_revolve_recomputations

    grid = [(n, s) for n in range(2, 41) for s in range(1, 7) if s < n]
    grid += [(100, 3), (257, 5)]
    for n, s in grid:
        assert revolve_recomputations(n, s) == package_revolve_recomputations(n, s), (n, s)

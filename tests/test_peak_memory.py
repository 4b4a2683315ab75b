"""A program's predicted peak bytes (from its schedule, shapes and dtypes) against the
peak measured while it runs, and what checkpointing does to it."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.differentiators.checkpoint import checkpoint_chain
from diffkit.differentiators.reverse import vjp_graph
from diffkit.memory import held_for_backward, measured_peak

L, B, W = 16, 512, 64
ACT = B * W * 4  # bytes of one float32 activation


def _chain_program(schedule):
    x = dk.variable("x", (B, W))
    ws = iter([dk.variable(f"w{i}", (W, W)) for i in range(L)])
    y = checkpoint_chain(lambda h: dk.tanh(h @ next(ws)), x, L, schedule, snapshots=3)
    loss = dk.sum(y**2)
    grads = dk.grad_graph(loss, [f"w{i}" for i in range(L)])
    return dk.compile([loss] + list(grads.values()))


def _at(dtype=np.float32):
    rng = np.random.default_rng(0)
    at = {"x": rng.standard_normal((B, W)).astype(dtype)}
    at.update({f"w{i}": (rng.standard_normal((W, W)) / 16).astype(dtype) for i in range(L)})
    return at


@pytest.mark.parametrize("schedule", ["none", "sqrt", 2, "revolve"])
def test_predicted_peak_matches_the_measured_peak(schedule):
    program, at = _chain_program(schedule), _at()
    program(at)  # the first run converts the constants it keeps between runs
    measured, _ = measured_peak(program, at)
    predicted = program.memory(np.float32).peak_bytes
    # what is not predicted: Python's own objects of the run and 0-d values (kilobytes)
    assert predicted <= measured <= predicted + 64 * 1024


def test_checkpointing_lowers_the_peak_and_the_live_values_say_why():
    peaks = {s: _chain_program(s).memory(np.float32) for s in ["none", "sqrt", "revolve"]}
    assert peaks["none"].peak_bytes >= L * ACT  # every activation kept for the backward pass
    assert peaks["sqrt"].peak_bytes <= peaks["none"].peak_bytes * 0.6
    assert peaks["revolve"].peak_bytes <= (3 + 5) * ACT  # 3 snapshots and one step's values
    big = [n for n in peaks["none"].live if n.shape == (B, W)]
    assert len(big) >= L
    assert "total" in peaks["none"].table()


def test_small_programs_by_hand():
    x = dk.variable("x", (1000,))
    p = dk.compile(dk.sum(dk.sin(x) * dk.cos(x)))
    assert p.peak_bytes == 3 * 8000  # sin, cos and their product
    assert p.memory(np.float32).peak_bytes == 3 * 4000
    views = dk.compile(dk.sum(dk.reshape(dk.sin(x), (10, 100)).T))
    assert views.peak_bytes == 8000 + 8  # reshape and transpose are views of sin's buffer
    np.testing.assert_array_equal(views.memory().timeline, [8000, 8000, 8000, 8008])


def _euler_chain(schedule, n=64, size=16_384, snapshots=4):
    x, a = dk.variable("x", (size,)), dk.variable("a", (size,))
    y = checkpoint_chain(lambda h: h + 0.01 * dk.tanh(a * h), x, n, schedule, snapshots)
    seed = dk.variable("seed", ())
    grads = vjp_graph([dk.sum(y * y)], [seed], [x, a])
    rng = np.random.default_rng(5)
    at = {
        "x": rng.standard_normal(size).astype(np.float32),
        "a": rng.uniform(0.5, 1.5, size).astype(np.float32),
        "seed": np.float32(1),
    }
    return dk.compile(grads), at, seed


def test_a_shared_parameter_gradient_is_summed_as_the_backward_pass_goes():
    # the gradient of a, shared by every step, sums one contribution per step; the
    # schedule adds each as soon as it exists, so revolve's memory stays bounded
    state = 16_384 * 4
    for schedule in ["none", "revolve"]:
        program, at, seed = _euler_chain(schedule)
        plan = program.memory(np.float32)
        if schedule == "none":  # two values of each step, kept for the backward pass
            assert 2 * 64 * state <= plan.peak_bytes <= (2 * 64 + 4) * state
        else:
            # 3 snapshots besides the input; the step being advanced (h, a h, tanh), the
            # cotangent, its scaled copy and the running gradient of a
            assert plan.peak_bytes <= (3 + 6) * state
        held = held_for_backward(plan, [seed])
        assert held.max() <= plan.intermediate_timeline.max()
        program(at)
        measured, _ = measured_peak(program, at)
        assert plan.peak_bytes <= measured <= plan.peak_bytes + 64 * 1024


def test_timelines_of_returned_and_held_values_by_hand():
    x = dk.variable("x", (1000,))
    seed = dk.variable("seed", ())
    s = dk.sin(x)
    (g,) = vjp_graph([dk.sum(s * s)], [seed], [x])
    plan = dk.compile([g]).memory()
    # the only forward value: sin, read by the backward pass (the loss is not returned,
    # so sin * sin and its sum are never computed)
    held = held_for_backward(plan, [seed])
    assert held.max() == 8000
    assert [n.op.name for n in plan.ops if n.op.name in ("sin", "sum")] == ["sin"]
    assert plan.returned[-1] == 8000  # the gradient
    np.testing.assert_array_equal(plan.intermediate_timeline, plan.timeline - plan.returned)
    assert plan.timeline_of(lambda node: True).tolist() == plan.timeline.tolist()

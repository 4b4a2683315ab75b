"""A program's predicted peak bytes (from its schedule, shapes and dtypes) against the
peak measured while it runs, and what checkpointing does to it."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.differentiators.checkpoint import checkpoint_chain
from diffkit.memory import measured_peak

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

"""Memory against time in reverse mode: a deep MLP's training step and a long chain, with
and without checkpointing, beside PyTorch.

Deep MLP: L = 64 hidden layers of width 512 (tanh, no bias), batch 128, float32; the
gradient of a squared loss with respect to every weight. Unchecked, in k = 4 segments and
in sqrt(L) = 8 segments (``checkpoint_sequential``: every segment but the last
checkpointed, as PyTorch's), and PyTorch's eager step with
``torch.utils.checkpoint.checkpoint_sequential`` at the same segment counts. Memory, in
units of one layer's activation (128 x 512 x 4 bytes = 256 KiB):

- diffkit, predicted from the schedule: the intermediates at their peak (every value the
  step holds that it does not return: forward values, cotangents, recomputed values), and
  of them the forward values the backward pass holds (``held_for_backward``);
- diffkit, measured (``tracemalloc``) on the same step with each gradient reduced to its
  squared norm as soon as it exists, so that the 64 MiB of returned weight gradients do
  not hide the activations; and on the step as it is (gradients returned);
- PyTorch: the bytes its autograd holds for the backward pass (saved-tensor hooks, each
  storage once, parameters excluded): the counterpart of diffkit's held values;
- both: the resident-set high-water mark that one step adds, in a fresh process per
  configuration (every allocation: activations, gradients, allocator slack).

Chain: 1,024 steps of an explicit Euler step h <- h + dt tanh(a * h) on 65,536 float32
values, reversed with revolve's binomial schedule and 10 snapshots: the steps the program
recomputes against revolve's optimum (and against the ``checkpoint_schedules`` package's
Revolve where it is installed), and the values held at the peak in states (256 KiB).

Times: each side on one thread (numpy's BLAS and PyTorch's intra-op pool), the sides
alternating within each round; printed are medians over rounds with their spread (lowest
to highest) and the per-round ratios to diffkit's unchecked step.

    python benchmarks/memory.py [rounds] [--no-rss]
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit.differentiators.checkpoint import (
    checkpoint_chain,
    package_revolve_recomputations,
    revolve_recomputations,
)
from diffkit.differentiators.reverse import vjp_graph
from diffkit.memory import SavedTensorMeter, held_for_backward, measured_peak, step_rss
from diffkit.nn.checkpoint import checkpoint_sequential

L, WIDTH, BATCH = 64, 512, 128
ACT = BATCH * WIDTH * 4
SEGMENTS = (None, 4, int(math.isqrt(L)))
CHAIN, SNAPSHOTS, STATE = 1024, 10, 65_536


def diffkit_mlp(segments: int | None, consume: bool = False):
    """The step's program, its inputs and the cotangent seed; with ``consume`` each
    gradient is reduced to its squared norm (the program returns scalars only)."""
    x = dk.variable("x", (BATCH, WIDTH))
    ws = [dk.variable(f"w{i}", (WIDTH, WIDTH)) for i in range(L)]
    layers = [lambda h, w=w: dk.tanh(h @ w) for w in ws]
    if segments:
        y = checkpoint_sequential(layers, segments, x)
    else:
        y = x
        for layer in layers:
            y = layer(y)
    loss = dk.sum(y**2)
    seed = dk.variable("seed", ())
    grads = vjp_graph([loss], [seed], ws)
    outputs = [loss] + ([dk.sum(g * g) for g in grads] if consume else grads)
    rng = np.random.default_rng(0)
    at = {"x": rng.standard_normal((BATCH, WIDTH)).astype(np.float32), "seed": np.float32(1)}
    for i in range(L):
        at[f"w{i}"] = (rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    return dk.compile(outputs), at, seed


def torch_mlp(segments: int | None):
    """PyTorch's step on the same MLP (the study's), and its parameters; None without
    PyTorch."""
    return _study().torch_mlp(segments, {"L": L, "width": WIDTH, "mlp_batch": BATCH})


def _study():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "studies" / "memory.py"
    spec = importlib.util.spec_from_file_location("memory_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rss_setup(side: str, segments: int):
    """For :func:`diffkit.memory.step_rss`: one step of ``side`` (``"diffkit"`` or
    ``"torch"``) with ``segments`` (0: unchecked)."""
    if side == "torch":
        import torch

        torch.set_num_threads(1)
        step, params = torch_mlp(segments or None)

        def run():
            step()

        # before the measured step, the gradients of the warm one are dropped, as
        # diffkit's returned ones are: both steps then allocate theirs anew
        run.reset = lambda: [setattr(p, "grad", None) for p in params]
        return run
    program, at, _ = diffkit_mlp(segments or None)
    return lambda: program(at)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _spread(ts) -> str:
    ts = np.asarray(ts)
    return f"{np.median(ts):.3g} ({ts.min():.3g} to {ts.max():.3g})"


def mlp(rounds: int, rss: bool) -> None:
    print(
        f"Deep MLP: L = {L}, width {WIDTH}, batch {BATCH}, float32; 1 activation = "
        f"{ACT // 1024} KiB"
    )
    print(
        f"{'side':26s} {'inter. pred':>11s} {'held pred':>9s} {'inter. meas':>11s} "
        f"{'step pred MiB':>13s} {'step meas MiB':>13s} {'torch held':>10s} "
        f"{'RSS MiB':>8s}"
    )
    runs = {}
    for segments in SEGMENTS:
        name = f"diffkit {segments or 'unchecked'}" + (" segments" if segments else "")
        program, at, seed = diffkit_mlp(segments)
        consuming, _, cseed = diffkit_mlp(segments, consume=True)
        program(at)
        consuming(at)
        plan, cplan = program.memory(np.float32), consuming.memory(np.float32)
        held = held_for_backward(plan, [seed]).max()
        step_peak, _ = measured_peak(program, at)
        act_peak, _ = measured_peak(consuming, at)
        size = rss and step_rss(__file__, "rss_setup", "diffkit", segments or 0)
        print(
            f"{name:26s} {plan.intermediate_peak_bytes / ACT:11.1f} {held / ACT:9.1f} "
            f"{act_peak / ACT:11.1f} {plan.peak_bytes / 2**20:13.1f} "
            f"{step_peak / 2**20:13.1f} {'':>10s} "
            f"{size / 2**20 if size else float('nan'):8.1f}"
        )
        # the consuming step's own prediction, for the measured column
        print(f"{'  (gradients consumed)':26s} {cplan.intermediate_peak_bytes / ACT:11.1f}")
        runs[name] = lambda p=program, a=at: p(a)
    torch_ok = torch_mlp(None) is not None
    if torch_ok:
        for segments in SEGMENTS:
            name = f"torch {segments or 'unchecked'}" + (" segments" if segments else "")
            run, params = torch_mlp(segments)
            run()
            with SavedTensorMeter(exclude=params) as meter:
                run()
            size = rss and step_rss(__file__, "rss_setup", "torch", segments or 0)
            print(
                f"{name:26s} {'':>11s} {'':>9s} {'':>11s} {'':>13s} {'':>13s} "
                f"{meter.peak / ACT:10.1f} {size / 2**20 if size else float('nan'):8.1f}"
            )
            runs[name] = run
    times = {name: [] for name in runs}
    with _study()._one_thread():  # both sides on one thread (a shared machine)
        for _ in range(rounds):
            for name, fn in runs.items():
                times[name].append(_timed(fn))
    base = np.array(times["diffkit unchecked"])
    print("\nStep times, ms: median (lowest to highest); ratio to diffkit unchecked per round")
    for name, ts in times.items():
        ts = np.array(ts)
        print(f"{name:26s} {_spread(1e3 * ts):>28s}   ratio {_spread(ts / base)}")
    if torch_ok:
        for segments in SEGMENTS[1:]:
            ours = np.array(times[f"diffkit {segments} segments"])
            theirs = np.array(times[f"torch {segments} segments"])
            print(f"diffkit / torch at {segments} segments, per round: {_spread(ours / theirs)}")


def _euler(a):
    return lambda h: h + 0.01 * dk.tanh(a * h)


def chain_program(schedule, n=CHAIN, snapshots=SNAPSHOTS):
    x, a = dk.variable("x", (STATE,)), dk.variable("a", (STATE,))
    y = checkpoint_chain(_euler(a), x, n, schedule, snapshots=snapshots)
    loss = dk.sum(y * y)
    seed = dk.variable("seed", ())
    grads = vjp_graph([loss], [seed], [x, a])
    rng = np.random.default_rng(1)
    at = {
        "x": rng.standard_normal(STATE).astype(np.float32),
        "a": rng.uniform(0.5, 1.5, STATE).astype(np.float32),
        "seed": np.float32(1),
    }
    return dk.compile([loss] + grads), at, seed


def chain(rounds: int) -> None:
    state = STATE * 4
    print(
        f"\nChain: {CHAIN} Euler steps on {STATE} float32 values ({state // 1024} KiB), "
        f"revolve with {SNAPSHOTS} snapshots"
    )
    one, _, _ = chain_program("none", n=1)
    step_peak = one.memory(np.float32).peak_bytes
    sides = {}
    for schedule in ("none", "revolve"):
        program, at, seed = chain_program(schedule)
        program(at)
        plan = program.memory(np.float32)
        tanhs = sum(n.op is not None and n.op.name == "tanh" for n in program.order)
        peak, _ = measured_peak(program, at)
        held = held_for_backward(plan, [seed]).max()
        print(
            f"{schedule:8s} steps recomputed {tanhs - CHAIN:5d}; at the peak: "
            f"{plan.peak_bytes / state:6.1f} states predicted, {peak / state:6.1f} measured, "
            f"of which forward values {held / state:6.1f}"
        )
        sides[schedule] = lambda p=program, a=at: p(a)
    print(
        f"revolve's optimum for n = {CHAIN}, s = {SNAPSHOTS}: "
        f"{revolve_recomputations(CHAIN, SNAPSHOTS)} recomputed steps"
    )
    theirs = package_revolve_recomputations(CHAIN, SNAPSHOTS)
    if theirs is None:
        print("checkpoint_schedules is not installed (extra: schedules)")
    else:
        print(f"checkpoint_schedules' Revolve({CHAIN}, {SNAPSHOTS}): {theirs} recomputed")
    print(
        f"one step's gradient program holds {step_peak / state:.1f} states at its peak; "
        f"{SNAPSHOTS} snapshots (the input among them) and one step: "
        f"{SNAPSHOTS - 1 + step_peak / state:.1f} states besides the input"
    )
    times = {name: [] for name in sides}
    with _study()._one_thread():
        for _ in range(rounds):
            for name, fn in sides.items():
                times[name].append(_timed(fn))
    base = np.array(times["none"])
    for name, ts in times.items():
        ts = np.array(ts)
        print(f"{name:8s} {_spread(1e3 * ts):>28s} ms   ratio {_spread(ts / base)}")


def main(rounds: int = 7, rss: bool = True) -> None:
    mlp(rounds, rss)
    chain(max(3, rounds // 2))


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 7, "--no-rss" not in sys.argv)

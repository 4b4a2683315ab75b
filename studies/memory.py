"""Memory against time in reverse mode: what checkpointing (rematerialization) costs and
saves, measured beside its theory and beside PyTorch.

Two chains: an unrolled tanh RNN cell h <- tanh(h W + b) over T steps (one shared W) and
a deep MLP of L layers h <- tanh(h W_l). Each is differentiated unchecked, in k segments
(every segment but the last checkpointed, as PyTorch's ``checkpoint_sequential``), in
round(sqrt n) segments, and with the binomial (revolve) schedule for several numbers of
snapshots s. For each: the steps recomputed (counted in the compiled program) against
theory (n - n/k for segments, revolve's optimum t n - beta(s+1, t-1)); the memory at the
peak, predicted from the schedule and measured while it runs (tracemalloc), and of it the
forward values the backward pass holds, against theory ((k - 1) + n/k segment inputs and
values for segments, about s snapshots for revolve); the time. PyTorch's eager step with
``torch.utils.checkpoint.checkpoint_sequential`` runs on the same MLP in the same run
where it is installed: the bytes its autograd holds for the backward pass (saved-tensor
hooks) and its time.

Run: diffkit study memory   (or python studies/memory.py)
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit.differentiators.checkpoint import (
    checkpoint_chain,
    revolve_recomputations,
    segment_bounds,
)
from diffkit.differentiators.reverse import vjp_graph
from diffkit.memory import SavedTensorMeter, held_for_backward, measured_peak
from diffkit.parallel import parallel_kernels
from diffkit.viz.plotting import markdown_table, new_figure, save_figure, write_text

SIZES = {
    # quick: small enough for make demo; full: the committed report
    True: {"T": 128, "batch": 64, "hidden": 64, "L": 16, "width": 128, "mlp_batch": 64,
           "k": 2, "snapshots": (2, 4, 8), "repeats": 2},
    False: {"T": 1024, "batch": 64, "hidden": 64, "L": 64, "width": 512, "mlp_batch": 128,
            "k": 4, "snapshots": (4, 10, 32), "repeats": 7},
}  # fmt: skip


# ---- the two chains ------------------------------------------------------------------------


def rnn(schedule, size, snapshots=0):
    """The tanh RNN's gradient program (loss, then the gradients of W, b and h0), its
    inputs, the cotangent seed and the bytes of one state."""
    t, batch, hidden = size["T"], size["batch"], size["hidden"]
    h0 = dk.variable("h0", (batch, hidden))
    w, b = dk.variable("W", (hidden, hidden)), dk.variable("b", (hidden,))
    y = checkpoint_chain(lambda h: dk.tanh(h @ w + b), h0, t, schedule, snapshots=snapshots)
    loss = dk.sum(y * y)
    seed = dk.variable("seed", ())
    program = dk.compile([loss] + vjp_graph([loss], [seed], [w, b, h0]))
    rng = np.random.default_rng(0)
    at = {
        "h0": rng.standard_normal((batch, hidden)).astype(np.float32),
        "W": (rng.standard_normal((hidden, hidden)) * 0.9 / math.sqrt(hidden)).astype(np.float32),
        "b": (rng.standard_normal(hidden) * 0.1).astype(np.float32),
        "seed": np.float32(1),
    }
    return program, at, seed, batch * hidden * 4


def mlp(schedule, size, snapshots=0):
    """The deep MLP's gradient program (loss, then every weight's gradient), as ``rnn``."""
    layers, width, batch = size["L"], size["width"], size["mlp_batch"]
    x = dk.variable("x", (batch, width))
    ws = [dk.variable(f"w{i}", (width, width)) for i in range(layers)]
    weights = iter(ws)  # the chain calls its step once per layer, in order
    y = checkpoint_chain(lambda h: dk.tanh(h @ next(weights)), x, layers, schedule, snapshots)
    loss = dk.sum(y * y)
    seed = dk.variable("seed", ())
    program = dk.compile([loss] + vjp_graph([loss], [seed], ws))
    rng = np.random.default_rng(1)
    at = {"x": rng.standard_normal((batch, width)).astype(np.float32), "seed": np.float32(1)}
    for i in range(layers):
        at[f"w{i}"] = (rng.standard_normal((width, width)) / math.sqrt(width)).astype(np.float32)
    return program, at, seed, batch * width * 4


def torch_mlp(segments, size):
    """PyTorch's step on the same MLP (``checkpoint_sequential`` with ``segments``, None:
    unchecked) and its parameters; None without PyTorch."""
    try:
        import torch
        from torch.utils.checkpoint import checkpoint_sequential
    except ImportError:
        return None
    layers, width, batch = size["L"], size["width"], size["mlp_batch"]
    torch.manual_seed(0)
    pairs = [(torch.nn.Linear(width, width, bias=False), torch.nn.Tanh()) for _ in range(layers)]
    model = torch.nn.Sequential(*[m for pair in pairs for m in pair])
    x = torch.randn(batch, width)

    def run():
        model.zero_grad(set_to_none=True)
        if segments:
            y = checkpoint_sequential(model, segments, x, use_reentrant=False)
        else:
            y = model(x)
        (y * y).sum().backward()

    return run, list(model.parameters())


# ---- theory --------------------------------------------------------------------------------


def theory(schedule, n, snapshots=0):
    """(steps recomputed, forward values held at the peak in states) of a chain of ``n``
    steps that each keep one state for the backward pass: for k segments, the k - 1
    checkpointed inputs and one segment's n/k values; for revolve, its s snapshots (the
    chain's input among them) and the reversed step's value."""
    if schedule == "none":
        return 0, n
    if schedule == "revolve":
        return revolve_recomputations(n, snapshots), snapshots
    k = max(1, round(math.sqrt(n))) if schedule == "sqrt" else schedule
    bounds = segment_bounds(n, k)
    longest = max(b - a for a, b in zip(bounds, bounds[1:]))
    return bounds[-2], (k - 1) + longest


# ---- measuring -----------------------------------------------------------------------------


def _label(schedule, snapshots):
    if schedule == "none":
        return "unchecked"
    if schedule == "revolve":
        return f"revolve, s = {snapshots}"
    return f"{schedule} segments"


def _schedules(n, size):
    sqrt_k = max(1, round(math.sqrt(n)))
    return [("none", 0), (size["k"], 0), (sqrt_k, 0)] + [("revolve", s) for s in size["snapshots"]]


def _measure(build, n, size, op_name):
    """One row per schedule: its numbers, and the programs for the timings."""
    rows, runs, plans, excess = [], {}, {}, []
    for schedule, s in _schedules(n, size):
        program, at, seed, unit = build(schedule, size, s)
        program(at)
        plan = program.memory(np.float32)
        measured, _ = measured_peak(program, at)
        held = held_for_backward(plan, [seed])
        steps = sum(node.op is not None and node.op.name == op_name for node in program.order)
        recomputed_theory, held_theory = theory(schedule, n, s)
        label = _label(schedule, s)
        rows.append(
            [label, steps - n, recomputed_theory, plan.peak_bytes / unit, measured / unit,
             plan.intermediate_peak_bytes / unit, held.max() / unit, held_theory]
        )  # fmt: skip
        excess.append(measured - plan.peak_bytes)
        runs[label] = lambda p=program, a=at: p(a)
        plans[label] = (plan, held, unit)
    return rows, runs, plans, excess


@contextlib.contextmanager
def _one_thread():
    """Both sides on one thread while they are timed (numpy's BLAS through diffkit's
    reference-counted limit; PyTorch's intra-op threads, set back afterwards): on a shared
    machine, spinning BLAS threads that wait for a busy core cost more than they save."""
    try:
        import torch
    except ImportError:
        torch = None
    before = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None:
            torch.set_num_threads(1)
        with parallel_kernels():
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def _time(runs: dict, repeats: int) -> dict:
    """Median seconds and spread of each run, the runs alternating within each round."""
    times = {name: [] for name in runs}
    with _one_thread():
        for _ in range(repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return {name: np.array(ts) for name, ts in times.items()}


def _with_times(rows, times, base: str = "unchecked"):
    base = times[base]
    for row in rows:
        ts = times[row[0]]
        row += [1e3 * float(np.median(ts)), 1e3 * float(ts.min()), 1e3 * float(ts.max()),
                float(np.median(ts / base))]  # fmt: skip
    return rows


def _torch_rows(size, unit):
    rows, runs = [], {}
    layers = size["L"]
    sqrt_k = max(1, round(math.sqrt(layers)))
    for segments in (None, size["k"], sqrt_k):
        made = torch_mlp(segments, size)
        if made is None:
            return [], {}
        run, params = made
        run()
        with SavedTensorMeter(exclude=params) as meter:
            run()
        label = f"PyTorch {segments} segments" if segments else "PyTorch unchecked"
        recomputed = theory(segments or "none", layers)[0]
        rows.append([label, float("nan"), recomputed, float("nan"), float("nan"), float("nan"),
                     meter.peak / unit, theory(segments or "none", layers)[1]])  # fmt: skip
        runs[label] = run
    return rows, runs


# ---- figures -------------------------------------------------------------------------------


def _tradeoff_panel(ax, rows, n, title, unit_name, torch_rows=()):
    # k up to 2 sqrt(n): more segments hold more inputs than they save
    ks = range(1, min(n, 2 * round(math.sqrt(n))) + 1)
    seg = [theory(k, n) for k in ks]
    ax.plot([r for r, _ in seg], [h for _, h in seg], "-", color="C0", lw=1,
            label="theory: k segments")  # fmt: skip
    ss = [s for s in range(1, 65) if s < n]
    rev = [theory("revolve", n, s) for s in ss]
    ax.plot([r for r, _ in rev], [h for _, h in rev], "-", color="C1", lw=1,
            label="theory: revolve, s snapshots")  # fmt: skip
    for row in rows:
        color = "C1" if row[0].startswith("revolve") else "C0"
        ax.plot(row[1], row[6], "o", color=color, ms=7)
        ax.annotate(row[0], (row[1], row[6]), textcoords="offset points", xytext=(5, 4),
                    fontsize=7)  # fmt: skip
    for row in torch_rows:
        ax.plot(row[2], row[6], "x", color="C3", ms=8, mew=2)
    ax.plot([], [], "ok", label="diffkit, measured (held forward values)")
    if torch_rows:
        ax.plot([], [], "xC3", label="PyTorch checkpoint_sequential (saved tensors)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_yscale("log")
    ax.set_xlabel("steps recomputed in the backward pass")
    ax.set_ylabel(f"forward values held at the peak ({unit_name})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)


def _figures(out: Path, rnn_rows, mlp_rows, torch_rows, plans, size):
    fig, axes = new_figure(1, 2, figsize=(12, 5))
    _tradeoff_panel(axes[0], rnn_rows, size["T"], f"tanh RNN, T = {size['T']} steps", "states")
    _tradeoff_panel(axes[1], mlp_rows, size["L"], f"deep MLP, L = {size['L']} layers",
                    "activations", torch_rows)  # fmt: skip
    save_figure(fig, out / "memory_tradeoff.png")

    fig, axes = new_figure(1, 2, figsize=(12, 4.6))
    for ax, names, title in [
        (axes[0], ("unchecked", f"{round(math.sqrt(size['L']))} segments"),
         f"deep MLP step, L = {size['L']}"),
        (axes[1], ("unchecked", f"revolve, s = {size['snapshots'][1]}"),
         f"tanh RNN step, T = {size['T']}"),
    ]:  # fmt: skip
        for name, color in zip(names, ("C0", "C1")):
            plan, held, unit = plans[title.split(",")[0]][name]
            x = np.linspace(0, 1, len(plan.timeline))
            inter = plan.intermediate_timeline / 2**20
            ax.plot(x, inter, color=color, lw=1.2, label=f"{name}: values not returned")
            ax.plot(x, held / 2**20, color=color, lw=1, ls="--",
                    label=f"{name}: forward values held")  # fmt: skip
        ax.set_xlabel("position in the step's schedule (fraction of its ops)")
        ax.set_ylabel("live MiB, returned gradients excluded (predicted)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
    save_figure(fig, out / "memory_timeline.png")


# ---- the study -----------------------------------------------------------------------------


def main(out: str | Path = "reports/memory", quick: bool = False, executor=None) -> dict:
    """Run the study and write README.md and its figures into ``out``; ``executor`` is
    accepted for the common interface (the timings run serially)."""
    out = Path(out)
    size = SIZES[bool(quick)]
    rnn_rows, rnn_runs, rnn_plans, rnn_excess = _measure(rnn, size["T"], size, "tanh")
    mlp_rows, mlp_runs, mlp_plans, mlp_excess = _measure(mlp, size["L"], size, "tanh")
    unit = mlp_plans["unchecked"][2]
    torch_rows, torch_runs = _torch_rows(size, unit)
    times = _time({**mlp_runs, **torch_runs}, size["repeats"])
    _with_times(mlp_rows, times)
    _with_times(torch_rows, times)
    _with_times(rnn_rows, _time(rnn_runs, size["repeats"]))
    plans = {"deep MLP step": mlp_plans, "tanh RNN step": rnn_plans}
    _figures(out, rnn_rows, mlp_rows, torch_rows, plans, size)
    text = _report(rnn_rows, mlp_rows, torch_rows, size, times, rnn_excess + mlp_excess)
    write_text(out / "README.md", text)
    return {"rnn": rnn_rows, "mlp": mlp_rows, "torch": torch_rows, "size": size}


HEADERS = ["schedule", "recomputed", "theory", "peak (pred.)", "peak (meas.)",
           "intermediates", "held", "held (theory)", "ms (median)", "ms (min)", "ms (max)",
           "× unchecked"]  # fmt: skip


def _report(rnn_rows, mlp_rows, torch_rows, size, times, excess) -> str:
    """The README: every sentence computed from the tables."""
    t, layers = size["T"], size["L"]
    exact = [r for r in rnn_rows + mlp_rows if r[1] == r[2]]
    total = len(rnn_rows) + len(mlp_rows)
    base_rnn, base_mlp = rnn_rows[0], mlp_rows[0]
    sqrt_rnn, sqrt_mlp = rnn_rows[2], mlp_rows[2]
    sqrt_k, sqrt_t = round(math.sqrt(layers)), round(math.sqrt(t))
    over = sorted({round(r[6] - r[7]) for r in mlp_rows})
    lines = [
        "# Memory against time: checkpointing in reverse mode\n",
        f"A tanh RNN cell unrolled over T = {t} steps (batch {size['batch']}, "
        f"{size['hidden']} hidden units, one shared W and b) and a deep MLP of L = {layers} "
        f"tanh layers of width {size['width']} (batch {size['mlp_batch']}), float32, "
        "differentiated in reverse mode unchecked, in segments (all but the last "
        "checkpointed, as PyTorch's checkpoint_sequential) and with revolve's binomial "
        "schedule. Memory is in states (one RNN state) or activations (one layer's output): "
        "*peak*, every value the step computes (its returned gradients included), predicted "
        "from the compiled schedule and measured while it runs (tracemalloc); "
        "*intermediates*, the predicted peak of the values it does not return; *held*, of "
        "those, the forward values (kept or recomputed) that the backward pass holds: the "
        "counterpart of PyTorch's saved tensors. Times are medians over "
        f"{size['repeats']} alternating rounds, each side on one thread, on a shared "
        "machine; ranges are lowest to highest.\n",
        "## Findings\n",
        f"- The recomputed steps counted in the compiled programs equal the theory in "
        f"{len(exact)} of {total} schedules (segments: n − n/k; revolve: t n − β(s+1, t−1) "
        "with β(s, t) = C(s+t, s), the least any schedule with s snapshots needs).",
        f"- Measured peaks exceed the predicted ones by {min(excess) / 1024:.0f} to "
        f"{max(excess) / 1024:.0f} KiB (Python's own objects during the run; the prediction "
        "counts the arrays the program computes).",
        f"- Deep MLP: {sqrt_k} segments hold {sqrt_mlp[6]:.0f} activations of forward values "
        f"at the peak against {base_mlp[6]:.0f} unchecked (theory {sqrt_mlp[7]}, "
        f"2√L = {2 * sqrt_k}); its intermediates peak at {sqrt_mlp[5]:.0f} activations "
        f"against {base_mlp[5]:.0f}; its step takes {sqrt_mlp[11]:.2f}× the unchecked time "
        f"({sqrt_mlp[8]:.3g} ms against {base_mlp[8]:.3g} ms). Held values exceed the "
        f"theory by {' to '.join(map(str, over))} activations in the MLP's schedules, t² and "
        "1 − t² among them: the tanh derivative, which the backward pass makes from the "
        "saved output as values of the forward pass's own (PyTorch's tanh backward makes "
        "them inside its kernel).",
        f"- Tanh RNN: {sqrt_t} segments hold {sqrt_rnn[6]:.0f} states against "
        f"{base_rnn[6]:.0f} unchecked (theory {sqrt_rnn[7]}) in {sqrt_rnn[11]:.2f}× the time.",
    ]
    for r in rnn_rows[3:]:
        lines.append(
            f"- Tanh RNN, {r[0]}: {r[1]} steps recomputed ({r[1] / t:.2f} per step), "
            f"{r[6]:.0f} states of forward values held (theory {r[7]}), intermediates "
            f"{r[5]:.0f} states against {base_rnn[5]:.0f} unchecked, {r[11]:.2f}× the "
            "unchecked time."
        )
    if torch_rows:
        for ours, theirs in zip(mlp_rows[:3], torch_rows):
            ratio = times[ours[0]] / times[theirs[0]]
            lines.append(
                f"- MLP, {ours[0]} against {theirs[0]}: {ours[6]:.0f} against "
                f"{theirs[6]:.0f} activations held for the backward pass; diffkit's step "
                f"takes {np.median(ratio):.2f}× PyTorch's ({ratio.min():.2f} to "
                f"{ratio.max():.2f} over the rounds)."
            )
    else:
        lines.append("- PyTorch is not installed: no comparison with it in this run.")
    lines += [
        "\n![memory against recomputation](memory_tradeoff.png)\n",
        "![live bytes during one step](memory_timeline.png)\n",
        f"## Tanh RNN, T = {t}\n",
        "Memory in states.\n",
        markdown_table(HEADERS, rnn_rows),
        f"## Deep MLP, L = {layers}\n",
        "Memory in activations. PyTorch rows: *held* is the peak of its saved tensors "
        "(each storage once, parameters excluded); its recomputations are not counted "
        "(—), the theory column gives the same formula's count.\n",
        markdown_table(HEADERS, mlp_rows + torch_rows),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    main(quick="--quick" in sys.argv)

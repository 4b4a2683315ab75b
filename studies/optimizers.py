"""Optimizers: stochastic, minibatch and full-batch gradient descent, and Newton's method.

On logistic regression (digits 3 against 8, 8×8 pixels, L2 penalty) and a small
MLP (64-8-2, tanh) trained on the same task, the full training loss (with its
penalty) against the number of parameter updates and against wall time. All
gradients come from reverse mode; Newton's Hessians from forward over reverse.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit import nn
from diffkit.tasks import Task, run_tasks
from diffkit.train import SGD, Newton, StepGraph, load_digits
from diffkit.train.data import Dataset, batches, one_hot
from diffkit.viz.plotting import markdown_table, mean_sd, new_figure, save_figure, write_text

WEIGHT_DECAY = 1e-2


def two_class_digits(limit=None):
    train, _ = load_digits(size=8, dtype=np.float64)
    keep = np.flatnonzero(np.isin(train.labels, (3, 8)))
    if limit:
        keep = keep[:limit]
    return Dataset(train.images[keep], (train.labels[keep] == 8).astype(np.int64), 2, "3-vs-8")


def make_model(kind, seed=0):
    nn.manual_seed(seed)
    if kind == "logistic regression":
        return nn.LogisticRegression(64, 2, dtype=np.float64)
    return nn.MLP([64, 8, 2], activation="tanh", dtype=np.float64)


def full_loss(model, data, cache):
    """Mean cross-entropy over all of ``data`` plus the L2 penalty."""
    key = id(model)
    if key not in cache:
        x = dk.variable("input", data.images.shape)
        y = dk.variable("target", (len(data), 2))
        loss = nn.CrossEntropyLoss()(model(x), y)
        cache[key] = dk.compile(loss)
    value = cache[key](
        {**model.inputs(), "input": data.images, "target": one_hot(data.labels, 2, np.float64)},
        strict=False,
    )
    penalty = 0.5 * WEIGHT_DECAY * sum(float(np.sum(p * p)) for p in model.parameters())
    return float(value) + penalty


def run_sgd(kind, data, batch_size, lr, epochs, seed=0):
    model = make_model(kind, seed)
    opt = SGD(model.named_parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    targets = one_hot(data.labels, 2, np.float64)
    rng = np.random.default_rng(seed)
    graphs, cache = {}, {}
    steps, times, losses = [0], [0.0], [full_loss(model, data, cache)]
    elapsed, count = 0.0, 0
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in batches(len(data), batch_size, rng):
            shape = (len(idx),) + data.images.shape[1:]
            if shape not in graphs:
                graphs[shape] = StepGraph(model, shape, 2)
            _, _, grads, _ = graphs[shape](model, data.images[idx], targets[idx])
            opt.step(grads)
            count += 1
        elapsed += time.perf_counter() - start
        steps.append(count)
        times.append(elapsed)
        losses.append(full_loss(model, data, cache))
    return {"steps": steps, "seconds": times, "loss": losses}


def run_newton(kind, data, iterations, seed=0):
    model = make_model(kind, seed)
    opt = Newton(model, weight_decay=WEIGHT_DECAY)
    losses, norms, times = [full_loss(model, data, {})], [], [0.0]
    start = time.perf_counter()
    for _ in range(iterations):
        loss, norm = opt.epoch(model, data)
        losses.append(loss)
        norms.append(norm)
        times.append(time.perf_counter() - start)
        if norm < 1e-10:
            break
    return {
        "steps": list(range(len(losses))),
        "seconds": times,
        "loss": losses,
        "grad_norm": [float("nan")] + norms,
    }


def run_method(kind, method, quick, seed=0) -> dict:
    """One curve (a task): ``method`` on ``kind`` from initial weights and shuffle ``seed``."""
    data = two_class_digits(limit=120 if quick else None)
    if method == "Newton":
        return run_newton(kind, data, 5 if quick else 10, seed)
    return run_sgd(kind, data, SIZES[method] or len(data), LRS[method], EPOCHS[method][quick], seed)


SIZES = {"stochastic (batch 1)": 1, "minibatch (batch 32)": 32, "full batch": None}
LRS = {"stochastic (batch 1)": 0.01, "minibatch (batch 32)": 0.1, "full batch": 0.5}
EPOCHS = {
    "stochastic (batch 1)": (15, 3),
    "minibatch (batch 32)": (60, 10),
    "full batch": (300, 30),
}
KINDS = ["logistic regression", "MLP 64-8-2 (tanh)"]


def main(out: str | Path = "reports/optimizers", quick: bool = False, executor=None) -> dict:
    out = Path(out)
    data = two_class_digits(limit=120 if quick else None)
    sizes = {m: SIZES[m] or len(data) for m in SIZES}
    lrs = LRS
    kinds = KINDS
    seeds = [0, 1] if quick else [0, 1, 2]
    methods = list(sizes) + ["Newton"]
    tasks = [
        Task(f"{__file__}:run_method", {"kind": k, "method": m, "quick": quick}, seed=seed)
        for k in kinds
        for m in methods
        for seed in seeds
    ]
    done = run_tasks(tasks, executor, cache=out / ".tasks", progress=True, desc="optimizers")
    runs = {(k, m): [] for k in kinds for m in methods}
    for task, r in zip(tasks, done):
        runs[(task.args["kind"], task.args["method"])].append(r)
    # the first seed's curves stand for each cell in the figure and findings' one-pass
    # numbers; the tables and the other findings give means over the seeds
    results = {cell: rs[0] for cell, rs in runs.items()}
    best = min(min(r["loss"]) for r in results.values())
    fig, axes = new_figure(2, 2, figsize=(13, 9))
    for row, kind in enumerate(kinds):
        convex = kind == "logistic regression"
        # the convex problem has one minimum, which Newton's method finds to round-off
        floor = min(results[(kind, "Newton")]["loss"]) - 1e-15 if convex else 0.0
        for k, method in enumerate(methods):
            for i, r in enumerate(runs[(kind, method)]):
                gap = np.maximum(np.array(r["loss"]) - floor, 1e-16)
                style = dict(
                    color=f"C{k}",
                    ms=3,
                    lw=1.2 if i == 0 else 0.6,
                    alpha=1.0 if i == 0 else 0.5,
                    label=method if i == 0 else None,
                )
                axes[row, 0].loglog(
                    np.maximum(r["steps"], 1), gap, "o-" if i == 0 else "-", **style
                )
                axes[row, 1].loglog(
                    np.maximum(r["seconds"], 1e-4), gap, "o-" if i == 0 else "-", **style
                )
        axes[row, 0].set_xlabel("parameter updates")
        axes[row, 1].set_xlabel("seconds (0 drawn at 1e-4)")
        for ax in axes[row]:
            ax.set_ylabel("training loss − minimum" if convex else "training loss")
            ax.set_title(
                kind
                + (" (convex)" if convex else " (non-convex)")
                + f": seed {seeds[0]} bold, seeds {', '.join(map(str, seeds[1:]))} thin"
            )
            ax.legend(fontsize=8)
    save_figure(fig, out / "optimizers.png")
    rows = []
    for (kind, method), rs in runs.items():
        rows.append(
            [
                kind,
                method,
                mean_sd([r["steps"][-1] for r in rs], ".4g"),
                mean_sd([r["seconds"][-1] for r in rs], ".3g"),
                mean_sd([r["loss"][0] for r in rs]),
                mean_sd([r["loss"][-1] for r in rs]),
                mean_sd([r["grad_norm"][-1] for r in rs], ".3g")
                if "grad_norm" in rs[0]
                else "not tracked",
            ]
        )
    newton_lr = results[("logistic regression", "Newton")]
    gd_lr = results[("logistic regression", "full batch")]
    text = [
        "# Stochastic, minibatch and full-batch gradient descent, and Newton's method\n",
        f"Two-class task: digits 3 against 8 ({len(data)} images of 8×8 pixels). Loss: mean "
        f"cross-entropy plus {WEIGHT_DECAY}/2·|θ|² (the penalty makes the logistic-regression "
        "minimum unique and finite). Learning rates: "
        + ", ".join(f"{m} {lrs[m]}" for m in sizes)
        + ". Newton: damped, with a backtracking "
        "line search, Hessian by forward-over-reverse mode. For logistic regression the curves "
        "show the loss minus its minimum (found by Newton's method); for the MLP, the loss. "
        f"Each cell runs from {len(seeds)} seeds (initial weights and shuffling); the table "
        "gives mean ± standard deviation over them, the findings the first seed's run.\n",
        "## Findings\n",
        f"- On logistic regression, Newton's method reaches gradient norm "
        f"{newton_lr['grad_norm'][-1]:.1e} in {newton_lr['steps'][-1]} iterations "
        f"({newton_lr['seconds'][-1]:.2f} s), loss {newton_lr['loss'][-1]:.10f}; full-batch "
        f"gradient descent is at {gd_lr['loss'][-1]:.10f} after {gd_lr['steps'][-1]} steps "
        f"({gd_lr['seconds'][-1]:.2f} s).",
        "- After one pass over the data (logistic regression), the loss is "
        + ", ".join(
            f"{results[('logistic regression', m)]['loss'][1]:.4f} for {m} "
            f"({results[('logistic regression', m)]['steps'][1]} updates)"
            for m in sizes
        )
        + ": more, noisier updates make more progress per pass. At the end, stochastic "
        f"descent is at {results[('logistic regression', 'stochastic (batch 1)')]['loss'][-1]:.4f}"
        f" (its constant step keeps it above the minimum), full-batch descent at "
        f"{gd_lr['loss'][-1]:.4f}.",
        f"- On the non-convex MLP, damped Newton gets to "
        f"{results[('MLP 64-8-2 (tanh)', 'Newton')]['loss'][-1]:.4f} in "
        f"{results[('MLP 64-8-2 (tanh)', 'Newton')]['steps'][-1]} iterations "
        f"({results[('MLP 64-8-2 (tanh)', 'Newton')]['seconds'][-1]:.2f} s, each forming a "
        f"Hessian of {sum(p.size for p in make_model('MLP').parameters())}² entries); over "
        f"{len(seeds)} seeds it ends at "
        f"{mean_sd([r['loss'][-1] for r in runs[('MLP 64-8-2 (tanh)', 'Newton')]])}.",
        f"- The lowest loss reached by any method: {best:.6f}.",
        "\n![optimizers](optimizers.png)\n",
        "## Final values\n",
        markdown_table(
            [
                "model",
                "method",
                "updates",
                "seconds",
                "initial loss",
                "final loss",
                "final |gradient|",
            ],
            rows,
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {"results": results, "runs": runs, "rows": rows}


if __name__ == "__main__":
    main()

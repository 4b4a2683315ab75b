"""Normalization: LeNet-5 on the digits with and without batch norm across learning rates,
layer- and instance-norm variants, and conv-BN fusion for inference.

The course claims batch norm lets a network train faster and stay stable at
higher learning rates, and that in evaluation it is an affine map that folds
into the preceding layer at no cost. Each claim is measured here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit.timing import median_time
from diffkit import nn
from diffkit.tasks import Task, run_tasks
from diffkit.train import TrainConfig, load_digits, run
from diffkit.viz.plotting import markdown_table, mean_sd, new_figure, save_figure, write_text


def config(norm, lr, epochs, quick, seed=0) -> TrainConfig:
    """LeNet-5 on the digits: SGD with momentum 0.9, constant lr, no decay, no shifts."""
    return TrainConfig(
        norm=norm or "none",
        lr=lr,
        epochs=epochs,
        momentum=0.9,
        weight_decay=0.0,
        schedule="none",
        augment=0,
        seed=seed,
        train_limit=256 if quick else None,
        test_limit=120 if quick else None,
    )


def train_cell(norm, lr, epochs, quick, keep_state=False, seed=0) -> dict:
    """One training run (a task): its history, whether it diverged, and on request the
    trained weights."""
    result = run(config(norm, lr, epochs, quick, seed), progress=False)
    return {
        "history": result.history,
        "diverged": result.diverged,
        "state": dict(result.model.state_dict()) if keep_state else None,
    }


LABEL = {
    None: "no normalization",
    "batch": "batch norm",
    "layer": "layer norm",
    "instance": "instance norm",
}


def main(out: str | Path = "reports/normalization", quick: bool = False, executor=None) -> dict:
    out = Path(out)
    train, test = load_digits()
    if quick:
        train, test = train.subset(np.arange(256)), test.subset(np.arange(120))
    lrs = [0.03, 0.3] if quick else [0.01, 0.03, 0.1, 0.3, 1.0]
    seeds = [0, 1] if quick else [0, 1, 2]
    epochs = 2 if quick else 6
    mid = lrs[len(lrs) // 2]
    cells = [(norm, lr) for norm in (None, "batch") for lr in lrs]
    cells += [(norm, mid) for norm in ("layer", "instance")]
    tasks = [
        Task(
            f"{__file__}:train_cell",
            {
                "norm": norm,
                "lr": lr,
                "epochs": epochs,
                "quick": quick,
                "keep_state": norm == "batch" and lr == mid and seed == seeds[0],
            },
            seed=seed,
            label=f"{LABEL[norm]}, lr={lr}",
        )
        for norm, lr in cells
        for seed in seeds
    ]
    results = run_tasks(tasks, executor, cache=out / ".tasks", progress=True, desc="normalization")
    runs = {cell: [] for cell in cells}
    for task, r in zip(tasks, results):
        runs[(task.args["norm"], task.args["lr"])].append(r)

    def failed(r) -> bool:  # diverged, or never above 20% test accuracy
        return bool(r["diverged"]) or not r["history"] or r["history"][-1]["test_acc"] < 0.2

    def final(r, key):
        return r["history"][-1][key] if r["history"] and not r["diverged"] else float("nan")

    rows = []
    for (norm, lr), rs in runs.items():
        rows.append(
            [
                LABEL[norm],
                lr,
                f"{sum(bool(r['diverged']) for r in rs)} of {len(rs)}",
                mean_sd([final(r, "train_loss") for r in rs]),
                mean_sd([100 * final(r, "test_acc") for r in rs]),
                mean_sd(
                    [
                        100 * r["history"][0]["test_acc"] if r["history"] else float("nan")
                        for r in rs
                    ]
                ),
            ]
        )

    fig, axes = new_figure(1, 2, figsize=(13, 5))
    for ax, norm in zip(axes, (None, "batch")):
        for k, lr in enumerate(lrs):
            rs = runs[(norm, lr)]
            n_epochs = min(len(r["history"]) for r in rs)
            curves = np.array([[e["train_loss"] for e in r["history"][:n_epochs]] for r in rs])
            epochs_axis = np.arange(1, n_epochs + 1)
            n_div = sum(bool(r["diverged"]) for r in rs)
            colour = f"C{k}"
            if n_epochs:
                ax.semilogy(
                    epochs_axis,
                    curves.mean(0),
                    "o-",
                    color=colour,
                    label=f"lr = {lr}" + (f" ({n_div} of {len(rs)} diverged)" if n_div else ""),
                )
                ax.fill_between(
                    epochs_axis, curves.min(0), curves.max(0), color=colour, alpha=0.2, lw=0
                )
            else:
                ax.plot([], [], "o-", color=colour, label=f"lr = {lr} (all diverged)")
        ax.set_title(f"LeNet-5, {LABEL[norm]}: mean over {len(seeds)} seeds, band min–max")
        ax.set_ylim(1e-2, 30)  # same scale on both panels; larger losses run off the top
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.legend(fontsize=8)
    save_figure(fig, out / "normalization_loss.png")

    fig, ax = new_figure()
    for norm, style in ((None, "o-"), ("batch", "s-")):
        accs = np.array(
            [
                [0.0 if failed(r) else 100 * r["history"][-1]["test_acc"] for r in runs[(norm, lr)]]
                for lr in lrs
            ]
        )
        ax.errorbar(
            lrs, accs.mean(1), yerr=accs.std(1, ddof=1), fmt=style, capsize=3, label=LABEL[norm]
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (SGD, momentum 0.9)")
    ax.set_ylabel(f"test accuracy after {epochs} epochs (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    ax.set_title(f"accuracy against learning rate: mean ± sd over {len(seeds)} seeds (0 = failed)")
    save_figure(fig, out / "normalization_lr.png")

    # conv-BN fusion: exactness and inference speed
    model = nn.LeNet5(norm="batch")
    model.load_state_dict(runs[("batch", mid)][0]["state"])
    model = model.to(np.float64).eval()
    fused = nn.fuse_conv_bn(model)
    x = test.images[:256].astype(np.float64)
    xv = dk.variable("input", x.shape)
    p_full = dk.compile(model(xv))
    p_fused = dk.compile(fused(xv))
    at_full = {**model.inputs(), "input": x}
    at_fused = {**fused.inputs(), "input": x}
    diff = float(np.max(np.abs(p_full(at_full, strict=False) - p_fused(at_fused, strict=False))))

    def median(fn, k=5 if quick else 15):
        return median_time(fn, k)[0]

    t_full = median(lambda: p_full(at_full, strict=False))
    t_fused = median(lambda: p_fused(at_fused, strict=False))

    def mean_acc(norm, lr) -> float:
        accs = [final(r, "test_acc") for r in runs[(norm, lr)]]
        return float(np.mean(accs)) if all(a == a for a in accs) else float("nan")

    def best(norm):
        ok = [(mean_acc(norm, lr), lr) for lr in lrs if mean_acc(norm, lr) == mean_acc(norm, lr)]
        return max(ok) if ok else (float("nan"), None)

    def failing(norm):
        return [lr for lr in lrs if any(failed(r) for r in runs[(norm, lr)])]

    b_none, b_bn = best(None), best("batch")
    high = lrs[-1]
    c = config(None, lrs[0], epochs, quick)
    size = c.input_size
    text = [
        "# Normalization in LeNet-5\n",
        f"LeNet-5 trained on the bundled digits ({len(train)} training, {len(test)} test "
        f"images, {size}×{size}) with SGD (momentum {c.momentum}, batch {c.batch_size}, "
        f"constant learning rate) for {epochs} epochs, with and without batch normalization "
        "after each convolution and hidden linear layer, at several learning rates; layer and "
        f"instance normalization at one rate. Every cell is trained from {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))}: initial weights and shuffling); the tables give the "
        "mean ± standard deviation over the seeds that did not diverge.\n",
        "## Findings\n",
        f"- Best mean test accuracy without normalization: {100 * b_none[0]:.1f}% "
        f"(lr = {b_none[1]}); with batch norm: {100 * b_bn[0]:.1f}% (lr = {b_bn[1]}).",
        f"- Learning rates at which training failed for at least one seed (diverged, or under "
        f"20% accuracy): {failing(None) or 'none'} without normalization, "
        f"{failing('batch') or 'none'} with batch norm. At lr = {high}, batch norm reaches "
        f"{mean_sd([100 * final(r, 'test_acc') for r in runs[('batch', high)]])}% and no "
        f"normalization {mean_sd([100 * final(r, 'test_acc') for r in runs[(None, high)]])}% "
        f"({sum(failed(r) for r in runs[(None, high)])} of {len(seeds)} seeds failed).",
        f"- Folding batch norm into the preceding layers (`fuse_conv_bn`) changes the outputs "
        f"by at most {diff:.1e} (float64) and takes the inference time of a 256-image batch "
        f"from {t_full * 1e3:.2f} ms to {t_fused * 1e3:.2f} ms "
        f"({t_full / t_fused:.2f}× faster).",
        "\n![loss curves](normalization_loss.png)\n\n![accuracy against learning rate]"
        "(normalization_lr.png)\n",
        "## Runs\n",
        markdown_table(
            [
                "normalization",
                "lr",
                "diverged",
                "final train loss",
                "final test acc (%)",
                "test acc after epoch 1 (%)",
            ],
            rows,
        ),
        "\n## Conv-BN fusion\n",
        markdown_table(
            ["max abs. output difference", "unfused (ms)", "fused (ms)", "speed-up"],
            [[diff, t_full * 1e3, t_fused * 1e3, t_full / t_fused]],
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {
        "runs": runs,
        "rows": rows,
        "fusion_diff": diff,
        "speedup": t_full / t_fused,
        "lrs": lrs,
    }


if __name__ == "__main__":
    main()

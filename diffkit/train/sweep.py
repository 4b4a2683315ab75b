"""Training over a grid: every combination of settings, each from several seeds, as
independent tasks (:mod:`diffkit.tasks`), with one row per run and a summary per cell.

>>> from diffkit.train.sweep import grid
>>> [(c.lr, c.seed) for c in grid({"model": "logreg"}, {"lr": [0.1, 0.3]}, seeds=[0, 1])]
[(0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1)]
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from pathlib import Path

import numpy as np

from ..io import atomic_write_text
from .config import TrainConfig

__all__ = ["grid", "train_task", "sweep", "SweepResult"]

ROW_FIELDS = ("final_test_acc", "final_train_loss", "epochs_run", "seconds", "diverged")


def grid(base: dict, axes: dict[str, list], seeds) -> list[TrainConfig]:
    """Every combination of the values in ``axes`` (field -> values) over ``base``, for
    each seed; each configuration validated (a bad one raises before anything runs)."""
    names = list(axes)
    out = []
    for values in itertools.product(*(axes[n] for n in names)):
        for seed in seeds:
            out.append(TrainConfig(**{**base, **dict(zip(names, values)), "seed": int(seed)}))
    return out


def train_task(config: dict, seed: int) -> dict:
    """One run of a sweep (a task): the summary of :func:`diffkit.train.run`."""
    from .run import run

    result = run(TrainConfig(**{**config, "seed": seed}), progress=False)
    h = result.history
    return {
        "final_test_acc": h[-1]["test_acc"] if h and not result.diverged else float("nan"),
        "final_train_loss": h[-1]["train_loss"] if h and not result.diverged else float("nan"),
        "epochs_run": len(h),
        "seconds": round(result.seconds, 3),
        "diverged": result.diverged or "",
    }


class SweepResult:
    """``rows``: one dict per run (the grid's settings, the seed, the results);
    ``cells``: one per combination of settings, with mean and spread over seeds."""

    def __init__(self, axes: list[str], rows: list[dict]):
        self.axes, self.rows = axes, rows
        self.cells = []
        for key, group in itertools.groupby(rows, key=lambda r: tuple(r[a] for a in axes)):
            group = list(group)
            acc = np.array([r["final_test_acc"] for r in group], dtype=float)
            loss = np.array([r["final_train_loss"] for r in group], dtype=float)
            ok = ~np.isnan(acc)
            self.cells.append(
                {
                    **dict(zip(axes, key)),
                    "seeds": len(group),
                    "diverged": int((~ok).sum()),
                    "acc_mean": float(acc[ok].mean()) if ok.any() else float("nan"),
                    "acc_sd": float(acc[ok].std(ddof=1)) if ok.sum() > 1 else float("nan"),
                    "acc_min": float(acc[ok].min()) if ok.any() else float("nan"),
                    "acc_max": float(acc[ok].max()) if ok.any() else float("nan"),
                    "loss_mean": float(loss[ok].mean()) if ok.any() else float("nan"),
                }
            )


def sweep(
    configs: list[TrainConfig], axes: list[str], executor=None, out=None, progress=None
) -> SweepResult:
    """Run ``configs`` (from :func:`grid`) as tasks on ``executor``; with ``out``, cache
    finished runs there (a rerun skips them) and write runs.csv, summary.md and
    summary.png."""
    from ..tasks import Task, run_tasks

    tasks = []
    for c in configs:
        settings = {
            k: v for k, v in c.to_dict().items() if k not in ("input_size", "dtype", "seed")
        }
        settings["out"] = None
        label = ", ".join(f"{a}={getattr(c, a)}" for a in axes)
        tasks.append(Task("diffkit.train.sweep:train_task", {"config": settings}, c.seed, label))
    cache = Path(out) / ".tasks" if out is not None else None
    results = run_tasks(tasks, executor, cache=cache, progress=progress, desc="sweep")
    rows = [
        {**{a: getattr(c, a) for a in axes}, "seed": c.seed, **r} for c, r in zip(configs, results)
    ]
    result = SweepResult(axes, rows)
    if out is not None:
        write_sweep(result, Path(out))
    return result


def _fmt(v) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def write_sweep(result: SweepResult, out: Path) -> None:
    """runs.csv (one row per run), summary.md and summary.png (mean and spread per cell)."""
    from ..viz.plotting import markdown_table, new_figure, save_figure, write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(result.rows[0]))
    writer.writeheader()
    writer.writerows(result.rows)
    atomic_write_text(out / "runs.csv", buf.getvalue())
    axes = result.axes
    table = markdown_table(
        axes + ["seeds", "diverged", "test accuracy (%)", "min–max (%)", "final train loss"],
        [
            [_fmt(c[a]) for a in axes]
            + [
                c["seeds"],
                c["diverged"],
                "—"
                if math.isnan(c["acc_mean"])
                else f"{100 * c['acc_mean']:.2f}"
                + ("" if math.isnan(c["acc_sd"]) else f" ± {100 * c['acc_sd']:.2f}"),
                "—"
                if math.isnan(c["acc_min"])
                else f"{100 * c['acc_min']:.2f}–{100 * c['acc_max']:.2f}",
                _fmt(c["loss_mean"]),
            ]
            for c in result.cells
        ],
    )
    best = max(
        (c for c in result.cells if not math.isnan(c["acc_mean"])),
        key=lambda c: c["acc_mean"],
        default=None,
    )
    lines = [
        "# Training sweep\n",
        f"{len(result.rows)} runs: {len(result.cells)} settings × "
        f"{len(result.rows) // max(len(result.cells), 1)} seeds. Test accuracy after the last "
        "epoch, mean ± standard deviation over the seeds that did not diverge; every run is "
        "a row of runs.csv.\n",
    ]
    if best is not None:
        what = ", ".join(f"{a} = {best[a]}" for a in axes) or "the one setting"
        lines.append(f"Best mean test accuracy: {100 * best['acc_mean']:.2f}% ({what}).\n")
    lines += ["![summary](summary.png)\n", table]
    write_text(out / "summary.md", "\n".join(lines))

    fig, ax = new_figure(figsize=(max(7.5, 0.9 * len(result.cells) + 2), 4.5))
    labels = [", ".join(f"{a}={_fmt(c[a])}" for a in axes) or "run" for c in result.cells]
    means = [100 * c["acc_mean"] if not math.isnan(c["acc_mean"]) else 0 for c in result.cells]
    lo = [
        m - 100 * c["acc_min"] if not math.isnan(c["acc_min"]) else 0
        for m, c in zip(means, result.cells)
    ]
    hi = [
        100 * c["acc_max"] - m if not math.isnan(c["acc_max"]) else 0
        for m, c in zip(means, result.cells)
    ]
    xs = np.arange(len(result.cells))
    ax.bar(xs, means, color="C0", alpha=0.7)
    ax.errorbar(xs, means, yerr=[lo, hi], fmt="none", ecolor="k", capsize=4)
    for x, c in zip(xs, result.cells):
        accs = [
            100 * r["final_test_acc"]
            for r in result.rows
            if all(r[a] == c[a] for a in axes) and not math.isnan(r["final_test_acc"])
        ]
        ax.plot([x] * len(accs), accs, "k.", ms=4)
    ax.set_xticks(
        xs,
        labels,
        rotation=30 if len(labels) > 3 else 0,
        ha="right" if len(labels) > 3 else "center",
        fontsize=8,
    )
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        "test accuracy: mean over seeds (bars), min–max (whiskers), each seed (dots)\n"
        "a bar at 0: every seed diverged",
        fontsize=10,
    )
    save_figure(fig, out / "summary.png")

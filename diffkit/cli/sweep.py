"""``diffkit sweep train``: the training command over a grid of settings and seeds.

Each training flag takes a comma-separated list (``--lr 0.01,0.03,0.1``); every
combination is trained from each of ``--seeds`` (``0-4`` or ``0,2,7``) as an
independent task on ``--workers`` processes or a Dask cluster (``--dask``). Every
configuration is checked before any run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .base import UsageError, add_executor_flags, executor_from_args, tasks_failed_message
from .train import FIELDS, add_training_flags

_TYPES = {
    "lr": float,
    "momentum": float,
    "weight_decay": float,
    "epochs": int,
    "batch_size": int,
    "augment": int,
    "train_limit": int,
    "test_limit": int,
}
_NOT_GRID = ("out", "allow_change", "seed", "data_dir")


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,7"`` -> [0, 2, 7]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                lo, hi = part.split("-", 1)
                if int(hi) < int(lo):
                    raise ValueError
                seeds.extend(range(int(lo), int(hi) + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise UsageError(f"--seeds: expected e.g. 0-4 or 0,2,7, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise UsageError(f"--seeds: expected non-negative seeds, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds: {text!r} repeats a seed")
    return seeds


def _values(name: str, text: str) -> list:
    flag = "--" + name.replace("_", "-")
    kind = _TYPES.get(name, str)
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(kind(part))
        except ValueError:
            raise UsageError(f"{flag}: {part!r} is not a {kind.__name__}") from None
    if not out:
        raise UsageError(f"{flag}: no values in {text!r}")
    if len(set(out)) != len(out):
        raise UsageError(f"{flag}: {text!r} repeats a value")
    return out


def run(args) -> int:
    from ..tasks import TasksFailed
    from ..train.config import ConfigError
    from ..train.run import check_output, output_lock
    from ..train.sweep import grid, sweep

    if args.what != "train":
        raise UsageError(f"sweep: unknown sweep {args.what!r}; known: train")
    base, axes = {}, {}
    for name in FIELDS:
        if name in _NOT_GRID:
            continue
        text = getattr(args, name, None)
        if text is None:
            continue
        values = _values(name, str(text))
        if len(values) == 1:
            base[name] = values[0]
        else:
            axes[name] = values
    if args.data_dir:
        base["data_dir"] = args.data_dir
    if args.batchnorm is not None:
        if "norm" in base or "norm" in axes:
            raise UsageError("--batchnorm: give either --batchnorm or --norm")
        if args.batchnorm == "both":
            axes["norm"] = ["none", "batch"]
        else:
            base["norm"] = "batch" if args.batchnorm == "yes" else "none"
    seeds = parse_seeds(args.seeds)
    try:
        configs = grid(base, axes, seeds)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    if len(configs) > 10_000:
        raise UsageError(f"sweep: {len(configs)} runs; at most 10000 in one sweep")
    out = Path(args.out)
    try:
        check_output(out)
        with output_lock(out), executor_from_args(args) as ex:
            print(
                f"sweep: {len(configs)} runs ({len(configs) // len(seeds)} settings × "
                f"{len(seeds)} seeds) into {out}",
                flush=True,
            )
            try:
                result = sweep(configs, list(axes), ex, out, progress=_progress())
            except TasksFailed as err:
                print(f"error: sweep: {tasks_failed_message(err, out / '.tasks')}", file=sys.stderr)
                return 1
    except ConfigError as err:
        raise UsageError(str(err)) from None
    best = max(
        (c for c in result.cells if c["acc_mean"] == c["acc_mean"]),
        key=lambda c: c["acc_mean"],
        default=None,
    )
    summary = (
        f"best mean test accuracy {100 * best['acc_mean']:.2f}%"
        + (f" ({', '.join(f'{a}={best[a]}' for a in axes)})" if axes else "")
        if best
        else "every run diverged"
    )
    print(f"sweep: {summary}; wrote {out}/runs.csv, summary.md, summary.png")
    return 0


def _progress():
    """A bar on a terminal; elsewhere (a log file, a cluster job) a line at every tenth of
    the tasks."""
    if sys.stderr.isatty():
        return True
    shown = [-1]

    def report(done: int, total: int) -> None:
        step = done * 10 // max(total, 1)
        if step > shown[0] and done:
            shown[0] = step
            print(f"sweep: {done}/{total} runs done", file=sys.stderr, flush=True)

    return report


def register(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="train over a grid of settings and seeds, in parallel",
        description="Each training flag takes a comma-separated list; every combination "
        "is trained from each seed.",
    )
    p.add_argument("what", choices=("train",), help="what to sweep")
    add_training_flags(p, grid=True)
    p.add_argument("--seeds", default="0", help="seeds per setting: 0-4 or 0,2,7")
    p.add_argument("--out", default="runs/sweep", help="output directory")
    add_executor_flags(p)
    p.set_defaults(run=run)

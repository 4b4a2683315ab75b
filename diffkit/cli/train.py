"""``diffkit train`` and ``diffkit evaluate``: flags into a TrainConfig, then one call.

Every setting is checked before anything is written; bad flags, unusable output
directories, missing or corrupt data and checkpoints end with status 2 and one line
naming the problem; a run that diverges or cannot write its files ends with status 1
and one line naming the last good checkpoint.
"""

from __future__ import annotations

import sys

from .base import UsageError

FIELDS = (
    "model",
    "dataset",
    "data_dir",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "epochs",
    "batch_size",
    "augment",
    "norm",
    "seed",
    "out",
    "train_limit",
    "test_limit",
    "allow_change",
    "checkpoint",
)


def config_from_args(args):
    """The :class:`TrainConfig` the flags describe."""
    from ..train.config import ConfigError, TrainConfig

    values = {name: getattr(args, name) for name in FIELDS}
    if args.batchnorm:
        if values["norm"] not in (None, "batch"):
            raise UsageError(f"--batchnorm contradicts --norm {values['norm']}")
        values["norm"] = "batch"
    values = {k: v for k, v in values.items() if v is not None}
    if "out" not in values:
        values["out"] = f"runs/{values.get('model', 'lenet5')}-{values.get('dataset', 'digits')}"
    try:
        return TrainConfig(**values)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def run_train(args) -> int:
    from ..train.checkpoint import CheckpointError
    from ..train.config import ConfigError
    from ..train.data import DataError
    from ..train.run import run

    config = config_from_args(args)
    bar = True if args.progress else None
    try:
        result = run(config, resume=args.resume, progress=not args.quiet, bar=bar)
    except (ConfigError, DataError, CheckpointError) as err:
        raise UsageError(str(err)) from None
    except ValueError as err:  # a model that cannot take the data (batch sizes, shapes)
        raise UsageError(str(err)) from None
    if result.diverged or result.failed:
        out = f"{config.out}/checkpoint.npz"
        if result.diverged:
            print(
                f"error: training stopped: {result.diverged}; the last good checkpoint is "
                f"{out if result.history else 'none (no epoch finished)'}",
                file=sys.stderr,
            )
        else:
            print(f"error: training stopped: {result.failed}", file=sys.stderr)
        return 1
    h = result.history[-1]
    print(
        f"final test accuracy {100 * h['test_acc']:.2f}% after {h['epoch']} epochs "
        f"({result.seconds:.1f} s); wrote {config.out}/checkpoint.npz, history.json, "
        f"history.csv, curves.png"
    )
    return 0


def run_evaluate(args) -> int:
    from ..train.checkpoint import CheckpointError, load_checkpoint
    from ..train.config import ConfigError, TrainConfig
    from ..train.data import DataError
    from ..train.loop import evaluate_model
    from ..train.run import build_model, load_data

    try:
        ckpt = load_checkpoint(args.checkpoint)
        saved = dict(ckpt["config"])
        if args.data_dir:
            saved["data_dir"] = args.data_dir
        config = TrainConfig.from_dict(saved)
        model = build_model(config)
        load_checkpoint(args.checkpoint, model)
        _, test = load_data(config)
    except (CheckpointError, ConfigError, DataError, TypeError) as err:
        raise UsageError(f"{args.checkpoint}: {err}" if isinstance(err, TypeError) else str(err))
    loss, acc = evaluate_model(model, test)
    print(
        f"{args.checkpoint}: {config.model} on {config.dataset}, epoch {ckpt['epoch']}: "
        f"test loss {loss:.4f}, test accuracy {100 * acc:.2f}% ({len(test)} images)"
    )
    return 0


def add_training_flags(p, grid: bool = False) -> None:
    """The flags of one training run (``grid``: lists allowed, for sweeps)."""
    import dataclasses

    from ..train.config import DATASETS, MODELS, NORMS, OPTIMIZERS, SCHEDULES, TrainConfig

    def kind(t):
        return str if grid else t

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}

    def d(name):  # the configuration's own default, so the help cannot drift from it
        return f"(default {defaults[name]})"

    p.add_argument(
        "--model", choices=None if grid else MODELS, help=f"{' | '.join(MODELS)} (default lenet5)"
    )
    p.add_argument(
        "--dataset",
        choices=None if grid else DATASETS,
        help=f"{' | '.join(DATASETS)} {d('dataset')}; mnist-small is bundled",
    )
    p.add_argument("--data-dir", help="directory of the IDX files (mnist, fashion-mnist)")
    p.add_argument(
        "--optimizer",
        choices=None if grid else OPTIMIZERS,
        help=f"{' | '.join(OPTIMIZERS)} {d('optimizer')}",
    )
    p.add_argument(
        "--lr",
        type=kind(float),
        help="learning rate (default 0.05 for sgd, 0.001 for adam and adamw)",
    )
    p.add_argument("--momentum", type=kind(float), help=f"SGD momentum {d('momentum')}")
    p.add_argument(
        "--weight-decay",
        type=kind(float),
        help="default 5e-4 for sgd, 0 for adam, 0.01 for adamw, 1e-4 for newton",
    )
    p.add_argument(
        "--schedule",
        choices=None if grid else SCHEDULES,
        help=f"{' | '.join(SCHEDULES)} {d('schedule')}",
    )
    p.add_argument("--epochs", type=kind(int), help=f"epochs; Newton: iterations {d('epochs')}")
    p.add_argument("--batch-size", type=kind(int), help=f"minibatch size {d('batch_size')}")
    p.add_argument(
        "--augment",
        type=kind(int),
        help="random shifts of up to this many pixels (default 2 for lenet5 on "
        "the digits, else 0: shifts would ruin 8x8 inputs)",
    )
    p.add_argument(
        "--norm",
        choices=None if grid else NORMS,
        help=f"LeNet-5's normalization: {' | '.join(NORMS)} {d('norm')}",
    )
    if grid:
        p.add_argument(
            "--batchnorm",
            choices=("yes", "no", "both"),
            help="LeNet-5 with batch normalization, without, or both",
        )
    else:
        p.add_argument("--batchnorm", action="store_true", help="the same as --norm batch")
    p.add_argument(
        "--seed", type=kind(int), help=f"seeds initialisation, shuffle, shifts {d('seed')}"
    )
    if not grid:  # the same results with or without: nothing to sweep over
        p.add_argument(
            "--checkpoint",
            type=int,
            metavar="K",
            help="run the model's layers in K checkpointed segments: less memory, the "
            "same gradients (default 0: none)",
        )
    p.add_argument("--train-limit", type=kind(int), help="use only the first N training images")
    p.add_argument("--test-limit", type=kind(int), help="use only the first N test images")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on the reverse-mode backend")
    add_training_flags(p)
    p.add_argument("--out", help="output directory (default runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument(
        "--allow-change",
        metavar="lr,epochs",
        help="on --resume, let these settings differ from the checkpoint's",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but the result")
    p.add_argument(
        "--progress",
        action="store_true",
        help="show a progress bar even when stderr is not a terminal",
    )
    p.set_defaults(run=run_train)

    e = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data-dir", help="where the IDX files are now (mnist, fashion-mnist)")
    e.set_defaults(run=run_evaluate)

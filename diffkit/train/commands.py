"""``diffkit train`` and ``diffkit evaluate``.

Every flag is checked before anything is written; bad flags, missing or corrupt
data and checkpoints end with status 2 and one line naming the problem.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..cli import UsageError, subcommand
from .checkpoint import CheckpointError, load_checkpoint
from .data import DataError, load_digits, load_idx_dataset

__all__ = ["build_model", "load_data", "train_newton"]

MODELS = ("lenet5", "mlp", "logreg")
DATASETS = ("digits", "mnist", "fashion-mnist")


def build_model(config: dict):
    """The model a config describes (as stored in checkpoints)."""
    from ..nn import MLP, LeNet5, LogisticRegression, manual_seed

    manual_seed(config.get("seed", 0))
    dtype = np.dtype(config.get("dtype", "float32"))
    kind = config["model"]
    if kind == "lenet5":
        return LeNet5(
            num_classes=10,
            in_channels=1,
            input_size=config["input_size"],
            batchnorm=config.get("batchnorm", False),
            dtype=dtype,
        )
    features = config["input_size"] ** 2
    if kind == "mlp":
        return MLP([features, 64, 10], activation="relu", dtype=dtype)
    if kind == "logreg":
        return LogisticRegression(features, 10, dtype=dtype)
    raise UsageError(f"unknown model {kind!r}")


def load_data(config: dict):
    """(train, test) for a config: digits resized to the model's input, or IDX files."""
    name, size = config["dataset"], config["input_size"]
    dtype = np.dtype(config.get("dtype", "float32"))
    if name == "digits":
        return load_digits(size=size, dtype=dtype)
    if not config.get("data_dir"):
        raise UsageError(
            f"--dataset {name} needs --data-dir pointing at its IDX files (nothing is downloaded)"
        )
    return load_idx_dataset(
        config["data_dir"], name, dtype=dtype, size=None if size == 28 else size
    )


def train_newton(
    model, train, test, max_iter: int = 10, weight_decay: float = 1e-4, progress: bool = True
):
    """Full-batch damped Newton on the mean cross-entropy (+ weight_decay/2 |θ|²), with the
    Hessian from reverse mode (forward over reverse). For models of at most a few
    thousand parameters."""
    from .. import differentiators as D
    from ..ir.node import variable
    from ..nn.losses import CrossEntropyLoss
    from ..ops.reduce import sum as dsum
    from .data import one_hot
    from .optim import newton

    params = dict(model.named_parameters())
    size = sum(p.size for p in params.values())
    if size > 5000:
        raise UsageError(
            f"--optimizer newton: the model has {size} parameters; Newton's method "
            f"forms the Hessian and is meant for models of at most 5000"
        )
    x = variable("input", train.images.shape)
    y = variable("target", (len(train), train.num_classes))
    loss = CrossEntropyLoss()(model(x), y)
    for name, p in params.items():
        loss = loss + 0.5 * weight_decay * dsum(variable(name, p.shape) ** 2)
    names = list(params)
    shapes = [params[n].shape for n in names]
    splits = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]
    data = {
        "input": train.images.astype(np.float64),
        "target": one_hot(train.labels, train.num_classes, np.float64),
    }

    def unflat(theta):
        return {n: part.reshape(s) for n, part, s in zip(names, np.split(theta, splits), shapes)}

    rev = D.ReverseMode()
    from ..ir.schedule import compile

    f_prog = compile(loss)

    def f(theta):
        return float(f_prog({**data, **unflat(theta)}))

    def g(theta):
        grads = rev.gradient(loss, {**data, **unflat(theta)}, wrt=names)
        return np.concatenate([np.ravel(grads[n]) for n in names])

    def h(theta):
        return rev.hessian(loss, {**data, **unflat(theta)}, wrt=names)

    theta0 = np.concatenate([params[n].astype(np.float64).ravel() for n in names])
    result = newton(f, g, h, theta0, max_iter=max_iter)
    for n, v in unflat(result.x).items():
        params[n][...] = v
    if progress:
        for i, (lv, gn) in enumerate(zip(result.losses, result.grad_norms)):
            print(f"newton iteration {i:2d}  loss {lv:.12f}  |grad| {gn:.3e}")
    return result


def _validate(args) -> dict:
    if args.model not in MODELS:
        raise UsageError(f"--model: unknown model {args.model!r}; choose from {', '.join(MODELS)}")
    if args.dataset not in DATASETS:
        raise UsageError(
            f"--dataset: unknown dataset {args.dataset!r}; choose from {', '.join(DATASETS)}"
        )
    if args.epochs < 1:
        raise UsageError(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise UsageError(f"--lr must be a positive number, got {args.lr}")
    if not 0 <= args.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.weight_decay < 0:
        raise UsageError(f"--weight-decay must be non-negative, got {args.weight_decay}")
    if args.augment is None:  # shifts suit LeNet-5's 32x32 inputs, not 8x8 digits
        args.augment = 2 if args.model == "lenet5" else 0
    if args.augment < 0:
        raise UsageError(f"--augment must be a non-negative number of pixels, got {args.augment}")
    if args.batchnorm and args.model != "lenet5":
        raise UsageError("--batchnorm applies to --model lenet5 only")
    if args.optimizer == "newton" and args.model == "lenet5":
        raise UsageError(
            "--optimizer newton: LeNet-5 is too large to form its Hessian; use "
            "--model logreg or mlp"
        )
    if args.data_dir and not Path(args.data_dir).is_dir():
        raise UsageError(f"--data-dir {args.data_dir}: no such directory")
    input_size = 32 if args.model == "lenet5" else (8 if args.dataset == "digits" else 28)
    if args.model == "lenet5" and args.dataset != "digits":
        input_size = 28
    return {
        "model": args.model,
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "input_size": input_size,
        "batchnorm": bool(args.batchnorm),
        "seed": args.seed,
        "dtype": "float64" if args.optimizer == "newton" else "float32",
        "title": f"{args.model} on {args.dataset}",
    }


def _run_train(args) -> int:
    from .loop import fit
    from .optim import SGD, CosineLR, StepLR

    config = _validate(args)
    out = Path(args.out or f"runs/{args.model}-{args.dataset}")
    ckpt = out / "checkpoint.npz"
    if args.resume and not ckpt.exists():
        raise UsageError(f"--resume: {ckpt} does not exist")
    if not args.resume and ckpt.exists():
        raise UsageError(
            f"--out {out} already holds a checkpoint; pass --resume to continue "
            f"it or choose another --out"
        )
    try:
        train, test = load_data(config)
    except DataError as err:
        raise UsageError(str(err)) from None
    model = build_model(config)
    if args.resume:
        try:
            saved = load_checkpoint(ckpt)
        except CheckpointError as err:
            raise UsageError(str(err)) from None
        keys = ("model", "dataset", "input_size", "batchnorm")
        if any(saved["config"].get(k) != config[k] for k in keys):
            was = ", ".join(f"{k}={saved['config'].get(k)}" for k in keys)
            raise UsageError(
                f"--resume: {ckpt} was saved from another architecture or dataset ({was})"
            )
    print(
        f"training {args.model} on {args.dataset}: {len(train)} train / {len(test)} test "
        f"images, {model.num_parameters()} parameters, output in {out}"
    )
    if args.optimizer == "newton":
        from .loop import evaluate_model

        result = train_newton(model, train, test, max_iter=args.epochs, progress=not args.quiet)
        loss, acc = evaluate_model(model, test)
        print(f"test loss {loss:.4f}, test accuracy {100 * acc:.2f}%")
        return 0
    optimizer = SGD(
        model.named_parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay
    )
    schedule = {"cosine": CosineLR(), "step": StepLR(max(1, args.epochs // 3)), "none": None}[
        args.schedule
    ]
    try:
        result = fit(
            model,
            train,
            test,
            optimizer,
            args.epochs,
            args.batch_size,
            seed=args.seed,
            out=out,
            resume=args.resume,
            schedule=schedule,
            progress=not args.quiet,
            config=config,
            augment=args.augment,
        )
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    if result.diverged:
        print(
            f"error: training stopped: {result.diverged}; the last good checkpoint is "
            f"{ckpt if ckpt.exists() else 'none (no epoch finished)'}"
        )
        return 1
    h = result.history[-1]
    print(
        f"final test accuracy {100 * h['test_acc']:.2f}% after {h['epoch']} epochs "
        f"({result.seconds:.1f} s); wrote {out}/history.json, history.csv, curves.png, "
        f"checkpoint.npz"
    )
    return 0


def _run_evaluate(args) -> int:
    from .loop import evaluate_model

    try:
        ckpt = load_checkpoint(args.checkpoint)
    except CheckpointError as err:
        raise UsageError(str(err)) from None
    config = dict(ckpt["config"])
    if args.data_dir:
        config["data_dir"] = args.data_dir
    try:
        model = build_model(config)
        load_checkpoint(args.checkpoint, model)
        _, test = load_data(config)
    except (CheckpointError, DataError, KeyError) as err:
        raise UsageError(str(err)) from None
    loss, acc = evaluate_model(model, test)
    print(
        f"{args.checkpoint}: {config['model']} on {config['dataset']}, epoch {ckpt['epoch']}: "
        f"test loss {loss:.4f}, test accuracy {100 * acc:.2f}% ({len(test)} images)"
    )
    return 0


@subcommand
def _train(sub) -> None:
    p = sub.add_parser("train", help="train a model on the reverse-mode backend")
    p.add_argument("--model", default="lenet5", help="lenet5 | mlp | logreg")
    p.add_argument("--dataset", default="digits", help="digits | mnist | fashion-mnist")
    p.add_argument("--data-dir", help="directory of the IDX files (mnist, fashion-mnist)")
    p.add_argument("--epochs", type=int, default=30, help="epochs (Newton: iterations)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=("cosine", "step", "none"), default="cosine")
    p.add_argument(
        "--augment",
        type=int,
        default=None,
        help="random shifts of up to this many pixels (0: none; default 2 for lenet5, "
        "0 for mlp and logreg, whose 8x8 inputs shifts would ruin)",
    )
    p.add_argument("--optimizer", choices=("sgd", "newton"), default="sgd")
    p.add_argument("--batchnorm", action="store_true", help="LeNet-5 with batch normalization")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output directory (default runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


@subcommand
def _evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data-dir", help="where the IDX files are now (mnist, fashion-mnist)")
    p.set_defaults(run=_run_evaluate)

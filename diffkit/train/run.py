"""One call runs one training: :func:`run` carries out a :class:`TrainConfig`.

``diffkit train``, the studies and sweeps all go through it, every optimizer (Newton
included) through the same loop, checkpoint and history code. Before any work it
checks the output directory (creatable, writable, not a file), takes a lock there
(a second run into the same directory is refused), and on resume compares the
configuration with the checkpoint's, refusing any changed setting by its flag.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from .checkpoint import load_checkpoint
from .config import NEWTON_MAX_PARAMETERS, ConfigError, TrainConfig, flag
from .data import load_digits, load_idx_dataset, load_mnist_small, stratified_split
from .loop import FitResult, LoopOptions, fit, remove_stale_temporaries

__all__ = ["run", "build_model", "load_data", "output_lock", "OutputBusy"]


class OutputBusy(ConfigError):
    """Another run holds the output directory's lock."""


def build_model(config: TrainConfig):
    """The model a configuration describes, initialised from its seed, running its layers
    in ``config.checkpoint`` checkpointed segments if set.

    Args:
        config: the configuration.

    Returns:
        Module: the model.

    >>> from diffkit import train
    >>> train.build_model(train.TrainConfig(model="logreg")).num_parameters()  # 64 pixels · 10 + 10
    650
    """
    from .. import nn
    from ..nn.checkpoint import with_checkpoints

    nn.manual_seed(config.seed)
    dtype, size = np.dtype(config.dtype), config.input_size
    norm = None if config.norm == "none" else config.norm
    builders = {  # the one place a model of ``--model`` is made
        "lenet5": lambda: nn.LeNet5(input_size=size, norm=norm, dtype=dtype),
        "vgg": lambda: nn.VGG(input_size=size, dtype=dtype),
        "resnet": lambda: nn.ResNet(dtype=dtype),
        "mlp": lambda: nn.MLP([size * size, 64, 10], activation="relu", dtype=dtype),
        "logreg": lambda: nn.LogisticRegression(size * size, 10, dtype=dtype),
    }
    model = builders[config.model]()
    try:
        return with_checkpoints(model, config.checkpoint)
    except ValueError as err:
        reason = str(err).removeprefix("with_checkpoints: ")
        raise ConfigError(f"--checkpoint {config.checkpoint}: {reason}") from None


def load_data(config: TrainConfig):
    """(train, test) of a configuration, cut to ``train_limit``/``test_limit``.

    Args:
        config: the configuration.

    Returns:
        ``(train, test)`` Datasets.

    >>> from diffkit import train
    >>> train_set, test_set = train.load_data(train.TrainConfig(train_limit=100, test_limit=50))
    >>> len(train_set), len(test_set), train_set.num_classes
    (100, 50, 10)
    """
    dtype = np.dtype(config.dtype)
    if config.dataset == "digits":
        train, test = load_digits(size=config.input_size, dtype=dtype)
    elif config.dataset == "mnist-small":
        train, test = load_mnist_small(dtype=dtype)
    else:
        train, test = load_idx_dataset(config.data_dir, config.dataset, dtype=dtype)
    return _limit(train, config.train_limit), _limit(test, config.test_limit)


def _limit(data, n: int | None):
    """The first ``n`` images of a stratified sample (each class in proportion; the
    bundled MNIST subset is stored by class, so its first ``n`` would hold one or two)."""
    if not n or n >= len(data):
        return data
    return data.subset(stratified_split(data.labels, n, seed=0)[1])


def build_optimizer(config: TrainConfig, model):
    from .optim import SGD, Adam, AdamW, Newton

    if config.optimizer == "sgd":
        return SGD(model, config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return Adam(model, config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return AdamW(model, config.lr, weight_decay=config.weight_decay)
    size = model.num_parameters()
    if size > NEWTON_MAX_PARAMETERS:
        raise ConfigError(
            f"--optimizer newton: the model has {size} parameters; Newton's method forms "
            f"the Hessian and is meant for models of at most {NEWTON_MAX_PARAMETERS}"
        )
    return Newton(model, weight_decay=config.weight_decay)


def build_schedule(config: TrainConfig):
    from .optim import CosineLR, StepLR

    if config.schedule == "cosine":
        return CosineLR()
    if config.schedule == "step":
        return StepLR(max(1, config.epochs // 3))
    return None


def check_output(out: Path) -> Path:
    """Create ``out`` if needed; refuse a path that is a file or cannot be written."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write there ({err.strerror or err})") from None
    return out


@contextlib.contextmanager
def output_lock(out: Path):
    """Hold ``out/.lock`` (an advisory lock on a file holding the pid) for the block;
    a second holder is refused with :class:`OutputBusy`."""
    import fcntl

    path = out / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write there ({err.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise OutputBusy(
                f"--out {out}: another training run (pid {holder}) is writing there; "
                f"wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    finally:
        os.close(fd)


def _check_resume(config: TrainConfig, ckpt_path: Path, resume: bool) -> None:
    exists = ckpt_path.exists()
    if resume and not exists:
        raise ConfigError(f"--resume: {ckpt_path} does not exist")
    if not resume and exists:
        raise ConfigError(
            f"--out {ckpt_path.parent} already holds a checkpoint; pass --resume to continue "
            f"it or choose another --out"
        )
    if not resume:
        return
    saved = load_checkpoint(ckpt_path)["config"]
    first = ("model", "dataset", "norm", "optimizer")  # what the checkpoint's arrays depend on
    diffs = sorted(
        config.differences(saved), key=lambda d: first.index(d[0]) if d[0] in first else 9
    )
    for name, was, now in diffs:
        if name in config.allow_change:
            continue
        if name == "norm":
            raise ConfigError(
                f"--resume: {ckpt_path} was trained with --norm {was} (now {now}); pass "
                f"--norm {was}"
            )
        allowed = f", or --allow-change {name}" if name in ("lr", "epochs") else ""
        raise ConfigError(
            f"--resume: {flag(name)} was {was} in {ckpt_path}, now {now}; pass "
            f"{flag(name)} {was}{allowed}"
        )


def run(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    bar: bool | None = None,
    log=print,
) -> FitResult:
    """Train as ``config`` says; with ``resume``, continue its checkpoint.

    Everything that can be checked is checked before any work: the configuration (on
    construction), the output directory, the lock, the checkpoint and, on resume, that
    no setting changed (``config.allow_change`` may let ``lr`` and ``epochs`` change).

    Raises:
        ConfigError: the configuration, output directory or resume does not fit.
        DataError: data files missing or corrupt.
        CheckpointError: the checkpoint is corrupt or from another architecture.

    Returns:
        The :class:`FitResult`; ``result.ok`` is False if the loss diverged or a file
        could not be written (the last good checkpoint is kept either way).

    Args:
        config: the run's configuration.
        resume: continue the checkpoint in ``config.out``.
        progress: print one line per epoch.
        bar: show a progress bar (None: when the output is a terminal).
        log: the function that prints.

    Returns:
        FitResult: the history and how the run ended.

    >>> import tempfile
    >>> from diffkit import train
    >>> with tempfile.TemporaryDirectory() as d:
    ...     config = train.TrainConfig(model="logreg", epochs=1, train_limit=64, test_limit=32,
    ...                                out=d)
    ...     result = train.run(config, progress=False)
    >>> [h["epoch"] for h in result.history], result.train_size, result.test_size
    ([1], 64, 32)
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"run: expected a TrainConfig, got {type(config).__name__}")
    out = Path(config.out) if config.out else None
    if out is None and resume:
        raise ConfigError("--resume needs --out, the directory holding the checkpoint")
    model = build_model(config)  # refuses a --checkpoint the model cannot take
    if out is None:
        return _train(config, model, None, False, progress, bar, log)
    check_output(out)
    with output_lock(out):
        _check_resume(config, out / "checkpoint.npz", resume)
        stale = remove_stale_temporaries(out)
        if stale and progress:
            log(f"note: removed {len(stale)} temporary file(s) left by an interrupted run")
        return _train(config, model, out, resume, progress, bar, log)


def _train(config, model, out, resume, progress, bar, log) -> FitResult:
    train, test = load_data(config)
    optimizer = build_optimizer(config, model)
    if progress:
        log(
            f"training {config.title}: {len(train)} train / {len(test)} test images, "
            f"{model.num_parameters()} parameters, {config.optimizer}"
            + (f", output in {out}" if out else "")
        )
    options = LoopOptions.from_config(
        config, out=out, resume=resume, progress=progress, bar=bar, log=log
    )
    return fit(model, train, test, optimizer, options)

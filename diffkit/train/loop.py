"""The training loop on reverse mode: one step graph, built once, run on every minibatch.

The step graph holds the loss, the logits, the gradient of every parameter
(reverse mode) and the batch statistics batch normalization needs; it is built
once per batch size and run on every minibatch. After each epoch the model is
evaluated in eval mode on the test set. History (JSON, CSV) and checkpoints are
written atomically; a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..differentiators.reverse import vjp_graph
from ..io import atomic_write_text
from ..ir.node import const, variable
from ..ir.schedule import compile
from ..nn.losses import CrossEntropyLoss
from ..nn.module import Module
from .checkpoint import load_checkpoint, save_checkpoint
from .data import Dataset, batches, one_hot, random_shift

__all__ = [
    "fit",
    "FitResult",
    "StepGraph",
    "evaluate_model",
    "TrainingDiverged",
    "plot_history",
    "remove_stale_temporaries",
    "OUTPUT_FILES",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class StepGraph:
    """The compiled training step of ``model`` for one input shape.

    Calling it with a batch returns the loss, the logits, the gradients (name ->
    array) and the batch statistics of the normalization layers.
    """

    def __init__(
        self, model: Module, input_shape: tuple, num_classes: int, loss_fn: Callable | None = None
    ):
        loss_fn = loss_fn or CrossEntropyLoss()
        x = variable("input", input_shape)
        y = variable("target", (input_shape[0], num_classes))
        logits = model(x)
        loss = loss_fn(logits, y)
        params = dict(model.named_parameters())
        self.names = list(params)
        grads = vjp_graph([loss], [const(1.0)], [variable(n, p.shape) for n, p in params.items()])
        stats = model.batch_statistics()
        self.stat_layers = [(mod, count) for mod, _, _, count in stats]
        outputs = [loss, logits] + grads + [node for _, m, v, _ in stats for node in (m, v)]
        self.program = compile(outputs)
        self.size = len(self.program)

    def __call__(self, model: Module, images: np.ndarray, targets: np.ndarray):
        at = {**model.inputs(), "input": images, "target": targets}
        out = self.program(at, strict=False)
        loss, logits = out[0], out[1]
        k = len(self.names)
        grads = dict(zip(self.names, out[2 : 2 + k]))
        flat = out[2 + k :]
        stats = [(flat[2 * i], flat[2 * i + 1]) for i in range(len(self.stat_layers))]
        return float(loss), logits, grads, stats

    def update_statistics(self, stats: list) -> None:
        """Fold the batch statistics of one run into the running averages."""
        for (mod, count), (mean, var) in zip(self.stat_layers, stats):
            mod.update_running(mean, var, count)


def evaluate_model(
    model: Module, data: Dataset, batch_size: int = 512, cache: dict | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode on ``data``."""
    was_training = model.training
    model.eval()
    cache = {} if cache is None else cache
    total_loss, correct = 0.0, 0
    try:
        for idx in batches(len(data), batch_size, None):
            shape = (len(idx),) + data.images.shape[1:]
            key = ("eval", shape)
            if key not in cache:
                x = variable("input", shape)
                logits = model(x)
                from ..ops.reduce import log_softmax

                cache[key] = compile([logits, log_softmax(logits, 1)])
            logits, logp = cache[key]({**model.inputs(), "input": data.images[idx]}, strict=False)
            labels = data.labels[idx]
            total_loss += -float(np.sum(logp[np.arange(len(idx)), labels]))
            correct += int(np.sum(np.argmax(logits, 1) == labels))
    finally:
        model.train(was_training)
    return total_loss / len(data), correct / len(data)


@dataclass
class FitResult:
    """History (one dict per epoch), the final test accuracy, and how the run ended.

    ``diverged`` names the step where the loss stopped being finite, ``failed`` a file
    that could not be written; either way the last good checkpoint is kept. ``notes``
    are what the run chose on its own (such as a dropped last batch); ``model`` is the
    trained model.
    """

    history: list = field(default_factory=list)
    diverged: str | None = None
    failed: str | None = None
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    model: Module | None = None
    train_size: int = 0
    test_size: int = 0

    @property
    def final_test_accuracy(self) -> float:
        return self.history[-1]["test_acc"] if self.history else float("nan")

    @property
    def ok(self) -> bool:
        return not (self.diverged or self.failed)


OUTPUT_FILES = ("checkpoint.npz", "history.json", "history.csv", "curves.png")


def _write_history(out: Path, history: list) -> None:
    atomic_write_text(out / "history.json", json.dumps(history, indent=1))
    buf = io.StringIO()
    if history:
        writer = csv.DictWriter(buf, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(out / "history.csv", buf.getvalue())


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete the temporary files a killed run left in ``out`` (``.NAME.*.tmp`` of the
    files a run writes); returns them. Call only while holding the directory's lock."""
    removed = []
    for name in OUTPUT_FILES:
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def plot_history(history: list, path: Path, title: str = "") -> None:
    """Loss and accuracy curves per epoch (PNG, written atomically)."""
    from ..viz.plotting import new_figure, save_figure

    fig, (a, b) = new_figure(1, 2, figsize=(10, 4))
    ep = [h["epoch"] for h in history]
    a.plot(ep, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(ep, [h["test_loss"] for h in history], "s-", label="test")
    a.set_xlabel("epoch")
    a.set_ylabel("cross-entropy loss")
    a.set_yscale("log")
    a.legend()
    b.plot(ep, [100 * h["train_acc"] for h in history], "o-", label="train")
    b.plot(ep, [100 * h["test_acc"] for h in history], "s-", label="test")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy (%)")
    b.legend()
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def _show_bar(progress: bool, bar: bool | None) -> bool:
    if not progress:
        return False
    if bar is not None:
        return bar
    return sys.stderr.isatty()


def fit(
    model: Module,
    train: Dataset,
    test: Dataset,
    optimizer,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    out: str | Path | None = None,
    resume: bool = False,
    schedule: Callable | None = None,
    progress: bool = True,
    config: dict | None = None,
    plot: bool = True,
    augment: int = 0,
    bar: bool | None = None,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train ``model`` on reverse-mode gradients.

    Args:
        model: a module producing logits (N, num_classes).
        train, test: datasets.
        optimizer: SGD, Adam or AdamW (minibatch steps), or Newton (one full-batch
            iteration per epoch), over the model's parameters.
        epochs: number of passes over ``train``.
        batch_size: 1 is stochastic, ``len(train)`` full-batch gradient descent. A last
            batch smaller than the model can train on (one sample, with batch
            normalization) is left out of that epoch, and the log says so.
        seed: seeds the minibatch shuffle and the augmentation.
        out: directory for checkpoint.npz, history.json/.csv and curves.png. After each
            epoch the checkpoint is written, then the history, so the history never
            runs ahead of the checkpoint.
        resume: continue from ``out/checkpoint.npz``.
        schedule: ``(base_lr, epoch, epochs) -> lr``.
        progress: print a line per epoch (and the notes); False is silent.
        config: stored in checkpoints (model and data description).
        augment: if positive, shift each training image by up to this many pixels.
        bar: show a progress bar (default: when ``progress`` and stderr is a terminal).
        log: where the lines go.

    Returns:
        A :class:`FitResult`. A non-finite loss stops the run and names the step in
        ``diverged``; a checkpoint or history that cannot be written stops it and names
        the file in ``failed``; either way the last good checkpoint stays in place.
    """
    from tqdm.auto import tqdm

    out = Path(out) if out is not None else None
    rng = np.random.default_rng(seed)
    result = FitResult(model=model, train_size=len(train), test_size=len(test))
    say = log if progress else (lambda line: None)
    start_epoch = 0
    optimizer.bind(model)
    full_batch = getattr(optimizer, "full_batch", False)
    if resume:
        if out is None:
            raise ValueError("resume needs an output directory holding checkpoint.npz")
        ckpt = load_checkpoint(out / "checkpoint.npz", model)
        optimizer.load_state_dict(ckpt["optimizer"])
        if schedule is None:  # a learning rate changed on resume takes effect
            optimizer.lr = optimizer.base_lr
        rng.bit_generator.state = ckpt["rng"]
        result.history = ckpt["history"]
        start_epoch = ckpt["epoch"]
        if not _write_or_fail(
            result, out, lambda: _write_history(out, result.history), start_epoch
        ):
            return result
    smallest = 1 if full_batch else model.smallest_training_batch()
    if not full_batch and 0 < len(train) % batch_size < smallest:
        if len(train) < smallest:
            raise ValueError(
                f"the model needs batches of at least {smallest} samples (batch "
                f"normalization) and the training set has {len(train)}"
            )
        result.notes.append(
            f"the last batch of each epoch ({len(train) % batch_size} sample) is left out: "
            f"batch normalization needs at least {smallest}; it changes with the shuffle"
        )
        say(f"note: {result.notes[-1]}")
    graphs: dict = {}
    eval_cache: dict = {}
    model.train()
    targets_all = one_hot(train.labels, train.num_classes, model.dtype)

    show_bar = _show_bar(progress, bar)

    def minibatch_epoch(epoch):
        """One pass of minibatch steps; returns (mean loss, accuracy, samples seen)."""
        t0 = time.perf_counter()
        total, correct, seen = 0.0, 0, 0
        pbar = tqdm(
            total=len(train),
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="img",
            disable=not show_bar,
            leave=False,
        )
        try:
            for step, idx in enumerate(batches(len(train), batch_size, rng)):
                if len(idx) < smallest:
                    continue
                shape = (len(idx),) + train.images.shape[1:]
                if shape not in graphs:
                    graphs[shape] = StepGraph(model, shape, train.num_classes)
                images = train.images[idx]
                if augment:
                    images = random_shift(images, rng, augment)
                loss, logits, grads, stats = graphs[shape](model, images, targets_all[idx])
                if not math.isfinite(loss):
                    result.diverged = (
                        f"non-finite loss ({loss}) at epoch {epoch + 1}, step {step + 1}"
                    )
                    break
                optimizer.step(grads)
                graphs[shape].update_statistics(stats)
                total += loss * len(idx)
                correct += int(np.sum(np.argmax(logits, 1) == train.labels[idx]))
                seen += len(idx)
                pbar.update(len(idx))
                pbar.set_postfix(
                    loss=f"{total / seen:.4f}",
                    acc=f"{correct / seen:.3f}",
                    rate=f"{seen / (time.perf_counter() - t0):.0f}/s",
                    refresh=False,
                )
        finally:
            pbar.close()
        return total / max(seen, 1), correct / max(seen, 1), seen

    t_start = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        if schedule is not None and not full_batch:
            optimizer.lr = schedule(optimizer.base_lr, epoch, epochs)
        t0 = time.perf_counter()
        if full_batch:
            loss, _ = optimizer.epoch(model, train)
            seen = len(train)
            if not math.isfinite(loss):
                result.diverged = f"non-finite loss ({loss}) at iteration {epoch + 1}"
                break
            train_loss, train_acc = evaluate_model(model, train, cache=eval_cache)
        else:
            train_loss, train_acc, seen = minibatch_epoch(epoch)
            if result.diverged:
                break
        train_time = time.perf_counter() - t0
        test_loss, test_acc = evaluate_model(model, test, cache=eval_cache)
        result.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": optimizer.lr,
                "seconds": round(train_time, 3),
            }
        )
        h = result.history[-1]
        say(
            f"epoch {epoch + 1:3d}  train loss {h['train_loss']:.4f} acc "
            f"{100 * h['train_acc']:.2f}%  test loss {h['test_loss']:.4f} acc "
            f"{100 * h['test_acc']:.2f}%  ({train_time:.1f} s, "
            f"{seen / max(train_time, 1e-9):.0f} img/s)"
        )
        if out is not None:
            state = rng.bit_generator.state

            def write():
                save_checkpoint(
                    out / "checkpoint.npz",
                    model,
                    optimizer,
                    epoch + 1,
                    state,
                    result.history,
                    config or {},
                )
                _write_history(out, result.history)

            if not _write_or_fail(result, out, write, epoch or None):
                result.history.pop()
                break
    if result.ok and out is not None and plot and result.history:
        _write_or_fail(
            result,
            out,
            lambda: plot_history(
                result.history, out / "curves.png", title=(config or {}).get("title", "")
            ),
            result.history[-1]["epoch"],
        )
    result.seconds = time.perf_counter() - t_start
    return result


def _write_or_fail(
    result: FitResult, out: Path, write: Callable[[], None], epoch: int | None
) -> bool:
    """Run ``write``; on an OS error (disk full, permissions) record it in
    ``result.failed`` with the last good checkpoint (of ``epoch``), and return False."""
    try:
        write()
        return True
    except OSError as err:
        kept = (
            f"the last good checkpoint ({out / 'checkpoint.npz'}, epoch {epoch}) is kept"
            if epoch is not None and (out / "checkpoint.npz").exists()
            else "no checkpoint was written"
        )
        where = err.filename or out
        result.failed = f"could not write {where} ({err.strerror or err}); {kept}"
        return False

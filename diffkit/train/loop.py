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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..differentiators.reverse import vjp_graph
from ..io import atomic_write_text
from ..ir.node import const, variable
from ..ir.schedule import compile
from ..memory import retain_freed_memory
from ..nn.losses import CrossEntropyLoss
from ..nn.module import Module
from .checkpoint import load_checkpoint, save_checkpoint
from .data import Dataset, batches, one_hot, random_shift
from .optim import SGD

__all__ = ["fit", "FitResult", "StepGraph", "evaluate_model", "TrainingDiverged"]


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
        retain_freed_memory()  # each step frees what the next one allocates again
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
    """History (one dict per epoch), the final test accuracy, and how the run ended."""

    history: list = field(default_factory=list)
    diverged: str | None = None
    seconds: float = 0.0

    @property
    def final_test_accuracy(self) -> float:
        return self.history[-1]["test_acc"] if self.history else float("nan")


def _write_history(out: Path, history: list) -> None:
    atomic_write_text(out / "history.json", json.dumps(history, indent=1))
    buf = io.StringIO()
    if history:
        writer = csv.DictWriter(buf, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic_write_text(out / "history.csv", buf.getvalue())


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


def fit(
    model: Module,
    train: Dataset,
    test: Dataset,
    optimizer: SGD,
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
) -> FitResult:
    """Train ``model`` with minibatch SGD on reverse-mode gradients.

    Args:
        model: a module producing logits (N, num_classes).
        train, test: datasets.
        optimizer: an :class:`SGD` over ``model.named_parameters()``.
        epochs: number of passes over ``train``.
        batch_size: 1 is stochastic, ``len(train)`` full-batch gradient descent.
        seed: seeds the minibatch shuffle.
        out: directory for history.json/.csv, curves.png and checkpoint.npz.
        resume: continue from ``out/checkpoint.npz``.
        schedule: ``(base_lr, epoch, epochs) -> lr``.
        progress: show a tqdm bar.
        config: stored in checkpoints (model and data description).
        augment: if positive, shift each training image by up to this many pixels.

    Returns:
        A :class:`FitResult`. A non-finite loss stops the run, names the step in
        ``diverged``, and leaves the last good checkpoint in place.
    """
    from tqdm.auto import tqdm

    out = Path(out) if out is not None else None
    rng = np.random.default_rng(seed)
    result = FitResult()
    start_epoch = 0
    if resume:
        if out is None:
            raise ValueError("resume needs an output directory holding checkpoint.npz")
        ckpt = load_checkpoint(out / "checkpoint.npz", model)
        optimizer.load_state_dict(ckpt["optimizer"])
        rng.bit_generator.state = ckpt["rng"]
        result.history = ckpt["history"]
        start_epoch = ckpt["epoch"]
    optimizer.bind(model)
    graphs: dict = {}
    eval_cache: dict = {}
    model.train()
    targets_all = one_hot(train.labels, train.num_classes, model.dtype)
    t_start = time.perf_counter()
    for epoch in range(start_epoch, epochs):
        if schedule is not None:
            optimizer.lr = schedule(optimizer.base_lr, epoch, epochs)
        t0 = time.perf_counter()
        total, correct, seen = 0.0, 0, 0
        bar = tqdm(
            total=len(train),
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="img",
            disable=not progress,
            leave=False,
        )
        for step, idx in enumerate(batches(len(train), batch_size, rng)):
            shape = (len(idx),) + train.images.shape[1:]
            if shape not in graphs:
                graphs[shape] = StepGraph(model, shape, train.num_classes)
            images = train.images[idx]
            if augment:
                images = random_shift(images, rng, augment)
            loss, logits, grads, stats = graphs[shape](model, images, targets_all[idx])
            if not math.isfinite(loss):
                bar.close()
                result.diverged = f"non-finite loss ({loss}) at epoch {epoch + 1}, step {step + 1}"
                result.seconds = time.perf_counter() - t_start
                return result
            optimizer.step(grads)
            graphs[shape].update_statistics(stats)
            total += loss * len(idx)
            correct += int(np.sum(np.argmax(logits, 1) == train.labels[idx]))
            seen += len(idx)
            bar.update(len(idx))
            bar.set_postfix(
                loss=f"{total / seen:.4f}",
                acc=f"{correct / seen:.3f}",
                rate=f"{seen / (time.perf_counter() - t0):.0f}/s",
                refresh=False,
            )
        bar.close()
        train_time = time.perf_counter() - t0
        test_loss, test_acc = evaluate_model(model, test, cache=eval_cache)
        result.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": total / seen,
                "train_acc": correct / seen,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "lr": optimizer.lr,
                "seconds": round(train_time, 3),
            }
        )
        if progress:
            h = result.history[-1]
            print(
                f"epoch {epoch + 1:3d}  train loss {h['train_loss']:.4f} acc "
                f"{100 * h['train_acc']:.2f}%  test loss {h['test_loss']:.4f} acc "
                f"{100 * h['test_acc']:.2f}%  ({train_time:.1f} s, "
                f"{seen / train_time:.0f} img/s)"
            )
        if out is not None:
            _write_history(out, result.history)
            save_checkpoint(
                out / "checkpoint.npz",
                model,
                optimizer,
                epoch + 1,
                rng.bit_generator.state,
                result.history,
                config or {},
            )
    if out is not None and plot and result.history:
        plot_history(result.history, out / "curves.png", title=(config or {}).get("title", ""))
    result.seconds = time.perf_counter() - t_start
    return result

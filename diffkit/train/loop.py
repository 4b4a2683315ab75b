"""The training loop on reverse mode: one step graph, built once, run on every minibatch.

The step graph holds the loss, the logits, the gradient of every parameter
(reverse mode) and the batch statistics batch normalization needs; it is built
once per batch size and run on every minibatch. After each epoch the model is
evaluated in eval mode on the test set. History (JSON, CSV) and checkpoints are
written atomically; a resumed run continues exactly as an uninterrupted one.

:func:`fit` takes the model, the data, the optimizer and the loop's settings
(:class:`LoopOptions`) and runs a :class:`Trainer`, whose methods are the parts of a run:
the epoch loop, one epoch of minibatches, one batch step, evaluation, resume, logging and
saving.
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
    "LoopOptions",
    "Trainer",
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

    Args:
        model: the module.
        input_shape: the batch's shape (N, C, H, W).
        num_classes: the number of classes.
        loss_fn: ``(logits, labels) -> loss``; None for the mean cross-entropy.

    >>> import numpy as np
    >>> from diffkit import nn, train
    >>> images = np.random.default_rng(0).random((8, 1, 2, 2)).astype(np.float32)
    >>> data = train.Dataset(images, np.array([0, 1] * 4), 2)
    >>> model = nn.LogisticRegression(4, 2)
    >>> for _, p in model.named_parameters():
    ...     p[...] = 0  # equal logits: the loss is ln 2
    >>> step = train.StepGraph(model, (8, 1, 2, 2), 2)
    >>> sorted(step.names)  # the parameters it differentiates
    ['fc1.bias', 'fc1.weight']
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
        at = model_inputs(self.program, model, input=images, target=targets)
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


def model_inputs(program, model: Module, **values) -> dict:
    """The values of ``program``'s variables: the model's parameters, buffers and dropout
    masks that it reads, and ``values``. Only those: a buffer the graph does not read
    (batch norm's integer ``num_batches_tracked``) would count in the working dtype and
    turn a float32 step into a float64 one."""
    used = program.variables
    return {**{k: v for k, v in model.inputs().items() if k in used}, **values}


def evaluate_model(
    model: Module, data: Dataset, batch_size: int = 512, cache: dict | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode on ``data``.

    Args:
        model: the module.
        data: the dataset.
        batch_size: the evaluation batch size.
        cache: compiled graphs to reuse across calls, or None.

    Returns:
        ``(mean loss, accuracy)``.

    >>> import numpy as np
    >>> from diffkit import nn, train
    >>> images = np.random.default_rng(0).random((8, 1, 2, 2)).astype(np.float32)
    >>> data = train.Dataset(images, np.array([0, 1] * 4), 2)
    >>> model = nn.LogisticRegression(4, 2)
    >>> for _, p in model.named_parameters():
    ...     p[...] = 0  # equal logits: the loss is ln 2
    >>> loss, accuracy = train.evaluate_model(model, data)
    >>> round(loss, 6), accuracy  # ln 2; ties go to class 0, half the labels
    (0.693147, 0.5)
    """
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
            at = model_inputs(cache[key], model, input=data.images[idx])
            logits, logp = cache[key](at, strict=False)
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

    Args:
        history, diverged, failed, seconds, notes, model, train_size, test_size: the fields.

    >>> from diffkit import train
    >>> result = train.FitResult(history=[{"epoch": 1, "test_acc": 0.75}])
    >>> result.final_test_accuracy, result.ok
    (0.75, True)
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


@dataclass(frozen=True)
class LoopOptions:
    """How :func:`fit` runs: everything the loop needs besides the model, the data and the
    optimizer. :func:`diffkit.train.run` makes one from a :class:`TrainConfig`
    (:meth:`from_config`).

    Args:
        epochs: number of passes over the training set (Newton: iterations).
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
        plot: draw curves.png at the end (with ``out``).
        augment: if positive, shift each training image by up to this many pixels.
        bar: show a progress bar (default: when ``progress`` and stderr is a terminal).
        log: where the lines go.

    >>> from diffkit import train
    >>> options = train.LoopOptions(epochs=3, batch_size=32)
    >>> options.epochs, options.batch_size, options.seed
    (3, 32, 0)
    """

    epochs: int
    batch_size: int
    seed: int = 0
    out: str | Path | None = None
    resume: bool = False
    schedule: Callable | None = None
    progress: bool = True
    config: dict | None = None
    plot: bool = True
    augment: int = 0
    bar: bool | None = None
    log: Callable[[str], None] = print

    @classmethod
    def from_config(cls, config, **changes) -> "LoopOptions":
        """The loop's part of a :class:`~diffkit.train.config.TrainConfig` (its epochs,
        batch size, seed, output directory, augmentation, schedule, and the configuration
        itself for the checkpoints); ``changes`` set the rest (resume, progress, log)."""
        from .run import build_schedule

        values = dict(
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            out=config.out,
            schedule=build_schedule(config),
            config=config.to_dict(),
            augment=config.augment,
        )
        return cls(**{**values, **changes})

    def show_bar(self) -> bool:
        if not self.progress:
            return False
        return self.bar if self.bar is not None else sys.stderr.isatty()


def fit(
    model: Module,
    train: Dataset,
    test: Dataset,
    optimizer,
    options: LoopOptions | int | None = None,
    batch_size: int | None = None,
    **settings,
) -> FitResult:
    """Train ``model`` on reverse-mode gradients, as ``options`` say.

    Args:
        model: a module producing logits (N, num_classes).
        train, test: datasets.
        optimizer: SGD, Adam or AdamW (minibatch steps), or Newton (one full-batch
            iteration per epoch), over the model's parameters.
        options: a :class:`LoopOptions`. The loop's settings may also come one by one:
            ``fit(model, train, test, optimizer, epochs, batch_size, seed=..., ...)``.

    Returns:
        A :class:`FitResult`. A non-finite loss stops the run and names the step in
        ``diverged``; a checkpoint or history that cannot be written stops it and names
        the file in ``failed``; either way the last good checkpoint stays in place.

    >>> import numpy as np
    >>> from diffkit import nn, train
    >>> images = np.random.default_rng(0).random((8, 1, 2, 2)).astype(np.float32)
    >>> data = train.Dataset(images, np.array([0, 1] * 4), 2)
    >>> model = nn.LogisticRegression(4, 2)
    >>> for _, p in model.named_parameters():
    ...     p[...] = 0  # equal logits: the loss is ln 2
    >>> options = train.LoopOptions(epochs=2, batch_size=4, progress=False, plot=False)
    >>> result = train.fit(model, data, data, train.SGD(model, lr=0.1), options)
    >>> [h["epoch"] for h in result.history], result.ok
    ([1, 2], True)
    """
    if not isinstance(options, LoopOptions):
        if options is not None:
            settings["epochs"] = options
        if batch_size is not None:
            settings["batch_size"] = batch_size
        options = LoopOptions(**settings)
    elif settings or batch_size is not None:
        raise TypeError("fit: pass the loop's settings in options or one by one, not both")
    return Trainer(model, train, test, optimizer, options).run()


class Trainer:
    """One training run, in parts: :meth:`run` is the epoch loop; :meth:`resume`,
    :meth:`check_batches`, :meth:`train_epoch` (the minibatch loop), :meth:`step` (one
    batch), :meth:`evaluate`, :meth:`log_epoch`, :meth:`save` and :meth:`finish` are its
    parts, so that a new option changes one of them.

    Args:
        model: the module.
        train, test: the datasets.
        optimizer: the optimizer over the model's parameters.
        options: a :class:`LoopOptions`.

    >>> import numpy as np
    >>> from diffkit import nn, train
    >>> images = np.random.default_rng(0).random((8, 1, 2, 2)).astype(np.float32)
    >>> data = train.Dataset(images, np.array([0, 1] * 4), 2)
    >>> model = nn.LogisticRegression(4, 2)
    >>> for _, p in model.named_parameters():
    ...     p[...] = 0  # equal logits: the loss is ln 2
    >>> options = train.LoopOptions(epochs=1, batch_size=4, progress=False, plot=False)
    >>> result = train.Trainer(model, data, data, train.SGD(model, lr=0.1), options).run()
    >>> len(result.history)
    1
    """

    def __init__(self, model: Module, train: Dataset, test: Dataset, optimizer, options):
        self.model, self.train_data, self.test_data = model, train, test
        self.optimizer, self.options = optimizer, options
        self.out = Path(options.out) if options.out is not None else None
        self.rng = np.random.default_rng(options.seed)
        self.result = FitResult(model=model, train_size=len(train), test_size=len(test))
        self.say = options.log if options.progress else (lambda line: None)
        self.full_batch = getattr(optimizer, "full_batch", False)
        self.start_epoch = 0
        self.graphs: dict = {}
        self.eval_cache: dict = {}
        self.smallest = 1
        self.targets = one_hot(train.labels, train.num_classes, model.dtype)

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> FitResult:
        """Resume if asked, then train epoch after epoch, evaluating, logging and saving
        after each; stops at a non-finite loss or a file that cannot be written."""
        o, result = self.options, self.result
        self.optimizer.bind(self.model)
        if o.resume and not self.resume():
            return result
        self.check_batches()
        self.model.train()
        t_start = time.perf_counter()
        for epoch in range(self.start_epoch, o.epochs):
            row, seen = self.run_epoch(epoch)
            if row is None:
                break
            result.history.append(row)
            self.log_epoch(row, seen)
            if not self.save(epoch):
                result.history.pop()
                break
        self.finish()
        result.seconds = time.perf_counter() - t_start
        return result

    def run_epoch(self, epoch: int) -> tuple[dict | None, int]:
        """Train one epoch and evaluate: the history row and the samples seen (None for
        the row if the loss diverged)."""
        o, optimizer = self.options, self.optimizer
        if o.schedule is not None and not self.full_batch:
            optimizer.lr = o.schedule(optimizer.base_lr, epoch, o.epochs)
        t0 = time.perf_counter()
        if self.full_batch:
            loss, _ = optimizer.epoch(self.model, self.train_data)
            seen = len(self.train_data)
            if not math.isfinite(loss):
                self.result.diverged = f"non-finite loss ({loss}) at iteration {epoch + 1}"
                return None, seen
            train_loss, train_acc = self.evaluate(self.train_data)
        else:
            train_loss, train_acc, seen = self.train_epoch(epoch)
            if self.result.diverged:
                return None, seen
        train_time = time.perf_counter() - t0
        test_loss, test_acc = self.evaluate(self.test_data)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": optimizer.lr,
            "seconds": round(train_time, 3),
        }
        return row, seen

    # -- the parts -----------------------------------------------------------------------
    def resume(self) -> bool:
        """Load the checkpoint of ``out`` into the model, optimizer and shuffle, and write
        its history back; False if that history cannot be written."""
        out, o = self.out, self.options
        if out is None:
            raise ValueError("resume needs an output directory holding checkpoint.npz")
        ckpt = load_checkpoint(out / "checkpoint.npz", self.model)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if o.schedule is None:  # a learning rate changed on resume takes effect
            self.optimizer.lr = self.optimizer.base_lr
        self.rng.bit_generator.state = ckpt["rng"]
        self.result.history = ckpt["history"]
        self.start_epoch = ckpt["epoch"]
        return _write_or_fail(
            self.result, out, lambda: _write_history(out, self.result.history), self.start_epoch
        )

    def check_batches(self) -> None:
        """The smallest batch the model trains on; a last batch below it is left out of
        each epoch (noted), and a training set below it refused."""
        n, size = len(self.train_data), self.options.batch_size
        self.smallest = 1 if self.full_batch else self.model.smallest_training_batch()
        if self.full_batch or not 0 < n % size < self.smallest:
            return
        if n < self.smallest:
            raise ValueError(
                f"the model needs batches of at least {self.smallest} samples (batch "
                f"normalization) and the training set has {n}"
            )
        self.result.notes.append(
            f"the last batch of each epoch ({n % size} sample) is left out: "
            f"batch normalization needs at least {self.smallest}; it changes with the shuffle"
        )
        self.say(f"note: {self.result.notes[-1]}")

    def train_epoch(self, epoch: int) -> tuple[float, float, int]:
        """One pass of minibatch steps; returns (mean loss, accuracy, samples seen)."""
        from tqdm.auto import tqdm

        o, data = self.options, self.train_data
        t0 = time.perf_counter()
        total, correct, seen = 0.0, 0, 0
        pbar = tqdm(
            total=len(data),
            desc=f"epoch {epoch + 1}/{o.epochs}",
            unit="img",
            disable=not o.show_bar(),
            leave=False,
        )
        try:
            for step, idx in enumerate(batches(len(data), o.batch_size, self.rng)):
                if len(idx) < self.smallest:
                    continue
                loss, logits = self.step(idx)
                if not math.isfinite(loss):
                    self.result.diverged = (
                        f"non-finite loss ({loss}) at epoch {epoch + 1}, step {step + 1}"
                    )
                    break
                total += loss * len(idx)
                correct += int(np.sum(np.argmax(logits, 1) == data.labels[idx]))
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

    def step(self, idx: np.ndarray) -> tuple[float, np.ndarray]:
        """One minibatch: the step graph (built once per batch shape) gives the loss and
        the gradients; the optimizer steps unless the loss is not finite, and batch
        normalization folds in the batch statistics. Returns (loss, logits)."""
        data = self.train_data
        shape = (len(idx),) + data.images.shape[1:]
        graph = self.graphs.get(shape)
        if graph is None:
            graph = self.graphs[shape] = StepGraph(self.model, shape, data.num_classes)
        images = data.images[idx]
        if self.options.augment:
            images = random_shift(images, self.rng, self.options.augment)
        loss, logits, grads, stats = graph(self.model, images, self.targets[idx])
        if math.isfinite(loss):
            self.optimizer.step(grads)
            graph.update_statistics(stats)
        return loss, logits

    def evaluate(self, data: Dataset) -> tuple[float, float]:
        """Mean cross-entropy and accuracy in eval mode (programs cached per shape)."""
        return evaluate_model(self.model, data, cache=self.eval_cache)

    def log_epoch(self, h: dict, seen: int) -> None:
        t = h["seconds"]
        self.say(
            f"epoch {h['epoch']:3d}  train loss {h['train_loss']:.4f} acc "
            f"{100 * h['train_acc']:.2f}%  test loss {h['test_loss']:.4f} acc "
            f"{100 * h['test_acc']:.2f}%  ({t:.1f} s, {seen / max(t, 1e-9):.0f} img/s)"
        )

    def save(self, epoch: int) -> bool:
        """After epoch ``epoch`` (from 0): the checkpoint, then the history; False (and
        ``result.failed``) if they cannot be written, the previous checkpoint kept."""
        out, o = self.out, self.options
        if out is None:
            return True
        state = self.rng.bit_generator.state
        history = self.result.history

        def write():
            save_checkpoint(
                out / "checkpoint.npz",
                self.model,
                self.optimizer,
                epoch + 1,
                state,
                history,
                o.config or {},
            )
            _write_history(out, history)

        return _write_or_fail(self.result, out, write, epoch or None)

    def finish(self) -> None:
        """The curves of a run that ended well (with ``out`` and ``plot``)."""
        out, o, result = self.out, self.options, self.result
        if result.ok and out is not None and o.plot and result.history:
            _write_or_fail(
                result,
                out,
                lambda: plot_history(
                    result.history, out / "curves.png", title=(o.config or {}).get("title", "")
                ),
                result.history[-1]["epoch"],
            )


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

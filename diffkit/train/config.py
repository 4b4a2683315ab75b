"""A training run as one value: :class:`TrainConfig`, checked as a whole before any work.

A configuration holds everything that decides a run (model, data, optimizer,
schedule, augmentation, epochs, seed, output directory); :func:`diffkit.train.run`
carries it out. ``diffkit train`` turns its flags into one, the studies and sweeps
build them in Python, and since a configuration is a frozen dataclass of plain
values it pickles, so it can be shipped to another process or machine.

Each field is also a flag of ``diffkit train`` (``batch_size`` is ``--batch-size``),
and errors name the flag.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

__all__ = [
    "TrainConfig",
    "ConfigError",
    "MODELS",
    "DATASETS",
    "OPTIMIZERS",
    "SCHEDULES",
    "NORMS",
    "RESUME_MAY_CHANGE",
]

MODELS = ("lenet5", "mlp", "logreg", "vgg", "resnet")
# the convolutional models (28×28 on MNIST; the 8×8 digits resized to 32×32)
CONV_MODELS = ("lenet5", "vgg", "resnet")
DATASETS = ("digits", "mnist-small", "mnist", "fashion-mnist")
OPTIMIZERS = ("sgd", "adam", "adamw", "newton")
SCHEDULES = ("cosine", "step", "none")
NORMS = ("none", "batch", "layer", "instance")
# the settings a resumed run may change when asked to (``allow_change``); any other
# difference from the checkpoint's configuration is refused
RESUME_MAY_CHANGE = ("lr", "epochs")
# settings that do not change what is computed
_NOT_COMPARED = ("out", "data_dir", "allow_change", "checkpoint")
# the default weight decay of each optimizer (PyTorch's for Adam and AdamW)
_WEIGHT_DECAY = {"sgd": 5e-4, "adam": 0.0, "adamw": 0.01, "newton": 1e-4}
NEWTON_MAX_PARAMETERS = 5000


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the setting (as its flag).

    >>> from diffkit import train
    >>> train.TrainConfig(lr=-1.0)
    Traceback (most recent call last):
    ...
    diffkit.train.config.ConfigError: --lr: must be a number more than 0, got -1.0
    """


def flag(name: str) -> str:
    """The ``diffkit train`` flag of a configuration field."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Args:
        model: ``lenet5``, ``mlp`` (one hidden layer of 64 ReLU units), ``logreg``,
            ``vgg`` (:class:`~diffkit.nn.VGG`: five 3×3 convolutions with batch norm in
            three stacks, a two-layer classifier) or ``resnet`` (:class:`~diffkit.nn.ResNet`:
            ResNet-8, one basic block per stage).
        dataset: ``digits`` (bundled UCI 8×8 digits), ``mnist-small`` (bundled 5,000
            real 28×28 MNIST digits), or ``mnist``/``fashion-mnist`` from the IDX files
            in ``data_dir``.
        optimizer: ``sgd``, ``adam``, ``adamw`` or ``newton`` (full-batch damped
            Newton; one iteration per epoch; models of at most 5,000 parameters).
        lr, momentum, weight_decay: optimizer settings (``momentum`` is SGD's;
            ``weight_decay`` defaults to 5e-4 for SGD, PyTorch's 0 and 0.01 for Adam
            and AdamW, 1e-4 for Newton).
        schedule: ``cosine``, ``step`` (÷10 every third of the epochs) or ``none``.
        epochs, batch_size: passes over the data and the minibatch size.
        augment: random shifts of up to this many pixels (default 2 for LeNet-5 on the
            digits, 0 otherwise: shifts would ruin 8×8 inputs of the MLP).
        norm: LeNet-5's normalization: ``none``, ``batch``, ``layer`` or ``instance``
            (VGG and ResNet have batch normalization built in).
        checkpoint: run the model's chain of layers in this many checkpointed segments
            (activation checkpointing: less memory, the same gradients bit for bit; 0:
            none).
        seed: seeds initialisation, shuffling and augmentation.
        out: the output directory (checkpoint, history, curves); None writes nothing.
        train_limit, test_limit: use only the first so many images (quick runs).
        allow_change: on resume, settings of ``RESUME_MAY_CHANGE`` allowed to differ
            from the checkpoint's.

    >>> from diffkit import train
    >>> config = train.TrainConfig(model="logreg", train_limit=100, test_limit=50)
    >>> [len(d) for d in train.load_data(config)]
    [100, 50]
    """

    model: str = "lenet5"
    dataset: str = "digits"
    data_dir: str | None = None
    optimizer: str = "sgd"
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str = "cosine"
    epochs: int = 30
    batch_size: int = 32
    augment: int | None = None
    norm: str = "none"
    seed: int = 0
    out: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    allow_change: tuple = field(default=())
    checkpoint: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if isinstance(self.allow_change, str):
            set_(self, "allow_change", tuple(s for s in self.allow_change.split(",") if s))
        else:
            set_(self, "allow_change", tuple(self.allow_change))
        if self.norm is None:
            set_(self, "norm", "none")
        if self.out is not None:
            set_(self, "out", str(self.out))
        if self.data_dir is not None:
            set_(self, "data_dir", str(self.data_dir))
        self._check_choices()
        if self.lr is None:
            set_(self, "lr", 1e-3 if self.optimizer in ("adam", "adamw") else 0.05)
        if self.weight_decay is None:
            set_(self, "weight_decay", _WEIGHT_DECAY[self.optimizer])
        if self.augment is None:
            set_(self, "augment", 2 if self.model == "lenet5" and self.dataset == "digits" else 0)
        self._check_values()

    # -- validation -------------------------------------------------------------------
    def _check_choices(self) -> None:
        for name, choices in (
            ("model", MODELS),
            ("dataset", DATASETS),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("norm", NORMS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(
                    f"{flag(name)}: unknown {name} {value!r}; choose from {', '.join(choices)}"
                )

    def _check_values(self) -> None:
        def number(name, low, high=math.inf, integer=False, open_low=False):
            value = getattr(self, name)
            kind = int if integer else (int, float)
            ok = isinstance(value, kind) and not isinstance(value, bool)
            ok = ok and math.isfinite(value) and (value > low if open_low else value >= low)
            if not (ok and value <= high):
                what = "a whole number" if integer else "a number"
                side = f"more than {low}" if open_low else f"at least {low}"
                bound = f" and below {high}" if high != math.inf else ""
                raise ConfigError(f"{flag(name)}: must be {what} {side}{bound}, got {value!r}")

        number("lr", 0, open_low=True)
        number("momentum", 0, 0.999999)
        number("weight_decay", 0)
        number("epochs", 1, 100_000, integer=True)
        number("batch_size", 1, 1_000_000, integer=True)
        number("augment", 0, 8, integer=True)
        number("seed", 0, 2**63 - 1, integer=True)
        number("checkpoint", 0, 10_000, integer=True)
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None:
                number(name, 1, integer=True)
        if self.norm != "none" and self.model != "lenet5":
            raise ConfigError(f"--norm {self.norm}: normalization applies to --model lenet5 only")
        if self.optimizer == "newton" and self.model in CONV_MODELS:
            name = {"lenet5": "LeNet-5", "vgg": "VGG", "resnet": "ResNet"}[self.model]
            raise ConfigError(
                f"--optimizer newton: {name} is too large to form its Hessian; use "
                "--model logreg or mlp"
            )
        if self.optimizer == "newton" and self.augment:
            raise ConfigError(
                f"--augment {self.augment}: Newton's method steps on the fixed full "
                f"training set; use --augment 0"
            )
        if self.dataset in ("mnist", "fashion-mnist") and not self.data_dir:
            raise ConfigError(
                f"--dataset {self.dataset} needs --data-dir pointing at its IDX files "
                f"(nothing is downloaded; --dataset mnist-small is bundled)"
            )
        if self.data_dir and self.dataset not in ("mnist", "fashion-mnist"):
            raise ConfigError(f"--data-dir: --dataset {self.dataset} is bundled and reads none")
        bad = [c for c in self.allow_change if c not in RESUME_MAY_CHANGE]
        if bad:
            raise ConfigError(
                f"--allow-change: {bad[0]!r} cannot change on resume; only "
                f"{', '.join(RESUME_MAY_CHANGE)} can"
            )

    # -- derived ----------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        """The side of the model's input images (32 for the convolutional models on the
        8×8 digits (the course's LeNet-5), 28 on MNIST (LeNet-5 with padding 2), the
        images' own side otherwise."""
        if self.dataset == "digits":
            return 32 if self.model in CONV_MODELS else 8
        return 28

    @property
    def dtype(self) -> str:
        return "float64" if self.optimizer == "newton" else "float32"

    @property
    def title(self) -> str:
        norm = "" if self.norm == "none" else f" ({self.norm} norm)"
        return f"{self.model}{norm} on {self.dataset}"

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain values (JSON), as stored in checkpoints, with the derived input size."""
        d = dataclasses.asdict(self)
        d["allow_change"] = list(self.allow_change)
        d["input_size"] = self.input_size
        d["dtype"] = self.dtype
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The configuration a checkpoint stored (older ones: what they recorded)."""
        d = dict(d)
        if "batchnorm" in d and "norm" not in d:
            d["norm"] = "batch" if d.pop("batchnorm") else "none"
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def differences(self, saved: dict) -> list[tuple[str, object, object]]:
        """``(field, saved value, this value)`` for every setting that differs from a
        checkpoint's stored configuration (paths and ``allow_change`` not compared)."""
        if "batchnorm" in saved and "norm" not in saved:
            saved = {**saved, "norm": "batch" if saved["batchnorm"] else "none"}
        mine = self.to_dict()
        out = []
        for f in dataclasses.fields(self):
            if f.name in _NOT_COMPARED or f.name not in saved:
                continue
            if saved[f.name] != mine[f.name]:
                out.append((f.name, saved[f.name], mine[f.name]))
        return out

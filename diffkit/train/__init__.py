"""Training on the reverse-mode backend: a configuration and one call that runs it
(:class:`TrainConfig`, :func:`run`), data, optimizers, the loop, checkpoints."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .data import (
    DataError,
    Dataset,
    batches,
    load_digits,
    load_idx_dataset,
    load_mnist_small,
    one_hot,
    read_idx,
)
from .loop import FitResult, LoopOptions, StepGraph, Trainer, evaluate_model, fit
from .optim import SGD, Adam, AdamW, CosineLR, Newton, StepLR, newton
from .run import build_model, load_data, run

__all__ = [
    "TrainConfig",
    "ConfigError",
    "run",
    "build_model",
    "load_data",
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "DataError",
    "Dataset",
    "batches",
    "load_digits",
    "load_mnist_small",
    "load_idx_dataset",
    "one_hot",
    "read_idx",
    "FitResult",
    "StepGraph",
    "evaluate_model",
    "fit",
    "LoopOptions",
    "Trainer",
    "SGD",
    "Adam",
    "AdamW",
    "Newton",
    "CosineLR",
    "StepLR",
    "newton",
]

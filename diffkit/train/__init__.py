"""Training on the reverse-mode backend: data, optimizers, the loop, checkpoints."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DataError, Dataset, batches, load_digits, load_idx_dataset, one_hot, read_idx
from .loop import FitResult, StepGraph, evaluate_model, fit
from .optim import SGD, Adam, AdamW, CosineLR, StepLR, newton

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "DataError",
    "Dataset",
    "batches",
    "load_digits",
    "load_idx_dataset",
    "one_hot",
    "read_idx",
    "FitResult",
    "StepGraph",
    "evaluate_model",
    "fit",
    "SGD",
    "Adam",
    "AdamW",
    "CosineLR",
    "StepLR",
    "newton",
]

"""Checkpoints: model state, optimizer state, epoch, RNG state and history in one .npz,
written atomically (temporary file, fsync, rename)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..io import atomic_write_bytes

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError", "FORMAT"]

FORMAT = "diffkit-checkpoint-2"
_FORMATS = ("diffkit-checkpoint-1", FORMAT)


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model.

    >>> from diffkit import train
    >>> train.load_checkpoint("/nonexistent/run.npz")
    Traceback (most recent call last):
    ...
    diffkit.train.checkpoint.CheckpointError: /nonexistent/run.npz: no such checkpoint
    """


def save_checkpoint(
    path, model, optimizer, epoch: int, rng_state: dict, history: list, config: dict
) -> Path:
    """Write a checkpoint (atomically) from which a run resumes exactly.

    Args:
        path: the file to write (``.npz``).
        model: the module whose state is saved.
        optimizer: the optimizer whose state (momenta, step count) is saved.
        epoch: the epochs completed.
        rng_state: the state of the run's random generators.
        history: one dict per epoch.
        config: the run's configuration, as a dict.

    Returns:
        Path: ``path``.

    See :func:`load_checkpoint` for an example.

    >>> import diffkit as dk, pathlib, tempfile
    >>> from diffkit import train
    >>> model = dk.nn.Linear(2, 1)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = train.save_checkpoint(pathlib.Path(d) / "run.npz", model,
    ...                                  train.SGD(model, lr=0.1), 1, {}, [], {})
    ...     path.name, sorted(train.load_checkpoint(path))
    ('run.npz', ['config', 'epoch', 'history', 'optimizer', 'rng', 'state'])
    """
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    scalars = _split_state(optimizer.state_dict(), "optim", arrays)
    meta = {
        "format": FORMAT,
        "epoch": epoch,
        "rng": rng_state,
        "history": history,
        "config": config,
        "optimizer": scalars,
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def _split_state(state: dict, prefix: str, arrays: dict) -> dict:
    """The optimizer state with its arrays moved into ``arrays`` (under ``prefix/...``)
    and its numbers kept, as JSON; nested dicts nest."""
    scalars = {}
    for key, value in state.items():
        if isinstance(value, dict):
            scalars[key] = _split_state(value, f"{prefix}/{key}", arrays)
        elif isinstance(value, np.ndarray):
            arrays[f"{prefix}/{key}"] = value
            scalars[key] = None
        else:
            scalars[key] = value
    return scalars


def _join_state(scalars: dict, prefix: str, arrays: dict) -> dict:
    out = {}
    for key, value in scalars.items():
        if isinstance(value, dict):
            out[key] = _join_state(value, f"{prefix}/{key}", arrays)
        elif value is None and f"{prefix}/{key}" in arrays:
            out[key] = arrays[f"{prefix}/{key}"]
        else:
            out[key] = value
    return out


def load_checkpoint(path, model=None) -> dict:
    """Read a checkpoint; with ``model``, load its state into it (mismatches raise).

    Returns:
        dict with state, optimizer, epoch, rng, history, config.

    Args:
        path: the checkpoint file.
        model: a module to load the state into, or None.

    Raises:
        CheckpointError: the file is missing, corrupt, or does not fit ``model``.

    >>> import numpy as np
    >>> from diffkit import nn, train
    >>> images = np.random.default_rng(0).random((8, 1, 2, 2)).astype(np.float32)
    >>> data = train.Dataset(images, np.array([0, 1] * 4), 2)
    >>> model = nn.LogisticRegression(4, 2)
    >>> for _, p in model.named_parameters():
    ...     p[...] = 0  # equal logits: the loss is ln 2
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = train.save_checkpoint(pathlib.Path(d) / "run.npz", model,
    ...                                  train.SGD(model, lr=0.1), 3, {}, [], {})
    ...     train.load_checkpoint(path, model)["epoch"]
    3
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            state = {k[6:]: z[k] for k in z.files if k.startswith("model/")}
            optim = {k: z[k] for k in z.files if k.startswith("optim/")}
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path}: corrupt or not a diffkit checkpoint ({type(err).__name__}: {err})"
        ) from None
    if meta.get("format") not in _FORMATS:
        raise CheckpointError(f"{path}: not a diffkit checkpoint (format {meta.get('format')!r})")
    if model is not None:
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as err:
            raise CheckpointError(
                f"{path}: was saved from another architecture: {str(err).strip(chr(34))}"
            ) from None
    return {
        "state": state,
        "optimizer": (
            _join_state(meta["optimizer"], "optim", optim)
            if "optimizer" in meta
            else {"lr": meta["lr"], "buffers": {k[6:]: v for k, v in optim.items()}}
        ),
        "epoch": meta["epoch"],
        "rng": meta["rng"],
        "history": meta["history"],
        "config": meta["config"],
    }

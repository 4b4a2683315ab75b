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
    """A checkpoint is missing, corrupt, or does not fit the model."""


def save_checkpoint(
    path, model, optimizer, epoch: int, rng_state: dict, history: list, config: dict
) -> Path:
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

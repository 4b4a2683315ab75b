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

FORMAT = "diffkit-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the model."""


def save_checkpoint(
    path, model, optimizer, epoch: int, rng_state: dict, history: list, config: dict
) -> Path:
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    arrays.update({f"optim/{k}": v for k, v in opt["buffers"].items()})
    meta = {
        "format": FORMAT,
        "epoch": epoch,
        "rng": rng_state,
        "history": history,
        "config": config,
        "lr": opt["lr"],
        "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


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
            buffers = {k[6:]: z[k] for k in z.files if k.startswith("optim/")}
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError, UnicodeDecodeError) as err:
        raise CheckpointError(
            f"{path}: corrupt or not a diffkit checkpoint ({type(err).__name__}: {err})"
        ) from None
    if meta.get("format") != FORMAT:
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
        "optimizer": {"lr": meta["lr"], "buffers": buffers},
        "epoch": meta["epoch"],
        "rng": meta["rng"],
        "history": meta["history"],
        "config": meta["config"],
    }

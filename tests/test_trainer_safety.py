"""The trainer never silently loses or ignores work: each case ends in one line and exit 2
(bad input, before any work) or 1 (a failure mid-run) with the last good checkpoint intact."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from diffkit.cli import main
from diffkit.train import TrainConfig, run
from diffkit.train.config import ConfigError
from diffkit.train.data import DataError, load_idx_dataset, read_idx

FAST = ["train", "--model", "logreg", "--epochs", "2", "--quiet"]


def _one_line_error(capsys, expected: str) -> str:
    err = capsys.readouterr().err
    assert expected in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _files(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def test_resume_refuses_each_changed_setting_naming_flag_and_values(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(FAST + ["--out", str(out)]) == 0
    snapshot = _files(out)
    for flag, value, was in (
        ("--lr", "0.1", "0.05"),
        ("--batch-size", "64", "32"),
        ("--momentum", "0.5", "0.9"),
        ("--augment", "1", "0"),
        ("--schedule", "none", "cosine"),
        ("--weight-decay", "0", "0.0005"),
        ("--seed", "3", "0"),
        ("--epochs", "4", "2"),
    ):
        assert main(FAST + ["--out", str(out), "--resume", flag, value]) == 2, flag
        err = _one_line_error(capsys, f"{flag} was {was}")
        assert f"now {value}" in err or f"now {float(value)}" in err, err
    assert _files(out) == snapshot
    # an explicit flag allows a new learning rate and more epochs
    argv = FAST[:-3] + ["--epochs", "3", "--quiet", "--lr", "0.02", "--out", str(out)]
    assert main(argv + ["--resume", "--allow-change", "lr,epochs"]) == 0
    from diffkit.train import load_checkpoint

    ck = load_checkpoint(out / "checkpoint.npz")
    assert ck["epoch"] == 3 and ck["history"][-1]["lr"] < 0.02
    assert main(argv + ["--resume", "--allow-change", "seed"]) == 2
    _one_line_error(capsys, "--allow-change: 'seed' cannot change on resume")


def test_resume_names_the_missing_architecture_flag(tmp_path, capsys):
    out = tmp_path / "bn"
    lenet = ["train", "--epochs", "1", "--train-limit", "64", "--test-limit", "32", "--quiet"]
    assert main(lenet + ["--batchnorm", "--out", str(out)]) == 0
    assert main(lenet + ["--epochs", "2", "--out", str(out), "--resume"]) == 2
    _one_line_error(
        capsys, "--resume: " + str(out / "checkpoint.npz") + " was trained with --norm batch"
    )


def test_a_second_run_into_the_same_out_is_refused(tmp_path, capsys):
    out = tmp_path / "busy"
    code = (
        "import sys, time; from pathlib import Path; from diffkit.train.run import output_lock\n"
        "with output_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)\n"
    )
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(FAST + ["--out", str(out)]) == 2
        _one_line_error(capsys, f"another training run (pid {holder.pid}) is writing there")
        assert not (out / "checkpoint.npz").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(FAST + ["--out", str(out)]) == 0  # the lock went with its holder
    assert not (out / ".lock").exists()


def test_unusable_out_is_refused_before_any_work(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    cases = [
        (afile, "is a file, not a directory"),
        (afile / "sub", "cannot write there"),
        ("/proc/diffkit-run", "cannot write there"),
    ]
    for out, msg in cases:
        assert main(FAST + ["--out", str(out)]) == 2, out
        _one_line_error(capsys, msg)
    assert afile.read_text() == "x"


def test_write_failure_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    import diffkit.io

    out = tmp_path / "full"
    real = diffkit.io.atomic_write
    calls = {"n": 0}

    def failing(path, write, mode="wb"):
        calls["n"] += 1
        if calls["n"] > 3:  # epoch 1: checkpoint, history.json, history.csv; then disk full
            raise OSError(28, "No space left on device", str(path))
        return real(path, write, mode)

    monkeypatch.setattr(diffkit.io, "atomic_write", failing)
    assert main(FAST + ["--epochs", "3", "--out", str(out)]) == 1
    err = _one_line_error(capsys, "No space left on device")
    assert "the last good checkpoint" in err and "epoch 1" in err
    monkeypatch.setattr(diffkit.io, "atomic_write", real)
    from diffkit.train import load_checkpoint

    assert load_checkpoint(out / "checkpoint.npz")["epoch"] == 1
    import json

    assert len(json.loads((out / "history.json").read_text())) == 1
    assert not list(out.glob(".*.tmp"))
    # and the run resumes from there
    assert (
        main(FAST + ["--epochs", "3", "--out", str(out), "--resume", "--allow-change", "epochs"])
        == 0
    )


def test_newton_writes_checkpoint_history_and_resumes(tmp_path, capsys):
    out = tmp_path / "newton"
    argv = ["train", "--model", "logreg", "--optimizer", "newton", "--quiet", "--out", str(out)]
    assert main(argv + ["--epochs", "2"]) == 0
    for name in ("checkpoint.npz", "history.json", "history.csv", "curves.png"):
        assert (out / name).exists(), name
    assert main(argv + ["--epochs", "3", "--resume", "--allow-change", "epochs"]) == 0
    import json

    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert main(argv[:-2] + ["--augment", "2", "--out", str(tmp_path / "n2")]) == 2
    _one_line_error(capsys, "--augment 2: Newton's method")


def test_batchnorm_last_batch_of_one_is_left_out_and_logged(tmp_path):
    lines = []
    config = TrainConfig(
        norm="batch", epochs=1, batch_size=16, train_limit=33, test_limit=16, augment=0
    )
    result = run(config, log=lines.append)
    assert result.ok and result.history
    assert any("last batch" in line and "left out" in line for line in lines)


def test_files_get_umask_permissions_and_no_temporaries_survive(tmp_path):
    out = tmp_path / "perm"
    out.mkdir()
    for stale in (".checkpoint.npz.abc123.tmp", ".history.json.x.tmp"):
        (out / stale).write_bytes(b"half")
    (out / "notes.txt").write_text("mine")
    old = os.umask(0o022)
    try:
        lines = []
        run(TrainConfig(model="logreg", epochs=1, out=str(out)), log=lines.append)
    finally:
        os.umask(old)
    assert any("removed 2 temporary" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.npz",
        "curves.png",
        "history.csv",
        "history.json",
        "notes.txt",
    ]
    for name in ("checkpoint.npz", "history.json", "curves.png"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name


def test_config_is_validated_picklable_and_names_flags():
    config = TrainConfig(model="mlp", lr=0.1)
    assert pickle.loads(pickle.dumps(config)) == config
    assert config.augment == 0 and config.weight_decay == 5e-4 and config.input_size == 8
    assert TrainConfig(optimizer="adamw").weight_decay == 0.01
    for kwargs, msg in (
        ({"lr": 0}, "--lr: must be a number more than 0"),
        ({"epochs": 1.5}, "--epochs: must be a whole number"),
        ({"model": "alexnet"}, "--model: unknown model 'alexnet'"),
        ({"norm": "batch", "model": "mlp"}, "--norm batch: normalization applies"),
        ({"dataset": "mnist"}, "--dataset mnist needs --data-dir"),
        ({"optimizer": "newton"}, "--optimizer newton: LeNet-5 is too large"),
        ({"momentum": 1.0}, "--momentum"),
    ):
        with pytest.raises(ConfigError, match=msg):
            TrainConfig(**kwargs)


def _idx(path, body: bytes, dims, dtype=0x08, compress=False):
    data = bytes([0, 0, dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + body
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_crafted_idx_files_are_refused_before_allocating(tmp_path):
    cases = [
        (dict(body=b"", dims=(2**31, 2**31, 2**31)), "more than the"),
        (dict(body=b"", dims=(1,) * 0 + (2,) * 5), "5 dimensions"),
        (dict(body=b"\0" * 4, dims=(2, 3)), "header says (2, 3)"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(DataError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            read_idx(_idx(tmp_path / "x", **kwargs))
    raw = bytes([0, 0, 8, 255])
    (tmp_path / "ndim").write_bytes(raw)
    with pytest.raises(DataError, match="255 dimensions"):
        read_idx(tmp_path / "ndim")
    # a gzip bomb: a small file that decompresses to far more than its header declares
    bomb = tmp_path / "bomb.gz"
    header = bytes([0, 0, 8, 1]) + struct.pack(">I", 10)
    bomb.write_bytes(gzip.compress(header + b"\0" * (50 * 2**20), compresslevel=9))
    assert bomb.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="header says"):
            read_idx(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20  # it stopped reading long before the 50 MiB
    with pytest.raises(DataError, match="more than the 1000 bytes"):
        read_idx(_idx(tmp_path / "big", b"\0" * 2000, (2000,)), max_bytes=1000)


def _mnist(tmp_path, images, labels, label_type=0x08):
    for prefix in ("train", "t10k"):
        _idx(tmp_path / f"{prefix}-images-idx3-ubyte", images.tobytes(), images.shape)
        _idx(
            tmp_path / f"{prefix}-labels-idx1-ubyte",
            labels.tobytes(),
            labels.shape,
            dtype=label_type,
        )
    return tmp_path


def test_crafted_mnist_labels_and_shapes_are_refused(tmp_path, capsys):
    ok = np.zeros((4, 28, 28), np.uint8)
    cases = [
        (ok, np.array([0, 1, -1, 2], np.int8), 0x09, "label -1 is not a class 0..9"),
        (ok, np.array([0, 1, 2.5, 2], ">f4"), 0x0D, "label 2.5 is not a whole number"),
        (ok, np.array([0, 1, 12, 2], np.uint8), 0x08, "label 12 is not a class"),
        (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), 0x08, "holds no images"),
        (np.zeros((4, 32, 32), np.uint8), np.zeros(4, np.uint8), 0x08, "(N, 28, 28)"),
    ]
    for i, (images, labels, kind, msg) in enumerate(cases):
        d = tmp_path / str(i)
        d.mkdir()
        _mnist(d, images, labels, kind)
        with pytest.raises(DataError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            load_idx_dataset(d)
        argv = ["train", "--dataset", "mnist", "--data-dir", str(d), "--out", str(d / "r")]
        assert main(argv + ["--quiet"]) == 2
        _one_line_error(capsys, msg)

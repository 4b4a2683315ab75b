"""Training: the SGD step, loss decrease, determinism, resume, data loaders, the CLI."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

import diffkit as dk
from diffkit import nn
from diffkit.cli import main
from diffkit.train import SGD, LoopOptions, StepGraph, fit, load_digits, read_idx
from diffkit.train.data import DataError, load_idx_dataset, one_hot


@pytest.fixture(scope="module")
def digits8():
    train, test = load_digits(size=8)
    return train.subset(np.arange(300)), test.subset(np.arange(100))


def test_bundled_digits():
    train, test = load_digits()
    assert len(train) == 1437 and len(test) == 360
    assert train.images.shape[1:] == (1, 32, 32) and train.images.dtype == np.float32
    counts = np.bincount(test.labels)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified
    assert abs(train.images.mean()) < 1e-5


def test_sgd_step_equals_formula(digits8):
    train, _ = digits8
    nn.manual_seed(0)
    model = nn.MLP([64, 10, 10], dtype=np.float64)
    before = {k: v.copy() for k, v in model.named_parameters()}
    x, y = train.images[:16].astype(np.float64), one_hot(train.labels[:16], 10, np.float64)
    step = StepGraph(model, x.shape, 10)
    _, _, grads, _ = step(model, x, y)
    # reverse-mode gradients against an independent evaluation through dk.gradient
    xv, yv = dk.variable("input", x.shape), dk.variable("target", y.shape)
    loss = nn.CrossEntropyLoss()(model(xv), yv)
    ref = dk.gradient(
        loss,
        {**model.inputs(), "input": x, "target": y},
        wrt=list(dict(model.named_parameters())),
        method="forward",
    )
    opt = SGD(model.named_parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step(grads)
    for k, p in model.named_parameters():
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(p, before[k] - 0.1 * (ref[k] + 0.01 * before[k]), rtol=1e-12)
    mom = {k: g + 0.01 * dict(model.named_parameters())[k] for k, g in grads.items()}
    second = {k: v.copy() for k, v in model.named_parameters()}
    opt.step(grads)
    for k, p in model.named_parameters():
        buf = 0.9 * (ref[k] + 0.01 * before[k]) + mom[k]
        np.testing.assert_allclose(p, second[k] - 0.1 * buf, rtol=1e-10, atol=1e-12)


def _run(data, out=None, epochs=3, resume=False, seed=0, lr=0.1):
    train, test = data
    nn.manual_seed(seed)
    model = nn.MLP([64, 32, 10])
    opt = SGD(model.named_parameters(), lr=lr, momentum=0.9)
    options = LoopOptions(
        epochs, 16, seed=seed, out=out, resume=resume, progress=False, plot=False, augment=1
    )
    return fit(model, train, test, opt, options)


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_short_run_lowers_loss_and_is_deterministic(digits8):
    a, b = _run(digits8), _run(digits8)
    assert a.history[-1]["train_loss"] < 0.75 * a.history[0]["train_loss"]
    assert a.history[-1]["test_loss"] < a.history[0]["test_loss"]
    assert _strip(a.history) == _strip(b.history)
    c = _run(digits8, seed=1)
    assert _strip(c.history) != _strip(a.history)


def test_resume_equals_uninterrupted(digits8, tmp_path):
    full = _run(digits8, tmp_path / "full", epochs=4)
    _run(digits8, tmp_path / "part", epochs=2)
    resumed = _run(digits8, tmp_path / "part", epochs=4, resume=True)
    assert _strip(resumed.history) == _strip(full.history)
    saved = json.loads((tmp_path / "part" / "history.json").read_text())
    assert _strip(saved) == _strip(full.history)
    assert (tmp_path / "part" / "history.csv").read_text().count("\n") == 5


def test_non_finite_loss_stops_and_keeps_last_checkpoint(digits8, tmp_path):
    train, test = digits8
    nn.manual_seed(0)
    model = nn.MLP([64, 32, 10])
    opt = SGD(model.named_parameters(), lr=0.1)
    before = []

    def schedule(base, epoch, epochs):  # a sane first epoch, then an absurd step size
        if epoch == 1:
            before.append((tmp_path / "checkpoint.npz").read_bytes())
        return base if epoch == 0 else 1e30

    # the loop's settings one by one, as before LoopOptions
    result = fit(
        model, train, test, opt, 3, 16, out=tmp_path, schedule=schedule, progress=False, plot=False
    )
    before = before[0]
    assert result.diverged and "non-finite loss" in result.diverged and "step" in result.diverged
    assert (tmp_path / "checkpoint.npz").read_bytes() == before


def _write_idx(path, array, magic_type=0x08, compress=False):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(
        struct.pack(">I", d) for d in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def _mnist_dir(tmp_path, compress):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 6)):
        _write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte{'.gz' if compress else ''}",
            rng.integers(0, 256, (n, 28, 28)),
            compress=compress,
        )
        _write_idx(
            tmp_path / f"{prefix}-labels-idx1-ubyte{'.gz' if compress else ''}",
            rng.integers(0, 10, n),
            compress=compress,
        )
    return tmp_path


@pytest.mark.parametrize("compress", [False, True])
def test_idx_loader(tmp_path, compress):
    train, test = load_idx_dataset(_mnist_dir(tmp_path, compress))
    assert train.images.shape == (12, 1, 28, 28) and test.images.shape == (6, 1, 28, 28)
    raw = read_idx(next(tmp_path.glob("t10k-labels*")))
    np.testing.assert_array_equal(raw, test.labels)


def test_idx_errors(tmp_path):
    bad = tmp_path / "x.idx"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="x.idx: not an IDX file"):
        read_idx(bad)
    _write_idx(bad, np.zeros((3, 4, 4)))
    bad.write_bytes(bad.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"x.idx: header says \(3, 4, 4\)"):
        read_idx(bad)
    d = _mnist_dir(tmp_path / "m", False) if (tmp_path / "m").mkdir() is None else None
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_idx_dataset(d)
    _write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(5))
    with pytest.raises(DataError, match="holds 6 images but .* holds 5 labels"):
        load_idx_dataset(d)


def test_cli_train_evaluate_and_bad_input(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--model", "mlp", "--epochs", "2", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert (out / "checkpoint.npz").exists() and (out / "curves.png").exists()
    assert main(["evaluate", "--checkpoint", str(out / "checkpoint.npz")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    cases = [
        (argv + ["--batch-size", "0"], "--batch-size: must be a whole number at least 1"),
        (argv + ["--lr", "-0.1"], "--lr: must be a number more than 0"),
        (["train", "--model", "alexnet", "--out", str(out)], "invalid choice: 'alexnet'"),
        (argv, "already holds a checkpoint"),
        (
            [
                "train",
                "--dataset",
                "mnist",
                "--data-dir",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "r1"),
            ],
            "no such directory",
        ),
        (
            [
                "train",
                "--dataset",
                "mnist",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "r2"),
            ],
            "missing train-images-idx3-ubyte",
        ),
        (
            ["train", "--model", "lenet5", "--epochs", "3", "--out", str(out), "--resume"],
            "--resume: --model was mlp in",
        ),
        (["train", "--epochs", "oops"], "invalid int value"),
    ]
    for args, msg in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (args, err)
    corrupt = tmp_path / "bad.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["evaluate", "--checkpoint", str(corrupt)]) == 2
    assert "corrupt or not a diffkit checkpoint" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot


def test_newton_on_two_class_logistic_regression():
    from diffkit.train import Newton
    from diffkit.train.data import Dataset

    train, _ = load_digits(size=8, dtype=np.float64)
    keep = np.isin(train.labels, (3, 8))
    two = Dataset(train.images[keep], (train.labels[keep] == 8).astype(np.int64), 2)
    nn.manual_seed(0)
    model = nn.LogisticRegression(64, 2, dtype=np.float64)
    opt = Newton(model, weight_decay=1e-2)
    norms = [opt.epoch(model, two)[1] for _ in range(10)]
    assert norms[-1] < 1e-10
    # superlinear convergence at the end
    k = next(i for i, n in enumerate(norms) if n < 1e-3)
    assert norms[k + 1] < norms[k] ** 1.5


def test_augmentation_defaults_per_model():
    from diffkit.cli import build_parser
    from diffkit.cli.train import config_from_args

    parser = build_parser()
    for model, expected in (("lenet5", 2), ("mlp", 0), ("logreg", 0)):
        config = config_from_args(parser.parse_args(["train", "--model", model]))
        assert config.augment == expected, model
    config = config_from_args(parser.parse_args(["train", "--model", "mlp", "--augment", "1"]))
    assert config.augment == 1
    lenet_mnist = parser.parse_args(["train", "--dataset", "mnist-small"])
    assert config_from_args(lenet_mnist).augment == 0


def test_adam_and_adamw_minimise_a_quadratic_and_resume_exactly():
    from diffkit.train import Adam, AdamW

    for cls in (Adam, AdamW):
        target = np.array([1.0, -2.0, 0.5])
        params = {"p": np.zeros(3)}
        opt = cls(params, lr=0.1, weight_decay=0.0)
        for _ in range(300):
            opt.step({"p": 2 * (params["p"] - target)})
        np.testing.assert_allclose(params["p"], target, atol=1e-3)
        # a copy resumed from the state continues exactly as the original
        copy = {"p": params["p"].copy()}
        resumed = cls(copy, lr=0.1, weight_decay=0.0)
        resumed.load_state_dict(opt.state_dict())
        for o, prm in ((opt, params), (resumed, copy)):
            o.step({"p": 2 * (prm["p"] - target) + 1.0})
        np.testing.assert_array_equal(params["p"], copy["p"])
    with pytest.raises(ValueError, match="betas"):
        Adam({"p": np.zeros(1)}, betas=(0.9, 1.0))


def test_optimizers_take_the_model_or_its_named_parameters():
    from diffkit.train import Adam

    model = nn.MLP([4, 3, 2])
    names = [n for n, _ in model.named_parameters()]
    for opt in (
        SGD(model, lr=0.1),
        Adam(model),
        SGD(model.named_parameters(), lr=0.1),
        SGD(dict(model.named_parameters()), lr=0.1),
    ):
        assert list(opt.params) == names
    # model.parameters(): keyed by position, named by bind(), or stepped with a list
    positional = SGD(model.parameters(), lr=0.1)
    assert list(positional.params) == list(range(len(names)))
    grads = [np.ones_like(p) for p in model.parameters()]
    before = [p.copy() for p in model.parameters()]
    positional.step(grads)
    for b, p in zip(before, model.parameters()):
        np.testing.assert_allclose(p, b - 0.1)
    with pytest.raises(KeyError, match="bind"):
        positional.step(dict(zip(names, grads)))
    assert list(positional.bind(model).params) == names
    positional.step(dict(zip(names, grads)))
    with pytest.raises(ValueError, match="not an array of this model"):
        SGD([np.zeros(3)], lr=0.1).bind(model)
    with pytest.raises(TypeError, match="model.parameters()"):
        SGD("weights", lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)


def test_limits_take_every_class():
    """--train-limit/--test-limit keep each class in proportion (the bundled MNIST subset
    is stored by class: its first 600 images are zeros and ones)."""
    from diffkit.train import TrainConfig
    from diffkit.train.run import load_data

    train, test = load_data(TrainConfig(dataset="mnist-small", train_limit=600, test_limit=100))
    assert np.bincount(train.labels).tolist() == [60] * 10
    assert np.bincount(test.labels).tolist() == [10] * 10

"""VGG and ResNet: shapes and names, a few steps lower the loss, state_dict round trips,
conv-BN fusion, activation checkpointing bit for bit, and ``diffkit train --model``."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit import nn
from diffkit.cli import main
from diffkit.nn.checkpoint import with_checkpoints
from diffkit.nn.fusion import fusion_pairs
from diffkit.train import SGD, StepGraph
from diffkit.train.data import load_mnist_small, one_hot
from diffkit.train.loop import model_inputs

F64 = np.float64


def _small(kind, dtype=np.float32, seed=0):
    nn.manual_seed(seed)
    if kind == "vgg":
        return nn.VGG((4, "M", 8, 8, "M"), input_size=12, hidden=16, dtype=dtype)
    if kind == "resnet":
        return nn.ResNet((1, 2, 1), (4, 6, 8), dtype=dtype)
    return nn.LeNet5(input_size=12 + 16, batchnorm=True, dtype=dtype)


def _run(model, x):
    program = dk.compile(model(dk.variable("input", x.shape)))
    return program(model_inputs(program, model, input=x))


def test_default_models_take_mnist_and_keep_float32():
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    for model in (nn.VGG(), nn.ResNet()):
        out = _run(model.eval(), x)
        assert out.shape == (3, 10) and out.dtype == np.float32
        # the training step too (batch norm's integer buffer does not promote it)
        _, logits, grads, _ = StepGraph(model.train(), x.shape, 10)(model, x, one_hot(
            np.arange(3), 10))  # fmt: skip
        assert logits.dtype == np.float32
        assert all(g.dtype == np.float32 for g in grads.values())
    resnet = nn.ResNet()
    # a projection shortcut exactly where the stride or the channels change
    assert resnet.layer1[0].downsample is None
    for stage in (resnet.layer2, resnet.layer3):
        conv = stage[0].downsample[0]
        assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)
    names = dict(resnet.named_parameters())
    assert names["layer3.0.downsample.1.weight"].shape == (64,)
    assert names["fc.weight"].shape == (10, 64) and "conv1.bias" not in names
    vgg = dict(nn.VGG().named_parameters())
    assert vgg["features.0.weight"].shape == (16, 1, 3, 3)
    assert vgg["classifier.0.weight"].shape == (128, 64 * 3 * 3)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="VGG: config entries"):
        nn.VGG((4, "X"))
    with pytest.raises(ValueError, match="VGG: input_size 4 is too small"):
        nn.VGG((4, "M", "M", "M"), input_size=4)
    with pytest.raises(ValueError, match="ResNet: blocks and widths give 3 stages"):
        nn.ResNet((1, 1))
    with pytest.raises(ValueError, match="ResNet: widths must be positive"):
        nn.ResNet(widths=(4, 0, 8))


@pytest.fixture(scope="module")
def tiny_mnist():
    train, _ = load_mnist_small()
    return train.images[:32], train.labels[:32]


@pytest.mark.parametrize("kind", ["vgg", "resnet"])
def test_a_few_steps_lower_the_loss(kind, tiny_mnist):
    images, labels = tiny_mnist
    nn.manual_seed(0)
    model = nn.VGG(hidden=32) if kind == "vgg" else nn.ResNet(widths=(8, 8, 16))
    step = StepGraph(model, images.shape, 10)
    opt = SGD(model, lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss, _, grads, stats = step(model, images, one_hot(labels, 10))
        opt.step(grads)
        step.update_statistics(stats)
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("kind", ["vgg", "resnet"])
def test_state_dict_round_trip(kind):
    rng = np.random.default_rng(1)
    a, b = _small(kind, F64, seed=0), _small(kind, F64, seed=1)
    x = rng.standard_normal((5, 1, 12, 12))
    step = StepGraph(a, x.shape, 10)  # a step, so the running statistics move
    _, _, _, stats = step(a, x, one_hot(rng.integers(0, 10, 5), 10, F64))
    step.update_statistics(stats)
    state = a.state_dict()
    assert not np.array_equal(_run(a.eval(), x), _run(b.eval(), x))
    b.load_state_dict(state)
    assert list(b.state_dict()) == list(state)
    for key, value in b.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    np.testing.assert_array_equal(_run(a, x), _run(b, x))
    with pytest.raises(KeyError, match="missing keys"):
        b.load_state_dict({k: v for k, v in state.items() if "downsample" not in k and
                           "features.4" not in k})  # fmt: skip


@pytest.mark.parametrize("kind", ["vgg", "resnet", "lenet5"])
def test_fused_equals_unfused_in_eval_mode(kind):
    rng = np.random.default_rng(2)
    model = _small(kind, F64)
    for _, mod in model.named_modules():  # statistics far from the defaults
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = mod.num_features
            mod._parameters["weight"][...] = rng.uniform(0.5, 2.0, n)
            mod._parameters["bias"][...] = rng.standard_normal(n)
            mod._buffers["running_mean"][...] = rng.standard_normal(n)
            mod._buffers["running_var"][...] = rng.uniform(0.1, 3.0, n)
    pairs = fusion_pairs(model)
    norms = [p for p, m in model.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert sorted(bn for _, bn in pairs) == sorted(norms)  # every batch norm has its layer
    fused = nn.fuse(model)
    assert not any(
        isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for _, m in fused.named_modules()
    )
    x = (
        rng.standard_normal((4, 1, 12, 12))
        if kind != "lenet5"
        else rng.standard_normal((4, 1, 28, 28))
    )
    np.testing.assert_allclose(_run(fused, x), _run(model.eval(), x), rtol=1e-12, atol=1e-12)
    assert model.training is False and "layer1.0.bn1.running_mean" not in fused.state_dict()


@pytest.mark.parametrize("kind", ["vgg", "resnet", "lenet5"])
def test_checkpointed_training_step_is_bit_identical(kind):
    """Gradients, batch statistics and the parameters after one SGD step, with the model's
    layers in 1, 3 and as many segments as layers, equal the unchecked ones bit for bit
    (the last segment is not recomputed, as in PyTorch's checkpoint_sequential)."""
    rng = np.random.default_rng(3)
    side = 28 if kind == "lenet5" else 12
    x = rng.standard_normal((6, 1, side, side)).astype(np.float32)
    y = one_hot(rng.integers(0, 10, 6), 10)

    def one_step(segments):
        model = with_checkpoints(_small(kind), segments)
        step = StepGraph(model, x.shape, 10)
        loss, logits, grads, stats = step(model, x, y)
        SGD(model, lr=0.1, momentum=0.9).step(grads)
        step.update_statistics(stats)
        return loss, logits, grads, model.state_dict(), step.program

    plain = one_step(None)
    chain = len(_small(kind).layers())
    for segments in (1, 3, chain):
        loss, logits, grads, state, program = one_step(segments)
        if segments > 1:  # the recomputation is in the graph
            assert len(program) > len(plain[4])
        if segments == 3:  # segments of several layers lower the peak; a segment per
            # layer keeps every layer's input, as the unchecked step does, and adds the
            # recomputed copies: no saving there, as with PyTorch's checkpoint_sequential
            assert program.peak_bytes < plain[4].peak_bytes
        assert loss == plain[0]
        np.testing.assert_array_equal(logits, plain[1])
        for name, g in plain[2].items():
            np.testing.assert_array_equal(grads[name], g, err_msg=name)
        for name, v in plain[3].items():
            np.testing.assert_array_equal(state[name], v, err_msg=name)


def test_cli_trains_vgg_and_resnet_with_checkpoints(tmp_path, capsys):
    base = ["train", "--dataset", "mnist-small", "--epochs", "1", "--quiet"]
    base += ["--train-limit", "48", "--test-limit", "16", "--batch-size", "16"]
    for model in ("vgg", "resnet"):
        out = tmp_path / model
        argv = base + ["--model", model, "--checkpoint", "2", "--out", str(out)]
        assert main(argv) == 0
        text = capsys.readouterr().out
        assert "final test accuracy" in text and " s); wrote" in text
        from diffkit.train import load_checkpoint

        assert load_checkpoint(out / "checkpoint.npz")["config"]["checkpoint"] == 2
    # a checkpointed run resumes without it: the segments do not change what is computed
    argv = base + ["--model", "resnet", "--epochs", "2", "--out", str(tmp_path / "resnet")]
    assert main(argv + ["--resume", "--allow-change", "epochs"]) == 0
    capsys.readouterr()
    for flag, msg in (
        ("0.5", "invalid int value: '0.5'"),
        ("-1", "--checkpoint: must be a whole number at least 0"),
        (
            "99",
            "--checkpoint 99: segments must be 1 to 9 (the layers of ResNet), got 99",
        ),
    ):
        out = tmp_path / f"bad{flag}"
        assert main(base + ["--model", "resnet", "--checkpoint", flag, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1 and "Traceback" not in err, err
        assert not out.exists()

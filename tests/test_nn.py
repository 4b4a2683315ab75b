"""Layers against loop-based numpy references and finite differences; CNN conventions."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit import nn
from diffkit.ops.native import use_native

# the image ops run their compiled loops when the extension is built, numpy otherwise:
# the layer tests run both
BACKENDS = pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])

F64 = np.float64


def conv_ref(x, w, b, stride, pad):
    """Direct loops: out[n, o, i, j] = sum_{c,p,q} w[o, c, p, q] xpad[n, c, i*s+p, j*s+q] + b[o]."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * pad[0], wd + 2 * pad[1]))
    xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + wd] = x
    oh = (h + 2 * pad[0] - kh) // stride[0] + 1
    ow = (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    for a in range(n):
        for f in range(o):
            for i in range(oh):
                for j in range(ow):
                    win = xp[
                        a, :, i * stride[0] : i * stride[0] + kh, j * stride[1] : j * stride[1] + kw
                    ]
                    out[a, f, i, j] = np.sum(win * w[f]) + (b[f] if b is not None else 0.0)
    return out


def pool_ref(x, k, s, pad, kind):
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.full((n, c, h + 2 * pad, w + 2 * pad), fill)
    xp[:, :, pad : pad + h, pad : pad + w] = x
    oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * s : i * s + k, j * s : j * s + k]
            out[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.mean(axis=(2, 3))
    return out


def _configs(count, seed):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        k = int(rng.integers(1, 6))
        s = int(rng.integers(1, 4))
        p = int(rng.integers(0, 3))
        cin, cout = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        n = int(rng.integers(1, 4))
        h = int(rng.integers(max(k, 2), 9))
        w = int(rng.integers(max(k, 2), 9))
        if h == w:
            w += 1
        yield k, s, p, cin, cout, n, h, w, rng


@BACKENDS
@pytest.mark.parametrize("case", range(10))
def test_conv2d_against_loops_and_finite_differences(case, native):
    with use_native(native):
        _check_conv2d(case)


def _check_conv2d(case):
    k, s, p, cin, cout, n, h, w, rng = list(_configs(10, 100))[case]
    layer = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=case % 3 != 0, dtype=F64)
    x = rng.standard_normal((n, cin, h, w))
    xv = dk.variable("x", x.shape)
    out = layer(xv)
    at = {**layer.inputs(), "x": x}
    params = dict(layer.named_parameters())
    ref = conv_ref(x, params["weight"], params.get("bias"), (s, s), (p, p))
    np.testing.assert_allclose(dk.evaluate(out, at), ref, rtol=1e-12, atol=1e-12)
    loss = dk.sum(out * dk.const(rng.standard_normal(out.shape)))
    dk.check_grads(loss, at, eps=1e-6, rtol=1e-6)


@BACKENDS
@pytest.mark.parametrize("case", range(8))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_against_loops_and_finite_differences(case, kind, native):
    with use_native(native):
        _check_pooling(case, kind)


def _check_pooling(case, kind):
    k, s, p, c, _, n, h, w, rng = list(_configs(8, 200 + case))[0]
    p = min(p, k // 2)
    x = rng.standard_normal((n, c, h, w))
    layer = nn.MaxPool2d(k, s, p) if kind == "max" else nn.AvgPool2d(k, s, p)
    xv = dk.variable("x", x.shape)
    out = layer(xv)
    np.testing.assert_allclose(dk.evaluate(out, {"x": x}), pool_ref(x, k, s, p, kind), rtol=1e-12)
    dk.check_grads(dk.sum(out * dk.const(rng.standard_normal(out.shape))), {"x": x})


def _norm_ref(x, axes, eps):
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


@pytest.mark.parametrize("kind", ["bn1d", "bn2d", "ln", "in"])
def test_normalization_against_reference_and_finite_differences(kind):
    rng = np.random.default_rng(5)
    if kind == "bn1d":
        layer, x, axes = nn.BatchNorm1d(4, dtype=F64), rng.standard_normal((5, 4)), (0,)
    elif kind == "bn2d":
        layer, x, axes = nn.BatchNorm2d(3, dtype=F64), rng.standard_normal((2, 3, 4, 5)), (0, 2, 3)
    elif kind == "ln":
        layer, x, axes = nn.LayerNorm((3, 4), dtype=F64), rng.standard_normal((2, 3, 4)), (1, 2)
    else:
        layer, x, axes = (
            nn.InstanceNorm2d(3, affine=True, dtype=F64),
            rng.standard_normal((2, 3, 4, 5)),
            (2, 3),
        )
    for name, p in layer.named_parameters():
        p[...] = rng.standard_normal(p.shape)
    xv = dk.variable("x", x.shape)
    out = layer(xv)
    at = {k: v for k, v in {**layer.inputs(), "x": x}.items() if k in dk.compile(out).variables}
    params = dict(layer.named_parameters())
    shape = [1] * x.ndim
    if kind in ("bn1d", "bn2d", "in"):
        shape[1] = x.shape[1]
        gamma, beta = params["weight"].reshape(shape), params["bias"].reshape(shape)
    else:
        gamma, beta = params["weight"], params["bias"]
    np.testing.assert_allclose(
        dk.evaluate(out, at), _norm_ref(x, axes, 1e-5) * gamma + beta, rtol=1e-11, atol=1e-12
    )
    dk.check_grads(dk.sum(out * dk.const(rng.standard_normal(out.shape))), at)


def test_batchnorm_running_statistics_and_eval_mode():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, momentum=0.1, dtype=F64)
    xv = dk.variable("x", (6, 3))
    out = bn(xv)
    ((_, mean, var, count),) = bn.batch_statistics()
    program = dk.compile([out, mean, var])
    rm, rv = np.zeros(3), np.ones(3)
    for _ in range(4):
        x = rng.standard_normal((6, 3)) * 3 + 2
        _, m, v = program({**bn.inputs(), "x": x}, strict=False)
        bn.update_running(m, v, count)
        rm = 0.9 * rm + 0.1 * x.mean(0)
        rv = 0.9 * rv + 0.1 * x.var(0, ddof=1)
    np.testing.assert_allclose(dict(bn.named_buffers())["running_mean"], rm, rtol=1e-12)
    np.testing.assert_allclose(dict(bn.named_buffers())["running_var"], rv, rtol=1e-12)
    bn.eval()
    x = rng.standard_normal((2, 3))
    got = dk.compile(bn(dk.variable("x", (2, 3))))({**bn.inputs(), "x": x}, strict=False)
    np.testing.assert_allclose(got, (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)


def test_zero_variance_channel_gives_no_nan():
    bn = nn.BatchNorm2d(2, dtype=F64)
    x = np.ones((3, 2, 2, 2))
    x[:, 1] = np.random.default_rng(1).random((3, 2, 2))  # channel 0 is constant
    xv = dk.variable("x", x.shape)
    loss = dk.sum(bn(xv) ** 2)
    at = {k: v for k, v in {**bn.inputs(), "x": x}.items() if k in dk.compile(loss).variables}
    g = dk.gradient(loss, at)
    assert all(np.all(np.isfinite(v)) for v in g.values())
    assert np.all(np.isfinite(dk.evaluate(bn(xv), at)))


def test_batchnorm_training_needs_more_than_one_value():
    with pytest.raises(
        ValueError,
        match=r"BatchNorm1d\(bn\): expected more than 1 value per "
        r"channel.*\(1, 4\)",
    ):
        nn.BatchNorm1d(4)(dk.variable("x", (1, 4)))
    bn = nn.BatchNorm1d(4).eval()
    bn(dk.variable("x", (1, 4)))  # fine in eval mode


def test_input_too_small_names_layer_and_sizes():
    model = nn.LeNet5()
    with pytest.raises(dk.ShapeError, match=r"Conv2d\(conv2\).*4x4.*kernel 5x5"):
        model(dk.variable("x", (1, 1, 12, 12)))
    with pytest.raises(dk.ShapeError, match=r"Conv2d\(conv1\): expected NCHW input with 1"):
        model(dk.variable("x", (1, 3, 32, 32)))


def test_output_size_formula():
    for w, k, p, s in [(32, 5, 0, 1), (28, 5, 2, 1), (7, 3, 1, 2), (10, 4, 0, 3)]:
        conv = nn.Conv2d(1, 1, k, stride=s, padding=p)
        assert conv(dk.variable("x", (1, 1, w, w))).shape[-1] == (w - k + 2 * p) // s + 1


@BACKENDS
def test_maxpool_ties_go_to_first_and_avgpool_spreads(native):
    x = np.array([[[[1.0, 1.0], [1.0, 0.0]]]])
    xv = dk.variable("x", x.shape)
    with use_native(native):
        g = dk.gradient(dk.sum(dk.max_pool2d(xv, 2)), {"x": x})["x"]
    np.testing.assert_array_equal(g, [[[[1, 0], [0, 0]]]])
    g = dk.gradient(dk.sum(dk.avg_pool2d(xv, 2)), {"x": x})["x"]
    np.testing.assert_array_equal(g, np.full(x.shape, 0.25))


def test_cross_entropy_and_bce_are_stable():
    z = dk.variable("z", (2, 3))
    y = dk.variable("y", (2, 3))
    logits = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4]])
    onehot = np.array([[0.0, 1, 0], [1, 0, 0]])
    loss = nn.CrossEntropyLoss()(z, y)
    value = dk.evaluate(loss, {"z": logits, "y": onehot})
    assert np.isfinite(value) and value == pytest.approx((2e4 + 1e4 + np.log(2)) / 2)
    assert np.all(np.isfinite(dk.gradient(loss, {"z": logits, "y": onehot})["z"]))
    bce = nn.BCEWithLogitsLoss()(z, y)
    v = dk.evaluate(bce, {"z": logits, "y": onehot})
    assert np.isfinite(v)
    g = dk.gradient(bce, {"z": logits, "y": onehot})["z"]
    sig = np.where(logits > 0, 1.0, np.where(logits < 0, 0.0, 0.5))
    np.testing.assert_allclose(g, (sig - onehot) / 6, atol=1e-15)


def test_receptive_field_of_stacked_convolutions():
    rng = np.random.default_rng(0)
    for L, K in [(1, 3), (2, 3), (3, 3), (2, 5)]:
        x = dk.variable("x", (1, 1, 21, 21))
        h = x
        for i in range(L):
            h = dk.conv2d(h, dk.const(rng.random((1, 1, K, K)) + 0.1), padding=K // 2)
        centre = h.shape[-1] // 2
        mask = np.zeros(h.shape)
        mask[0, 0, centre, centre] = 1.0
        g = dk.gradient(dk.sum(h * dk.const(mask)), {"x": rng.standard_normal((1, 1, 21, 21))})["x"]
        rows, cols = np.nonzero(g[0, 0])
        assert rows.max() - rows.min() + 1 == 1 + L * (K - 1)
        assert cols.max() - cols.min() + 1 == 1 + L * (K - 1)


def test_sobel_on_a_ramp_is_constant():
    slope = 0.7
    ramp = slope * np.tile(np.arange(8.0), (8, 1))[None, None]
    out = dk.evaluate(
        dk.conv2d(
            dk.variable("x", ramp.shape),
            dk.const(nn.kernels.as_weight(nn.kernels.SOBEL_X, nn.kernels.SOBEL_Y)),
        ),
        {"x": ramp},
    )
    np.testing.assert_allclose(out[0, 0], -8 * slope)  # cross-correlation: (left - right) * 4
    np.testing.assert_allclose(out[0, 1], 0.0, atol=1e-14)
    blur = dk.evaluate(
        dk.conv2d(
            dk.variable("x", ramp.shape), dk.const(nn.kernels.as_weight(nn.kernels.GAUSSIAN_BLUR))
        ),
        {"x": ramp},
    )
    np.testing.assert_allclose(blur[0, 0], ramp[0, 0, 1:-1, 1:-1])  # a blur keeps a linear ramp


@pytest.mark.parametrize("bias", [True, False])
def test_fuse_conv_bn_matches_eval_model(bias):
    rng = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, bias=bias, dtype=F64),
        nn.BatchNorm2d(3, dtype=F64),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5, bias=bias, dtype=F64),
        nn.BatchNorm1d(5, dtype=F64),
    )
    for name, buf in model.named_buffers():
        if buf.dtype.kind == "f":
            buf[...] = rng.random(buf.shape) + (0.5 if "var" in name else -0.5)
    for p in model.parameters():
        p[...] = rng.standard_normal(p.shape)
    model.eval()
    fused = nn.fuse_conv_bn(model)
    x = rng.standard_normal((2, 2, 6, 6))
    xv = dk.variable("x", x.shape)
    a = dk.compile(model(xv))({**model.inputs(), "x": x}, strict=False)
    b = dk.compile(fused(xv))({**fused.inputs(), "x": x}, strict=False)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert not any(
        isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for _, m in fused.named_modules()
    )


def test_lenet5_shapes_names_and_state_dict():
    for size in (28, 32):
        model = nn.LeNet5(input_size=size, batchnorm=True)
        assert model(dk.variable("x", (2, 1, size, size))).shape == (2, 10)
    params = dict(model.named_parameters())
    assert params["conv1.weight"].shape == (6, 1, 5, 5) and params["fc1.weight"].shape == (120, 400)
    assert params["conv1.weight"].dtype == np.float32
    state = model.state_dict()
    other = nn.LeNet5(batchnorm=True)
    other.load_state_dict(state)
    assert np.array_equal(dict(other.named_parameters())["fc3.bias"], params["fc3.bias"])
    bad = dict(state)
    bad["fc1.weight"] = np.zeros((120, 10))
    with pytest.raises(ValueError, match=r"'fc1.weight' has shape \(120, 400\).*\(120, 10\)"):
        other.load_state_dict(bad)
    with pytest.raises(KeyError, match="missing keys.*bn1"):
        nn.LeNet5(batchnorm=True).load_state_dict(nn.LeNet5().state_dict())
    mlp = nn.MLP([4, 8, 3], activation="tanh")
    assert mlp(dk.variable("x", (5, 4))).shape == (5, 3)


@BACKENDS
@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool_of_relu_is_rewritten_with_the_same_derivatives(native, padding):
    """max_pool(relu(x)) is built as relu(max_pool(x)); values, gradient and tangent equal
    those of pooling the ReLU's output, computed with loops: windows with ties, with a
    maximum of exactly 0 and with only negative values included."""
    rng = np.random.default_rng(11)
    x = np.round(rng.standard_normal((2, 3, 6, 5)), 0)  # many ties, many zeros
    x[0, 0, :2, :2] = -1.0  # a window with only negative values
    xv = dk.variable("x", x.shape)
    out = dk.max_pool2d(dk.relu(xv), 3, 2, padding)
    assert out.op.name == "relu" and out.inputs[0].op.name == "max_pool2d"
    r = np.maximum(x, 0)
    ct = rng.standard_normal(out.shape)
    # loops: each window's cotangent goes to the first maximum of relu(x), times relu'(x)
    expected = np.zeros_like(x)
    n, c, h, w = x.shape
    for a in range(n):
        for f in range(c):
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    rows = range(max(0, 2 * i - padding), min(h, 2 * i - padding + 3))
                    cols = range(max(0, 2 * j - padding), min(w, 2 * j - padding + 3))
                    cells = [(y, z) for y in rows for z in cols]
                    best = max(r[a, f, y, z] for y, z in cells)
                    y, z = next(cell for cell in cells if r[a, f][cell] == best)
                    expected[a, f, y, z] += ct[a, f, i, j] * (x[a, f, y, z] > 0)
    with use_native(native):
        np.testing.assert_array_equal(dk.evaluate(out, {"x": x}), pool_ref(r, 3, 2, padding, "max"))
        g = dk.gradient(dk.sum(out * dk.const(ct)), {"x": x})["x"]
        np.testing.assert_allclose(g, expected, rtol=1e-14, atol=0)
        t = rng.standard_normal(x.shape)
        tangent = dk.jvp(out, {"x": x}, {"x": t})[1]
        np.testing.assert_allclose(np.sum(tangent * ct), np.sum(t * expected), rtol=1e-12)


def test_cross_entropy_takes_class_indices_and_masked_logits():
    z = np.array([[2.0, 0.0, -np.inf], [0.0, 1.0, 3.0]])
    zn = dk.variable("z", (2, 3))
    by_index = nn.CrossEntropyLoss()(zn, np.array([0, 2]))
    by_onehot = nn.CrossEntropyLoss()(zn, np.eye(3)[[0, 2]])
    value = dk.evaluate(by_index, {"z": z})
    assert np.isfinite(value) and value == pytest.approx(dk.evaluate(by_onehot, {"z": z}))
    grad = dk.gradient(by_index, {"z": z})["z"]
    assert np.all(np.isfinite(grad)) and grad[0, 2] == 0.0
    ignored = nn.CrossEntropyLoss(ignore_index=2)(zn, np.array([0, 2]))
    assert dk.evaluate(ignored, {"z": z}) == pytest.approx(-np.log(np.exp(2) / (np.exp(2) + 1)))
    with pytest.raises(dk.ShapeError, match="class indices of shape \\(2,\\)"):
        nn.CrossEntropyLoss()(zn, np.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="avg")


def test_named_parameters_yield_pairs_as_pytorch():
    model = nn.LeNet5()
    pairs = list(model.named_parameters())
    assert all(isinstance(n, str) and isinstance(p, np.ndarray) for n, p in pairs)
    assert [n for n, _ in pairs][:2] == ["conv1.weight", "conv1.bias"]
    assert dict(model.named_parameters())["conv1.weight"] is model.parameters()[0]
    assert len(model.parameters()) == len(pairs)
    bn = nn.BatchNorm2d(3)
    assert [n for n, _ in bn.named_buffers()] == [
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert len(bn.buffers()) == 3


def test_dropout_masks_statistics_gradient_and_eval():
    x = dk.variable("x", (400, 50))
    drop = nn.Dropout(0.3, seed=1)
    y = drop(x)
    values = np.random.default_rng(0).normal(size=(400, 50)).astype(np.float32)
    inputs = drop.inputs()
    (mask,) = inputs.values()
    assert mask.dtype == np.float32 and mask.shape == (400, 50)
    kept = mask != 0
    # kept entries are scaled by 1/(1-p); the zero fraction is p within 4 standard errors
    np.testing.assert_allclose(mask[kept], 1 / 0.7, rtol=1e-6)
    frac = 1 - kept.mean()
    assert abs(frac - 0.3) < 4 * np.sqrt(0.3 * 0.7 / mask.size)
    out = dk.evaluate(y, {"x": values, **inputs})
    np.testing.assert_allclose(out, values * mask, rtol=1e-6)
    # the gradient of sum(dropout(x)^2) is 2 mask^2 x, with the mask drawn with it
    g = dk.gradient(dk.sum(y**2), {"x": values, **inputs}, wrt=["x"])["x"]
    np.testing.assert_allclose(g, 2 * mask**2 * values, rtol=1e-5)
    # a fresh mask for each evaluation; the same sequence for the same seed
    assert not np.array_equal(mask, next(iter(drop.inputs().values())))
    again = nn.Dropout(0.3, seed=1)
    again(x)
    np.testing.assert_array_equal(next(iter(again.inputs().values())), mask)
    # eval mode: the identity, and no mask input
    drop.eval()
    assert drop(x) is x and drop.inputs() == {}
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout(1.0)


def test_dropout_inside_a_model_trains():
    from diffkit.train import SGD, fit, load_digits

    train, test = load_digits(size=8)
    train, test = train.subset(np.arange(300)), test.subset(np.arange(100))
    nn.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10)
    )
    result = fit(model, train, test, SGD(model, lr=0.1, momentum=0.9), 3, 32, progress=False)
    assert result.history[-1]["test_acc"] > 0.6


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_in_batch_slices_equals_one_window_matrix(dtype, monkeypatch):
    """A window matrix larger than CHUNK_ENTRIES is built a slice of the batch at a time;
    value and gradients (input and weight) equal those of the one-matrix path."""
    from diffkit.ops import convolution

    rng = np.random.default_rng(5)
    x_val = rng.standard_normal((7, 3, 9, 8)).astype(dtype)
    w_val = rng.standard_normal((4, 3, 5, 5)).astype(dtype)  # at stride 5: not "direct"
    ct = rng.standard_normal((7, 4, 2, 4)).astype(dtype)

    def run():
        x, w = dk.variable("x", x_val.shape), dk.variable("w", w_val.shape)
        out = dk.conv2d(x, w, stride=(5, 1), padding=(1, 0))
        loss = dk.sum(out * dk.const(ct))
        at = {"x": x_val, "w": w_val}
        ops = {n.op.name for n in dk.ir.topological_order([loss]) if n.kind == "op"}
        return dk.evaluate(out, at), dk.gradient(loss, at), ops

    whole, g_whole, ops_whole = run()
    assert "im2col" in ops_whole and "conv2d_direct" not in ops_whole
    monkeypatch.setattr(convolution, "CHUNK_ENTRIES", 3 * 75 * 8)  # slices of 3 samples
    sliced, g_sliced, ops_sliced = run()
    assert "conv2d_direct" in ops_sliced and "im2col" not in ops_sliced
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(sliced, whole, rtol=tol, atol=tol)
    for k in ("x", "w"):
        np.testing.assert_allclose(g_sliced[k], g_whole[k], rtol=tol, atol=tol)

"""Empty arrays through the image ops and the nn layers: a batch of 0, no channels, an
empty image. Every op runs forward (values against numpy references), in forward mode and
in reverse mode (gradients against the references: zeros where nothing flows), with the
shapes numpy gives and the dtype it was given, on the compiled loops and on numpy; the
layers, losses and LeNet-5 take a batch of 0 as PyTorch does."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import diffkit as dk
from diffkit import nn
from diffkit.ops import convolution, native
from diffkit.ops.convolution import CONV2D_DIRECT, CONV2D_DIRECT_WEIGHT_GRAD, CONV2D_INPUT_GRAD
from diffkit.ops.native import use_native

BACKENDS = pytest.mark.parametrize("native_on", [True, False], ids=["native", "numpy"])
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])

# (n, c, o, h, w, k, stride, padding): stride 1 takes the direct convolution, stride 2
# the window matrix
CONV_GEOMETRIES = [
    (0, 2, 3, 6, 5, 3, 1, 0),  # a batch of 0
    (0, 2, 3, 6, 5, 3, 2, 1),
    (2, 0, 3, 6, 5, 3, 1, 1),  # no input channels: the output is the bias
    (2, 0, 3, 6, 5, 3, 2, 0),
    (2, 2, 0, 6, 5, 3, 1, 0),  # no output channels
    (2, 2, 0, 6, 5, 3, 2, 1),
    (2, 2, 3, 0, 5, 2, 1, 1),  # an empty image, padded: every window is padding
    (2, 2, 3, 4, 0, 2, 2, 1),
    (0, 0, 0, 0, 0, 1, 1, 1),  # nothing at all
]


def _ids(cases):
    return ["x".join(map(str, c)) for c in cases]


def _windows(x, k, s, p, fill=0.0):
    """(N, C, OH, OW, K, K): the windows of the padded input, by numpy."""
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    return sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]


def _conv_ref(x, w, b, s, p):
    out = np.einsum("ncijpq,ocpq->noij", _windows(x, w.shape[2], s, p), w)
    return out + b.reshape(1, -1, 1, 1)


def _conv_grads_ref(x, w, r, s, p):
    """The gradients of sum(conv2d(x, w, b) * r) with respect to x, w and b."""
    k = w.shape[2]
    oh, ow = r.shape[2:]
    gw = np.einsum("noij,ncijpq->ocpq", r, _windows(x, k, s, p))
    n, c, h, wd = x.shape
    gxp = np.zeros((n, c, h + 2 * p, wd + 2 * p))
    for a in range(k):  # scatter each kernel offset's share back
        for q in range(k):
            gxp[:, :, a : a + s * oh : s, q : q + s * ow : s] += np.einsum(
                "noij,oc->ncij", r, w[:, :, a, q]
            )
    return gxp[:, :, p : p + h, p : p + wd], gw, r.sum(axis=(0, 2, 3))


def _tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@BACKENDS
@DTYPES
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=_ids(CONV_GEOMETRIES))
def test_conv2d_forward_reverse_forward_mode_and_second_order(geometry, dtype, native_on):
    n, c, o, h, w, k, s, p = geometry
    rng = np.random.default_rng(0)
    at = {
        "x": rng.standard_normal((n, c, h, w)).astype(dtype),
        "w": rng.standard_normal((o, c, k, k)).astype(dtype),
        "b": rng.standard_normal(o).astype(dtype),
    }
    x, wt, b = (dk.variable(name, at[name].shape) for name in ("x", "w", "b"))
    out = dk.conv2d(x, wt, b, stride=s, padding=p)
    want = _conv_ref(at["x"], at["w"], at["b"], s, p)
    assert out.shape == want.shape
    r = rng.standard_normal(out.shape).astype(dtype)
    with use_native(native_on):
        got = dk.evaluate(out, at)
        assert got.shape == want.shape and got.dtype == dtype
        np.testing.assert_allclose(got, want, **_tolerance(dtype))
        grads = dk.gradient(dk.sum(out * dk.const(r)), at)
        for name, ref in zip(("x", "w", "b"), _conv_grads_ref(at["x"], at["w"], r, s, p)):
            assert grads[name].shape == at[name].shape and grads[name].dtype == dtype, name
            np.testing.assert_allclose(grads[name], ref, **_tolerance(dtype), err_msg=name)
        # forward mode: the tangent along (x, w, b) is conv(tx, w) + conv(x, tw) + tb
        t = {name: rng.standard_normal(v.shape).astype(dtype) for name, v in at.items()}
        (tangent,) = dk.jvp_graph([out], {v: dk.const(t[v.name]) for v in (x, wt, b)})
        want_t = _conv_ref(t["x"], at["w"], t["b"], s, p) + _conv_ref(
            at["x"], t["w"], np.zeros(o), s, p
        )
        np.testing.assert_allclose(dk.evaluate(tangent, at), want_t, **_tolerance(dtype))
        # second order: the gradient of <grad_x, v> with respect to w (input_grad's VJP)
        gx = dk.grad_graph(dk.sum(out * dk.const(r)), "x")
        v = rng.standard_normal(gx.shape).astype(dtype)
        second = dk.gradient(dk.sum(gx * dk.const(v)), {"w": at["w"]})["w"]
        assert second.shape == at["w"].shape
        assert np.all(np.isfinite(second))


@BACKENDS
@pytest.mark.parametrize("chunk", [convolution.CHUNK_ENTRIES, 1], ids=["whole", "sliced"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=_ids(CONV_GEOMETRIES))
def test_direct_convolution_ops_on_empty_arrays(geometry, chunk, native_on, monkeypatch):
    """conv2d_direct, its input gradient and its weight gradient, at either stride, whole or
    a slice of the batch at a time, against the references; and their own gradients."""
    monkeypatch.setattr(convolution, "CHUNK_ENTRIES", chunk)
    n, c, o, h, w, k, s, p = geometry
    rng = np.random.default_rng(1)
    xv = rng.standard_normal((n, c, h, w))
    wv = rng.standard_normal((o, c, k, k))
    bv = rng.standard_normal(o)
    attrs = {"stride": (s, s), "padding": (p, p)}
    ref = _conv_ref(xv, wv, bv, s, p)  # (N, O, OH, OW)
    oh, ow = ref.shape[2:]
    ctv = rng.standard_normal((o, n * oh * ow))
    r = ctv.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
    gx_ref, gw_ref, _ = _conv_grads_ref(xv, wv, r, s, p)
    x, wt, b, ct = (dk.variable(name, v.shape) for name, v in zip("xwbc", (xv, wv, bv, ctv)))
    at = {"x": xv, "w": wv, "b": bv, "c": ctv}
    cases = [
        (dk.apply(CONV2D_DIRECT, x, wt, b, **attrs), ref.transpose(1, 0, 2, 3).reshape(ctv.shape)),
        (dk.apply(CONV2D_INPUT_GRAD, ct, wt, x_shape=xv.shape, **attrs), gx_ref),
        (dk.apply(CONV2D_DIRECT_WEIGHT_GRAD, ct, x, weight_shape=wv.shape, **attrs), gw_ref),
    ]
    with use_native(native_on):
        for out, want in cases:
            used = {name: at[name] for name in dk.compile(out).variables}
            got = dk.evaluate(out, used)
            assert got.shape == out.shape == want.shape, out.op.name
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=out.op.name)
            weights = dk.const(rng.standard_normal(out.shape))
            grads = dk.gradient(dk.sum(out * weights), used)
            for name, g in grads.items():
                assert g.shape == used[name].shape and np.all(np.isfinite(g)), (out.op.name, name)


# (shape, kernel, stride, padding, ceil_mode)
POOL_GEOMETRIES = [
    ((0, 2, 6, 6), 2, 2, 0, False),  # the compiled 2x2 max-pool's geometry, batch of 0
    ((0, 2, 5, 5), 3, 2, 1, True),
    ((2, 0, 6, 6), 2, 2, 0, False),
    ((2, 2, 0, 4), 2, 2, 1, False),  # an empty image, padded
    ((2, 2, 4, 0), 2, 1, 1, True),
]


@BACKENDS
@DTYPES
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("geometry", POOL_GEOMETRIES, ids=[str(g[0]) for g in POOL_GEOMETRIES])
def test_pooling_on_empty_arrays(geometry, kind, dtype, native_on):
    shape, k, s, p, ceil_mode = geometry
    xv = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    x = dk.variable("x", shape)
    pool = dk.max_pool2d if kind == "max" else dk.avg_pool2d
    out = pool(x, k, s, p, ceil_mode=ceil_mode)
    with use_native(native_on):
        got = dk.evaluate(out, {"x": xv})
        assert got.shape == out.shape and got.dtype == dtype
        if not ceil_mode:  # every window whole: numpy's windows are the reference
            win = _windows(xv, k, s, p, -np.inf if kind == "max" else 0.0)
            want = win.max(axis=(4, 5)) if kind == "max" else win.mean(axis=(4, 5))
            np.testing.assert_array_equal(got, want.astype(dtype))
        g = dk.gradient(dk.sum(out), {"x": xv})["x"]
        assert g.shape == shape and g.dtype == dtype
        (tangent,) = dk.jvp_graph([out], {x: dk.const(np.ones(shape, dtype))})
        assert dk.evaluate(tangent, {"x": xv}).shape == out.shape


@BACKENDS
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=_ids(CONV_GEOMETRIES))
def test_window_ops_on_empty_arrays(geometry, native_on):
    """unfold and im2col against numpy's windows; fold and col2im are their adjoints:
    <windows(x), y> = <x, scatter(y)>, and each one's gradient has its input's shape."""
    n, c, _, h, w, k, s, p = geometry
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((n, c, h, w))
    x = dk.variable("x", xv.shape)
    win = _windows(xv, k, s, p)  # (N, C, OH, OW, K, K)
    oh, ow = win.shape[2:4]
    pairs = [
        (dk.unfold(x, k, s, p), win, lambda y: dk.fold(y, xv.shape, k, s, p)),
        (
            dk.im2col(x, k, s, p),
            win.transpose(1, 4, 5, 0, 2, 3).reshape(c * k * k, n * oh * ow),
            lambda y: dk.col2im(y, xv.shape, k, s, p),
        ),
    ]
    with use_native(native_on):
        for gather, want, scatter in pairs:
            got = dk.evaluate(gather, {"x": xv})
            assert got.shape == gather.shape == want.shape
            np.testing.assert_array_equal(got, want)
            yv = rng.standard_normal(want.shape)
            y = dk.variable("y", yv.shape)
            back = scatter(y)
            spread = dk.evaluate(back, {"y": yv})
            assert spread.shape == xv.shape
            np.testing.assert_allclose(np.sum(spread * xv), np.sum(got * yv), atol=1e-12)
            assert dk.gradient(dk.sum(back), {"y": yv})["y"].shape == yv.shape
            assert dk.gradient(dk.sum(gather), {"x": xv})["x"].shape == xv.shape


def test_compiled_loops_are_never_handed_an_empty_array():
    """Each compiled kernel declines arrays or outputs of no entries; numpy answers."""
    x = np.ones((0, 2, 6, 6))
    with use_native(True):
        assert native.im2col(x, (3, 3), (1, 1), (0, 0), (4, 4)) is None
        assert native.col2im(np.ones((18, 0)), x.shape, (3, 3), (1, 1), (0, 0), (4, 4)) is None
        assert native.max_pool_2x2(x, (3, 3)) is None
        assert native.conv_direct(x, np.ones((3, 2, 3, 3)), None, (1, 1), (0, 0), (4, 4)) is None
        w0, ct0, x2 = np.ones((0, 2, 3, 3)), np.ones((0, 32)), np.ones((2, 2, 6, 6))
        geometry = ((1, 1), (0, 0), (4, 4))
        assert native.conv_direct_input_grad(ct0, w0, x2.shape, *geometry) is None
        assert native.conv_direct_weight_grad(ct0, x2, w0.shape, *geometry) is None


# ---- layers, losses, models ----------------------------------------------------------


def _run(module, shape, *, train=True, dtype=np.float32, seed=0):
    """The module's output on a zero (or random) input of ``shape``, and the gradients of
    the output's sum for every input of the graph."""
    module.train(train)
    x = dk.variable("x", shape)
    out = module(x)
    loss = dk.sum(out)
    names = dk.compile(loss).variables
    at = {k: v for k, v in module.inputs().items() if k in names}
    at["x"] = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return out, dk.evaluate(out, at), dk.gradient(loss, at), at


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: nn.BatchNorm1d(3), (0, 3)),
        (lambda: nn.BatchNorm1d(3), (0, 3, 4)),
        (lambda: nn.BatchNorm1d(3), (2, 3, 0)),  # values per channel: 0
        (lambda: nn.BatchNorm2d(3), (0, 3, 4, 4)),
        (lambda: nn.BatchNorm2d(3), (2, 3, 0, 4)),
        (lambda: nn.LayerNorm(4), (0, 4)),
        (lambda: nn.LayerNorm((3, 4)), (0, 3, 4)),
        (lambda: nn.InstanceNorm2d(3, affine=True), (0, 3, 4, 4)),
        (lambda: nn.InstanceNorm2d(3, affine=True), (2, 3, 0, 4)),
        (lambda: nn.Linear(4, 3), (0, 4)),
        (lambda: nn.Conv2d(2, 3, 3, padding=1), (0, 2, 5, 5)),
        (lambda: nn.MaxPool2d(2), (0, 2, 4, 4)),
        (lambda: nn.AvgPool2d(2), (0, 2, 4, 4)),
        (lambda: nn.Flatten(), (0, 3, 2, 2)),
        (lambda: nn.MLP([12, 5, 3]), (0, 3, 2, 2)),
    ],
    ids=lambda v: str(v) if isinstance(v, tuple) else "",
)
def test_layers_on_empty_inputs(make, shape, train):
    """Empty in, empty out (as PyTorch), in training and evaluation: the output has the
    shape the layer gives any batch, stays float32, and every parameter's gradient is 0."""
    module = make()
    out, value, grads, at = _run(module, shape, train=train)
    assert value.shape == out.shape and value.size == 0 and value.dtype == np.float32
    for name, g in grads.items():
        assert g.shape == at[name].shape and g.dtype == np.float32, name
        assert not np.any(g), name


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (0, 3)), (nn.BatchNorm2d, (0, 3, 2, 2))])
def test_batchnorm_training_on_an_empty_batch_leaves_its_statistics(cls, shape):
    """No values, no batch statistics: the running averages and the batch count stay as
    they were (PyTorch leaves the averages too, though it counts the batch)."""
    bn = cls(3)
    before = {k: np.copy(v) for k, v in bn.named_buffers()}
    _run(bn, shape, train=True)
    assert bn.batch_statistics() == []
    bn.update_running(np.zeros(3), np.zeros(3), 0)  # a trainer handing over no values
    for k, v in bn.named_buffers():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    # one value per channel is still refused in training, as PyTorch
    with pytest.raises(ValueError, match="expected more than 1 value per channel"):
        cls(3)(dk.variable("x", (1,) + shape[1:] if len(shape) == 2 else (1, 3, 1, 1)))


def test_instance_norm_still_refuses_a_single_pixel():
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nn.InstanceNorm2d(3)(dk.variable("x", (2, 3, 1, 1)))


@pytest.mark.parametrize(
    "loss,target",
    [
        (nn.MSELoss(), np.zeros((0, 3))),
        (nn.BCEWithLogitsLoss(), np.zeros((0, 3))),
        (nn.CrossEntropyLoss(), np.zeros(0, np.int64)),
        (nn.CrossEntropyLoss(), np.zeros((0, 3))),
        (nn.CrossEntropyLoss(label_smoothing=0.1), np.zeros(0, np.int64)),
    ],
    ids=["mse", "bce", "ce-indices", "ce-probabilities", "ce-smoothed"],
)
def test_losses_on_an_empty_batch(loss, target):
    """The mean of no losses is NaN (as PyTorch's mean reduction and numpy's mean); the
    gradient is empty, with the logits' shape."""
    z = dk.variable("z", (0, 3))
    at = {"z": np.zeros((0, 3))}
    const = dk.const(target) if target.dtype.kind == "f" else target
    value = dk.evaluate(loss(z, const), at)
    assert np.shape(value) == () and np.isnan(value)
    assert dk.gradient(loss(z, const), at)["z"].shape == (0, 3)


@pytest.mark.parametrize("reduction,shape", [("sum", ()), ("none", (0,))])
def test_cross_entropy_sum_and_none_on_an_empty_batch(reduction, shape):
    z = dk.variable("z", (0, 3))
    out = nn.CrossEntropyLoss(reduction=reduction)(z, np.zeros(0, np.int64))
    value = dk.evaluate(out, {"z": np.zeros((0, 3))})
    assert np.shape(value) == shape and not np.any(value)


@BACKENDS
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"pool": "avg"}, {"batchnorm": True}, {"norm": "layer"}, {"norm": "instance"}],
    ids=["max", "avg", "batch", "layer", "instance"],
)
def test_lenet5_on_a_batch_of_zero(kwargs, native_on):
    """Forward: (0, 10) logits; the mean cross-entropy is NaN; backward: every parameter's
    gradient is 0, in float32, on the compiled loops and on numpy."""
    model = nn.LeNet5(**kwargs)
    x = dk.variable("x", (0, 1, 32, 32))
    logits = model(x)
    assert logits.shape == (0, 10)
    loss = nn.CrossEntropyLoss()(logits, np.zeros(0, np.int64))
    names = dk.compile(loss).variables
    at = {k: v for k, v in model.inputs().items() if k in names}
    at["x"] = np.zeros((0, 1, 32, 32), np.float32)
    params = dict(model.named_parameters())
    with use_native(native_on):
        assert dk.evaluate(logits, at).shape == (0, 10)
        assert np.isnan(dk.evaluate(loss, at))
        grads = dk.gradient(loss, at)
    for name, value in params.items():
        assert grads[name].shape == value.shape and grads[name].dtype == np.float32, name
        assert not np.any(grads[name]), name

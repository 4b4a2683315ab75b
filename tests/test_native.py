"""The compiled loops of the image ops against their numpy versions, which stay the
reference: randomized geometries, both float dtypes, non-contiguous inputs, ties."""

from __future__ import annotations

import os

import numpy as np
import pytest

import diffkit as dk
from diffkit.ops import native
from diffkit.ops.convolution import (
    _direct_impl,
    _direct_shape,
    _direct_weight_grad_impl,
    _input_grad_impl,
)
from diffkit.ops.pooling import _max_pool_backward_impl, _max_pool_impl, _pool_shape
from diffkit.ops.windows import _col2im_impl, _im2col_impl


@pytest.fixture(autouse=True, params=["one thread", "batch split over 3 threads"])
def _threads(request, monkeypatch):
    """Every comparison runs with the whole batch on one thread, and with the batch split
    unevenly over three threads, whatever its size."""
    if request.param != "one thread":
        monkeypatch.setattr(native, "PARALLEL_MIN_ENTRIES", 1)
        monkeypatch.setattr(native, "threads", lambda: 3)
    else:
        monkeypatch.setattr(native, "threads", lambda: 1)


def test_extension_is_built():
    """`pip install -e .` compiles diffkit/_native.c; without it every image op silently
    takes the (slower) numpy path. DIFFKIT_NATIVE=0 switches the loops off on purpose."""
    if os.environ.get("DIFFKIT_NATIVE") == "0":
        assert not native.enabled()
    else:
        assert native.available(), "the extension diffkit._native was not built"
        assert native.enabled()


def _both(fn, *args, **kwargs):
    with native.use_native(True):
        fast = fn(*args, **kwargs)
    with native.use_native(False):
        slow = fn(*args, **kwargs)
    return fast, slow


def _layouts(a, rng):
    """The same values in three memory layouts: contiguous, channel-major, reversed rows."""
    yield a
    yield np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    yield np.ascontiguousarray(a[:, :, ::-1])[:, :, ::-1]


def _geometries(count, seed, pool=False):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        if pool:
            ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        else:
            ph, pw = (int(v) for v in rng.integers(0, 3, 2))
        n, c = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h = int(rng.integers(max(kh - 2 * ph, 1), 10))
        w = int(rng.integers(max(kw - 2 * pw, 1), 10))
        yield (n, c, h, w), (kh, kw), (sh, sw), (ph, pw), rng


@pytest.mark.skipif(not native.available(), reason="extension not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_and_col2im_equal_numpy(dtype):
    for shape, k, s, p, rng in _geometries(40, 1):
        x = rng.standard_normal(shape).astype(dtype)
        for xl in _layouts(x, rng):
            fast, slow = _both(_im2col_impl, xl, k, s, p)
            np.testing.assert_array_equal(fast, slow)
        cols = rng.standard_normal(fast.shape).astype(dtype)
        fast, slow = _both(_col2im_impl, cols, shape, k, s, p)
        tol = 1e-5 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol)


@pytest.mark.skipif(not native.available(), reason="extension not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool_backward_equals_numpy_with_ties(dtype, ceil_mode):
    for shape, k, s, p, rng in _geometries(40, 2, pool=True):
        # rounded and clipped at 0, as after a ReLU: many windows hold ties
        x = np.maximum(np.round(rng.standard_normal(shape), 1), 0).astype(dtype)
        out_shape = _pool_shape((shape,), k, s, p, ceil_mode)
        ct = rng.standard_normal(out_shape).astype(dtype)
        # overlapping windows add several cotangents into one entry, in another order
        tol = 1e-6 if dtype == np.float32 else 1e-15
        for xl in _layouts(x, rng):
            y = _max_pool_impl(xl, k, s, p, ceil_mode)
            fast, slow = _both(_max_pool_backward_impl, ct, xl, y, k, s, p, ceil_mode)
            np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol)
            assert np.array_equal(fast != 0, slow != 0)  # the same entries receive them


@pytest.mark.skipif(not native.available(), reason="extension not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_two_by_two_pool_gradient_equals_numpy(dtype):
    """The 2x2, stride-2 paths (the pool, and its gradient writing each window once): ties
    after a ReLU, odd sizes whose last row or column no window covers, ceil mode, all
    three layouts."""
    rng = np.random.default_rng(12)
    for h, w in ((6, 6), (7, 5), (5, 8), (2, 3)):
        x = np.maximum(np.round(rng.standard_normal((3, 4, h, w)), 1), 0).astype(dtype)
        for ceil_mode in (False, True):
            for xl in _layouts(x, rng):
                y, y_slow = _both(_max_pool_impl, xl, (2, 2), (2, 2), (0, 0), ceil_mode)
                np.testing.assert_array_equal(y, y_slow)
                ct = rng.standard_normal(y.shape).astype(dtype)
                fast, slow = _both(
                    _max_pool_backward_impl, ct, xl, y, (2, 2), (2, 2), (0, 0), ceil_mode
                )
                np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_gradient_with_nan_and_infinite_inputs(dtype):
    x = np.arange(2 * 3 * 6 * 6, dtype=dtype).reshape(2, 3, 6, 6)
    x[0, 1, 2, 3] = np.nan
    x[1, 2, 0, 0] = -np.inf
    x[1, 0, 4, 5] = np.inf
    for xl in _layouts(x, np.random.default_rng(0)):
        y, y_slow = _both(_max_pool_impl, xl, (2, 2), (2, 2), (0, 0))
        np.testing.assert_array_equal(y, y_slow)  # NaN and inf where numpy has them
        assert np.isnan(y[0, 1, 1, 1]) and np.isnan(y).sum() == 1 and y[1, 0, 2, 2] == np.inf
        ct = np.ones_like(y)
        g, g_slow = _both(_max_pool_backward_impl, ct, xl, y, (2, 2), (2, 2), (0, 0))
        np.testing.assert_array_equal(g, g_slow)  # none for the NaN window, as numpy
        assert g.sum() == y.size - 1
        # laid out as the input (channel-major input, channel-major gradient: a pool over a
        # convolution's output hands its gradient back without a copy)
        assert np.argsort(np.abs(g.strides)).tolist() == np.argsort(np.abs(xl.strides)).tolist()


@pytest.mark.parametrize("on", [True, False])
def test_infinite_cotangent_reaches_only_the_first_maximum(on):
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]]]])
    ct = np.array([[[[np.inf]]]])
    y = _max_pool_impl(x, (2, 2), (2, 2), (0, 0))
    with native.use_native(on):
        g = _max_pool_backward_impl(ct, x, y, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(g, [[[[0, np.inf], [0, 0]]]])


def test_other_dtypes_take_the_numpy_path():
    x = (np.arange(32.0) + 1j).reshape(1, 2, 4, 4)
    assert native.im2col(x, (2, 2), (1, 1), (0, 0), (3, 3)) is None
    mixed = native.max_pool_backward(
        np.ones((1, 2, 2, 2), np.float32), x.real, np.ones((1, 2, 2, 2)), (2, 2), (2, 2), (0, 0)
    )
    assert mixed is None
    cols = dk.evaluate(dk.im2col(dk.variable("x", x.shape), 2), {"x": x})
    assert cols.dtype == np.complex128 and cols.shape == (8, 9)


@pytest.mark.skipif(not native._DIRECT, reason="no direct convolution on this CPU or build")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_convolution_equals_numpy(dtype):
    """Random geometries within the direct kernels' reach (strides 1 to 3, windows up to 1024
    entries, output channels not a multiple of the kernels' block of 4, planes whose rows
    are shorter and longer than a tile), three memory layouts: the product with and
    without bias, the weight gradient and the input gradient."""
    rng = np.random.default_rng(4)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    checked = 0
    while checked < 60:
        kh, kw = int(rng.integers(1, 8)), int(rng.integers(1, 12))
        c = int(rng.integers(1, 24 if checked % 10 == 0 else 5))
        if c * kh * kw > native.DIRECT_MAX_WINDOW:
            continue
        s = (1, 1) if checked % 2 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        n, o = int(rng.integers(1, 4)), int(rng.integers(1, 11))
        h = int(rng.integers(max(kh - 2 * p[0], 1), 12))
        w = int(rng.integers(max(kw - 2 * p[1], 1), 60))
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        weight = rng.standard_normal((o, c, kh, kw)).astype(dtype)
        bias = rng.standard_normal(o).astype(dtype)
        out_shape = _direct_shape((x.shape, weight.shape), s, p)
        ct = rng.standard_normal(out_shape).astype(dtype)
        for xl in _layouts(x, rng):
            fast, slow = _both(_direct_impl, xl, weight, stride=s, padding=p)
            np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol * c * kh * kw)
            fast, slow = _both(_direct_impl, xl, weight, bias, stride=s, padding=p)
            np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol * c * kh * kw)
            fast, slow = _both(_direct_weight_grad_impl, ct, xl, weight.shape, s, p)
            scale = np.sqrt(ct.size / o)
            np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol * scale)
        fast, slow = _both(_input_grad_impl, ct, weight, x.shape, s, p)
        assert fast.dtype == dtype and fast.flags.c_contiguous
        np.testing.assert_allclose(fast, slow, rtol=tol, atol=tol * np.sqrt(o * kh * kw))
        checked += 1


def test_direct_kernels_apply_to_small_strides_and_windows():
    assert native.direct_applies((16, 6, 5, 5), (1, 1))
    assert native.direct_applies((16, 6, 5, 5), (2, 1))
    assert not native.direct_applies((16, 6, 5, 5), (1, 5))
    assert not native.direct_applies((16, 6, 1, 1), (2, 2))  # a strided 1x1: im2col
    assert not native.direct_applies((16, 64, 5, 5), (1, 1))  # 1600 window entries
    x = np.ones((1, 1, 6, 6), np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    assert native.conv_direct(x, w, None, (5, 5), (0, 0), (1, 1)) is None
    assert native.conv_direct(x.astype(np.float64), w, None, (1, 1), (0, 0), (4, 4)) is None
    assert native.conv_direct(x.astype(np.complex128), w, None, (1, 1), (0, 0), (4, 4)) is None


@pytest.mark.skipif(not native._DIRECT, reason="no direct convolution on this CPU or build")
def test_direct_convolution_gradients_in_float32():
    """A float32 first layer (direct) and its gradients against the numpy path."""
    rng = np.random.default_rng(5)
    layer = dk.nn.Conv2d(3, 5, 3, padding=1)
    x = rng.standard_normal((4, 3, 9, 40)).astype(np.float32)
    xv = dk.variable("x", x.shape)
    out = layer(xv)
    assert any(n.op is not None and n.op.name == "conv2d_direct" for n in _nodes(out))
    loss = dk.sum(out * dk.const(rng.standard_normal(out.shape).astype(np.float32)))
    at = {**layer.inputs(), "x": x}
    fast, slow = _both(dk.gradient, loss, at)
    for name in slow:
        assert fast[name].dtype == np.float32
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-4, atol=1e-3)


def _nodes(out):
    from diffkit.ir.schedule import topological_order

    return topological_order([out])


def _im2col_twice_split():
    x = np.arange(4 * 3 * 16 * 16, dtype=np.float32).reshape(4, 3, 16, 16)
    with native.use_native(True):
        fast = _im2col_impl(x, (3, 3), (1, 1), (1, 1))
    with native.use_native(False):
        slow = _im2col_impl(x, (3, 3), (1, 1), (1, 1))
    return bool(np.array_equal(fast, slow))


@pytest.mark.skipif(not native.available() or not hasattr(os, "fork"), reason="no fork")
def test_kernel_threads_work_in_a_forked_child():
    """A child forked after the worker threads started gets its own (the threads do not
    survive fork), instead of waiting for the parent's forever."""
    import multiprocessing

    assert _im2col_twice_split()  # the parent's workers exist now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_im2col_twice_split)
        assert result.get(timeout=60)


@pytest.mark.skipif(not native._DIRECT, reason="no direct convolution on this CPU or build")
def test_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    """Every kernel gives the same bits on 1, 2 or 3 threads (the weight gradient's threads
    share output channels, not samples, so its sums run in one order): a study on a pool of
    single-threaded worker processes reproduces the serial one exactly."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((7, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    ct = rng.standard_normal((16, 7 * 100)).astype(np.float32)
    monkeypatch.setattr(native, "PARALLEL_MIN_ENTRIES", 1)
    results = []
    for count in (1, 2, 3):
        monkeypatch.setattr(native, "threads", lambda count=count: count)
        y = _max_pool_impl(x, (2, 2), (2, 2), (0, 0))
        results.append(
            [
                _direct_impl(x, w, stride=(1, 1), padding=(0, 0)),
                _direct_weight_grad_impl(ct, x, w.shape, (1, 1), (0, 0)),
                _input_grad_impl(ct, w, x.shape, (1, 1), (0, 0)),
                _im2col_impl(x, (5, 5), (1, 1), (0, 0)),
                _max_pool_backward_impl(np.ones_like(y), x, y, (2, 2), (2, 2), (0, 0)),
            ]
        )
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)

"""Pooling, normalization, activation, Dropout2d and Residual layers without PyTorch:
values against loops over pixels, shapes (unbatched and empty inputs), float32 kept
float32, errors that name the layer and the problem, and seeded channel dropout."""

from __future__ import annotations

import math

import numpy as np
import pytest

import diffkit as dk
from diffkit import nn


def _loop_max_pool(x, k, s, p, d, ceil):
    """Max-pooling by a loop over output pixels and window entries (PyTorch's geometry)."""
    n, c, h, w = x.shape
    out = []
    for size, kk, ss, pp, dd in ((h, k[0], s[0], p[0], d[0]), (w, k[1], s[1], p[1], d[1])):
        span = size + 2 * pp - dd * (kk - 1) - 1
        o = (-(-span // ss) if ceil else span // ss) + 1
        if ceil and (o - 1) * ss >= size + pp:
            o -= 1
        out.append(o)
    y = np.full((n, c, out[0], out[1]), -np.inf)
    first = np.zeros((n, c, out[0], out[1], 2), dtype=int)
    for i in range(out[0]):
        for j in range(out[1]):
            for a in range(k[0]):
                for b in range(k[1]):
                    r, q = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= r < h and 0 <= q < w:
                        v = x[:, :, r, q]
                        better = v > y[:, :, i, j]
                        y[:, :, i, j] = np.where(better, v, y[:, :, i, j])
                        first[:, :, i, j][better] = (r, q)
    return y, first


@pytest.mark.parametrize(
    "k,s,p,d,ceil",
    [((3, 3), (2, 2), (1, 1), (2, 2), True), ((2, 3), (1, 2), (0, 1), (3, 1), False)],
)
def test_dilated_max_pool_against_a_loop_over_pixels(k, s, p, d, ceil):
    """Values, and the gradient of each output landing on its window's first maximum."""
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal((2, 2, 9, 8)), 1)  # ties
    xv = dk.variable("x", x.shape)
    out = dk.max_pool2d(xv, k, s, p, d, ceil)
    want, first = _loop_max_pool(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(dk.evaluate(out, {"x": x}), want)
    ct = rng.standard_normal(want.shape)
    grad = dk.gradient(dk.sum(out * dk.const(ct)), {"x": x})["x"]
    expected = np.zeros_like(x)
    for idx in np.ndindex(want.shape):
        r, q = first[idx]
        expected[idx[0], idx[1], r, q] += ct[idx]
    np.testing.assert_allclose(grad, expected, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("size,hw", [((2, 3), (5, 7)), ((4, 6), (3, 4)), ((1, 1), (4, 5))])
def test_adaptive_pools_against_loops_over_bins(size, hw):
    x = np.random.default_rng(1).standard_normal((2, 3) + hw)
    xv = dk.variable("x", x.shape)
    avg = dk.evaluate(dk.adaptive_avg_pool2d(xv, size), {"x": x})
    mx = dk.evaluate(dk.adaptive_max_pool2d(xv, size), {"x": x})
    for i in range(size[0]):
        r0, r1 = math.floor(i * hw[0] / size[0]), math.ceil((i + 1) * hw[0] / size[0])
        for j in range(size[1]):
            c0, c1 = math.floor(j * hw[1] / size[1]), math.ceil((j + 1) * hw[1] / size[1])
            block = x[:, :, r0:r1, c0:c1]
            np.testing.assert_allclose(avg[:, :, i, j], block.mean(axis=(2, 3)), rtol=1e-13)
            np.testing.assert_array_equal(mx[:, :, i, j], block.max(axis=(2, 3)))


def test_avg_pool_divisor_override_divides_every_window_by_it():
    x = np.arange(2 * 1 * 5 * 5, dtype=float).reshape(2, 1, 5, 5)
    xv = dk.variable("x", x.shape)
    got = dk.evaluate(dk.avg_pool2d(xv, 3, 2, 1, divisor_override=7), {"x": x})
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.array(
        [
            [
                [
                    [padded[n, 0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].sum() / 7 for j in range(3)]
                    for i in range(3)
                ]
            ]
            for n in range(2)
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-14)


LAYERS = [
    (nn.MaxPool2d(3, 2, 1, dilation=2), (2, 3, 9, 9), (2, 3, 4, 4)),
    (nn.AvgPool2d(2, divisor_override=3), (2, 3, 6, 6), (2, 3, 3, 3)),
    (nn.AdaptiveAvgPool2d((2, None)), (2, 3, 5, 7), (2, 3, 2, 7)),
    (nn.AdaptiveMaxPool2d(1), (2, 3, 5, 7), (2, 3, 1, 1)),
    (nn.GroupNorm(3, 6), (2, 6, 4, 4), (2, 6, 4, 4)),
    (nn.InstanceNorm2d(3, affine=True, track_running_stats=True), (2, 3, 4, 4), (2, 3, 4, 4)),
    (nn.GELU(), (2, 5), (2, 5)),
    (nn.ELU(), (2, 5), (2, 5)),
    (nn.SELU(), (2, 5), (2, 5)),
    (nn.SiLU(), (2, 5), (2, 5)),
    (nn.Mish(), (2, 5), (2, 5)),
    (nn.LeakyReLU(), (2, 5), (2, 5)),
    (nn.Hardtanh(), (2, 5), (2, 5)),
    (nn.ReLU6(), (2, 5), (2, 5)),
    (nn.Softplus(2.0, 1.0), (2, 5), (2, 5)),
    (nn.GLU(), (2, 6), (2, 3)),
    (nn.Dropout2d(0.3, seed=1), (2, 3, 4, 4), (2, 3, 4, 4)),
    (nn.Residual(nn.Conv2d(3, 3, 3, padding=1)), (2, 3, 4, 4), (2, 3, 4, 4)),
]


@pytest.mark.parametrize("layer,shape,out_shape", LAYERS, ids=lambda v: type(v).__name__)
def test_float32_in_float32_out_and_gradients(layer, shape, out_shape):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    xv = dk.variable("x", shape)
    out = layer(xv)
    assert out.shape == out_shape
    used = dk.compile(out).variables  # the graph's own inputs (no step counter)
    at = {k: v for k, v in {**layer.inputs(), "x": x}.items() if k in used}
    y = dk.evaluate(out, at)
    g = dk.gradient(dk.sum(out), at)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    assert all(v.dtype == np.float32 for v in g.values())


@pytest.mark.parametrize(
    "layer",
    [
        nn.MaxPool2d(2),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(3),
        nn.AdaptiveMaxPool2d((2, 3)),
        nn.InstanceNorm2d(3),
    ],
    ids=lambda v: type(v).__name__,
)
def test_unbatched_inputs_equal_a_batch_of_one(layer):
    x = np.random.default_rng(3).standard_normal((3, 6, 6))
    one = dk.evaluate(layer(dk.variable("x", (3, 6, 6))), {"x": x})
    batch = dk.evaluate(layer(dk.variable("xb", (1, 3, 6, 6))), {"xb": x[None]})
    assert one.shape == batch.shape[1:]
    np.testing.assert_array_equal(one, batch[0])


@pytest.mark.parametrize(
    "layer",
    [
        nn.MaxPool2d(2, dilation=2),
        nn.AvgPool2d(3, 2, 1),
        nn.AdaptiveAvgPool2d((2, 2)),
        nn.AdaptiveMaxPool2d((2, 2)),
        nn.GroupNorm(1, 3),
        nn.InstanceNorm2d(3),
    ],
    ids=lambda v: type(v).__name__,
)
def test_a_batch_of_zero_gives_an_empty_output_and_gradient(layer):
    xv = dk.variable("x", (0, 3, 6, 6))
    out = layer(xv)
    at = {**layer.inputs(), "x": np.zeros((0, 3, 6, 6))}
    assert dk.evaluate(out, at).shape == out.shape and out.shape[0] == 0
    assert dk.gradient(dk.sum(out), at)["x"].shape == (0, 3, 6, 6)


def test_state_dict_keys_as_pytorch():
    assert list(nn.GroupNorm(2, 4).state_dict()) == ["weight", "bias"]
    assert list(nn.GroupNorm(2, 4, bias=False).state_dict()) == ["weight"]
    assert list(nn.GroupNorm(2, 4, affine=False).state_dict()) == []
    tracked = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    assert list(tracked.state_dict()) == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    block = nn.Residual(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(2, 4, 1))
    assert list(block.state_dict()) == [
        "body.weight",
        "body.bias",
        "shortcut.weight",
        "shortcut.bias",
    ]


def test_dropout2d_is_seeded_and_scales_whole_channels():
    x = np.ones((3, 4, 2, 2))
    xv = dk.variable("x", x.shape)
    draws = []
    for _ in range(2):
        layer = nn.Dropout2d(0.5, seed=11)
        out = layer(xv)
        draws.append([dk.evaluate(out, {**layer.inputs(), "x": x}) for _ in range(3)])
    for a, b in zip(*draws):
        np.testing.assert_array_equal(a, b)  # the same seed, the same masks
    assert not np.array_equal(draws[0][0], draws[0][1])  # a fresh mask per step
    for y in draws[0]:
        assert set(np.unique(y)) <= {0.0, 2.0}
        assert np.all(y.min(axis=(2, 3)) == y.max(axis=(2, 3)))


ERRORS = [
    (lambda: nn.MaxPool2d(2)(dk.variable("x", (3, 4))), dk.ShapeError, r"MaxPool2d.*CHW"),
    (lambda: nn.MaxPool2d(3, padding=2)(dk.variable("x", (1, 1, 9, 9))), dk.ShapeError, "half"),
    (lambda: nn.MaxPool2d(0), ValueError, "kernel_size"),
    (
        lambda: nn.AvgPool2d(2, divisor_override=0)(dk.variable("x", (1, 1, 4, 4))),
        ValueError,
        "divisor_override",
    ),
    (
        lambda: nn.AdaptiveAvgPool2d((2, -1))(dk.variable("x", (1, 1, 4, 4))),
        ValueError,
        "output_size",
    ),
    (
        lambda: nn.AdaptiveMaxPool2d(2)(dk.variable("x", (1, 1, 0, 4))),
        dk.ShapeError,
        "height and width",
    ),
    (lambda: nn.GroupNorm(3, 10), ValueError, r"num_channels \(10\) must be divisible"),
    (lambda: nn.GroupNorm(2, 4)(dk.variable("x", (2, 6, 3))), dk.ShapeError, "GroupNorm"),
    (lambda: nn.InstanceNorm2d(3)(dk.variable("x", (2, 3, 1, 1))), ValueError, "spatial"),
    (
        lambda: nn.InstanceNorm2d(3, affine=True)(dk.variable("x", (2, 4, 3, 3))),
        dk.ShapeError,
        "3 channels",
    ),
    (lambda: nn.GLU()(dk.variable("x", (2, 5))), dk.ShapeError, "even"),
    (lambda: nn.GELU("fast"), ValueError, "approximate"),
    (lambda: nn.Hardtanh(1.0, -1.0), ValueError, "min_val"),
    (lambda: nn.Dropout2d(0.5)(dk.variable("x", (2, 3))), dk.ShapeError, "Dropout2d"),
    (lambda: nn.Dropout2d(1.5), ValueError, "probability"),
    (
        lambda: nn.Residual(nn.Conv2d(2, 3, 1))(dk.variable("x", (1, 2, 4, 4))),
        dk.ShapeError,
        "shortcut",
    ),
]


@pytest.mark.parametrize("build,error,match", ERRORS)
def test_bad_input_gets_a_one_line_error(build, error, match):
    with pytest.raises(error, match=match) as info:
        build()
    assert "\n" not in str(info.value)


def test_kinks_follow_pytorchs_conventions():
    """The derivatives at the kinks, from PyTorch's formulas (checked against PyTorch in
    tests/oracle): ELU, SELU and leaky ReLU take the negative slope at 0, hardtanh and
    ReLU6 have slope 0 at their bounds and 1 inside, GELU 1/2 at 0."""
    x = dk.variable("x", (5,))
    at = {"x": np.array([0.0, -1.0, 1.0, 6.0, 0.5])}
    slopes = {
        "elu": (nn.ELU(0.7), [0.7]),
        "selu": (nn.SELU(), [1.0507009873554805 * 1.6732632423543772]),
        "leaky": (nn.LeakyReLU(0.1), [0.1]),
        "hardtanh": (nn.Hardtanh(), [1.0, 0.0, 0.0, 0.0, 1.0]),
        "relu6": (nn.ReLU6(), [0.0, 0.0, 1.0, 0.0, 1.0]),
        "gelu": (nn.GELU(), [0.5]),
    }
    for name, (layer, want) in slopes.items():
        g = dk.gradient(dk.sum(layer(x)), at)["x"]
        np.testing.assert_allclose(g[: len(want)], want, rtol=1e-15, err_msg=name)


def test_activations_stay_finite_far_out():
    x = np.array([-1e4, -800.0, -100.0, 100.0, 800.0, 1e4], dtype=np.float32)
    xv = dk.variable("x", x.shape)
    for layer in (
        nn.GELU(),
        nn.GELU("tanh"),
        nn.ELU(),
        nn.SELU(),
        nn.SiLU(),
        nn.Mish(),
        nn.Softplus(),
        nn.Softplus(0.5, 5.0),
    ):
        out = layer(xv)
        y = dk.evaluate(out, {"x": x})
        g = dk.gradient(dk.sum(out), {"x": x})["x"]
        assert np.isfinite(y).all() and np.isfinite(g).all(), type(layer).__name__

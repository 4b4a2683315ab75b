"""Conv2d, ConvTranspose2d, their functional forms and ``pad`` against PyTorch in float64
(to 1e-10): values and the gradients of the input, the weight and the bias, with the
weights loaded through ``state_dict``, for every option (stride, padding as ints, pairs,
"same" and "valid", dilation, groups, bias, padding modes, output padding, unbatched and
empty inputs), including the constructor arguments and input sizes of PyTorch's own
module tests for these layers (``common_nn``'s and ``common_modules``' cases)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import diffkit as dk
from diffkit import nn
from diffkit.ops import native

F64 = np.float64
TOL = dict(rtol=1e-10, atol=1e-10)


def _torch_layer(kind: str, args, kwargs):
    torch.manual_seed(0)
    cls = torch.nn.Conv2d if kind == "conv" else torch.nn.ConvTranspose2d
    return cls(*args, **kwargs).double()


def _dk_layer(kind: str, args, kwargs, tlayer):
    """The diffkit layer of the same arguments, PyTorch's weights loaded into it."""
    cls = nn.Conv2d if kind == "conv" else nn.ConvTranspose2d
    layer = cls(*args, **kwargs, dtype=F64)
    assert list(layer.state_dict()) == list(tlayer.state_dict())
    for key, value in tlayer.state_dict().items():
        assert layer.state_dict()[key].shape == tuple(value.shape), key
    layer.load_state_dict({k: v.numpy() for k, v in tlayer.state_dict().items()})
    return layer


def _check(layer, tlayer, x, **forward):
    """Forward values and the gradients of sum(out * w) for the input and parameters."""
    rng = np.random.default_rng(1)
    xv = dk.variable("x", x.shape)
    out = layer.forward(xv, **forward) if forward else layer(xv)
    tx = torch.tensor(x, requires_grad=True)
    tout = tlayer(tx, **forward) if forward else tlayer(tx)
    assert out.shape == tuple(tout.shape)
    w = rng.standard_normal(out.shape)
    (tout * torch.tensor(w)).sum().backward()
    at = {**layer.inputs(), "x": x}
    np.testing.assert_allclose(dk.compile(out)(at, strict=False), tout.detach().numpy(), **TOL)
    grads = dk.gradient(dk.sum(out * dk.const(w)), at)
    np.testing.assert_allclose(grads["x"], tx.grad.numpy(), **TOL)
    for name, p in tlayer.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), **TOL)


def _run(kind, args, kwargs, input_size, seed=2, **forward):
    tlayer = _torch_layer(kind, args, kwargs)
    layer = _dk_layer(kind, args, kwargs, tlayer)
    x = np.random.default_rng(seed).standard_normal(input_size)
    _check(layer, tlayer, x, **forward)


# PyTorch's module tests (torch/testing/_internal/common_nn.py, common_modules.py): the
# constructor arguments and input sizes of every Conv2d and ConvTranspose2d case
TORCH_CASES = [
    ("conv", (3, 4, (3, 2)), {}, (2, 3, 7, 5)),
    ("conv", (3, 4, (3, 3), (2, 2)), {}, (2, 3, 6, 6)),
    ("conv", (3, 4, (3, 3), (2, 2), (1, 1)), {}, (2, 3, 6, 6)),
    ("conv", (3, 2, (3, 3), (2, 2), (1, 1), (2, 2)), {}, (2, 3, 8, 8)),
    ("conv", (3, 4, (3, 2), 1, 0, 1, 1, False), {}, (2, 3, 6, 5)),
    ("conv", (3, 4, (3, 2)), {}, (0, 3, 7, 5)),
    ("conv", (4, 6, (3, 2)), {"groups": 2}, (2, 4, 6, 5)),
    ("conv", (2, 4, (3, 4)), {"padding": "valid"}, (2, 2, 6, 5)),
    ("conv", (2, 4, (3, 4)), {"padding": "same"}, (2, 2, 6, 5)),
    ("conv", (2, 4, (3, 4)), {"padding": "same", "dilation": 2}, (2, 2, 6, 5)),
    ("convT", (3, 4, 3, (3, 2), 1, (1, 1)), {}, (1, 3, 7, 6)),
    ("convT", (3, 4, 3, (2, 3), 1, (1, 1), 1, False, (2, 2)), {}, (1, 3, 6, 7)),
    ("convT", (3, 4, 3, (2, 3), 1, (1, 1), 1, False), {}, (1, 3, 6, 7)),
    ("convT", (2, 4, (2, 3)), {"groups": 2}, (1, 2, 4, 5)),
    ("conv", (4, 4, (3, 3)), {"groups": 4}, (2, 4, 6, 6)),
    ("conv", (4, 8, (3, 3)), {"groups": 4}, (2, 4, 6, 6)),
    ("conv", (4, 4, (3, 3)), {"stride": (2, 2), "groups": 4}, (2, 4, 6, 6)),
    ("conv", (4, 4, (3, 3)), {"padding": (1, 1), "groups": 4}, (2, 4, 6, 6)),
    ("conv", (4, 4, (2, 2)), {"dilation": (2, 2), "groups": 4}, (2, 4, 5, 5)),
    # the padding modes at stride 2 (common_nn's "<mode>_stride2_pad2")
    *[
        ("conv", (2, 3, 3, 2, (1, 2), 1, 1, True, mode), {}, (2, 2, 4, 4))
        for mode in ("reflect", "circular", "replicate", "zeros")
    ],
    # common_modules' ModuleInfo inputs: batched and unbatched, padding "same"
    ("conv", (4, 5, 3), {}, (2, 4, 3, 4)),
    ("conv", (4, 5, 3), {}, (4, 3, 4)),
    ("conv", (4, 5, 3), {"padding": "same"}, (2, 4, 3, 4)),
    ("conv", (4, 5, 3), {"padding": "same"}, (4, 3, 4)),
    ("convT", (4, 5, 3), {}, (2, 4, 3, 4)),
    ("convT", (4, 5, 3), {}, (4, 3, 4)),
]


@pytest.mark.parametrize("kind,args,kwargs,input_size", TORCH_CASES)
def test_pytorch_module_cases(kind, args, kwargs, input_size):
    _run(kind, args, kwargs, input_size)


# every option of Conv2d, alone and combined (in, out, kernel, keyword arguments, input)
CONV_OPTIONS = [
    (2, 3, 3, {"stride": 2, "padding": 1}, (2, 2, 7, 6)),
    (2, 3, (2, 3), {"stride": (1, 2), "padding": (2, 0)}, (2, 2, 6, 7)),
    (2, 4, 3, {"dilation": 2}, (2, 2, 9, 8)),
    (2, 4, (3, 2), {"dilation": (1, 3), "stride": (2, 1), "padding": (1, 2)}, (1, 2, 8, 9)),
    (4, 6, 3, {"groups": 2, "padding": 1}, (2, 4, 6, 5)),
    (6, 6, 3, {"groups": 3, "dilation": 2, "padding": 2}, (2, 6, 7, 7)),
    (4, 4, 5, {"groups": 4, "padding": "same"}, (2, 4, 7, 6)),  # depthwise
    (3, 6, 3, {"groups": 3, "stride": 2, "bias": False}, (2, 3, 8, 7)),
    (2, 3, 4, {"padding": "same"}, (2, 2, 7, 6)),  # even kernel: more padding after
    (2, 3, (2, 4), {"padding": "same", "dilation": (3, 1)}, (2, 2, 8, 7)),
    (2, 3, (4, 2), {"padding": "same", "padding_mode": "reflect"}, (2, 2, 6, 7)),
    (2, 3, 3, {"padding": "same", "padding_mode": "circular", "dilation": 2}, (2, 2, 6, 5)),
    (2, 3, 3, {"padding": (2, 1), "padding_mode": "replicate", "stride": 2}, (2, 2, 6, 7)),
    (4, 4, 3, {"padding": 1, "padding_mode": "reflect", "groups": 4}, (2, 4, 5, 5)),
    (2, 3, 3, {"padding": 3, "padding_mode": "circular"}, (1, 2, 4, 4)),  # pad = size - 1
    (2, 3, 3, {"padding": "valid", "padding_mode": "reflect"}, (2, 2, 5, 5)),
    (2, 3, 1, {"stride": 3}, (2, 2, 7, 7)),
    (2, 3, 3, {"padding": 1}, (2, 5, 4)),  # unbatched
    (2, 4, 3, {"groups": 2, "dilation": 2, "padding": "same"}, (2, 5, 6)),
    (2, 3, 3, {"padding": 1, "groups": 1}, (0, 2, 5, 5)),  # an empty batch
    (2, 3, 3, {"stride": 1}, (2, 2, 3, 3)),  # a 1x1 output
    (1, 40, 3, {"padding": 1}, (2, 1, 5, 5)),  # more output channels than a register block
]


@pytest.mark.parametrize("cin,cout,k,kwargs,input_size", CONV_OPTIONS)
def test_conv2d_options(cin, cout, k, kwargs, input_size):
    _run("conv", (cin, cout, k), kwargs, input_size)


CONV_TRANSPOSE_OPTIONS = [
    (2, 3, 3, {}, (2, 2, 4, 5)),
    (2, 3, 3, {"stride": 2, "padding": 1, "output_padding": 1}, (2, 2, 4, 5)),
    (2, 3, (3, 2), {"stride": (3, 2), "padding": (2, 0), "output_padding": (2, 1)}, (1, 2, 3, 4)),
    (2, 3, 3, {"dilation": 2, "padding": 1}, (2, 2, 4, 4)),
    (2, 3, 3, {"dilation": 3, "output_padding": 2}, (2, 2, 4, 4)),  # output_padding >= stride
    (4, 6, 3, {"groups": 2, "stride": 2, "bias": False}, (2, 4, 3, 4)),
    (4, 4, 3, {"groups": 4, "stride": (1, 2), "dilation": (2, 1)}, (2, 4, 3, 3)),
    (2, 3, 2, {"stride": 2}, (2, 4, 3)),  # unbatched
    (2, 3, 3, {"stride": 2}, (0, 2, 4, 4)),  # an empty batch
]


@pytest.mark.parametrize("cin,cout,k,kwargs,input_size", CONV_TRANSPOSE_OPTIONS)
def test_conv_transpose2d_options(cin, cout, k, kwargs, input_size):
    _run("convT", (cin, cout, k), kwargs, input_size)


def test_conv_transpose2d_output_size():
    """``forward(x, output_size)`` picks the output padding as PyTorch's, and refuses a
    size out of reach."""
    args, kwargs = (2, 3, 3), {"stride": (3, 2), "padding": 1}
    for size in ((10, 9), (11, 10), (2, 3, 12, 9)):
        _run("convT", args, kwargs, (2, 2, 4, 5), output_size=size)
    layer = nn.ConvTranspose2d(*args, **kwargs, dtype=F64)
    with pytest.raises(ValueError, match="output_size"):
        layer.forward(dk.variable("x", (2, 2, 4, 5)), output_size=(13, 9))


def _functional(f_dk, f_torch, arrays, **kwargs):
    """A functional form's values and gradients for every array, against PyTorch's."""
    rng = np.random.default_rng(4)
    names = [f"a{i}" for i in range(len(arrays))]
    nodes = [dk.variable(n, a.shape) for n, a in zip(names, arrays)]
    out = f_dk(*nodes, **kwargs)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tout = f_torch(*ts, **kwargs)
    assert out.shape == tuple(tout.shape)
    w = rng.standard_normal(out.shape)
    (tout * torch.tensor(w)).sum().backward()
    at = dict(zip(names, arrays))
    np.testing.assert_allclose(dk.compile(out)(at), tout.detach().numpy(), **TOL)
    grads = dk.gradient(dk.sum(out * dk.const(w)), at)
    for n, t in zip(names, ts):
        np.testing.assert_allclose(grads[n], t.grad.numpy(), **TOL)


def _arrays(*shapes, seed=5):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# PyTorch's OpInfo samples of nn.functional.conv2d and conv_transpose2d
# (common_methods_invocations.py), each batched and unbatched, then some of our own
CONV2D_SAMPLES = [
    ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "groups": 1}),
    (
        (2, 4, 8, 8),
        (2, 2, 3, 3),
        (2,),
        {"stride": (3, 2), "padding": (2, 1), "groups": 2, "dilation": (4, 4)},
    ),
    (
        (1, 4, 5, 5),
        (1, 4, 2, 3),
        (1,),
        {"stride": 2, "padding": 1, "groups": 1, "dilation": (2, 3)},
    ),
    ((1, 2, 4, 3), (4, 2, 3, 4), None, {"stride": 2, "padding": 1, "groups": 1}),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 2, "padding": "valid"}),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 1, "padding": "same", "dilation": 3}),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4}),
    ((2, 4, 6, 6), (8, 1, 3, 3), (8,), {"groups": 4}),
    ((2, 4, 6, 6), (8, 1, 3, 3), None, {"groups": 4}),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "stride": (3, 2)}),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "padding": (1, 1)}),
    ((2, 4, 5, 5), (4, 1, 2, 2), (4,), {"groups": 4, "dilation": (2, 2)}),
    ((2, 4, 6, 5), (6, 2, 3, 2), (6,), {"groups": 2}),
    ((1, 4, 5, 5), (3, 4, 3, 3), None, {}),
    ((2, 4, 7, 6), (6, 2, 3, 2), (6,), {"stride": (2, 1), "padding": 1, "groups": 2}),
    ((2, 3, 7, 6), (3, 1, 3, 3), None, {"dilation": (2, 1), "padding": "same", "groups": 3}),
]

CONV_TRANSPOSE2D_SAMPLES = [
    ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "output_padding": (1, 1)}),
    (
        (2, 2, 4, 4),
        (2, 2, 4, 5),
        (4,),
        {
            "stride": (3, 2),
            "padding": (1, 2),
            "output_padding": (2, 3),
            "groups": 2,
            "dilation": (4, 4),
        },
    ),
    (
        (1, 1, 4, 5),
        (1, 1, 4, 3),
        (1,),
        {"stride": 2, "padding": 1, "output_padding": 1, "dilation": (2, 3)},
    ),
    ((1, 1, 4, 3), (1, 2, 3, 4), None, {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 4, 4), (4, 1, 3, 3), None, {"groups": 4}),
    ((1, 2, 5, 5), (2, 4, 3, 3), None, {}),
    ((2, 4, 3, 4), (4, 3, 3, 2), (6,), {"stride": 2, "output_padding": 1, "groups": 2}),
    ((2, 2, 3, 4), (2, 3, 2, 3), None, {"dilation": (2, 3), "padding": (1, 2)}),
]


def _samples(cases):
    return [
        pytest.param(shape[skip:], w, b, kw, id=f"{i}{'-unbatched' if skip else ''}")
        for i, (shape, w, b, kw) in enumerate(cases)
        for skip in (0, 1)
    ]


@pytest.mark.parametrize("x,w,b,kwargs", _samples(CONV2D_SAMPLES))
def test_functional_conv2d(x, w, b, kwargs):
    shapes = (x, w) if b is None else (x, w, b)
    _functional(nn.functional.conv2d, F.conv2d, _arrays(*shapes), **kwargs)


@pytest.mark.parametrize("x,w,b,kwargs", _samples(CONV_TRANSPOSE2D_SAMPLES))
def test_functional_conv_transpose2d(x, w, b, kwargs):
    shapes = (x, w) if b is None else (x, w, b)
    _functional(nn.functional.conv_transpose2d, F.conv_transpose2d, _arrays(*shapes), **kwargs)


PADS = [
    ((2, 3, 4, 5), (1, 2), "constant", None),
    ((2, 3, 4, 5), (1, 2, 3, 0), "constant", 1.5),
    ((2, 3, 4, 5), (0, 1, 2, 1, 1, 0), "constant", -2.0),
    ((2, 3, 4, 5), (-1, 2, 1, -2), "constant", 0.5),  # negative widths crop
    ((3, 4, 5), (2, 3, 1, 3), "reflect", None),
    ((2, 3, 4, 5), (4, 1, 3, 0), "reflect", None),
    ((2, 3, 5), (2, 0), "reflect", None),
    ((2, 3, 4, 5), (5, 2, 0, 4), "replicate", None),
    ((3, 4, 5), (1, 1), "replicate", None),
    ((2, 3, 4, 5), (5, 3, 4, 2), "circular", None),
    ((3, 4, 5), (1, 0, 0, 2), "circular", None),
    ((2, 2, 3, 4, 5), (1, 1, 2, 0, 1, 2), "circular", None),
    ((2, 2, 3, 4, 5), (2, 1, 1, 2, 0, 1), "replicate", None),
    # negative widths crop (reflect: after the copies are taken about the input's edges;
    # circular: before)
    ((1, 2, 3, 5), (-1, 2, 2, -1), "reflect", None),
    ((1, 2, 3, 5), (3, -2, -1, 1), "replicate", None),
    ((1, 2, 3, 5), (-2, 3, 1, -2), "circular", None),
    ((1, 2, 3, 5), (2, -1, -1, 2), "circular", None),
]


# PyTorch's OpInfo samples of nn.functional.pad (common_methods_invocations.py)
_REFLECT_REPLICATE = [
    ((1, 3), (1, 2)),
    ((1, 3), (0, 1)),
    ((0, 3, 3), (1, 2)),
    ((0, 3, 3), (0, 1)),
    ((1, 3, 3), (1, 2)),
    ((1, 3, 3), (0, 1)),
    ((1, 3, 3), (0, 2, 0, 1)),
    ((0, 3, 3, 3), (0, 2, 0, 1)),
    ((3, 3, 5, 5), (0, 2, 0, 1)),
    ((3, 3, 5, 5), (1, 1, 1, 1, 1, 1)),
    ((1, 3, 3, 3, 3), (1, 1, 1, 1, 1, 1)),
    ((1, 3, 4, 4), (-1, 1, -2, 1)),
]
_CONSTANT = [
    ((1, 3), (1, 2)),
    ((1, 3), (0, 1)),
    ((1, 3), (0, 2, 0, 1)),
    ((5, 3), (-1, -2, 1, 1)),
    ((0, 3, 3), (1, 2)),
    ((0, 3, 3), (1, 1, 1, 1, 1, 1)),
    ((1, 3, 3), (0, 2, 0, 1)),
    ((1, 3, 3), (1, 1, 1, 1, 1, 1)),
    ((0, 3, 3, 3), (0, 2, 0, 1)),
    ((3, 3, 5, 5), (1, 1, 1, 1, 1, 1)),
    ((1, 3, 3, 3, 3), (0, 2, 0, 1)),
    ((1, 3, 4, 4), (-1, 1, -2, 1)),
]
_CIRCULAR = [
    ((0, 3, 3), (1, 2)),
    ((0, 3, 3), (0, 1)),
    ((1, 3, 3), (1, 2)),
    ((1, 3, 3), (0, 1)),
    ((0, 3, 3, 3), (0, 2, 0, 1)),
    ((3, 3, 5, 5), (0, 2, 0, 1)),
    ((1, 3, 3, 3, 3), (1, 1, 1, 1, 1, 1)),
    ((1, 3, 4, 4), (-1, 1, -2, 1)),
]
_REPLICATE_NEGATIVE = [
    ((5, 3, 4, 4), (-4, 5, 0, 0)),
    ((6, 2, 4, 4), (0, 0, 2, -4)),
    ((5, 6, 4, 4), (5, -4, -4, 3)),
    ((4, 2, 5, 5), (-2, -1, 4, 6)),
    ((2, 6, 5, 5), (8, -1, -1, -3)),
    ((8, 1, 5, 5), (-2, -1, -1, -3)),
]
PADS += [
    *[
        (shape, widths, mode, None)
        for mode in ("reflect", "replicate")
        for shape, widths in _REFLECT_REPLICATE
    ],
    *[(shape, widths, "constant", value) for value in (1.0, 2.0) for shape, widths in _CONSTANT],
    *[(shape, widths, "circular", None) for shape, widths in _CIRCULAR],
    *[(shape, widths, "replicate", None) for shape, widths in _REPLICATE_NEGATIVE],
]


@pytest.mark.parametrize("shape,widths,mode,value", PADS)
def test_pad(shape, widths, mode, value):
    kwargs = {"mode": mode} if value is None else {"mode": mode, "value": value}
    _functional(nn.functional.pad, F.pad, _arrays(shape), pad=widths, **kwargs)


@pytest.mark.parametrize(
    "layer,tlayer",
    [
        (nn.ZeroPad2d((1, 2, 0, 3)), torch.nn.ZeroPad2d((1, 2, 0, 3))),
        (nn.ConstantPad2d(2, 0.5), torch.nn.ConstantPad2d(2, 0.5)),
        (nn.ReflectionPad2d((3, 1, 2, 0)), torch.nn.ReflectionPad2d((3, 1, 2, 0))),
        (nn.ReplicationPad2d(2), torch.nn.ReplicationPad2d(2)),
        (nn.CircularPad2d((1, 4, 3, 2)), torch.nn.CircularPad2d((1, 4, 3, 2))),
    ],
)
def test_padding_layers(layer, tlayer):
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5))
    _check(layer, tlayer, x)


@pytest.mark.parametrize("on", [True, False])
def test_float32_and_both_paths(on):
    """float32 stays float32 (the compiled loops and the numpy path), and matches
    PyTorch's float32 to its rounding."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2, 3, 3)).astype(np.float32)
    with native.use_native(on):
        for kw in ({"groups": 2, "dilation": 2, "padding": 2}, {"groups": 2, "stride": 2}):
            out = dk.compile(nn.functional.conv2d(dk.variable("x", x.shape), w, **kw))({"x": x})
            assert out.dtype == np.float32
            ref = F.conv2d(torch.tensor(x), torch.tensor(w), **kw).numpy()
            np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_initialisation_as_pytorch():
    """Parameter shapes and PyTorch's bounds U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with its
    fan-in: (in / groups) kh kw for Conv2d, (out / groups) kh kw for ConvTranspose2d."""
    for kind, args, kwargs in (
        ("conv", (6, 4, (3, 2)), {"groups": 2}),
        ("convT", (6, 4, (3, 2)), {"groups": 2}),
        ("convT", (3, 8, 5), {}),
    ):
        tlayer = _torch_layer(kind, args, kwargs)
        layer = (nn.Conv2d if kind == "conv" else nn.ConvTranspose2d)(*args, **kwargs)
        w = tlayer.weight
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        for name, value in layer.state_dict().items():
            assert value.shape == tuple(tlayer.state_dict()[name].shape)
            assert value.dtype == np.float32
            assert np.abs(value).max() <= 1 / np.sqrt(fan_in)
            assert np.abs(value).max() > 0.5 / np.sqrt(fan_in)  # spread over the interval


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: nn.Conv2d(2, 3, 3, stride=2, padding="same"), "strided"),
        (lambda: nn.Conv2d(4, 6, 3, groups=4), "divisible"),
        (lambda: nn.Conv2d(2, 3, 3, padding="full"), "padding"),
        (lambda: nn.Conv2d(2, 3, 3, padding_mode="mirror"), "padding_mode"),
        (lambda: nn.ConvTranspose2d(2, 3, 3, padding_mode="reflect"), "zeros"),
        (lambda: nn.Conv2d(2, 3, 3, dilation=0), "dilation"),
        (lambda: nn.Conv2d(2, 3, 3, groups=0), "groups"),
        (
            lambda: F_dk.conv_transpose2d(
                dk.variable("x", (1, 2, 3, 3)), np.ones((2, 1, 3, 3)), stride=2, output_padding=2
            ),
            "output_padding",
        ),
        (lambda: F_dk.pad(dk.variable("x", (1, 2, 3, 3)), (3, 0, 0, 0), mode="reflect"), "less"),
        (lambda: F_dk.pad(dk.variable("x", (1, 2, 3, 3)), (4, 0, 0, 0), mode="circular"), "most"),
        (lambda: F_dk.pad(dk.variable("x", (1, 2, 3, 3)), (1, 2, 3)), "even"),
        (
            lambda: F_dk.conv2d(dk.variable("x", (1, 4, 5, 5)), np.ones((3, 2, 3, 3)), groups=2),
            "group",
        ),
    ],
)
def test_errors(make, message):
    with pytest.raises((ValueError, dk.ShapeError), match=message):
        make()


F_dk = nn.functional

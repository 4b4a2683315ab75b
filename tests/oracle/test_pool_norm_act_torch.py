"""Pooling, normalization, activation and dropout layers against PyTorch in float64 (to
1e-10): values, gradients of the input and of every parameter, running statistics, train
and eval modes, with PyTorch's weights loaded through ``state_dict``. The module cases of
PyTorch's own test suite (``common_modules``' constructor arguments and input sizes for
these layers) come first, then options and kinks they do not reach."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as F

import diffkit as dk
from diffkit import nn
from diffkit.nn import functional as DF

TOL = dict(rtol=1e-10, atol=1e-10)


def _randomize(theirs, rng):
    """Random parameters and running statistics, so that no weight is a trivial 1 or 0."""
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
        for name, b in theirs.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.tensor(rng.standard_normal(tuple(b.shape))))
            elif name.endswith("running_var"):
                b.copy_(torch.tensor(rng.uniform(0.5, 2.0, tuple(b.shape))))


def _load(ours, theirs):
    """PyTorch's state into ours: the same keys in the same order, the same shapes."""
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    for k, v in ours.state_dict().items():
        assert v.shape == state[k].shape, k
    ours.load_state_dict(state)


def _run(ours, x, weights):
    """Our outputs (and indices), gradients and batch statistics of sum(out * weights)."""
    xv = dk.variable("x", x.shape)
    res = ours(xv)
    out, index = res if isinstance(res, tuple) else (res, None)
    loss = dk.sum(out * dk.const(weights))
    stats = ours.batch_statistics()
    at = {**ours.inputs(), "x": x}
    nodes = [out] + ([index] if index is not None else [])
    for _, mean, var, _ in stats:
        nodes += [mean, var]
    values = dk.compile(nodes)(at, strict=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    used = dk.compile(loss).variables
    grads = dk.gradient(loss, {k: v for k, v in at.items() if k in used})
    k = 2 if index is not None else 1
    for i, (mod, _, _, count) in enumerate(stats):
        mod.update_running(values[k + 2 * i], values[k + 2 * i + 1], count)
    return values[0], (values[1] if index is not None else None), grads


def _compare(ours, theirs, x, seed=0):
    """One pass of both in their current mode: values, indices, the gradients of the
    input and of every parameter, then every buffer."""
    rng = np.random.default_rng(seed)
    theirs.zero_grad(set_to_none=True)
    tx = torch.tensor(x, requires_grad=True)
    tres = theirs(tx)
    tout, tindex = tres if isinstance(tres, tuple) else (tres, None)
    weights = rng.standard_normal(tuple(tout.shape))
    (tout * torch.tensor(weights)).sum().backward()
    out, index, grads = _run(ours, x, weights)
    np.testing.assert_allclose(out, tout.detach().numpy(), **TOL)
    if tindex is not None:
        np.testing.assert_array_equal(index, tindex.numpy())
    np.testing.assert_allclose(grads["x"], tx.grad.numpy(), **TOL)
    for name, p in theirs.named_parameters():
        if name in grads:
            np.testing.assert_allclose(grads[name], p.grad.numpy(), **TOL)
        else:  # a parameter the output does not reach (running statistics in use)
            assert p.grad is None or not p.grad.any(), name
    mine = dict(ours.named_buffers())
    for name, b in theirs.named_buffers():
        if b.dtype.is_floating_point:
            np.testing.assert_allclose(mine[name], b.numpy(), **TOL)


def _both(name, args, kwargs):
    return (
        getattr(nn, name)(*args, **kwargs).to(np.float64),
        getattr(tnn, name)(*args, **kwargs),
    )


# PyTorch's module cases (torch/testing/_internal/common_modules.py and the no-batch
# activation cases of common_nn.py): layer, constructor args, keyword args, input size
TORCH_CASES = [
    ("AvgPool2d", ((2, 2),), {}, (3, 6, 6)),
    ("AvgPool2d", ((2, 2),), {}, (2, 3, 6, 6)),
    ("AvgPool2d", ((2, 2), (2, 2)), {}, (2, 3, 6, 6)),
    ("AvgPool2d", ((2, 2), (2, 2), (1, 1)), {}, (2, 3, 6, 6)),
    ("AvgPool2d", ((2, 2),), {"divisor_override": 1}, (2, 3, 6, 6)),
    ("AvgPool2d", ((2, 2), (2, 2)), {"divisor_override": 1}, (2, 3, 6, 6)),
    ("AvgPool2d", ((2, 2), (2, 2), (1, 1)), {"divisor_override": 1}, (2, 3, 6, 6)),
    ("AdaptiveAvgPool2d", (3,), {}, (1, 3, 5, 6)),
    ("AdaptiveAvgPool2d", (3,), {}, (3, 5, 6)),
    ("AdaptiveAvgPool2d", (1,), {}, (1, 3, 5, 6)),
    ("AdaptiveAvgPool2d", ((3, 4),), {}, (1, 3, 5, 6)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (1, 3, 5, 6)),
    ("AdaptiveMaxPool2d", (3,), {}, (1, 3, 5, 6)),
    ("AdaptiveMaxPool2d", (3,), {}, (3, 5, 6)),
    ("AdaptiveMaxPool2d", ((3, 4),), {}, (1, 3, 5, 6)),
    ("AdaptiveMaxPool2d", ((3, None),), {}, (1, 3, 5, 6)),
    ("MaxPool2d", ((3, 3), (2, 2), (1, 1)), {}, (3, 7, 7)),
    ("MaxPool2d", ((3, 3), (2, 2), (1, 1)), {}, (1, 3, 7, 7)),
    ("MaxPool2d", ((3, 3), (2, 2), (1, 1)), {"return_indices": True}, (1, 3, 7, 7)),
    ("ELU", (), {"alpha": 2.0}, (3, 2, 5)),
    ("ELU", (), {"alpha": 2.0}, ()),
    ("ELU", (), {}, (3,)),
    ("ELU", (), {"alpha": 2.0}, (2, 3, 2, 5)),
    ("GLU", (), {}, (5, 6)),
    ("GLU", (1,), {}, (5, 6, 7)),
    ("GLU", (), {}, (4,)),
    ("GELU", ("none",), {}, ()),
    ("GELU", ("none",), {}, (3, 2, 5)),
    ("GELU", (), {}, (3,)),
    ("ReLU6", (), {}, ()),
    ("ReLU6", (), {}, (4,)),
    ("ReLU6", (), {}, (2, 3, 4, 5)),
    ("ReLU6", (), {}, (2, 3, 3, 4, 5)),
    ("LeakyReLU", (), {}, (3, 2, 5)),
    ("LeakyReLU", (), {}, (4,)),
    ("LeakyReLU", (0.5,), {}, (3, 2, 5)),
    ("LeakyReLU", (0.0,), {}, (10, 10)),
    ("LeakyReLU", (0.5,), {}, ()),
    ("SELU", (), {}, (3, 2, 5)),
    ("SELU", (), {}, (4,)),
    ("SELU", (), {}, ()),
    ("SiLU", (), {}, ()),
    ("SiLU", (), {}, (4,)),
    ("SiLU", (), {}, (5, 6, 7)),
    ("Softplus", (), {}, (10, 20)),
    ("Softplus", (2,), {}, (10, 20)),
    ("Softplus", (2, -100), {}, (10, 20)),
    ("Softplus", (2, -100), {}, ()),
    ("Softplus", (), {}, (4,)),
    ("Mish", (), {}, (5, 6, 7)),
    ("Mish", (), {}, ()),
    ("Mish", (), {}, (4,)),
    ("Hardtanh", (), {}, (3, 2, 5)),
    ("Hardtanh", (), {}, ()),
    ("Hardtanh", (), {}, (4,)),
    ("GroupNorm", (3, 6, 1e-3), {}, (4, 6, 5)),
    ("GroupNorm", (3, 6, 1e-3), {"bias": False}, (4, 6, 5)),
    ("GroupNorm", (3, 12, 1e-3), {}, (4, 12)),
    ("GroupNorm", (1, 6, 1e-3), {}, (150, 6)),
    ("GroupNorm", (5, 5, 1e-3, False), {}, (4, 5, 5)),
    ("GroupNorm", (1, 10, 1e-3, False), {}, (4, 10)),
    ("GroupNorm", (3, 6, 1e-3), {}, (4, 6, 2, 3)),
    ("GroupNorm", (3, 9, 1e-3), {"bias": False}, (4, 9, 2, 3)),
    ("GroupNorm", (3, 3, 1e-3, False), {}, (4, 3, 2, 3)),
    ("GroupNorm", (1, 3, 1e-3, False), {}, (4, 3, 2, 3)),
    ("InstanceNorm2d", (3, 1e-3, 0.3), {}, (4, 3, 6, 6)),
    ("InstanceNorm2d", (3, 1e-3, 0.3, False, True), {}, (4, 3, 6, 6)),
    ("InstanceNorm2d", (3, 1e-3, 0.3), {}, (3, 6, 6)),
    ("InstanceNorm2d", (3, 1e-3, 0.3, False, True), {}, (3, 6, 6)),
    ("InstanceNorm2d", (3, 1e-3, 0.3), {"affine": True}, (4, 3, 6, 6)),
    ("InstanceNorm2d", (3, 1e-3, 0.3), {"affine": True, "bias": False}, (4, 3, 6, 6)),
]


def _case_id(case):
    name, args, kwargs, size = case
    extra = ",".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return f"{name}({extra})-{'x'.join(map(str, size)) or 'scalar'}"


@pytest.mark.parametrize("case", TORCH_CASES, ids=[_case_id(c) for c in TORCH_CASES])
def test_torch_module_cases(case):
    """Each case in training mode, twice (the running statistics after each pass), then in
    eval mode, with PyTorch's randomized weights loaded through state_dict."""
    name, args, kwargs, size = case
    rng = np.random.default_rng(len(TORCH_CASES))
    ours, theirs = _both(name, args, kwargs)
    _randomize(theirs, rng)
    _load(ours, theirs)
    x = rng.uniform(-9, 9, size)  # make_tensor's range
    for seed in (0, 1):
        _compare(ours.train(), theirs.train(), x + seed, seed)
    _compare(ours.eval(), theirs.eval(), x * 0.5, 2)


# ---- options beyond PyTorch's cases ------------------------------------------------------------

MAX_POOL = [
    # kernel, stride, padding, dilation, ceil_mode, input size
    (3, 2, 1, 2, True, (2, 3, 9, 8)),
    ((2, 3), (1, 2), (1, 1), (3, 2), False, (2, 2, 10, 9)),
    (2, 1, 0, (1, 3), True, (1, 2, 6, 11)),
    (3, 3, 1, 1, True, (2, 2, 8, 7)),
    ((3, 1), 2, (1, 0), 2, False, (3, 5, 5)),
    (2, None, 0, 1, False, (0, 3, 6, 6)),
]


@pytest.mark.parametrize("k,s,p,d,ceil,size", MAX_POOL)
def test_max_pool_dilation_ceil_and_ties(k, s, p, d, ceil, size):
    rng = np.random.default_rng(3)
    x = np.round(rng.standard_normal(size), 1)  # many ties: the first maximum takes it
    for ri in (False, True):
        ours = nn.MaxPool2d(k, s, p, d, return_indices=ri, ceil_mode=ceil)
        theirs = tnn.MaxPool2d(k, s, p, d, return_indices=ri, ceil_mode=ceil)
        _compare(ours, theirs, x)


AVG_POOL = [
    # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, input size
    (3, 2, 1, True, True, None, (2, 3, 8, 7)),
    (3, 2, 1, True, False, None, (2, 3, 8, 7)),
    ((3, 2), (2, 1), (1, 1), False, False, 5, (2, 2, 7, 6)),
    (2, 3, 1, True, True, 3, (1, 2, 7, 8)),
    (3, 2, 1, False, False, None, (3, 9, 9)),
    (2, None, 0, False, True, None, (0, 3, 6, 6)),
]


@pytest.mark.parametrize("k,s,p,ceil,include,divisor,size", AVG_POOL)
def test_avg_pool_options(k, s, p, ceil, include, divisor, size):
    x = np.random.default_rng(4).standard_normal(size)
    args = (k, s, p, ceil, include, divisor)
    _compare(nn.AvgPool2d(*args), tnn.AvgPool2d(*args), x)


ADAPTIVE = [
    ((2, 3), (2, 3, 9, 8)),
    ((5, 7), (1, 2, 3, 4)),  # more bins than entries: bins overlap
    ((None, 2), (2, 2, 5, 7)),
    (4, (2, 3, 4, 4)),  # one entry per bin
    ((1, 3), (3, 7, 10)),
    (2, (0, 3, 6, 6)),
]


@pytest.mark.parametrize("size,shape", ADAPTIVE)
def test_adaptive_pools(size, shape):
    x = np.round(np.random.default_rng(5).standard_normal(shape), 1)  # ties
    _compare(nn.AdaptiveAvgPool2d(size), tnn.AdaptiveAvgPool2d(size), x)
    for ri in (False, True):
        _compare(nn.AdaptiveMaxPool2d(size, ri), tnn.AdaptiveMaxPool2d(size, ri), x)


def test_indices_with_ties_infinities_and_nans_are_pytorchs():
    """return_indices: the first maximum in row-major order, and where a window holds a
    NaN, the last NaN (PyTorch's scan lets every NaN win)."""
    rng = np.random.default_rng(15)
    for trial in range(20):
        x = np.round(rng.standard_normal((2, 2, 7, 9)), 0)
        x[rng.random(x.shape) < 0.1] = np.nan
        x[rng.random(x.shape) < 0.1] = -np.inf
        tx, xv = torch.tensor(x), dk.variable("x", x.shape)
        size = tuple(int(v) for v in rng.integers(1, 10, 2))
        _, want = F.adaptive_max_pool2d(tx, size, return_indices=True)
        _, got = DF.adaptive_max_pool2d(xv, size, return_indices=True)
        np.testing.assert_array_equal(dk.evaluate(got, {"x": x}), want.numpy())
        k, s, p, d = (3, 2), (2, 1), (1, 0), (1, 2)
        _, want = F.max_pool2d(tx, k, s, p, d, trial % 2 == 1, return_indices=True)
        _, got = DF.max_pool2d(xv, k, s, p, d, trial % 2 == 1, return_indices=True)
        np.testing.assert_array_equal(dk.evaluate(got, {"x": x}), want.numpy())


def test_functional_pools_and_norms():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 7, 6))
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    rm, rv = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    tx = torch.tensor(x)
    xv = dk.variable("x", x.shape)
    pairs = [
        (DF.max_pool2d(xv, 3, 2, 1, 2, True), F.max_pool2d(tx, 3, 2, 1, 2, True)),
        (DF.avg_pool2d(xv, 3, 2, 1, True, False, 4), F.avg_pool2d(tx, 3, 2, 1, True, False, 4)),
        (DF.adaptive_avg_pool2d(xv, (3, None)), F.adaptive_avg_pool2d(tx, (3, None))),
        (DF.adaptive_max_pool2d(xv, 4), F.adaptive_max_pool2d(tx, 4)),
        (
            DF.group_norm(xv, 2, w, b, 1e-3),
            F.group_norm(tx, 2, torch.tensor(w), torch.tensor(b), 1e-3),
        ),
        (
            DF.instance_norm(xv, weight=w, bias=b, eps=1e-4),
            F.instance_norm(tx, weight=torch.tensor(w), bias=torch.tensor(b), eps=1e-4),
        ),
        (
            DF.instance_norm(xv, rm, rv, w, b, use_input_stats=False),
            F.instance_norm(
                tx, torch.tensor(rm), torch.tensor(rv), torch.tensor(w), torch.tensor(b), False
            ),
        ),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(dk.evaluate(ours, {"x": x}), theirs.numpy(), **TOL)
    out, index = DF.max_pool2d(xv, 2, return_indices=True)
    np.testing.assert_array_equal(
        dk.evaluate(index, {"x": x}), F.max_pool2d(tx, 2, return_indices=True)[1].numpy()
    )


# ---- normalization: running statistics and modes ---------------------------------------------


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
def test_instance_norm_running_statistics(affine, momentum):
    """Several training passes fold each batch's average instance statistics into the
    running ones (unbiased variance; nothing with momentum None, as PyTorch); eval mode
    then normalizes by them, and without tracking by each instance's own."""
    rng = np.random.default_rng(7)
    for track in (True, False):
        args = (3, 1e-5, momentum, affine, track)
        ours, theirs = nn.InstanceNorm2d(*args).to(np.float64), tnn.InstanceNorm2d(*args)
        _randomize(theirs, rng)
        _load(ours, theirs)
        for i in range(3):
            x = rng.standard_normal((4, 3, 5, 6)) * (i + 1) + i
            _compare(ours.train(), theirs.train(), x, i)
        _compare(ours.eval(), theirs.eval(), rng.standard_normal((2, 3, 5, 6)), 5)
        assert int(ours.state_dict().get("num_batches_tracked", 0)) == int(
            theirs.state_dict().get("num_batches_tracked", torch.tensor(0))
        )


@pytest.mark.parametrize(
    "groups,channels,shape", [(2, 6, (3, 6, 4, 5)), (6, 6, (2, 6, 3, 3)), (1, 4, (5, 4, 3))]
)
def test_group_norm_train_and_eval_agree(groups, channels, shape):
    """GroupNorm has no running statistics: both modes give the same answer as PyTorch."""
    rng = np.random.default_rng(8)
    ours, theirs = _both("GroupNorm", (groups, channels), {})
    _randomize(theirs, rng)
    _load(ours, theirs)
    x = rng.standard_normal(shape) * 3 + 1
    _compare(ours.train(), theirs.train(), x)
    _compare(ours.eval(), theirs.eval(), x)


def test_group_norm_matches_the_courses_special_cases():
    """One group is layer norm over (C, H, W); C groups are instance norm (no affine)."""
    x = np.random.default_rng(9).standard_normal((3, 4, 5, 5))
    xv = dk.variable("x", x.shape)
    one = dk.evaluate(nn.GroupNorm(1, 4, affine=False)(xv), {"x": x})
    ln = F.layer_norm(torch.tensor(x), (4, 5, 5)).numpy()
    np.testing.assert_allclose(one, ln, **TOL)
    each = dk.evaluate(nn.GroupNorm(4, 4, affine=False)(xv), {"x": x})
    np.testing.assert_allclose(each, F.instance_norm(torch.tensor(x)).numpy(), **TOL)


# ---- activations at their kinks and extremes -----------------------------------------------

ACTIVATIONS = [
    ("GELU", (), {}),
    ("GELU", (), {"approximate": "tanh"}),
    ("ELU", (), {"alpha": 0.7}),
    ("SELU", (), {}),
    ("SiLU", (), {}),
    ("Mish", (), {}),
    ("LeakyReLU", (0.2,), {}),
    ("Hardtanh", (-0.5, 1.5), {}),
    ("ReLU6", (), {}),
    ("Softplus", (), {}),
    ("Softplus", (2.0, 3.0), {}),
    ("Softplus", (0.5, 1.0), {}),
]

#: the kinks of every activation above (0, the bounds of hardtanh and ReLU6, softplus'
#: thresholds) and values far out on both sides
KINKS = np.array(
    [0.0, -0.0, -0.5, 1.5, 6.0, -1.0, 1.0, 1.5, 2.0, 20.0, 3.0, 40.0, -40.0, 1e3, -1e3, 50.0]
)


@pytest.mark.parametrize("name,args,kwargs", ACTIVATIONS)
def test_activation_values_and_slopes_at_kinks_and_extremes(name, args, kwargs):
    """PyTorch's value and derivative exactly at each kink, and no NaN far out."""
    ours, theirs = _both(name, args, kwargs)
    rng = np.random.default_rng(10)
    x = np.concatenate([KINKS, rng.standard_normal(16) * 4]).reshape(4, 8)
    _compare(ours, theirs, x)
    # float32: our answer stays float32, finite where PyTorch's is, and close to it
    x32 = x.astype(np.float32)
    xv = dk.variable("x", x.shape)
    out = ours(xv)
    got = dk.evaluate(out, {"x": x32})
    g = dk.gradient(dk.sum(out), {"x": x32})["x"]
    t = torch.tensor(x32, requires_grad=True)
    y = theirs(t)
    y.sum().backward()
    assert got.dtype == np.float32 and g.dtype == np.float32
    assert np.array_equal(np.isfinite(got), np.isfinite(y.detach().numpy()))
    assert np.isfinite(g).all() and torch.isfinite(t.grad).all()
    np.testing.assert_allclose(got, y.detach().numpy(), rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name,args,kwargs", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activations_at_infinities_give_pytorchs_numbers(name, args, kwargs, dtype):
    """At ±inf and ±1e30 every value and derivative that PyTorch gives as a number is
    ours too (no inf - inf or 0 · inf)."""
    x = np.array([np.inf, -np.inf, 1e30, -1e30, 0.0], dtype=dtype)
    ours, theirs = _both(name, args, kwargs)
    out = ours(dk.variable("x", x.shape))
    got = dk.evaluate(out, {"x": x})
    grad = dk.gradient(dk.sum(out), {"x": x})["x"]
    t = torch.tensor(x, requires_grad=True)
    y = theirs(t)
    y.sum().backward()
    for mine, want in ((got, y.detach().numpy()), (grad, t.grad.numpy())):
        number = ~np.isnan(want)
        np.testing.assert_allclose(mine[number], want[number], rtol=1e-6, atol=0)


def test_glu_along_each_dimension():
    x = np.random.default_rng(11).standard_normal((4, 6, 2))
    for dim in (0, 1, -3, -2):
        _compare(nn.GLU(dim), tnn.GLU(dim), x)


def test_functional_activations():
    x = np.random.default_rng(12).standard_normal((3, 8)) * 3
    x[0, :4] = [0.0, 1.0, -1.0, 6.0]
    xv, tx = dk.variable("x", x.shape), torch.tensor(x)
    for name, kwargs in [
        ("gelu", {"approximate": "tanh"}),
        ("elu", {"alpha": 0.3}),
        ("selu", {}),
        ("silu", {}),
        ("mish", {}),
        ("leaky_relu", {"negative_slope": 0.3}),
        ("hardtanh", {"min_val": -2.0, "max_val": 0.5}),
        ("relu6", {}),
        ("softplus", {"beta": 3.0, "threshold": 2.0}),
        ("glu", {"dim": 1}),
    ]:
        got = dk.evaluate(getattr(DF, name)(xv, **kwargs), {"x": x})
        np.testing.assert_allclose(got, getattr(F, name)(tx, **kwargs).numpy(), **TOL)


# ---- Dropout2d and residual blocks -----------------------------------------------------------


@pytest.mark.filterwarnings("ignore:dropout2d")
@pytest.mark.parametrize("shape", [(4, 5, 3, 3), (6, 4, 7)])
def test_dropout2d_zeroes_whole_channels_with_pytorchs_scaling(shape):
    """Each (sample, channel) is kept whole, scaled by 1/(1-p), or zeroed whole; the
    gradient is that of the mask drawn; eval mode is the identity, as PyTorch's."""
    p = 0.4
    x = np.random.default_rng(13).standard_normal(shape) + 3.0  # no zeros of its own
    ours = nn.Dropout2d(p, seed=3).to(np.float64)
    xv = dk.variable("x", shape)
    out = ours(xv)
    at = {**ours.inputs(), "x": x}
    y = dk.evaluate(out, at)
    kept = (y != 0).reshape(shape[:2] + (-1,))
    assert np.all(kept.all(axis=2) | ~kept.any(axis=2))  # whole channels
    scale = np.where(kept[..., :1], 1 / (1 - p), 0.0)
    np.testing.assert_allclose(y, x * scale.reshape(shape[:2] + (1,) * (len(shape) - 2)), **TOL)
    g = dk.gradient(dk.sum(out), at)["x"]
    np.testing.assert_allclose(g, y / x, **TOL)
    # PyTorch: the same scaling for the same mask (its mask read off its own output)
    t = tnn.Dropout2d(p).train()
    ty = t(torch.tensor(x)).numpy()
    tkept = (ty != 0).reshape(shape[:2] + (-1,)).all(axis=2)
    np.testing.assert_allclose(ty[tkept], (x / (1 - p))[tkept], **TOL)
    ours.eval()
    t.eval()
    np.testing.assert_allclose(dk.evaluate(ours(xv), at), t(torch.tensor(x)).numpy(), **TOL)


class _TorchResidual(tnn.Module):
    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x):
        return self.body(x) + (x if self.shortcut is None else self.shortcut(x))


def test_residual_blocks_identity_and_projection():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 6, 6))

    def body(lib, c_out):
        return lib.Sequential(
            lib.Conv2d(3, c_out, 3, padding=1),
            lib.GroupNorm(1, c_out),
            lib.GELU(),
            lib.Conv2d(c_out, c_out, 3, padding=1),
        )

    for c_out, proj in ((3, False), (5, True)):
        ours = nn.Residual(body(nn, c_out), nn.Conv2d(3, c_out, 1) if proj else None)
        theirs = _TorchResidual(body(tnn, c_out), tnn.Conv2d(3, c_out, 1) if proj else None)
        ours.to(np.float64)
        _randomize(theirs, rng)
        _load(ours, theirs)
        _compare(ours, theirs, x)

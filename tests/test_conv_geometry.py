"""Dilated, grouped, strided and transposed convolutions against loops over pixels, on
random small geometries: values, and the input, weight and bias gradients of a weighted
sum, through the compiled loops and the numpy path."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

import diffkit as dk
from diffkit.ops import native

TOL = dict(rtol=1e-11, atol=1e-11)


def _geometries(draw, transposed: bool):
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    # stride 1 often: the compiled direct kernels run there
    sh, sw = draw(st.sampled_from((1, 1, 2, 3))), draw(st.sampled_from((1, 1, 2)))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    n = draw(st.integers(1, 2))
    if transposed:
        h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        oph = draw(st.integers(0, max(sh, dh) - 1))
        opw = draw(st.integers(0, max(sw, dw) - 1))
        # the output must hold at least one row and column
        ph = min(ph, ((h - 1) * sh + dh * (kh - 1) + oph) // 2)
        pw = min(pw, ((w - 1) * sw + dw * (kw - 1) + opw) // 2)
        return groups, cg, og, (kh, kw), (sh, sw), (dh, dw), (ph, pw), (n, h, w), (oph, opw)
    # the input must hold one dilated window with its padding
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7))
    return groups, cg, og, (kh, kw), (sh, sw), (dh, dw), (ph, pw), (n, h, w), None


def _conv_terms(x_shape, w_shape, stride, padding, dilation, groups):
    """conv2d by its definition: the output size and the products it sums, as
    (output channel, i, j), (input channel, y, x), (weight index): output pixel (i, j) of
    channel o sums its dilated window over o's group of input channels (the padding
    adds nothing)."""
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    terms = []
    for oc in range(o):
        for i in range(oh):
            for j in range(ow):
                for ci in range(cg):
                    for p in range(kh):
                        for q in range(kw):
                            y, xx = i * sh + p * dh - ph, j * sw + q * dw - pw
                            if 0 <= y < h and 0 <= xx < w:
                                c_in = oc // og * cg + ci
                                terms.append(((oc, i, j), (c_in, y, xx), (oc, ci, p, q)))
    return (n, o, oh, ow), terms


def _transposed_terms(x_shape, w_shape, stride, padding, dilation, groups, output_padding):
    """conv_transpose2d by its definition: input pixel (i, j) of channel c scatters its
    kernel, dilated, into the output at (i·s - padding + p·d, j·s - padding + q·d), for
    the output channels of c's group."""
    n, c, h, w = x_shape
    _, og, kh, kw = w_shape
    (sh, sw), (ph, pw), (dh, dw), (oph, opw) = stride, padding, dilation, output_padding
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    cg = c // groups
    terms = []
    for ci in range(c):
        for i in range(h):
            for j in range(w):
                for oc in range(og):
                    for p in range(kh):
                        for q in range(kw):
                            y, xx = i * sh - ph + p * dh, j * sw - pw + q * dw
                            if 0 <= y < oh and 0 <= xx < ow:
                                o_out = ci // cg * og + oc
                                terms.append(((o_out, y, xx), (ci, i, j), (ci, oc, p, q)))
    return (n, og * groups, oh, ow), terms


def _loops(terms, x, wt, b, ct):
    """The output, and the input, weight and bias gradients of <ct, output>, one product
    at a time (each vectorised over the batch only)."""
    shape, products = terms
    out = np.zeros(shape) + b.reshape(1, -1, 1, 1)
    dx, dw = np.zeros(x.shape), np.zeros(wt.shape)
    for o_at, x_at, w_at in products:
        out[(slice(None),) + o_at] += wt[w_at] * x[(slice(None),) + x_at]
        dx[(slice(None),) + x_at] += wt[w_at] * ct[(slice(None),) + o_at]
        dw[w_at] += np.dot(x[(slice(None),) + x_at], ct[(slice(None),) + o_at])
    return out, {"x": dx, "w": dw, "b": ct.sum(axis=(0, 2, 3))}


def _check(op, terms, x, wt, b, kwargs, compiled):
    arrays = {"x": x, "w": wt, "b": b}
    nodes = [dk.variable(k, v.shape) for k, v in arrays.items()]
    with native.use_native(compiled):
        out = op(*nodes, **kwargs)
        assert out.shape == terms[0]
        ct = np.random.default_rng(0).standard_normal(out.shape)
        value = dk.compile(out)(arrays)
        grads = dk.gradient(dk.sum(out * dk.const(ct)), arrays)
    expected, expected_grads = _loops(terms, x, wt, b, ct)
    np.testing.assert_allclose(value, expected, **TOL)
    for name in arrays:
        np.testing.assert_allclose(grads[name], expected_grads[name], **TOL, err_msg=name)


@st.composite
def conv_cases(draw):
    return _geometries(draw, False), draw(st.booleans())


@st.composite
def transposed_cases(draw):
    return _geometries(draw, True), draw(st.booleans())


# grouped and dilated at stride 1 (the direct kernels), depthwise with a multiplier
_GROUPED = (3, 2, 5, (3, 2), (1, 1), (2, 1), (1, 2), (2, 6, 5), None)
_DEPTHWISE = (4, 1, 2, (3, 3), (1, 1), (1, 2), (2, 1), (2, 5, 6), None)


@settings(max_examples=30, deadline=None)
@given(conv_cases())
@example((_GROUPED, True))
@example((_DEPTHWISE, True))
def test_conv2d_against_loops(case):
    (groups, cg, og, k, s, d, p, (n, h, w), _), compiled = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, groups * cg, h, w))
    wt = rng.standard_normal((groups * og, cg) + k)
    b = rng.standard_normal(groups * og)
    kwargs = {"stride": s, "padding": p, "dilation": d, "groups": groups}
    terms = _conv_terms(x.shape, wt.shape, **kwargs)
    _check(dk.conv2d, terms, x, wt, b, kwargs, compiled)


@settings(max_examples=30, deadline=None)
@given(transposed_cases())
@example((_GROUPED[:-1] + ((1, 0),), True))
@example((_DEPTHWISE[:-1] + ((0, 0),), True))
def test_conv_transpose2d_against_loops(case):
    (groups, cg, og, k, s, d, p, (n, h, w), op), compiled = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, groups * cg, h, w))
    wt = rng.standard_normal((groups * cg, og) + k)
    b = rng.standard_normal(groups * og)
    kwargs = {"stride": s, "padding": p, "dilation": d, "groups": groups, "output_padding": op}
    terms = _transposed_terms(x.shape, wt.shape, **kwargs)
    _check(dk.conv_transpose2d, terms, x, wt, b, kwargs, compiled)

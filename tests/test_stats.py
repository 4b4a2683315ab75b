"""Statistics, sorting and elementwise extras in users' numpy code: z-scores, a layer norm
and a trimmed mean written by hand, running products and maxima, NaN-aware selections and
scipy's special functions, differentiated with ``dk.grad`` and checked with
``check_grads``; values against numpy; the conventions at ties, zeros and NaN; empty
arrays; one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

import diffkit as dk
from diffkit.testing import check_grads

RNG = np.random.default_rng(2026)


# ---- research code written in plain numpy -------------------------------------------------


def zscore(x):
    return (x - np.mean(x, axis=0)) / np.std(x, axis=0, ddof=1)


def layer_norm(x, gain, bias, eps=1e-5):
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return gain * (x - mu) / np.sqrt(var + eps) + bias


def trimmed_mean(x, k=2):
    s = np.sort(x)
    return np.mean(s[k:-k])


def test_zscore_values_and_gradients():
    x = RNG.standard_normal((6, 3))
    w = RNG.standard_normal((6, 3))
    got = dk.evaluate(zscore(dk.variable("x", x.shape)), {"x": x})
    np.testing.assert_allclose(got, zscore(x), rtol=1e-12)
    check_grads(lambda x: np.sum(zscore(x) * w), (x,), order=2)


def test_layer_norm_by_hand():
    x, g, b = RNG.standard_normal((4, 5)), RNG.standard_normal(5), RNG.standard_normal(5)
    f = lambda x, g, b: np.sum(layer_norm(x, g, b) ** 3)  # noqa: E731
    check_grads(f, (x, g, b), order=2)
    node = layer_norm(dk.variable("x", x.shape), g, b)
    np.testing.assert_allclose(dk.evaluate(node, {"x": x}), layer_norm(x, g, b), rtol=1e-12)


def test_trimmed_mean():
    x = RNG.standard_normal(9)
    assert dk.grad(trimmed_mean)(x).sum() == pytest.approx(1.0)
    g = dk.grad(trimmed_mean)(x)
    kept = np.argsort(x)[2:-2]
    expected = np.zeros(9)
    expected[kept] = 1 / 5
    np.testing.assert_allclose(g, expected)
    check_grads(trimmed_mean, (x,), order=2)


def test_var_and_std_follow_numpy_signature():
    x = RNG.standard_normal((3, 4, 2))
    node = dk.variable("x", x.shape)
    for kw in (
        {},
        {"ddof": 1},
        {"axis": 1, "ddof": 2},
        {"axis": (0, 2), "keepdims": True},
        {"axis": -1, "correction": 1},
    ):
        for fn in (np.var, np.std):
            got = dk.evaluate(fn(node, **kw), {"x": x})
            np.testing.assert_allclose(got, fn(x, **kw), rtol=1e-12)
    np.testing.assert_allclose(dk.evaluate(node.std(axis=0, ddof=1), {"x": x}), x.std(0, ddof=1))
    check_grads(lambda x: np.sum(np.std(x, axis=1, ddof=1) ** 2 + np.var(x, ddof=1)), (x,))


def test_ddof_at_or_past_the_count_gives_numpy_values():
    x = np.array([1.0, 2.0, 4.0])
    node = dk.variable("x", (3,))
    with np.errstate(all="ignore"):
        for ddof in (3, 4):
            assert dk.evaluate(np.var(node, ddof=ddof), {"x": x}) == np.inf
            assert np.isnan(dk.evaluate(np.var(node, ddof=ddof), {"x": np.ones(3)}))


def test_std_gradient_is_zero_at_zero_spread():
    g = dk.grad(lambda x: np.std(x, ddof=1))(np.full(4, 2.5))
    np.testing.assert_array_equal(g, np.zeros(4))
    h = dk.grad(lambda x: np.sum(np.std(x, axis=0)))(np.array([[1.0, 2.0], [1.0, 3.0]]))
    np.testing.assert_allclose(h, [[0.0, -0.5], [0.0, 0.5]])


def test_max_and_min_ties_share_the_gradient():
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, -1.0]])
    g = dk.grad(lambda x: np.sum(np.max(x, axis=1)))(x)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3, 0]])
    # forward mode agrees
    node = dk.variable("x", (2, 4))
    f = dk.sum(dk.max(node, axis=1))
    np.testing.assert_allclose(dk.gradient(f, {"x": x}, method="forward")["x"], g)
    g = dk.grad(lambda x: np.amin(x))(np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(g, [0.5, 0, 0.5])


def test_sort_is_a_permutation_with_stable_ties():
    x = np.array([3.0, 1.0, 3.0, 1.0, 2.0])
    w = np.arange(5.0)
    g = dk.grad(lambda x: np.sum(np.sort(x) * w))(x)
    # sorted order, stable: x[1], x[3], x[4], x[0], x[2]
    np.testing.assert_array_equal(g, [3.0, 0.0, 4.0, 1.0, 2.0])
    m = RNG.standard_normal((3, 5))
    node = dk.variable("m", m.shape)
    for kw in ({}, {"axis": 0}, {"axis": None}, {"kind": "quicksort"}, {"stable": True}):
        np.testing.assert_array_equal(dk.evaluate(np.sort(node, **kw), {"m": m}), np.sort(m, **kw))
    check_grads(lambda m: np.sum(np.sort(m, axis=0) ** 2 * m), (m,), order=2)


def test_argsort_values_as_numpy_with_no_derivative():
    m = RNG.standard_normal((3, 5))
    node = dk.variable("m", m.shape)
    np.testing.assert_array_equal(dk.evaluate(np.argsort(node), {"m": m}), np.argsort(m))
    g = dk.gradient(dk.sum(np.argsort(node, axis=0) * node), {"m": m})["m"]
    np.testing.assert_array_equal(g, np.argsort(m, axis=0))


def test_cumprod_gradient_is_exact_at_zeros():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    g = dk.grad(lambda x: np.sum(np.cumprod(x)))(x)
    # d/dx_k of sum_i prod_{j<=i} x_j, by hand
    expected = [1.0, 2 + 6, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(g, expected)
    m = RNG.uniform(0.5, 1.5, (3, 4))
    node = dk.variable("m", m.shape)
    np.testing.assert_allclose(dk.evaluate(np.cumprod(node, axis=1), {"m": m}), m.cumprod(1))
    np.testing.assert_allclose(dk.evaluate(node.cumprod(), {"m": m}), m.cumprod())
    check_grads(lambda m: np.sum(np.cumprod(m, axis=0) * m), (m,), order=2)


def test_running_maximum_and_minimum():
    x = np.array([1.0, 3.0, 2.0, 3.0, 0.0, 4.0])
    node = dk.variable("x", (6,))
    np.testing.assert_array_equal(
        dk.evaluate(np.maximum.accumulate(node), {"x": x}), np.maximum.accumulate(x)
    )
    np.testing.assert_array_equal(
        dk.evaluate(np.minimum.accumulate(node), {"x": x}), np.minimum.accumulate(x)
    )
    g = dk.grad(lambda x: np.sum(np.maximum.accumulate(x)))(x)
    np.testing.assert_array_equal(g, [1, 2, 0, 2, 0, 1])  # ties: the latest equal entry
    drawdown = lambda p: np.max(np.maximum.accumulate(p) - p)  # noqa: E731
    p = np.cumsum(RNG.standard_normal(12))
    check_grads(drawdown, (p,), order=1)
    m = RNG.standard_normal((3, 4))
    mn = dk.variable("m", m.shape)
    np.testing.assert_array_equal(
        dk.evaluate(np.maximum.accumulate(mn, axis=1), {"m": m}), np.maximum.accumulate(m, 1)
    )


def test_running_maximum_keeps_nan_as_numpy():
    x = np.array([1.0, np.nan, 3.0])
    node = dk.variable("x", (3,))
    np.testing.assert_array_equal(
        dk.evaluate(np.maximum.accumulate(node), {"x": x}), np.maximum.accumulate(x)
    )


def test_median_and_percentile():
    for n in (7, 8):
        x = RNG.standard_normal(n)
        node = dk.variable("x", (n,))
        assert dk.evaluate(np.median(node), {"x": x}) == pytest.approx(np.median(x), rel=1e-14)
        for q in (0, 10, 50, 62.5, 100, [25, 75]):
            np.testing.assert_allclose(
                dk.evaluate(np.percentile(node, q), {"x": x}), np.percentile(x, q), rtol=1e-13
            )
        check_grads(lambda x: np.median(x) * np.percentile(x, 30), (x,), order=2)
    m = RNG.standard_normal((4, 6))
    mn = dk.variable("m", m.shape)
    np.testing.assert_allclose(
        dk.evaluate(np.median(mn, axis=1, keepdims=True), {"m": m}),
        np.median(m, axis=1, keepdims=True),
    )
    np.testing.assert_allclose(
        dk.evaluate(np.quantile(mn, [0.2, 0.9], axis=0), {"m": m}), np.quantile(m, [0.2, 0.9], 0)
    )
    assert np.isnan(dk.evaluate(np.median(dk.variable("x", (3,))), {"x": [1.0, np.nan, 2.0]}))


# ---- elementwise extras ---------------------------------------------------------------------


def test_nan_to_num_and_its_gradient():
    x = np.array([1.5, np.nan, np.inf, -np.inf, -2.0])
    node = dk.variable("x", (5,))
    np.testing.assert_array_equal(dk.evaluate(np.nan_to_num(node), {"x": x}), np.nan_to_num(x))
    kw = {"nan": 7.0, "posinf": 1e3, "neginf": -1e3}
    np.testing.assert_array_equal(
        dk.evaluate(np.nan_to_num(node, **kw), {"x": x}), np.nan_to_num(x, **kw)
    )
    g = dk.grad(lambda x: np.sum(np.nan_to_num(x) * 3.0))(x)
    np.testing.assert_array_equal(g, [3, 0, 0, 0, 3])
    x32 = x.astype(np.float32)
    assert dk.evaluate(np.nan_to_num(node), {"x": x32}).dtype == np.float32
    np.testing.assert_array_equal(dk.evaluate(np.nan_to_num(node), {"x": x32}), np.nan_to_num(x32))


def test_fmax_and_fmin_route_to_the_non_nan_side():
    a = np.array([1.0, np.nan, 2.0, 3.0, np.nan])
    b = np.array([np.nan, 1.0, 2.0, 1.0, np.nan])
    na, nb = dk.variable("a", (5,)), dk.variable("b", (5,))
    for fn in (np.fmax, np.fmin):
        got = dk.evaluate(fn(na, nb), {"a": a, "b": b})
        np.testing.assert_array_equal(got, fn(a, b))
    g = dk.gradient(dk.sum(np.fmax(na, nb)), {"a": a, "b": b})
    np.testing.assert_array_equal(g["a"], [1, 0, 1, 1, 1])
    np.testing.assert_array_equal(g["b"], [0, 1, 0, 0, 0])
    g = dk.gradient(dk.sum(np.fmin(na, nb)), {"a": a, "b": b})
    np.testing.assert_array_equal(g["a"], [1, 0, 1, 0, 1])
    np.testing.assert_array_equal(g["b"], [0, 1, 0, 1, 0])


def test_logaddexp2_is_stable_and_differentiable():
    a, b = RNG.standard_normal(5) * 50, RNG.standard_normal(5) * 50
    na, nb = dk.variable("a", (5,)), dk.variable("b", (5,))
    np.testing.assert_allclose(
        dk.evaluate(np.logaddexp2(na, nb), {"a": a, "b": b}), np.logaddexp2(a, b), rtol=1e-14
    )
    check_grads(lambda a, b: np.sum(np.logaddexp2(a, b) ** 2), (a / 50, b / 50), order=2)


def test_sinc_at_and_near_zero():
    x = np.array([0.0, 1e-9, 0.03, -0.7, 2.0])
    node = dk.variable("x", (5,))
    np.testing.assert_allclose(dk.evaluate(np.sinc(node), {"x": x}), np.sinc(x), rtol=1e-15)
    g = dk.grad(lambda x: np.sum(np.sinc(x)))(x)
    p = np.pi * x[2:]
    np.testing.assert_allclose(g[2:], (np.cos(p) - np.sinc(x[2:])) / x[2:], rtol=1e-12)
    assert g[0] == 0.0 and abs(g[1]) < 1e-8
    # second derivative at 0: -pi^2/3
    h = dk.hessian(lambda x: np.sinc(x[0]))(np.zeros(1))
    assert h[0, 0] == pytest.approx(-(np.pi**2) / 3, rel=1e-12)


def test_scipy_special_functions_dispatch():
    x = RNG.uniform(-0.9, 0.9, 6)
    node = dk.variable("x", (6,))
    for fn in (scipy.special.erfinv, scipy.special.i0e, scipy.special.i1e):
        np.testing.assert_allclose(dk.evaluate(fn(node), {"x": x}), fn(x), rtol=1e-14)
    f = lambda x: np.sum(  # noqa: E731
        scipy.special.erfinv(x) ** 2 + scipy.special.i0e(3 * x) * scipy.special.i1e(x)
    )
    check_grads(f, (x,), order=2)
    # at 0: i0e' = 0 (its kink, as PyTorch), i1e' = 1/2
    assert dk.grad(lambda x: scipy.special.i0e(x))(0.0) == 0.0
    assert dk.grad(lambda x: scipy.special.i1e(x))(0.0) == 0.5


def test_float32_stays_float32():
    x = RNG.uniform(0.1, 0.9, (3, 4)).astype(np.float32)

    def f(x):
        return np.sum(
            np.std(x, axis=1, ddof=1)
            + np.sort(x, axis=1)[:, 0]
            + np.cumprod(x, axis=1)[:, -1]
            + np.median(x, axis=1)
        ) + np.sum(np.sinc(x) + scipy.special.erfinv(x) + np.logaddexp2(x, x))

    g = dk.grad(f)(x)
    assert g.dtype == np.float32


# ---- empty arrays -------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Degrees of freedom", "ignore:Mean of empty slice")
def test_reductions_of_empty_arrays_follow_numpy():
    e = np.ones((2, 0))
    node = dk.variable("e", (2, 0))
    with np.errstate(all="ignore"):
        cases = [
            (dk.sum(node, axis=1), np.sum(e, axis=1)),
            (dk.prod(node, axis=1), np.prod(e, axis=1)),
            (dk.mean(node, axis=1), np.mean(e, axis=1)),
            (np.var(node, axis=1), np.var(e, axis=1)),
            (dk.logsumexp(node, axis=1), np.array([-np.inf, -np.inf])),
            (dk.log_softmax(node, axis=1), e),
            (dk.softmax(node, axis=1), e),
            (dk.max(node, axis=0), np.max(e, axis=0)),
            (np.sort(node), np.sort(e)),
            (np.cumprod(node, axis=1), np.cumprod(e, axis=1)),
        ]
        for built, expected in cases:
            np.testing.assert_array_equal(dk.evaluate(built, {"e": e}), expected)
            g = dk.gradient(dk.sum(built), {"e": e})["e"]
            assert g.shape == (2, 0)


def test_max_of_no_entries_is_refused_in_one_line():
    node = dk.variable("e", (2, 0))
    for build in (lambda: dk.max(node, axis=1), lambda: np.min(node), lambda: np.amax(node)):
        with pytest.raises(dk.ShapeError, match=r"(max|min): .*no entries.*\(2, 0\)") as err:
            build()
        assert "\n" not in str(err.value)


# ---- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda x: np.std(x, where=np.ones(3, bool)), "std: where="),
        (lambda x: np.var(x, ddof=1, correction=1), "var: give ddof or correction"),
        (lambda x: np.sort(x, order="a"), "sort: order="),
        (lambda x: np.cumprod(x, dtype=np.int64), "cumprod: dtype=int64"),
        (lambda x: np.percentile(x, 150), "percentile: q out of range"),
        (lambda x: np.percentile(x, 50, method="nearest"), "percentile: method='nearest'"),
        (lambda x: np.nan_to_num(x, nan=np.ones(3)), "nan_to_num: nan must be a number"),
        (lambda x: np.max(x, initial=0.0), "max: out=, initial="),
        (lambda x: np.sort(x, axis=3), "sort: axis 3 is out of range"),
    ],
)
def test_bad_input_gives_one_line_errors(build, message):
    x = dk.variable("x", (3,))
    with pytest.raises((TypeError, ValueError)) as err:
        build(x)
    assert message in str(err.value)
    assert "\n" not in str(err.value)

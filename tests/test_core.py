"""The IR, evaluation and both AD modes: the course's worked examples and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import diffkit as dk

AT = {"x": -2.0, "y": 5.0, "z": -4.0}


@pytest.mark.parametrize("method", ["reverse", "forward"])
def test_course_worked_example(method):
    """f(x, y, z) = (x + y) z at (-2, 5, -4): q = 3, f = -12, df/dz = 3, df/dq = -4."""
    x, y, z = dk.variables("x y z")
    q = x + y
    f = q * z
    assert dk.evaluate(q, {"x": -2.0, "y": 5.0}) == 3.0
    assert dk.evaluate(f, AT) == -12.0
    assert dk.gradient(f, AT, method=method) == {"x": -4.0, "y": -4.0, "z": 3.0}
    # df/dq: treat q as an input of f = q z
    qv = dk.variable("q")
    assert dk.derivative(qv * z, "q", {"q": 3.0, "z": -4.0}, method=method) == -4.0


def test_sigmoid_neuron_of_the_notes():
    """f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) built from primitives equals the
    sigmoid block, and both gradients agree (w = (2, -3, -3), x = (-1, -2))."""
    w0, w1, w2, x0, x1 = dk.variables("w0 w1 w2 x0 x1")
    s = w0 * x0 + w1 * x1 + w2
    elementary = 1.0 / (1.0 + dk.exp(-s))
    block = dk.sigmoid(s)
    at = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    assert dk.evaluate(elementary, at) == pytest.approx(0.7310585786300049, abs=1e-15)
    g1, g2 = dk.gradient(elementary, at), dk.gradient(block, at)
    for k in at:
        assert g1[k] == pytest.approx(g2[k], abs=1e-15)
    # the notes' values: dw0 = -0.2, dx0 = 0.39, to 2 decimals
    assert round(g2["w0"], 2) == -0.2 and round(g2["x0"], 2) == 0.39
    assert dk.graph_size(dk.grad_graph(block, "w0")) < dk.graph_size(
        dk.grad_graph(elementary, "w0")
    )


def test_linear_layer_jacobian_is_W():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 3))
    x = dk.variable("x", (3,))
    f = dk.const(W) @ x
    for method in ("reverse", "forward"):
        J = dk.jacobian(f, {"x": rng.standard_normal(3)}, method=method, wrt="x")
        np.testing.assert_array_equal(J, W)


def test_chain_rule_for_composed_vector_functions():
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((2, 3))
    a = rng.standard_normal(4)
    x = dk.variable("x", (4,))
    u = dk.variable("u", (3,))
    g = dk.tanh(dk.const(A) @ x)
    f_of_u = dk.sin(dk.const(B) @ u) * dk.sum(u * u)
    composed = dk.sin(dk.const(B) @ g) * dk.sum(g * g)
    J_g = dk.jacobian(g, {"x": a}, wrt="x")
    J_f = dk.jacobian(f_of_u, {"u": dk.evaluate(g, {"x": a})}, wrt="u")
    J_fg = dk.jacobian(composed, {"x": a}, wrt="x")
    np.testing.assert_allclose(J_fg, J_f @ J_g, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        J_fg, dk.jacobian(composed, {"x": a}, wrt="x", method="forward"), rtol=1e-12, atol=1e-14
    )


def test_hash_consing_and_folding():
    x, y = dk.variables("x y")
    assert (x + y) is (x + y)
    assert dk.sin(x) is dk.sin(x)
    assert (x * 1) is x and (1 * x) is x and (x + 0) is x and (0 + x) is x and (x - 0) is x
    # folds never change a value: 0 * x and x - x stay, since x may be inf or NaN
    assert dk.evaluate(0 * x, {"x": np.inf}) != dk.evaluate(0 * x, {"x": np.inf})
    assert np.isnan(dk.evaluate(x - x, {"x": np.inf}))
    assert dk.evaluate(0 * x, {"x": 2.0}) == 0.0
    assert (0 * dk.const(3.0)).kind == "const" and (x**0).kind == "const"
    assert (x / 1) is x and (x**1) is x and -(-x) is x
    assert dk.graph_size((x * y) + (x * y)) == 4  # x, y, x*y, add


def test_third_derivative_of_sin():
    x = dk.variable("x")
    d = dk.sin(x)
    for _ in range(3):
        d = dk.grad_graph(d, "x")
    for v in (0.0, 0.7, 2.0):
        assert dk.evaluate(d, {"x": v}) == pytest.approx(-np.cos(v), abs=1e-15)


def test_hessian_forward_over_reverse():
    x, y = dk.variables("x y")
    f = x**3 * y + dk.exp(x * y)
    at = {"x": 0.5, "y": -1.2}
    ex = np.exp(0.5 * -1.2)
    exact = np.array(
        [
            [6 * 0.5 * -1.2 + 1.44 * ex, 3 * 0.25 + ex + 0.5 * -1.2 * ex],
            [3 * 0.25 + ex + 0.5 * -1.2 * ex, 0.25 * ex],
        ]
    )
    np.testing.assert_allclose(dk.hessian(f, at), exact, rtol=1e-13)
    np.testing.assert_allclose(dk.hessian(f, at, method="forward"), exact, rtol=1e-13)


def test_tensor_hessian_shape():
    v = dk.variable("v", (2, 2))
    f = dk.sum(v**3)
    H = dk.hessian(f, {"v": np.ones((2, 2))}, wrt="v")
    assert H.shape == (2, 2, 2, 2)
    assert H[0, 1, 0, 1] == 6.0 and H[0, 1, 1, 0] == 0.0


def test_jvp_vjp():
    x = dk.variable("x", (3,))
    f = x * x
    primal, tangent = dk.jvp(f, {"x": [1.0, 2.0, 3.0]}, {"x": [1.0, 0.0, 1.0]})
    np.testing.assert_array_equal(primal, [1, 4, 9])
    np.testing.assert_array_equal(tangent, [2, 0, 6])
    _, ct = dk.vjp(f, {"x": [1.0, 2.0, 3.0]}, np.array([1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(ct["x"], [2, 4, 0])


def test_dtypes():
    x = dk.variable("x", (3,))
    f = dk.sum(dk.tanh(x) * 2.5)
    v32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    assert dk.evaluate(f, {"x": v32}).dtype == np.float32
    assert dk.gradient(f, {"x": v32})["x"].dtype == np.float32
    assert isinstance(dk.evaluate(f, {"x": v32.astype(float)}), float)
    assert isinstance(dk.evaluate(f, {"x": v32.astype(float) + 0j}), complex)
    assert dk.evaluate(f, {"x": v32 + 0j}).dtype == np.complex64
    mp = dk.evaluate(dk.exp(dk.variable("s")), {"s": 1}, precision=40)
    import mpmath

    assert mpmath.nstr(mp, 40) == "2.718281828459045235360287471352662497757"


def test_stable_logsumexp_and_log_softmax():
    z = dk.variable("z", (3,))
    big = {"z": np.array([1e4, 1e4, -1e4])}
    assert dk.evaluate(dk.logsumexp(z), big) == pytest.approx(1e4 + np.log(2))
    ls = dk.evaluate(dk.log_softmax(z), big)
    assert np.all(np.isfinite(ls)) and ls[0] == pytest.approx(-np.log(2))
    g = dk.gradient(dk.logsumexp(z), big)["z"]
    np.testing.assert_allclose(g, [0.5, 0.5, 0.0])


def test_max_reduction_ties_share_evenly():
    # as jnp.max and torch.amax: tied maxima split the derivative
    x = dk.variable("x", (4,))
    g = dk.gradient(dk.max(x), {"x": [1.0, 3.0, 3.0, 0.0]})["x"]
    np.testing.assert_array_equal(g, [0, 0.5, 0.5, 0])
    r = dk.gradient(dk.sum(dk.relu(x)), {"x": [-1.0, 0.0, 2.0, 0.0]})["x"]
    np.testing.assert_array_equal(r, [0, 0, 1, 0])


def test_compile_is_reusable_and_frees():
    x, y = dk.variables("x y")
    program = dk.compile([x * y, x + y])
    assert program({"x": 2.0, "y": 3.0}) == [6.0, 5.0]
    assert program({"x": 1.0, "y": 1.0}) == [1.0, 2.0]
    assert dk.compile([x * y, x + y]) is program


def test_parse():
    f = dk.parse("exp(x)*sin(x)")
    x = dk.variable("x")
    assert f is dk.exp(x) * dk.sin(x)
    assert dk.evaluate(dk.parse("x^2 + 3*y"), {"x": 2.0, "y": 1.0}) == 7.0
    assert dk.evaluate(dk.parse("sigmoid(0*x) + relu(-x)"), {"x": 2.0}) == 0.5


def test_custom_op_block():
    import numpy as np

    cube = dk.custom_op(
        "cube_test", lambda a: a**3, lambda ct, out, a: (ct * 3 * a * a,), mpmath=lambda a: a**3
    )
    x = dk.variable("x")
    assert dk.derivative(cube(x), "x", {"x": 2.0}) == 12.0
    assert dk.derivative(cube(x), "x", {"x": 2.0}, method="forward") == 12.0
    assert dk.hessian(cube(x), {"x": 2.0})[0, 0] == 12.0
    with pytest.raises(ValueError, match="already registered"):
        dk.custom_op("cube_test", np.negative, lambda ct, out, a: (-ct,))


# ---- bad input -------------------------------------------------------------------


def test_shape_mismatch_names_op_and_shapes():
    a, b = dk.variable("a", (2, 3)), dk.variable("b", (4,))
    with pytest.raises(dk.ShapeError, match=r"add: cannot broadcast shapes \(2, 3\) and \(4,\)"):
        a + b
    with pytest.raises(dk.ShapeError, match=r"matmul: shapes \(2, 3\) and \(4, 1\)"):
        a @ dk.variable("c", (4, 1))
    with pytest.raises(dk.ShapeError, match="reshape"):
        dk.reshape(a, (5,))


def test_evaluate_errors_name_the_variable():
    x, y = dk.variables("x y")
    with pytest.raises(dk.EvaluationError, match="missing value for variable 'y'"):
        dk.evaluate(x * y, {"x": 1.0})
    assert dk.evaluate(x * y, {"x": 1.0, "y": 2.0, "q": 3.0}) == 2.0  # extra names are fine
    with pytest.raises(dk.EvaluationError, match="unknown variable 'q'.*x, y"):
        dk.evaluate(x * y, {"x": 1.0, "y": 2.0, "q": 3.0}, strict=True)
    v = dk.variable("v", (3,))
    with pytest.raises(dk.EvaluationError, match=r"'v' has shape \(3,\).*shape \(2,\)"):
        dk.evaluate(v * 2, {"v": [1.0, 2.0]})
    with pytest.raises(dk.EvaluationError, match="missing value for variable 'y'"):
        dk.gradient(x * y, {"x": 1.0})


def test_parse_errors():
    with pytest.raises(dk.ParseError, match="unknown function 'foo'"):
        dk.parse("foo(x) + 1")
    with pytest.raises(dk.ParseError, match="cannot parse"):
        dk.parse("x + * 2")
    with pytest.raises(dk.ParseError, match="empty"):
        dk.parse("  ")


def test_gradient_errors():
    x = dk.variable("x", (2,))
    with pytest.raises(ValueError, match=r"scalar output.*\(2,\)"):
        dk.gradient(x * 2, {"x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="no variable named 'q'|variable named 'q'"):
        dk.gradient(dk.sum(x), {"x": [1.0, 2.0]}, wrt="q")
    with pytest.raises(ValueError, match="unknown method 'bogus'.*reverse"):
        dk.gradient(dk.sum(x), {"x": [1.0, 2.0]}, method="bogus")


def test_check_grads_catches_a_wrong_rule():
    wrong = dk.custom_op("wrong_sin_test", np.sin, lambda ct, out, a: (ct * dk.sin(a),))
    x = dk.variable("x")
    dk.check_grads(dk.sin(x), {"x": 0.4}, order=2)
    with pytest.raises(AssertionError, match="central difference"):
        dk.check_grads(wrong(x), {"x": 0.4})


def test_more_bad_input_is_named():
    x = dk.variable("x", (3,))
    with pytest.raises(dk.EvaluationError, match="'x': the value 'abc' is not numeric"):
        dk.evaluate(x * 2, {"x": "abc"})
    with pytest.raises(dk.EvaluationError, match="precision must be a positive"):
        dk.evaluate(x * 2, {"x": [1.0, 2.0, 3.0]}, precision=0)
    with pytest.raises(TypeError, match="expected an IR node.*float"):
        dk.gradient(3.0, {"x": 1.0})
    with pytest.raises(dk.ShapeError, match=r"matmul: shapes \(3,\) and \(4,\)"):
        x @ dk.variable("y", (4,))
    with pytest.raises(ValueError, match="no mpmath form|has no mpmath"):
        dk.evaluate(
            dk.conv2d(dk.variable("im", (1, 1, 4, 4)), dk.variable("w", (1, 1, 3, 3))),
            {"im": np.ones((1, 1, 4, 4)), "w": np.ones((1, 1, 3, 3))},
            precision=20,
        )


@pytest.mark.parametrize("shape", [(6, 25), (25, 6), (3, 2)])
def test_matmul_with_long_inner_dimension(shape):
    """Few output rows or columns and a long inner dimension take matrix-vector products."""
    m, n = shape
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, 20000))
    b = rng.standard_normal((20000, n))
    av, bv = dk.variable("a", a.shape), dk.variable("b", b.shape)
    out = dk.evaluate(dk.matmul(av, bv), {"a": a, "b": b})
    exact = np.array([[math.fsum(a[i] * b[:, j]) for j in range(n)] for i in range(m)])
    np.testing.assert_allclose(out, exact, rtol=1e-12, atol=1e-10)
    out32 = dk.evaluate(dk.matmul(av, bv), {"a": a.astype(np.float32), "b": b.astype(np.float32)})
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, exact, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize(
    "logits",
    [[1000.0] * 4, [1e6, 1e6, 0.0, 0.0], [5.0, 5.0], [-745.0, 0.0, 3.5, 709.0], [0.1, -2.0, 7.0]],
)
def test_softmax_family_to_the_last_ulp(logits):
    """softmax and log_softmax subtract the largest logit before anything else, as PyTorch
    and JAX: equal logits give exactly 1/n and -log n, and every entry is within 2 ulp of
    a 50-digit truth, or 2 eps absolute for log-probabilities near 0 (x - logsumexp(x)
    would be off by an ulp of max(x), 1e-10 at 1e6)."""
    import mpmath

    x = dk.variable("x", (len(logits),))
    at = {"x": np.array(logits)}
    sm, lsm = dk.evaluate(dk.softmax(x), at), dk.evaluate(dk.log_softmax(x), at)
    with mpmath.workdps(50):
        v = [mpmath.mpf(t) for t in logits]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(t) for t in v))
        truth_l = [float(t - lse) for t in v]
        truth_s = [float(mpmath.exp(t - lse)) for t in v]
    eps = np.finfo(float).eps
    np.testing.assert_allclose(lsm, truth_l, rtol=2 * eps, atol=2 * eps)
    np.testing.assert_allclose(sm, truth_s, rtol=2 * eps, atol=1e-320)
    if len(set(logits)) == 1:
        assert sm.tolist() == [1 / len(logits)] * len(logits)
        assert lsm.tolist() == [-np.log(len(logits))] * len(logits)


def test_softmax_gradient_against_its_log_form():
    """The softmax record's own derivative rules against the derivative of exp(log_softmax)."""
    x = dk.variable("x", (3, 4))
    w = dk.const(np.random.default_rng(0).standard_normal((3, 4)))
    at = {"x": np.random.default_rng(1).standard_normal((3, 4)) * 3}
    for axis in (0, 1):
        direct = dk.sum(dk.softmax(x, axis) * w)
        composed = dk.sum(dk.exp(dk.log_softmax(x, axis)) * w)
        for method in ("reverse", "forward"):
            np.testing.assert_allclose(
                dk.gradient(direct, at, method=method)["x"],
                dk.gradient(composed, at, method=method)["x"],
                rtol=1e-12,
                atol=1e-14,
            )
        np.testing.assert_allclose(
            np.asarray(dk.hessian(direct, at)), np.asarray(dk.hessian(composed, at)), atol=1e-12
        )

"""numpy's own functions on IR nodes: unchanged numpy code builds IR."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk

RNG = np.random.default_rng(0)


def fun(x):  # a plain numpy function, as in autograd's tests
    return np.sum(np.sin(x) * x + np.exp(-x * x) / (1 + np.abs(x)))


def test_a_plain_numpy_function_builds_ir_with_the_right_gradient():
    v = RNG.uniform(-2, 2, 5)
    x = dk.variable("x", (5,))
    f = fun(x)
    assert isinstance(f, dk.Node)
    assert dk.evaluate(f, {"x": v}) == pytest.approx(fun(v), rel=1e-14)
    grad = dk.gradient(f, {"x": v})["x"]
    fd = dk.gradient(f, {"x": v}, method="richardson")["x"]
    np.testing.assert_allclose(grad, fd, rtol=1e-9)
    dk.check_grads(f, {"x": v}, order=2)


@pytest.mark.parametrize(
    "numpy_fn",
    [
        lambda a, b: np.maximum(a, b) + np.minimum(a, b),
        lambda a, b: np.where(a > b, a, b * 2),
        lambda a, b: np.hypot(a, b) + np.arctan2(a, b) + np.logaddexp(a, b),
        lambda a, b: np.tanh(a) @ np.reshape(np.transpose(b), (4, 3)),
        lambda a, b: np.mean(np.log1p(a * a), axis=0) + np.max(b, axis=1).sum(),
        lambda a, b: np.dot(np.cbrt(a), np.ones((4, 2))) + a.T.sum(),
        lambda a, b: np.clip(a, -0.5, 0.5) * np.square(b) + np.prod(a, axis=1, keepdims=True),
        lambda a, b: abs(a) + a % 0.7 + np.cumsum(b, axis=1),
    ],
)
def test_numpy_functions_on_nodes_match_numpy(numpy_fn):
    a, b = RNG.uniform(-1, 1, (3, 4)), RNG.uniform(-1, 1, (3, 4))
    na, nb = dk.variable("a", (3, 4)), dk.variable("b", (3, 4))
    out = numpy_fn(na, nb)
    np.testing.assert_allclose(dk.evaluate(out, {"a": a, "b": b}), numpy_fn(a, b), rtol=1e-13)
    scalar = dk.sum(out * dk.const(RNG.standard_normal(out.shape)))
    dk.check_grads(scalar, {"a": a, "b": b}, order=1)


def test_unsupported_numpy_functions_are_named():
    x = dk.variable("x", (3,))
    with pytest.raises(TypeError, match="numpy's fft"):
        np.fft.fft(x)
    with pytest.raises(TypeError, match="numpy's add.reduce"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match="numpy's unique"):
        np.unique(x)


def test_comparisons_build_nodes_and_never_become_constants():
    x, y = dk.variables("x y")
    assert (x == y).op.name == "equal" and (x != y).op.name == "not_equal"
    assert dk.evaluate(x == y, {"x": 1.0, "y": 1.0}) == 1.0
    assert dk.evaluate(x < y, {"x": 1.0, "y": 2.0}) == 1.0
    assert dk.evaluate(x <= y, {"x": 2.0, "y": 2.0}) == 1.0
    with pytest.raises(TypeError, match="no truth value"):
        bool(x == y)
    # nodes stay usable as dict keys and in identity tests
    table = {x: 1, y: 2}
    assert table[x] == 1 and (x is x)


def test_copies_and_constants_shaped_like_a_node():
    """The idioms of numpy code that make working arrays: copy, *_like, ptp."""

    def f(v):
        w = v.copy()
        base = np.zeros_like(v) + np.ones_like(v) * 0.5 + np.full_like(v, 2.0)
        return np.sum(np.copy(w) ** 2 * base) + np.ptp(w)

    v = np.array([0.3, -1.2, 2.0, 0.7])
    assert dk.grad(f)(v) == pytest.approx(2 * v * 2.5 + np.array([0, -1, 1, 0]), rel=1e-14)
    x = dk.variable("x", (2, 3))
    assert np.zeros_like(x, shape=(4,)).shape == (4,)
    with pytest.raises(TypeError, match="zeros_like: the IR holds real or complex values"):
        np.zeros_like(x, dtype=int)
    with pytest.raises(TypeError, match="full_like: fill_value must be a number"):
        np.full_like(x, x)
    for shape in ((10**12,), (-1,), ("a",)):  # fails at once, naming the function
        with pytest.raises(ValueError, match="zeros_like: cannot make a constant of shape"):
            np.zeros_like(x, shape=shape)
    ties = dk.variable("t", (4,))
    g = dk.gradient(np.ptp(ties), at={"t": [3.0, 1.0, 3.0, 1.0]})["t"]
    assert g.tolist() == [0.5, -0.5, 0.5, -0.5]  # shared evenly, as jnp.ptp


def test_asarray_of_a_node():
    """np.asarray(node) gives its entries as an object array (as a list of nodes does); a
    numeric dtype, writing into a numpy array, or a huge node is a one-line TypeError."""
    x = dk.variable("x", (2, 2))
    arr = np.asarray(x)
    assert arr.dtype == object and arr.shape == (2, 2) and isinstance(arr[1, 0], dk.Node)
    assert dk.evaluate(arr[1, 0], {"x": np.arange(4.0).reshape(2, 2)}) == 2.0
    assert np.asarray(dk.variable("s")).shape == ()
    with pytest.raises(TypeError, match=r"cannot become a float64 array .* use the node"):
        np.asarray(x, dtype=float)
    out = np.empty((2, 2))
    with pytest.raises(TypeError, match="writing it into a numpy array"):
        out[:] = x
    with pytest.raises(TypeError, match="would make one node per entry"):
        np.asarray(dk.variable("big", (1000, 1000)))
    for convert in (float, int, complex):
        with pytest.raises(TypeError, match=rf"{convert.__name__}\(\) of an IR node: it holds no"):
            convert(dk.variable("s"))

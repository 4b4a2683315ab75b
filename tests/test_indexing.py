"""Indexing, slicing and joining: values against numpy and loops, gradients against central
differences, over random shapes, steps and repeated indices."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk

RNG = np.random.default_rng(3)


def _random_slice(rng, size):
    step = int(rng.choice([-3, -2, -1, 1, 2]))
    start = int(rng.integers(-size, size)) if rng.uniform() < 0.7 else None
    stop = int(rng.integers(-size - 1, size + 1)) if rng.uniform() < 0.7 else None
    return slice(start, stop, step)


def _check(build, x):
    """Value equals numpy's; gradient of a random weighting equals central differences."""
    node = dk.variable("x", x.shape)
    out = build(node)
    np.testing.assert_array_equal(dk.evaluate(out, {"x": x}), build(x))
    if out.size == 0:
        return
    weights = RNG.standard_normal(out.shape)
    f = dk.sum(out * dk.const(weights)) if out.shape else out * float(weights)
    grad = dk.gradient(f, {"x": x})["x"]
    fd = dk.gradient(f, {"x": x}, method="central")["x"]
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9)
    # the loop reference: d/dx_k sum(w * build(x)) by perturbing one entry at a time
    loop = np.zeros(x.size)
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = 1.0
        loop[k] = np.sum(weights * (build(x + e.reshape(x.shape)) - build(x)))
    np.testing.assert_allclose(grad.ravel(), loop, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(25))
def test_basic_slicing_with_any_step(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, rng.integers(1, 4)))
    x = rng.standard_normal(shape)
    index = tuple(
        _random_slice(rng, d) if rng.uniform() < 0.7 else int(rng.integers(-d, d)) for d in shape
    )
    _check(lambda a: a[index], x)


@pytest.mark.parametrize("seed", range(10))
def test_integer_array_indexing_adds_up_repeated_indices(seed):
    rng = np.random.default_rng(100 + seed)
    x = rng.standard_normal((4, 3))
    idx = rng.integers(-4, 4, int(rng.integers(1, 8)))
    _check(lambda a: a[idx], x)
    cols = rng.integers(0, 3, (2, 2))
    _check(lambda a: a[:, cols], x)


def test_gradient_of_a_repeated_gather_counts_each_use():
    v = dk.variable("v", (3,))
    g = dk.gradient(dk.sum(v[np.array([0, 0, 0, 2])]), {"v": np.ones(3)})["v"]
    assert g.tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize(
    "build",
    [
        lambda a: np.concatenate([a, a[::-1], a * 2], axis=0),
        lambda a: np.concatenate([a, a], axis=-1),
        lambda a: np.stack([a, a + 1, a[:, ::-1]], axis=1),
        lambda a: np.split(a, 2, axis=0)[1] * np.split(a, [1], axis=1)[0][:2],
        lambda a: np.pad(a, ((1, 2), (0, 3))),
        lambda a: np.repeat(a, 3, axis=1),
        lambda a: np.repeat(a, 2),
        lambda a: np.tile(a, (2, 3)),
        lambda a: np.tile(a, 2),
        lambda a: np.flip(a) + np.flip(a, axis=0),
        lambda a: a[None, ..., 1:],
    ],
)
def test_joining_and_composed_ops(build):
    _check(build, RNG.standard_normal((4, 3)))


def test_index_errors_name_the_problem():
    W = dk.variable("W", (3, 4))
    with pytest.raises(IndexError, match="index 3 is out of bounds for axis 0 of size 3"):
        W[3]
    with pytest.raises(IndexError, match="too many indices"):
        W[0, 0, 0]
    with pytest.raises(IndexError, match="out of bounds for axis 0"):
        W[np.array([0, 5])]
    with pytest.raises(dk.ShapeError, match="concatenate: shapes"):
        np.concatenate([W, dk.variable("V", (3, 5))], axis=0)
    with pytest.raises(ValueError, match="pad: mode='median' is not supported"):
        np.pad(W, 1, mode="median")


# ---- numpy's full indexing: every form, values and gradients -------------------------------

MASK4 = np.array([True, False, True, True])
MASK45 = np.random.default_rng(5).uniform(size=(4, 5)) > 0.4

READS = [
    (3, slice(2, None), [1, 3]),
    ([0, 1], [2, 3]),
    ([0, 1], slice(None), [2, 3]),
    (slice(None), [[0], [2]]),
    (slice(None), [[0, 1]], [[2], [3], [5]]),
    (Ellipsis, None, [0, 0, 1]),
    (Ellipsis, [-1, 0]),
    ([[0, 1]], slice(None, None, -2), None, [[2], [3]]),
    (None, [1], slice(1, 3), [4]),
    (1, [0, -5], slice(None), None),
    (np.array(2), [1, 1, 1]),
    (slice(None), [], 1),
    (MASK4,),
    (MASK4, slice(None), 0),
    (slice(None), slice(None), np.array([True] * 3 + [False] * 3)),
    (MASK45,),
    (MASK45, -2),
    (True,),
    (False, 1),
    ([3, 3, 0, 3], slice(1, 4, 2), 5),
    (np.array([[0, 1], [2, 3]], dtype=np.uint8), 0),
]


@pytest.mark.parametrize("index", READS, ids=[str(i) for i in range(len(READS))])
def test_every_form_of_numpys_indexing_reads_as_numpy(index):
    _check(lambda a: a[index], np.random.default_rng(1).standard_normal((4, 5, 6)))


def _random_index(rng, shape):
    """A random mix of integers, slices, None, ..., integer arrays and boolean masks."""
    items, axis = [], 0
    while axis < len(shape):
        kind = rng.choice(["int", "slice", "array", "mask", "none", "ellipsis"])
        d = shape[axis]
        if kind == "int":
            items.append(int(rng.integers(-d, d)))
        elif kind == "slice":
            items.append(_random_slice(rng, d))
        elif kind == "array":
            items.append(rng.integers(-d, d, tuple(rng.integers(1, 3, rng.integers(0, 3)))))
        elif kind == "mask":
            items.append(rng.uniform(size=d) < 0.6)
        elif kind == "none":
            items.append(None)
            continue
        else:
            items.append(Ellipsis)
            break
        axis += 1
    return tuple(items)


@pytest.mark.parametrize("seed", range(60))
def test_random_mixed_indices_read_as_numpy(seed):
    rng = np.random.default_rng(1000 + seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, rng.integers(1, 5)))
    x = rng.standard_normal(shape)
    index = _random_index(rng, shape)
    try:
        expected = x[index]
    except IndexError:  # arrays that do not broadcast together: diffkit refuses as well
        with pytest.raises(IndexError, match="getitem: index arrays of shapes"):
            dk.variable("x", shape)[index]
        return
    node = dk.variable("x", shape)
    out = node[index]
    assert out.shape == expected.shape, index
    np.testing.assert_array_equal(dk.evaluate(out, {"x": x}), expected)
    w = rng.standard_normal(expected.shape)
    grad = dk.gradient(dk.sum(out * dk.const(w)), {"x": x})["x"]
    reference = np.zeros_like(x)
    np.add.at(reference, index, w)  # the adjoint of reading: scatter-add
    np.testing.assert_allclose(grad, reference, rtol=1e-14, atol=1e-14)


def test_advanced_indexing_keeps_float32_and_batches():
    x = np.random.default_rng(2).standard_normal((3, 4, 5)).astype(np.float32)
    g = dk.grad(lambda a: np.sum(a[[0, 2], :, [1, 1]] ** 2))(x)
    assert g.dtype == np.float32
    # Jacobians push every direction through one batched pass: same as the explicit matrix
    jac = dk.jacrev(lambda a: a[1, [2, 0], 1:])(x.astype(float))
    jfwd = dk.jacfwd(lambda a: a[1, [2, 0], 1:])(x.astype(float))
    explicit = np.zeros((2, 4) + x.shape)
    for i, r in enumerate([2, 0]):
        for j in range(4):
            explicit[i, j, 1, r, j + 1] = 1.0
    np.testing.assert_array_equal(jac, explicit)
    np.testing.assert_array_equal(jfwd, explicit)


# ---- functional updates: x.at[index] ----------------------------------------------------------

UFUNC_AT = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
    "min": np.minimum,
    "max": np.maximum,
}
WRITES = [
    (1, [0, 3]),
    ([2, 0, 2],),
    ([0, 2], slice(1, None), 1),
    ([[0, 0], [1, 0]], [[1, 1], [2, 1]]),
    (MASK4[:3], slice(None, None, -1)),
    (Ellipsis, None, [1, 1, 0]),
    (slice(None), 2),
]


@pytest.mark.parametrize("method", ["set", *UFUNC_AT])
@pytest.mark.parametrize("index", WRITES, ids=[str(i) for i in range(len(WRITES))])
def test_functional_updates_match_numpy_and_differences(method, index):
    rng = np.random.default_rng(7)
    x = rng.uniform(0.5, 2.0, (3, 4, 2))
    v = rng.uniform(0.5, 2.0, x[index].shape)
    expected = x.copy()
    if method == "set":
        expected[index] = v
    else:
        UFUNC_AT[method].at(expected, index, v)

    def update(a, b):
        return getattr(dk.ir.as_node(a).at[index], method)(b)

    X, V = dk.variable("x", x.shape), dk.variable("v", v.shape)
    np.testing.assert_allclose(dk.evaluate(update(X, V), {"x": x, "v": v}), expected, rtol=1e-15)
    w = rng.standard_normal(x.shape)
    check_grads(lambda a, b: np.sum(update(a, b) * w), (x, v), order=2)


def test_set_with_repeated_indices_keeps_the_last_write_and_its_gradient_only():
    x = dk.variable("x", (4,))
    v = dk.variable("v", (3,))
    out = x.at[np.array([1, 1, 3])].set(v)
    at = {"x": np.zeros(4), "v": np.array([10.0, 20.0, 30.0])}
    ref = np.zeros(4)
    ref[[1, 1, 3]] = at["v"]
    np.testing.assert_array_equal(dk.evaluate(out, at), ref)
    g = dk.gradient(dk.sum(out * dk.const([1.0, 2.0, 3.0, 4.0])), at)
    assert g["x"].tolist() == [1.0, 0.0, 3.0, 0.0]  # overwritten entries get none
    assert g["v"].tolist() == [0.0, 2.0, 4.0]  # the overwritten value gets none


def test_add_with_repeated_indices_adds_every_value_as_np_add_at():
    x = dk.variable("x", (3,))
    out = x.at[[0, 0, 0, 2]].add(dk.variable("v", (4,)))
    g = dk.gradient(dk.sum(out * dk.const([1.0, 2.0, 3.0])), {"x": np.ones(3), "v": np.ones(4)})
    assert g["v"].tolist() == [1.0, 1.0, 1.0, 3.0]
    assert g["x"].tolist() == [1.0, 2.0, 3.0]


def test_set_keeps_infinities_off_the_index_and_overwrites_them_on_it():
    x = dk.variable("x", (3,))
    at = {"x": np.array([np.inf, 1.0, -np.inf])}
    out = x.at[0].set(2.0)
    assert dk.evaluate(out, at).tolist() == [2.0, 1.0, -np.inf]
    g = dk.gradient(dk.sum(out), at)["x"]
    assert g.tolist() == [0.0, 1.0, 1.0]


def test_get_and_numpy_take():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4))
    X = dk.variable("x", x.shape)
    np.testing.assert_array_equal(dk.evaluate(X.at[:, [1, 1]].get(), {"x": x}), x[:, [1, 1]])
    for kwargs in ({}, {"axis": 1}, {"axis": 0, "mode": "wrap"}, {"mode": "clip"}):
        idx = np.array([[0, 7], [-1, 2]])
        if not kwargs.get("mode"):
            idx = idx % 3
        want = np.take(x, idx, **kwargs)
        np.testing.assert_array_equal(dk.evaluate(np.take(X, idx, **kwargs), {"x": x}), want)
        _check(lambda a: np.take(a, idx, **kwargs), x)


# ---- what research code does with indexing, traced and checked --------------------------------

from diffkit.testing import check_grads  # noqa: E402


def _cross_entropy(logits, labels=np.array([2, 0, 1, 2, 2])):
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(len(labels)), labels])


def _pair_energy(pos):
    i, j = np.triu_indices(pos.shape[0], k=1)
    d = pos[i] - pos[j]
    r2 = np.sum(d * d, axis=-1)
    return np.sum(1.0 / r2**6 - 2.0 / r2**3)


def _laplacian_periodic(u):
    p = np.pad(u, 1, mode="wrap")
    lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * u
    return np.sum(lap**2)


def _masked_mean(x, mask=np.array([[True, False, True], [False, True, True]])):
    return np.sum(x[mask] ** 2) / mask.sum()


def _embedding_bag(table, tokens=np.array([[1, 3, 3], [0, 1, 2]])):
    return np.sum(np.tanh(table[tokens].sum(axis=1)) ** 2)


def _scatter_histogram(values, bins=np.array([0, 2, 2, 1, 0, 2])):
    return np.sum(dk.const(np.zeros(3)).at[bins].add(values) ** 2)


def _boundary_condition(u):
    u = u.at[0].set(0.0).at[-1].set(1.0)
    return np.sum((u[2:] - 2 * u[1:-1] + u[:-2]) ** 2)


def _ring_of_springs(x):
    neighbour = x[(np.arange(len(x)) + 1) % len(x)]
    return 0.5 * np.sum((neighbour - x - 1.0) ** 2)


RESEARCH = [
    (_cross_entropy, (5, 3)),
    (_pair_energy, (4, 3)),
    (_laplacian_periodic, (4, 5)),
    (_masked_mean, (2, 3)),
    (_embedding_bag, (4, 2)),
    (_scatter_histogram, (6,)),
    (_boundary_condition, (7,)),
    (_ring_of_springs, (6,)),
]


@pytest.mark.parametrize("f,shape", RESEARCH, ids=[f.__name__ for f, _ in RESEARCH])
def test_research_code_with_indexing_differentiates(f, shape):
    rng = np.random.default_rng(9)
    x = rng.uniform(0.5, 1.5, shape)
    if f is _pair_energy:
        x = x + 2.0 * np.arange(shape[0])[:, None]  # atoms apart
    value = dk.evaluate(f(dk.variable("x", shape)), {"x": x})
    if f not in (_scatter_histogram, _boundary_condition):
        np.testing.assert_allclose(value, f(x), rtol=1e-13)
    assert dk.grad(f)(x).shape == shape
    check_grads(f, (x,), order=2)


# ---- hostile indices: one-line errors naming the op, axis, index and size ------------------

HOSTILE = [
    (np.array([1.0]), "getitem: arrays used as indices must be of integer or boolean type"),
    (1.5, r"getitem: unsupported index 1.5 \(float\)"),
    ("a", r"getitem: unsupported index 'a' \(str\)"),
    (np.array(["a"]), "integer or boolean type, got <U1"),
    ([[0, 1], [2]], "getitem: a list of unequal lengths cannot be an index array"),
    (np.array([2**62]), "getitem: index 4611686018427387904 is out of bounds for axis 0 of size 3"),
    (np.array([2**64 - 1], dtype=np.uint64), "index 18446744073709551615 is out of bounds"),
    ([10**30], "integer or boolean type, got object"),
    ((0, np.array([4, 1])), "index 4 is out of bounds for axis 1 of size 4"),
    ((slice(None), [-5]), "index -5 is out of bounds for axis 1 of size 4"),
    (np.ones((2, 2), bool), r"a boolean index of shape \(2, 2\) does not match the indexed axes"),
    (([0, 1], [0, 1, 2]), r"index arrays of shapes \(2,\), \(3,\) cannot be broadcast together"),
    ((0, 0, [0]), r"too many indices \(3\) for an array of shape \(3, 4\)"),
    (slice(1.5, None), "getitem: bad slice"),
    (slice(None, None, 0), "slice step cannot be zero"),
    ((Ellipsis, [0], Ellipsis), "only one ellipsis"),
    ({1: 2}, r"unsupported index \{1: 2\} \(dict\)"),
]


@pytest.mark.parametrize("index,message", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_indices_give_one_line_errors(index, message):
    W = dk.variable("W", (3, 4))
    with pytest.raises(IndexError, match=message) as err:
        W[index]
    assert "\n" not in str(err.value)


def test_nodes_as_indices_are_refused_with_the_reason():
    W = dk.variable("W", (3, 4))
    with pytest.raises(IndexError, match="not IR nodes; a boolean node as a mask") as err:
        W[W > 0]
    assert "\n" not in str(err.value)
    with pytest.raises(IndexError, match="take: indices must be constants"):
        np.take(W, W)


def test_bad_updates_give_one_line_errors():
    W = dk.variable("W", (3, 4))
    with pytest.raises(IndexError, match="at: index 7 is out of bounds for axis 0 of size 3"):
        W.at[np.array([7])].set(1.0)
    with pytest.raises(dk.ShapeError, match=r"values of shape \(5,\) do not broadcast to the"):
        W.at[0].set(np.ones(5))
    with pytest.raises(ValueError, match="mode='drop' is not supported"):
        W.at[0].add(1.0, mode="drop")
    with pytest.raises(TypeError, match="take: out= is not supported"):
        np.take(W, [0], out=np.zeros(1))


def test_large_index_arrays_build_and_differentiate_quickly():
    import time

    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 500, 10**6), rng.integers(0, 400, 10**6)
    x = rng.standard_normal((500, 400))
    start = time.perf_counter()
    g = dk.grad(lambda a: np.sum(a[i, j] ** 2))(x)
    assert time.perf_counter() - start < 60.0  # a per-element Python loop takes far longer
    reference = np.zeros_like(x)
    np.add.at(reference, (i, j), 2 * x[i, j])
    np.testing.assert_allclose(g, reference, rtol=1e-12)

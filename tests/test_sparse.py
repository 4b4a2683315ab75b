"""Sparse derivatives: patterns read from the IR never miss a nonzero of the dense Jacobian
or Hessian (every registered op, random graphs), colourings are valid and as small as the
bounds say on banded patterns, and the recovered matrices equal the dense ones for every
method and vertex order."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import diffkit as dk
from diffkit.ir.op import Unsupported
from diffkit.differentiators.coloring import (
    ORDERS,
    coloring,
    is_acyclic_coloring,
    is_star_coloring,
)
from diffkit.differentiators.sparse import (
    SparseHessian,
    SparseJacobian,
    hessian_sparsity,
    jacobian_sparsity,
    sparse_hessian,
    sparse_jacobian,
    sparsity,
)

OPS = dk.registry()


def _inputs(op, sample, rng):
    if sample.make is not None:
        values = [np.asarray(v, dtype=float) for v in sample.make(rng)]
    else:
        values = [rng.uniform(sample.low, sample.high, s) for s in sample.shapes]
    nodes, at = [], {}
    for i, v in enumerate(values):
        if i in sample.const or i in op.nondiff_inputs:
            nodes.append(dk.const(v))
        else:
            nodes.append(dk.variable(f"in{i}", np.shape(v)))
            at[f"in{i}"] = v
    return nodes, at


def _dense_jacobian(f, at, names, method="reverse"):
    jac = dk.jacobian(f, at, method=method, wrt=list(names))
    m = int(np.prod(f.shape, dtype=int))
    return np.concatenate([np.reshape(jac[n], (m, np.size(at[n]))) for n in names], axis=1)


def _outside(pattern, dense) -> int:
    """Nonzeros of ``dense`` (NaN included) that ``pattern`` leaves out."""
    return int(np.sum((dense != 0) & ~pattern.toarray()))


CASES = [
    (name, i)
    for name, op in sorted(OPS.items())
    if op.differentiable
    for i, smp in enumerate(op.samples)
    if any(k not in smp.const and k not in op.nondiff_inputs for k in range(len(smp.shapes)))
]


@pytest.mark.parametrize("name,index", CASES)
def test_op_pattern_never_misses_a_nonzero(name, index):
    """Every registered op on every sample: the global and the local pattern cover the dense
    Jacobian (reverse mode) at a random point, and the Hessian pattern of a weighted sum
    covers its dense Hessian."""
    op = OPS[name]
    sample = op.samples[index]
    rng = np.random.default_rng(index + 3)
    nodes, at = _inputs(op, sample, rng)
    out = dk.apply(op, *nodes, **sample.attrs)
    names = sorted(at)
    with np.errstate(all="ignore"):
        dense = _dense_jacobian(out, at, names)
    glob = jacobian_sparsity(out, wrt=names)
    local = jacobian_sparsity(out, wrt=names, at=at, local=True)
    assert glob.shape == dense.shape
    assert _outside(glob, dense) == 0, f"{name}: the global pattern misses a nonzero"
    assert _outside(local, dense) == 0, f"{name}: the local pattern misses a nonzero"
    assert _outside(glob, local.toarray()) == 0, f"{name}: local is not inside global"
    if sample.second_order:
        weights = rng.standard_normal(out.shape)
        f = dk.sum(out * dk.const(weights)) if out.shape else out * float(weights)
        with np.errstate(all="ignore"):
            H = np.asarray(dk.hessian(f, at, wrt=names))
        assert _outside(hessian_sparsity(f, wrt=names), H) == 0, f"{name}: Hessian pattern"


def test_every_op_has_a_sparsity_rule():
    """Written in its record or derived from its kind: no op of the registry widens a
    pattern to dense."""
    missing = [name for name, op in OPS.items() if not op.rule("sparsity")]
    assert not missing, f"ops without a sparsity rule: {missing}"


def _reversal(name, rules):
    """A temporary op that reverses a vector, with the given rules."""
    from diffkit.ir.op import Op, Sample, Unsupported, register

    return register(
        Op(
            name=name,
            shape=lambda shapes: shapes[0],
            impl=lambda x: x[::-1],
            vjp=lambda ct, out, x: (dk.apply(OPS_REVERSAL[name], ct),),
            jvp=lambda tangents, out, x: dk.apply(OPS_REVERSAL[name], tangents[0]),
            mpmath=Unsupported("a test op"),
            sympy=Unsupported("a test op"),
            samples=(Sample(((4,),)),),
            analytic=True,
            kind="other",
            rules=rules,
        )
    )


OPS_REVERSAL: dict = {}


@pytest.mark.parametrize(
    "rules, note",
    [
        ({"batch": Unsupported("a test op")}, "no sparsity rule; taken as dense"),
        (
            {"batch": Unsupported("a test op"), "sparsity": lambda node, values=None: 1 / 0},
            "its sparsity rule failed (division by zero); taken as dense",
        ),
    ],
)
def test_an_op_without_a_working_rule_widens_to_dense_with_a_note(rules, note):
    from diffkit.ir.op import unregister

    name = "test_reversal_" + str(len(rules))
    OPS_REVERSAL[name] = _reversal(name, rules)
    try:
        x = dk.variable("x", (4,))
        f = dk.apply(OPS_REVERSAL[name], dk.sin(x))
        p = jacobian_sparsity(f)
        assert p.toarray().all() and p.notes == (f"{name}: {note}",)
        J = dk.jacobian(f, {"x": np.arange(4.0)}, sparse=True)["x"]  # still right
        np.testing.assert_allclose(J.toarray(), np.diag(np.cos(np.arange(4.0)))[::-1])
    finally:
        unregister(name)


# ---- random graphs -----------------------------------------------------------------------------

N = 8


def _random_graph(rng, x, y):
    """A random composition of elementwise ops, slices, shifts, reductions, joins, matrix
    products with banded constants, selections and windows."""
    pool = [x, y]
    steps = [
        lambda a, b: dk.sin(a) * b,
        lambda a, b: dk.relu(a - 0.3) + b,
        lambda a, b: dk.where(a > 0, a * a, b),
        lambda a, b: dk.maximum(a, b),
        lambda a, b: dk.concatenate([a[1:], a[:1] * b[:1]]),
        lambda a, b: np.roll(a, 2) - np.flip(b),
        lambda a, b: np.diff(a, prepend=0.0) * dk.exp(b),
        lambda a, b: a * dk.sum(b[2:5] ** 2),
        lambda a, b: dk.cumsum(a, axis=0) + b,
        lambda a, b: dk.const(np.diag(np.ones(N)) + np.diag(np.ones(N - 1), 1)) @ a + b,
        lambda a, b: dk.reshape(dk.transpose(dk.reshape(a, (2, 4))), (N,)) * b,
        lambda a, b: dk.take(a, [7, 0, 0, 3, 2, 5, 6, 1]) + b,
        lambda a, b: dk.log_softmax(dk.reshape(a, (2, 4)), axis=1).ravel() * b,
        lambda a, b: dk.einsum("i,i->i", a, b) + dk.tanh(a),
        lambda a, b: dk.pad(a[2:6], (2, 2)) + b,
        lambda a, b: np.sort(a) + b,
        lambda a, b: (
            dk.reshape(
                dk.max_pool2d(dk.reshape(a * b, (1, 1, 2, 4)), kernel_size=(1, 2), stride=1),
                (-1,),
            )[:1]
            * a
        ),
    ]
    for _ in range(4):
        k = rng.integers(len(steps))
        a = pool[rng.integers(len(pool))]
        b = pool[rng.integers(len(pool))]
        pool.append(steps[k](a, b))
    return pool[-1]


@pytest.mark.parametrize("seed", range(30))
def test_random_graph_patterns_never_miss_a_nonzero(seed):
    rng = np.random.default_rng(seed)
    x, y = dk.variable("x", (N,)), dk.variable("y", (N,))
    f = _random_graph(rng, x, y)
    at = {"x": rng.standard_normal(N), "y": rng.standard_normal(N)}
    dense = _dense_jacobian(f, at, ["x", "y"], method="forward")
    glob = jacobian_sparsity(f, wrt=["x", "y"], at=at)
    local = jacobian_sparsity(f, wrt=["x", "y"], at=at, local=True)
    assert _outside(glob, dense) == 0
    assert _outside(local, dense) == 0
    assert _outside(glob, local.toarray()) == 0
    g = dk.sum(f * dk.const(rng.standard_normal(f.shape)))
    H = np.asarray(dk.hessian(g, at, wrt=["x", "y"]))
    assert _outside(hessian_sparsity(g, wrt=["x", "y"], at=at), H) == 0


def test_patterns_are_exact_where_they_should_be():
    x = dk.variable("x", (6,))
    band = jacobian_sparsity(x[2:] - 2 * x[1:-1] + x[:-2]).toarray()
    assert band.sum() == 12 and band[0, :3].all()
    A = np.diag(np.ones(6)) + np.diag(np.ones(5), -1)
    assert jacobian_sparsity(dk.const(A) @ x).toarray().sum() == 11
    img = dk.variable("img", (1, 1, 4, 4))
    pooled = dk.max_pool2d(img, kernel_size=2, stride=2)
    assert (jacobian_sparsity(pooled).toarray().sum(axis=1) == 4).all()
    # relu below zero cuts the dependency at that point only
    r = dk.relu(x)
    at = {"x": np.array([-1.0, 1, -1, 1, -1, 1])}
    assert jacobian_sparsity(r).nnz == 6
    assert jacobian_sparsity(r, at=at, local=True).nnz == 3


@pytest.mark.parametrize("name", ["conv2d_input_grad", "conv2d_direct_weight_grad"])
def test_convolution_gradient_patterns_are_exact(name):
    """The rules of a convolution's input and weight gradients equal the nonzeros of their
    dense Jacobians at a random point, on every sample (strides, padding, dilation, groups):
    no entry is widened, none is missed."""
    op = OPS[name]
    for index, sample in enumerate(op.samples):
        if any(0 in shape for shape in sample.shapes):
            continue
        rng = np.random.default_rng(index)
        nodes, at = _inputs(op, sample, rng)
        out = dk.apply(op, *nodes, **sample.attrs)
        names = sorted(at)
        dense = _dense_jacobian(out, at, names)
        pattern = jacobian_sparsity(out, wrt=names).toarray()
        np.testing.assert_array_equal(pattern, dense != 0, err_msg=f"{name} sample {index}")


def test_pooling_gradient_patterns_hold_the_windows():
    """A max-pooling's tangent reads each window (global pattern: the window's entries);
    its cotangent is the transpose; the Hessian of a CNN loss through them is sparse."""
    img = dk.variable("img", (1, 1, 4, 4))
    pooled = dk.max_pool2d(img, kernel_size=2, stride=2)
    loss = dk.sum(pooled**2)
    H = hessian_sparsity(loss)
    assert H.nnz == 4 * 16  # each 2x2 window couples its own 4 entries only
    at = {"img": np.random.default_rng(0).standard_normal((1, 1, 4, 4))}
    dense = np.asarray(dk.hessian(loss, at)).reshape(16, 16)
    assert _outside(H, dense) == 0


# ---- colourings --------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_colorings_are_valid(order):
    rng = np.random.default_rng(1)
    P = sp.random(40, 30, density=0.08, random_state=rng, format="csr") != 0
    c = coloring(P, "column", order)
    for row in P.tolil().rows:
        assert len(set(c.colors[row])) == len(row)
    r = coloring(P, "row", order)
    for col in P.T.tolil().rows:
        assert len(set(r.colors[col])) == len(col)
    S = (P[:30] + P[:30].T + sp.identity(30, dtype=bool)).tocsr()
    s = coloring(S, "star", order)
    assert is_star_coloring(S, s.colors)
    assert c.count >= c.lower_bound and s.count >= s.lower_bound


def test_banded_patterns_take_the_lower_bound():
    band = sp.diags([1, 1, 1, 1, 1], [-2, -1, 0, 1, 2], shape=(50, 50), dtype=bool)
    for order in ("natural", "largest_first", "smallest_last", "incidence_degree"):
        c = coloring(band, "column", order)
        assert c.count == c.lower_bound == 5
    arrow = sp.lil_matrix((30, 30), dtype=bool)
    arrow.setdiag(True)
    arrow[-1, :] = True
    arrow[:, -1] = True
    assert coloring(arrow, "star").count == 2


def test_coloring_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown order"):
        coloring(sp.identity(3), order="fastest")
    with pytest.raises(ValueError, match="unknown kind"):
        coloring(sp.identity(3), kind="diagonal")
    with pytest.raises(TypeError, match="scipy.sparse"):
        coloring([[1, 0]])


# ---- recovery ----------------------------------------------------------------------------------


def _brusselator(n):
    """The 2-D Brusselator right-hand side on an n x n periodic grid (u and v stacked)."""
    uv = dk.variable("uv", (2, n, n))
    u, v = uv[0], uv[1]

    def lap(w):
        return np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) - 4 * w

    du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
    dv = 3.4 * u - u * u * v + 10.0 * lap(v)
    return dk.stack([du, dv]).ravel(), uv


def _functions():
    x = dk.variable("x", (12,))
    banded = dk.sin(x[2:]) * x[:-2] + dk.exp(x[1:-1])
    bruss, uv = _brusselator(4)
    two = dk.variable("y", (3,))
    mixed = dk.concatenate([x[:3] * two, dk.tanh(x[3:6] + two)])
    rng = np.random.default_rng(5)
    return [
        (banded, {"x": rng.standard_normal(12)}),
        (bruss, {"uv": rng.uniform(0.5, 1.5, (2, 4, 4))}),
        (mixed, {"x": rng.standard_normal(12), "y": rng.standard_normal(3)}),
    ]


@pytest.mark.parametrize("method", ["forward", "reverse", "central"])
@pytest.mark.parametrize("order", ORDERS)
def test_recovered_jacobians_equal_dense_ones(method, order):
    for f, at in _functions():
        names = sorted(at)
        dense = _dense_jacobian(f, at, names, method="forward")
        jac = SparseJacobian(f, wrt=names, method=method, order=order)
        got = jac(at)
        assert sp.issparse(got) and got.shape == dense.shape
        tol = dict(rtol=1e-6, atol=1e-7) if method == "central" else dict(rtol=1e-13, atol=0)
        np.testing.assert_allclose(got.toarray(), dense, **tol)
        assert jac.last_cost.passes == jac.coloring.count < dense.shape[1]


def _hessian_functions():
    x = dk.variable("x", (10,))
    arrow = dk.sum(dk.cos(x) * x[-1]) + dk.sum(x**4)
    chain = dk.sum((x[1:] - x[:-1] ** 2) ** 2) + dk.sum((1 - x) ** 2)  # Rosenbrock
    bruss, uv = _brusselator(4)
    energy = dk.sum(bruss**2) / 2
    rng = np.random.default_rng(7)
    return [
        (arrow, {"x": rng.standard_normal(10)}),
        (chain, {"x": rng.standard_normal(10)}),
        (energy, {"uv": rng.uniform(0.5, 1.5, (2, 4, 4))}),
    ]


@pytest.mark.parametrize("kind", ["star", "acyclic"])
@pytest.mark.parametrize("order", ORDERS)
def test_recovered_hessians_equal_dense_ones(order, kind):
    """Star colourings (direct recovery) and acyclic ones (recovery by substitution) give
    the dense forward-over-reverse Hessian to rounding."""
    check = is_star_coloring if kind == "star" else is_acyclic_coloring
    for f, at in _hessian_functions():
        (name,) = at
        n = np.size(at[name])
        dense = np.asarray(dk.hessian(f, at)).reshape(n, n)
        hess = SparseHessian(f, order=order, kind=kind)
        got = hess(at)
        assert check(hess.pattern, hess.coloring.colors)
        assert hess.last_cost.passes == hess.coloring.count < n
        np.testing.assert_allclose(got.toarray(), dense, rtol=1e-12, atol=1e-12)
        assert (got != got.T).nnz == 0


def test_arrowhead_hessian_takes_two_colours():
    x = dk.variable("x", (20,))
    f = dk.sum(dk.cos(x) * x[-1]) + dk.sum(x**4)
    hess = SparseHessian(f)
    assert hess.coloring.count == 2
    dense = np.asarray(dk.hessian(f, {"x": np.linspace(-1, 1, 20)}))
    np.testing.assert_allclose(hess({"x": np.linspace(-1, 1, 20)}).toarray(), dense, 1e-12)


def test_float32_in_float32_out():
    x = dk.variable("x", (6,))
    f = dk.sin(x[1:]) * x[:-1]
    at = {"x": np.linspace(0, 1, 6, dtype=np.float32)}
    for method in ("forward", "reverse", "central"):
        J = sparse_jacobian(f, at, method=method)
        assert J.dtype == np.float32
        np.testing.assert_allclose(J.toarray(), _dense_jacobian(f, at, ["x"]), 2e-3, 1e-3)
    H = sparse_hessian(dk.sum(x**3), at)
    assert H.dtype == np.float32


def test_front_doors():
    p = sparsity(lambda v: np.diff(v) ** 2, np.zeros(5))
    assert p.shape == (4, 5) and p.nnz == 8
    h = sparsity(lambda v: np.sum(np.diff(v) ** 2), np.zeros(5), hessian=True)
    assert h.nnz == 13
    x = dk.variable("x", (5,))
    assert sparsity(dk.exp(x)).nnz == 5


def test_sparse_refuses_bad_input():
    x = dk.variable("x", (3,))
    with pytest.raises(ValueError, match="does not evaluate directions"):
        SparseJacobian(x * 2, method="symbolic")
    with pytest.raises(ValueError, match="complex"):
        sparse_jacobian(x * 2, {"x": np.ones(3) + 1j})
    with pytest.raises(ValueError, match="scalar"):
        SparseHessian(x * 2)
    with pytest.raises(ValueError, match="local=True needs"):
        jacobian_sparsity(x, local=True)


def test_public_calls_take_sparse():
    x, y = dk.variable("x", (5,)), dk.variable("y", (2,))
    f = dk.concatenate([dk.sin(x[1:]) * x[:-1], y * x[:2]])
    at = {"x": np.linspace(-1, 1, 5), "y": np.array([0.5, 2.0])}
    dense = dk.jacobian(f, at, method="forward")
    for method in ("forward", "reverse", "central"):
        got = dk.jacobian(f, at, method=method, sparse=True)
        assert set(got) == {"x", "y"}
        for name in got:
            assert sp.issparse(got[name])
            np.testing.assert_allclose(got[name].toarray(), dense[name], rtol=1e-6, atol=1e-8)
    g = dk.sum(dk.cos(x) * x[0]) + dk.sum(y**2 * x[:2])
    H = dk.hessian(g, at, sparse=True)
    np.testing.assert_allclose(H.toarray(), dk.hessian(g, at), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="forward over reverse"):
        dk.hessian(g, at, method="forward", sparse=True)


@pytest.mark.parametrize("sparse", [True, "star", "acyclic"])
def test_hessian_doors_take_the_colouring_kind(sparse):
    """``sparse=`` names the colouring in ``dk.hessian`` on nodes and on functions; the
    Brusselator energy's acyclic colouring needs fewer colours than its star one."""
    bruss, uv = _brusselator(4)
    energy = dk.sum(bruss**2) / 2
    at = {"uv": np.random.default_rng(3).uniform(0.5, 1.5, (2, 4, 4))}
    dense = np.asarray(dk.hessian(energy, at)).reshape(32, 32)
    got = dk.hessian(energy, at, sparse=sparse)
    assert sp.issparse(got)
    np.testing.assert_allclose(got.toarray(), dense, rtol=1e-12, atol=1e-12)
    kind = "star" if sparse is True else sparse
    assert sparse_hessian(energy, at, kind=kind).nnz == got.nnz

    def loss(v):
        return np.sum(np.diff(v) ** 4) + np.sum(np.cos(v) * v[0])

    v = np.linspace(0.1, 1.0, 9)
    H = dk.hessian(loss, sparse=sparse)(v)
    assert sp.issparse(H)
    np.testing.assert_allclose(H.toarray(), dk.hessian(loss)(v), rtol=1e-12, atol=1e-12)


def test_acyclic_takes_fewer_colours_than_star_on_the_brusselator():
    bruss, _ = _brusselator(6)
    energy = dk.sum(bruss**2) / 2
    star, acyclic = SparseHessian(energy), SparseHessian(energy, kind="acyclic")
    assert acyclic.coloring.count < star.coloring.count


@pytest.mark.parametrize("bad", ["dense", "Star", 1, 0.5, ["star"]])
def test_hessian_refuses_an_unknown_colouring(bad):
    x = dk.variable("x", (3,))
    with pytest.raises(ValueError, match="sparse must be True, False, 'star' or 'acyclic'"):
        dk.hessian(dk.sum(x**3), {"x": np.ones(3)}, sparse=bad)
    with pytest.raises(ValueError, match="sparse must be True, False, 'star' or 'acyclic'"):
        dk.hessian(lambda v: np.sum(v**3), sparse=bad)


def test_transforms_take_sparse():
    def f(v):
        return np.sin(v[1:]) * v[:-1] + v[1:] ** 2

    v = np.linspace(0.1, 1.0, 7)
    for transform in (dk.jacfwd, dk.jacrev):
        J = transform(f, sparse=True)(v)
        assert sp.issparse(J)
        np.testing.assert_allclose(J.toarray(), dk.jacfwd(f)(v), rtol=1e-13, atol=1e-15)

    def loss(v):
        return np.sum(np.diff(v) ** 4) + np.sum(np.cos(v))

    H = dk.hessian(loss, sparse=True)(v)
    assert sp.issparse(H) and H.nnz == 7 + 2 * 6
    np.testing.assert_allclose(H.toarray(), dk.hessian(loss)(v), rtol=1e-12, atol=1e-12)


def test_sparse_study(tmp_path):
    from diffkit.demo import load_study

    try:
        study = load_study("sparse")
    except Exception:  # not listed among the studies yet: load the script itself
        import importlib.util
        from pathlib import Path

        path = Path(__file__).resolve().parents[1] / "studies" / "sparse.py"
        spec = importlib.util.spec_from_file_location("study_sparse", path)
        study = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(study)
    r = study.main(tmp_path, quick=True)
    assert (tmp_path / "README.md").read_text().count("|") > 20
    assert not (tmp_path / "sparse.md").exists()
    assert (tmp_path / "sparse_pattern.png").stat().st_size > 0
    assert max(row[6] for row in r["methods"] if "central" not in row[2]) < 1e-12
    assert all(row[4] >= row[5] for row in r["colours"])


@pytest.mark.parametrize("reverse", [False, True])
def test_running_sums_and_products_have_triangular_patterns(reverse):
    """cumsum and cumprod: output i of a line depends on inputs j <= i (j >= i reversed),
    exactly the nonzeros of the dense Jacobian at a point with no zero."""
    from diffkit.ir.op import get_op

    x = dk.variable("x", (3, 5))
    at = {"x": np.random.default_rng(2).uniform(0.5, 1.5, (3, 5))}
    cases = [dk.apply(get_op("cumsum"), x, axis=1, reverse=reverse)]
    if not reverse:
        cases += [dk.cumprod(x, axis=1), dk.cumsum(x, axis=0)]
    for f in cases:
        dense = _dense_jacobian(f, at, ["x"])
        np.testing.assert_array_equal(jacobian_sparsity(f).toarray(), dense != 0)

"""Colourings: the compiled kernels (diffkit/_native_graph.c) give the same colours as the
numpy versions, iterated greedy never needs more colours than greedy, and the lower bounds
hold against the fewest colours found by trying every colouring of small graphs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from diffkit.differentiators import coloring as col
from diffkit.differentiators.coloring import (
    ORDERS,
    coloring,
    forest_bound,
    is_acyclic_coloring,
    is_star_coloring,
)

NATIVE = col._NATIVE is not None


def _random_pattern(seed, m=40, n=30, density=0.08):
    rng = np.random.default_rng(seed)
    return sp.random(m, n, density=density, random_state=rng, format="csr") != 0


def _symmetric(seed, n=30, density=0.08):
    p = _random_pattern(seed, n, n, density)
    return (p + p.T + sp.identity(n, dtype=bool)).tocsr()


@pytest.mark.skipif(not NATIVE, reason="the C colouring kernels are not built")
@pytest.mark.parametrize("order", ORDERS)
def test_native_and_numpy_kernels_agree(order):
    for seed in range(3):
        p, s = _random_pattern(seed), _symmetric(seed + 10)
        for kind, pattern in [("column", p), ("row", p), ("star", s), ("acyclic", s)]:
            for recolor in (0, 6):
                a = coloring(pattern, kind, order, seed=seed, recolor=recolor, native=True)
                b = coloring(pattern, kind, order, seed=seed, recolor=recolor, native=False)
                np.testing.assert_array_equal(a.colors, b.colors, err_msg=f"{kind} {order}")
        for kind in ("column", "row"):  # tabu search, step for step
            a = coloring(p, kind, order, seed=seed, search=300, native=True)
            b = coloring(p, kind, order, seed=seed, search=300, native=False)
            np.testing.assert_array_equal(a.colors, b.colors, err_msg=f"tabu {kind} {order}")


@pytest.mark.parametrize("order", ORDERS)
def test_colourings_are_valid_and_iterated_greedy_never_adds_colours(order):
    for seed in range(3):
        p, s = _random_pattern(seed, 60, 50, 0.06), _symmetric(seed + 20, 50, 0.05)
        for kind in ("column", "row"):
            c = coloring(p, kind, order, seed=seed)
            q = p if kind == "column" else p.T.tocsr()
            for line in q.tolil().rows:  # the entries of a row (column) all differ
                assert len(set(c.colors[line])) == len(line)
            assert c.lower_bound <= c.count <= c.greedy_count
        star = coloring(s, "star", order, seed=seed)
        acyclic = coloring(s, "acyclic", order, seed=seed)
        assert is_star_coloring(s, star.colors) and is_acyclic_coloring(s, acyclic.colors)
        assert star.count >= star.lower_bound and acyclic.count >= acyclic.lower_bound


def _edges(graph):
    return [(i, j) for i, j in zip(*sp.triu(graph, 1).nonzero())]


def _fewest(n, valid):
    """The fewest colours of any colouring of n vertices that ``valid`` accepts."""
    for k in range(1, n + 1):
        for colors in itertools.product(range(k), repeat=n):
            if colors[0] == 0 and valid(np.array(colors)):  # colour 0 first: no relabelling
                return k
    return n


@pytest.mark.parametrize("seed", range(4))
def test_lower_bounds_hold_against_every_colouring(seed):
    """On graphs of 6 vertices, every colouring is tried: the bound never exceeds the
    fewest colours, and greedy never goes below them."""
    rng = np.random.default_rng(seed)
    a = np.triu(rng.random((6, 6)) < 0.55, 1)
    adj = sp.csr_matrix(a | a.T | np.eye(6, dtype=bool))
    edges = _edges(adj)

    def distance1(c):
        return all(c[i] != c[j] for i, j in edges)

    star = _fewest(6, lambda c: distance1(c) and is_star_coloring(adj, c))
    acyclic = _fewest(6, lambda c: distance1(c) and is_acyclic_coloring(adj, c))
    for order in ORDERS:
        s = coloring(adj, "star", order)
        y = coloring(adj, "acyclic", order)
        assert s.lower_bound <= star <= s.count
        assert y.lower_bound <= acyclic <= y.count
    # columns of a pattern: columns sharing a row differ
    pattern = sp.csr_matrix(rng.random((5, 6)) < 0.35)
    groups = [np.flatnonzero(r) for r in pattern.toarray()]
    fewest = _fewest(6, lambda c: all(len(set(c[g])) == g.size for g in groups))
    c = coloring(pattern, "column")
    assert c.lower_bound <= fewest <= c.count


def test_tabu_search_reaches_the_lattice_colouring_of_the_brusselator():
    """The Brusselator's columns (u and v on a periodic 8 x 8 grid) take 8 colours, as the
    lattice colouring (x + 3 y + 4 [v]) mod 8 shows; greedy orders stop at 10 or more,
    tabu search finds 8 and the colouring is valid."""
    n = 8
    cell = np.arange(n * n).reshape(n, n)
    rows, cols = [], []
    for t in range(2):  # row (t, i, j): its own cell in u and v, the stencil in its field
        for i in range(n):
            for j in range(n):
                r = t * n * n + cell[i, j]
                for di, dj in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
                    rows.append(r)
                    cols.append(t * n * n + cell[(i + di) % n, (j + dj) % n])
                rows.append(r)
                cols.append((1 - t) * n * n + cell[i, j])
    p = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(2 * n * n,) * 2)
    x, y = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    lattice = np.concatenate([(x + 3 * y).ravel() % 8, (x + 3 * y + 4).ravel() % 8])
    for line in p.tolil().rows:
        assert len(set(lattice[line])) == len(line)  # the lattice colouring is valid
    greedy = coloring(p, "column")
    found = coloring(p, "column", search=20_000)
    assert greedy.count >= 9 and found.count == 8 and found.lower_bound == 6
    for line in p.tolil().rows:
        assert len(set(found.colors[line])) == len(line)


def test_forest_bound():
    """A tree takes 2 colours; a clique on k vertices k; a 4-cycle 3 (acyclic)."""
    assert forest_bound(10, 9) == 2
    assert forest_bound(5, 10) == 5
    assert forest_bound(4, 4) == 3
    assert forest_bound(3, 0) == 1


def test_banded_and_arrowhead_patterns_take_the_lower_bound():
    for half in (1, 2, 4):
        band = sp.diags([1] * (2 * half + 1), range(-half, half + 1), shape=(200, 200), dtype=bool)
        for order in ORDERS[:4]:
            for kind in ("column", "row"):
                c = coloring(band != 0, kind, order)
                assert c.count == c.lower_bound == 2 * half + 1
    arrow = sp.lil_matrix((40, 40), dtype=bool)
    arrow.setdiag(True)
    arrow[0, :] = True
    arrow[:, 0] = True
    for order in ORDERS:
        for kind in ("star", "acyclic"):
            c = coloring(arrow, kind, order)
            assert c.count == c.lower_bound == 2


@pytest.mark.skipif(not NATIVE, reason="the C colouring kernels are not built")
def test_kernels_refuse_malformed_arrays():
    ptr = np.array([0, 1, 2], np.int64)
    with pytest.raises(ValueError, match="out of range"):
        col._NATIVE.greedy_columns(
            ptr,
            np.array([1, 5], np.int64),
            ptr,
            np.array([1, 0]),
            np.arange(2),
            np.empty(2, np.int64),
        )
    with pytest.raises(ValueError, match="malformed"):
        col._NATIVE.star(
            np.array([0, 3, 2], np.int64),
            np.array([1, 0], np.int64),
            np.arange(2),
            np.empty(2, np.int64),
        )
    with pytest.raises(TypeError, match="int64"):
        col._NATIVE.acyclic(
            ptr.astype(np.int32), np.array([1, 0], np.int64), np.arange(2), np.empty(2, np.int64)
        )


def test_coloring_refuses_a_bad_recolor():
    with pytest.raises(ValueError, match="recolor"):
        coloring(sp.identity(3), recolor=-1)
    with pytest.raises(ValueError, match="square"):
        coloring(sp.csr_matrix((2, 3)), "acyclic")

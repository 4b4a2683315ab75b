"""What colouring buys: Jacobians and Hessians with one directional derivative per colour
instead of one per input, on a banded function, the 2-D Brusselator right-hand side, an
arrowhead Hessian and a separable loss; by forward and reverse mode, central differences
and forward over reverse (star and acyclic colourings), against the dense answers; the
colours of every vertex order against a lower bound; the time against n.

Run: diffkit study sparse   (or python studies/sparse.py)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit.differentiators.coloring import ORDERS, coloring
from diffkit.differentiators.sparse import (
    SparseHessian,
    SparseJacobian,
    hessian_sparsity,
    jacobian_sparsity,
)
from diffkit.viz.plotting import markdown_table, new_figure, save_figure, write_text


def brusselator(n: int):
    """The 2-D Brusselator right-hand side on a periodic n x n grid, (u, v) stacked."""
    uv = dk.variable("uv", (2, n, n))
    u, v = uv[0], uv[1]

    def lap(w):
        return np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) - 4 * w

    du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
    dv = 3.4 * u - u * u * v + 10.0 * lap(v)
    at = {"uv": np.random.default_rng(n).uniform(0.5, 1.5, (2, n, n))}
    return dk.stack([du, dv]).ravel(), at


def banded(n: int):
    """A tridiagonal map: f_i = exp(x_i) + sin(x_{i+1}) x_{i-1} (zero outside)."""
    x = dk.variable("x", (n,))
    f = dk.exp(x) + dk.sin(dk.pad(x[1:], (0, 1))) * dk.pad(x[:-1], (1, 0))
    return f, {"x": np.linspace(-1, 1, n)}


def arrowhead(n: int):
    """sum(cos(x_i) x_n) + sum(x^4): every variable interacts with the last one."""
    x = dk.variable("x", (n,))
    return dk.sum(dk.cos(x) * x[-1]) + dk.sum(x**4), {"x": np.linspace(-1, 1, n)}


def separable(n: int):
    """A separable loss: the sum of a loss of each pair (x_2k, x_2k+1)."""
    x = dk.variable("x", (n,))
    a, b = x[0::2], x[1::2]
    return dk.sum(dk.log1p((a * b - 1) ** 2) + a**2), {"x": np.linspace(-1, 1, n)}


def energy(n: int):
    """Half the squared norm of the Brusselator right-hand side: a Hessian with the
    column-intersection pattern of its Jacobian."""
    f, at = brusselator(n)
    return dk.sum(f**2) / 2, at


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _relative(got, dense) -> float:
    return float(np.max(np.abs(got.toarray() - dense)) / max(1.0, np.max(np.abs(dense))))


def _jacobian_rows(name, f, at, repeats):
    (var,) = at
    dense = np.reshape(dk.jacobian(f, at, method="forward", wrt=var), (f.size, -1))
    rows = []
    for method in ("forward", "reverse"):
        t = _median(lambda: dk.jacobian(f, at, method=method, wrt=var), repeats)
        passes = dense.shape[1 if method == "forward" else 0]
        rows.append([name, f.size, f"dense {method}", passes, t * 1e3, t * 1e3, 0.0])
    for method in ("forward", "reverse", "central"):
        jac = SparseJacobian(f, method=method)
        prepare = _median(lambda: SparseJacobian(f, method=method), repeats)
        got = jac(at)
        t = _median(lambda: jac(at), repeats)
        count = jac.coloring.count
        rows.append(
            [name, f.size, f"coloured {method}", count, t * 1e3, (t + prepare) * 1e3,
             _relative(got, dense)]
        )  # fmt: skip
    return rows


def _hessian_rows(name, f, at, repeats):
    (var,) = at
    n = np.size(at[var])
    dense = np.reshape(dk.hessian(f, at), (n, n))
    t = _median(lambda: dk.hessian(f, at), repeats)
    rows = [[name, n, "dense forward over reverse", n, t * 1e3, t * 1e3, 0.0]]
    for kind in ("star", "acyclic"):
        hess = SparseHessian(f, kind=kind)
        prepare = _median(lambda: SparseHessian(f, kind=kind), repeats)
        got = hess(at)
        t = _median(lambda: hess(at), repeats)
        rows.append(
            [name, n, f"coloured ({kind})", hess.coloring.count, t * 1e3, (t + prepare) * 1e3,
             _relative(got, dense)]
        )  # fmt: skip
    return rows


def _colour_rows(cases):
    """Per problem and kind: greedy -> iterated colours of each order, tabu search (column
    and row colourings, 8 steps per vertex), the fewest and the bound."""
    rows = []
    for name, pattern, kind in cases:
        cells, best = [], None
        for order in ORDERS:
            c = coloring(pattern, kind, order)
            cells.append(f"{c.greedy_count} → {c.count}")
            best = c.count if best is None else min(best, c.count)
            bound = c.lower_bound
        tabu = "—"
        if kind in ("column", "row"):
            vertices = pattern.shape[1] if kind == "column" else pattern.shape[0]
            tabu = coloring(pattern, kind, search=8 * vertices).count
            best = min(best, tabu)
        rows.append([name, kind, pattern.shape[1], pattern.nnz, *cells, tabu, best, bound])
    return rows


BOUNDS = {
    "column": "the most nonzeros in a row",
    "row": "the most nonzeros in a column",
    "star": "the larger of a clique and the forest bound",
    "acyclic": "the larger of a clique and the forest bound",
}


def _figures(out: Path, scale_rows):
    f, _ = brusselator(4)
    jac = SparseJacobian(f, method="forward")
    e, _ = energy(4)
    hess = SparseHessian(e, kind="acyclic")
    fig, axes = new_figure(1, 2, figsize=(11, 5.4))
    for ax, pattern, colors, title in [
        (axes[0], jac.pattern, jac.coloring.colors,
         f"Brusselator 4×4 Jacobian: {jac.coloring.count} column colours"),
        (axes[1], hess.pattern, hess.coloring.colors,
         f"its energy Hessian: {hess.coloring.count} acyclic colours"),
    ]:  # fmt: skip
        r, c = pattern.nonzero()
        ax.scatter(c, r, c=colors[c], cmap="tab20", vmin=0, vmax=19, s=9, marker="s")
        ax.set_xlim(-1, pattern.shape[1])
        ax.set_ylim(pattern.shape[0], -1)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("column (input), coloured by its colour")
        ax.set_ylabel("row")
    save_figure(fig, out / "sparse_pattern.png")

    fig, ax = new_figure()
    unknowns = [r[1] for r in scale_rows]
    timed = [r for r in scale_rows if np.isfinite(r[3])]
    ax.loglog([r[1] for r in timed], [r[3] for r in timed], "o-", label="dense forward")
    ax.loglog(unknowns, [r[5] for r in scale_rows], "s-", label="coloured forward (prepared)")
    ax.loglog(
        unknowns,
        [r[4] + r[5] for r in scale_rows],
        "^--",
        label="coloured forward, detection and colouring included",
    )
    ax.set_xlabel("unknowns (2 n²)")
    ax.set_ylabel("ms per Jacobian (median)")
    ax.set_title("Brusselator Jacobian: time against the number of unknowns")
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, out / "sparse_time.png")


def main(out: str | Path = "reports/sparse", quick: bool = False, executor=None) -> dict:
    """Run the study and write README.md and its figures into ``out``; ``executor`` is
    accepted for the common interface (the timings run serially)."""
    out = Path(out)
    repeats = 2 if quick else 5
    grids = [4, 8, 16] if quick else [8, 16, 32, 64]
    n_small = 64 if quick else 1024
    g_hess = 4 if quick else 8

    # 1. every method against the dense answer
    method_rows = []
    for name, (f, at) in [("banded", banded(n_small)),
                          (f"Brusselator {grids[-1]}²", brusselator(grids[-1]))]:  # fmt: skip
        method_rows += _jacobian_rows(name, f, at, repeats)
    for name, (f, at) in [("arrowhead", arrowhead(n_small)), ("separable", separable(n_small)),
                          (f"Brusselator {g_hess}² energy", energy(g_hess))]:  # fmt: skip
        method_rows += _hessian_rows(name, f, at, repeats)

    # 2. colours of every order against the lower bound
    jb = jacobian_sparsity(brusselator(grids[-1])[0])
    jg = jacobian_sparsity(banded(n_small)[0])
    ha = hessian_sparsity(arrowhead(n_small)[0])
    hs = hessian_sparsity(separable(n_small)[0])
    he = hessian_sparsity(energy(grids[-2])[0])
    cases = [("banded", jg, "column"), ("banded", jg, "row"),
             (f"Brusselator {grids[-1]}²", jb, "column"), (f"Brusselator {grids[-1]}²", jb, "row"),
             ("arrowhead", ha, "star"), ("arrowhead", ha, "acyclic"),
             ("separable", hs, "star"), ("separable", hs, "acyclic"),
             (f"Brusselator {grids[-2]}² energy", he, "star"),
             (f"Brusselator {grids[-2]}² energy", he, "acyclic")]  # fmt: skip
    colour_rows = _colour_rows(cases)

    # 3. time against n on the Brusselator: dense and coloured forward mode (dense only up
    # to the grids above, the coloured one further to show its growth)
    scale_rows = []
    for n in grids + ([] if quick else [128, 256]):
        f, at = brusselator(n)
        dense = float("nan")
        if n in grids:
            dk.jacobian(f, at, method="forward", wrt="uv")  # graphs built once, as below
            dense = _median(lambda: dk.jacobian(f, at, method="forward", wrt="uv"), repeats)
        jac = SparseJacobian(f, method="forward")
        prepare = _median(lambda: SparseJacobian(f, method="forward"), repeats)
        jac(at)
        coloured = _median(lambda: jac(at), repeats)
        scale_rows.append(
            [n, 2 * n * n, jac.coloring.count, dense * 1e3, prepare * 1e3, coloured * 1e3,
             dense / (coloured + prepare), dense / coloured]
        )  # fmt: skip

    _figures(out, scale_rows)
    text = _report(colour_rows, method_rows, scale_rows)
    write_text(out / "README.md", text)
    return {"colours": colour_rows, "methods": method_rows, "scale": scale_rows}


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}" if ratio >= 100 else f"{ratio:.3g}"


def _report(colour_rows, method_rows, scale_rows) -> str:
    """The README: every sentence computed from the three tables."""
    k = len(ORDERS)
    best, bound = (lambda r: r[5 + k]), (lambda r: r[6 + k])
    exact = [r for r in colour_rows if best(r) == bound(r)]
    near = [r for r in colour_rows if bound(r) < best(r) <= bound(r) + 2]
    far = [r for r in colour_rows if best(r) > bound(r) + 2]

    def iterated(cell):
        return int(cell.split("→")[1])

    wins = {
        o: sum(iterated(r[4 + i]) == best(r) for r in colour_rows) for i, o in enumerate(ORDERS)
    }
    top = max(wins.values())
    saved = sum(int(c.split("→")[0]) - iterated(c) for r in colour_rows for c in r[4 : 4 + k])
    timed = [r for r in scale_rows if np.isfinite(r[3])]
    last = timed[-1]
    big = scale_rows[-3:]  # the largest grids, where the fixed costs no longer dominate
    unknowns = [r[1] for r in big]
    slope = np.polyfit(np.log(unknowns), np.log([r[5] for r in big]), 1)[0]
    slope_all = np.polyfit(np.log(unknowns), np.log([r[4] + r[5] for r in big]), 1)[0]
    slope_dense = np.polyfit(
        np.log([r[1] for r in timed[-3:]]), np.log([r[3] for r in timed[-3:]]), 1
    )[0]
    wins_all_in = [r[0] for r in timed if r[6] > 1]
    wins_prepared = [r[0] for r in timed if r[7] > 1]
    exact_ad = max(r[6] for r in method_rows if "central" not in r[2])
    central = max(r[6] for r in method_rows if "central" in r[2])
    worst = max((r for r in method_rows if "central" not in r[2]), key=lambda r: r[6])
    hess = {}
    for r in method_rows:
        if r[2].startswith("coloured ("):
            hess.setdefault(r[0], {})[r[2][10:-1]] = r
    fewer = [name for name, h in hess.items() if h["acyclic"][3] < h["star"][3]]

    def listing(rows):
        return "; ".join(f"{r[0]} {r[1]}: {best(r)} against {bound(r)}" for r in rows)

    lines = [
        "# Sparse derivatives: what colouring buys\n",
        "The pattern of each Jacobian or Hessian is read from the graph, its columns, rows or "
        "variables coloured greedily in a vertex order and improved by iterated greedy "
        "(the vertices recoloured class by class), and the derivative evaluated with one "
        "direction per colour through one batched evaluation, then recovered into a "
        "scipy.sparse matrix: directly for column, row and star colourings, by substitution "
        "for acyclic ones. Times are medians on this machine.\n",
        "## Findings\n",
        f"- With the best vertex order, {len(exact)} of {len(colour_rows)} colourings reach "
        f"their lower bound ({listing(exact) or 'none'}), {len(near)} are within 2 colours "
        f"of it ({listing(near) or 'none'}) and {len(far)} are further "
        f"({listing(far) or 'none'}).",
        f"- The order giving the fewest colours most often is "
        f"{', '.join(o for o, w in wins.items() if w == top)} ({top} of {len(colour_rows)} "
        f"colourings); iterated greedy saved {saved} colours over the first greedy passes "
        f"of all orders together, and tabu search reached "
        + "; ".join(
            f"{r[0]} {r[1]}: {r[4 + k]} (iterated greedy: {min(iterated(c) for c in r[4 : 4 + k])})"
            for r in colour_rows
            if r[4 + k] != "—"
        )
        + ".",
        f"- On the Brusselator with {last[1]} unknowns, the coloured forward Jacobian takes "
        f"{last[5]:.3g} ms against {last[3]:.4g} ms dense, a speed-up of {_times(last[7])}; "
        f"with detection and colouring ({last[4]:.3g} ms) included, a speed-up of "
        f"{_times(last[6])}.",
        "- Coloured forward mode beats dense forward mode "
        + (f"at grid n = {', '.join(map(str, wins_prepared))}" if wins_prepared else "nowhere")
        + " once prepared, and "
        + (f"at n = {', '.join(map(str, wins_all_in))}" if wins_all_in else "at no grid size")
        + f" with detection and colouring included. Over the {len(big)} largest grids "
        f"({big[0][1]} to {big[-1][1]} unknowns) the prepared time grows as "
        f"unknowns^{slope:.2f} and the time with detection and colouring as "
        f"unknowns^{slope_all:.2f}; the dense one over its {len(timed[-3:])} largest grids "
        f"as unknowns^{slope_dense:.2f}.",
        f"- Recovered matrices match the dense ones to a relative {exact_ad:.1e} for the "
        f"automatic methods (largest: {worst[0]}, {worst[2]}) and {central:.1e} for central "
        "differences.",
        "- Acyclic colourings need fewer Hessian-vector products than star colourings on "
        + (", ".join(fewer) if fewer else "none of the Hessians")
        + " ("
        + "; ".join(f"{n}: {h['acyclic'][3]} against {h['star'][3]}" for n, h in hess.items())
        + ").",
        "\n![pattern](sparse_pattern.png)\n\n![time](sparse_time.png)\n",
        "## Colours against the lower bound\n",
        "Each order's cell: the colours of the greedy pass → after iterated greedy; tabu "
        "search starts from the natural order's and removes colours one at a time (8 steps "
        "per vertex for each). Lower bounds: "
        + "; ".join(f"{kind}, {why}" for kind, why in BOUNDS.items())
        + " (any two classes of a star or acyclic colouring induce a forest, so k colours "
        "hold at most (k − 1) n − k (k − 1) / 2 edges).\n",
        markdown_table(
            [
                "problem",
                "colouring",
                "n",
                "nonzeros",
                *ORDERS,
                "tabu search",
                "fewest",
                "lower bound",
            ],
            colour_rows,
        ),
        "\n## Methods against the dense answer\n",
        markdown_table(
            [
                "problem",
                "size",
                "method",
                "passes",
                "ms (prepared)",
                "ms (all included)",
                "relative error",
            ],
            method_rows,
        ),  # fmt: skip
        "\n## Brusselator: time against n (forward mode)\n",
        markdown_table(
            [
                "grid n",
                "unknowns",
                "colours",
                "dense ms",
                "detect + colour ms",
                "coloured ms",
                "speed-up (all in)",
                "speed-up (prepared)",
            ],
            scale_rows,
        ),  # fmt: skip
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

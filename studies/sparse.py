"""What colouring buys: Jacobians and Hessians with one directional derivative per colour
instead of one per input, on a banded function, the 2-D Brusselator right-hand side, an
arrowhead Hessian and a separable loss; by forward and reverse mode, central differences
and forward over reverse, against the dense answers.

Run: diffkit study sparse   (or python studies/sparse.py)
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit.differentiators.sparse import SparseHessian, SparseJacobian
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


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _jacobian_rows(name, f, at, repeats):
    (var,) = at
    dense = np.reshape(dk.jacobian(f, at, method="forward", wrt=var), (f.size, -1))
    rows = []
    for method in ("forward", "reverse"):
        t = _median(lambda: dk.jacobian(f, at, method=method, wrt=var), repeats)
        rows.append(
            [
                name,
                f.size,
                f"dense {method}",
                dense.shape[1 if method == "forward" else 0],
                t * 1e3,
                t * 1e3,
                0.0,
            ]
        )
    for method in ("forward", "reverse", "central"):
        start = time.perf_counter()
        jac = SparseJacobian(f, method=method)
        prepare = time.perf_counter() - start
        got = jac(at)
        t = _median(lambda: jac(at), repeats)
        err = float(np.max(np.abs(got.toarray() - dense)) / max(1.0, np.max(np.abs(dense))))
        rows.append(
            [
                name,
                f.size,
                f"coloured {method}",
                jac.coloring.count,
                t * 1e3,
                (t + prepare) * 1e3,
                err,
            ]
        )
    return rows, jac


def _hessian_rows(name, f, at, repeats):
    (var,) = at
    n = np.size(at[var])
    dense = np.reshape(dk.hessian(f, at), (n, n))
    t = _median(lambda: dk.hessian(f, at), repeats)
    rows = [[name, n, "dense forward over reverse", n, t * 1e3, t * 1e3, 0.0]]
    start = time.perf_counter()
    hess = SparseHessian(f)
    prepare = time.perf_counter() - start
    got = hess(at)
    t = _median(lambda: hess(at), repeats)
    err = float(np.max(np.abs(got.toarray() - dense)) / max(1.0, np.max(np.abs(dense))))
    rows.append(
        [name, n, "coloured (star)", hess.coloring.count, t * 1e3, (t + prepare) * 1e3, err]
    )
    return rows, hess


def main(out: str | Path = "reports/sparse", quick: bool = False) -> dict:
    out = Path(out)
    repeats = 2 if quick else 5
    grids = [4, 8, 16] if quick else [8, 16, 32, 64]
    n_small = 64 if quick else 1024

    # 1. colours against the lower bound, and every method against the dense answer
    colour_rows, method_rows = [], []
    cases = [("banded", *banded(n_small)), (f"Brusselator {grids[-1]}²", *brusselator(grids[-1]))]
    for name, f, at in cases:
        rows, jac = _jacobian_rows(name, f, at, repeats)
        method_rows += rows
        colour_rows.append(
            [
                name,
                "columns",
                jac.pattern.shape[1],
                jac.pattern.nnz,
                SparseJacobian(f, pattern=jac.pattern).coloring.count,
                jac.coloring.lower_bound,
            ]
        )
    for name, f, at in [("arrowhead", *arrowhead(n_small)), ("separable", *separable(n_small))]:
        rows, hess = _hessian_rows(name, f, at, repeats)
        method_rows += rows
        colour_rows.append(
            [
                name,
                "star",
                hess.pattern.shape[1],
                hess.pattern.nnz,
                hess.coloring.count,
                hess.coloring.lower_bound,
            ]
        )

    # 2. time against n on the Brusselator: dense and coloured forward mode
    scale_rows = []
    for n in grids:
        f, at = brusselator(n)
        dense = _median(lambda: dk.jacobian(f, at, method="forward", wrt="uv"), repeats)
        start = time.perf_counter()
        jac = SparseJacobian(f, method="forward")
        prepare = time.perf_counter() - start
        jac(at)
        coloured = _median(lambda: jac(at), repeats)
        scale_rows.append(
            [
                n,
                2 * n * n,
                jac.coloring.count,
                dense * 1e3,
                prepare * 1e3,
                coloured * 1e3,
                dense / (coloured + prepare),
                dense / coloured,
            ]
        )

    # figures: the pattern of a small Brusselator with its colours; time against n
    f, _ = brusselator(4)
    jac = SparseJacobian(f, method="forward")
    rows_, cols_ = jac.pattern.nonzero()
    fig, ax = new_figure(figsize=(6, 6))
    ax.scatter(cols_, rows_, c=jac.coloring.colors[cols_], cmap="tab20", s=14, marker="s")
    ax.invert_yaxis()
    ax.set_title(f"Brusselator 4x4 Jacobian: {jac.coloring.count} column colours")
    ax.set_xlabel("column (input)")
    ax.set_ylabel("row (output)")
    save_figure(fig, out / "sparse_pattern.png")
    fig, ax = new_figure()
    unknowns = [r[1] for r in scale_rows]
    ax.loglog(unknowns, [r[3] for r in scale_rows], "o-", label="dense forward")
    ax.loglog(unknowns, [r[5] for r in scale_rows], "s-", label="coloured forward (prepared)")
    ax.loglog(
        unknowns,
        [r[4] + r[5] for r in scale_rows],
        "^--",
        label="coloured forward, detection and colouring included",
    )
    ax.set_xlabel("unknowns (2 n²)")
    ax.set_ylabel("ms per Jacobian (median)")
    ax.legend()
    save_figure(fig, out / "sparse_time.png")

    # the report: every sentence computed from the tables
    last = scale_rows[-1]
    worst = max(method_rows, key=lambda r: r[6])
    exact_ad = max(r[6] for r in method_rows if "central" not in r[2])
    central = max(r[6] for r in method_rows if "central" in r[2])
    within = [r for r in colour_rows if r[4] <= r[5] + 2]
    slope = np.polyfit(np.log(unknowns), np.log([r[5] for r in scale_rows]), 1)[0]
    wins_all_in = [r[0] for r in scale_rows if r[6] > 1]
    text = [
        "# Sparse derivatives: what colouring buys\n",
        "The pattern of each Jacobian or Hessian is read from the graph, its columns, rows or "
        "variables coloured greedily (natural order), and the derivative evaluated with one "
        "direction per colour through one batched evaluation, then recovered into a "
        "scipy.sparse matrix. Times are medians on this machine.\n",
        "## Findings\n",
        f"- {len(within)} of {len(colour_rows)} patterns take at most 2 colours more than the "
        "lower bound: " + ", ".join(f"{r[0]} {r[4]} against {r[5]}" for r in colour_rows) + ".",
        f"- On the Brusselator with {last[1]} unknowns, the coloured forward Jacobian takes "
        f"{last[5]:.3g} ms against {last[3]:.3g} ms dense (a speed-up of {last[7]:.1f}); with "
        f"detection and colouring ({last[4]:.3g} ms) included, the speed-up is {last[6]:.2g}.",
        (
            "- With detection and colouring included, coloured beats dense at grid n = "
            + ", ".join(str(n) for n in wins_all_in)
            if wins_all_in
            else "- With detection and colouring included, coloured beats dense at no grid size"
        )
        + f"; the prepared coloured time grows as unknowns^{slope:.2f} over the grids.",
        f"- Recovered matrices match the dense ones to a relative {exact_ad:.1e} for the "
        f"automatic methods and {central:.1e} for central differences (largest: "
        f"{worst[0]}, {worst[2]}).",
        "\n![pattern](sparse_pattern.png)\n\n![time](sparse_time.png)\n",
        "## Colours against the lower bound\n",
        markdown_table(
            ["problem", "colouring", "n", "nonzeros", "colours", "lower bound"], colour_rows
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
        ),
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
        ),
    ]
    write_text(out / "sparse.md", "\n".join(text) + "\n")
    return {"colours": colour_rows, "methods": method_rows, "scale": scale_rows}


if __name__ == "__main__":
    main()

"""Coloured against dense Jacobians of the 2-D Brusselator right-hand side (2 n^2 unknowns,
periodic n x n grid): forward mode with one pass per column colour (pattern detection and
colouring included, and excluded) against dense forward mode (one pass per unknown, all
pushed through the batched evaluation), alternating rounds so that both see the same state
of the machine; medians with their spread [min, max] and the ratio. The time of the
coloured Jacobian against n (a fixed band: 6 nonzeros per row) with its log-log slope.

Then the colour counts of every vertex order, greedy and after iterated greedy, against a
lower bound valid for the kind of colouring, for the columns and rows of banded and
Brusselator Jacobians and the star and acyclic colourings of the arrowhead and Brusselator
Hessians. Finally the same functions through ``asdex`` (JAX) in another interpreter, where
one with asdex exists (``--asdex-python PATH`` or the ``ASDEX_PYTHON`` variable; else this
one if it imports asdex): both sides' colour counts and times, measured in this run.

Targets: coloured forward at least 100x faster than dense at n = 64 (8,192 unknowns),
detection and colouring included; time linear in the unknowns at a fixed band; colours
equal to the lower bound on banded patterns and within it + 2 on the Brusselator.

Run: python benchmarks/sparse_jacobians.py [--quick] [--asdex-python PATH]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

BRUSS_A, BRUSS_B, BRUSS_ALPHA = 1.0, 3.4, 10.0


def brusselator(n: int):
    """du = 1 + u^2 v - 4.4 u + 10 lap(u), dv = 3.4 u - u^2 v + 10 lap(v), periodic."""
    import diffkit as dk

    uv = dk.variable("uv", (2, n, n))
    u, v = uv[0], uv[1]

    def lap(w):
        return np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) - 4 * w

    du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
    dv = 3.4 * u - u * u * v + 10.0 * lap(v)
    at = {"uv": np.random.default_rng(0).uniform(0.5, 1.5, (2, n, n))}
    return dk.stack([du, dv]).ravel(), at


def banded(n: int, half: int = 2):
    """f_i = exp(x_i) + sum_k sin(x_{i+k}) x_{i-k}, k = 1..half (zero outside)."""
    import diffkit as dk

    x = dk.variable("x", (n,))
    out = dk.exp(x)
    for k in range(1, half + 1):
        out = out + dk.sin(dk.pad(x[k:], (0, k))) * dk.pad(x[:-k], (k, 0))
    return out, {"x": np.linspace(-1, 1, n)}


def arrowhead(n: int):
    """sum(cos(x_i) x_n) + sum(x^4): every variable meets the last one."""
    import diffkit as dk

    x = dk.variable("x", (n,))
    return dk.sum(dk.cos(x) * x[-1]) + dk.sum(x**4)


def _times(fn, rounds):
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def _spread(ts) -> str:
    return f"{statistics.median(ts) * 1e3:9.2f} ms [{min(ts) * 1e3:.2f}, {max(ts) * 1e3:.2f}]"


def speed(sizes, rounds, dense_up_to):
    import diffkit as dk
    from diffkit.differentiators.sparse import SparseJacobian

    print("Brusselator Jacobian, forward mode: dense vs coloured (ms, median [min, max])")
    print(
        f"{'n':>4} {'unknowns':>8} {'colours':>7}  {'dense':>30}  {'coloured, all in':>30}  "
        f"{'coloured, prepared':>30}  ratio (all in, prepared)"
    )
    unknowns, all_in_t, prepared_t = [], [], []
    for n in sizes:
        f, at = brusselator(n)
        dense_t, full_t, prep_t = [], [], []
        prepared = SparseJacobian(f, method="forward")
        prepared(at)
        dense = n <= dense_up_to
        if dense:
            dk.jacobian(f, at, method="forward", wrt="uv")  # builds and caches the graphs
        for _ in range(rounds):  # alternating rounds
            if dense:
                dense_t += _times(lambda: dk.jacobian(f, at, method="forward", wrt="uv"), 1)

            def all_in():  # detection, colouring, evaluation (graphs cached on both sides)
                SparseJacobian(f, method="forward")(at)

            full_t += _times(all_in, 1)
            prep_t += _times(lambda: prepared(at), 3)
        unknowns.append(2 * n * n)
        all_in_t.append(statistics.median(full_t))
        prepared_t.append(statistics.median(prep_t))
        if dense:
            ratio = statistics.median(dense_t) / statistics.median(full_t)
            ratio2 = statistics.median(dense_t) / statistics.median(prep_t)
            cells = f"{_spread(dense_t)}", f"{ratio:8.1f}x {ratio2:8.1f}x"
        else:
            cells = f"{'(not run)':>30}", ""
        print(
            f"{n:>4} {2 * n * n:>8} {prepared.coloring.count:>7}  {cells[0]}  "
            f"{_spread(full_t)}  {_spread(prep_t)}  {cells[1]}"
        )
    if len(sizes) > 1:
        logs = np.log(unknowns)
        s_all = np.polyfit(logs, np.log(all_in_t), 1)[0]
        s_prep = np.polyfit(logs, np.log(prepared_t), 1)[0]
        print(
            f"time ~ unknowns^p at a fixed band: p = {s_all:.2f} (all in), {s_prep:.2f} "
            f"(prepared), over {unknowns[0]}..{unknowns[-1]} unknowns"
        )


def colour_cases(n_bruss, n_band):
    import diffkit as dk
    from diffkit.differentiators.sparse import hessian_sparsity, jacobian_sparsity

    f, _ = brusselator(n_bruss)
    g, _ = banded(n_band)
    jb, jg = jacobian_sparsity(f), jacobian_sparsity(g)
    arrow = hessian_sparsity(arrowhead(n_band))
    energy = hessian_sparsity(dk.sum(f**2) / 2)
    return [
        ("banded columns", jg, "column"),
        ("banded rows", jg, "row"),
        ("Brusselator columns", jb, "column"),
        ("Brusselator rows", jb, "row"),
        ("arrowhead Hessian (star)", arrow, "star"),
        ("arrowhead Hessian (acyclic)", arrow, "acyclic"),
        ("Brusselator energy Hessian (star)", energy, "star"),
        ("Brusselator energy Hessian (acyclic)", energy, "acyclic"),
    ]


def colours(n_bruss, n_band):
    from diffkit.differentiators.coloring import ORDERS, coloring

    print(
        f"\ncolours by vertex order: greedy -> iterated greedy [lower bound] "
        f"(Brusselator {n_bruss}x{n_bruss}, banded and arrowhead n = {n_band})"
    )
    print(
        "lower bounds: columns, the most nonzeros in a row; rows, in a column; star and "
        "acyclic, max(greedy clique, forest bound: two classes induce a forest)"
    )
    print(f"{'pattern':<38}" + "".join(f"{o:>18}" for o in ORDERS) + f"{'tabu search':>18}")
    best = {}
    for label, pattern, kind in colour_cases(n_bruss, n_band):
        cells = []
        for order in ORDERS:
            c = coloring(pattern, kind, order)
            cells.append(f"{c.greedy_count} -> {c.count} [{c.lower_bound}]")
            best[label] = min(best.get(label, c.count), c.count)
        if kind in ("column", "row"):  # from the natural order, 8 steps per vertex
            start = time.perf_counter()
            vertices = pattern.shape[1] if kind == "column" else pattern.shape[0]
            c = coloring(pattern, kind, search=8 * vertices)
            took = time.perf_counter() - start
            cells.append(f"{c.count} [{c.lower_bound}] {took:.2g} s")
            best[label] = min(best[label], c.count)
        print(f"{label:<38}" + "".join(f"{c:>18}" for c in cells))
    return best


# ---- asdex (JAX), run in the interpreter that has it ------------------------------------------


def _asdex_side(n_bruss: int, n_band: int, rounds: int) -> dict:
    """The same functions in jax.numpy through asdex: colours, detection + colouring time,
    and the time of the jitted coloured Jacobian (compilation excluded)."""
    import asdex
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def bruss(uv):
        u, v = uv[0], uv[1]

        def lap(w):
            return (
                jnp.roll(w, 1, 0) + jnp.roll(w, -1, 0) + jnp.roll(w, 1, 1) + jnp.roll(w, -1, 1)
            ) - 4 * w

        du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
        dv = 3.4 * u - u * u * v + 10.0 * lap(v)
        return jnp.stack([du, dv]).ravel()

    def band(x, half=2):
        out = jnp.exp(x)
        for k in range(1, half + 1):
            out = out + jnp.sin(jnp.pad(x[k:], (0, k))) * jnp.pad(x[:-k], (k, 0))
        return out

    def arrow(x):
        return jnp.sum(jnp.cos(x) * x[-1]) + jnp.sum(x**4)

    def energy(uv):
        return jnp.sum(bruss(uv) ** 2) / 2

    uv = np.random.default_rng(0).uniform(0.5, 1.5, (2, n_bruss, n_bruss))
    xb = np.linspace(-1, 1, n_band)
    out = {}
    for label, fn, x, mode in [
        ("banded columns", band, xb, "fwd"),
        ("banded rows", band, xb, "rev"),
        ("Brusselator columns", bruss, uv, "fwd"),
        ("Brusselator rows", bruss, uv, "rev"),
    ]:
        c = asdex.jacobian_coloring(fn, x, mode=mode)  # a first call traces
        prep = _times(lambda: asdex.jacobian_coloring(fn, x, mode=mode), rounds)
        jac = jax.jit(asdex.jacobian_from_coloring(fn, c))
        jax.block_until_ready(jac(x))
        ev = _times(lambda: jax.block_until_ready(jac(x)), rounds)
        out[label] = {"colours": int(c.num_colors), "prepare": prep, "evaluate": ev}
    for label, fn, x in [("arrowhead Hessian (star)", arrow, xb), (
        "Brusselator energy Hessian (star)", energy, uv)]:  # fmt: skip
        c = asdex.hessian_coloring(fn, x)  # a first call traces
        prep = _times(lambda: asdex.hessian_coloring(fn, x), rounds)
        hess = jax.jit(asdex.hessian_from_coloring(fn, c))
        jax.block_until_ready(hess(x))
        ev = _times(lambda: jax.block_until_ready(hess(x)), rounds)
        out[label] = {"colours": int(c.num_colors), "prepare": prep, "evaluate": ev}
    return out


def _asdex_python(argv) -> str | None:
    if "--asdex-python" in argv:
        return argv[argv.index("--asdex-python") + 1]
    if os.environ.get("ASDEX_PYTHON"):
        return os.environ["ASDEX_PYTHON"]
    try:
        import asdex  # noqa: F401
    except ImportError:
        return None
    return sys.executable


def compare_asdex(python, n_bruss, n_band, rounds, best):
    from diffkit.differentiators.sparse import SparseHessian, SparseJacobian

    print(
        f"\nagainst asdex (JAX) on the same functions: Brusselator {n_bruss}x{n_bruss}, "
        f"n = {n_band} (ms, median [min, max]; asdex jitted, compilation excluded)"
    )
    if python is None:
        print("asdex is not installed (give --asdex-python PATH or ASDEX_PYTHON)")
        return
    cmd = [python, __file__, "--asdex-side", str(n_bruss), str(n_band), str(rounds)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"asdex did not run in {python}: {tail}")
        return
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    import diffkit as dk

    f, at = brusselator(n_bruss)
    g, atg = banded(n_band)
    xa = {"x": np.linspace(-1, 1, n_band)}
    ours = {
        "banded columns": (lambda: SparseJacobian(g, method="forward"), atg),
        "banded rows": (lambda: SparseJacobian(g, method="reverse"), atg),
        "Brusselator columns": (lambda: SparseJacobian(f, method="forward"), at),
        "Brusselator rows": (lambda: SparseJacobian(f, method="reverse"), at),
        "arrowhead Hessian (star)": (lambda: SparseHessian(arrowhead(n_band)), xa),
        "Brusselator energy Hessian (star)": (lambda: SparseHessian(dk.sum(f**2) / 2), at),
    }
    print(
        f"{'problem':<36} {'colours (diffkit, best order / asdex)':>38}  "
        f"{'diffkit detect+colour':>30}  {'asdex detect+colour':>30}  "
        f"{'diffkit evaluate':>30}  {'asdex evaluate (jit)':>30}"
    )
    for label, (make, point) in ours.items():
        make()  # a first call builds the graphs
        prep = _times(make, rounds)
        prepared = make()
        prepared(point)
        ev = _times(lambda: prepared(point), rounds)
        t = theirs[label]
        mine = f"{prepared.coloring.count} (best {best.get(label, prepared.coloring.count)})"
        print(
            f"{label:<36} {mine + ' / ' + str(t['colours']):>38}  {_spread(prep)}  "
            f"{_spread(t['prepare'])}  {_spread(ev)}  {_spread(t['evaluate'])}"
        )


if __name__ == "__main__":
    if "--asdex-side" in sys.argv:
        i = sys.argv.index("--asdex-side")
        nb, nn, r = (int(a) for a in sys.argv[i + 1 : i + 4])
        print(json.dumps(_asdex_side(nb, nn, r)))
        sys.exit(0)
    quick = "--quick" in sys.argv
    speed([8, 16] if quick else [16, 32, 64, 128], 2 if quick else 5, 16 if quick else 64)
    n_b, n_n = (8, 64) if quick else (64, 2048)
    best = colours(n_b, n_n)
    compare_asdex(_asdex_python(sys.argv), n_b, n_n, 2 if quick else 5, best)

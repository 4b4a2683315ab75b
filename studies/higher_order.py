"""Higher-order derivatives side by side: cost and accuracy against the order k.

For five scalar functions (five steps of the logistic map 3.9 x (1 - x), a two-layer
tanh network, exp(sin x), Runge's 1/(1 + 25x²) and exp(x)/(x - 0.6) with a pole 0.1
away) and orders k = 1 … 20:
the graph size, build and evaluation time of Taylor mode, nested forward mode, nested
reverse mode and forward-over-reverse; the SymPy expression size (tree, count_ops, DAG
after CSE) and time; and the error against a 50-digit mpmath truth of every method,
finite differences of order k (the central stencil, Richardson, the complex circle)
included, with their error estimates. Growth rates are fitted to the measured sizes and
times (a power of k or an exponential in k, whichever fits the logarithms better). Times
are medians on this machine; sizes and errors do not vary between runs.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import mpmath
import numpy as np

import diffkit as dk
from diffkit.differentiators.higher import derivative, derivative_graph
from diffkit.differentiators.symbolic import SymbolicError
from diffkit.ir.schedule import compile, graph_size
from diffkit.timing import median_time
from diffkit.viz.plotting import markdown_table, new_figure, save_figure, write_text

AD = ["taylor", "forward", "forward-over-reverse", "reverse"]
FD = ["central", "richardson", "complex-circle"]
MAX_GRAPH = 60_000  # nested reverse mode stops growing its graph past this many nodes


def functions():
    """name -> (node of x, mpmath function, point)."""
    x = dk.variable("x")
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal(8), rng.standard_normal(8)
    w2, b2 = rng.standard_normal((8, 8)) / 3, rng.standard_normal(8)
    w3 = rng.standard_normal(8) / 3
    h = dk.tanh(dk.const(w1) * x + dk.const(b1))
    net = dk.sum(dk.const(w3) * dk.tanh(dk.sum(dk.const(w2) * h, axis=1) + dk.const(b2)))

    def net_mp(t):
        h1 = [mpmath.tanh(float(a) * t + float(b)) for a, b in zip(w1, b1)]
        h2 = [
            mpmath.tanh(sum(float(w2[i, j]) * h1[j] for j in range(8)) + float(b2[i]))
            for i in range(8)
        ]
        return sum(float(w3[i]) * h2[i] for i in range(8))

    logistic = x
    for _ in range(5):
        logistic = 3.9 * logistic * (1 - logistic)

    def logistic_mp(t):
        for _ in range(5):
            t = mpmath.mpf("3.9") * t * (1 - t)
        return t

    return {
        "logistic map (5 steps)": (logistic, logistic_mp, 0.3),
        "tanh network 8-8": (net, net_mp, 0.3),
        "exp(sin x)": (dk.exp(dk.sin(x)), lambda t: mpmath.exp(mpmath.sin(t)), 0.7),
        "1/(1+25x²)": (1 / (1 + 25 * x * x), lambda t: 1 / (1 + 25 * t * t), 0.3),
        "exp(x)/(x-0.6)": (dk.exp(x) / (x - 0.6), lambda t: mpmath.exp(t) / (t - 0.6), 0.5),
    }


def truth(fn, x0, order):
    """d^k fn(x0) for k = 0 .. order at 50 digits."""
    with mpmath.workdps(50):
        coeffs = mpmath.taylor(fn, mpmath.mpf(x0), order)
        return [float(c * mpmath.factorial(k)) for k, c in enumerate(coeffs)]


def fit_growth(ks, values) -> tuple[str, float, str]:
    """('power', p, text) or ('exponential', b, text): the fit of log(value) that leaves
    the smaller residual, against log k or against k."""
    ks, v = np.asarray(ks, float), np.asarray(values, float)
    keep = np.isfinite(v) & (v > 0)
    ks, v = ks[keep], v[keep]
    if len(ks) < 3:
        return ("none", math.nan, "too few points to fit")
    y = np.log(v)
    p, c = np.polyfit(np.log(ks), y, 1)
    r_pow = float(np.sum((y - (p * np.log(ks) + c)) ** 2))
    b, c2 = np.polyfit(ks, y, 1)
    r_exp = float(np.sum((y - (b * ks + c2)) ** 2))
    if r_pow <= r_exp:
        return ("power", float(p), f"like k^{p:.2f}")
    return ("exponential", float(b), f"like e^({b:.2f} k), ×{math.exp(b):.2f} per order")


def _rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def main(out: str | Path = "reports/higher-order", quick: bool = False) -> dict:
    out = Path(out)
    ks = [1, 2, 4, 6] if quick else list(range(1, 21))
    repeats = 1 if quick else 3
    symbolic_budget = 1.0 if quick else 10.0
    fns = functions()
    if quick:
        fns = {k: fns[k] for k in ("tanh network 8-8", "exp(x)/(x-0.6)")}
    rows_cost, rows_err, data = [], [], {}
    for name, (f, fn, x0) in fns.items():
        exact = truth(fn, x0, max(ks))
        at = {"x": x0}
        rec = {m: {"size": [], "build": [], "eval": [], "error": []} for m in AD}
        rec["symbolic"] = {"tree": [], "ops": [], "cse": [], "seconds": [], "error": []}
        for m in FD:
            rec[m] = {"error": [], "estimate": [], "evaluations": []}
        stopped = set()
        for k in ks:
            want = exact[k]
            for m in AD:
                if m in stopped:
                    for key in rec[m]:
                        rec[m][key].append(math.nan)
                    continue
                start = time.perf_counter()
                g = derivative_graph(f, "x", k, m)
                build = time.perf_counter() - start
                size = graph_size(g)
                program = compile(g)
                value = float(program(at))
                t_eval = median_time(lambda: program(at), repeats)[0]
                if repeats > 1:
                    build = min(build, median_time(lambda: derivative_graph(f, "x", k, m), 1)[0])
                rec[m]["size"].append(size)
                rec[m]["build"].append(build)
                rec[m]["eval"].append(t_eval)
                rec[m]["error"].append(_rel(value, want))
                if size > MAX_GRAPH:
                    stopped.add(m)
            if "symbolic" in stopped:
                for key in rec["symbolic"]:
                    rec["symbolic"][key].append(math.nan)
            else:
                try:
                    value, info = derivative(
                        f, "x", at, "symbolic", k, True, time_budget=symbolic_budget
                    )
                    rec["symbolic"]["tree"].append(info.expression_size)
                    rec["symbolic"]["ops"].append(info.extra["ops"])
                    rec["symbolic"]["cse"].append(info.extra["cse"])
                    rec["symbolic"]["seconds"].append(info.seconds)
                    rec["symbolic"]["error"].append(_rel(float(value), want))
                except SymbolicError:
                    stopped.add("symbolic")
                    for key in rec["symbolic"]:
                        rec["symbolic"][key].append(math.nan)
            for m in FD:
                value, info = derivative(f, "x", at, m, k, True)
                rec[m]["error"].append(_rel(float(value), want))
                rec[m]["estimate"].append(info.error_estimate / max(abs(want), 1e-300))
                rec[m]["evaluations"].append(info.evaluations)
            for i, m in enumerate(AD):
                r = rec[m]
                rows_cost.append(
                    [name, k, m, r["size"][-1], r["build"][-1] * 1e3, r["eval"][-1] * 1e3]
                )
            s = rec["symbolic"]
            rows_cost.append([name, k, "symbolic", s["tree"][-1], s["seconds"][-1] * 1e3, math.nan])
            rows_err.append(
                [name, k]
                + [rec[m]["error"][-1] for m in AD + ["symbolic"]]
                + [v for m in FD for v in (rec[m]["error"][-1], rec[m]["estimate"][-1])]
            )
        data[name] = rec
    growth = {}
    for name, rec in data.items():
        for m in ("taylor", "forward", "reverse"):
            total = np.array(rec[m]["build"]) + np.array(rec[m]["eval"])
            growth[(name, m, "size")] = fit_growth(ks, rec[m]["size"])
            growth[(name, m, "time")] = fit_growth(ks, total)
        growth[(name, "symbolic", "tree")] = fit_growth(ks, rec["symbolic"]["tree"])
    _figures(out, ks, data)
    summary = _summary(ks, data, growth)
    text = [
        "# Higher-order derivatives: cost and accuracy against the order\n",
        __doc__.split("\n\n", 1)[1].strip() + "\n",
        "## Findings\n",
        *[f"- {s}" for s in summary],
        "\n![cost against k](higher_order_cost.png)\n",
        "![error against k](higher_order_error.png)\n",
        "## Growth fitted to the measurements\n",
        markdown_table(
            ["function", "method", "measure", "fit"],
            [[n, m, q, g[2]] for (n, m, q), g in sorted(growth.items())],
        ),
        "\n## Cost\n",
        "Graph size in nodes (symbolic: expression-tree nodes), build time (symbolic: "
        "differentiation and evaluation) and evaluation time of the compiled derivative, "
        "in milliseconds.\n",
        markdown_table(["function", "k", "method", "size", "build (ms)", "eval (ms)"], rows_cost),
        "\n## Relative error against mpmath (50 digits)\n",
        markdown_table(
            ["function", "k"] + AD + ["symbolic"] + [h for m in FD for h in (m, f"{m} estimate")],
            rows_err,
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {"ks": ks, "data": data, "growth": growth, "summary": summary}


def _summary(ks, data, growth) -> list[str]:
    lines = []
    k_hi = max(ks)
    for name, rec in data.items():
        t_size = growth[(name, "taylor", "size")][2]
        f_size = growth[(name, "forward", "size")][2]
        r_size = growth[(name, "reverse", "size")][2]
        lines.append(
            f"{name}: the Taylor-mode graph grows {t_size}, nested forward mode's {f_size}, "
            f"nested reverse mode's {r_size}."
        )
        for k in sorted({min(10, k_hi), k_hi}):
            i = ks.index(k) if k in ks else len(ks) - 1
            total = {m: rec[m]["build"][i] + rec[m]["eval"][i] for m in AD}
            if np.isfinite(total["forward"]):
                lines.append(
                    f"{name}, k = {ks[i]}: Taylor mode takes {total['taylor'] * 1e3:.1f} ms to "
                    f"build and run, nested forward mode {total['forward'] * 1e3:.1f} ms "
                    f"({total['forward'] / total['taylor']:.1f}×); compiled, their runs take "
                    f"{rec['taylor']['eval'][i] * 1e3:.2f} and "
                    f"{rec['forward']['eval'][i] * 1e3:.2f} ms."
                )
        for m in FD:
            good = [k for k, e in zip(ks, rec[m]["error"]) if e <= 1e-6]
            covered = sum(
                1
                for e, est in zip(rec[m]["error"], rec[m]["estimate"])
                if e <= est or not np.isfinite(est)
            )
            lines.append(
                f"{name}, {m}: within 1e-6 relative of the truth for k in "
                f"{_ranges(good) or 'none'}; its estimate covers its error at {covered} of "
                f"{len(ks)} orders."
            )
        sym = [k for k, v in zip(ks, rec["symbolic"]["tree"]) if np.isfinite(v)]
        if sym:
            lines.append(
                f"{name}: SymPy reached k = {max(sym)} within its time budget; its expression "
                f"tree grows {growth[(name, 'symbolic', 'tree')][2]}."
            )
    try:
        import jax  # noqa: F401

        lines.append("JAX is installed: benchmarks/higher_order.py times jax.experimental.jet.")
    except ImportError:
        lines.append(
            "JAX and jet-for-pytorch are not installed in this environment, so no peer's "
            "Taylor mode is timed here."
        )
    return lines


def _ranges(ks) -> str:
    if not ks:
        return ""
    parts, start, prev = [], ks[0], ks[0]
    for k in ks[1:] + [None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        parts.append(f"{start}" if start == prev else f"{start}–{prev}")
        if k is not None:
            start = prev = k
    return ", ".join(parts)


def _figures(out, ks, data):
    names = list(data)
    fig, axes = new_figure(2, len(names), figsize=(4.2 * len(names), 7.5))
    axes = np.asarray(axes).reshape(2, len(names))
    for j, name in enumerate(names):
        rec = data[name]
        a, b = axes[0, j], axes[1, j]
        for m in AD:
            a.semilogy(ks, rec[m]["size"], "o-", ms=3, label=m)
            b.semilogy(
                ks, np.array(rec[m]["build"]) + np.array(rec[m]["eval"]), "o-", ms=3, label=m
            )
        a.semilogy(ks, rec["symbolic"]["tree"], "s--", ms=3, label="symbolic (tree)")
        a.semilogy(ks, rec["symbolic"]["cse"], "s:", ms=3, label="symbolic (after CSE)")
        b.semilogy(ks, rec["symbolic"]["seconds"], "s--", ms=3, label="symbolic")
        a.set_title(name, fontsize=9)
        a.set_ylabel("graph / expression nodes")
        b.set_ylabel("seconds (build + run)")
        b.set_xlabel("order k")
    axes[0, 0].legend(fontsize=7)
    save_figure(fig, out / "higher_order_cost.png")
    fig, axes = new_figure(1, len(names), figsize=(4.2 * len(names), 4))
    axes = np.atleast_1d(axes)
    for j, name in enumerate(names):
        rec, ax = data[name], axes[j]
        for m in AD + ["symbolic"] + FD:
            err = np.array(rec[m]["error"], float)
            err = np.where(np.isfinite(err), np.maximum(err, 1e-18), np.nan)
            ax.semilogy(ks, err, "o-", ms=3, label=m)
        ax.axhline(1e-6, color="k", ls=":", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("order k")
        ax.set_ylabel("relative error")
    axes[0].legend(fontsize=7)
    save_figure(fig, out / "higher_order_error.png")


if __name__ == "__main__":
    main()

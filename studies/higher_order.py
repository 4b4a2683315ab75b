"""Higher-order derivatives side by side: cost and accuracy against the order k.

For five scalar functions (five steps of the logistic map 3.9 x (1 - x), a two-layer
tanh network, exp(sin x), Runge's 1/(1 + 25x²) and exp(x)/(x - 0.6) with a pole 0.1
away) and orders k = 1 … 20:
the graph size, build and evaluation time of Taylor mode, nested forward mode, nested
reverse mode and forward-over-reverse; the time of Taylor mode on values (``dk.jet``,
which propagates coefficient arrays and builds no derivative graph); the SymPy expression
size (tree, count_ops, DAG after CSE) and time; and the error against a 50-digit mpmath
truth of every method,
finite differences of order k (the central stencil, Richardson, the complex circle)
included, with their error estimates. Growth rates are fitted to the measured sizes and
times (a power of k or an exponential in k, whichever fits the logarithms better). Times
are medians on this machine; sizes and errors do not vary between runs. Where JAX's
``jax.experimental.jet`` or jet-for-pytorch is installed (in this interpreter, or in the
one ``DIFFKIT_JAX_PYTHON`` / ``DIFFKIT_JET_TORCH_PYTHON`` names), the full run times it on
the same functions at k = 1, 2, 4, 6, 8, 10, 14, 20 in a subprocess (``_jet_peers.py``)
and compares its derivatives with diffkit's.
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


def function_specs() -> list[dict]:
    """The study's functions as plain data (a kind and its constants), from which both
    diffkit's graphs and the peers' functions (``_jet_peers.py``) are built."""
    rng = np.random.default_rng(0)
    w1, b1 = rng.standard_normal(8), rng.standard_normal(8)
    w2, b2 = rng.standard_normal((8, 8)) / 3, rng.standard_normal(8)
    w3 = rng.standard_normal(8) / 3
    net = {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3}
    return [
        {"name": "logistic map (5 steps)", "kind": "logistic", "steps": 5, "x0": 0.3},
        {"name": "tanh network 8-8", "kind": "tanh-network", "x0": 0.3}
        | {k: v.tolist() for k, v in net.items()},
        {"name": "exp(sin x)", "kind": "exp-sin", "x0": 0.7},
        {"name": "1/(1+25x²)", "kind": "runge", "x0": 0.3},
        {"name": "exp(x)/(x-0.6)", "kind": "pole", "pole": 0.6, "x0": 0.5},
    ]


def _build(spec: dict):
    """(node of x, mpmath function) of one spec."""
    x = dk.variable("x")
    kind = spec["kind"]
    if kind == "logistic":
        f = x
        for _ in range(spec["steps"]):
            f = 3.9 * f * (1 - f)

        def fn(t):
            for _ in range(spec["steps"]):
                t = mpmath.mpf("3.9") * t * (1 - t)
            return t

        return f, fn
    if kind == "tanh-network":
        w1, b1, w2, b2, w3 = (np.asarray(spec[k]) for k in ("w1", "b1", "w2", "b2", "w3"))
        h = dk.tanh(dk.const(w1) * x + dk.const(b1))
        f = dk.sum(dk.const(w3) * dk.tanh(dk.sum(dk.const(w2) * h, axis=1) + dk.const(b2)))

        def fn(t):
            h1 = [mpmath.tanh(float(a) * t + float(b)) for a, b in zip(w1, b1)]
            h2 = [
                mpmath.tanh(sum(float(w2[i, j]) * h1[j] for j in range(len(h1))) + float(b2[i]))
                for i in range(len(b2))
            ]
            return sum(float(w3[i]) * h2[i] for i in range(len(h2)))

        return f, fn
    if kind == "exp-sin":
        return dk.exp(dk.sin(x)), lambda t: mpmath.exp(mpmath.sin(t))
    if kind == "runge":
        return 1 / (1 + 25 * x * x), lambda t: 1 / (1 + 25 * t * t)
    if kind == "pole":
        c = spec["pole"]
        return dk.exp(x) / (x - c), lambda t: mpmath.exp(t) / (t - c)
    raise ValueError(f"unknown function kind {kind!r}")


def functions():
    """name -> (node of x, mpmath function, point)."""
    return {spec["name"]: (*_build(spec), spec["x0"]) for spec in function_specs()}


# ---- peers: Taylor mode of JAX and jet-for-pytorch, run in their own interpreters ---------
PEERS = {
    "jax": ("DIFFKIT_JAX_PYTHON", "jax"),
    "jet-for-pytorch": ("DIFFKIT_JET_TORCH_PYTHON", "jet-for-pytorch"),
}
PEER_SCRIPT = Path(__file__).resolve().parent / "_jet_peers.py"


def peer_python(peer: str) -> str | None:
    """The interpreter that runs ``peer``: the one its environment variable names
    (``DIFFKIT_JAX_PYTHON``, ``DIFFKIT_JET_TORCH_PYTHON``), else this one if the peer is
    installed here, else None."""
    import importlib.metadata
    import os
    import sys

    env, dist = PEERS[peer]
    named = os.environ.get(env)
    if named:
        return named
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    return sys.executable


def run_peer(peer: str, names, ks, repeats: int = 5, timeout: float = 1800.0) -> dict:
    """The peer's k-th derivatives and times on the named study functions (see
    ``_jet_peers.py``), or ``{"error": why}`` when it is not installed or fails."""
    import json
    import os
    import subprocess

    python = peer_python(peer)
    if python is None:
        env, _ = PEERS[peer]
        return {"error": f"{peer} is not installed (set {env} to a Python that has it)"}
    specs = [s for s in function_specs() if s["name"] in names]
    request = {"peer": peer, "ks": list(ks), "repeats": repeats, "functions": specs}
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    try:
        done = subprocess.run(
            [python, str(PEER_SCRIPT)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{peer} did not run: {type(exc).__name__}: {exc}"}
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return {"error": f"{peer} failed: {tail[0]}"}
    return json.loads(done.stdout)


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


PEER_KS = (1, 2, 4, 6, 8, 10, 14, 20)  # the orders the peers run at (full mode)


def main(out: str | Path = "reports/higher-order", quick: bool = False, executor=None) -> dict:
    """Run the study and write ``out/README.md`` and its figures; ``quick`` runs two
    functions to k = 6 without the peers (seconds instead of minutes). The measurements
    share one process and its timings, so they run in order whatever ``executor``."""
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
        rec["jet"] = {"seconds": [], "value": [], "error": []}
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
            # Taylor mode on values (dk.jet, derivative(method="taylor")): no graph is built
            value = float(derivative(f, "x", at, "taylor", k))
            rec["jet"]["value"].append(value)
            rec["jet"]["error"].append(_rel(value, want))
            rec["jet"]["seconds"].append(
                median_time(lambda: derivative(f, "x", at, "taylor", k), 3 * repeats)[0]
            )
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
            rows_cost.append([name, k, "taylor (values)", 0, 0.0, rec["jet"]["seconds"][-1] * 1e3])
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
        growth[(name, "taylor (values)", "time")] = fit_growth(ks, rec["jet"]["seconds"])
    peers = {}
    if not quick:
        peer_ks = [k for k in ks if k in PEER_KS]
        for peer in PEERS:
            peers[peer] = run_peer(peer, list(fns), peer_ks)
    _figures(out, ks, data, peers)
    summary = _summary(ks, data, growth) + _peer_summary(ks, data, peers, quick)
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
        *_peer_tables(ks, data, peers),
        "\n## Relative error against mpmath (50 digits)\n",
        markdown_table(
            ["function", "k"] + AD + ["symbolic"] + [h for m in FD for h in (m, f"{m} estimate")],
            rows_err,
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {"ks": ks, "data": data, "growth": growth, "summary": summary, "peers": peers}


def _peer_rows(ks, data, answer):
    """(function, k, diffkit's seconds, the peer's row, relative difference) for each
    function and order the peer answered."""
    rows = []
    for name, by_k in answer.get("results", {}).items():
        rec = data[name]
        for k_text, row in by_k.items():
            if "error" in row:
                continue
            k = int(k_text)
            i = ks.index(k)
            ours = rec["jet"]["value"][i]
            rows.append((name, k, rec["jet"]["seconds"][i], row, _rel(row["value"], ours)))
    return rows


def _peer_tables(ks, data, peers) -> list[str]:
    parts = []
    for peer, answer in peers.items():
        if "error" in answer:
            continue
        has_eager = any("eager" in r for _, _, _, r, _ in _peer_rows(ks, data, answer))
        head = ["function", "k", "diffkit jet (ms)"]
        head += [f"{peer} eager (ms)"] if has_eager else []
        later = "compiled" if has_eager else "later calls"
        head += [f"{peer} first call (ms)", f"{peer} {later} (ms)", "relative difference"]
        rows = []
        for name, k, ours, row, diff in _peer_rows(ks, data, answer):
            cells = [name, k, ours * 1e3]
            cells += [row.get("eager", math.nan) * 1e3] if has_eager else []
            cells += [row["first"] * 1e3, row["run"] * 1e3, diff]
            rows.append(cells)
        parts += [
            f"\n## Taylor mode beside {answer['version']}\n",
            f"One call of diffkit's Taylor mode on values (a new k-th derivative, no graph "
            f"built) beside {peer}'s, on the same functions at the same points, in "
            f"milliseconds (medians): its first call includes tracing the function"
            + (
                ", eager calls run JAX's jet rules op by op, and compiled calls run what "
                "jax.jit compiled the first time"
                if has_eager
                else ", later calls reuse the traced graph"
            )
            + "; the relative difference of the k-th derivatives.\n",
            markdown_table(head, rows),
        ]
    return parts


def _peer_summary(ks, data, peers, quick) -> list[str]:
    if quick:
        return [
            "Quick mode times no peers; the full run times JAX's jax.experimental.jet "
            "and jet-for-pytorch where they are installed."
        ]
    lines = []
    for peer, answer in peers.items():
        if "error" in answer:
            lines.append(f"{peer}: not timed — {answer['error']}.")
            continue
        failed = sorted(
            {
                f"{name} ({row['error']})"
                for name, by_k in answer["results"].items()
                for row in by_k.values()
                if "error" in row
            }
        )
        if failed:
            lines.append(f"{answer['version']} failed on: {'; '.join(failed)}.")
        rows = _peer_rows(ks, data, answer)
        if not rows:
            continue
        worst = max(rows, key=lambda r: r[4])
        ours = data[worst[0]]["jet"]["error"][ks.index(worst[1])]
        lines.append(
            f"{answer['version']} ran the same functions in its own interpreter: its k-th "
            f"derivatives agree with diffkit's Taylor mode to {worst[4]:.1e} relative at worst "
            f"({worst[0]}, k = {worst[1]}, where diffkit's is {ours:.1e} from the 50-digit "
            f"truth), over {len(rows)} function-order pairs."
        )
        at10 = [r for r in rows if r[0] == "tanh network 8-8" and r[1] == 10]
        if at10:
            _, _, ours, row, _ = at10[0]
            if "eager" in row:
                rest = (
                    f"{peer}'s eager jet {row['eager'] * 1e3:.2f} ms, its first jit-compiled "
                    f"call {row['first'] * 1e3:.0f} ms (tracing and compilation) and later "
                    f"compiled calls {row['run'] * 1e3:.3f} ms"
                )
            else:
                rest = (
                    f"{peer}'s first call {row['first'] * 1e3:.1f} ms (tracing included) and "
                    f"later calls {row['run'] * 1e3:.2f} ms"
                )
            lines.append(
                f"tanh network 8-8, k = 10: one call of diffkit's jet takes {ours * 1e3:.2f} ms, "
                f"{rest}."
            )
    return lines


def _summary(ks, data, growth) -> list[str]:
    lines = []
    k_hi = max(ks)
    for name, rec in data.items():
        t_size = growth[(name, "taylor", "size")][2]
        f_size = growth[(name, "forward", "size")][2]
        r_size = growth[(name, "reverse", "size")][2]
        v_time = growth[(name, "taylor (values)", "time")]
        lines.append(
            f"{name}: the Taylor-mode graph grows {t_size}, nested forward mode's {f_size}, "
            f"nested reverse mode's {r_size}; the time of Taylor mode on values grows "
            f"{v_time[2]}."
        )
        for k in sorted({min(10, k_hi), k_hi}):
            i = ks.index(k) if k in ks else len(ks) - 1
            total = {m: rec[m]["build"][i] + rec[m]["eval"][i] for m in AD}
            if np.isfinite(total["forward"]):
                values = rec["jet"]["seconds"][i]
                lines.append(
                    f"{name}, k = {ks[i]}: a new k-th derivative takes {values * 1e3:.2f} ms by "
                    f"Taylor mode on values, {total['taylor'] * 1e3:.1f} ms by building and "
                    f"running the Taylor-mode graph, and {total['forward'] * 1e3:.1f} ms by "
                    f"nested forward mode ({total['forward'] / values:.0f}× the values' time, "
                    f"{total['forward'] / total['taylor']:.1f}× the graph's); compiled, the "
                    f"Taylor and nested forward graphs run in {rec['taylor']['eval'][i] * 1e3:.2f}"
                    f" and {rec['forward']['eval'][i] * 1e3:.2f} ms."
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
            kind, _, text = growth[(name, "symbolic", "tree")]
            grows = "" if kind == "none" else f"; its expression tree grows {text}"
            lines.append(f"{name}: SymPy reached k = {max(sym)} within its time budget{grows}.")
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


def _figures(out, ks, data, peers):
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
        b.semilogy(ks, rec["jet"]["seconds"], "^-", ms=3, label="taylor (values)")
        for peer, answer in peers.items():
            by_k = answer.get("results", {}).get(name, {})
            by_k = {k: row for k, row in by_k.items() if "error" not in row}
            if by_k:
                pk = sorted(int(k) for k in by_k)
                label = answer["version"].split(" (")[0]
                if "eager" in by_k[str(pk[0])]:
                    eager = [by_k[str(k)]["eager"] for k in pk]
                    b.semilogy(pk, eager, "v:", ms=3, label=f"{label} eager")
                later = [by_k[str(k)]["run"] for k in pk]
                kind = "compiled" if "eager" in by_k[str(pk[0])] else "later calls"
                b.semilogy(pk, later, "v-.", ms=3, label=f"{label} {kind}")
        a.set_title(name, fontsize=9)
        a.set_ylabel("graph / expression nodes")
        b.set_ylabel("seconds (build + run)")
        b.set_xlabel("order k")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
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

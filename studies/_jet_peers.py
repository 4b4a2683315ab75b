"""Peers' Taylor mode on the functions of the higher-order study, run in another interpreter.

This script imports neither diffkit nor anything of the study: it runs under a Python
that has JAX (``jax.experimental.jet``) or jet-for-pytorch installed, reads a JSON request
on standard input and writes a JSON answer on standard output, so that the study and
``benchmarks/higher_order.py`` time the peers on the same functions in the same run
without making them dependencies of diffkit. A request names the peer, the functions
(a kind and its constants), the orders and the number of repeats; the answer gives the
peer's version and, for each function and order, the k-th derivative and the seconds
taken by the first call (tracing, and for JAX's jit compilation, included) and by later
calls (median; JAX's compiled by jit), and for JAX by an uncompiled (eager) jet.

Run: ``PYTHON studies/_jet_peers.py < request.json``
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _jax_functions(spec, jnp):
    kind = spec["kind"]
    if kind == "logistic":

        def f(x):
            for _ in range(spec["steps"]):
                x = 3.9 * x * (1 - x)
            return x

    elif kind == "tanh-network":
        w1, b1 = jnp.asarray(spec["w1"]), jnp.asarray(spec["b1"])
        w2, b2 = jnp.asarray(spec["w2"]), jnp.asarray(spec["b2"])
        w3 = jnp.asarray(spec["w3"])

        def f(x):
            h = jnp.tanh(w1 * x + b1)
            return jnp.sum(w3 * jnp.tanh(jnp.sum(w2 * h, axis=1) + b2))

    elif kind == "exp-sin":

        def f(x):
            return jnp.exp(jnp.sin(x))

    elif kind == "runge":

        def f(x):
            return 1 / (1 + 25 * x * x)

    elif kind == "pole":

        def f(x):
            return jnp.exp(x) / (x - spec["pole"])

    else:
        raise ValueError(f"unknown function kind {kind!r}")
    return f


def run_jax(request: dict) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.experimental import jet

    repeats = request.get("repeats", 5)
    results = {}
    for spec in request["functions"]:
        f = _jax_functions(spec, jnp)
        x0 = jnp.asarray(spec["x0"], dtype=jnp.float64)
        rows = {}
        for k in request["ks"]:
            series = [jnp.asarray(1.0)] + [jnp.asarray(0.0)] * (k - 1)

            def top(x, series=series):
                return jet.jet(f, (x,), (series,))[1][-1]  # the k-th derivative

            start = time.perf_counter()
            eager = float(top(x0))
            eager_first = time.perf_counter() - start
            eager_run = _median_seconds(lambda: top(x0).block_until_ready(), repeats)
            compiled = jax.jit(top)
            start = time.perf_counter()
            value = float(compiled(x0).block_until_ready())
            first = time.perf_counter() - start
            run = _median_seconds(lambda: compiled(x0).block_until_ready(), max(5, repeats))
            rows[str(k)] = {
                "value": value,
                "eager_value": eager,
                "eager_first": eager_first,
                "eager": eager_run,
                "first": first,
                "run": run,
            }
        results[spec["name"]] = rows
    return {"peer": "jax", "version": f"jax {jax.__version__}", "results": results}


def run_jet_for_pytorch(request: dict) -> dict:
    import importlib.metadata

    import torch

    import jet as torch_jet

    torch.set_default_dtype(torch.float64)
    version = importlib.metadata.version("jet-for-pytorch")
    results = {}
    for spec in request["functions"]:
        f = _torch_function(spec, torch)
        x0 = torch.tensor(spec["x0"], dtype=torch.float64)
        rows = {}
        for k in request["ks"]:
            coefficients = (x0, torch.ones_like(x0)) + (torch.zeros_like(x0),) * (k - 1)
            start = time.perf_counter()
            try:
                jet_f = torch_jet.jet(f, (x0,))  # traces f
                value = float(jet_f(coefficients)[-1])  # the k-th derivative
            except Exception as exc:  # an op without a jet rule: say which
                rows[str(k)] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
                continue
            first = time.perf_counter() - start
            run = _median_seconds(lambda: jet_f(coefficients), max(5, request.get("repeats", 5)))
            rows[str(k)] = {"value": value, "first": first, "run": run}
        results[spec["name"]] = rows
    return {
        "peer": "jet-for-pytorch",
        "version": f"jet-for-pytorch {version} (torch {torch.__version__})",
        "results": results,
    }


def _torch_function(spec, torch):
    kind = spec["kind"]
    if kind == "logistic":

        def f(x):
            for _ in range(spec["steps"]):
                x = 3.9 * x * (-x + 1)  # 1 - x as -x + 1: jet-for-pytorch has no rule for rsub
            return x

    elif kind == "tanh-network":
        w1, b1 = torch.tensor(spec["w1"]), torch.tensor(spec["b1"])
        w2, b2 = torch.tensor(spec["w2"]), torch.tensor(spec["b2"])
        w3 = torch.tensor(spec["w3"])

        def f(x):
            h = torch.tanh(w1 * x + b1)
            return torch.sum(w3 * torch.tanh(torch.sum(w2 * h, dim=1) + b2))

    elif kind == "exp-sin":

        def f(x):
            return torch.exp(torch.sin(x))

    elif kind == "runge":

        def f(x):
            return (1 + 25 * x * x) ** -1  # jet-for-pytorch has no rule for reciprocal

    elif kind == "pole":

        def f(x):
            return torch.exp(x) / (x - spec["pole"])

    else:
        raise ValueError(f"unknown function kind {kind!r}")
    return f


def main() -> None:
    request = json.load(sys.stdin)
    peer = request.get("peer", "jax")
    answer = run_jax(request) if peer == "jax" else run_jet_for_pytorch(request)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()

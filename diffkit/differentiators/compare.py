"""Every method on one derivative, side by side against a high-precision truth.

>>> import diffkit as dk
>>> rows = dk.compare("exp(x)*sin(x)", at={"x": 1.0}, methods=["reverse", "central"])
>>> [r["method"] for r in rows]
['reverse', 'central']
>>> rows[0]["rel_error"] < 1e-15
True
"""

from __future__ import annotations

import time
from typing import Sequence

import mpmath

from ..ir.node import Node
from .common import get_method, methods as all_methods, resolve_wrt
from .symbolic import reference_derivative

__all__ = ["compare"]


def compare(
    f: Node | str, at: dict, wrt=None, methods: Sequence[str] | None = None, digits: int = 50
) -> list[dict]:
    """One row per method: derivative, errors against the ``digits``-digit truth, cost.

    Args:
        f: a scalar graph of scalar variables, or an expression string for ``dk.parse``.
        at: the point.
        wrt: the variable (the only one, or the first in sorted order, by default).
        methods: method names (all of ``dk.methods()`` by default).

    Returns:
        A list of dicts with keys method, derivative, abs_error, rel_error,
        evaluations, seconds, size, size_kind, and truth (a string of ``digits`` digits).
    """
    if isinstance(f, str):
        from ..parse import parse

        f = parse(f)
    names = resolve_wrt(f, wrt)
    name = names[0]
    truth = reference_derivative(f, name, at, digits=digits)
    rows = []
    for method in methods or all_methods():
        diff = get_method(method)
        start = time.perf_counter()
        value = float(diff.derivative(f, name, at))
        seconds = time.perf_counter() - start
        cost = diff.last_cost
        with mpmath.workdps(digits):
            abs_err = abs(mpmath.mpf(value) - truth)
            rel_err = abs_err / abs(truth) if truth != 0 else abs_err
        if method == "symbolic":
            size, kind = cost.expression_size, "expression tree nodes"
        elif method in ("reverse", "forward"):
            size, kind = cost.graph_size, "derivative graph nodes"
        else:
            size, kind = 0, ""
        rows.append(
            {
                "method": method,
                "derivative": value,
                "abs_error": float(abs_err),
                "rel_error": float(rel_err),
                "evaluations": cost.function_evaluations or cost.passes,
                "seconds": seconds,
                "size": size,
                "size_kind": kind,
                "truth": mpmath.nstr(truth, digits),
            }
        )
    return rows

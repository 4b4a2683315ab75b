"""Every method on one derivative, side by side against a high-precision truth.

A method that does not apply (the complex step through a non-analytic op, SymPy past
its limits) gets a row saying why, and the other rows stay. Where there is no truth
(the function or its derivative is undefined at the point) the rows carry no errors
and ``truth`` is ``None`` with ``truth_note`` saying why.

>>> import diffkit as dk
>>> rows = dk.compare("exp(x)*sin(x)", at={"x": 1.0}, methods=["reverse", "central"])
>>> [r["method"] for r in rows]
['reverse', 'central']
>>> rows[0]["rel_error"] < 1e-15
True
>>> dk.compare("relu(x)", at={"x": 0.5}, methods=["complex-step"])[0]["note"]
'n/a: relu is not analytic'
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import mpmath

from ..ir.node import Node
from ..limits import BudgetExceeded
from .common import get_method, methods as all_methods, resolve_wrt
from .finite import non_analytic_ops
from .reference import NoReference, check_digits, reference_derivative
from .symbolic import SymbolicLimitError

__all__ = ["compare"]

_SIZE_KIND = {
    "symbolic": "expression tree nodes",
    "reverse": "derivative graph nodes",
    "forward": "derivative graph nodes",
}


def _not_applicable(method: str, f: Node) -> str | None:
    """Why ``method`` does not apply to ``f``, known before running it."""
    if method == "complex-step":
        bad = non_analytic_ops(f)
        if bad:
            return f"n/a: {', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not analytic"
    return None


def compare(
    f: Node, at: dict, wrt=None, methods: Sequence[str] | None = None, digits: int = 50
) -> list[dict]:
    """One row per method: derivative, errors against the ``digits``-digit truth, cost.

    Args:
        f: a scalar graph of scalar variables (``dk.compare`` also takes an expression
            string for ``dk.parse``).
        at: the point.
        wrt: the variable (the only one, or the first in sorted order, by default).
        methods: method names (all of ``dk.methods()`` by default).
        digits: digits of the truth (1 to 1000).

    Returns:
        A list of dicts with keys method, derivative, abs_error, rel_error,
        error_estimate (Richardson's), evaluations, seconds, size, size_kind, truth (a
        string of ``digits`` digits, or ``None``), truth_note, and note (``None``, or
        ``"n/a: why"`` for a method that does not apply, with derivative ``None``).

    >>> import diffkit as dk
    >>> x = dk.variable("x")
    >>> rows = dk.compare(x ** 2, at={"x": 3.0}, methods=["reverse", "symbolic"], digits=20)
    >>> [(r["method"], r["derivative"], r["abs_error"]) for r in rows]  # 2x = 6, exactly
    [('reverse', 6.0, 0.0), ('symbolic', 6.0, 0.0)]
    """
    if isinstance(f, str):
        raise TypeError("compare takes a graph here; dk.compare also parses expression strings")
    digits = check_digits(digits)
    names = resolve_wrt(f, wrt)
    if not names:
        raise ValueError("compare: the expression has no variable to differentiate by")
    name = names[0]
    truth, truth_note = None, None
    try:
        truth = reference_derivative(f, name, at, digits=digits)
    except NoReference as err:
        truth_note = str(err)
    rows = []
    for method in methods or all_methods():
        rows.append(_row(f, name, at, method, truth, digits))
        rows[-1]["truth_note"] = truth_note
    return rows


def _row(f, name, at, method, truth, digits) -> dict:
    row = {
        "method": method,
        "derivative": None,
        "abs_error": None,
        "rel_error": None,
        "error_estimate": None,
        "evaluations": 0,
        "seconds": 0.0,
        "size": 0,
        "size_kind": "",
        "truth": None if truth is None else mpmath.nstr(truth, digits),
        "note": _not_applicable(method, f),
    }
    if row["note"]:
        return row
    diff = get_method(method)
    start = time.perf_counter()
    try:
        value = float(diff.derivative(f, name, at))
    except (SymbolicLimitError, BudgetExceeded, ValueError, ArithmeticError) as err:
        row["note"] = f"n/a: {err}"
        return row
    row["seconds"] = time.perf_counter() - start
    cost = diff.last_cost
    row["derivative"] = value
    row["evaluations"] = cost.function_evaluations or cost.passes
    if "error_estimate" in cost.extra:
        row["error_estimate"] = float(cost.extra["error_estimate"])
    if method in _SIZE_KIND:
        row["size_kind"] = _SIZE_KIND[method]
        row["size"] = cost.expression_size if method == "symbolic" else cost.graph_size
    if truth is not None:
        if math.isfinite(value):
            with mpmath.workdps(digits):
                abs_err = abs(mpmath.mpf(value) - truth)
                rel_err = abs_err / abs(truth) if truth != 0 else abs_err
            row["abs_error"], row["rel_error"] = float(abs_err), float(rel_err)
        else:
            row["abs_error"] = row["rel_error"] = math.inf
    return row

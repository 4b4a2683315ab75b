"""Finite differences: derivatives from evaluations of the primal graph at shifted points.

Schemes (truncation error for a step h):

=====================  ==========================================  ==========
forward-difference     (f(x+h) - f(x)) / h                         O(h)
backward-difference    (f(x) - f(x-h)) / h                         O(h)
central                (f(x+h) - f(x-h)) / 2h                      O(h^2)
five-point             (-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h))/12h O(h^4)
richardson             central differences at h, h/2, h/4, ...
                       extrapolated to h -> 0 (with an error estimate)
complex-step           Im f(x + ih) / h  (Squire & Trapp)          O(h^2), no
                                                                   cancellation
=====================  ==========================================  ==========

The default step balances truncation against round-off for each scheme:
sqrt(eps)·max(1, |x|) one-sided, eps^(1/3)·max(1, |x|) central, eps^(1/5)·max(1, |x|)
five-point, where eps is the machine epsilon of the data's dtype (float32 works).

Every scheme evaluates f in the data's dtype and answers in it. At complex points the
real schemes step along the real axis: for a holomorphic f, (f(z + h) - f(z)) / h tends
to f'(z) as for real z, so they give the holomorphic derivative (an op that is not
holomorphic is refused, as by every method). The complex step needs a real point (it
reads the derivative off the imaginary part) and refuses a complex one.

>>> import diffkit as dk
>>> x = dk.variable("x")
>>> fd = dk.FiniteDifference("complex-step")
>>> fd.derivative(dk.exp(x) * dk.sin(x), "x", at={"x": 1.0})
3.7560492270947274
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ..ir.node import Node
from ..ir.schedule import compile, topological_order
from .common import (
    Differentiator,
    as_output,
    check_at,
    dtype_of,
    flat_size,
    register_method,
    variable_shapes,
)

__all__ = ["FiniteDifference", "SCHEMES", "default_step", "stencil", "error_model", "optimal_step"]

SCHEMES = (
    "forward-difference",
    "backward-difference",
    "central",
    "five-point",
    "richardson",
    "complex-step",
)

#: (offsets, weights) of each real stencil: f'(x) ~ sum w_k f(x + o_k h) / h
_STENCILS = {
    "forward-difference": ((1.0, 0.0), (1.0, -1.0)),
    "backward-difference": ((0.0, -1.0), (1.0, -1.0)),
    "central": ((1.0, -1.0), (0.5, -0.5)),
    "five-point": ((2.0, 1.0, -1.0, -2.0), (-1 / 12, 8 / 12, -8 / 12, 1 / 12)),
}
#: truncation order of each scheme, used by the default step rule
_ORDER = {
    "forward-difference": 1,
    "backward-difference": 1,
    "central": 2,
    "five-point": 4,
    "richardson": 2,
    "complex-step": 2,
}


_SHRINKS = 12  # tenfold (Richardson: eightfold) step reductions tried at a domain edge
_RESTARTS = 16  # Richardson tableaus tried, each from a step ten times smaller


def default_step(scheme: str, x: float, eps: float = float(np.finfo(np.float64).eps)) -> float:
    """The rule-of-thumb step of ``scheme`` at ``x``: eps^(1/(p+1))·max(1, |x|) for a
    scheme of order p (sqrt(eps) one-sided, eps^(1/3) central); 1e-20·max(1,|x|) for the
    complex step, which has no cancellation; 0.1·max(1, log(1 + |x|)) as the first step
    of Richardson's sequence (its extrapolation needs steps on the scale on which the
    function varies, which for large |x| is rarely |x| itself: sin near x = 236)."""
    x = float(abs(x))  # |z| at a complex point
    if scheme == "complex-step":
        return 1e-20 * max(1.0, x)
    if scheme == "richardson":
        return 0.1 * max(1.0, math.log1p(x))
    return eps ** (1.0 / (_ORDER[scheme] + 1)) * max(1.0, x)


def stencil(scheme: str) -> tuple[tuple, tuple]:
    """(offsets, weights) of a real difference scheme."""
    return _STENCILS[scheme]


def _check_step(step) -> None:
    if step is None:
        return
    try:
        ok = math.isfinite(float(step)) and float(step) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"finite differences: the step must be a positive finite number, got {step!r}"
        )


def non_analytic_ops(f: Node | list) -> list[str]:
    """Names of the ops in ``f`` through which the complex step cannot run."""
    outs = [f] if isinstance(f, Node) else f
    return sorted(
        {n.op.name for n in topological_order(outs) if n.kind == "op" and not n.op.analytic}
    )


class FiniteDifference(Differentiator):
    """Derivatives by finite differences of the primal graph.

    Args:
        scheme: one of ``SCHEMES``.
        step: the step h (relative steps are not applied to a user step); the
            scheme's rule by default.
        richardson_terms: number of step halvings in Richardson extrapolation.

    After each call, ``last_cost.function_evaluations`` counts the evaluations of
    ``f``, ``last_cost.extra["step"]`` the step used last (after any shrinking at a
    domain edge; for Richardson the smallest step of the tableau it answered from) and,
    for Richardson, ``last_cost.extra["error_estimate"]`` the largest
    estimated absolute error.

    >>> import diffkit as dk
    >>> y = dk.variable("y")
    >>> dk.FiniteDifference("complex-step").derivative(y ** 2, "y", at={"y": 3.0})  # Im((3+ih)^2)/h
    6.0
    >>> round(dk.FiniteDifference("central").derivative(y ** 2, "y", at={"y": 3.0}), 8)
    6.0
    """

    def __init__(
        self, scheme: str = "central", step: float | None = None, richardson_terms: int = 6
    ):
        if scheme not in SCHEMES:
            raise ValueError(
                f"unknown finite-difference scheme {scheme!r}; known: {', '.join(SCHEMES)}"
            )
        _check_step(step)
        self.scheme = scheme
        self.name = scheme
        self.step = None if step is None else float(step)
        self.richardson_terms = int(richardson_terms)
        super().__init__()

    def __repr__(self) -> str:
        return f"FiniteDifference({self.scheme!r}, step={self.step!r})"

    # -- one directional derivative ------------------------------------------------
    def _eps(self, at) -> float:
        """The machine epsilon of the working dtype (float32's for float32 and complex64)."""
        return float(np.finfo(dtype_of(at)).eps)

    def _partial(self, evaluate: Callable, x0: float, eps: float, at_x0: Callable | None = None):
        """d/dt of ``evaluate(t)`` at ``x0`` (evaluate returns an array or a number);
        ``at_x0()`` gives the unshifted value, evaluated once for all coordinates.

        Where a shifted point falls outside the function's domain (a non-finite value
        where f(x0) is finite), the default step is shrunk, tenfold at a time."""
        h = self.step if self.step is not None else default_step(self.scheme, x0, eps)
        self.last_cost.extra["step"] = h
        if self.scheme == "complex-step":
            # Im f(x + ih) must stay small through every op: where it overflows (a large
            # derivative inside, cos(cosh(x)) at x = 56), a much smaller h is as exact
            for _ in range(7 if self.step is None else 1):  # h from 1e-20 down to 1e-230
                self.last_cost.function_evaluations += 1
                value = np.imag(evaluate(x0 + 1j * h)) / h
                if np.all(np.isfinite(value)) or not self._finite_at(at_x0, evaluate, x0):
                    break
                h *= 1e-35
            self.last_cost.extra["step"] = h
            return value
        if self.scheme == "richardson":
            return self._richardson(evaluate, x0, h, eps, at_x0)
        offsets, weights = _STENCILS[self.scheme]
        for _ in range(_SHRINKS if self.step is None else 1):
            total = 0.0
            for o, w in zip(offsets, weights):
                if w == 0.0 or o < 0 and (-o, -w) in zip(offsets, weights):
                    continue  # the second point of an antisymmetric pair
                if o > 0 and (-o, -w) in zip(offsets, weights):
                    # w (f(x + oh) - f(x - oh)): a constant f gives exactly 0
                    pair = np.asarray(evaluate(x0 + o * h)) - np.asarray(evaluate(x0 - o * h))
                    total = total + w * pair
                    self.last_cost.function_evaluations += 2
                    continue
                if o == 0.0 and at_x0 is not None:
                    total = total + w * np.asarray(at_x0())
                    continue
                # the shifted point is rounded to the dtype before use, like any input
                total = total + w * np.asarray(evaluate(x0 + o * h))
                self.last_cost.function_evaluations += 1
            if np.all(np.isfinite(total)) or not self._finite_at(at_x0, evaluate, x0):
                break
            h /= 10
        self.last_cost.extra["step"] = h
        return total / h

    def _finite_at(self, at_x0, evaluate, x0) -> bool:
        value = at_x0() if at_x0 is not None else evaluate(x0)
        return bool(np.all(np.isfinite(value)))

    def _richardson(self, evaluate, x0, h0, eps, at_x0=None):
        """Neville's tableau on central differences at h / 2^k, eliminating h^2, h^4, ...

        The first step h is shrunk until both shifted points are in the function's
        domain. The error estimate of an entry is its distance to its two neighbours in
        the tableau plus the round-off of its smallest step, amplified by the
        extrapolation. A central difference below the smallest step checks the tableau: a
        function that only looks smooth at its scale (a pole or dense jumps nearby)
        disagrees. Until a tableau passes the check with a relative estimate below 1e-8,
        it is rebuilt from a step ten times smaller. The entry with the smallest estimate
        among the tableaus that passed is returned (among all, if none did); where no
        finite estimate exists it is infinite (never NaN with 0)."""
        f0 = at_x0() if at_x0 is not None else evaluate(x0)
        if at_x0 is None:
            self.last_cost.function_evaluations += 1
        scale = np.max(np.abs(f0)) if np.all(np.isfinite(f0)) else np.inf
        candidates = []  # (trusted, estimate, value, smallest step)
        resolved = False  # a trusted tableau whose differences were not all equal
        anchor = None  # (value, estimate) of the first trusted, well-resolved tableau
        h = h0
        for _ in range(_RESTARTS if self.step is None else 1):
            value, err, h, flat = self._tableau(evaluate, x0, h, eps, scale)
            # a check below the tableau's steps: a function that only looks smooth at
            # their scale (a jump every half unit, a pole nearby) disagrees with it
            # (two checks: their disagreement is the noise of f at that scale, which may
            # exceed eps |f| when f is computed through cancellation, log(1 + tiny))
            h_check = h / 2 ** (self.richardson_terms + 2)
            checks, near = [], 0.0
            for hc in (h_check, 2 * h_check):
                self.last_cost.function_evaluations += 2
                plus, minus = np.asarray(evaluate(x0 + hc)), np.asarray(evaluate(x0 - hc))
                checks.append((plus - minus) / (2 * hc))
                near = max(near, np.max(np.abs(plus)), np.max(np.abs(minus)))
            noise = np.max(np.abs(checks[0] - checks[1]))
            allowed = 1e-4 * np.max(np.abs(value)) + 4 * noise + 8 * eps * near / h_check
            gap = np.max(np.abs(checks[0] - value))
            trusted = bool(gap <= allowed) and np.isfinite(err)
            if not trusted:
                err = max(err, gap) if np.isfinite(gap) else np.inf
            # differences that are all equal after a trusted tableau that resolved the
            # function are below its resolution (f computed as log(1 + tiny)), not slope 0
            if flat and resolved:
                trusted = False
            # a tableau far from a well-resolved earlier one has reached the function's
            # resolution (f computed through cancellation, log(1 + 4x^2) near 0: its
            # differences at small steps are a few round-off quanta, or 0), not a
            # better estimate
            if anchor is not None and trusted:
                far = np.max(np.abs(value - anchor[0]))
                if far > max(1e-4 * np.max(np.abs(anchor[0])), 10 * (anchor[1] + err)):
                    trusted = False
            if anchor is None and trusted and not flat and err <= 1e-6 * np.max(np.abs(value)):
                anchor = (value, err)
            resolved = resolved or (trusted and not flat)
            candidates.append((trusted, err, value, h / 2 ** (self.richardson_terms - 1)))
            if (trusted and err <= 1e-8 * np.max(np.abs(value))) or h < 1e3 * eps * max(
                1.0, abs(x0)
            ):
                break
            h /= 10
        pool = [c for c in candidates if c[0]] or candidates
        _, best_err, best, smallest = min(pool, key=lambda c: c[1])
        errs = self.last_cost.extra.setdefault("error_estimate", 0.0)
        self.last_cost.extra["error_estimate"] = max(errs, float(best_err))
        self.last_cost.extra["step"] = smallest
        return best

    def _tableau(self, evaluate, x0, h, eps, scale):
        """One Richardson tableau from the first step h: (best entry, its estimate, h, and
        whether all its central differences were equal)."""
        seen = [scale]  # the largest |f| met: the round-off of a difference scales with it

        def central(h):
            self.last_cost.function_evaluations += 2
            plus, minus = np.asarray(evaluate(x0 + h)), np.asarray(evaluate(x0 - h))
            with np.errstate(invalid="ignore"):
                seen[0] = np.nanmax([seen[0], np.max(np.abs(plus)), np.max(np.abs(minus))])
            return (plus - minus) / (2 * h)

        d = central(h)
        if self.step is None and np.isfinite(scale):
            for _ in range(_SHRINKS):
                if np.all(np.isfinite(d)):
                    break
                h /= 8
                d = central(h)
        rows = [[d]]
        firsts = [d]
        best, best_err = d, np.inf
        for k in range(1, self.richardson_terms):
            hk = h / 2**k
            row = [central(hk)]
            firsts.append(row[0])
            for j in range(1, k + 1):
                row.append(row[j - 1] + (row[j - 1] - rows[k - 1][j - 1]) / (4.0**j - 1))
            # round-off of a central difference at hk, amplified by up to 2 per level
            roundoff = 2.0**k * 2 * eps * seen[0] / hk
            for j in range(1, k + 1):
                err = (
                    np.max(np.abs(row[j] - row[j - 1]))
                    + np.max(np.abs(row[j] - rows[k - 1][j - 1]))
                    + roundoff
                )
                if np.isfinite(err) and err < best_err and np.all(np.isfinite(row[j])):
                    best, best_err = row[j], err
            rows.append(row)
        flat = all(np.array_equal(f, firsts[0]) for f in firsts[1:])
        return best, best_err, h, flat

    # -- the Differentiator calls ----------------------------------------------------
    def _check_analytic(self, f, at, ops: bool = True) -> None:
        """Refuse what Im f(x + ih)/h cannot differentiate: a complex point, and (``ops``)
        an op that is not analytic."""
        if self.scheme == "complex-step" and dtype_of(at).kind == "c":
            raise ValueError(
                "complex-step: the point is complex, and Im f(x + ih)/h is the derivative "
                "only at real x; use central or richardson (real steps) or forward/reverse mode"
            )
        if self.scheme == "complex-step" and ops:
            bad = non_analytic_ops(f)
            if bad:
                raise ValueError(
                    f"complex-step: op {bad[0]!r} is not analytic (not holomorphic), "
                    f"so Im f(x + ih)/h is not its derivative; use another scheme"
                    + (f" (also: {', '.join(bad[1:])})" if len(bad) > 1 else "")
                )

    def _jacobian(self, f: Node, at, names: list[str]) -> dict:
        check_at(f, at)
        self._check_analytic(f, at)
        program = compile(f)
        shapes = variable_shapes(f)
        eps = self._eps(at)
        base = {k: np.asarray(v) for k, v in at.items()}
        dtype = dtype_of(at, f)
        out = {}
        cache: list = []

        def at_x0():  # f at the unshifted point: one evaluation shared by all coordinates
            if not cache:
                cache.append(program(base, strict=False))
                self.last_cost.function_evaluations += 1
            return cache[0]

        for n in names:
            size = flat_size(shapes[n])
            x = np.asarray(base[n], dtype=dtype).ravel()
            cols = []
            for k in range(size):

                def evaluate(t, k=k):
                    xv = x.astype(np.result_type(x.dtype, np.asarray(t).dtype), copy=True)
                    xv[k] = t
                    return program({**base, n: xv.reshape(shapes[n])}, strict=False)

                with np.errstate(all="ignore"):  # NaN and inf are answers, not warnings
                    partial = self._partial(evaluate, x[k], eps, at_x0)
                cols.append(np.ravel(np.broadcast_to(partial, f.shape)))
            jac = np.array(cols).T if cols else np.zeros((flat_size(f.shape), 0))
            out[n] = as_output(jac.reshape(f.shape + shapes[n]).astype(dtype, copy=False))
        self.last_cost.passes = self.last_cost.function_evaluations
        return out

    def _hessian(self, f: Node, at, names: list[str]) -> np.ndarray:
        """Second differences: central ones (one-sided for the one-sided schemes), with f
        evaluated in the working dtype and steps along the real axis."""
        check_at(f, at)
        self._check_analytic(f, at, ops=False)  # second differences, no complex step
        program = compile(f)
        shapes = variable_shapes(f)
        eps = self._eps(at)
        dtype = dtype_of(at, f)
        real = np.finfo(dtype).dtype  # float32 for float32 and complex64
        wide = np.result_type(dtype, np.float64)  # the differences are combined in it
        base = {k: np.asarray(v) for k, v in at.items()}
        flat = np.concatenate([base[n].ravel() for n in names]).astype(dtype)
        sizes = [flat_size(shapes[n]) for n in names]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)

        def f_at(vec):
            vals = dict(base)
            for i, n in enumerate(names):
                vals[n] = vec[offsets[i] : offsets[i + 1]].reshape(shapes[n])
            self.last_cost.function_evaluations += 1
            return np.asarray(program(vals, strict=False), dtype=wide)[()]

        N = flat.size
        one_sided = self.scheme in ("forward-difference", "backward-difference")
        # error h^p + eps/h^2 is least near h = eps^(1/(p + 2)): p = 1 one-sided, 2 central
        power = 1 / 3 if one_sided else 1 / 4
        nominal = [
            self.step if self.step is not None else eps**power * max(1.0, abs(v)) for v in flat
        ]
        # steps the working dtype represents exactly at x: (x + h) - x
        re = flat.real.astype(real)
        steps = np.array([(r + real.type(h)) - r for r, h in zip(re, nominal)], dtype=real)
        steps = np.where(steps > 0, steps, np.asarray(nominal, dtype=real))
        H = np.zeros((N, N), dtype)
        sign = -1.0 if self.scheme == "backward-difference" else 1.0
        f0 = f_at(flat) if one_sided else None
        with np.errstate(all="ignore"):  # NaN and inf are answers, not warnings
            for i in range(N):
                for j in range(i, N):
                    ei = np.zeros(N, dtype)
                    ei[i] = steps[i]
                    ej = np.zeros(N, dtype)
                    ej[j] = steps[j]
                    hh = float(steps[i]) * float(steps[j])
                    if one_sided:
                        ei, ej = sign * ei, sign * ej
                        # f_xy ~ (f(x+ei+ej) - f(x+ei) - f(x+ej) + f(x)) / (hi hj)
                        value = (f_at(flat + ei + ej) - f_at(flat + ei) - f_at(flat + ej) + f0) / hh
                    else:
                        # f_xy ~ (f(x+ei+ej) - f(x+ei-ej) - f(x-ei+ej) + f(x-ei-ej)) / (4 hi hj)
                        value = (
                            f_at(flat + ei + ej)
                            - f_at(flat + ei - ej)
                            - f_at(flat - ei + ej)
                            + f_at(flat - ei - ej)
                        ) / (4 * hh)
                    H[i, j] = H[j, i] = value
        self.last_cost.passes = self.last_cost.function_evaluations
        return H


for _scheme in SCHEMES:
    register_method(_scheme, lambda s=_scheme: FiniteDifference(s))


def error_model(
    scheme: str, h, f: float, derivatives: dict, eps: float = float(np.finfo(np.float64).eps)
):
    """The textbook error bound of a scheme at step ``h``: truncation + round-off.

    Args:
        scheme: a real scheme or ``"complex-step"``.
        h: step(s), a number or an array.
        f: |f(x)|.
        derivatives: {k: |f^(k)(x)|} for the orders the scheme needs (2, 3 or 5).
        eps: machine epsilon.

    Returns:
        ``(truncation, roundoff)``: forward/backward h|f''|/2 and eps|f|/h; central
        h^2|f'''|/6 and eps|f|/(2h); five-point h^4|f^(5)|/30 and 3 eps|f|/(4h);
        complex step h^2|f'''|/6 and no cancellation term.
    """
    h = np.asarray(h, dtype=float)
    if scheme in ("forward-difference", "backward-difference"):
        return h * derivatives[2] / 2, eps * f / h
    if scheme == "central":
        return h**2 * derivatives[3] / 6, eps * f / (2 * h)
    if scheme == "five-point":
        return h**4 * derivatives[5] / 30, 0.75 * eps * f / h
    if scheme == "complex-step":
        return h**2 * derivatives[3] / 6, np.zeros_like(h)
    raise ValueError(f"no error model for scheme {scheme!r}")


def optimal_step(
    scheme: str, f: float, derivatives: dict, eps: float = float(np.finfo(np.float64).eps)
) -> tuple[float, float]:
    """The step minimising :func:`error_model`, and the error it predicts there."""
    if scheme in ("forward-difference", "backward-difference"):
        h = math.sqrt(2 * eps * f / derivatives[2])
    elif scheme == "central":
        h = (1.5 * eps * f / derivatives[3]) ** (1 / 3)
    elif scheme == "five-point":
        h = (30 * 0.75 * eps * f / (4 * derivatives[5])) ** (1 / 5)
    else:
        raise ValueError(f"no optimal step for scheme {scheme!r}")
    t, r = error_model(scheme, h, f, derivatives, eps)
    return h, float(t + r)


# ---- derivatives of any order ---------------------------------------------------------------

#: schemes that give the k-th derivative of a function of one variable (``nth_derivative``)
NTH_SCHEMES = (
    "central",
    "forward-difference",
    "backward-difference",
    "richardson",
    "complex-circle",
)


def stencil_weights(derivative: int, offsets) -> tuple[Fraction, ...]:
    """Exact weights w_i with f^(k)(x) ~ sum_i w_i f(x + o_i h) / h^k for integer offsets.

    The weights solve sum_i w_i o_i^m / m! = [m == k] for m = 0 .. len(offsets) - 1 in
    rational arithmetic (the Taylor expansion of each shifted value), so the stencil is
    exact for polynomials of degree below ``len(offsets)``.

    >>> [str(w) for w in stencil_weights(2, (-1, 0, 1))]
    ['1', '-2', '1']
    """
    pts = [Fraction(o) for o in offsets]
    n = len(pts)
    if not 0 <= derivative < n or len(set(pts)) != n:
        raise ValueError(
            f"stencil: derivative {derivative} needs more than {derivative} distinct offsets, "
            f"got {list(offsets)}"
        )
    # rows m: sum_i o_i^m w_i = m! [m == k]
    rows = [
        [p**m for p in pts] + [Fraction(math.factorial(m)) if m == derivative else 0]
        for m in range(n)
    ]
    for col in range(n):  # Gauss-Jordan elimination on fractions
        pivot = next(r for r in range(col, n) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [v / lead for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return tuple(row[n] for row in rows)


def central_stencil(derivative: int, accuracy: int = 2) -> tuple[tuple[int, ...], tuple]:
    """(offsets, exact weights) of the central stencil of the k-th derivative with error
    O(h^accuracy) (``accuracy`` even): offsets -p .. p with p = (k - 1) // 2 + accuracy / 2.

    >>> offsets, weights = central_stencil(3)
    >>> offsets, [str(w) for w in weights]
    ((-2, -1, 0, 1, 2), ['-1/2', '1', '0', '-1', '1/2'])
    """
    if derivative < 1 or accuracy < 2 or accuracy % 2:
        raise ValueError(
            f"central stencil: need a derivative order >= 1 and an even accuracy >= 2, got "
            f"{derivative} and {accuracy}"
        )
    p = (derivative - 1) // 2 + accuracy // 2
    offsets = tuple(range(-p, p + 1))
    return offsets, stencil_weights(derivative, offsets)


def one_sided_stencil(derivative: int, accuracy: int = 1, sign: int = 1):
    """(offsets, exact weights) of the forward (``sign=1``) or backward stencil of the
    k-th derivative with error O(h^accuracy): offsets 0 .. k + accuracy - 1."""
    offsets = tuple(sign * i for i in range(derivative + accuracy))
    return offsets, stencil_weights(derivative, offsets)


@dataclass
class NthResult:
    """A k-th derivative by finite differences, with what it cost and how far off it may be."""

    value: Any
    error_estimate: float
    evaluations: int
    step: float


def _nth_stencil(evaluate, x0, k, offsets, weights, h):
    """The stencil's value at step h, the noise scale of its values (max |f|, and the
    change of f across the rounding of the shifted points, eps |x| |f'|, as a multiple of
    eps), and the evaluations it took."""
    kind = complex if np.iscomplexobj(x0) else None
    values = [np.asarray(evaluate(x0 + o * h), dtype=kind) for o in offsets]
    total = sum(float(w) * v for w, v in zip(weights, values) if w != 0)
    big = max(float(np.max(np.abs(v))) for v in values)
    slope = float(np.max(np.abs(values[-1] - values[0]))) / ((offsets[-1] - offsets[0]) * h)
    return total / h**k, big + abs(x0) * slope, len(offsets)


def nth_difference(
    evaluate: Callable,
    x0,
    k: int,
    scheme: str = "central",
    eps=None,
    step=None,
    accuracy: int | None = None,
) -> NthResult:
    """The k-th derivative of ``evaluate`` (a function of one number, returning an array or
    a number) at ``x0`` by ``scheme`` (one of :data:`NTH_SCHEMES`), with an error estimate.

    - ``central``, ``forward-difference``, ``backward-difference``: the stencil of
      :func:`central_stencil` / :func:`one_sided_stencil` (accuracy 2 / 1 by default) at
      the step eps^(1/(k + accuracy)) max(1, |x|) that balances truncation against
      round-off; the estimate is the difference to the same stencil at twice the step
      (truncation, which it overestimates) plus the round-off bound eps max|f| sum|w|/h^k.
    - ``richardson``: Neville's tableau on central differences at steps h/2^i, eliminating
      h^2, h^4, ...; the entry with the smallest estimate (distance to its neighbours plus
      amplified round-off) is returned.
    - ``complex-circle``: Lyness and Moler's Cauchy integral on a circle in the complex plane
      (an FFT of m values), with Fornberg's radius search as numdifftools does it.

    Where a stencil point leaves the function's domain (a non-finite value), the step is
    shrunk tenfold. The estimate is infinite where nothing finite was found.

    >>> import numpy as np
    >>> r = nth_difference(np.exp, 0.0, 4, "richardson")
    >>> abs(r.value - 1) < 1e-6, abs(r.value - 1) <= r.error_estimate
    (True, True)
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"finite differences: the order must be a positive integer, got {k!r}")
    if scheme not in NTH_SCHEMES:
        raise ValueError(
            f"finite differences: no scheme {scheme!r} for derivatives of order {k}; "
            f"known: {', '.join(NTH_SCHEMES)}"
        )
    eps = float(np.finfo(float).eps) if eps is None else float(eps)
    with np.errstate(all="ignore"):  # NaN and inf are answers, not warnings
        if scheme == "complex-circle":
            result = _complex_circle(evaluate, x0, int(k), eps, step)
        elif scheme == "richardson":
            result = _nth_richardson(evaluate, x0, int(k), eps, step)
        else:
            result = _nth_plain(evaluate, x0, int(k), scheme, eps, step, accuracy)
    result.value = as_output(result.value)
    return result


def _nth_plain(evaluate, x0, k, scheme, eps, step, accuracy):
    if scheme == "central":
        accuracy = 2 if accuracy is None else accuracy
        offsets, weights = central_stencil(k, accuracy)
    else:
        accuracy = 1 if accuracy is None else accuracy
        offsets, weights = one_sided_stencil(
            k, accuracy, 1 if scheme == "forward-difference" else -1
        )
    h = step if step is not None else eps ** (1.0 / (k + accuracy)) * max(1.0, abs(x0))
    count = 0
    for _ in range(_SHRINKS if step is None else 1):
        value, big, n = _nth_stencil(evaluate, x0, k, offsets, weights, h)
        count += n
        if np.all(np.isfinite(value)):
            break
        h /= 10
    # the same stencil at 2h and h/2: truncation shows in the first, a function that only
    # looks smooth at the scale of h (a pole within the stencil) in the second
    coarse, big2, n = _nth_stencil(evaluate, x0, k, offsets, weights, 2 * h)
    fine, big3, n3 = _nth_stencil(evaluate, x0, k, offsets, weights, h / 2)
    count += n + n3
    wsum = sum(abs(float(w)) for w in weights)
    roundoff = eps * max(big, big2, big3) * wsum * 2**k / h**k
    change = max(float(np.max(np.abs(value - coarse))), float(np.max(np.abs(value - fine))))
    estimate = 2 * change + roundoff
    if estimate >= float(np.max(np.abs(value))):
        # not one digit is known: f may not even be smooth at the scale of the stencil (a
        # pole within it makes every step look alike), so the error has no bound
        estimate = math.inf
    return NthResult(value, estimate if np.isfinite(estimate) else math.inf, count, h)


def _nth_richardson(evaluate, x0, k, eps, step, restarts: int = 6):
    """Tableaus from first steps s, s/10, s/100, ... (s = max(1, |x|)): a tableau is
    trusted where a tableau from smaller steps, itself resolved (an estimate below a tenth
    of its value), confirms it and none contradicts it (a function that only looks smooth
    at the first tableau's scale, a pole nearby, disagrees). The trusted entry with the
    smallest estimate is returned; with none trusted, the estimate is infinite (never a
    silent answer)."""
    offsets, weights = central_stencil(k, 2)
    wsum = sum(abs(float(w)) for w in weights)
    scale = max(1.0, abs(x0))
    if step is not None:
        value, err, count, h = _nth_tableau(evaluate, x0, k, offsets, weights, wsum, eps, step)
        return NthResult(value, err, count, h)
    results, count = [], 0
    for i in range(restarts):
        value, err, n, h = _nth_tableau(
            evaluate, x0, k, offsets, weights, wsum, eps, scale / 10.0**i
        )
        count += n
        results.append((value, err, h))
    # a coarse tableau can be fooled (a pole within its steps), a fine one loses digits
    # to round-off, which its estimate counts. A tableau is trusted where a finer one whose
    # estimate is below a tenth of its value confirms it, and no such one contradicts it
    # (disagrees by more than both estimates); its estimate grows by the largest gap.
    trusted = []
    for i, (a, ea, ha) in enumerate(results):
        if not (np.isfinite(ea) and np.all(np.isfinite(a))):
            continue
        finer = [
            (b, eb)
            for b, eb, _ in results[i + 1 :]
            if np.all(np.isfinite(b)) and eb <= 0.1 * float(np.max(np.abs(b)))
        ]
        gaps = [float(np.max(np.abs(a - b))) for b, _ in finer]
        if finer and all(g <= ea + eb for g, (_, eb) in zip(gaps, finer)):
            trusted.append((a, ea + max(gaps), ha))
    if not trusted:  # nothing confirms any tableau: the answer is no answer
        value, err, h = min(results, key=lambda t: t[1] if np.isfinite(t[1]) else math.inf)
        err = math.inf
    else:
        value, err, h = min(trusted, key=lambda t: t[1])
    return NthResult(value, err if np.isfinite(err) else math.inf, count, h)


def _nth_tableau(evaluate, x0, k, offsets, weights, wsum, eps, h, levels: int = 10):
    """Neville's tableau on central differences at h / 2^i eliminating h^2, h^4, ...: its
    entry with the smallest estimate (distance to both neighbours plus the round-off of
    its step, amplified by the extrapolation)."""
    count = 0
    first, big, n = _nth_stencil(evaluate, x0, k, offsets, weights, h)
    count += n
    for _ in range(_SHRINKS):  # into the domain
        if np.all(np.isfinite(first)):
            break
        h /= 8
        first, big, n = _nth_stencil(evaluate, x0, k, offsets, weights, h)
        count += n
    rows = [[first]]
    best, best_err, best_h = first, math.inf, h
    for i in range(1, levels):
        hi = h / 2**i
        d, b, n = _nth_stencil(evaluate, x0, k, offsets, weights, hi)
        count += n
        big = max(big, b)
        row = [d]
        for j in range(1, i + 1):
            row.append(row[j - 1] + (row[j - 1] - rows[i - 1][j - 1]) / (4.0**j - 1))
        roundoff = eps * big * wsum / hi**k
        for j in range(1, i + 1):
            err = (
                float(np.max(np.abs(row[j] - row[j - 1])))
                + float(np.max(np.abs(row[j] - rows[i - 1][j - 1])))
                + 2.0**j * roundoff
            )
            if np.isfinite(err) and err < best_err and np.all(np.isfinite(row[j])):
                best, best_err, best_h = row[j], err, hi
        rows.append(row)
        if roundoff > 1e3 * best_err:
            break  # smaller steps only add round-off
    return best, best_err, count, best_h


def _circle_points(n: int) -> int:
    """Points on the circle for n derivatives, as numdifftools chooses them (8 up to 6,
    16 up to 12, 32 up to 25, then doubling)."""
    for limit, m in ((6, 8), (12, 16), (25, 32), (51, 64), (103, 128), (192, 256)):
        if n <= limit:
            return m
    raise ValueError(f"complex-circle: at most 192 derivatives, got order {n}")


def _complex_circle(evaluate, x0, k, eps, step, max_iter: int = 30, extrapolations: int = 3):
    """Fornberg's search for a radius at which the scaled Taylor coefficients b_n = a_n r^n
    decay geometrically (from 1 to 1e-4 across the m computed: larger radii make the
    high ones too large, smaller ones drown them in round-off), then Richardson
    extrapolation across the last radii in r^m (the aliasing error of the trapezoidal
    rule)."""
    m = _circle_points(k)
    n = np.arange(m)
    target = m * (1e-4 ** (1.0 / (m - 1))) ** n
    theta = 2 * np.pi * n / m
    r = 0.0059 if step is None else float(step)  # numdifftools' first radius
    ratio, previous, changes, after = 1.6, None, 0, 0
    radii, coefs, scales = [], [], []
    count = 0
    for it in range(max_iter):
        values = np.array(
            [np.asarray(evaluate(x0 + r * np.exp(1j * t)), dtype=complex) for t in theta]
        )
        count += m
        b = np.fft.fft(values, axis=0) / m
        shape = (m,) + (1,) * (b.ndim - 1)
        radii.append(r)
        coefs.append(b / r ** n.reshape(shape))
        scales.append(float(np.max(np.abs(values))) if np.all(np.isfinite(values)) else math.inf)
        if changes > 1:
            after += 1
            if after >= 1 + extrapolations:
                break
        mag = np.max(np.abs(b.reshape(m, -1)), axis=1) / target
        low, high = float(np.max(mag[: m // 2])), float(np.max(mag[m // 2 :]))
        smaller = not (np.isfinite(low) and np.isfinite(high)) or low < high
        if not smaller:  # the series must reproduce f inside the circle
            for z in (-0.4 + 0.3j, 0.7 + 0.2j, 0.02 - 0.06j):
                series = np.tensordot(z**n, b, axes=(0, 0))
                value = np.asarray(evaluate(x0 + r * z), dtype=complex)
                count += 1
                if np.max(np.abs(series - value)) > 1e-3 * np.max(np.abs(value)):
                    smaller = True
                    break
        if previous is not None and smaller != previous:
            changes += 1
        if changes:
            ratio = math.sqrt(ratio)
        r = r / ratio if smaller else r * ratio
        previous = smaller
    # Richardson in r^m between successive radii, twice
    est = [c[k] for c in coefs]
    first = [
        _extrapolate(est[i - 1], est[i], radii[i - 1], radii[i], m) for i in range(1, len(est))
    ]
    second = [
        _extrapolate(first[i - 1], first[i], radii[i - 1], radii[i + 1], m)
        for i in range(1, len(first))
    ]
    fact = float(math.factorial(k))
    candidates = []
    for seq in (second, first, est):
        for i in range(1, len(seq)):
            if np.all(np.isfinite(seq[i])) and np.all(np.isfinite(seq[i - 1])):
                rr = radii[min(i + 1, len(radii) - 1)]
                roundoff = 4 * eps * scales[min(i + 1, len(scales) - 1)] / rr**k
                # ten times the last two corrections: the estimate must cover the error
                change = np.max(np.abs(seq[i] - seq[i - 1]))
                if i > 1:
                    change = change + np.max(np.abs(seq[i] - seq[i - 2]))
                err = 10 * float(change) + roundoff
                candidates.append((err, seq[i]))
    if not candidates:
        return NthResult(np.nan * est[-1], math.inf, count, radii[-1])
    err, value = min(candidates, key=lambda c: c[0])
    if not np.iscomplexobj(x0):
        value = np.real(value)
    return NthResult(value * fact, err * fact, count, radii[-1])


def _extrapolate(a, b, ra, rb, m):
    # c(r) = c + e r^m: eliminate e between radii ra and rb
    q = (rb / ra) ** m
    return (b - q * a) / (1 - q)

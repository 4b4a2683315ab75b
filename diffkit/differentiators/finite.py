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
from typing import Callable

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

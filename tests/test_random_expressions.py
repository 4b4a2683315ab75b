"""Random expressions through every method, against a 50-digit truth.

Each expression is generated as text (so the parser is exercised too), evaluated at a
random point of a random scale, and differentiated by every method. The truth comes
from ``dk.reference_derivative``: mpmath's numerical differentiation of the mpmath
interpreter, which shares no code with diffkit's derivative rules. The test asserts:

* no method crashes or hangs (a method may decline with its documented reason: the
  complex step through a non-analytic op, SymPy past its limits);
* Richardson never answers NaN with an error estimate of 0;
* every disagreement with the truth is explained by the method's error model:
  automatic differentiation and SymPy's derivative by the floating-point error of the
  graph they evaluate (n · eps · the largest intermediate value), difference schemes
  by truncation (from the truth's higher derivatives) plus round-off (the float64
  error of f itself, divided by the step), Richardson by its own error estimate.
"""

from __future__ import annotations

import math
import os

import mpmath
import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit.differentiators.finite import stencil
from diffkit.differentiators.symbolic import prepare_for_diff, to_sympy
from diffkit.limits import BudgetExceeded, time_limit
from diffkit.ir.op import STRUCTURAL
from diffkit.ir.schedule import topological_order

EPS = float(np.finfo(np.float64).eps)
CONSTANTS = ["2", "3", "1/2", "0.1", "pi", "e", "5/3", "0.75"]


def vocabulary() -> dict[int, list[str]]:
    """The scalar functions the expressions draw from, read from the op registry: every
    elementwise op with an mpmath form (so that the truth can be computed), by its number
    of arguments. Ops whose derivative is zero by definition although their value changes
    (``stop_gradient``) are left out: no numerical truth agrees with them."""
    out: dict[int, list[str]] = {}
    for name, op in sorted(dk.registry().items()):
        if op.kind != "elementwise" or not callable(op.mpmath) or not op.differentiable:
            continue
        if isinstance(op.mpmath, type(dk.Unsupported(""))) or op.mpmath is STRUCTURAL:
            continue
        if any(s.zero_derivative for s in op.samples) and not op.discontinuous:
            continue
        low, high = op.parse_arity
        out.setdefault(low, []).append(name)
    return out


VOCABULARY = vocabulary()
NAMED = [(name, arity) for arity in sorted(VOCABULARY) for name in VOCABULARY[arity]]
STEP_OPS = {name for name, op in dk.registry().items() if op.discontinuous}
# make test runs a few hundred; DIFFKIT_RANDOM_EXPRESSIONS=N and DIFFKIT_RANDOM_SEED=S
# run a longer search
N_EXPRESSIONS = int(os.environ.get("DIFFKIT_RANDOM_EXPRESSIONS", "400"))
SEED = int(os.environ.get("DIFFKIT_RANDOM_SEED", "20261125"))


def _expression(rng, depth: int) -> str:
    if depth == 0 or rng.uniform() < 0.2:
        return "x" if rng.uniform() < 0.75 else str(rng.choice(CONSTANTS))
    kind = rng.uniform()
    if kind < 0.52:  # a named function, every one of the vocabulary equally likely
        fn, arity = NAMED[int(rng.integers(len(NAMED)))]
        args = ", ".join(_expression(rng, depth - 1) for _ in range(arity))
        return f"{fn}({args})"
    if kind < 0.88:
        op = rng.choice(["+", "-", "*", "/"])
        return f"({_expression(rng, depth - 1)} {op} {_expression(rng, depth - 1)})"
    return f"({_expression(rng, depth - 1)})**{rng.choice(['2', '3', '-1', '1/2', '0'])}"


def _point(rng) -> float:
    kind = rng.uniform()
    if kind < 0.6:
        return float(rng.uniform(-3, 3))
    if kind < 0.75:
        return float(rng.choice([-1, 1]) * rng.uniform(10, 300))
    if kind < 0.9:
        return float(rng.choice([-1, 1]) * 10 ** rng.uniform(-6, -1))
    return float(rng.integers(-3, 4) / 2)  # integers and halves: kinks and jumps


def _cases():
    rng = np.random.default_rng(SEED)
    cases, seen = [], set()
    while len(cases) < N_EXPRESSIONS:
        text = _expression(rng, int(rng.integers(1, 5)))
        if "x" not in text or text in seen:
            continue
        seen.add(text)
        cases.append((text, _point(rng)))
    return cases


def _local_error(node: dk.Node, value, inputs: list) -> float:
    """How far the op of ``node``, run in float64 on its float64 inputs, is from the same
    op at 50 digits on those inputs: what its implementation adds beyond the rounding of
    its result (scipy's digamma, by reflection, cancels near its negative zeros). 0 where
    there is no scalar mpmath form to measure against."""
    op = node.op
    if node.kind != "op" or node.shape != () or any(np.ndim(u) for u in inputs):
        return 0.0
    if not callable(op.mpmath) or op.mpmath is STRUCTURAL:
        return 0.0
    if isinstance(op.mpmath, type(dk.Unsupported(""))):
        return 0.0
    try:
        with mpmath.workdps(50):
            exact = op.mpmath(*[mpmath.mpf(float(u)) for u in inputs], **node.attrs)
            if not isinstance(exact, mpmath.mpf) or not mpmath.isfinite(exact):
                return 0.0
            return float(abs(mpmath.mpf(float(value)) - exact))
    except (ValueError, ZeroDivisionError, OverflowError, TypeError):
        return 0.0


def _evaluation_bound(graph: dk.Node, at: dict) -> float:
    """The first-order rounding error of evaluating ``graph`` in float64: each
    intermediate value v (constants included: a folded constant is rounded) carries a
    relative error of eps, plus what its op's implementation is measured to add at that
    point (:func:`_local_error`), which reaches the output multiplied by d graph / d v, so
    the bound is sum_v |d graph / d v| (4 eps |v| + local error of v) (infinite where an
    intermediate is not finite: the chain rule met a singular point, where IEEE
    arithmetic gives NaN or inf)."""
    order = [n for n in topological_order([graph]) if n.kind != "var"]
    if not order:
        return 0.0
    with np.errstate(all="ignore"):
        values = dk.compile(order)(at)
        sensitivities = dk.compile(dk.vjp_graph([graph], [dk.const(1.0)], order))(at)
        value_of = {id(n): v for n, v in zip(order, values)}
        value_of.update({id(dk.variable(k)): v for k, v in at.items()})
        terms = [
            np.sum(np.abs(np.asarray(s, dtype=float)) * np.abs(np.asarray(v, dtype=float)))
            for s, v in zip(sensitivities, values)
        ]
        local = [
            float(np.sum(np.abs(np.asarray(s, dtype=float))))
            * _local_error(n, v, [value_of.get(id(u), np.nan) for u in n.inputs])
            for n, s, v in zip(order, sensitivities, values)
        ]
    if not all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in values):
        return math.inf
    total = 4 * EPS * float(np.sum(terms)) + float(np.sum(local))
    return total if math.isfinite(total) else math.inf


def _largest_intermediate(f: dk.Node, at: dict) -> float:
    with np.errstate(all="ignore"):
        values = dk.compile(topological_order([f]))(at)
    return max(float(np.max(np.abs(np.asarray(v, dtype=float)))) for v in values)


def _condition(f: dk.Node, at: dict) -> float:
    """The largest condition number |u op'(u) / op(u)| of the one-input ops of f at the
    point (the factor by which an op amplifies the relative error of its input)."""
    order = [n for n in topological_order([f]) if n.kind == "op" and len(n.inputs) == 1]
    if not order:
        return 0.0
    with np.errstate(all="ignore"):
        values = dk.compile([n.inputs[0] for n in order] + order)(at)
    worst = 0.0
    t = dk.variable("condition_probe")
    for node, u, v in zip(order, values[: len(order)], values[len(order) :]):
        if np.shape(u) != () or not node.op.differentiable:
            continue
        probe = dk.apply(node.op, t, **node.attrs)
        with np.errstate(all="ignore"):
            slope = dk.derivative(probe, "condition_probe", {"condition_probe": float(u)})
            kappa = abs(float(u) * slope / float(v)) if v else math.inf
        if math.isfinite(kappa):
            worst = max(worst, kappa)
    return min(worst, 1e100)


def _bounded(seconds: float):
    """A decorator: the model term is infinite (no bound) when mpmath needs longer."""

    def wrap(fn):
        def run(*args):
            try:
                with time_limit(seconds, fn.__name__):
                    return fn(*args)
            except BudgetExceeded:
                return math.inf

        return run

    return wrap


@_bounded(2.0)
def _third_derivative(f: dk.Node, x: float) -> float:
    program = dk.compile(f)
    with mpmath.workdps(40):
        d3 = mpmath.diff(
            lambda t: program.run_objects({"x": t}, "mpmath", precision=None), mpmath.mpf(x), 3
        )
    return float(abs(d3)) if isinstance(d3, mpmath.mpf) and mpmath.isfinite(d3) else math.inf


def _value(f: dk.Node, at: dict, digits: int):
    """f at ``digits`` digits, or NaN where mpmath needs more than 2 s."""
    try:
        with time_limit(2.0, "a high-precision value"):
            return dk.evaluate(f, at, precision=digits)
    except BudgetExceeded:
        return mpmath.nan


def _primal_is_finite(f: dk.Node, at: dict) -> bool:
    with np.errstate(all="ignore"):
        values = dk.compile(topological_order([f]))(at)
    return all(np.all(np.isfinite(np.asarray(v, dtype=float))) for v in values)


def _within(value: float, truth, bound: float) -> bool:
    if abs(truth) > 1e300:  # beyond float64: inf is the honest answer
        return True
    if math.isnan(bound):  # a model term met inf - inf: no bound
        bound = math.inf
    if math.isnan(value):
        return math.isinf(bound)
    # the answer is a float64: its own rounding is always allowed, and the truth itself
    # (mpmath's numerical derivative) is exact only to about 1e-60
    allowed = bound + 2 * EPS * float(abs(truth)) + 1e-60
    return float(abs(mpmath.mpf(value) - truth)) <= allowed


@_bounded(2.0)
def _difference_bound(method: str, step: float, f, x: float, truth) -> float:
    """The scheme's truncation error, measured exactly (the stencil applied at 40 digits
    to f at the float64 points x + o h the scheme evaluates, minus the truth), plus its
    round-off (f's float64 error at each point and the rounding of the weighted sum,
    divided by the step)."""
    offsets, weights = stencil(method)
    program = dk.compile(f)
    exact, roundoff = mpmath.mpf(0), 0.0
    with mpmath.workdps(40):
        for o, w in zip(offsets, weights):
            if not w:
                continue
            point = float(np.float64(x) + o * step)
            value = program.run_objects({"x": mpmath.mpf(point)}, "mpmath")
            if not (isinstance(value, mpmath.mpf) and mpmath.isfinite(value)):
                return math.inf
            exact += w * value
            computed = dk.evaluate(f, {"x": point})
            roundoff += abs(w) * (float(abs(computed - value)) + 4 * EPS * float(abs(value)))
        truncation = float(abs(exact / step - truth))
    return 2 * truncation + 8 * roundoff / step


@pytest.mark.slow
def test_random_expressions_against_a_50_digit_truth():
    methods = {m: dk.get_method(m) for m in dk.methods()}
    methods["symbolic"] = dk.Symbolic(time_budget=10.0)
    counts = {
        "expressions": 0,
        "with truth": 0,
        "declined": 0,
        "another function in float64": 0,
        "jumps finer than the truth resolves": 0,
    }
    failures = []
    for text, x in _cases():
        f = dk.parse(text)
        if "x" not in {n.name for n in topological_order([f]) if n.kind == "var"}:
            continue  # the x folded away (x**0)
        counts["expressions"] += 1
        at = {"x": x}
        try:
            truth = dk.reference_derivative(f, "x", at)
        except dk.NoReference:
            truth = None
        counts["with truth"] += truth is not None
        value64 = dk.evaluate(f, at)
        finite = bool(np.isfinite(value64))
        steps = {n.op.name for n in topological_order([f]) if n.kind == "op"} & STEP_OPS
        if truth is not None and steps and _largest_intermediate(f, at) > 1e40:
            # floor(cosh(x)) at x = -291 jumps every 1e-126 in x: 65 digits do not resolve
            # the jumps, so mpmath's "truth" there is the derivative of cosh, not 0
            counts["jumps finer than the truth resolves"] += 1
            continue
        if truth is not None and finite:
            # IEEE's signed zeros make a few float64 functions differ from their exact
            # counterparts (atan2(-0.0, -1) = -pi): there the truth is of another function
            exact_f = _value(f, at, 40)
            if abs(value64 - exact_f) > 1e-6 * max(1, abs(exact_f)):
                counts["another function in float64"] += 1
                continue
        for name, method in methods.items():
            try:
                value = float(method.derivative(f, "x", at))
            except ValueError as err:
                declined = (name == "complex-step" and "not analytic" in str(err)) or isinstance(
                    err, dk.SymbolicError
                )
                if not declined:
                    failures.append(f"{name} crashed on {text} at x={x!r}: {err}")
                counts["declined"] += 1
                continue
            extra = method.last_cost.extra
            if name == "richardson":
                estimate = extra.get("error_estimate")
                if math.isnan(value) and not estimate:
                    failures.append(f"richardson: NaN with estimate {estimate} on {text} at {x}")
            if truth is None:
                continue
            if not finite and math.isnan(value):
                continue  # f's float64 value is NaN here (IEEE's signed zeros, overflow)
            if name in ("reverse", "forward", "complex-step"):
                # each method's own graph: reverse mode's folds its constant seed, forward
                # mode's and the complex step's carry a tangent through every op
                if name == "reverse":
                    bound = _evaluation_bound(dk.grad_graph(f, "x"), at)
                else:
                    seed = dk.variable("seed_tangent")
                    tangent = dk.jvp_graph([f], {dk.variable("x"): seed})[0]
                    bound = _evaluation_bound(tangent, {**at, "seed_tangent": 1.0})
                if name == "complex-step":
                    # complex elementary functions reduce their arguments and cancel
                    # inside (arctanh near 1): their relative error grows with the size of
                    # what they are applied to and with their condition number; terms of
                    # order h^2 in the real parts round at eps h^2, and imaginary parts
                    # that cancel exactly leave residues of order eps^2; and the truncation
                    # h^2 |f'''| / 6 of the step
                    largest = _largest_intermediate(f, at)
                    bound *= (1 + largest) * (1 + _condition(f, at))
                    if largest < 1e100:
                        bound += 16 * EPS * (extra["step"] + EPS) * (1 + largest) ** 2
                    else:
                        bound = math.inf
                    bound += _third_derivative(f, x) * extra["step"] ** 2 / 6
            elif name == "symbolic":
                # SymPy's algebra (x - x = 0, log(0) = zoo) is not IEEE's where an
                # intermediate of f is infinite or NaN: there its answer may differ
                # otherwise its answer is SymPy's derivative, exact but for the float64
                # evaluation of the expression, whose error is measured at 120 digits
                expr, symbols = to_sympy(f)
                d = dk.from_sympy(sympy.diff(prepare_for_diff(expr), symbols["x"]))
                try:
                    exact = _value(d, at, 120)
                except (OverflowError, ValueError):  # mpmath cannot either
                    exact = None
                real = isinstance(exact, mpmath.mpf) and mpmath.isfinite(exact)
                if not _primal_is_finite(f, at) or not real or not math.isfinite(value):
                    bound = math.inf  # (an overflow or 0 * inf in SymPy's form, measured)
                else:
                    bound = 4 * float(abs(mpmath.mpf(value) - exact))
            elif name == "richardson":
                # its estimate, plus the error model of a central difference at its
                # smallest step: the estimate sees neither how far f's float64 values are
                # from f nor a function that is smooth only below that step (dense jumps)
                bound = 10 * extra["error_estimate"] + _difference_bound(
                    "central", extra["step"], f, x, truth
                )
            else:
                bound = _difference_bound(name, extra["step"], f, x, truth)
            if not _within(value, truth, bound):
                failures.append(
                    f"{name} on {text} at x={x!r}: {value!r} vs truth "
                    f"{mpmath.nstr(truth, 17)}, error "
                    f"{float(abs(mpmath.mpf(value) - truth)):.3g} > bound {bound:.3g}"
                )
    assert not failures, f"{len(failures)} unexplained:\n" + "\n".join(failures[:25])
    # the test is not vacuous: most expressions have a truth to compare against
    assert counts["with truth"] >= 0.6 * counts["expressions"], counts
    assert counts["another function in float64"] <= 0.02 * counts["expressions"], counts
    assert counts["jumps finer than the truth resolves"] <= 0.02 * counts["expressions"], counts


def test_the_expressions_reach_every_scalar_op():
    """Every op of the vocabulary (every scalar op of the registry) occurs in some
    expression of the run: a newly registered op is fuzzed by being registered."""
    texts = " ".join(text for text, _ in _cases())
    missing = [n for names in VOCABULARY.values() for n in names if f"{n}(" not in texts]
    assert not missing, f"ops that no expression uses: {missing}"

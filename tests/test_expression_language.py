"""The expression language: the parser, its safety, exact rationals, the SymPy round trip,
and the semantics users of JAX, autograd and PyTorch rely on."""

from __future__ import annotations

import time
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit.cli import main
from diffkit.differentiators.symbolic import to_sympy
from diffkit.ir.op import STRUCTURAL, Unsupported
from diffkit.parse import FUNCTIONS

x, y = dk.variables("x y")


# ---- grammar and exact numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, at, expected",
    [
        ("x/3", {"x": 1.0}, 1 / 3),
        ("sqrt(x)", {"x": 4.0}, 2.0),
        ("exp(-x**2/2)", {"x": 1.0}, np.exp(-0.5)),
        ("-x**2", {"x": 3.0}, -9.0),  # unary minus binds weaker than **
        ("2**-x", {"x": 1.0}, 0.5),
        ("2**3**2", {}, 512.0),  # ** is right-associative
        ("x^2", {"x": 3.0}, 9.0),  # ^ is a power, as in SymPy
        ("7 % 3 + x % 3", {"x": -1.0}, 3.0),  # Python's (and numpy's) mod
        ("x > 0", {"x": 2.0}, 1.0),
        ("log(8, 2)", {}, 3.0),
        ("max(x, y, 2) + min(x, y)", {"x": 1.0, "y": 5.0}, 6.0),
        ("atan2(y, x)", {"x": -1.0, "y": 0.0}, np.pi),
        ("pi + e - E", {}, np.pi),
        ("Piecewise((x, x > 0), (0, True))", {"x": -2.0}, 0.0),
        ("1.5e3 * x", {"x": 2.0}, 3000.0),
    ],
)
def test_parse_values(text, at, expected):
    assert dk.evaluate(dk.parse(text), at) == pytest.approx(expected, rel=1e-15)


def test_numbers_stay_exact_until_evaluated():
    third = dk.parse("1/3")
    assert third.kind == "const" and third.exact == Fraction(1, 3)
    assert dk.parse("0.1").exact == Fraction(1, 10)
    assert dk.parse("3 * (1/3)").exact == 1  # exact arithmetic while building
    # mpmath sees one third and one tenth, not their float64 roundings
    value = dk.evaluate(dk.parse("x/3 + 0.1"), {"x": 1}, precision=40)
    with mpmath.workdps(40):
        assert abs(value - (mpmath.mpf(1) / 3 + mpmath.mpf(1) / 10)) < mpmath.mpf(10) ** -38
    # and SymPy gets the rationals the user wrote
    expr, _ = to_sympy(dk.parse("x/3 + 0.1"))
    assert expr == sympy.Symbol("x", real=True) / 3 + sympy.Rational(1, 10)
    # pi and e are exact in mpmath, rounded once in float64
    assert dk.evaluate(dk.parse("pi"), {}) == np.pi
    assert abs(dk.evaluate(dk.parse("sin(pi)"), {}, precision=50)) < mpmath.mpf(10) ** -45


def test_constants_that_are_not_rational_stay_exact_nodes():
    c = dk.parse("log(2)")
    assert c.kind == "op"  # kept, so that mpmath computes ln 2 to any precision
    assert dk.evaluate(c, {}) == np.log(2)
    with mpmath.workdps(40):
        assert abs(dk.evaluate(c, {}, precision=40) - mpmath.log(2)) < mpmath.mpf(10) ** -38


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("x + * 2", "unexpected '*'", 5),
        ("foo(x) + 1", "unknown function 'foo'", 1),
        ("exp", "'exp' is a function and needs arguments", 1),
        ("pi(2)", "'pi' is a constant", 1),
        ("(x", "expected ')'", 3),
        ("x +", "ends too early", 4),
        ("2x", "use * for multiplication", 2),
        ("x.real", "attribute access", 2),
        ("x[0]", "subscripts", 2),
        ("'x'", "strings", 1),
        ("atan2(x)", "atan2 takes 2 arguments, got 1", 1),
        ("x < y < 1", "chained comparisons", 7),
        ("1e5000", "exponent beyond", 1),
    ],
)
def test_parse_errors_name_the_problem_and_column(text, message, column):
    with pytest.raises(dk.ParseError) as info:
        dk.parse(text)
    err = info.value
    assert message in str(err) and f"at column {column}" in str(err)
    assert "\n" not in str(err)
    assert err.column == column
    assert err.caret.splitlines()[1].index("^") == column + 1  # under the column, indented 2


def test_empty_and_non_string_input():
    with pytest.raises(dk.ParseError, match="empty"):
        dk.parse("  ")
    with pytest.raises(TypeError, match="from_sympy"):
        dk.parse(sympy.Symbol("x"))


# ---- safety: nothing the user writes is run --------------------------------------------

PAYLOADS = [
    "x.__class__.__new__.__globals__['os'].system('touch /tmp/diffkit-pwned')",
    "__import__('os').system('touch /tmp/diffkit-pwned')",
    "exec('import os')",
    "eval('1')",
    "lambda: 1",
    "__builtins__",
    "x.__class__",
    "getattr(x, '__class__')",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "open('/etc/passwd')",
    "x; import os",
    "Symbol('x')",
    "sympify('x')",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_text_runs_nothing_in_any_entry_point(payload, tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = payload.replace("/tmp/diffkit-pwned", str(marker))
    with pytest.raises(dk.ParseError):
        dk.parse(payload)
    with pytest.raises(dk.ParseError):
        dk.compare(payload, at={"x": 1.0})
    assert main(["compare", payload, "--at", "x=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert main(["graph", payload, "--out", str(tmp_path / "g.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(TypeError, match="dk.parse"):
        dk.from_sympy(payload)
    with pytest.raises(dk.EvaluationError, match="SymPy interpreter takes numbers"):
        dk.compile(x * 2).run_objects({"x": payload}, "sympy")
    with pytest.raises(dk.EvaluationError, match="mpmath interpreter takes numbers"):
        dk.compile(x * 2).run_objects({"x": payload}, "mpmath")
    assert not marker.exists()


def test_names_that_could_reach_python_are_refused():
    for name in ("__class__", "__import__", "lambda"):
        with pytest.raises(dk.ParseError):
            dk.parse(f"{name} + 1")


@pytest.mark.parametrize(
    "text",
    [
        "x*9**9**9**9",
        "2**10**10",
        "(" * 10_000,
        "x" + "+x" * 6000,  # longer than MAX_LENGTH
        "1" * 2000,
        "1e999999999",
        "-" * 5000 + "x",
        "x" + "**x" * 3000,
        "sin(" * 500 + "x" + ")" * 500,
        "Piecewise(" * 200,
    ],
)
def test_pathological_input_is_answered_fast(text):
    start = time.perf_counter()
    try:
        f = dk.parse(text)
    except dk.ParseError as err:
        assert "\n" not in str(err)
    else:
        dk.evaluate(f, {"x": 1.0})
    # a bound far above the milliseconds this takes: it catches a hang, not a slow machine
    assert time.perf_counter() - start < 30.0


def test_huge_constants_evaluate_without_hanging():
    start = time.perf_counter()
    assert dk.evaluate(dk.parse("x*9**9**9**9"), {"x": 1.0}) == np.inf
    rows = dk.compare("exp(exp(exp(x)))", at={"x": 10.0}, methods=["reverse"])
    assert rows[0]["truth"] is None and "budget" in rows[0]["truth_note"]
    assert time.perf_counter() - start < 60.0  # the reference gave up: no hang


# ---- the vocabulary and the SymPy round trip ----------------------------------------------


def test_every_function_of_the_issue_is_known_to_the_parser_and_diffkit():
    names = (
        "atan asin acos sinh cosh asinh acosh atanh erf erfc expm1 log2 log10 exp2 cbrt hypot "
        "atan2 prod min max mod floor ceil round trunc sign clip logaddexp remainder"
    ).split()
    for name in names:
        assert name in FUNCTIONS, name
    for name in (
        "arcsin arccos arctan arctan2 sinh cosh arcsinh arccosh arctanh expm1 exp2 log2 log10 "
        "logaddexp cbrt hypot erf erfc floor ceil round trunc sign mod remainder clip prod min "
        "cumsum equal not_equal less less_equal asin acos atan atan2 asinh acosh atanh"
    ).split():
        assert callable(getattr(dk, name)), name


SCALAR_OPS = sorted(
    name
    for name, op in dk.registry().items()
    if callable(op.sympy)
    and op.sympy is not STRUCTURAL
    and not isinstance(op.sympy, Unsupported)
    and any(all(s == () for s in smp.shapes) for smp in op.samples)
)


@pytest.mark.parametrize("name", SCALAR_OPS)
def test_every_op_prints_through_sympy_and_parses_back(name):
    """str(SymPy) of op(a, b, ...) parses to a graph with the same SymPy form and values."""
    op = dk.registry()[name]
    sample = next(s for s in op.samples if all(sh == () for sh in s.shapes))
    args = [dk.variable(f"a{i}") for i in range(len(sample.shapes))]
    f = dk.apply(op, *args, **sample.attrs)
    expr, _ = to_sympy(f)
    g = dk.parse(str(expr))
    assert to_sympy(g)[0] == expr, (str(expr), str(to_sympy(g)[0]))
    rng = np.random.default_rng(5)
    values = (
        sample.make(rng) if sample.make else [rng.uniform(sample.low, sample.high) for _ in args]
    )
    at = {a.name: float(v) for a, v in zip(args, values)}
    assert dk.evaluate(g, at) == pytest.approx(dk.evaluate(f, at), rel=1e-12, abs=1e-14)


def test_from_sympy_understands_what_sympy_derivatives_contain():
    s = sympy.Symbol("s", real=True)
    at0, at1 = {"s": 0.0}, {"s": 2.0}
    assert dk.evaluate(dk.from_sympy(sympy.Heaviside(s)), at0) == 0.5
    assert np.isnan(dk.evaluate(dk.from_sympy(sympy.DiracDelta(s)), at0))  # undefined at 0
    assert dk.evaluate(dk.from_sympy(sympy.DiracDelta(s)), at1) == 0.0
    assert np.isnan(dk.evaluate(dk.from_sympy(sympy.zoo + s), at1))
    assert dk.evaluate(dk.from_sympy(sympy.oo + s), at1) == np.inf
    pw = sympy.Piecewise((s, s > 1), (-s, True))
    assert dk.evaluate(dk.from_sympy(pw), at1) == 2.0
    assert dk.evaluate(dk.from_sympy(pw), {"s": 0.5}) == -0.5
    with pytest.raises(dk.ParseError, match="unevaluated"):
        dk.from_sympy(sympy.Derivative(sympy.Function("g")(s), s))
    with pytest.raises(TypeError):
        dk.from_sympy("s + 1")


# ---- the methods on the new vocabulary --------------------------------------------------


@pytest.mark.parametrize(
    "text, point",
    [
        ("atan(x)*asinh(x)", 0.7),
        ("erf(x) - erfc(x)", 0.3),
        ("expm1(x)/log1p(x)", 1e-3),
        ("log2(x) + log10(x) + exp2(x)", 1.7),
        ("cbrt(x)", -8.0),
        ("hypot(x, 3) + atan2(x, -2)", 1.5),
        ("logaddexp(x, 2*x)", 600.0),
        ("acosh(x) + atanh(1/x)", 2.5),
    ],
)
def test_every_method_agrees_on_the_new_functions(text, point):
    f = dk.parse(text)
    truth = float(dk.reference_derivative(f, "x", {"x": point}))
    tolerance = {"forward-difference": 1e-6, "backward-difference": 1e-6, "central": 1e-8}
    for method in dk.methods():
        value = dk.derivative(f, "x", {"x": point}, method=method)
        rel = tolerance.get(method, 1e-11)
        assert value == pytest.approx(truth, rel=rel, abs=rel), method


def test_compare_keeps_the_table_when_a_method_does_not_apply():
    rows = {r["method"]: r for r in dk.compare("relu(x)", at={"x": 0.5})}
    assert rows["complex-step"]["note"] == "n/a: relu is not analytic"
    assert rows["complex-step"]["derivative"] is None
    assert rows["reverse"]["derivative"] == 1.0 and rows["reverse"]["rel_error"] == 0.0
    # no truth at a kink: the rows say so instead of printing errors against noise
    rows = dk.compare("abs(x)", at={"x": 0.0})
    assert all(r["truth"] is None and r["abs_error"] is None for r in rows)
    assert "one-sided derivatives are -1.0 (left) and 1.0 (right)" in rows[0]["truth_note"]
    with pytest.raises(ValueError, match="digits"):
        dk.compare("x", at={"x": 1.0}, digits=0)


def test_compare_cli_prints_na_rows_and_checks_digits(capsys):
    assert main(["compare", "relu(x)", "--at", "x=0.5"]) == 0
    out = capsys.readouterr().out
    assert "complex-step         n/a: relu is not analytic" in out
    assert "central" in out and "richardson" in out
    assert main(["compare", "x", "--at", "x=1", "--digits", "-3"]) == 2
    assert "--digits" in capsys.readouterr().err
    assert main(["compare", "sqrt(x)", "--at", "x=-1"]) == 0
    assert "truth: none (f is not a finite real number" in capsys.readouterr().out


def test_richardson_at_large_arguments_and_near_a_domain_edge():
    rich = dk.FiniteDifference("richardson")
    value = rich.derivative(dk.sin(x), "x", {"x": -236.4})
    assert value == pytest.approx(np.cos(-236.4), rel=1e-10)
    assert rich.last_cost.extra["error_estimate"] < 1e-8
    value = rich.derivative(dk.log(x), "x", {"x": 1e-3})
    assert value == pytest.approx(1000.0, rel=1e-8)  # numdifftools: 1000
    # where no estimate exists it is infinite, never NaN with 0
    value = rich.derivative(dk.sqrt(x), "x", {"x": -1.0})
    assert np.isnan(value) and rich.last_cost.extra["error_estimate"] == np.inf


def test_complex_step_keeps_the_real_part_of_small_arguments():
    for f, d in ((dk.log1p(x), 1 / (1 + 1e-18)), (dk.softplus(x), 0.5)):
        z = dk.evaluate(f, {"x": 1e-18 + 1e-30j})
        assert z.real == pytest.approx(dk.evaluate(f, {"x": 1e-18}), rel=1e-15)
        assert z.imag / 1e-30 == pytest.approx(d, rel=1e-15)


def test_symbolic_never_crashes_on_kinks_and_steps():
    sym = dk.Symbolic()
    assert sym.derivative(dk.parse("abs(x) + sign(x)"), "x", {"x": -2.0}) == -1.0
    assert sym.derivative(dk.parse("mod(x, 3) + floor(x)"), "x", {"x": 4.5}) == 1.0
    assert sym.derivative(dk.parse("relu(x)*x"), "x", {"x": 2.0}) == 4.0
    assert np.isnan(sym.derivative(dk.parse("sign(x)"), "x", {"x": 0.0}))  # undefined
    tiny = dk.Symbolic(max_size=5)
    with pytest.raises(dk.SymbolicLimitError, match="max_size"):
        tiny.derivative(dk.parse("exp(sin(x))*cos(x)"), "x", {"x": 1.0})


# ---- semantics ---------------------------------------------------------------------------


def test_zero_to_the_y_has_derivative_zero_in_y():
    for method in ("reverse", "forward", "symbolic"):
        assert dk.derivative(dk.power(0.0, y), "y", {"y": 2.0}, method=method) == 0.0


def test_derivatives_that_fold_to_constants_still_evaluate_and_differentiate():
    assert dk.gradient(x**0, {"x": 2.0}) == {"x": 0.0}
    d = x**2
    for expected in (6.0, 2.0, 0.0, 0.0):
        d = dk.grad_graph(d, "x")
        assert dk.evaluate(d, {"x": 3.0}) == expected
    assert dk.hessian(x**2, {"x": 1.0}).tolist() == [[2.0]]


def test_gradient_with_respect_to_unused_inputs_is_zeros_of_their_shape():
    w = np.ones((2, 3))
    for method in dk.methods():
        g = dk.gradient(x * 2, {"x": 1.0, "W": w}, method=method)
        assert np.array_equal(g["W"], np.zeros((2, 3))), method
        assert g["x"] == pytest.approx(2.0)
    assert dk.derivative(x * 2, "y", {"x": 1.0, "y": 5.0}) == 0.0
    H = dk.hessian(x**3, {"x": 1.0, "y": 2.0})
    assert H.tolist() == [[6.0, 0.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="no value for it"):
        dk.gradient(x * 2, {"x": 1.0}, wrt="q")


def test_extra_names_are_accepted_and_strict_checks_them():
    model = dk.nn.LeNet5()
    out = model(dk.variable("input", (1, 1, 32, 32)))
    logits = dk.evaluate(out, {**model.inputs(), "input": np.zeros((1, 1, 32, 32)), "junk": 1.0})
    assert logits.shape == (1, 10)
    with pytest.raises(dk.EvaluationError, match="unknown variable 'junk'"):
        dk.evaluate(x, {"x": 1.0, "junk": 1.0}, strict=True)


def test_float32_in_float32_out_including_folded_constants():
    v = dk.variable("v", (3,))
    at = {"v": np.ones(3, np.float32), "x": np.float32(2.0)}
    assert dk.evaluate(v * 0 + 1, at).dtype == np.float32
    assert dk.evaluate(x**0, at).dtype == np.float32
    assert dk.evaluate(dk.erf(v) + dk.cbrt(v) + dk.logaddexp(v, v), at).dtype == np.float32
    for method in dk.methods():
        g = dk.gradient(dk.sum(v * 3), at, method=method)
        assert g["v"].dtype == np.float32, method
        assert np.asarray(g["x"]).dtype == np.float32, method


def test_build_time_folds_never_change_a_value():
    for value in (np.inf, -np.inf, np.nan, 0.0, -2.5):
        at = {"x": value}
        for expr, reference in (
            (x - x, value - value),
            (0 * x, 0 * value),
            (x / x, value / value if value else np.nan),
            (x * 1 + 0, value),
            (x**1, value),
            (x**0, 1.0),
            (-(-x), value),
        ):
            got = dk.evaluate(expr, at)
            assert (np.isnan(got) and np.isnan(reference)) or got == reference, (expr, value)


def test_internal_names_cannot_collide_with_a_users():
    with pytest.raises(ValueError, match="reserved"):
        dk.variable("%tangent[x]")
    user = dk.variable("tangent[x]")  # a user's own name is just a name
    f = x * user
    primal, tangent = dk.jvp(f, {"x": 2.0, "tangent[x]": 5.0}, {"x": 1.0})
    assert (primal, tangent) == (10.0, 5.0)
    assert dk.derivative(f, "x", {"x": 2.0, "tangent[x]": 5.0}, method="forward") == 5.0


def test_invalid_axes_raise_naming_the_op():
    W = dk.variable("W", (2, 3))
    with pytest.raises(dk.ShapeError, match="transpose: axis 5 is out of range"):
        dk.transpose(W, (0, 5))
    with pytest.raises(dk.ShapeError, match="cumsum: axis 2 is out of range"):
        dk.cumsum(W, axis=2)
    with pytest.raises(dk.ShapeError, match="prod: axis -3 is out of range"):
        dk.prod(W, axis=-3)


def test_prod_gradient_is_exact_at_zeros_and_cumsum_is_linear():
    v = dk.variable("v", (4,))
    at = {"v": np.array([2.0, 0.0, 3.0, 0.0])}
    assert dk.gradient(dk.prod(v), at)["v"].tolist() == [0.0, 0.0, 0.0, 0.0]
    at = {"v": np.array([2.0, 0.0, 3.0, 5.0])}
    assert dk.gradient(dk.prod(v), at)["v"].tolist() == [0.0, 30.0, 0.0, 0.0]
    J = dk.jacobian(dk.cumsum(v), at, wrt="v")
    assert np.array_equal(J, np.tril(np.ones((4, 4))))
    assert dk.evaluate(dk.min(v), at) == 0.0


INFIX = {"add", "sub", "mul", "div", "mod", "pow", "neg"}


@pytest.mark.parametrize("name", [n for n in SCALAR_OPS if n in FUNCTIONS or n in INFIX])
def test_repr_is_infix_text_that_parses_back(name):
    op = dk.registry()[name]
    sample = next(s for s in op.samples if all(sh == () for sh in s.shapes))
    args = [dk.variable(f"a{i}") for i in range(len(sample.shapes))]
    f = dk.apply(op, *args, **sample.attrs) * 2 - args[0] / 3
    assert "(...)" not in repr(f)
    rng = np.random.default_rng(9)
    values = (
        sample.make(rng) if sample.make else [rng.uniform(sample.low, sample.high) for _ in args]
    )
    at = {a.name: float(v) for a, v in zip(args, values)}
    assert dk.evaluate(dk.parse(repr(f)), at) == pytest.approx(dk.evaluate(f, at), rel=1e-14)


def test_repr_of_tensors_and_shared_subexpressions():
    W = dk.variable("W", (2, 3))
    assert repr(dk.tanh(W) * 2).endswith(": (2, 3)")
    x = dk.variable("x")
    deep = x
    for _ in range(200):  # exponentially many paths, one text per node, cut at a limit
        deep = deep * deep + 1
    assert len(repr(deep)) <= 300 and repr(deep).endswith("...")
    assert str(x + 1) == "x + 1"


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"diffkit {dk.__version__}"


def test_jupyter_latex_display():
    f = dk.parse("exp(-x**2/2)/sqrt(2*pi)")
    latex = f._repr_latex_()
    assert latex.startswith("$") and "e^{- \\frac{x^{2}}{2}}" in latex and "\\pi" in latex
    conv = dk.conv2d(dk.variable("i", (1, 1, 4, 4)), dk.variable("w", (1, 1, 3, 3)))
    assert conv._repr_latex_() is None  # no SymPy form: Jupyter shows the text instead

"""From SymPy into the IR, read from the op registry: every SymPy class a record claims
converts back into that op, and what SymPy's derivatives of piecewise functions contain
(DiracDelta and its derivatives, Heaviside, Piecewise) evaluates where the derivative
exists."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy

import diffkit as dk
from diffkit.ir.op import front_index


@pytest.mark.parametrize(
    "f,at",
    [
        ("abs(x)**3", {"x": 0.7}),
        ("sign(x)*x**2", {"x": -0.4}),
        ("relu(x)*sin(x)", {"x": 0.9}),
        ("abs(x*y)", {"x": 0.7, "y": -1.3}),
        ("floor(x)*x**2", {"x": 1.4}),
        ("Heaviside(x)*x**3", {"x": 0.5}),
    ],
)
def test_symbolic_hessians_of_piecewise_functions_away_from_their_kinks(f, at):
    """SymPy writes DiracDelta(x, 1) and Heaviside in these Hessians: 0 away from the
    kink, so the symbolic Hessian equals forward-over-reverse."""
    f = dk.parse(f)
    np.testing.assert_allclose(
        dk.hessian(f, at, method="symbolic"), dk.hessian(f, at), rtol=1e-12, atol=1e-15
    )


def test_dirac_delta_and_its_derivatives_are_zero_away_from_the_root_and_undefined_at_it():
    x = sympy.Symbol("x", real=True)
    for k in range(3):
        node = dk.from_sympy(sympy.DiracDelta(x - 1, k) if k else sympy.DiracDelta(x - 1))
        assert dk.evaluate(node, {"x": 0.5}) == 0
        assert math.isnan(dk.evaluate(node, {"x": 1.0}))


def test_every_claimed_sympy_class_converts_back():
    """Each class a record names in ``sympy_from`` is understood by the converter."""
    x, y = sympy.symbols("x y", real=True)
    checked = 0
    for cls, (record, converter) in front_index()["sympy"].items():
        if converter is not None or not isinstance(cls, type):
            continue
        low, high = record.parse_arity
        args = [x, y, x + 2][: max(low, 1) if high is None else low]
        if issubclass(cls, sympy.logic.boolalg.BooleanFunction):  # And, Or, Not
            args = [x > 0, y < sympy.Rational(1, 2)][: len(args)]
        try:
            expr = cls(*args, evaluate=False)
        except TypeError:
            expr = cls(*args)
        if not isinstance(expr, cls):  # SymPy simplified it away (Max(x) is x)
            continue
        node = dk.from_sympy(expr)
        at = {"x": 0.3, "y": 0.8}
        value = expr.subs({x: sympy.Rational(3, 10), y: sympy.Rational(4, 5)})
        value = value.evalf() if hasattr(value, "evalf") else sympy.Integer(bool(value))
        if not value.is_real:  # the class's first arguments are not its real domain
            continue
        expected = float(value)
        got = dk.evaluate(node, {k: v for k, v in at.items() if k in str(node)})
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), cls
        checked += 1
    assert checked >= 30


def test_unknown_sympy_objects_are_refused_in_one_line():
    x = sympy.Symbol("x")
    with pytest.raises(dk.ParseError, match="unsupported SymPy object 'besselj'"):
        dk.from_sympy(sympy.besselj(1, x))

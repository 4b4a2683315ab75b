"""Complex differentiation as JAX defines it: holomorphic functions get f'(z); a
real-valued f of complex z gets df/dx - i df/dy (the conjugate of PyTorch's gradient),
through real, imag, conj, abs and angle. Checked against exact values and against
central differences along the real and imaginary axes."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk

rng = np.random.default_rng(7)
Z = rng.standard_normal(4) + 1j * rng.standard_normal(4)


def _jax_gradient_by_differences(f, z, h=1e-6):
    """df/dx - i df/dy of a real-valued f, each partial by central differences."""
    out = np.zeros_like(z)
    for k in range(z.size):
        e = np.zeros_like(z)
        e[k] = h
        dx = (f(z + e) - f(z - e)) / (2 * h)
        dy = (f(z + 1j * e) - f(z - 1j * e)) / (2 * h)
        out[k] = dx - 1j * dy
    return out


LOSSES = {
    "squared modulus": lambda z: np.sum(np.abs(z) ** 2),
    "modulus": lambda z: np.sum(np.abs(z)),
    "real and imaginary parts": lambda z: np.sum(np.real(z) ** 3 - np.imag(z) * np.real(z)),
    "angle": lambda z: np.sum(np.angle(z) ** 2),
    "conjugate product": lambda z: np.real(np.sum(z * np.conj(z) * np.exp(1j * z.real))),
    "log-modulus": lambda z: np.sum(np.log(np.abs(z))),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_real_losses_of_complex_parameters_follow_jax(name):
    f = LOSSES[name]
    got = dk.grad(f)(Z)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, _jax_gradient_by_differences(f, Z), rtol=1e-7, atol=1e-8)


def test_squared_modulus_gradient_is_twice_the_conjugate():
    # JAX: grad(lambda z: abs(z)**2)(3+4j) == 6-8j; PyTorch returns 6+8j
    z = dk.variable("z")
    assert dk.gradient(dk.abs(z) ** 2, {"z": 3 + 4j})["z"] == 6 - 8j
    np.testing.assert_allclose(dk.grad(LOSSES["squared modulus"])(Z), 2 * np.conj(Z), rtol=1e-15)


def test_holomorphic_functions_get_the_complex_derivative():
    f = lambda z: np.sum(np.sin(z) * z)  # noqa: E731
    np.testing.assert_allclose(dk.grad(f)(Z), np.cos(Z) * Z + np.sin(Z), rtol=1e-14)


def test_values_are_numpys_on_complex_and_real_inputs():
    z = dk.variable("z", (4,))
    for build, ref in [
        (dk.real, np.real),
        (dk.imag, np.imag),
        (dk.conj, np.conj),
        (dk.abs, np.abs),
        (dk.angle, np.angle),
        (dk.sign, np.sign),
    ]:
        np.testing.assert_allclose(dk.evaluate(build(z), {"z": Z}), ref(Z), rtol=1e-15)
        x = Z.real
        np.testing.assert_allclose(dk.evaluate(build(z), {"z": x}), ref(x), rtol=1e-15)


def test_on_real_inputs_the_parts_have_real_derivatives():
    x = dk.variable("x")
    assert dk.derivative(dk.real(x) * 3, "x", {"x": 2.0}) == 3.0
    assert dk.derivative(dk.imag(x) * 3 + x, "x", {"x": 2.0}) == 1.0
    assert dk.derivative(dk.conj(x) ** 2, "x", {"x": 2.0}, method="forward") == 4.0
    assert dk.derivative(dk.angle(x), "x", {"x": -2.0}) == 0.0


def test_forward_mode_refuses_a_function_that_is_not_holomorphic():
    with pytest.raises(ValueError, match="not holomorphic.*JAX's convention"):
        dk.jacfwd(lambda z: np.abs(z))(Z)


def test_second_order_through_abs_of_a_real_input():
    x = dk.variable("x")
    assert dk.hessian(dk.abs(x) ** 3, {"x": -2.0}).tolist() == [[12.0]]


def test_complex_constants_in_users_code():
    """``1j`` in numpy code: values turn complex, a real-valued f of real inputs keeps
    real derivatives (in the input's precision), a complex-valued one its complex
    derivative, from every method."""
    z = dk.variable("z")
    wave = dk.exp(1j * z)  # e^{iz}: d/dz = i e^{iz}
    for method in ("reverse", "forward", "central", "richardson", "symbolic"):
        d = dk.derivative(wave, "z", {"z": 0.5}, method=method)
        assert d == pytest.approx(1j * np.exp(0.5j), rel=1e-8), method
        g = dk.derivative(dk.real(wave), "z", {"z": 0.5}, method=method)
        assert isinstance(g, float) and g == pytest.approx(-np.sin(0.5), rel=1e-8), method
        h = dk.hessian(dk.real(wave), {"z": np.float32(0.5)}, method=method)
        assert h.dtype == np.float32 and h[0, 0] == pytest.approx(-np.cos(0.5), rel=1e-3)
    assert dk.grad(lambda x: np.real(np.exp(1j * x)))(0.5) == pytest.approx(-np.sin(0.5))


def test_reverse_mode_refuses_a_complex_valued_function_that_is_not_holomorphic():
    z = dk.variable("z")
    with pytest.raises(ValueError, match="'conj' is not holomorphic"):
        dk.derivative(dk.conj(1j * z), "z", {"z": 0.5})
    # forward mode follows the tangent exactly: d conj(iz)/dz = -i
    assert dk.derivative(dk.conj(1j * z), "z", {"z": 0.5}, method="forward") == -1j


def test_complex_constants_come_back_from_sympy():
    import sympy

    x = sympy.Symbol("x", real=True)
    node = dk.from_sympy(sympy.exp(sympy.I * x) + (2 + 3 * sympy.I))
    assert dk.evaluate(node, {"x": 0.0}) == 3 + 3j


def test_angle_in_degrees_is_real_at_complex_points():
    z = dk.variable("z")
    value = dk.evaluate(dk.angle(z, deg=True), at={"z": 1 + 1j})
    assert np.isrealobj(value) and value == np.angle(1 + 1j, deg=True)
    g = dk.gradient(dk.angle(z, deg=True), {"z": 1 + 1j})["z"]  # JAX: df/dx - i df/dy
    assert g == pytest.approx(np.rad2deg(1.0) * (-0.5 - 0.5j), rel=1e-14)

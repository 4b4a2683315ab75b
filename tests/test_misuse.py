"""Misuse ends in one line naming what was wrong: ``diffkit.testing`` called with the wrong
``argnums`` or a gradient that is not an array, and every ``--out`` of the command line
that cannot be used, refused with status 2 before any work."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from diffkit.cli import main
from diffkit.testing import check_gradient, check_grads, numerical_gradient

RNG = np.random.default_rng(5)
X = RNG.standard_normal((8, 3))
Y = RNG.standard_normal((8, 4))
W1, W2 = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 4))


def loss(W1, W2):
    return np.mean((np.tanh(X @ W1) @ W2 - Y) ** 2)


def backward(W1, W2):
    hidden = np.tanh(X @ W1)
    d_out = 2 * (hidden @ W2 - Y) / Y.size
    return X.T @ ((d_out @ W2.T) * (1 - hidden**2)), hidden.T @ d_out


def _one_line(info, *parts):
    message = str(info.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message
    return message


# ---- diffkit.testing -------------------------------------------------------------------


def test_two_gradients_for_one_argnum_name_argnums_and_what_came_back():
    for argnums in (0, 1):
        with pytest.raises(TypeError) as info:
            check_gradient(loss, backward, W1, W2, argnums=argnums)
        _one_line(
            info,
            f"argnums={argnums}",
            "a tuple of 2 (ndarray of shape (3, 4), ndarray of shape (4, 4))",
            "argnums=(0, 1)",
        )
    check_gradient(loss, backward, W1, W2, argnums=(0, 1))  # the right call passes
    check_gradient(loss, lambda a, b: backward(a, b)[1], W1, W2, argnums=1)


def test_one_gradient_for_several_argnums():
    with pytest.raises(TypeError) as info:
        check_gradient(loss, lambda a, b: backward(a, b)[0], W1, W2, argnums=(0, 1))
    _one_line(info, "ndarray of shape (3, 4)", "argnums=(0, 1)", "a tuple of 2 gradients")


@pytest.mark.parametrize(
    "argnums, error, text",
    [
        (2, ValueError, "argnums 2 is out of range for 2 arguments"),
        ((0, 5), ValueError, "argnums 5 is out of range"),
        (True, TypeError, "argnums must be an int or a tuple of ints, got True"),
        (1.0, TypeError, "got 1.0"),
        ((), ValueError, "argnums is empty"),
    ],
)
def test_bad_argnums(argnums, error, text):
    with pytest.raises(error) as info:
        check_gradient(loss, backward, W1, W2, argnums=argnums)
    _one_line(info, "check_gradient", text)


@pytest.mark.parametrize(
    "grad_f, text",
    [
        (lambda a, b: None, "grad_f returned NoneType as the gradient of argument 0"),
        (lambda a, b: "dW1", "grad_f returned str"),
        (lambda a, b: [np.zeros(3), np.zeros(4)], "expected an array of shape (3, 4)"),
    ],
)
def test_a_gradient_that_is_not_an_array(grad_f, text):
    with pytest.raises(TypeError) as info:
        check_gradient(loss, grad_f, W1, W2)
    _one_line(info, text)


def test_other_misuse_of_check_gradient():
    with pytest.raises(TypeError) as info:
        check_gradient(lambda a, b: a @ b, lambda a, b: a, W1, W2)
    _one_line(info, "f must return a scalar", "shape (3, 4)")
    with pytest.raises(TypeError) as info:
        check_gradient(loss, np.zeros(3), W1, W2)
    _one_line(info, "grad_f must be a function")
    with pytest.raises(ValueError) as info:
        check_gradient(loss, backward, W1, W2, argnums=(0, 1), method="centred")
    _one_line(info, "unknown method 'centred'")
    # a wrong gradient is still an AssertionError, naming the argument
    with pytest.raises(AssertionError, match="gradient of argument 1 is wrong"):
        check_gradient(
            loss, lambda a, b: (backward(a, b)[0], 2 * backward(a, b)[1]), W1, W2, argnums=(0, 1)
        )


def test_complex_points_in_diffkit_testing():
    z = np.array([0.5 + 1j, -0.25 + 0.5j])

    def f(x):
        return np.sum(np.sin(x) * x)

    check_gradient(f, lambda x: np.sin(x) + x * np.cos(x), z)  # the holomorphic derivative
    with pytest.raises(AssertionError, match="is wrong"):
        check_gradient(f, lambda x: np.conj(np.sin(x) + x * np.cos(x)), z)
    check_grads(f, (z,), order=2)
    with pytest.raises(TypeError) as info:
        numerical_gradient(f, z)
    _one_line(info, "argument 0 is complex", "holomorphic")


def test_misuse_of_numerical_gradient_and_check_grads():
    with pytest.raises(TypeError) as info:
        numerical_gradient(np.sin, 1.0, argnums=(0,))
    _one_line(info, "argnums must be one int")
    with pytest.raises(TypeError) as info:
        numerical_gradient(np.sin, "1.0")
    _one_line(info, "expected a real numeric array", "str")
    with pytest.raises(TypeError) as info:
        check_grads(np.sin, ("a",))
    _one_line(info, "check_grads: argument 0 must be a number")


# ---- the command line's --out ----------------------------------------------------------


def _refused(capsys, argv, *parts):
    start = time.perf_counter()
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    assert time.perf_counter() - start < 30, argv  # before any work (that takes minutes)
    return err


def _unusable(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    return afile, [
        (afile, "is a file, not a directory"),
        (afile / "sub", "cannot write there"),
        ("/proc/diffkit-out", "cannot write there"),
    ]


@pytest.mark.parametrize(
    "argv", [["demo", "--quick"], ["study", "roundoff", "--quick"], ["study", "all", "--quick"]]
)
def test_demo_and_study_refuse_an_unusable_out_before_any_work(tmp_path, capsys, argv):
    afile, cases = _unusable(tmp_path)
    for out, text in cases:
        _refused(capsys, argv + ["--out", str(out), "--workers", "1"], f"--out {out}", text)
    assert afile.read_text() == "x"


def test_sweep_refuses_an_unusable_out(tmp_path, capsys):
    _, cases = _unusable(tmp_path)
    for out, text in cases:
        argv = ["sweep", "train", "--model", "logreg", "--epochs", "1", "--workers", "1"]
        _refused(capsys, argv + ["--out", str(out)], f"--out {out}", text)


def test_graph_refuses_an_unusable_out_before_drawing(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    for out, text in (
        (afile / "g.png", "cannot write there"),
        (tmp_path / "missing" / "g.png", "does not exist"),
        ("/proc/diffkit-graph.png", "cannot write there"),
        (tmp_path / "g.txt", "should name a .png, .svg or .pdf file"),
    ):
        _refused(capsys, ["graph", "x*y", "--out", str(out)], "--out", text)
    folder = tmp_path / "dir.png"
    folder.mkdir()
    _refused(capsys, ["graph", "x*y", "--out", str(folder)], "is a directory, not a file")


@pytest.mark.parametrize(
    "argv, text",
    [
        (["compare", "x", "--at", "x=1,x=2"], "'x' is given twice"),
        (["compare", "x", "--at", "x=1", "--wrt="], "--wrt: '' is not a variable"),
        (["compare", "x", "--at", "x=one"], "is not a number"),
        (["compare", "__import__('os')", "--at", "x=1"], "cannot parse"),
        (["compare", "x", "--at", "x=1", "--digits", "0"], "--digits"),
        (["graph", "x*", "--out", "g.png"], "cannot parse"),
        (["study", "nonsense"], "unknown study"),
        (["evaluate", "--checkpoint", "/nonexistent.npz"], "no such checkpoint"),
        (["demo", "--workers", "0"], "--workers must be at least 1"),
    ],
)
def test_hostile_input_ends_in_one_line_and_status_2(capsys, argv, text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _refused(capsys, argv, text)


def test_the_installed_command_prints_no_traceback(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "diffkit", "study", "roundoff", "--quick", "--out", str(afile)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr == f"error: --out {afile}: is a file, not a directory\n"


def test_shape_errors_name_the_function_called():
    import diffkit as dk

    with pytest.raises(dk.ShapeError, match=r"^sum_to: cannot sum shape \(2, 3\) to \(4,\)"):
        dk.sum_to(dk.variable("a", (2, 3)), (4,))
    with pytest.raises(dk.ShapeError, match=r"^eigh: expected a square matrix"):
        dk.eigh(dk.variable("m", (2, 3)))

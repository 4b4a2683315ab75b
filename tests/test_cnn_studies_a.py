"""The stacked-convolutions, shift-invariance and fd-training studies in quick mode: their
numbers against independent computations, and every number of the findings in the text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from diffkit.viz.plotting import mean_sd

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def _study(name: str):
    spec = importlib.util.spec_from_file_location(f"cnn_study_{name}", STUDIES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(path: Path) -> str:
    pngs = list(path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs)
    return (path / "README.md").read_text()


def test_compose_against_a_loop_over_pixels():
    """The composed kernel and bias give, by a direct loop, the stack's output."""
    study = _study("stacked_convolutions")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 7))
    w1, b1 = rng.standard_normal((3, 2, 2, 3)), rng.standard_normal(3)
    w2, b2 = rng.standard_normal((2, 3, 3, 2)), rng.standard_normal(2)

    def conv(x, w, b):  # valid cross-correlation, one output at a time
        o, _, kh, kw = w.shape
        h, wd = x.shape[1] - kh + 1, x.shape[2] - kw + 1
        y = np.zeros((o, h, wd))
        for c in range(o):
            for i in range(h):
                for j in range(wd):
                    y[c, i, j] = np.sum(w[c] * x[:, i : i + kh, j : j + kw]) + b[c]
        return y

    W, B = study.compose(w1, b1, w2, b2)
    assert W.shape == (2, 2, 4, 4)
    np.testing.assert_allclose(conv(x, W, B), conv(conv(x, w1, b1), w2, b2), rtol=1e-12)


def test_stacked_convolutions(tmp_path):
    study = _study("stacked_convolutions")
    r = study.main(tmp_path / "stacked", quick=True)
    assert r["fields_ok"]
    for e in r["exact"]:
        assert e["units"] <= study.ROUNDING
        assert e["composed"] == e["case"][0] + e["case"][1] - 1
        assert e["kernel_error"] < (1e-12 if e["dtype"] == "float64" else 1e-5)
    for c in r["collapse"]:  # the trained ReLU-free stack is one convolution
        assert c["same_predictions"] == c["test_size"]
        assert c["max_logit_diff"] < 1e-4 * max(1.0, c["max_logit"])
        assert c["acc_stack"] == c["acc_single"]
    text = _report(tmp_path / "stacked")
    assert f"{r['rounding']['float64']:.2g} × eps × scale in float64" in text
    assert "held to rounding" in text
    for row in r["train_rows"]:
        assert f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]} |" in text
        assert f"{row[4]}%" in text  # the test accuracy, in the findings
    same = sum(c["same_predictions"] for c in r["collapse"])
    assert f"same prediction on {same} of {same} test images" in text


def test_shift_moves_pixels_and_fills_the_background():
    study = _study("shift_invariance")
    images = np.arange(2 * 1 * 4 * 5, dtype=np.float32).reshape(2, 1, 4, 5)
    for dy, dx in ((0, 0), (1, 0), (0, -2), (-1, 3), (2, 2)):
        moved = study.shift(images, dy, dx)
        for n in range(2):
            for i in range(4):
                for j in range(5):
                    si, sj = i - dy, j - dx
                    inside = 0 <= si < 4 and 0 <= sj < 5
                    want = images[n, 0, si, sj] if inside else images[n].min()
                    assert moved[n, 0, i, j] == want


def test_shift_invariance(tmp_path):
    study = _study("shift_invariance")
    r = study.main(tmp_path / "shift", quick=True)
    assert r["shifts"] == [0, 1, 2]
    for kind, rs in r["runs"].items():
        assert len(rs) == 2 and rs[0]["history"] != rs[1]["history"]
        for run in rs:
            at0 = run["shifts"][0]
            assert at0["unchanged"] == 1.0 and at0["distance1"] == 0 and at0["distance2"] == 0
            assert at0["accuracy"] == pytest.approx(run["history"][-1]["test_acc"])
            assert all(s["distance1"] > 0 and s["unchanged"] <= 1 for s in run["shifts"][1:])
    text = _report(tmp_path / "shift")
    for row in r["rows"]:
        assert "| " + " | ".join(str(c) for c in row) + " |" in text
    for kind, rs in r["runs"].items():
        cell = mean_sd([100 * run["shifts"][1]["unchanged"] for run in rs])
        assert f"{cell}% ({kind})" in text
    assert ("the claim held" in text) == r["held"]


def test_fd_training(tmp_path):
    study = _study("fd_training")
    r = study.main(tmp_path / "fd", quick=True)
    first, outcomes = r["first"], r["outcomes"]
    assert first[("reverse", None, "float64")]["rel_error"][0] == 0
    assert first[("reverse", None, "float32")]["rel_error"][0] < 1e-5
    # central differences in float64 at h = 1e-6: truncation and round-off both ~1e-9
    assert first[("central", 1e-6, "float64")]["rel_error"][0] < 1e-7
    assert outcomes[("central", 1e-6, "float64")] == ["as reverse mode"]
    # in float32, w + 1e-12 rounds to w: every component of the gradient is zero
    f32 = first[("forward-difference", 1e-12, "float32")]
    assert f32["zeros"][0] == 1.0 and f32["loss"][0] == f32["loss"][-1]
    assert outcomes[("forward-difference", 1e-12, "float32")] == ["stalled"]
    text = _report(tmp_path / "fd")
    for dt in ("float64", "float32"):
        ref = first[("reverse", None, dt)]
        assert f"{dt}: reverse mode ends at loss {ref['loss'][-1]:.4f}" in text
    for row in r["rows"]:
        assert "| " + " | ".join(str(c) for c in row) + " |" in text

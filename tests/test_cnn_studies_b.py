"""The padding and batch-dependence studies in quick mode: their reports state the numbers
of their own tables, recomputed here from the raw results the studies return."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

STUDIES = Path(__file__).resolve().parents[1] / "studies"


def study(name: str) -> dict:
    """The globals of ``studies/NAME.py`` (a script, not a module of the package)."""
    return runpy.run_path(str(STUDIES / f"{name}.py"))


def run_quick(name: str, out: Path):
    """The study's quick run into ``out``: what ``main`` returns, and the report's text
    (after checking that every figure is a real picture). The compiled loops run on one
    thread: the studies' kernels are small, and the results do not depend on it."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DIFFKIT_THREADS", "1")
        result = study(name)["main"](out, quick=True)
    assert all(p.stat().st_size > 5000 for p in out.glob("*.png"))
    assert len(list(out.glob("*.png"))) >= 2
    return result, (out / "README.md").read_text()


@pytest.fixture(scope="module")
def padding(tmp_path_factory):
    return run_quick("padding", tmp_path_factory.mktemp("padding"))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    return run_quick("batch_dependence", tmp_path_factory.mktemp("batch-dependence"))


def test_padding_report_states_its_numbers(padding):
    r, text = padding
    modes = ["zeros", "reflect", "replicate", "circular"]
    for view, label in (("whole", "whole 28×28 digits"), ("crop", "central 16×16 crop")):
        accs = {m: np.array(r["accs"][(view, m)]) for m in modes}
        assert all(len(a) == 2 for a in accs.values())  # one run per seed
        assert all(0 <= a.min() and a.max() <= 100 for a in accs.values())
        means = {m: accs[m].mean() for m in modes}
        best = max(modes, key=means.get)
        rank = sorted(modes, key=lambda m: -means[m]).index("zeros") + 1
        zeros = f"zero padding reaches {means['zeros']:.2f}% test accuracy (rank {rank} of 4)"
        assert zeros in text
        assert f"the best mode is {best} ({means[best]:.2f}%)" in text
        for m in modes:  # the table's per-seed column
            assert f"| {label} | {m} |" in text
            assert " ".join(f"{a:.1f}" for a in accs[m]) in text
        ratios = {m: np.array(r["ratios"][(view, m)])[:, 0].mean() for m in modes}
        assert ", ".join(f"{m} {ratios[m]:.3f}" for m in modes) in text
    assert f"a blank pixel is {r['background']:.3f}" in text
    assert f"outermost ring of pixels in {r['ink']['whole']:.1f}% of the test digits" in text
    assert f"(ink on the outermost ring in {r['ink']['crop']:.1f}%)" in text
    for line in r["findings"]:
        assert line in text


def test_padding_modes_agree_with_explicit_padding(padding):
    r, text = padding
    values = [v for a in r["agreement"].values() for v in a.values()]
    assert max(values) < 1e-12
    assert f"to within {max(values):.1e}" in text


def test_padding_ring_distance():
    d = study("padding")["ring_distance"](4, 5)
    expect = np.array([[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]])
    assert (d == expect).all()


def test_batch_dependence_report_states_its_numbers(batch):
    r, text = batch
    for row in r["acc_rows"] + r["mode_rows"]:
        assert "| " + " | ".join(str(c) for c in row) + " |" in text
    acc = {k: np.array(v) for k, v in r["acc"].items()}
    small = r["sizes"][0]
    for kind, label in (("batch", "batch norm"), ("layer", "layer norm")):
        assert f"{label} {acc[(kind, small, 0)].mean():.2f}%" in text
        d = acc[(kind, 32, 0)] - acc[(kind, small, 0)]
        assert f"{label} {-d.mean():+.2f} ± {d.std(ddof=1) / np.sqrt(len(d)):.2f} pp" in text
    for line in r["findings"]:
        assert line in text


def test_only_batch_norm_in_training_mode_depends_on_the_batch(batch):
    r, text = batch
    change = {(row[0], row[1]): row[2] for row in r["influence"]}
    assert change[("batch norm", "training")] > 1e-3
    for key, value in change.items():
        if key != ("batch norm", "training"):
            assert value <= 1e-12, key
    # without batch statistics, training and evaluation mode give the same accuracies
    for row in r["mode_rows"]:
        if row[0] != "batch norm":
            assert len(set(row[1:])) == 1, row
    assert r["group_norm_agreement"] < 1e-12
    assert f"to within {r['group_norm_agreement']:.1e}" in text


def test_imbalanced_batches_draw_from_one_class():
    imbalanced_batches = study("batch_dependence")["imbalanced_batches"]
    labels = np.repeat(np.arange(10), 20)
    rng = np.random.default_rng(0)
    got = list(imbalanced_batches(labels, 10, 0.9, rng))
    assert len(got) == 20
    for idx in got:
        assert len(set(idx)) == 10
        assert np.bincount(labels[idx]).max() == 9

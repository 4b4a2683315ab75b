"""Every study in quick mode, into a temporary directory, with assertions on its numbers."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffkit.cli import main as cli
from diffkit.demo import (
    COMMITTED_REPORTS,
    DEMO_QUICK,
    STUDIES,
    TITLES,
    StudyError,
    demo_plan,
    load_study,
)


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("reports")


def _files(path):
    assert (path / "README.md").exists()
    pngs = list(path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs)
    return (path / "README.md").read_text()


def test_roundoff(out):
    r = load_study("roundoff").main(out / "roundoff", quick=True)
    s = r["summary"]
    key = "exp(x) sin(x)"
    eps = np.finfo(float).eps
    fwd = s[(key, "float64", "forward-difference")]
    cen = s[(key, "float64", "central")]
    assert fwd[1] <= 10 * math.sqrt(eps) * 3.76 and 1e-9 <= fwd[0] <= 1e-7
    assert cen[1] <= 10 * eps ** (2 / 3) * 3.76 and 1e-7 <= cen[0] <= 1e-4
    assert s[(key, "float64", "complex-step")][1] < 1e-15
    assert s[(key, "float32", "central")][1] > 1e3 * cen[1]
    assert fwd[1] <= 10 * fwd[3]  # within 10x of the predicted minimum
    text = _files(out / "roundoff")
    assert "| exp(x) sin(x) | float64 | central |" in text


def test_blowup(out):
    r = load_study("blowup").main(out / "blowup", quick=True)
    logistic = dict(r["data"]["logistic map l_n"])
    assert all(g >= 2 for g in r["growth"])
    rev = [logistic[n]["reverse graph"] for n in sorted(logistic)]
    assert max(np.diff(rev[1:])) <= 12
    text = _files(out / "blowup")
    assert "$$" in text and "16 \\left(- 16 x^{3} + 24 x^{2} - 10 x + 1\\right)" in text


def test_cost(out):
    r = load_study("cost").main(out / "cost", quick=True)
    n = [row[0] for row in r["rows"]]
    assert r["evals"]["forward-difference"] == [k + 1 for k in n]
    assert r["evals"]["central"] == [2 * k for k in n]
    assert r["evals"]["forward"] == n and r["evals"]["reverse"] == [1] * len(n)
    # the ratios are times, so only their report is checked: the sentence states the
    # measured range and, against the bound, which side of it they fell
    assert all(0 < q < float("inf") for q in r["ratios"])
    text = _files(out / "cost")
    span = f"Reverse mode costs {min(r['ratios']):.1f}× to {max(r['ratios']):.1f}× the function"
    assert span in text
    within = max(r["ratios"]) <= 5
    assert ("within the cheap-gradient bound" in text) == within
    assert ("above the cheap-gradient bound" in text) == (not within)


def test_normalization(out):
    r = load_study("normalization").main(out / "normalization", quick=True)
    assert r["fusion_diff"] < 1e-10
    seeds = r["runs"][("batch", r["lrs"][0])]
    assert len(seeds) == 2  # one run per seed
    for run in seeds:
        h = run["history"]
        assert h and h[-1]["train_loss"] < h[0]["train_loss"] * 1.5
    # different seeds give different runs, and each table cell holds their mean ± sd
    assert seeds[0]["history"] != seeds[1]["history"]
    assert any("±" in str(cell) for row in r["rows"] for cell in row)
    _files(out / "normalization")


def test_optimizers(out):
    r = load_study("optimizers").main(out / "optimizers", quick=True)["results"]
    newton = r[("logistic regression", "Newton")]
    assert newton["loss"][-1] <= min(v["loss"][-1] for v in r.values() if v is not newton) + 1e-9
    for v in r.values():
        assert v["loss"][-1] < v["loss"][0]
    _files(out / "optimizers")


def test_receptive_fields(out):
    r = load_study("receptive-fields").main(out / "receptive-fields", quick=True)
    for row in r["rows"]:
        if "max-pool" not in row[0]:
            assert row[2] == row[3], row
        if row[0] == "3×3 conv, stride 1":
            assert row[2] == 1 + row[1] * 2
    _files(out / "receptive-fields")


def test_graphs(out):
    r = load_study("graphs").main(out / "graphs", quick=True)
    assert r["simple"]["values"]["+"] == 3.0 and r["simple"]["values"]["×"] == -12.0
    assert r["simple"]["gradients"]["z"] == 3.0 and r["simple"]["gradients"]["x"] == -4.0
    assert round(r["elementary"]["gradients"]["w0"], 2) == -0.20
    assert round(r["elementary"]["gradients"]["x0"], 2) == 0.39
    assert r["block"]["gradients"]["x1"] == pytest.approx(r["elementary"]["gradients"]["x1"])
    _files(out / "graphs")


def test_studies_are_deterministic(tmp_path):
    a = load_study("blowup").main(tmp_path / "a", quick=True)
    b = load_study("blowup").main(tmp_path / "b", quick=True)
    strip = {
        t: [(n, {k: v for k, v in m.items() if not k.startswith("seconds")}) for n, m in rows]
        for t, rows in a["data"].items()
    }
    strip_b = {
        t: [(n, {k: v for k, v in m.items() if not k.startswith("seconds")}) for n, m in rows]
        for t, rows in b["data"].items()
    }
    assert repr(strip) == repr(strip_b)  # repr: nan entries compare equal


def test_study_cli(tmp_path, capsys):
    assert cli(["study", "graphs", "--out", str(tmp_path / "g"), "--quick"]) == 0
    assert (tmp_path / "g" / "graph_xyz.png").exists()
    assert cli(["study", "nonsense"]) == 2
    assert "unknown study 'nonsense'" in capsys.readouterr().err
    assert cli(["graph", "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--out", str(tmp_path / "g.png")]) == 0
    assert cli(["graph", "x*y", "--at", "x=1", "--out", str(tmp_path / "h.png")]) == 2
    # every study has its script, its title, and a report committed in full mode
    assert set(TITLES) == {*STUDIES, "training"} and set(DEMO_QUICK) <= set(STUDIES)
    root = Path(__file__).resolve().parents[1]
    for name in STUDIES:
        assert (root / "studies" / f"{name.replace('-', '_')}.py").exists(), name
        assert (root / "reports" / name / "README.md").exists(), name


def test_demo_plan(tmp_path):
    """``make demo`` runs the long studies on their reduced grids, ``make reports`` runs
    everything in full, ``--quick`` everything reduced; ``--only`` keeps a subset."""
    plan = dict(demo_plan(False, tmp_path))
    assert list(plan) == list(STUDIES)
    assert {n for n, reduced in plan.items() if reduced} == set(DEMO_QUICK)
    assert not any(dict(demo_plan(False, COMMITTED_REPORTS)).values())
    assert all(dict(demo_plan(True, tmp_path)).values())
    assert demo_plan(False, tmp_path, only=("graphs",)) == [("graphs", False)]
    with pytest.raises(StudyError, match="unknown study 'nope'"):
        demo_plan(False, tmp_path, only=("nope",))


def test_demo_only_flag(tmp_path, capsys):
    assert cli(["demo", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown study 'nope'" in capsys.readouterr().err


def test_demo_twice_leaves_the_committed_files_unchanged(tmp_path):
    """Run the demo twice in a fresh clone: ``git status`` stays clean (its reports go
    to the untracked build/reports), and the committed reports are byte-identical."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs the git repository")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    committed = {p: p.read_bytes() for p in (clone / "reports").rglob("*") if p.is_file()}
    env = {**os.environ, "PYTHONPATH": str(clone), "DIFFKIT_NATIVE": "0"}
    for only in ([], ["--only", "graphs"]):  # every study, then again one of them
        done = subprocess.run(
            [sys.executable, "-m", "diffkit", "demo", "--quick", *only],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert "build/reports/README.md" in done.stdout
        index = (clone / "build" / "reports" / "README.md").read_text()
        for name in STUDIES:
            assert f"({name}/README.md)" in index
        assert (clone / "build" / "reports" / "training" / "curves.png").exists()
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
    assert {p: p.read_bytes() for p in (clone / "reports").rglob("*") if p.is_file()} == committed
    # a quick run into the committed reports is refused
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "diffkit",
            "study",
            "roundoff",
            "--quick",
            "--out",
            "reports/roundoff",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and "never writes into the committed reports" in refused.stderr

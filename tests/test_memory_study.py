"""The memory study in quick mode: its report states the numbers of its own tables, and
the tables hold what checkpointing promises (counts equal to theory, less memory)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from diffkit.differentiators.checkpoint import revolve_recomputations

STUDY = Path(__file__).resolve().parent.parent / "studies" / "memory.py"


def _study():
    spec = importlib.util.spec_from_file_location("memory_study_under_test", STUDY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_memory_study_reports_its_own_numbers(tmp_path):
    result = _study().main(tmp_path, quick=True)
    text = (tmp_path / "README.md").read_text()
    assert (tmp_path / "memory_tradeoff.png").stat().st_size > 10_000
    assert (tmp_path / "memory_timeline.png").stat().st_size > 10_000
    t = result["size"]["T"]
    rnn, mlp = result["rnn"], result["mlp"]
    # every schedule recomputes what its theory says, and the text says so
    rows = rnn + mlp
    assert all(r[1] == r[2] for r in rows)
    assert f"equal the theory in {len(rows)} of {len(rows)} schedules" in text
    for row in rnn:
        if row[0].startswith("revolve"):
            s = int(row[0].split("= ")[1])
            assert row[1] == revolve_recomputations(t, s)
            assert f"Tanh RNN, {row[0]}: {row[1]} steps recomputed" in text
            assert f"{row[6]:.0f} states of forward values held" in text
            assert row[6] < rnn[0][6]  # fewer held than unchecked
    sqrt_row = mlp[2]
    assert f"hold {sqrt_row[6]:.0f} activations of forward values" in text
    assert f"against {mlp[0][6]:.0f} unchecked" in text
    assert sqrt_row[6] < mlp[0][6]
    for row in result["torch"]:
        assert row[0] in text and f"{row[6]:.0f} activations held" in text
    # the tables are in the report, row by row
    for row in rows + result["torch"]:
        assert f"| {row[0]} |" in text

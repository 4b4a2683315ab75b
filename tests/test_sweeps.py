"""Tasks on executors: identical results serially, on a process pool and on Dask; failures
reported with their arguments without losing the others; interrupted sweeps resume."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diffkit.cli import main
from diffkit.demo import load_study
from diffkit.tasks import Task, TasksFailed, executor, run_tasks
from diffkit.viz.plotting import markdown_table


def flaky(x: int, marker: str, log: str, seed: int = 0) -> int:
    """A task for the tests: records each run in ``log``; raises for x == 3 while
    ``marker`` exists."""
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    if x == 3 and os.path.exists(marker):
        raise ValueError(f"x = {x} is unlucky")
    return x * x + seed


def _tables(name: str, result: dict, out: Path) -> str:
    """What a study computes, without the times it measures (which differ run to run)."""
    if name in ("roundoff", "receptive-fields"):
        return (out / "README.md").read_text()
    if name == "normalization":
        return markdown_table(["norm", "lr", "diverged", "loss", "acc", "acc1"], result["rows"])
    if name == "optimizers":
        rows = [r[:3] + r[4:] for r in result["rows"]]  # without the seconds column
        return markdown_table(["model", "method", "updates", "l0", "l", "g"], rows)
    if name == "blowup":
        return repr(
            {
                t: [
                    (n, {k: v for k, v in m.items() if not k.startswith("seconds")})
                    for n, m in rows
                ]
                for t, rows in result["data"].items()
            }
        )
    raise AssertionError(name)


GRID_STUDIES = ("roundoff", "receptive-fields", "normalization", "optimizers", "blowup")


@pytest.fixture(scope="module")
def serial_tables(tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    return {
        name: _tables(name, load_study(name).main(out / name, quick=True), out / name)
        for name in GRID_STUDIES
    }


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_studies_give_identical_tables_on_every_executor(kind, serial_tables, tmp_path):
    if kind == "dask":
        pytest.importorskip("distributed")
    with executor(2, "local" if kind == "dask" else None) as ex:
        for name in GRID_STUDIES:
            result = load_study(name).main(tmp_path / name, quick=True, executor=ex)
            assert _tables(name, result, tmp_path / name) == serial_tables[name], (kind, name)
            assert not (tmp_path / name / ".tasks").exists()  # the cache goes once all succeed


@pytest.mark.parametrize("kind", ["serial", "processes", "dask"])
def test_a_failing_task_is_reported_and_the_rest_kept_then_resumed(kind, tmp_path):
    if kind == "dask":
        pytest.importorskip("distributed")
    marker, log = tmp_path / "marker", tmp_path / "log"
    marker.write_text("fail")
    tasks = [
        Task(f"{__file__}:flaky", {"x": x, "marker": str(marker), "log": str(log)}, seed=10)
        for x in range(6)
    ]
    cache = tmp_path / "cache"
    workers = 1 if kind == "serial" else 2
    with executor(workers, "local" if kind == "dask" else None) as ex:
        with pytest.raises(TasksFailed) as info:
            run_tasks(tasks, ex, cache=cache)
        err = info.value
        assert "1 of 6 tasks failed" in str(err)
        assert "flaky(x=3, marker=" in str(err) and "seed 10" in str(err)
        assert "ValueError: x = 3 is unlucky" in str(err)
        assert err.results[:3] == [10, 11, 14] and err.results[4:] == [26, 35]
        assert err.results[3] is None and err.finished == 5
        assert len(list(cache.glob("*.pkl"))) == 5
        # the rerun runs only the task that failed
        marker.unlink()
        log.write_text("")
        assert run_tasks(tasks, ex, cache=cache) == [10, 11, 14, 19, 26, 35]
        assert log.read_text().split() == ["3"]
        assert not cache.exists()


def test_results_come_back_in_task_order_and_bad_targets_are_named(tmp_path):
    tasks = [
        Task(f"{__file__}:flaky", {"x": x, "marker": "", "log": str(tmp_path / "l")}, seed=None)
        for x in (5, 1, 4)
    ]
    with executor(2) as ex:
        assert run_tasks(tasks, ex) == [25, 1, 16]
    with pytest.raises(TasksFailed, match="has no nothing_here"):
        run_tasks([Task("math:nothing_here", seed=None)])
    with pytest.raises(TasksFailed, match="expected MODULE:FUNCTION"):
        run_tasks([Task("no-colon", seed=None)])


def test_sweep_train_cli(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "train",
        "--model",
        "logreg",
        "--lr",
        "0.01,0.1",
        "--epochs",
        "2",
        "--seeds",
        "0-2",
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "6 runs (2 settings × 3 seeds)" in text and "best mean test accuracy" in text
    rows = (out / "runs.csv").read_text().splitlines()
    assert rows[0].startswith("lr,seed,final_test_acc") and len(rows) == 7
    summary = (out / "summary.md").read_text()
    assert "| 0.01 | 3 | 0 |" in summary and "±" in summary
    assert (out / "summary.png").read_bytes().startswith(b"\x89PNG")
    for bad, msg in (
        (["--lr", "0.1,x"], "--lr: 'x' is not a float"),
        (["--lr", "0.1,-1"], "--lr: must be a number more than 0, got -1.0"),
        (["--seeds", "4-2"], "--seeds: expected e.g. 0-4"),
        (["--model", "alexnet"], "--model: unknown model 'alexnet'"),
        (["--workers", "0"], "--workers must be at least 1"),
    ):
        args = [
            "sweep",
            "train",
            "--model",
            "logreg",
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "bad"),
        ] + bad
        assert main(args) == 2, bad
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (bad, err)


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    import socket

    import diffkit.tasks

    monkeypatch.setattr(diffkit.tasks, "DASK_TIMEOUT", 1)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["study", "roundoff", "--quick", "--out", str(tmp_path / "r")]
    assert main(argv + ["--dask", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the scheduler" in err and err.count("\n") == 1


def thread_settings(seed: int = 0) -> tuple:
    """A task for the tests: the thread counts a worker's libraries were given."""
    from diffkit import parallel

    return os.environ.get("OPENBLAS_NUM_THREADS"), parallel.threads()


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_workers_share_the_cores_instead_of_each_taking_all(kind):
    """Two workers on this machine's cores: BLAS and diffkit's compiled loops in each get
    cores // 2 threads, so that their spinning threads do not oversubscribe the cores."""
    if kind == "dask":
        pytest.importorskip("distributed")
    from diffkit.tasks import default_workers

    expected = max(1, default_workers() // 2)
    with executor(2, "local" if kind == "dask" else None) as ex:
        results = run_tasks([Task(f"{__file__}:thread_settings", seed=None)] * 2, ex)
    assert results == [(str(expected), expected)] * 2

"""diffkit leaves the process as it found it: matplotlib's backend and the user's open
figures, the environment, signal handlers, the garbage collector, BLAS's thread count and
numpy's allocator, whatever it ran (a study, a graph drawing, derivatives, task pools)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from diffkit.tasks import Task, executor, run_tasks

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import gc, importlib.util, json, os, signal, sys, threading, warnings
    import matplotlib
    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    import numpy as np
    import scipy.sparse, scipy.special, sympy, mpmath  # their imports add warnings filters

    fig = plt.figure()
    plt.plot([1, 2, 3])

    def state():
        from numpy._core.multiarray import get_handler_name
        return {
            "backend": matplotlib.get_backend(),
            "figures": plt.get_fignums(),
            "current": plt.gcf() is fig,
            "environ": dict(os.environ),
            "sigalrm": repr(signal.getsignal(signal.SIGALRM)),
            "itimer": signal.getitimer(signal.ITIMER_REAL)[0],
            "gc": gc.isenabled(),
            "errstate": np.geterr(),
            "printoptions": repr(np.get_printoptions()),
            "warnings": repr(warnings.filters),
            "allocator": get_handler_name(),
            "threads": threading.active_count(),
        }

    before = state()
    import diffkit as dk
    from diffkit import parallel
    blas = parallel.blas_threads()

    spec = importlib.util.spec_from_file_location("study", sys.argv[1])
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    study.main(sys.argv[2], quick=True)

    x, y = dk.variables("x y")
    dk.viz.draw_graph(dk.sin(x * y) + x, at={"x": 2.0, "y": 3.0}, path=sys.argv[2] + "/g.png")
    dk.viz.Graph(x * y, at={"x": 1.0, "y": 2.0})._repr_svg_()
    dk.compare("exp(x) * sin(x)", at={"x": 1.0})
    dk.grad(lambda w: np.sum(np.tanh(w) ** 2))(np.ones(3))

    after = state()
    print(json.dumps({
        "changed": sorted(k for k in before if before[k] != after[k]),
        "blas": [blas, parallel.blas_threads()],
        "before": {k: before[k] for k in ("backend", "figures")},
        "after": {k: after[k] for k in ("backend", "figures")},
    }))
    """
)


def test_a_study_and_a_drawing_leave_the_process_as_they_found_it(tmp_path):
    script = tmp_path / "check.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    done = subprocess.run(
        [sys.executable, str(script), str(ROOT / "studies" / "receptive_fields.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["after"] == report["before"] == {"backend": "svg", "figures": [1]}
    assert report["changed"] == [], report
    assert report["blas"][0] == report["blas"][1]
    assert (tmp_path / "g.png").stat().st_size > 0


def _environment(seed=None):
    import os

    from diffkit import parallel

    return os.environ.get("OMP_NUM_THREADS"), parallel.blas_threads()


@pytest.mark.parametrize("dask", [None, "local"])
def test_task_pools_leave_the_environment_alone(dask):
    if dask:
        pytest.importorskip("distributed")
    before = dict(os.environ)
    tasks = [Task(f"{__file__}:_environment", {}, seed=None) for _ in range(2)]
    with executor(2, dask=dask) as ex:
        during = dict(os.environ)
        results = run_tasks(tasks, ex)
    assert during == before
    assert dict(os.environ) == before
    share = str(max(1, len(os.sched_getaffinity(0)) // 2))
    for omp, blas in results:  # the workers got their share through their own environment
        assert omp == share
        assert blas is None or blas == int(share)

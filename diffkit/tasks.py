"""Independent tasks on an executor: the seam through which studies and sweeps run.

A study or a sweep expresses its grid as a list of :class:`Task` (a function named
by where it lives, keyword arguments, a seed), and :func:`run_tasks` runs them on a
``concurrent.futures``-style executor: serially (the default), on a local process
pool, or on a Dask cluster (``pip install diffkit[dist]``). Results come back in
the order of the tasks, whatever order they finish in, so what is computed from
them does not depend on what ran them.

A task that raises does not stop the others; every failure is reported with its
arguments and seed. With a cache directory, each finished result is stored there as
it arrives, and a rerun takes finished tasks from it instead of running them again.

>>> from diffkit.tasks import Task, run_tasks
>>> tasks = [Task("fractions:Fraction", {"numerator": n, "denominator": 4}, seed=None)
...          for n in (4, 5, 6)]
>>> run_tasks(tasks)
[Fraction(1, 1), Fraction(5, 4), Fraction(3, 2)]
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import shutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .io import atomic_write_bytes

__all__ = [
    "Task",
    "TaskError",
    "TasksFailed",
    "ExecutorError",
    "run_tasks",
    "executor",
    "SerialExecutor",
    "default_workers",
]


class TaskError(Exception):
    """One task's failure: its description and the error, in one line."""


class ExecutorError(ValueError):
    """An executor that cannot start: a Dask scheduler out of reach, a bad worker count."""


class TasksFailed(RuntimeError):
    """Some tasks raised; ``failures`` lists (task, message), ``results`` holds every
    result (None where its task failed), ``finished`` how many succeeded."""

    def __init__(self, failures: list, results: list):
        self.failures, self.results = failures, results
        self.finished = sum(r is not _MISSING for r in results) - len(failures)
        task, message = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        super().__init__(
            f"{len(failures)} of {len(results)} tasks failed; the first: {task.describe()}: "
            f"{message}{more}"
        )


_MISSING = object()
# seconds to wait for a Dask scheduler named by address
DASK_TIMEOUT = 10


@dataclass(frozen=True)
class Task:
    """A function call to run anywhere: ``target(**args, seed=seed)``.

    Args:
        target: ``"package.module:function"``, or ``"/path/to/file.py:function"`` for
            a function in a script (the studies); resolved where the task runs.
        args: keyword arguments: plain, picklable values (JSON-able ones key the cache).
        seed: passed as ``seed=``; None passes none.
        label: a short description for progress and errors (default: the arguments).
    """

    target: str
    args: dict = field(default_factory=dict)
    seed: int | None = 0
    label: str = ""

    def describe(self) -> str:
        what = self.label or ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        seed = "" if self.seed is None else f", seed {self.seed}"
        return f"{self.target.rsplit(':', 1)[-1]}({what}){seed}"

    @property
    def key(self) -> str:
        """Names the task's result in a cache: its target (with the script's contents
        when it is a file), arguments and seed."""
        module = self.target.rsplit(":", 1)[0]
        source = ""
        if module.endswith(".py") and Path(module).exists():
            source = hashlib.sha256(Path(module).read_bytes()).hexdigest()
        text = json.dumps([self.target, source, self.args, self.seed], sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def __call__(self) -> Any:
        fn = _resolve(self.target)
        return fn(**self.args) if self.seed is None else fn(**self.args, seed=self.seed)


_SCRIPTS: dict = {}


def _resolve(target: str) -> Callable:
    module_name, _, name = target.rpartition(":")
    if not module_name or not name:
        raise TaskError(f"task target {target!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    if module_name.endswith(".py"):
        module = _SCRIPTS.get(module_name)
        if module is None:
            path = Path(module_name)
            spec = importlib.util.spec_from_file_location(f"diffkit_task_{path.stem}", path)
            if spec is None or not path.exists():
                raise TaskError(f"task target {target!r}: no such script")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _SCRIPTS[module_name] = module
    else:
        module = importlib.import_module(module_name)
    try:
        return getattr(module, name)
    except AttributeError:
        raise TaskError(f"task target {target!r}: {module_name} has no {name}") from None


def _execute(task: Task):
    """Run one task where it lands; an exception comes back as a one-line message with
    the last frame of its traceback (exceptions of user code may not pickle)."""
    try:
        return True, task()
    except Exception as err:  # noqa: BLE001 - reported with the task, never lost
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f" ({Path(frame.filename).name}:{frame.lineno})"
        return False, f"{type(err).__name__}: {err}{where}"


class SerialExecutor(cf.Executor):
    """Runs each task when it is submitted, in this process: the reference executor."""

    def submit(self, fn, /, *args, **kwargs):
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001
            future.set_exception(err)
        return future


def default_workers() -> int:
    """The number of cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def executor(workers: int | None = 1, dask: str | None = None):
    """An executor for :func:`run_tasks`, closed on exit.

    Args:
        workers: 1 runs serially in this process; N > 1 a pool of N processes; None
            one process per core. With ``dask``, the workers of a ``LocalCluster``.
        dask: ``"local"`` starts a Dask ``LocalCluster`` of ``workers`` processes;
            an address (``tcp://host:8786``) uses the scheduler running there.
    """
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ExecutorError(f"workers must be at least 1, got {workers}")
    if dask:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError(
                "Dask is not installed: pip install 'diffkit[dist]' (dask[distributed])"
            ) from None
        cluster = None
        try:
            if dask == "local":
                threads = max(1, default_workers() // n)
                cluster = _local_cluster(n, threads)
                client = Client(cluster)
                client.run(_limit_threads, threads)  # numpy is loaded there already
            else:
                client = Client(dask, timeout=DASK_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as err:
            if cluster is not None:
                cluster.close()
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ExecutorError(f"--dask {dask}: cannot reach the scheduler ({reason})") from None
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    if n == 1:
        yield SerialExecutor()
        return
    import multiprocessing

    # each worker gets its share of the cores for its BLAS and OpenMP threads: N
    # processes each running one thread per core would spin against one another
    pool = cf.ProcessPoolExecutor(
        max_workers=n,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_limit_threads,
        initargs=(max(1, default_workers() // n),),
    )
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


# BLAS's and OpenMP's threads, and those of diffkit's compiled loops (diffkit.parallel)
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "DIFFKIT_THREADS",
)


def _limit_threads(threads: int) -> None:
    """In a worker process, as it starts: its thread-count variables (for diffkit's
    compiled loops, and for libraries loaded from now on), and the thread count of the
    BLAS numpy already loaded. The process that started the workers is not touched."""
    os.environ.update({k: str(threads) for k in _THREAD_VARIABLES})
    from . import parallel

    fns = parallel._openblas()
    if fns is not None:
        fns[0](threads)


def _local_cluster(n: int, threads: int):
    """A Dask ``LocalCluster`` of ``n`` worker processes of one task at a time each, whose
    environment holds ``threads`` for the thread-count variables.

    Dask's nanny writes the variables it gives its workers before they start
    (``distributed.nanny.pre-spawn-environ``: by default one thread for BLAS and OpenMP,
    and a hash seed) into the environment of the process that runs it, here the
    caller's. So the workers get their variables through the nanny's ``env`` instead (set
    in each worker before it starts a task), the pre-spawn list is emptied for the
    cluster's start, and what Dask writes there regardless (a hash seed, and the marker
    that names the process whose children set their titles) is taken out again."""
    import dask
    from distributed import LocalCluster

    before = {k: os.environ.get(k) for k in _DASK_WRITES}
    env = {k: str(threads) for k in _THREAD_VARIABLES}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):
            return LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env=env,
            )
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            elif os.environ.get(k) != v:
                os.environ[k] = v


# what starting a Dask LocalCluster writes into its own process's environment whatever
# its configuration (distributed's nanny.py and proctitle.py)
_DASK_WRITES = ("PYTHONHASHSEED", "__DASK_PARENT_PID")


def run_tasks(
    tasks: Iterable[Task],
    executor: cf.Executor | None = None,
    cache: str | Path | None = None,
    progress: Callable[[int, int], None] | bool | None = None,
    desc: str = "tasks",
    keep_cache: bool = False,
) -> list:
    """Run ``tasks`` on ``executor`` (serially when None); return their results in the
    order of ``tasks``.

    Args:
        cache: a directory where each finished result is stored as it arrives; tasks
            whose result is there are not run again. Cleared once every task has
            succeeded (unless ``keep_cache``), so a later run computes afresh.
        progress: ``callback(done, total)``; True shows a bar on a terminal.

    Raises:
        TasksFailed: after every task ran, if any raised; the results of the others
            are in the exception, and in the cache.
    """
    tasks = list(tasks)
    results: list = [_MISSING] * len(tasks)
    cache = Path(cache) if cache is not None else None
    pending = []
    for i, task in enumerate(tasks):
        hit = _load(cache, task) if cache is not None else _MISSING
        if hit is _MISSING:
            pending.append(i)
        else:
            results[i] = hit
    report = _progress(progress, len(tasks), desc)
    done = len(tasks) - len(pending)
    report(done)
    failures = []
    ex = executor if executor is not None else SerialExecutor()
    futures = {ex.submit(_execute, tasks[i]): i for i in pending}
    try:
        for future in cf.as_completed(futures):
            i = futures[future]
            try:
                ok, value = future.result()
            except Exception as err:  # noqa: BLE001 - the worker died, or did not unpickle
                ok, value = False, f"{type(err).__name__}: {err}"
            if ok:
                results[i] = value
                if cache is not None:
                    _store(cache, tasks[i], value)
            else:
                failures.append((tasks[i], value))
                results[i] = None
            done += 1
            report(done)
    finally:
        report(None)
    if failures:
        failures.sort(key=lambda f: tasks.index(f[0]))
        raise TasksFailed(failures, results)
    if cache is not None and not keep_cache:
        shutil.rmtree(cache, ignore_errors=True)
    return results


def _load(cache: Path, task: Task):
    path = cache / f"{task.key}.pkl"
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        return _MISSING


def _store(cache: Path, task: Task, value) -> None:
    atomic_write_bytes(cache / f"{task.key}.pkl", pickle.dumps(value))


def _progress(progress, total: int, desc: str):
    if callable(progress):
        return lambda done: progress(done, total) if done is not None else None
    if progress is None or progress is False or not sys.stderr.isatty():
        return lambda done: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="task", leave=False)

    def update(done):
        if done is None:
            bar.close()
        else:
            bar.n = done
            bar.refresh()

    return update

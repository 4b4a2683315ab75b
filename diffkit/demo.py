"""The main job: the course's worked examples, every study, and a LeNet-5 training run.

``diffkit demo`` (``make demo``) writes each study's report under ``build/reports/``,
a LeNet-5 run on the bundled digits under ``build/reports/training/``, and the index
``build/reports/README.md``, then names the files it wrote. The studies whose full runs
take minutes each (``DEMO_QUICK``) run there on their reduced grids. The reports
committed in ``reports/`` are written only on request (``make reports``), all in full
mode, so running the demo never changes the source tree.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = [
    "run_demo",
    "write_index",
    "STUDIES",
    "DEMO_QUICK",
    "demo_plan",
    "load_study",
    "StudyError",
    "DEFAULT_OUT",
    "COMMITTED_REPORTS",
    "check_report_output",
]

# ``make demo`` keeps to a few minutes: the studies of ``DEMO_QUICK`` (full runs of
# minutes each) run there on their reduced grids; their full runs write the committed
# reports through ``make reports``
DEMO_QUICK = (
    "sparse",
    "memory",
    "higher-order",
    "stacked-convolutions",
    "padding",
    "shift-invariance",
    "batch-dependence",
    "fd-training",
)
STUDIES = (
    "roundoff",
    "blowup",
    "cost",
    "normalization",
    "optimizers",
    "receptive-fields",
    "graphs",
    *DEMO_QUICK,
)
DEFAULT_OUT = Path("build") / "reports"
COMMITTED_REPORTS = Path(__file__).resolve().parents[1] / "reports"


class StudyError(ValueError):
    """An unknown study, a missing study script, or an output that must not be used."""


def studies_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "studies"


def load_study(name: str):
    """The module of ``studies/NAME.py`` (studies are scripts beside the package)."""
    import importlib.util

    if name not in STUDIES:
        raise StudyError(f"unknown study {name!r}; known studies: {', '.join(STUDIES)}")
    path = studies_dir() / f"{name.replace('-', '_')}.py"
    if not path.exists():
        raise StudyError(
            f"study script {path} not found (the studies ship with the source "
            f"tree: install diffkit from a clone, editable)"
        )
    spec = importlib.util.spec_from_file_location(f"diffkit_study_{name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_study(name: str, out: Path, quick: bool = False, executor=None) -> dict:
    """Run one study into ``out``; its tasks on ``executor`` where it has a grid (the
    timing study, ``cost``, always runs serially: its numbers are times)."""
    import inspect

    main = load_study(name).main
    if executor is not None and "executor" in inspect.signature(main).parameters:
        return main(out, quick=quick, executor=executor)
    return main(out, quick=quick)


def check_report_output(out: Path, quick: bool) -> Path:
    """Check ``out`` before any work: refuse a quick run's output inside the committed
    ``reports/`` (reduced grids would replace the full reports there), a path that is a
    file, and a place that cannot be written; ``out`` is created if needed.

    Raises:
        StudyError: one line naming ``--out`` and the path.
    """
    import os

    out = Path(out)
    target = out.resolve()
    if quick and (target == COMMITTED_REPORTS or COMMITTED_REPORTS in target.parents):
        raise StudyError(
            f"--out {out}: --quick runs reduced grids and never writes into the committed "
            f"reports ({COMMITTED_REPORTS}); choose another --out"
        )
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out {out}: is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise StudyError(f"--out {out}: cannot write there ({err.strerror or err})") from None
    return out


TITLES = {
    "roundoff": "Round-off error of finite differences against the step size",
    "blowup": "Expression swell of symbolic derivatives against AD graph sizes",
    "cost": "The cost of a gradient: finite differences, forward, reverse, symbolic",
    "normalization": "Batch, layer and instance normalization in LeNet-5; conv-BN fusion",
    "optimizers": "Stochastic, minibatch, full-batch gradient descent and Newton's method",
    "receptive-fields": "Receptive fields measured by reverse mode; blur and Sobel kernels",
    "graphs": "The course's computational graphs with values and gradients",
    "sparse": "Sparse Jacobians and Hessians: patterns, colourings and what they buy",
    "memory": "Memory against time in reverse mode: checkpointing schedules",
    "higher-order": "Higher-order derivatives: Taylor mode, nesting, symbolic, differences",
    "stacked-convolutions": "Two stacked convolutions are one convolution; what a ReLU adds",
    "padding": "Padding strategies: zeros, reflect, replicate, circular",
    "shift-invariance": "Shift invariance of max pooling, average pooling, strided convolution",
    "batch-dependence": "Batch, layer, instance and group norm on small and skewed batches",
    "fd-training": "Gradient descent on finite-difference gradients: where round-off bites",
    "training": "LeNet-5 trained on the bundled digits with diffkit's reverse mode",
}


def _worked_examples() -> None:
    import diffkit as dk

    x, y, z = dk.variables("x y z")
    f = (x + y) * z
    at = {"x": -2.0, "y": 5.0, "z": -4.0}
    print("f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4:")
    print(f"  f = {dk.evaluate(f, at)}")
    for method in ("reverse", "forward", "symbolic", "central"):
        print(f"  {method:8s} gradient: {dk.gradient(f, at, method=method)}")
    print("d/dx exp(x) sin(x) at x = 1, every method against the 50-digit truth:")
    for row in dk.compare("exp(x)*sin(x)", at={"x": 1.0}):
        print(f"  {row['method']:20s} {row['derivative']:.17g}  rel. error {row['rel_error']:.1e}")


def write_index(out: Path) -> Path:
    """reports/README.md: one line and one thumbnail per report found under ``out``."""
    from .viz.plotting import write_text

    lines = [
        "# diffkit reports\n",
        "Each study answers one question of the course with numbers measured by diffkit. "
        "Regenerate them with `make demo` or `diffkit study NAME`.\n",
    ]
    for name, title in TITLES.items():
        folder = out / name
        if not (folder / "README.md").exists():
            continue
        pngs = sorted(folder.glob("*.png"))
        lines.append(f"## [{title}]({name}/README.md)\n")
        if pngs:
            lines.append(
                f'<a href="{name}/README.md"><img src="{name}/{pngs[0].name}" '
                f'width="420" alt="{name}"></a>\n'
            )
    return write_text(out / "README.md", "\n".join(lines))


def _training(out: Path, quick: bool) -> None:
    from .train import TrainConfig, run
    from .train.loop import remove_stale_temporaries
    from .viz.plotting import markdown_table, write_text

    config = TrainConfig(
        epochs=2 if quick else 30,
        out=str(out),
        train_limit=300 if quick else None,
        test_limit=100 if quick else None,
    )
    for name in ("checkpoint.npz", "history.json", "history.csv"):  # a fresh run each time
        (out / name).unlink(missing_ok=True)
    if out.exists():
        remove_stale_temporaries(out)
    result = run(config, progress=not quick)
    if not result.ok:
        raise RuntimeError(result.diverged or result.failed)
    h = result.history
    n_train, n_test = result.train_size, result.test_size
    text = [
        "# LeNet-5 on the bundled digits\n",
        f"{n_train} training and {n_test} test images (8×8 UCI digits resized to 32×32); "
        f"SGD with momentum {config.momentum}, lr {config.lr} (cosine), weight decay "
        f"{config.weight_decay}, batch {config.batch_size}, random shifts of up to "
        f"{config.augment} pixels; {config.epochs} epochs; gradients by diffkit's reverse "
        f"mode. The same as `diffkit train` with its defaults.\n",
        f"Final test accuracy: **{100 * h[-1]['test_acc']:.2f}%** after {len(h)} epochs.\n",
        "![curves](curves.png)\n",
        markdown_table(
            ["epoch", "train loss", "train acc", "test loss", "test acc"],
            [
                [e["epoch"], e["train_loss"], e["train_acc"], e["test_loss"], e["test_acc"]]
                for e in h
            ],
        ),
    ]
    write_text(out / "README.md", "\n".join(text))


def demo_plan(quick: bool, out: Path, only=None) -> list[tuple[str, bool]]:
    """The studies the demo runs, each with its mode (``True``: reduced grid): all of
    them reduced with ``quick``; into the committed reports all in full; otherwise the
    ones in ``DEMO_QUICK`` reduced. ``only`` (names) keeps a subset, in order."""
    names = STUDIES if only is None else tuple(only)
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise StudyError(f"unknown study {unknown[0]!r}; known studies: {', '.join(STUDIES)}")
    committed = Path(out).resolve() == COMMITTED_REPORTS
    return [(n, quick or (not committed and n in DEMO_QUICK)) for n in names]


def run_demo(quick: bool = False, out: str | Path = DEFAULT_OUT, executor=None, only=None) -> int:
    """Run the demo; returns the exit status."""
    start = time.perf_counter()
    root = check_report_output(Path(out), quick)
    plan = demo_plan(quick, root, only)
    _worked_examples()
    for name, reduced in plan:
        t0 = time.perf_counter()
        print(f"\nstudy {name}{' (reduced grid)' if reduced else ''} ...", flush=True)
        run_study(name, root / name, quick=reduced, executor=executor)
        print(f"study {name}: done in {time.perf_counter() - t0:.1f} s")
    print("\nLeNet-5 on the bundled digits ...", flush=True)
    _training(root / "training", quick)
    index = write_index(root)
    written = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".md", ".png"))
    print(f"\ndemo finished in {time.perf_counter() - start:.1f} s; wrote {len(written)} files:")
    for p in written:
        print(f"  {p}")
    print(f"start reading at {index}")
    return 0

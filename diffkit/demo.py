"""The main job: the course's worked examples, every study, and a LeNet-5 training run.

``diffkit demo`` (``make demo``) writes each study's report under ``reports/``, a
LeNet-5 run on the bundled digits under ``reports/training/``, and the index
``reports/README.md``, then names the files it wrote.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["run_demo", "write_index"]

TITLES = {
    "roundoff": "Round-off error of finite differences against the step size",
    "blowup": "Expression swell of symbolic derivatives against AD graph sizes",
    "cost": "The cost of a gradient: finite differences, forward, reverse, symbolic",
    "normalization": "Batch, layer and instance normalization in LeNet-5; conv-BN fusion",
    "optimizers": "Stochastic, minibatch, full-batch gradient descent and Newton's method",
    "receptive-fields": "Receptive fields measured by reverse mode; blur and Sobel kernels",
    "graphs": "The course's computational graphs with values and gradients",
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
    import numpy as np

    from .nn import LeNet5, manual_seed
    from .train import SGD, CosineLR, fit, load_digits
    from .viz.plotting import markdown_table, write_text

    train, test = load_digits()
    if quick:
        train, test = train.subset(np.arange(300)), test.subset(np.arange(100))
    manual_seed(0)
    model = LeNet5()
    opt = SGD(model.named_parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    ckpt = out / "checkpoint.npz"
    if ckpt.exists():
        ckpt.unlink()
    epochs = 2 if quick else 30
    result = fit(
        model,
        train,
        test,
        opt,
        epochs,
        32,
        seed=0,
        out=out,
        schedule=CosineLR(),
        config={
            "model": "lenet5",
            "dataset": "digits",
            "input_size": 32,
            "batchnorm": False,
            "seed": 0,
            "title": "LeNet-5 on the digits",
        },
        augment=2,
        progress=not quick,
    )
    h = result.history
    text = [
        "# LeNet-5 on the bundled digits\n",
        f"{len(train)} training and {len(test)} test images (8×8 UCI digits resized to 32×32); "
        f"SGD with momentum 0.9, lr 0.05 (cosine), weight decay 5e-4, batch 32, random shifts "
        f"of up to 2 pixels; {epochs} epochs; gradients by diffkit's reverse mode. The same as "
        f"`diffkit train` with its defaults.\n",
        f"Final test accuracy: **{100 * h[-1]['test_acc']:.2f}%** after "
        f"{sum(e['seconds'] for e in h):.1f} s of training.\n",
        "![curves](curves.png)\n",
        markdown_table(
            ["epoch", "train loss", "train acc", "test loss", "test acc", "seconds"],
            [
                [
                    e["epoch"],
                    e["train_loss"],
                    e["train_acc"],
                    e["test_loss"],
                    e["test_acc"],
                    e["seconds"],
                ]
                for e in h
            ],
        ),
    ]
    write_text(out / "README.md", "\n".join(text))


def run_demo(quick: bool = False, out: str = "reports") -> int:
    """Run the demo; returns the exit status."""
    from .commands import STUDIES, load_study

    start = time.perf_counter()
    root = Path(out)
    _worked_examples()
    for name in STUDIES:
        t0 = time.perf_counter()
        print(f"\nstudy {name} ...", flush=True)
        load_study(name).main(root / name, quick=quick)
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

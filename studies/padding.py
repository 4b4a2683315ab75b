"""Padding: zeros, reflect, replicate and circular padding in a small CNN on MNIST digits.

The course (5.2.5) remarks that among padding strategies (nearest-neighbour, circular,
random...) "zero-padding seems to be both simple and effective in practice". Here the
same CNN (three same-padded 3×3 convolutions) is trained with each of PyTorch's four
padding modes on the bundled MNIST subset, once on the whole 28×28 digits (a blank
margin around each digit) and once on their central 16×16 crop (strokes run into the
edge), from the same seeds: each seed gives all four modes the same initial weights and
the same minibatches, so their accuracies are compared in pairs. Beside accuracy, the
trained networks' convolution outputs on the test digits are measured ring by ring from
the border inwards: how much does each mode change the activations where it pads?
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit import nn
from diffkit.ops.joining import pad
from diffkit.tasks import Task, run_tasks
from diffkit.train import SGD, fit, load_mnist_small
from diffkit.train.data import Dataset
from diffkit.viz.plotting import markdown_table, mean_sd, new_figure, save_figure, write_text

# PyTorch's padding_mode names and the np.pad modes that compute them
MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
CROP = 16  # the central crop's side (pixels)
WIDTHS = (8, 16, 16)  # output channels of the three convolutions
LR, MOMENTUM, BATCH = 0.05, 0.9, 32
QUICK = (512, 300)  # training and test digits of a quick run


def load(view: str, quick: bool):
    """(train, test) of the bundled MNIST subset; ``view`` "whole" (28×28) or "crop"
    (the central CROP×CROP pixels)."""
    train, test = load_mnist_small()
    if quick:  # the files are sorted by class: a fixed random subset keeps every class
        train = train.subset(np.sort(np.random.default_rng(0).permutation(len(train))[: QUICK[0]]))
        test = test.subset(np.sort(np.random.default_rng(1).permutation(len(test))[: QUICK[1]]))
    if view == "crop":
        lo = (28 - CROP) // 2
        cut = (slice(None), slice(None), slice(lo, lo + CROP), slice(lo, lo + CROP))
        train = Dataset(np.ascontiguousarray(train.images[cut]), train.labels, 10, "crop")
        test = Dataset(np.ascontiguousarray(test.images[cut]), test.labels, 10, "crop")
    return train, test


class ExplicitPad(nn.Module):
    """One pixel of padding on each side of H and W by ``np.pad`` mode ``mode``."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x):
        return pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode=self.mode)


def padded_conv(cin: int, cout: int, mode: str, explicit: bool = False) -> nn.Module:
    """A 3×3 convolution whose output keeps its input's size, padded by ``mode``
    (a PyTorch padding_mode): ``Conv2d(padding_mode=...)``, or with ``explicit`` the
    padding as its own op before an unpadded ``Conv2d``."""
    if not explicit:
        return nn.Conv2d(cin, cout, 3, padding=1, padding_mode=mode)
    return nn.Sequential(ExplicitPad(MODES[mode]), nn.Conv2d(cin, cout, 3))


class PaddedCNN(nn.Module):
    """(conv 3×3 same-padded, ReLU, max-pool 2)², conv 3×3 same-padded, ReLU, linear."""

    def __init__(self, mode: str, size: int, explicit: bool = False):
        super().__init__()
        c1, c2, c3 = WIDTHS
        self.conv1 = padded_conv(1, c1, mode, explicit)
        self.conv2 = padded_conv(c1, c2, mode, explicit)
        self.conv3 = padded_conv(c2, c3, mode, explicit)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(c3 * (size // 4) ** 2, 10)

    def features(self, x):
        """The three convolutions' outputs (before their ReLU) and the logits."""
        a1 = self.conv1(x)
        a2 = self.conv2(self.pool(self.relu(a1)))
        a3 = self.conv3(self.pool(self.relu(a2)))
        h = self.relu(a3)
        return [a1, a2, a3, self.fc(dk.reshape(h, (h.shape[0], math.prod(h.shape[1:]))))]

    def forward(self, x):
        return self.features(x)[-1]


def ring_distance(h: int, w: int) -> np.ndarray:
    """Each pixel's distance (in pixels) to the nearest edge of an h×w map."""
    i, j = np.arange(h)[:, None], np.arange(w)[None, :]
    return np.minimum(np.minimum(i, h - 1 - i), np.minimum(j, w - 1 - j))


def activation_profiles(model: PaddedCNN, images: np.ndarray) -> dict:
    """Mean |activation| of each convolution's output (over the images and channels) per
    ring (distance to the border), relative to the map's mean; the outermost ring's over
    the next ring's; and the first convolution's per pixel, relative to its mean."""
    x = dk.variable("input", images.shape)
    outs = dk.compile(model.features(x)[:3])({**model.inputs(), "input": images}, strict=False)
    rings, ratio = [], []
    for a in outs:
        mag = np.abs(a.astype(np.float64)).mean(axis=(0, 1))
        d = ring_distance(*mag.shape)
        per = [float(mag[d == k].mean() / mag.mean()) for k in range(int(d.max()) + 1)]
        rings.append(per)
        ratio.append(per[0] / per[1])
    first = np.abs(outs[0].astype(np.float64)).mean(axis=(0, 1))
    return {"rings": rings, "ratio": ratio, "map": first / first.mean()}


def train_cell(mode: str, view: str, epochs: int, quick: bool, seed: int = 0) -> dict:
    """One training run (a task): its history and the trained network's border profile."""
    train, test = load(view, quick)
    nn.manual_seed(seed)
    model = PaddedCNN(mode, train.images.shape[-1])
    result = fit(
        model,
        train,
        test,
        SGD(model, lr=LR, momentum=MOMENTUM),
        epochs=epochs,
        batch_size=BATCH,
        seed=seed,
        progress=False,
        plot=False,
    )
    return {
        "history": result.history,
        "diverged": result.diverged,
        "profile": activation_profiles(model, test.images[:500]),
    }


def agreement(view: str, quick: bool) -> dict:
    """max |Conv2d(padding_mode=m) - (pad by np.pad mode, then Conv2d)| over the test
    digits, each mode, one network's weights."""
    _, test = load(view, quick)
    x = test.images[:64].astype(np.float64)
    out = {}
    for mode in MODES:
        nn.manual_seed(0)
        a = PaddedCNN(mode, x.shape[-1]).to(np.float64)
        nn.manual_seed(0)
        b = PaddedCNN(mode, x.shape[-1], explicit=True).to(np.float64)
        b.load_state_dict(dict(zip(dict(b.state_dict()), a.state_dict().values())))
        v = dk.variable("input", x.shape)
        ya = dk.compile(a.features(v))({**a.inputs(), "input": x}, strict=False)
        yb = dk.compile(b.features(v))({**b.inputs(), "input": x}, strict=False)
        out[mode] = max(float(np.max(np.abs(p - q))) for p, q in zip(ya, yb))
    return out


VIEWS = {"whole": "whole 28×28 digits", "crop": f"central {CROP}×{CROP} crop"}


def main(out: str | Path = "reports/padding", quick: bool = False, executor=None) -> dict:
    out = Path(out)
    seeds = [0, 1] if quick else [0, 1, 2, 3]
    epochs = 2 if quick else 3
    tasks = [
        Task(
            f"{__file__}:train_cell",
            {"mode": mode, "view": view, "epochs": epochs, "quick": quick},
            seed=seed,
            label=f"{mode} padding, {view}",
        )
        for view in VIEWS
        for mode in MODES
        for seed in seeds
    ]
    results = run_tasks(tasks, executor, cache=out / ".tasks", progress=True, desc="padding")
    runs = {(v, m): [] for v in VIEWS for m in MODES}
    for task, r in zip(tasks, results):
        runs[(task.args["view"], task.args["mode"])].append(r)

    def acc(r) -> float:
        return 100 * r["history"][-1]["test_acc"] if r["history"] and not r["diverged"] else 0.0

    accs = {cell: np.array([acc(r) for r in rs]) for cell, rs in runs.items()}
    ratios = {cell: np.array([r["profile"]["ratio"] for r in rs]) for cell, rs in runs.items()}
    agree = {view: agreement(view, quick) for view in VIEWS}
    train_whole, test_whole = load("whole", quick)
    background = float(train_whole.images.min())

    def inked(view) -> float:
        """% of the test digits with ink (a pixel above the background) on the outermost
        ring of pixels."""
        images = load(view, quick)[1].images[:, 0]
        ring = ring_distance(*images.shape[1:]) == 0
        return 100 * float(np.mean((images[:, ring] > background).any(axis=1)))

    ink = {view: inked(view) for view in VIEWS}

    # accuracy: the mean over seeds, and each mode's paired difference to zero padding
    rows, ranking = [], {}
    for view in VIEWS:
        zeros = accs[(view, "zeros")]
        means = {m: float(accs[(view, m)].mean()) for m in MODES}
        ranking[view] = sorted(MODES, key=lambda m: -means[m])
        for mode in MODES:
            diff = accs[(view, mode)] - zeros
            rows.append(
                [
                    VIEWS[view],
                    mode,
                    mean_sd(accs[(view, mode)]),
                    "—" if mode == "zeros" else mean_sd(diff, ".2f"),
                    " ".join(f"{a:.1f}" for a in accs[(view, mode)]),
                ]
            )

    def paired(view, mode):
        """Mean paired difference (mode - zeros) and its standard error over the seeds."""
        d = accs[(view, mode)] - accs[(view, "zeros")]
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
        return float(d.mean()), se

    findings = []
    for view in VIEWS:
        order = ranking[view]
        best = order[0]
        means = {m: float(accs[(view, m)].mean()) for m in MODES}
        rivals = [m for m in MODES if m != "zeros"]
        better = [m for m in rivals if paired(view, m)[0] > 2 * paired(view, m)[1]]
        worse = [m for m in rivals if paired(view, m)[0] < -2 * paired(view, m)[1]]
        held = not better
        line = (
            f"- **{VIEWS[view]}**: zero padding reaches {means['zeros']:.2f}% test accuracy "
            f"(rank {order.index('zeros') + 1} of {len(MODES)}); the best mode is {best} "
            f"({means[best]:.2f}%). Paired over the {len(seeds)} seeds, the modes that beat "
            f"zero padding by more than two standard errors: {', '.join(better) or 'none'}; "
            "those it beats so: "
            f"{', '.join(worse) or 'none'}. "
        )
        line += (
            "On these digits the claim held: no strategy was reliably more accurate than zeros."
            if held
            else "On these digits the claim did not hold: "
            f"{', '.join(better)} {'was' if len(better) == 1 else 'were'} reliably more "
            "accurate than zeros."
        )
        findings.append(line)

    prof_rows = []
    for view in VIEWS:
        for mode in MODES:
            r = ratios[(view, mode)]
            prof_rows.append([VIEWS[view], mode] + [mean_sd(r[:, k], ".3f") for k in range(3)])

    def ratio(view, mode, layer=0):
        return float(ratios[(view, mode)][:, layer].mean())

    for view in VIEWS:
        far = max(MODES, key=lambda m: abs(math.log(ratio(view, m))))
        near = min(MODES, key=lambda m: abs(math.log(ratio(view, m))))
        findings.append(
            f"- Border ring of the first convolution ({VIEWS[view]}, mean |output| on the "
            "outermost ring of pixels ÷ on the next ring in, trained networks): "
            + ", ".join(f"{m} {ratio(view, m):.3f}" for m in MODES)
            + f". Furthest from 1: {far}; closest: {near}."
        )
    findings.append(
        f"- The digits are standardised, so a blank pixel is {background:.3f}, not 0: zero "
        f"padding surrounds each image with a frame {abs(background):.3f} brighter than "
        "its background, while reflect, replicate and circular padding repeat pixels of "
        "the image itself."
    )
    worst = max(v for a in agree.values() for v in a.values())
    findings.append(
        "- `Conv2d(padding_mode=...)`, which every network here uses, and the padding op "
        "(`np.pad` modes constant, reflect, edge and wrap) before an unpadded `Conv2d` give "
        f"the same outputs, with the same weights in float64, to within {worst:.1e} "
        "(every mode, both views, all three convolutions and the logits)."
    )

    # figures
    fig, axes = new_figure(1, 2, figsize=(12, 4.5))
    for ax, view in zip(axes, VIEWS):
        for k, mode in enumerate(MODES):
            a = accs[(view, mode)]
            ax.plot([k] * len(a), a, "o", color=f"C{k}", alpha=0.5)
            ax.errorbar(
                [k + 0.15],
                [a.mean()],
                yerr=[a.std(ddof=1) if len(a) > 1 else 0],
                fmt="s",
                color=f"C{k}",
                capsize=4,
            )
        ax.set_xticks(range(len(MODES)), list(MODES))
        ax.set_xlabel("padding mode")
        ax.set_ylabel(f"test accuracy after {epochs} epoch(s) (%)")
        ax.set_title(f"{VIEWS[view]}: each seed (dots), mean ± sd (squares)")
    save_figure(fig, out / "padding_accuracy.png")

    fig, axes = new_figure(2, 3, figsize=(13, 7.5))
    for row, view in enumerate(VIEWS):
        for layer in range(3):
            ax = axes[row, layer]
            for k, mode in enumerate(MODES):
                curves = np.array([r["profile"]["rings"][layer] for r in runs[(view, mode)]])
                ax.plot(np.arange(curves.shape[1]), curves.mean(0), "o-", color=f"C{k}", label=mode)
            ax.set_xlabel("distance to the border (pixels of this layer)")
            ax.set_ylabel("mean |conv output| ÷ its mean over the map")
            ax.set_title(f"{VIEWS[view]}: conv{layer + 1}", fontsize=10)
            ax.legend(fontsize=8)
    save_figure(fig, out / "padding_border.png")

    fig, _ = new_figure(figsize=(13, 6.8))
    fig.clf()  # a narrow last column holds each row's colour bar
    ratios_w = [1] * len(MODES) + [0.06]
    axes = fig.subplots(2, len(MODES) + 1, gridspec_kw={"width_ratios": ratios_w})
    top = max(float(r["profile"]["map"].max()) for rs in runs.values() for r in rs[:1])
    for row, view in enumerate(VIEWS):
        for k, mode in enumerate(MODES):
            ax = axes[row, k]
            im = ax.imshow(runs[(view, mode)][0]["profile"]["map"], vmin=0, vmax=top)
            ax.set_title(f"{VIEWS[view]}, {mode}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, cax=axes[row, -1], label="÷ the map's mean")
    fig.suptitle(
        f"first convolution: mean |output| per pixel over the test digits (seed {seeds[0]})"
    )
    save_figure(fig, out / "padding_maps.png")

    c1, c2, c3 = WIDTHS
    text = [
        "# Padding strategies\n",
        'The course (5.2.5): zero padding "seems to be both simple and effective in '
        'practice" among padding strategies. A CNN of three same-padded 3×3 convolutions '
        f"({c1}, {c2} and {c3} channels; ReLU; 2×2 max-pooling after the first two) and a "
        f"linear layer is trained on the bundled MNIST subset ({len(train_whole)} training, "
        f"{len(test_whole)} test digits) with each padding mode: on the whole 28×28 digits, "
        f"centred in a blank margin (ink on the outermost ring of pixels in {ink['whole']:.1f}% "
        f"of the test digits), and on their central {CROP}×{CROP} crop, whose strokes run "
        f"into the edge (ink on the outermost ring in {ink['crop']:.1f}%). SGD (lr "
        f"{LR}, momentum {MOMENTUM}, batch {BATCH}) for {epochs} epoch(s), from {len(seeds)} "
        f"seeds ({', '.join(map(str, seeds))}); a seed gives all four modes the same initial "
        "weights and minibatches, so differences to zero padding are taken seed by seed "
        "(paired). A difference counts as reliable when its mean exceeds two standard "
        "errors over the seeds.\n",
        "## Findings\n",
        *findings,
        "\n![accuracy per padding mode](padding_accuracy.png)\n",
        "## Test accuracy\n",
        markdown_table(
            [
                "digits",
                "padding",
                "test acc (%), mean ± sd",
                "paired diff. to zeros (pp), mean ± sd",
                "per seed",
            ],
            rows,
        ),
        "\n## Border activations\n",
        "Mean |output| of each convolution (before its ReLU) over "
        f"{min(500, len(test_whole))} test digits and the channels, on the outermost ring of "
        "pixels (the outputs whose window reaches into the padding) divided by the same on "
        "the next ring in: 1 means the border ring looks like its neighbour. Mean ± sd over "
        "the seeds.\n",
        markdown_table(["digits", "padding", "conv1 ring 0 ÷ ring 1", "conv2", "conv3"], prof_rows),
        "\n![activations against the distance to the border](padding_border.png)\n",
        "![first-layer activation maps](padding_maps.png)\n",
        "## `Conv2d(padding_mode=)` against explicit padding\n",
        "max abs. difference of the outputs (float64, 64 test digits, the same weights):\n",
        markdown_table(
            ["digits"] + list(MODES), [[VIEWS[v]] + [agree[v][m] for m in MODES] for v in VIEWS]
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {
        "accs": {k: v.tolist() for k, v in accs.items()},
        "ratios": {k: v.tolist() for k, v in ratios.items()},
        "agreement": agree,
        "rows": rows,
        "findings": findings,
        "background": background,
        "ink": ink,
    }


if __name__ == "__main__":
    main()

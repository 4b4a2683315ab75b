"""Batch dependence: batch norm against layer, instance and group norm with small and
class-imbalanced batches, batch norm evaluated in training mode, and whether a sample's
output depends on the rest of its batch.

The course (5.5.4, 5.5.5) says that batch normalization "is not always appropriate:
some very unbalanced data sets might not fit", that forgetting to switch it from
training to testing mode is "a very common source of bugs", and that layer and
instance normalization guarantee, even in training, "the independence between elements
of one batch". The same small CNN is trained here with each normalization on MNIST
digits (downsampled to 14×14) at several batch sizes and with batches drawn mostly from
one class; the trained networks are then evaluated in both modes, and a sample's output
is compared when the other samples of its batch are replaced.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit import nn
from diffkit.nn.norm import normalize
from diffkit.tasks import Task, run_tasks
from diffkit.train import SGD, StepGraph, evaluate_model, load_mnist_small
from diffkit.train.data import Dataset, batches, one_hot, resize
from diffkit.viz.plotting import markdown_table, mean_sd, new_figure, save_figure, write_text

SIZE = 14  # the digits are downsampled from 28×28 to SIZE×SIZE
GROUPS = 4  # group norm's groups (of 2 and 4 channels in the two layers)
WIDTHS = (8, 16)
BASE_LR, BASE_BATCH, MOMENTUM = 0.02, 32, 0.9
QUICK = (512, 300)  # training and test digits of a quick run
NORMS = {
    "none": "no normalization",
    "batch": "batch norm",
    "layer": "layer norm",
    "instance": "instance norm",
    "group": f"group norm ({GROUPS} groups)",
}


def load(quick: bool):
    """(train, test): the bundled MNIST subset at SIZE×SIZE; a quick run takes a fixed
    random part of each (the files are sorted by class)."""
    train, test = load_mnist_small()
    if quick:
        train = train.subset(np.sort(np.random.default_rng(0).permutation(len(train))[: QUICK[0]]))
        test = test.subset(np.sort(np.random.default_rng(1).permutation(len(test))[: QUICK[1]]))
    return tuple(
        Dataset(resize(d.images, SIZE), d.labels, d.num_classes, d.name) for d in (train, test)
    )


class ComposedGroupNorm(nn.Module):
    """Group norm composed of a reshape and ``normalize``: the channels in ``num_groups``
    groups, each sample's group normalized over its channels and pixels, then a
    per-channel scale and shift (PyTorch's GroupNorm)."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5):
        super().__init__()
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.add_parameter("weight", np.ones(num_channels))
        self.add_parameter("bias", np.zeros(num_channels))

    def forward(self, x):
        n, c, h, w = x.shape
        grouped = dk.reshape(x, (n, self.num_groups, c // self.num_groups, h, w))
        xhat = dk.reshape(normalize(grouped, (2, 3, 4), self.eps)[0], x.shape)
        shape = (1, c, 1, 1)
        return xhat * dk.reshape(self.param("weight"), shape) + dk.reshape(
            self.param("bias"), shape
        )


def norm_layer(kind: str, channels: int, size: int, composed: bool = False) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.LayerNorm((channels, size, size))
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "group":
        return (ComposedGroupNorm if composed else nn.GroupNorm)(GROUPS, channels)
    return nn.Identity()


class NormCNN(nn.Module):
    """(conv 3×3 same-padded, normalization, ReLU, max-pool 2)² and a linear layer."""

    def __init__(self, kind: str, composed: bool = False):
        super().__init__()
        c1, c2 = WIDTHS
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.norm1 = norm_layer(kind, c1, SIZE, composed)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.norm2 = norm_layer(kind, c2, SIZE // 2, composed)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(c2 * (SIZE // 4) ** 2, 10)

    def forward(self, x):
        x = self.pool(self.relu(self.norm1(self.conv1(x))))
        x = self.pool(self.relu(self.norm2(self.conv2(x))))
        return self.fc(dk.reshape(x, (x.shape[0], math.prod(x.shape[1:]))))


def imbalanced_batches(labels, batch_size: int, dominant: float, rng: np.random.Generator):
    """An epoch of len(labels) // batch_size batches, each drawn round(dominant ×
    batch_size) from one class (a new random class each batch) and the rest from the
    other classes, without repeats inside a batch."""
    classes = np.unique(labels)
    members = {c: np.flatnonzero(labels == c) for c in classes}
    others = {c: np.flatnonzero(labels != c) for c in classes}
    k = round(dominant * batch_size)
    for _ in range(len(labels) // batch_size):
        c = rng.choice(classes)
        yield np.concatenate(
            [
                rng.choice(members[c], k, replace=False),
                rng.choice(others[c], batch_size - k, replace=False),
            ]
        )


def predict(model: nn.Module, images: np.ndarray, order: np.ndarray, batch_size: int, cache):
    """Predicted classes of ``images``, run in batches of ``batch_size`` taken in
    ``order``, in the model's current mode (training mode: batch statistics)."""
    pred = np.empty(len(images), dtype=np.int64)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        key = (model.training, len(idx))
        if key not in cache:
            cache[key] = dk.compile(model(dk.variable("input", (len(idx),) + images.shape[1:])))
        logits = cache[key]({**model.inputs(), "input": images[idx]}, strict=False)
        pred[idx] = np.argmax(logits, 1)
    return pred


def train_mode_accuracy(model: nn.Module, test: Dataset, batch_size: int, by_class: bool):
    """Test accuracy (%) with the model in training mode: each test batch normalized by
    its own statistics (running statistics are left as they are). Batches are a fixed
    shuffle of the test set, or with ``by_class`` the test set sorted by label."""
    order = (
        np.argsort(test.labels, kind="stable")
        if by_class
        else np.random.default_rng(0).permutation(len(test))
    )
    model.train()
    try:
        pred = predict(model, test.images, order, batch_size, {})
    finally:
        model.eval()
    return 100 * float(np.mean(pred == test.labels))


def batch_influence(model: nn.Module, test: Dataset, training: bool, trials: int, seed: int):
    """max |change of one sample's logits| (float64) when the other samples of its batch
    of 8 are replaced by other test digits, over ``trials`` replacements; and the mean
    |logit| of that sample, for scale."""
    model = model.copy().to(np.float64).train(training)
    x = test.images.astype(np.float64)
    rng = np.random.default_rng(seed)
    run = dk.compile(model(dk.variable("input", (8,) + x.shape[1:])))
    at = model.inputs()
    first = None
    worst = 0.0
    for _ in range(trials + 1):
        batch = np.concatenate([x[:1], x[1 + rng.choice(len(x) - 1, 7, replace=False)]])
        logits = run({**at, "input": batch}, strict=False)[0]
        if first is None:
            first = logits
        worst = max(worst, float(np.max(np.abs(logits - first))))
    return worst, float(np.mean(np.abs(first)))


EVAL_BATCHES = ((2, False), (8, False), (32, False), (None, False), (32, True))


def eval_label(size, by_class, n_test) -> str:
    what = f"batches of {size or n_test}"
    return what + (" sorted by class" if by_class else "")


def train_cell(kind: str, batch_size: int, dominant: float, epochs: int, quick: bool, seed=0):
    """One training run (a task): ``kind`` of normalization, minibatches of ``batch_size``
    shuffled (``dominant`` 0) or each drawn that share from one class; the test accuracy
    in evaluation mode and (for shuffled batches of BASE_BATCH) in training mode and the
    batch influence."""
    train, test = load(quick)
    nn.manual_seed(seed)
    model = NormCNN(kind)
    opt = SGD(model, lr=BASE_LR * batch_size / BASE_BATCH, momentum=MOMENTUM)
    graph = StepGraph(model, (batch_size,) + train.images.shape[1:], 10)
    targets = one_hot(train.labels, 10)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        if dominant:
            epoch = imbalanced_batches(train.labels, batch_size, dominant, rng)
        else:
            epoch = batches(len(train), batch_size, rng, drop_last=True)
        total = []
        for idx in epoch:
            loss, _, grads, stats = graph(model, train.images[idx], targets[idx])
            if not math.isfinite(loss):
                return {"diverged": True, "losses": losses, "test_acc": float("nan")}
            opt.step(grads)
            graph.update_statistics(stats)
            total.append(loss)
        losses.append(float(np.mean(total)))
    _, acc = evaluate_model(model, test)
    out = {"diverged": False, "losses": losses, "test_acc": 100 * acc}
    if not dominant and batch_size == BASE_BATCH:
        out["train_mode"] = {
            (size, by_class): train_mode_accuracy(model, test, size or len(test), by_class)
            for size, by_class in EVAL_BATCHES
        }
        trials = 5 if quick else 20
        out["influence"] = {"train": batch_influence(model, test, True, trials, seed)}
        if kind == "batch":
            out["influence"]["eval"] = batch_influence(model, test, False, trials, seed)
    return out


def group_norm_agreement() -> float:
    """max |nn.GroupNorm - ComposedGroupNorm| on a float64 network's outputs with the same
    weights (random, not the identity affine)."""
    nn.manual_seed(0)
    a = NormCNN("group").to(np.float64)
    b = NormCNN("group", composed=True).to(np.float64)
    rng = np.random.default_rng(0)
    state = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in a.state_dict().items()}
    a.load_state_dict(state)
    b.load_state_dict(state)
    x = rng.standard_normal((4, 1, SIZE, SIZE))
    v = dk.variable("input", x.shape)
    ya = dk.compile(a(v))({**a.inputs(), "input": x}, strict=False)
    yb = dk.compile(b(v))({**b.inputs(), "input": x}, strict=False)
    return float(np.max(np.abs(ya - yb)))


def main(out: str | Path = "reports/batch-dependence", quick: bool = False, executor=None):
    out = Path(out)
    sizes = [4, BASE_BATCH] if quick else [2, 4, 8, BASE_BATCH]
    shares = [0.9] if quick else [0.5, 0.9]  # of each imbalanced batch from one class
    seeds = [0, 1] if quick else [0, 1, 2]
    epochs = 1
    cells = [(kind, b, 0) for kind in NORMS for b in sizes]
    cells += [(kind, BASE_BATCH, share) for kind in NORMS for share in shares]
    tasks = [
        Task(
            f"{__file__}:train_cell",
            {"kind": kind, "batch_size": b, "dominant": d, "epochs": epochs, "quick": quick},
            seed=seed,
            label=f"{NORMS[kind]}, batch {b}, " + (f"{d:.0%} one class" if d else "shuffled"),
        )
        for kind, b, d in cells
        for seed in seeds
    ]
    done = run_tasks(tasks, executor, cache=out / ".tasks", progress=True, desc="batch-dependence")
    runs = {cell: [] for cell in cells}
    for task, r in zip(tasks, done):
        a = task.args
        runs[(a["kind"], a["batch_size"], a["dominant"])].append(r)
    train, test = load(quick)
    acc = {cell: np.array([r["test_acc"] for r in rs]) for cell, rs in runs.items()}
    agree = group_norm_agreement()

    def cell_text(values) -> str:
        return mean_sd(values, ".2f")

    def failed(cell) -> int:
        return sum(bool(r["diverged"]) for r in runs[cell])

    # accuracy against batch size and sampling
    acc_rows = []
    for kind in NORMS:
        row = [NORMS[kind]]
        row += [cell_text(acc[(kind, b, 0)]) for b in sizes]
        row += [cell_text(acc[(kind, BASE_BATCH, d)]) for d in shares]
        row += [sum(failed(c) for c in cells if c[0] == kind)]
        acc_rows.append(row)

    def paired(a, b):
        """Mean of a - b over the seeds (NaN runs dropped pairwise) and its standard error."""
        d = a - b
        d = d[~np.isnan(d)]
        if len(d) == 0:
            return float("nan"), float("nan")
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
        return float(d.mean()), se

    def mean(values) -> float:
        values = values[~np.isnan(values)]
        return float(values.mean()) if len(values) else float("nan")

    def reliably(d) -> bool:
        return d[0] > 2 * d[1]

    small = sizes[0]
    others = [k for k in NORMS if k not in ("batch", "none")]
    # accuracy lost (paired) from the base batch size to the smallest
    drop_small = {k: paired(acc[(k, BASE_BATCH, 0)], acc[(k, small, 0)]) for k in NORMS}
    findings = []
    best_small = max(NORMS, key=lambda k: mean(acc[(k, small, 0)]))
    worst_small = max(NORMS, key=lambda k: drop_small[k][0])
    findings.append(
        f"- **Small batches.** Test accuracy at batch size {small}: "
        + ", ".join(f"{NORMS[k]} {mean(acc[(k, small, 0)]):.2f}%" for k in NORMS)
        + f"; the best is {NORMS[best_small]}. From batch {BASE_BATCH} down to {small}, "
        "the accuracy changes by (mean ± standard error of the paired differences): "
        + ", ".join(
            f"{NORMS[k]} {-drop_small[k][0]:+.2f} ± {drop_small[k][1]:.2f} pp" for k in NORMS
        )
        + f"; the largest loss (or smallest gain) is {NORMS[worst_small]}'s. "
        + (
            "Batch norm lost accuracy reliably, and more than layer, instance and group norm."
            if reliably(drop_small["batch"])
            and all(drop_small["batch"][0] > drop_small[k][0] for k in others)
            else "Batch norm did not lose reliably more accuracy than layer, instance and group "
            "norm at small batches here."
        )
    )
    for share in shares:
        drop = {k: paired(acc[(k, BASE_BATCH, 0)], acc[(k, BASE_BATCH, share)]) for k in NORMS}
        worst = max(NORMS, key=lambda k: drop[k][0])
        least = min(NORMS, key=lambda k: drop[k][0])
        held = reliably(drop["batch"]) and all(drop["batch"][0] > drop[k][0] for k in others)
        findings.append(
            f"- **Class-imbalanced batches, {share:.0%} from one class** "
            f"({round(share * BASE_BATCH)} of each {BASE_BATCH}, a new class each batch): the "
            "accuracy changes from shuffled batches by "
            + ", ".join(f"{NORMS[k]} {-drop[k][0]:+.2f} ± {drop[k][1]:.2f} pp" for k in NORMS)
            + f". The largest loss is {NORMS[worst]}'s, the smallest {NORMS[least]}'s. "
            + (
                "The course's warning held here: batch norm lost reliably more than layer, "
                "instance and group norm."
                if held
                else "The course's warning did not show here: batch norm did not lose "
                "reliably more than layer, instance and group norm."
            )
        )

    # evaluation in training mode (the models trained on shuffled batches of BASE_BATCH)
    base = {k: runs[(k, BASE_BATCH, 0)] for k in NORMS}
    mode_rows = []
    for kind in NORMS:
        ok = [r for r in base[kind] if not r["diverged"]]
        row = [NORMS[kind], cell_text([r["test_acc"] for r in ok])]
        row += [cell_text([r["train_mode"][e] for r in ok]) for e in EVAL_BATCHES]
        mode_rows.append(row)
    bn_ok = [r for r in base["batch"] if not r["diverged"]]

    def bn_change(e):  # train-mode accuracy minus evaluation-mode accuracy, mean over seeds
        return float(np.mean([r["train_mode"][e] - r["test_acc"] for r in bn_ok]))

    def max_gap(kind):
        ok = [r for r in base[kind] if not r["diverged"]]
        return max(abs(r["test_acc"] - r["train_mode"][e]) for r in ok for e in EVAL_BATCHES)

    worst_e = min(EVAL_BATCHES, key=bn_change)
    best_e = max(EVAL_BATCHES, key=bn_change)
    findings.append(
        "- **Batch norm evaluated in training mode** (each test batch normalized by its own "
        "statistics, which PyTorch would also fold into the running statistics; here they "
        f"are left as they were; trained on shuffled batches of {BASE_BATCH}): against "
        f"{mean_sd([r['test_acc'] for r in bn_ok], '.2f')}% in evaluation mode, the accuracy "
        "changes by "
        + ", ".join(
            f"{bn_change(e):+.2f} pp with {eval_label(*e, len(test))}" for e in EVAL_BATCHES
        )
        + f" (mean over the seeds). The worst is {eval_label(*worst_e, len(test))} "
        f"({bn_change(worst_e):+.2f} pp), the best {eval_label(*best_e, len(test))} "
        f"({bn_change(best_e):+.2f} pp). For layer, instance and group norm and no "
        "normalization, training and evaluation mode compute the same function: their "
        "accuracies in the two modes differ by at most "
        f"{max(max_gap(k) for k in NORMS if k != 'batch'):.2f} pp."
    )

    # a sample's dependence on the rest of its batch
    infl_rows = []
    for kind in NORMS:
        for mode in ("train", "eval"):
            got = [r["influence"][mode] for r in base[kind] if mode in r.get("influence", {})]
            if got:
                infl_rows.append(
                    [
                        NORMS[kind],
                        "training" if mode == "train" else "evaluation",
                        max(g[0] for g in got),
                        float(np.mean([g[1] for g in got])),
                    ]
                )
    independent = [row for row in infl_rows if row[2] <= 1e-12 * max(1.0, row[3])]
    dependent = [row for row in infl_rows if row not in independent]
    findings.append(
        "- **Independence of the batch** (float64; one test digit's logits while the 7 "
        f"other digits of its batch of 8 are replaced, {5 if quick else 20} times, each "
        "trained network): the largest change of its logits is "
        + ", ".join(f"{row[0]} in {row[1]} mode {row[2]:.1e}" for row in infl_rows)
        + ". Dependent on the batch (change above 1e-12 of the logits' scale): "
        + (", ".join(f"{row[0]} ({row[1]} mode)" for row in dependent) or "none")
        + "; independent: "
        + (", ".join(f"{row[0]} ({row[1]} mode)" for row in independent) or "none")
        + "."
    )
    findings.append(
        f"- `nn.GroupNorm`, which the group-norm networks here use, and group norm composed "
        f"of a reshape and `normalize` give the same network outputs to within {agree:.1e} "
        "(float64, the same random weights)."
    )

    # figures
    fig, axes = new_figure(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    for k, kind in enumerate(NORMS):
        a = np.array([acc[(kind, b, 0)] for b in sizes])
        ax.errorbar(
            sizes,
            np.nanmean(a, 1),
            yerr=np.nanstd(a, 1, ddof=1),
            fmt="o-",
            capsize=3,
            color=f"C{k}",
            label=NORMS[kind],
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.set_xlabel("batch size (lr scaled in proportion)")
    ax.set_ylabel("test accuracy, evaluation mode (%)")
    ax.set_title(f"shuffled batches: mean ± sd over {len(seeds)} seeds")
    ax.legend(fontsize=8)
    ax = axes[1]
    width = 0.8 / (1 + len(shares))
    for j, share in enumerate([0] + shares):
        vals = [acc[(kind, BASE_BATCH, share)] for kind in NORMS]
        ax.bar(
            np.arange(len(NORMS)) + (j - len(shares) / 2) * width,
            [np.nanmean(v) for v in vals],
            width,
            yerr=[np.nanstd(v, ddof=1) for v in vals],
            capsize=3,
            label=f"batches {share:.0%} from one class" if share else "shuffled batches",
        )
    ax.set_xticks(range(len(NORMS)), [NORMS[k].replace(" (", "\n(") for k in NORMS], fontsize=8)
    ax.set_ylabel("test accuracy, evaluation mode (%)")
    ax.set_title(f"batch {BASE_BATCH}: shuffled against class-imbalanced batches")
    lows = [np.nanmin(acc[(k, BASE_BATCH, d)]) for k in NORMS for d in [0] + shares]
    ax.set_ylim(max(0.0, min(lows) - 10), 100)
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, out / "batch_accuracy.png")

    fig, axes = new_figure(1, 2, figsize=(13, 4.8))
    ax = axes[0]
    labels = ["evaluation mode"] + [
        "train mode,\n" + eval_label(*e, len(test)).replace(" sorted", "\nsorted")
        for e in EVAL_BATCHES
    ]
    vals = [[r["test_acc"] for r in bn_ok]] + [
        [r["train_mode"][e] for r in bn_ok] for e in EVAL_BATCHES
    ]
    ax.bar(
        range(len(vals)),
        [np.mean(v) for v in vals],
        yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals],
        capsize=3,
        color=["C0"] + ["C3"] * len(EVAL_BATCHES),
    )
    ax.set_xticks(range(len(vals)), labels, fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0.0, min(np.mean(v) for v in vals) - 15), 100)
    ax.set_title(f"batch norm (trained with batch {BASE_BATCH}) evaluated in each mode")
    ax = axes[1]
    floor = 1e-18
    ax.bar(
        range(len(infl_rows)),
        [max(row[2], floor) for row in infl_rows],
        color=["C3" if row in dependent else "C2" for row in infl_rows],
    )
    ax.set_yscale("log")
    ax.set_ylim(floor / 10, 100)
    ax.set_xticks(
        range(len(infl_rows)),
        [f"{row[0].split(' (')[0]}\n{row[1]}" for row in infl_rows],
        fontsize=7,
    )
    ax.set_ylabel(f"max |change of one sample's logits| (0 drawn at {floor:g})")
    ax.set_title("replacing the other 7 samples of its batch (float64)")
    save_figure(fig, out / "batch_modes.png")

    c1, c2 = WIDTHS
    text = [
        "# Batch dependence of normalization\n",
        'The course (5.5.4, 5.5.5): batch normalization may not suit "very unbalanced data '
        'sets", forgetting to switch it to testing mode is "a very common source of '
        'bugs", and layer and instance normalization keep the elements of a batch '
        "independent even in training. A small CNN (3×3 convolutions of "
        f"{c1} and {c2} channels, each followed by the normalization, ReLU and 2×2 "
        "max-pooling, then a linear layer) is trained with each normalization on the bundled "
        f"MNIST subset downsampled to {SIZE}×{SIZE} ({len(train)} training, {len(test)} test "
        f"digits): batch norm, layer norm (over C×H×W), instance norm (affine) and group "
        f"norm ({GROUPS} groups), against none. SGD with momentum {MOMENTUM} for {epochs} "
        f"epoch(s), learning rate {BASE_LR} × batch / {BASE_BATCH} (the same step per "
        f"sample at every batch size), from {len(seeds)} seeds ({', '.join(map(str, seeds))}"
        "): a seed gives every cell the same initial weights, so differences are taken seed "
        "by seed and called reliable when their mean exceeds two standard errors. Accuracies "
        "are on the test set in evaluation mode unless said otherwise. The course speaks of "
        "unbalanced data sets; here the data set stays balanced and its batches are made "
        "unbalanced: each draws a share of its digits from one class, a new class each "
        "batch, the rest from the other classes.\n",
        "## Findings\n",
        *findings,
        "\n![accuracy against batch size and sampling](batch_accuracy.png)\n",
        "## Test accuracy (%) by batch size and sampling\n",
        markdown_table(
            ["normalization"]
            + [f"batch {b}" for b in sizes]
            + [f"batch {BASE_BATCH}, {d:.0%} from one class" for d in shares]
            + ["diverged runs"],
            acc_rows,
        ),
        "\nMean ± sd over the seeds (runs that diverged left out).\n",
        f"## Training mode at test time (trained on shuffled batches of {BASE_BATCH})\n",
        markdown_table(
            ["normalization", "evaluation mode"]
            + [f"train mode, {eval_label(*e, len(test))}" for e in EVAL_BATCHES],
            mode_rows,
        ),
        "\n![batch norm in each mode, and batch independence](batch_modes.png)\n",
        "## Does a sample's output depend on its batch?\n",
        markdown_table(
            ["normalization", "mode", "max abs. change of its logits", "mean abs. logit"], infl_rows
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {
        "acc": {k: v.tolist() for k, v in acc.items()},
        "acc_rows": acc_rows,
        "mode_rows": mode_rows,
        "influence": infl_rows,
        "findings": findings,
        "group_norm_agreement": agree,
        "sizes": sizes,
        "shares": shares,
    }


if __name__ == "__main__":
    main()

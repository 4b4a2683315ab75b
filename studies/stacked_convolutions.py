"""Stacked convolutions: two convolutions with nothing between them are one convolution.

The course (5.2.4) says that "stacking two convolution layers next to each other
produces another convolutional layer" and adds no representation power, so a
nonlinearity goes between them. Both halves are measured:

- exactness: conv(conv(x, w1, b1), w2, b2) against conv(x, W, B) with the composed
  kernel W (of size K1 + K2 - 1) and bias B, computed here by loops over the kernel
  offsets, for several kernel sizes and channel counts, in float64 and float32; and the
  receptive field of one output pixel (the support of its reverse-mode gradient with
  respect to the input) of both;
- what a ReLU between them adds: a small CNN with two 3×3 convolutions without and with
  a ReLU between them, and one with a single 5×5 convolution in their place, trained on
  the bundled MNIST subset from several seeds; the trained ReLU-free stack is then
  collapsed into one 5×5 convolution and evaluated again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit import nn
from diffkit.tasks import Task, run_tasks
from diffkit.train import Adam, fit, load_mnist_small
from diffkit.train.data import stratified_split
from diffkit.viz.plotting import markdown_table, mean_sd, new_figure, save_figure, write_text

# (K1, K2, input channels, middle channels, output channels)
CASES = [
    (3, 3, 1, 4, 2),
    (3, 5, 3, 6, 4),
    (5, 5, 2, 3, 5),
    (2, 4, 3, 2, 3),
    (1, 3, 2, 5, 2),
    (7, 3, 4, 8, 6),
]
QUICK_CASES = CASES[:3]
SIZE = 17  # input height and width of the exactness cases
# composed-kernel outputs agree "to rounding" when |difference| <= ROUNDING * eps * scale,
# scale being the largest sum of absolute terms of an output
ROUNDING = 8.0
CHANNELS = 8
KINDS = ("no ReLU between", "ReLU between", "one 5×5 conv")


def compose(w1, b1, w2, b2):
    """The kernel and bias of conv(conv(x, w1, b1), w2, b2) as one convolution (valid
    padding, stride 1): W[o, i, a + c, b + d] += w2[o, m, c, d] w1[m, i, a, b] and
    B[o] = b2[o] + sum over m, c, d of w2[o, m, c, d] b1[m]; loops over kernel offsets."""
    o_ch, m_ch, k2h, k2w = w2.shape
    _, i_ch, k1h, k1w = w1.shape
    W = np.zeros((o_ch, i_ch, k1h + k2h - 1, k1w + k2w - 1))
    for c in range(k2h):
        for d in range(k2w):
            W[:, :, c : c + k1h, d : d + k1w] += np.einsum(
                "om,miab->oiab", w2[:, :, c, d].astype(np.float64), w1.astype(np.float64)
            )
    B = b2.astype(np.float64) + np.einsum("omcd,m->o", w2.astype(np.float64), b1)
    return W, B


def _support(grad: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the non-zero entries of (C, H, W)."""
    rows = np.flatnonzero(np.any(grad != 0, axis=(0, 2)))
    cols = np.flatnonzero(np.any(grad != 0, axis=(0, 1)))
    return (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)) if rows.size else (0, 0)


def exact_case(k1, k2, cin, cmid, cout, dtype, seed=0) -> dict:
    """One exactness case (a task): outputs, receptive fields and the kernel read back
    from the gradient, for the stack and for the composed convolution."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype).type
    x = rng.standard_normal((2, cin, SIZE, SIZE)).astype(dt)
    w1 = rng.standard_normal((cmid, cin, k1, k1)).astype(dt)
    b1 = rng.standard_normal(cmid).astype(dt)
    w2 = rng.standard_normal((cout, cmid, k2, k2)).astype(dt)
    b2 = rng.standard_normal(cout).astype(dt)
    W, B = compose(w1, b1, w2, b2)
    xv = dk.variable("x", x.shape)
    v = {n: dk.variable(n, a.shape) for n, a in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))}
    vW, vB = dk.variable("W", W.shape), dk.variable("B", B.shape)
    stacked = dk.conv2d(dk.conv2d(xv, v["w1"], v["b1"]), v["w2"], v["b2"])
    single = dk.conv2d(xv, vW, vB)
    at = {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2, "W": W.astype(dt), "B": B.astype(dt)}
    y2, y1 = dk.evaluate([stacked, single], at)
    # the scale of rounding: the largest sum of absolute terms of an output of the stack
    # (which bounds that of the composed convolution, |W| <= |w2| * |w1| termwise)
    absolute = {n: np.abs(a).astype(np.float64) for n, a in at.items()}
    scale = float(np.max(dk.evaluate(stacked, absolute)))
    eps = float(np.finfo(dt).eps)
    diff = float(np.max(np.abs(y2.astype(np.float64) - y1.astype(np.float64))))
    # receptive field: gradient of one output pixel (channel 0, centre) w.r.t. the input
    oh = y2.shape[2]
    r = oh // 2
    fields, kernel_err, maps = [], 0.0, []
    for out in (stacked, single):
        pixel = out[0, 0, r, r]
        g = dk.gradient(pixel, at, wrt="x", method="reverse")["x"][0]
        maps.append(g[0, max(r - 2, 0) : r + W.shape[2] + 2, max(r - 2, 0) : r + W.shape[3] + 2])
        fields.append(_support(g))
        # d y[0, 0, r, r] / d x[0, i, r + a, r + b] = W[0, i, a, b]: the kernel, read back
        k = W.shape[2]
        read = g[:, r : r + k, r : r + k].astype(np.float64)
        kernel_err = max(kernel_err, float(np.max(np.abs(read - W[0]))) / float(np.abs(W).max()))
        outside = np.ones(g.shape, bool)
        outside[:, r : r + k, r : r + k] = False
        if np.any(g[outside] != 0):  # a dependence outside the composed kernel's window
            kernel_err = float("inf")
    return {
        "case": (k1, k2, cin, cmid, cout),
        "dtype": np.dtype(dtype).name,
        "composed": W.shape[2],
        "out_shape": tuple(y2.shape),
        "max_diff": diff,
        "scale": scale,
        "units": diff / (eps * scale),
        "field_stacked": fields[0],
        "field_single": fields[1],
        "kernel_error": kernel_err,
        "example": {
            "w1": w1[:, 0].astype(np.float64),
            "w2": w2[0].astype(np.float64),
            "W": W[0, 0],
            "field": maps[0].astype(np.float64),
        }
        if (cin, dtype) == (1, "float64")
        else None,
    }


def make_model(kind: str, seed: int):
    nn.manual_seed(seed)
    c = CHANNELS
    head = [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c * 12 * 12, 10)]
    if kind == "no ReLU between":
        return nn.Sequential(nn.Conv2d(1, c, 3), nn.Conv2d(c, c, 3), *head)
    if kind == "ReLU between":
        return nn.Sequential(nn.Conv2d(1, c, 3), nn.ReLU(), nn.Conv2d(c, c, 3), *head)
    return nn.Sequential(nn.Conv2d(1, c, 5), *head)


def _data(quick: bool):
    """The MNIST subset; in quick mode a stratified sample (the bundled set is sorted)."""
    data = load_mnist_small()
    if quick:
        data = [d.subset(stratified_split(d.labels, n, 0)[1]) for d, n in zip(data, (600, 300))]
    return data


def epochs_of(quick: bool) -> int:
    return 1 if quick else 10


def _logits(model, images):
    x = dk.variable("input", images.shape)
    return dk.evaluate(model.eval()(x), {**model.inputs(), "input": images})


def train_cell(kind: str, quick: bool, seed: int = 0) -> dict:
    """One training run (a task): the model of ``kind`` from ``seed``, Adam, its history;
    for the ReLU-free stack also the collapse of its trained convolutions into one."""
    train, test = _data(quick)
    model = make_model(kind, seed)
    result = fit(
        model,
        train,
        test,
        Adam(model.named_parameters(), lr=1e-3),
        epochs_of(quick),
        batch_size=64,
        seed=seed,
        progress=False,
        plot=False,
    )
    out = {
        "history": result.history,
        "diverged": result.diverged,
        "parameters": int(sum(p.size for p in model.parameters())),
    }
    if kind == "no ReLU between":
        state = dict(model.state_dict())
        W, B = compose(state["0.weight"], state["0.bias"], state["1.weight"], state["1.bias"])
        single = make_model("one 5×5 conv", seed)
        single.load_state_dict(
            {
                "0.weight": W.astype(np.float32),
                "0.bias": B.astype(np.float32),
                "4.weight": state["5.weight"],
                "4.bias": state["5.bias"],
            }
        )
        a, b = _logits(model, test.images), _logits(single, test.images)
        out["collapse"] = {
            "max_logit_diff": float(np.max(np.abs(a - b))),
            "max_logit": float(np.max(np.abs(a))),
            "same_predictions": int(np.sum(np.argmax(a, 1) == np.argmax(b, 1))),
            "test_size": len(test),
            "acc_stack": float(np.mean(np.argmax(a, 1) == test.labels)),
            "acc_single": float(np.mean(np.argmax(b, 1) == test.labels)),
        }
    return out


def main(
    out: str | Path = "reports/stacked-convolutions", quick: bool = False, executor=None
) -> dict:
    out = Path(out)
    cases = QUICK_CASES if quick else CASES
    seeds = [0, 1] if quick else [0, 1, 2]
    dtypes = ("float64", "float32")
    exact_tasks = [
        Task(
            f"{__file__}:exact_case",
            {"k1": c[0], "k2": c[1], "cin": c[2], "cmid": c[3], "cout": c[4], "dtype": dt},
            seed=0,
        )
        for c in cases
        for dt in dtypes
    ]
    train_tasks = [
        Task(f"{__file__}:train_cell", {"kind": kind, "quick": quick}, seed=seed, label=kind)
        for kind in KINDS
        for seed in seeds
    ]
    done = run_tasks(
        exact_tasks + train_tasks,
        executor,
        cache=out / ".tasks",
        progress=True,
        desc="stacked-convolutions",
    )
    exact = done[: len(exact_tasks)]
    runs = {kind: [] for kind in KINDS}
    for task, r in zip(train_tasks, done[len(exact_tasks) :]):
        runs[task.args["kind"]].append(r)

    # ---- exactness ------------------------------------------------------------------
    exact_rows = [
        [
            "K1={}, K2={}, C={}→{}→{}".format(*e["case"]),
            e["dtype"],
            f"{e['composed']}×{e['composed']}",
            "×".join(map(str, e["out_shape"])),
            e["max_diff"],
            e["units"],
            "{}×{}".format(*e["field_stacked"]),
            "{}×{}".format(*e["field_single"]),
            e["kernel_error"],
        ]
        for e in exact
    ]
    rounding = {dt: max(e["units"] for e in exact if e["dtype"] == dt) for dt in dtypes}
    fields_ok = all(
        e["field_stacked"] == e["field_single"] == (e["composed"], e["composed"])
        and e["composed"] == e["case"][0] + e["case"][1] - 1
        for e in exact
    )
    kernel_worst = max(e["kernel_error"] for e in exact if e["dtype"] == "float64")
    exact_held = all(rounding[dt] <= ROUNDING for dt in dtypes)

    example = next(e["example"] for e in exact if e["example"] is not None)
    m = len(example["w1"])
    fig, axes = new_figure(2, m + 1, figsize=(2.4 * (m + 1), 6.2))

    def show(ax, kernel, title):
        lim = float(np.abs(kernel).max()) or 1.0
        ax.imshow(kernel, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])

    for j in range(m):
        show(axes[0, j], example["w1"][j], f"first conv, m = {j}")
        show(axes[1, j], example["w2"][j], f"second conv, m = {j}")
    k = example["W"].shape[0]
    show(axes[0, m], example["W"], f"composed, {k}×{k}")
    show(axes[1, m], example["field"], "∂y/∂x of the stack")
    fig.suptitle(
        "Two 3×3 convolutions through m = 0…3 middle channels (one input and one output "
        "channel shown), the 5×5 kernel\nthey compose to, and the reverse-mode gradient of "
        "one output pixel y of the stack w.r.t. its input x: that kernel, zero around it"
    )
    save_figure(fig, out / "stacked_kernels.png")

    # ---- training -------------------------------------------------------------------
    def accs(kind):
        return [100 * r["history"][-1]["test_acc"] for r in runs[kind]]

    def losses(kind):
        return [r["history"][-1]["train_loss"] for r in runs[kind]]

    epochs = epochs_of(quick)
    fig, axes = new_figure(1, 2, figsize=(13, 4.8))
    for k, kind in enumerate(KINDS):
        for i, r in enumerate(runs[kind]):
            e = [h["epoch"] for h in r["history"]]
            axes[0].plot(
                e,
                [100 * h["test_acc"] for h in r["history"]],
                "o-",
                color=f"C{k}",
                alpha=1.0 if i == 0 else 0.5,
                label=kind if i == 0 else None,
            )
            axes[1].semilogy(
                e,
                [h["train_loss"] for h in r["history"]],
                "o-",
                color=f"C{k}",
                alpha=1.0 if i == 0 else 0.5,
                label=kind if i == 0 else None,
            )
    axes[0].set_ylabel("test accuracy (%)")
    axes[1].set_ylabel("training loss (mean over the epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.set_xticks(range(1, epochs + 1))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"MNIST subset, Adam: one line per seed ({len(seeds)} seeds)")
    save_figure(fig, out / "stacked_training.png")

    train_rows = [
        [
            kind,
            runs[kind][0]["parameters"],
            mean_sd(losses(kind)),
            mean_sd([100 * r["history"][-1]["train_acc"] for r in runs[kind]]),
            mean_sd(accs(kind)),
            ", ".join(f"{a:.1f}" for a in accs(kind)),
        ]
        for kind in KINDS
    ]
    collapse = [r["collapse"] for r in runs["no ReLU between"]]
    same = sum(c["same_predictions"] for c in collapse)
    total = sum(c["test_size"] for c in collapse)
    logit_diff = max(c["max_logit_diff"] for c in collapse)
    logit_scale = max(c["max_logit"] for c in collapse)
    lin, relu, one = (np.mean(accs(k)) for k in KINDS)
    gap = relu - lin
    if min(accs("ReLU between")) > max(accs("no ReLU between")):
        relu_verdict = (
            f"the ReLU between the convolutions adds {gap:.1f} points of test accuracy, and "
            "every seed with it beats every seed without it"
        )
    elif gap > 0:
        relu_verdict = (
            f"the ReLU between the convolutions adds {gap:.1f} points on average, but the "
            "seeds overlap, so the gain is within the spread over seeds"
        )
    else:
        relu_verdict = (
            f"the ReLU between the convolutions does not raise test accuracy here "
            f"({gap:+.1f} points on average)"
        )
    lo, hi = sorted((lin, one))
    same_class = (
        "within the spread over seeds"
        if max(accs("no ReLU between")) >= min(accs("one 5×5 conv"))
        and max(accs("one 5×5 conv")) >= min(accs("no ReLU between"))
        else "apart by more than the spread over seeds (the two parameterizations of the same "
        "functions train differently)"
    )
    text = [
        "# Stacked convolutions\n",
        'The course (5.2.4): "stacking two convolution layers next to each other produces '
        'another convolutional layer", so a nonlinearity goes between them. Two parts: '
        "the identity itself, and what the ReLU between two convolutions adds to a trained "
        "network.\n",
        "## Findings\n",
        f"- Two stacked convolutions without a nonlinearity are one convolution with the "
        f"composed kernel (size K1 + K2 − 1): over {len(cases)} geometries the outputs agree "
        f"to at most {rounding['float64']:.2g} × eps × scale in float64 and "
        f"{rounding['float32']:.2g} × eps × scale in float32 (scale: the largest sum of "
        f"absolute terms of an output). The identity "
        + ("held to rounding" if exact_held else "did NOT hold to rounding")
        + f" (bound: {ROUNDING:g} × eps × scale).",
        "- The receptive field of an output pixel (the support of its reverse-mode gradient "
        "with respect to the input) is "
        + (
            "K1 + K2 − 1 square for the stack and for the single convolution in every case"
            if fields_ok
            else "NOT the same for the stack and the single convolution in every case (see "
            "the table)"
        )
        + f"; that gradient read back as a kernel matches the composed kernel to "
        f"{kernel_worst:.1e} (relative, float64).",
        f"- Trained on the MNIST subset ({len(seeds)} seeds, {epochs} epoch"
        f"{'s' if epochs != 1 else ''}): two 3×3 "
        f"convolutions without a ReLU between them reach {mean_sd(accs('no ReLU between'))}% "
        f"test accuracy, with a ReLU {mean_sd(accs('ReLU between'))}%, one 5×5 convolution "
        f"{mean_sd(accs('one 5×5 conv'))}%: {relu_verdict}. Final training loss (mean over "
        f"the last epoch): "
        + ", ".join(f"{mean_sd(losses(kind))} ({kind})" for kind in KINDS)
        + f"; the lowest, {min(KINDS, key=lambda kind: np.mean(losses(kind)))}, fits the "
        "training images best."
        + (
            " On average the ReLU-free stack fits them better than the single 5×5 "
            "convolution, which "
            "can represent every function the stack can: the two parameterizations of one "
            "set of functions train differently."
            if np.mean(losses("no ReLU between")) < np.mean(losses("one 5×5 conv"))
            else ""
        ),
        f"- The ReLU-free stack (whose every function is also one of the single 5×5 "
        f"convolution's) and the single convolution "
        f"differ by {hi - lo:.1f} points on average, {same_class}.",
        f"- Each trained ReLU-free stack, collapsed into one 5×5 convolution (`compose`), "
        f"gives the same prediction on {same} of {total} test images (all seeds together); "
        f"its logits move by at "
        f"most {logit_diff:.1e} (float32; largest logit {logit_scale:.1f}).",
        "\n![kernels](stacked_kernels.png)\n\n![training](stacked_training.png)\n",
        "## Exactness\n",
        "Input 2×C×{0}×{0} (valid padding, stride 1), standard normal weights, biases and "
        "inputs; composed kernel and bias by loops over kernel offsets. Units: "
        "|difference| / (eps × scale).\n".format(SIZE),
        markdown_table(
            [
                "geometry",
                "dtype",
                "composed kernel",
                "output",
                "max |difference|",
                "units of eps × scale",
                "receptive field, stack",
                "receptive field, single",
                "kernel read from gradient: rel. error",
            ],
            exact_rows,
        ),
        "\n## Training\n",
        f"Each network: the convolutions ({CHANNELS} channels, valid padding), ReLU, 2×2 max "
        f"pooling, a linear layer to 10 classes; Adam (lr 1e-3), batch 64, {epochs} epoch"
        f"{'s' if epochs != 1 else ''} "
        f"on {len(_data(quick)[0])} training images, tested on {len(_data(quick)[1])}.\n",
        markdown_table(
            [
                "network",
                "parameters",
                "final train loss",
                "final train acc (%)",
                "test acc (%)",
                "test acc per seed (%)",
            ],
            train_rows,
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {
        "exact": exact,
        "exact_rows": exact_rows,
        "rounding": rounding,
        "fields_ok": fields_ok,
        "runs": runs,
        "train_rows": train_rows,
        "collapse": collapse,
    }


if __name__ == "__main__":
    main()

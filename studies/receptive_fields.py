"""Receptive fields, measured by reverse mode, and the course's fixed kernels on a digit.

The receptive field of an output pixel is the set of input pixels it depends on:
the support of the gradient of that pixel with respect to the input. For L
stacked K×K convolutions the course predicts a side of 1 + L(K - 1); strides
and pooling multiply the growth. Also: the Gaussian blur and the Sobel operators
applied to a digit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import diffkit as dk
from diffkit.tasks import Task, run_tasks
from diffkit.nn import kernels
from diffkit.train import load_digits
from diffkit.viz.plotting import markdown_table, new_figure, save_figure, write_text


def measure(layers, size=64, seed=0):
    """Side of the gradient support of the centre output pixel, and the gradient image.

    ``layers`` lists ("conv", K, stride), ("avgpool", K) or ("pool", K) (max) entries.
    """
    rng = np.random.default_rng(seed)
    x = dk.variable("x", (1, 1, size, size))
    h = x
    for layer in layers:
        if layer[0] == "conv":
            _, k, s = layer
            h = dk.conv2d(h, dk.const(rng.random((1, 1, k, k)) + 0.1), stride=s, padding=k // 2)
        elif layer[0] == "avgpool":
            h = dk.avg_pool2d(h, layer[1])
        else:
            h = dk.max_pool2d(h, layer[1])
    c = h.shape[-1] // 2
    mask = np.zeros(h.shape)
    mask[0, 0, c, c] = 1.0
    g = dk.gradient(dk.sum(h * dk.const(mask)), {"x": rng.random((1, 1, size, size))})["x"][0, 0]
    rows, cols = np.nonzero(g)
    return int(rows.max() - rows.min() + 1), g


def theory(layers):
    """r = 1 + sum over layers of (K - 1) × (product of the strides before it)."""
    r, jump = 1, 1
    for layer in layers:
        k, s = (layer[1], layer[2]) if layer[0] == "conv" else (layer[1], layer[1])
        r += (k - 1) * jump
        jump *= s
    return r


SETTINGS = {
    "3×3 conv, stride 1": lambda L: [("conv", 3, 1)] * L,
    "5×5 conv, stride 1": lambda L: [("conv", 5, 1)] * L,
    "3×3 conv, stride 2": lambda L: [("conv", 3, 2)] * L,
    "3×3 conv + 2×2 avg-pool": lambda L: [
        x for _ in range(L) for x in (("conv", 3, 1), ("avgpool", 2))
    ],
    "3×3 conv + 2×2 max-pool": lambda L: [
        x for _ in range(L) for x in (("conv", 3, 1), ("pool", 2))
    ],
}


def measure_task(setting: str, depth: int) -> int:
    """The measured side for one setting and depth (a task)."""
    layers = SETTINGS[setting](depth)
    return measure(layers, size=max(64, 2 * theory(layers) + 8))[0]


def main(out: str | Path = "reports/receptive-fields", quick: bool = False, executor=None) -> dict:
    out = Path(out)
    depths = range(1, 4 if quick else 7)
    settings = SETTINGS
    max_pool = "3×3 conv + 2×2 max-pool"
    tasks = [
        Task(f"{__file__}:measure_task", {"setting": name, "depth": L}, seed=None)
        for name in settings
        for L in depths
    ]
    done = run_tasks(tasks, executor, cache=out / ".tasks", progress=True, desc="receptive")
    sides_of = {(t.args["setting"], t.args["depth"]): side for t, side in zip(tasks, done)}
    rows, measured = [], {}
    fig, ax = new_figure()
    for name, make in settings.items():
        sides, preds = [], []
        for L in depths:
            layers = make(L)
            side = sides_of[(name, L)]
            sides.append(side)
            preds.append(theory(layers))
            verdict = "yes" if side == theory(layers) else "no"
            if name == max_pool:  # the gradient follows one maximum per window
                verdict = "smaller (one path per window)" if side < theory(layers) else verdict
            rows.append([name, L, side, theory(layers), 1 + L * (layers[0][1] - 1), verdict])
        measured[name] = (list(depths), sides, preds)
        ax.plot(list(depths), sides, "o-", label=f"{name} (measured)")
        ax.plot(list(depths), preds, "k:", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("depth L (number of conv layers)")
    ax.set_ylabel("receptive field side (pixels)")
    ax.set_title("receptive field by reverse mode (dotted: theory)")
    ax.legend(fontsize=8)
    save_figure(fig, out / "receptive_field_growth.png")

    L = 3
    fig, axes = new_figure(1, 3, figsize=(12, 4))
    for a, (name, layers) in zip(
        axes,
        [
            ("3 × (3×3 conv)", [("conv", 3, 1)] * L),
            ("3 × (5×5 conv)", [("conv", 5, 1)] * L),
            ("3 × (3×3 conv, stride 2)", [("conv", 3, 2)] * L),
        ],
    ):
        side, g = measure(layers, size=48)
        im = a.imshow(np.abs(g), cmap="magma")
        a.set_title(f"{name}: side {side}")
        a.set_xlabel("input column")
        a.set_ylabel("input row")
        fig.colorbar(im, ax=a, shrink=0.8, label="|d out / d input|")
    save_figure(fig, out / "receptive_field_maps.png")

    # the course's fixed kernels on a real digit
    train, _ = load_digits(size=32, dtype=np.float64)
    digit = train.images[0:1]
    digit = (digit - digit.min()) / (digit.max() - digit.min())  # background 0, like the padding
    x = dk.variable("x", digit.shape)
    weight = kernels.as_weight(kernels.GAUSSIAN_BLUR, kernels.SOBEL_X, kernels.SOBEL_Y)
    maps = dk.evaluate(dk.conv2d(x, dk.const(weight), padding=1), {"x": digit})[0]
    magnitude = np.sqrt(maps[1] ** 2 + maps[2] ** 2)
    fig, axes = new_figure(1, 5, figsize=(16, 3.6))
    panels = [
        ("digit", digit[0, 0], "gray"),
        ("Gaussian blur G", maps[0], "gray"),
        ("Sobel S_x (horizontal derivative)", maps[1], "RdBu"),
        ("Sobel S_y = S_xᵀ (vertical)", maps[2], "RdBu"),
        ("gradient magnitude", magnitude, "magma"),
    ]
    for a, (title, img, cmap) in zip(axes, panels):
        if cmap == "RdBu":
            lim = np.abs(img).max()
            im = a.imshow(img, cmap=cmap, vmin=-lim, vmax=lim)
        else:
            im = a.imshow(img, cmap=cmap)
        fig.colorbar(im, ax=a, shrink=0.75, label="pixel value" if title == "digit" else "response")
        a.set_title(title, fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    save_figure(fig, out / "kernels_on_a_digit.png")

    geometric = [r for r in rows if r[0] != max_pool]
    agree = sum(r[-1] == "yes" for r in geometric)
    mp = measured[max_pool]
    s1 = measured["3×3 conv, stride 1"]
    s2 = measured["3×3 conv, stride 2"]
    text = [
        "# Receptive fields\n",
        "The receptive field of the centre output pixel, measured as the support of its "
        "gradient with respect to the input (reverse mode, random positive kernels so "
        "nothing cancels), against theory: r = 1 + Σ (K_l − 1)·(product of earlier "
        "strides), which for L stride-1 K×K convolutions is the course's 1 + L(K − 1).\n",
        "## Findings\n",
        f"- Measured and predicted sides agree in {agree} of {len(geometric)} configurations "
        f"of convolutions and average pooling.",
        f"- Stride-1 3×3 convolutions grow the field linearly: {s1[1]} for L = "
        f"{list(s1[0])}. With stride 2 the growth is exponential: {s2[1]}.",
        f"- Pooling after each convolution doubles the jump between neighbouring outputs, so "
        f"later kernels see farther. With max-pooling the gradient flows through one maximum "
        f"per window only, so the measured support ({mp[1]}) is smaller than the geometric "
        f"receptive field ({mp[2]}): it depends on the input.\n",
        "![growth](receptive_field_growth.png)\n\n![maps](receptive_field_maps.png)\n",
        "## The fixed kernels of the course on a digit\n",
        "Blur G = (1/16)[[1,2,1],[2,4,2],[1,2,1]]; Sobel S_x = [[1,0,−1],[2,0,−2],[1,0,−1]] and "
        "S_y = S_xᵀ, applied by `dk.conv2d` (cross-correlation, as in PyTorch) to the first "
        "training digit resized to 32×32.\n",
        "![kernels](kernels_on_a_digit.png)\n",
        "## Measurements\n",
        markdown_table(
            ["setting", "L", "measured side", "predicted side", "1 + L(K−1)", "agree"], rows
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {"rows": rows, "measured": measured}


if __name__ == "__main__":
    main()

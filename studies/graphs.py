"""The computational graphs of the course notes, regenerated from the IR.

(x + y)·z at (-2, 5, -4) with its forward values and backward gradients (Figures
2.3-2.4 and the backward pass of section 2.4.3), and the sigmoid neuron
1/(1 + exp(-(w0 x0 + w1 x1 + w2))) of section 2.4.5, built from elementary ops and
with the hand-differentiated sigmoid block.
"""

from __future__ import annotations

from pathlib import Path

import diffkit as dk
from diffkit.viz.plotting import markdown_table, write_text

NEURON_AT = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


def main(out: str | Path = "reports/graphs", quick: bool = False) -> dict:
    out = Path(out)
    x, y, z = dk.variables("x y z")
    at = {"x": -2.0, "y": 5.0, "z": -4.0}
    simple = dk.viz.draw_graph(
        (x + y) * z,
        at=at,
        path=out / "graph_xyz.png",
        title="f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4",
    )
    w0, w1, w2, x0, x1 = dk.variables("w0 w1 w2 x0 x1")
    s = w0 * x0 + w1 * x1 + w2
    elementary = dk.viz.draw_graph(
        1.0 / (1.0 + dk.exp(-s)),
        at=NEURON_AT,
        path=out / "graph_neuron.png",
        title="sigmoid neuron from elementary operations",
    )
    block = dk.viz.draw_graph(
        dk.sigmoid(s),
        at=NEURON_AT,
        path=out / "graph_neuron_block.png",
        title="sigmoid neuron with the σ block (hand-written derivative)",
    )
    rows = [
        [name, simple["values"][name], simple["gradients"][name]]
        for name in ("x", "y", "z", "+", "×")
    ]
    neuron_rows = [
        [name, elementary["values"][name], elementary["gradients"][name], block["gradients"][name]]
        for name in ("w0", "x0", "w1", "x1", "w2")
    ]
    text = [
        "# Computational graphs of the course, from the IR\n",
        "Drawn by `dk.viz.draw_graph(expr, at, grads=True, path=...)` (also "
        '`diffkit graph "EXPR" --at ... --out FILE.png`). On each edge: the value flowing '
        "forward (green, above) and the derivative of the output with respect to it, "
        "flowing backward (red, below), computed by reverse mode.\n",
        "## f(x, y, z) = (x + y) z\n",
        "![xyz](graph_xyz.png)\n",
        f"Forward: q = x + y = {simple['values']['+']:g}, f = {simple['values']['×']:g}. "
        f"Backward: df/dz = q = {simple['gradients']['z']:g}, df/dq = z = "
        f"{simple['gradients']['+']:g}, df/dx = df/dy = {simple['gradients']['x']:g}, as in "
        "section 2.4.3.\n",
        markdown_table(["node", "value", "d f / d node"], rows),
        "\n## The sigmoid neuron\n",
        "![neuron](graph_neuron.png)\n\n![neuron with the sigmoid block](graph_neuron_block.png)\n",
        f"Output {elementary['values']['÷']:.4f}. The σ block gives the same gradients with "
        f"{len(block['order'])} nodes instead of {len(elementary['order'])}.\n",
        markdown_table(
            ["input", "value", "gradient (elementary)", "gradient (σ block)"], neuron_rows
        ),
    ]
    write_text(out / "README.md", "\n".join(text))
    return {"simple": simple, "elementary": elementary, "block": block}


if __name__ == "__main__":
    main()

"""Drawing computational graphs with their forward values and backward gradients.

``draw_graph`` lays the DAG out left to right by depth (inputs on the left),
labels each node with its op, and writes on each edge the value flowing forward
(green, above) and the gradient of the output with respect to it flowing back
(red, below), like the figures of the course notes.

>>> import diffkit as dk
>>> x, y, z = dk.variables("x y z")
>>> info = dk.viz.draw_graph((x + y) * z, at={"x": -2, "y": 5, "z": -4})
>>> info["values"]["+"], info["gradients"]["+"]
(3.0, -4.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..differentiators.reverse import vjp_graph
from ..ir.node import Node, const
from ..ir.schedule import compile, topological_order
from .plotting import new_figure, save_figure

__all__ = ["draw_graph", "node_label"]

_SYMBOLS = {
    "add": "+",
    "sub": "−",
    "mul": "×",
    "div": "÷",
    "neg": "−1×",
    "pow": "^",
    "sigmoid": "σ",
    "matmul": "@",
}


def node_label(node: Node) -> str:
    if node.kind == "var":
        return node.name
    if node.kind == "const":
        return f"{float(node.value):g}" if node.shape == () else f"const{node.shape}"
    return _SYMBOLS.get(node.op.name, node.op.name)


def _fmt(v) -> str:
    v = np.asarray(v)
    if v.shape != ():
        return f"[{v.shape}]"
    v = float(v)
    return f"{v:.2f}" if abs(v) >= 0.01 or v == 0 else f"{v:.1e}"


def draw_graph(
    expr: Node,
    at: dict | None = None,
    grads: bool = True,
    path: str | Path | None = None,
    title: str | None = None,
) -> dict:
    """Draw the computational graph of ``expr``.

    Args:
        expr: the output node (scalar for gradients).
        at: variable values; with them, values (and gradients) are written on the edges.
        grads: also write d expr / d node on each edge (reverse mode).
        path: where to save the PNG (atomically); not saved when None.
        title: the figure title.

    Returns:
        dict with ``values`` and ``gradients`` keyed by node label (the last node of a
        label wins) and ``order`` (the labels in evaluation order).
    """
    order = topological_order([expr])
    depth: dict[int, int] = {}
    for node in order:  # constants are drawn beside each node that uses them
        depth[id(node)] = 1 + max(
            (depth[id(i)] for i in node.inputs if i.kind != "const"), default=-1
        )
    levels: dict[int, list[Node]] = {}
    for node in order:
        if node.kind != "const" or node is expr:
            levels.setdefault(depth[id(node)], []).append(node)
    pos = {}
    for d, nodes in levels.items():
        for k, node in enumerate(nodes):
            pos[id(node)] = (d, (len(nodes) - 1) / 2 - k)
    values, adjoints = {}, {}
    if at is not None:
        vals = compile(order)({k: v for k, v in at.items()}, strict=False)
        values = {id(n): v for n, v in zip(order, vals)}
        if grads and expr.shape == ():
            adj = vjp_graph([expr], [const(1.0)], order)
            adjv = compile(adj)(at, strict=False)
            adjoints = {id(n): v for n, v in zip(order, adjv)}
    width = max(levels) + 1
    height = max(len(v) for v in levels.values()) + 0.6
    fig, ax = new_figure(figsize=(2.6 * width + 1, 1.5 * height + 1.5))
    ax.set_axis_off()
    const_boxes = []
    for node in order:
        if id(node) not in pos:
            continue
        x1, y1 = pos[id(node)]
        for inp in node.inputs:
            if inp.kind == "const":  # a small box just before its consumer
                x0, y0 = x1 - 0.55, y1 + 0.45
                const_boxes.append((x0, y0, inp))
                ax.annotate(
                    "",
                    xy=(x1 - 0.12, y1 + 0.05),
                    xytext=(x0 + 0.1, y0),
                    arrowprops=dict(arrowstyle="->", color="0.6", lw=1),
                )
                continue
            x0, y0 = pos[id(inp)]
            ax.annotate(
                "",
                xy=(x1 - 0.18, y1),
                xytext=(x0 + 0.18, y0),
                arrowprops=dict(arrowstyle="->", color="0.4", lw=1.2),
            )
            mx, my = x0 + 0.45 * (x1 - x0), y0 + 0.45 * (y1 - y0)
            if id(inp) in values:
                ax.text(
                    mx,
                    my + 0.09,
                    _fmt(values[id(inp)]),
                    color="green",
                    ha="center",
                    fontsize=10,
                    fontweight="bold",
                )
            if id(inp) in adjoints:
                ax.text(
                    mx,
                    my - 0.17,
                    _fmt(adjoints[id(inp)]),
                    color="red",
                    ha="center",
                    fontsize=10,
                    fontweight="bold",
                )
    for x, y, node in const_boxes:
        ax.text(
            x,
            y,
            node_label(node),
            ha="center",
            va="center",
            fontsize=9,
            bbox=dict(boxstyle="square,pad=0.2", fc="#f3f3f3", ec="0.6"),
        )
    for node in order:
        if id(node) not in pos:
            continue
        x, y = pos[id(node)]
        shape = "round,pad=0.3" if node.kind == "op" else "square,pad=0.3"
        face = (
            "#dbe9f6" if node.kind == "op" else ("#f3f3f3" if node.kind == "const" else "#fff2cc")
        )
        ax.text(
            x,
            y,
            node_label(node),
            ha="center",
            va="center",
            fontsize=12,
            bbox=dict(boxstyle=shape, fc=face, ec="0.3"),
        )
    if id(expr) in values:
        x, y = pos[id(expr)]
        ax.text(
            x + 0.35,
            y + 0.09,
            _fmt(values[id(expr)]),
            color="green",
            fontsize=10,
            fontweight="bold",
        )
        if id(expr) in adjoints:
            ax.text(
                x + 0.35,
                y - 0.17,
                _fmt(adjoints[id(expr)]),
                color="red",
                fontsize=10,
                fontweight="bold",
            )
    ax.set_xlim(-0.6, width - 0.2)
    ax.set_ylim(-height / 2 - 0.4, height / 2 + 0.4)
    ax.set_title(title or "computational graph: forward values (green), gradients (red)")
    info = {
        "order": [node_label(n) for n in order],
        "values": {
            node_label(n): float(np.asarray(values[id(n)]).sum()) for n in order if id(n) in values
        },
        "gradients": {
            node_label(n): float(np.asarray(adjoints[id(n)]).sum())
            for n in order
            if id(n) in adjoints
        },
    }
    if path is not None:
        save_figure(fig, path)
    else:
        from .plotting import plt

        plt.close(fig)
    return info

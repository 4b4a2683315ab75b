"""Drawing computational graphs with their forward values and backward gradients.

The layout is layered, left to right (inputs on the left): each node sits in the
layer after the deepest of its inputs (a constant just before its first consumer);
an edge that spans several layers runs through a free slot of each layer it
crosses; within a layer, nodes are ordered by the barycentre of their neighbours to
reduce crossings. Every edge is drawn from the right side of its source box to the
left side of its target box, through the gaps between layers and horizontally
through the free slots, so no edge passes through a node box. On each edge the value
flowing forward (green, above) and the gradient of the output with respect to it
flowing back (red, below) are written at the middle of the edge's last segment,
like the figures of the course notes.

Graphs of more than ``MAX_NODES`` nodes are refused: they are not readable as a
picture (print the expression, or draw a part of it).

>>> import diffkit as dk
>>> x, y, z = dk.variables("x y z")
>>> info = dk.viz.draw_graph((x + y) * z, at={"x": -2, "y": 5, "z": -4})
>>> info["values"]["+"], info["gradients"]["+"]
(3.0, -4.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..differentiators.reverse import vjp_graph
from ..ir.node import Node, apply, const, internal_variable
from ..ir.schedule import compile, topological_order
from .plotting import figure_bytes, new_figure

__all__ = ["draw_graph", "node_label", "layout", "Layout", "GraphTooLarge", "Graph", "MAX_NODES"]

MAX_NODES = 60
FORMATS = ("png", "svg", "pdf")

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
# geometry, in data units: layers DX apart, slots DY apart, boxes BOX_H high and
# CHAR_W wide per character (plus padding)
DX, DY, BOX_H, CHAR_W, PAD = 2.6, 1.3, 0.42, 0.11, 0.3


_LABEL_BOX = dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.8)


class GraphTooLarge(ValueError):
    """A graph with more nodes than a drawing can show legibly.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> f = sum(dk.variables([f"w{i}" for i in range(40)]))  # 40 variables, 39 additions
    >>> viz.layout(f, max_nodes=10)
    Traceback (most recent call last):
    ...
    diffkit.viz.graph.GraphTooLarge: the graph has 79 nodes; a drawing stays readable up to 10 ...
    """


def node_label(node: Node) -> str:
    """The short label a drawing shows for ``node``: a variable's name, a constant's value,
    an op's symbol or name.

    Args:
        node: a node.

    Returns:
        str: the label.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> x, y, z = dk.variables("x y z")
    >>> viz.node_label(x), viz.node_label((x + y) * z), viz.node_label(dk.const(2.0))
    ('x', '×', '2')
    """
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


@dataclass
class Layout:
    """Where everything goes: ``boxes`` maps a node's id to (x, y, half-width,
    half-height); ``edges`` lists (source node, target node, polyline points).
    """

    order: list
    boxes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    layers: int = 0
    slots: int = 0


def _count_nodes(expr: Node, limit: int) -> list[Node]:
    order = topological_order([expr])
    if len(order) > limit:
        raise GraphTooLarge(
            f"the graph has {len(order)} nodes; a drawing stays readable up to {limit} "
            f"(print the expression with str(), or draw a sub-expression)"
        )
    return order


def layout(expr: Node, max_nodes: int = MAX_NODES) -> Layout:
    """The layered layout of ``expr``'s graph (see the module's docstring).

    Args:
        expr: the output node.
        max_nodes: the most nodes drawn.

    Returns:
        Layout: the nodes in schedule order (``order``), their layers, boxes and edges.

    Raises:
        GraphTooLarge: the graph has more than ``max_nodes`` nodes.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> x, y, z = dk.variables("x y z")
    >>> at = {"x": -2.0, "y": 5.0, "z": -4.0}  # the course's (x + y) z
    >>> lay = viz.layout((x + y) * z)
    >>> [str(n) for n in lay.order]  # inputs first, each op after its inputs
    ['x', 'y', 'x + y', 'z', '(x + y)*z']
    """
    order = _count_nodes(expr, max_nodes)
    consumers: dict[int, list[Node]] = {id(n): [] for n in order}
    for node in order:
        for inp in dict.fromkeys(node.inputs):
            consumers[id(inp)].append(node)
    # layers: one after the deepest non-constant input; constants just before a consumer
    layer: dict[int, int] = {}
    for node in order:
        if node.kind != "const" or not consumers[id(node)]:
            layer[id(node)] = 1 + max(
                (layer[id(i)] for i in node.inputs if i.kind != "const"), default=-1
            )
    shift = 0
    for node in order:
        if id(node) not in layer:
            layer[id(node)] = min(layer[id(c)] for c in consumers[id(node)]) - 1
            shift = max(shift, -layer[id(node)])
    for k in layer:
        layer[k] += shift
    depth = max(layer.values()) + 1
    # rows: real nodes, and one dummy per layer an edge crosses
    rows: list[list] = [[] for _ in range(depth)]
    for node in order:
        rows[layer[id(node)]].append(("node", id(node)))
    chains = []  # (source, target, [slot keys from source to target])
    for node in order:
        for inp in dict.fromkeys(node.inputs):
            keys: list[tuple] = [("node", id(inp))]
            for d in range(layer[id(inp)] + 1, layer[id(node)]):
                key = ("dummy", id(inp), id(node), d)
                rows[d].append(key)
                keys.append(key)
            keys.append(("node", id(node)))
            chains.append((inp, node, keys))
    # neighbours of each slot in the layers before and after it
    before: dict = {}
    after: dict = {}
    for _, _, keys in chains:
        for a, b in zip(keys, keys[1:]):
            after.setdefault(a, []).append(b)
            before.setdefault(b, []).append(a)
    position = {key: i for row in rows for i, key in enumerate(row)}
    for sweep in range(8):  # barycentre ordering, down then up
        seq = range(1, depth) if sweep % 2 == 0 else range(depth - 2, -1, -1)
        nbrs = before if sweep % 2 == 0 else after
        for d in seq:
            row = rows[d]
            bary = {
                key: (np.mean([position[n] for n in nbrs[key]]) if nbrs.get(key) else position[key])
                for key in row
            }
            row.sort(key=lambda k: (bary[k], position[k]))
            for i, key in enumerate(row):
                position[key] = i
    slots = max(len(r) for r in rows)
    by_id = {id(n): n for n in order}
    half_w = [
        max(
            [PAD + CHAR_W * len(node_label(by_id[k[1]])) / 2 for k in row if k[0] == "node"] + [PAD]
        )
        for row in rows
    ]
    xs = np.concatenate(
        [[0.0], np.cumsum([half_w[d] + half_w[d + 1] + DX for d in range(depth - 1)])]
    )
    centre = {}
    for d, row in enumerate(rows):
        for i, key in enumerate(row):
            centre[key] = (float(xs[d]), (len(row) - 1) / 2 * DY - i * DY)
    out = Layout(order=order, layers=depth, slots=slots)
    for node in order:
        x, y = centre[("node", id(node))]
        w = PAD + CHAR_W * len(node_label(node)) / 2
        out.boxes[id(node)] = (x, y, w, BOX_H / 2)
    for src, dst, keys in chains:
        sx, sy = centre[keys[0]]
        points = [(sx + out.boxes[id(src)][2], sy)]
        for key in keys[1:-1]:  # through the free slot, horizontally across the layer band
            x, y = centre[key]
            w = half_w[key[3]]
            points += [(x - w, y), (x + w, y)]
        tx, ty = centre[keys[-1]]
        points.append((tx - out.boxes[id(dst)][2], ty))
        out.edges.append((src, dst, points))
    return out


def _render(expr: Node, at: dict | None, grads: bool, title: str | None, max_nodes: int):
    lay = layout(expr, max_nodes)
    order = lay.order
    values, adjoints, edge_grads = {}, {}, {}
    if at is not None:
        vals = compile(order)(dict(at), strict=False)
        values = {id(n): v for n, v in zip(order, vals)}
        if grads and expr.shape == ():
            adj = vjp_graph([expr], [const(1.0)], order)
            adjoints = {id(n): v for n, v in zip(order, compile(adj)(at, strict=False))}
            edge_grads = _edge_gradients(lay, values, adjoints)
    xs = [b[0] for b in lay.boxes.values()]
    ys = [b[1] for b in lay.boxes.values()] + [p[1] for _, _, pts in lay.edges for p in pts]
    width, height = max(xs) - min(xs) + 2.5, max(ys) - min(ys) + 1.6
    fig, ax = new_figure(figsize=(min(1.05 * width + 1, 40), min(1.1 * height + 1.2, 30)))
    ax.set_axis_off()
    labels = []
    for src, dst, points in lay.edges:
        px, py = zip(*points)
        ax.plot(px[:-1], py[:-1], color="0.45", lw=1.1, zorder=1)
        ax.annotate(
            "",
            xy=points[-1],
            xytext=points[-2],
            arrowprops=dict(arrowstyle="-|>", color="0.45", lw=1.1, shrinkA=0, shrinkB=0),
            zorder=1,
        )
        (x0, y0), (x1, y1) = points[-2], points[-1]
        mx, my = x0 + 0.6 * (x1 - x0), y0 + 0.6 * (y1 - y0)  # nearer the distinct targets
        labels.append(((mx, my), (points[-2], points[-1])))
        if id(src) in values:
            _pair_label(ax, mx, my, values[id(src)], "green", ha="center")
        if (id(src), id(dst)) in edge_grads:
            _pair_label(ax, mx, my, edge_grads[id(src), id(dst)], "red", ha="center")
    from matplotlib.patches import FancyBboxPatch

    for node in order:
        x, y, w, h = lay.boxes[id(node)]
        face = {"op": "#dbe9f6", "const": "#f3f3f3"}.get(node.kind, "#fff2cc")
        style = "round,pad=0,rounding_size=0.12" if node.kind == "op" else "square,pad=0"
        ax.add_patch(
            FancyBboxPatch(
                (x - w, y - h), 2 * w, 2 * h, boxstyle=style, fc=face, ec="0.3", zorder=2
            )
        )
        ax.text(x, y, node_label(node), ha="center", va="center", fontsize=11, zorder=3)
    if id(expr) in values:
        x, y, w, _ = lay.boxes[id(expr)]
        _pair_label(ax, x + w + 0.1, y, values[id(expr)], "green", ha="left", box=False)
        if id(expr) in adjoints:
            _pair_label(ax, x + w + 0.1, y, adjoints[id(expr)], "red", ha="left", box=False)
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.5)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_aspect("equal")
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
        "layout": lay,
        "labels": labels,
        "edge_gradients": {
            (node_label(_node(lay, a)), node_label(_node(lay, b))): float(np.asarray(g).sum())
            for (a, b), g in edge_grads.items()
        },
    }
    return fig, info


def _node(lay: Layout, key: int) -> Node:
    return next(n for n in lay.order if id(n) == key)


def _pair_label(ax, x, y, value, color: str, ha: str, box: bool = True) -> None:
    """A value just above (green, forward) or a gradient just below (red) the point."""
    above = color == "green"
    ax.text(
        x,
        y + (0.06 if above else -0.06),
        _fmt(value),
        color=color,
        ha=ha,
        va="bottom" if above else "top",
        fontsize=9,
        fontweight="bold",
        zorder=3,
        bbox=_LABEL_BOX if box else None,
    )


def _edge_gradients(lay: Layout, values: dict, adjoints: dict) -> dict:
    """The gradient flowing back along each edge u -> v: v's adjoint times the partial
    derivative of v's op in u alone (u's other uses elsewhere held fixed), so the
    gradients on the edges leaving a node add up to that node's gradient."""
    out = {}
    for src, dst, _ in lay.edges:
        if src.kind == "const":
            continue
        slots = [i for i, inp in enumerate(dst.inputs) if inp is src]
        edge = internal_variable("edge", src.shape)
        inputs = [
            edge if i in slots else const(values[id(inp)]) for i, inp in enumerate(dst.inputs)
        ]
        local = apply(dst.op, *inputs, **dict(dst.attrs))
        (g,) = vjp_graph([local], [const(np.asarray(adjoints[id(dst)]))], [edge])
        out[id(src), id(dst)] = compile([g])({"%edge": values[id(src)]}, strict=False)[0]
    return out


def _figure_bytes(fig, fmt: str) -> bytes:
    return figure_bytes(fig, fmt, bbox_inches="tight")


def draw_graph(
    expr: Node,
    at: dict | None = None,
    grads: bool = True,
    path: str | Path | None = None,
    title: str | None = None,
    max_nodes: int = MAX_NODES,
) -> dict:
    """Draw the computational graph of ``expr``.

    Args:
        expr: the output node (scalar for gradients).
        at: variable values; with them, values (and gradients) are written on the edges.
        grads: also write d expr / d node on each edge (reverse mode).
        path: where to save the picture (atomically), as PNG, SVG or PDF by its suffix;
            not saved when None.
        title: the figure title.
        max_nodes: refuse larger graphs (:class:`~diffkit.viz.GraphTooLarge`) before any work.

    Returns:
        dict with ``values`` and ``gradients`` keyed by node label (the last node of a
        label wins), ``order`` (the labels in evaluation order) and ``layout``.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> x, y, z = dk.variables("x y z")
    >>> at = {"x": -2.0, "y": 5.0, "z": -4.0}  # the course's (x + y) z
    >>> drawn = viz.draw_graph((x + y) * z, at=at)
    >>> drawn["values"]["×"], drawn["gradients"]  # f = -12; df/dx = df/dy = z, df/dz = x + y
    (-12.0, {'x': -4.0, 'y': -4.0, '+': -4.0, 'z': 3.0, '×': 1.0})
    """
    fmt = None
    if path is not None:
        fmt = Path(path).suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise ValueError(f"draw_graph: {path}: the suffix should be one of .png, .svg, .pdf")
    fig, info = _render(expr, at, grads, title, max_nodes)
    if path is None or fmt is None:
        return info
    from ..io import atomic_write_bytes

    atomic_write_bytes(path, _figure_bytes(fig, fmt))
    return info


class Graph:
    """A graph picture for notebooks: Jupyter shows it through ``_repr_svg_``.

    Args:
        expr: the output node.
        at: variable name -> value, to show values (and gradients), or None.
        grads: show the gradients.
        title: a title, or None.

    >>> import diffkit as dk
    >>> x, y = dk.variables("x y")
    >>> svg = dk.viz.Graph(x * y + x, at={"x": 2.0, "y": 3.0})._repr_svg_()
    >>> svg.lstrip().startswith("<?xml") and "</svg>" in svg
    True
    """

    def __init__(self, expr: Node, at: dict | None = None, grads: bool = True, title=None):
        _count_nodes(expr, MAX_NODES)
        self.expr, self.at, self.grads, self.title = expr, at, grads, title

    def _repr_svg_(self) -> str:
        fig, _ = _render(self.expr, self.at, self.grads, self.title, MAX_NODES)
        return _figure_bytes(fig, "svg").decode()

    def save(self, path) -> dict:
        return draw_graph(self.expr, self.at, self.grads, path, self.title)

    def stepper(self):
        """The page that steps through the forward and backward passes (shown by
        Jupyter through ``_repr_html_``); needs ``at``."""
        from .stepper import SteppedGraph

        if self.at is None:
            raise ValueError("Graph.stepper: the passes need values; build the Graph with at=")
        return SteppedGraph(self.expr, self.at, self.title)

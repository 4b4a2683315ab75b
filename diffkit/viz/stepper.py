"""A self-contained HTML page that steps through a graph's forward and backward passes.

The page draws the graph with the same layered layout as :func:`draw_graph` (as inline
SVG, no network access needed) and replays the two passes one step at a time:

* forward: each node's value appears, in the order of the program's schedule;
* backward: the output's adjoint is seeded with 1, then, node by node in reverse
  order, each edge ``u -> v`` shows its gradient (v's adjoint times the local
  derivative of v in u) and u's adjoint grows by it, so a node used twice (fan-out)
  visibly accumulates the sum of its outgoing edges' gradients.

Buttons and the keyboard (→/space next, ← back, Home, End) move through the steps;
the address fragment ``#step=N`` (or ``#step=end``) opens the page at step N, and
follows it as the student steps. Every number shown is computed here by diffkit and
kept exactly in the element's ``data-value`` attribute.

>>> import diffkit as dk
>>> x, y, z = dk.variables("x y z")
>>> page = dk.viz.graph_html((x + y) * z, at={"x": -2, "y": 5, "z": -4})
>>> page.startswith("<!DOCTYPE html>") and "<link" not in page and 'src="http' not in page
True
>>> steps = dk.viz.graph_steps((x + y) * z, at={"x": -2, "y": 5, "z": -4})
>>> [s["text"] for s in steps if s["pass"] == "backward"]
['∂f/∂× = 1', '∂f/∂+ = -4', '∂f/∂z = 3', '∂f/∂x = -4', '∂f/∂y = -4']
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..differentiators.reverse import vjp_graph
from ..ir.node import Node, const
from ..ir.schedule import compile
from .graph import MAX_NODES, _edge_gradients, layout, node_label

__all__ = ["graph_html", "graph_steps", "write_graph_html", "SteppedGraph"]

SCALE = 64.0  # SVG pixels per layout unit


def _number(v) -> float | list:
    v = np.asarray(v)
    if np.iscomplexobj(v):
        raise ValueError("graph_html: complex values cannot be shown on the page")
    return float(v) if v.shape == () else v.astype(float).tolist()


def _show(v) -> str:
    v = np.asarray(v)
    if v.shape != ():
        return f"[{'×'.join(map(str, v.shape))}] Σ={float(v.sum()):.4g}"
    return f"{float(v):.4g}"


def _evaluate(expr: Node, at: dict, max_nodes: int):
    if expr.shape != ():
        raise ValueError(
            f"graph_html: the output has shape {expr.shape}; the backward pass starts from "
            f"a scalar output"
        )
    lay = layout(expr, max_nodes)
    order = lay.order
    missing = sorted({n.name for n in order if n.kind == "var"} - set(at))
    if missing:
        raise ValueError(f"graph_html: no value for {', '.join(missing)} (pass at={{...}})")
    vals = compile(order)(dict(at), strict=False)
    values = {id(n): v for n, v in zip(order, vals)}
    adj = vjp_graph([expr], [const(1.0)], order)
    adjoints = {id(n): v for n, v in zip(order, compile(adj)(dict(at), strict=False))}
    return lay, values, adjoints, _edge_gradients(lay, values, adjoints)


def _steps(expr, lay, values, adjoints, edge_grads) -> list[dict]:
    order = lay.order
    index = {id(n): i for i, n in enumerate(order)}
    edge_index = {(id(s), id(d)): j for j, (s, d, _) in enumerate(lay.edges)}
    out_name = "f"
    steps = []
    for node in order:
        label = node_label(node)
        kind = {"var": "input", "const": "constant"}.get(node.kind, "operation")
        steps.append(
            {
                "pass": "forward",
                "node": index[id(node)],
                "value": _number(values[id(node)]),
                "shown": _show(values[id(node)]),
                "text": f"{label} = {_show(values[id(node)])}",
                "about": f"forward: the {kind} {label} gives {_show(values[id(node)])}",
            }
        )
    steps.append(
        {
            "pass": "backward",
            "node": index[id(expr)],
            "adjoint": 1.0,
            "shown": "1",
            "text": f"∂{out_name}/∂{node_label(expr)} = 1",
            "about": "backward: the output's adjoint is seeded with 1",
        }
    )
    running: dict[int, Any] = {}
    for node in reversed(order):
        for inp in dict.fromkeys(node.inputs):
            key = (id(inp), id(node))
            if key not in edge_grads:
                continue
            g = edge_grads[key]
            running[id(inp)] = g if id(inp) not in running else running[id(inp)] + g
            first = any(s.get("src") == index[id(inp)] for s in steps)
            acc = running[id(inp)]
            steps.append(
                {
                    "pass": "backward",
                    "edge": edge_index[key],
                    "src": index[id(inp)],
                    "node": index[id(inp)],
                    "gradient": _number(g),
                    "gradient_shown": _show(g),
                    "adjoint": _number(acc),
                    "shown": _show(acc),
                    "text": f"∂{out_name}/∂{node_label(inp)} = {_show(acc)}",
                    "about": (
                        f"backward: the edge {node_label(inp)} → {node_label(node)} carries "
                        f"{_show(g)} (the adjoint of {node_label(node)} times its local "
                        f"derivative)"
                        + (
                            f"; {node_label(inp)} is used again, its adjoint accumulates "
                            f"to {_show(acc)}"
                            if first
                            else ""
                        )
                    ),
                }
            )
    for node in order:  # the passes agree: accumulated edge gradients are the adjoints
        if id(node) in running:
            assert np.allclose(running[id(node)], adjoints[id(node)], rtol=1e-9, atol=1e-12)
    return steps


def graph_steps(expr: Node, at: dict, max_nodes: int = MAX_NODES) -> list[dict]:
    """The steps the page replays: forward (one per node, in schedule order) then
    backward (the seed, then one per edge), each with its exact numbers.

    Args:
        expr: the output node (a scalar).
        at: variable name -> value.
        max_nodes: the most nodes drawn.

    Returns:
        list of dict: one per step, with its pass, node, value or gradient and text.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> x, y, z = dk.variables("x y z")
    >>> at = {"x": -2.0, "y": 5.0, "z": -4.0}  # the course's (x + y) z
    >>> steps = viz.graph_steps((x + y) * z, at=at)  # df/dx = df/dy = z = -4, df/dz = 3
    >>> print(", ".join(s["text"] for s in steps))
    x = -2, y = 5, + = 3, z = -4, × = -12, ∂f/∂× = 1, ∂f/∂+ = -4, ∂f/∂z = 3, ∂f/∂x = -4, ∂f/∂y = -4
    """
    lay, values, adjoints, edge_grads = _evaluate(expr, at, max_nodes)
    return _steps(expr, lay, values, adjoints, edge_grads)


def _svg(lay) -> tuple[str, float, float]:
    xs = [b[0] for b in lay.boxes.values()]
    ys = [b[1] for b in lay.boxes.values()] + [p[1] for _, _, pts in lay.edges for p in pts]
    x0, y1 = min(xs) - 1.2, max(ys) + 1.0
    width = (max(xs) - min(xs) + 3.4) * SCALE
    height = (max(ys) - min(ys) + 2.0) * SCALE

    def px(x, y):
        return (x - x0) * SCALE, (y1 - y) * SCALE

    parts = []
    for j, (_, _, points) in enumerate(lay.edges):
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(*p) for p in points))
        (ax, ay), (bx, by) = px(*points[-2]), px(*points[-1])
        mx, my = ax + 0.6 * (bx - ax), ay + 0.6 * (by - ay)
        parts.append(
            f'<polyline class="edge" id="e{j}" points="{pts}" marker-end="url(#arrow)"/>'
            f'<text class="val" id="ev{j}" x="{mx:.1f}" y="{my - 6:.1f}"></text>'
            f'<text class="grad" id="eg{j}" x="{mx:.1f}" y="{my + 15:.1f}"></text>'
        )
    for i, node in enumerate(lay.order):
        x, y, w, h = lay.boxes[id(node)]
        (cx, cy) = px(x, y)
        bw, bh = 2 * w * SCALE, 2 * h * SCALE
        parts.append(
            f'<g class="node {node.kind}" id="n{i}">'
            f'<rect x="{cx - bw / 2:.1f}" y="{cy - bh / 2:.1f}" width="{bw:.1f}" '
            f'height="{bh:.1f}" rx="{6 if node.kind == "op" else 0}"/>'
            f'<text class="label" x="{cx:.1f}" y="{cy + 5:.1f}">'
            f"{html.escape(node_label(node))}</text>"
            f'<text class="val" id="nv{i}" x="{cx:.1f}" y="{cy - bh / 2 - 5:.1f}"></text>'
            f'<text class="grad" id="ng{i}" x="{cx:.1f}" y="{cy + bh / 2 + 15:.1f}"></text>'
            f"</g>"
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker>'
        "</defs>" + "".join(parts) + "</svg>"
    )
    return svg, width, height


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1em;color:#222}
#controls button{font-size:1em;margin-right:.3em}
#status{margin:.6em 0;min-height:1.3em}
.edge{fill:none;stroke:#999;stroke-width:1.4}
.edge.active{stroke:#c00;stroke-width:2.6}
.node rect{fill:#fff2cc;stroke:#555}
.node.op rect{fill:#dbe9f6}.node.const rect{fill:#f3f3f3}
.node.active rect{stroke:#c00;stroke-width:2.6}
text{text-anchor:middle;font-size:13px}
.label{font-size:15px}
.val{fill:#080;font-weight:bold}.grad{fill:#c00;font-weight:bold}
"""

_SCRIPT = """
(function(){
const STEPS = JSON.parse(document.getElementById('steps').textContent);
const N = STEPS.length;
let step = 0;
function el(id){return document.getElementById(id);}
function clear(){
  document.querySelectorAll('text.val,text.grad').forEach(t=>{t.textContent='';
    t.removeAttribute('data-value');});
  document.querySelectorAll('.active').forEach(e=>e.classList.remove('active'));
}
function put(id, shown, value){const t=el(id); t.textContent=shown;
  t.setAttribute('data-value', JSON.stringify(value));}
function show(k){
  step = Math.max(0, Math.min(N, k));
  clear();
  for (let i = 0; i < step; i++){
    const s = STEPS[i];
    if (s.pass === 'forward'){
      put('nv'+s.node, s.shown, s.value);
      document.querySelectorAll('[data-src="'+s.node+'"]').forEach(e=>
        put(e.id, s.shown, s.value));
    } else {
      put('ng'+s.node, s.shown, s.adjoint);
      if (s.edge !== undefined) put('eg'+s.edge, s.gradient_shown, s.gradient);
    }
  }
  if (step > 0){
    const s = STEPS[step-1];
    el('n'+s.node).classList.add('active');
    if (s.edge !== undefined) el('e'+s.edge).classList.add('active');
    el('status').textContent = 'step '+step+' of '+N+' — '+s.about;
  } else {
    el('status').textContent = 'step 0 of '+N+' — press → or Next to start the forward pass';
  }
  el('step').textContent = step;
  const h = '#step='+step;
  if (location.hash !== h) history.replaceState(null, '', h);
}
function fromHash(){
  const m = /step=(end|\\d+)/.exec(location.hash);
  show(m ? (m[1] === 'end' ? N : parseInt(m[1], 10)) : 0);
}
el('next').onclick = ()=>show(step+1);
el('prev').onclick = ()=>show(step-1);
el('first').onclick = ()=>show(0);
el('last').onclick = ()=>show(N);
document.addEventListener('keydown', e=>{
  if (e.key === 'ArrowRight' || e.key === ' '){show(step+1); e.preventDefault();}
  else if (e.key === 'ArrowLeft'){show(step-1); e.preventDefault();}
  else if (e.key === 'Home'){show(0);} else if (e.key === 'End'){show(N);}
});
window.addEventListener('hashchange', fromHash);
fromHash();
})();
"""


def graph_html(expr: Node, at: dict, title: str | None = None, max_nodes: int = MAX_NODES) -> str:
    """The page (one self-contained HTML document) for ``expr`` at ``at``.

    Raises:
        ~diffkit.viz.GraphTooLarge: more than ``max_nodes`` nodes.
        ValueError: a non-scalar output, a missing variable value, complex values.

    Args:
        expr: the output node (a scalar).
        at: variable name -> value.
        title: the page's title, or None.
        max_nodes: the most nodes drawn.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> x, y, z = dk.variables("x y z")
    >>> at = {"x": -2.0, "y": 5.0, "z": -4.0}  # the course's (x + y) z
    >>> page = viz.graph_html((x + y) * z, at=at)
    >>> page.startswith("<!DOCTYPE html>"), "<script" in page
    (True, True)
    """
    return _page(expr, at, title, max_nodes)[0]


def _page(expr, at, title, max_nodes) -> tuple[str, list, int]:
    lay, values, adjoints, edge_grads = _evaluate(expr, at, max_nodes)
    steps = _steps(expr, lay, values, adjoints, edge_grads)
    svg, _, _ = _svg(lay)
    index = {id(n): i for i, n in enumerate(lay.order)}
    for j, (src, _, _) in enumerate(lay.edges):  # an edge shows its source's value
        svg = svg.replace(f'id="ev{j}"', f'id="ev{j}" data-src="{index[id(src)]}"', 1)
    title = title or f"computational graph of {expr}"
    data = json.dumps(steps, ensure_ascii=False).replace("</", "<\\/")
    return (
        (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f'<h1 style="font-size:1.2em">{html.escape(title)}</h1>'
            '<div id="controls"><button id="first">|◀ start</button>'
            '<button id="prev">◀ back</button><button id="next">next ▶</button>'
            '<button id="last">end ▶|</button> step <span id="step">0</span> of '
            f'{len(steps)}</div><div id="status"></div>'
            '<div><span class="val">green: forward values</span> · '
            '<span class="grad">red: gradients of the output (adjoints)</span></div>'
            f'{svg}<script type="application/json" id="steps">{data}</script>'
            f"<script>{_SCRIPT}</script></body></html>\n"
        ),
        steps,
        len(lay.order),
    )


def write_graph_html(
    expr: Node, at: dict, path: str | Path, title: str | None = None, max_nodes: int = MAX_NODES
) -> dict:
    """Write :func:`graph_html`'s page to ``path`` (atomically); returns ``{"steps": n,
    "nodes": m}``.

    Args:
        expr: the output node (a scalar).
        at: variable name -> value.
        path: the file to write.
        title: the page's title, or None.
        max_nodes: the most nodes drawn.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> x, y, z = dk.variables("x y z")
    >>> at = {"x": -2.0, "y": 5.0, "z": -4.0}  # the course's (x + y) z
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     viz.write_graph_html((x + y) * z, at, pathlib.Path(d) / "graph.html")
    {'steps': 10, 'nodes': 5}
    """
    from ..io import atomic_write_bytes

    page, steps, nodes = _page(expr, at, title, max_nodes)
    atomic_write_bytes(path, page.encode("utf-8"))
    return {"steps": len(steps), "nodes": nodes}


class SteppedGraph:
    """The stepping page in a notebook: Jupyter shows it through ``_repr_html_`` (in an
    isolated frame, so several pages in one notebook do not interfere).

    Args:
        expr: the output node (a scalar).
        at: variable name -> value.
        title: the page's title, or None.
        max_nodes: the most nodes drawn.

    >>> import diffkit as dk
    >>> from diffkit import viz
    >>> x, y, z = dk.variables("x y z")
    >>> at = {"x": -2.0, "y": 5.0, "z": -4.0}  # the course's (x + y) z
    >>> viz.SteppedGraph((x + y) * z, at=at).page == viz.graph_html((x + y) * z, at=at)
    True
    """

    def __init__(self, expr: Node, at: dict, title=None, max_nodes: int = MAX_NODES):
        self.page = graph_html(expr, at, title, max_nodes)

    def _repr_html_(self) -> str:
        doc = html.escape(self.page, quote=True)
        style = "width:100%;height:32em;border:1px solid #ccc"
        return f'<iframe srcdoc="{doc}" style="{style}"></iframe>'

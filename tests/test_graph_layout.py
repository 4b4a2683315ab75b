"""The graph drawing: no edge passes through a node box, labels sit on their edges,
per-edge gradients add up, large graphs are refused, PNG/SVG/PDF and Jupyter SVG."""

from __future__ import annotations

import numpy as np
import pytest

import diffkit as dk
from diffkit.viz import GraphTooLarge, layout


def _segment_hits_box(p, q, box) -> bool:
    """Does the segment pq meet the closed rectangle (Liang-Barsky clipping)?"""
    x, y, w, h = box
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for pk, qk in (
        (-dx, x0 - (x - w)),
        (dx, (x + w) - x0),
        (-dy, y0 - (y - h)),
        (dy, (y + h) - y0),
    ):
        if pk == 0:
            if qk < 0:
                return False
            continue
        t = qk / pk
        if pk < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _random_graph(rng, target: int):
    """An expression of about ``target`` nodes over a few variables, with sharing."""
    names = [f"v{i}" for i in range(int(rng.integers(1, 5)))]
    pool = [dk.variable(n) for n in names]
    unary = [dk.sin, dk.exp, dk.tanh, dk.log1p, lambda a: -a, dk.sigmoid]
    binary = [
        lambda a, b: a + b,
        lambda a, b: a * b,
        lambda a, b: a - b,
        lambda a, b: a / (1 + b * b),
    ]
    expr = pool[0]
    while len(dk.compile(expr)) < target:
        a = pool[int(rng.integers(len(pool)))]
        if rng.random() < 0.35:
            node = unary[int(rng.integers(len(unary)))](a)
        else:
            b = (
                pool[int(rng.integers(len(pool)))]
                if rng.random() < 0.7
                else dk.const(float(rng.integers(2, 5)))
            )
            node = binary[int(rng.integers(len(binary)))](a, b)
        pool.append(node)
        expr = node if rng.random() < 0.5 else expr + node
    return expr, names


@pytest.mark.parametrize("seed", range(24))
def test_no_edge_passes_through_a_node_box(seed):
    rng = np.random.default_rng(seed)
    target = int(np.linspace(5, 57, 24)[seed])
    expr, _ = _random_graph(rng, target)
    lay = layout(expr)  # at most 57 nodes asked for, at most 3 more added: under the limit
    assert 1 <= len(lay.order) <= 60
    boxes = lay.boxes
    # boxes do not overlap one another
    items = list(boxes.items())
    for i, (_, (x, y, w, h)) in enumerate(items):
        for _, (x2, y2, w2, h2) in items[i + 1 :]:
            assert abs(x - x2) >= w + w2 or abs(y - y2) >= h + h2
    for src, dst, points in lay.edges:
        # the edge starts on its source's box and ends on its target's
        sx, sy, sw, _ = boxes[id(src)]
        tx, ty, tw, _ = boxes[id(dst)]
        assert points[0] == pytest.approx((sx + sw, sy)) and points[-1] == pytest.approx(
            (tx - tw, ty)
        )
        for p, q in zip(points, points[1:]):
            for key, box in boxes.items():
                if key in (id(src), id(dst)):
                    continue
                assert not _segment_hits_box(p, q, box), (seed, str(src), str(dst))


def test_labels_sit_on_their_edges_and_edge_gradients_add_up(tmp_path):
    x = dk.variable("x")
    f = x * x + dk.sin(x)
    info = dk.viz.draw_graph(f, at={"x": 0.7}, path=tmp_path / "g.png")
    lay = info["layout"]
    fig_texts = info["labels"]
    for (px, py), (p, q) in fig_texts:
        # the label's anchor lies on the segment it labels
        cross = (q[0] - p[0]) * (py - p[1]) - (q[1] - p[1]) * (px - p[0])
        assert abs(cross) < 1e-9 and min(p[0], q[0]) <= px <= max(p[0], q[0])
    # the gradients on the edges leaving x add up to df/dx = 2x + cos x
    total = sum(g for (src, _), g in info["edge_gradients"].items() if src == "x")
    assert total == pytest.approx(2 * 0.7 + np.cos(0.7))
    assert len(lay.edges) == len(fig_texts)


def test_large_graphs_are_refused_and_formats_written(tmp_path, capsys):
    w = dk.variable("w", (200,))
    big = dk.variable("v0")
    for i in range(1, 70):
        big = big + dk.variable(f"v{i}")
    with pytest.raises(GraphTooLarge, match="has 139 nodes; a drawing stays readable up to 60"):
        dk.viz.draw_graph(big)
    from diffkit.cli import main

    expr = " + ".join(f"x{i}*x{i}" for i in range(40))
    assert main(["graph", expr, "--out", str(tmp_path / "big.png")]) == 2
    assert "a drawing stays readable up to 60" in capsys.readouterr().err
    assert not (tmp_path / "big.png").exists()
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")):
        out = tmp_path / f"g{suffix}"
        assert main(["graph", "tanh(x)*y", "--at", "x=1,y=2", "--out", str(out)]) == 0
        assert out.read_bytes().startswith(magic)
    assert main(["graph", "x", "--out", str(tmp_path / "g.jpg")]) == 2
    svg = dk.viz.Graph(dk.sum(dk.tanh(w)))._repr_svg_()
    assert "<svg" in svg

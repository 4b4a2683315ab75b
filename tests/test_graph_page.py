"""The stepping graph page in a real headless Chromium: every value it shows, at every
step, against diffkit's own evaluation, and its gradients against forward mode.

Needs Playwright (the ``browser`` extra) and Chromium from the system's packages
(``/usr/bin/chromium``); CI installs both and sets ``DIFFKIT_REQUIRE_BROWSER=1`` so
that a missing browser fails instead of skipping.
"""

from __future__ import annotations

import json
import re
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import diffkit as dk

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("DIFFKIT_REQUIRE_BROWSER") == "1"
# where the screenshots go: the test's own directory, or the docs' pictures
# (`make screenshots` sets it to docs/_static/graph-page)
SHOTS = os.environ.get("DIFFKIT_SCREENSHOTS")


def _browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if REQUIRED:
            raise
        pytest.skip("playwright is not installed (pip install -e '.[browser]')")
    if not os.path.exists(CHROMIUM):
        if REQUIRED:
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip("no system Chromium (apt-get install chromium)")
    return sync_playwright


FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _course_graphs():
    x, y, z = dk.variables("x y z")
    w0, w1, w2, x0, x1 = dk.variables("w0 w1 w2 x0 x1")
    s = w0 * x0 + w1 * x1 + w2
    neuron_at = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    # a generated graph of 40 nodes: a chain of mixed ops with fan-out
    a, b = dk.variables("a b")
    h, terms = a, []
    ops = [dk.sin, dk.tanh, dk.exp, dk.cos]
    i = 0
    while True:
        h = ops[i % 4](h * 0.5 + b) + (a if i % 3 == 0 else 0.1 * h)
        terms.append(h)
        i += 1
        g = sum(terms[-2:], start=h * 0)
        if len(dk.ir.node.topological_order([g])) >= 40:
            break
    return {
        "xyz": ((x + y) * z, {"x": -2.0, "y": 5.0, "z": -4.0}),
        "neuron": (1.0 / (1.0 + dk.exp(-s)), neuron_at),
        "block": (dk.sigmoid(s), neuron_at),
        "generated": (g, {"a": 0.3, "b": -0.7}),
    }


GRAPHS = _course_graphs()


def test_generated_graph_has_forty_nodes():
    g, _ = GRAPHS["generated"]
    assert 40 <= len(dk.ir.node.topological_order([g])) <= dk.viz.MAX_NODES


def _state(page):
    """What the page shows: {element id: (text, exact value)} for every filled label."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('text.val,text.grad')]
            .filter(t => t.textContent !== '')
            .map(t => [t.id, [t.textContent, JSON.parse(t.getAttribute('data-value'))]]))"""
    )


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.mark.parametrize("name", list(GRAPHS))
def test_page_steps_through_both_passes(browser, tmp_path, name):
    expr, at = GRAPHS[name]
    path = tmp_path / f"{name}.html"
    info = dk.viz.write_graph_html(expr, at, path)
    lay = dk.viz.layout(expr)
    order = lay.order
    position = {id(n): i for i, n in enumerate(order)}
    steps = dk.viz.graph_steps(expr, at)
    assert info["steps"] == len(steps) and info["nodes"] == len(order)
    # independent truths: each node's value by evaluating it alone; the variables'
    # gradients by forward mode
    truth_value = {i: float(dk.evaluate(n, at)) for i, n in enumerate(order)}
    fwd = {k: float(v) for k, v in dk.gradient(expr, at, method="forward").items()}
    page = browser.new_page()
    page.goto(path.as_uri())
    assert page.inner_text("#step") == "0" and _state(page) == {}
    shots = pathlib.Path(SHOTS) if SHOTS else tmp_path
    for k in range(1, len(steps) + 1):
        if k > 1 and steps[k - 2]["pass"] == "forward" and steps[k - 1]["pass"] != "forward":
            page.screenshot(path=str(shots / f"{name}-forward.png"), full_page=True)
        page.click("#next")
        assert page.inner_text("#step") == str(k)
        shown = _state(page)
        s = steps[k - 1]
        if s["pass"] == "forward":
            i = s["node"]
            text, value = shown[f"nv{i}"]
            assert value == pytest.approx(truth_value[i], rel=1e-12, abs=1e-300)
            assert float(text) == pytest.approx(truth_value[i], rel=1e-3, abs=1e-300)
            # every node evaluated so far shows its value, no other node does
            filled = {int(key[2:]) for key in shown if key.startswith("nv")}
            assert filled == {t["node"] for t in steps[:k]}
        else:
            # an adjoint on the page is the sum of the gradients shown on its out-edges
            src = s["node"]
            out_edges = [
                j
                for j, (a, _, _) in enumerate(lay.edges)
                if position[id(a)] == src and f"eg{j}" in shown
            ]
            if out_edges:
                total = sum(shown[f"eg{j}"][1] for j in out_edges)
                assert shown[f"ng{src}"][1] == pytest.approx(total, rel=1e-12, abs=1e-15)
        assert s["about"] in page.inner_text("#status")
    # at the end: every variable's adjoint is its gradient by forward mode
    shown = _state(page)
    for i, node in enumerate(order):
        if node.kind == "var":
            assert shown[f"ng{i}"][1] == pytest.approx(fwd[node.name], rel=1e-10, abs=1e-14)
    assert page.url.endswith(f"#step={len(steps)}")
    page.screenshot(path=str(shots / f"{name}-backward.png"), full_page=True)
    assert (shots / f"{name}-forward.png").stat().st_size > 0
    # keyboard: back one step, home, end
    page.keyboard.press("ArrowLeft")
    assert page.inner_text("#step") == str(len(steps) - 1)
    page.keyboard.press("Home")
    assert page.inner_text("#step") == "0" and _state(page) == {}
    page.keyboard.press("End")
    assert page.inner_text("#step") == str(len(steps))
    page.close()


def test_fragment_opens_the_page_at_a_step(browser, tmp_path):
    expr, at = GRAPHS["xyz"]
    path = tmp_path / "xyz.html"
    dk.viz.write_graph_html(expr, at, path)
    steps = dk.viz.graph_steps(expr, at)
    page = browser.new_page()
    page.goto(path.as_uri() + "#step=3")
    assert page.inner_text("#step") == "3"
    assert len([k for k in _state(page) if k.startswith("nv")]) == 3
    page.goto(path.as_uri() + "#step=end")
    page.reload()
    assert page.inner_text("#step") == str(len(steps))
    page.close()


def test_page_needs_no_network(tmp_path):
    expr, at = GRAPHS["neuron"]
    page = dk.viz.graph_html(expr, at)
    assert "<link" not in page and "@import" not in page
    assert not re.search(r"(?<![-\w])(src|href)=", page)  # nothing loaded from anywhere
    assert json.loads(page.split('id="steps">')[1].split("</script>")[0])


def test_cli_html(tmp_path):
    out = tmp_path / "g.html"
    run = [sys.executable, "-m", "diffkit", "graph"]
    done = subprocess.run(
        [*run, "(x+y)*z", "--at", "x=-2,y=5,z=-4", "--html", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "10 steps" in done.stdout and out.exists()
    for bad, message in [
        (["(x+y)*z", "--html", str(out)], "no value for variable"),
        (["x*y", "--at", "x=1,y=2", "--html", str(tmp_path / "g.png")], "should name a .html"),
        (["x*y", "--at", "x=1,y=2", "--html", str(tmp_path / "no" / "g.html")], "--html"),
    ]:
        done = subprocess.run([*run, *bad], capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1

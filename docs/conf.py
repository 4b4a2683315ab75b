"""Sphinx configuration of diffkit's documentation.

The tutorials and how-to guides are MyST text notebooks (Jupytext's ``md:myst``
format), executed at build time in a Jupyter kernel by MyST-NB; an uncaught exception
in a cell fails the build. Three pages are generated from the code at build time, so
they cannot drift: the op vocabulary (from the registry), the command line's help
(from its parser) and the gallery (from the committed study reports).
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "diffkit"
author = "diffkit authors"
copyright = "diffkit authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax from the built site, not a CDN
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints", "_generated/*.md"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
html_theme = "alabaster"
html_title = "diffkit"
html_static_path: list[str] = []
# a Python reference to anything that is not documented is an error too; the types of
# other libraries are the exception (their inventories would need the network)
nitpicky = True
nitpick_ignore = [
    ("py:class", name)
    for name in (
        "numpy.ndarray",
        "np.ndarray",
        "scipy.sparse.csr_matrix",
        "scipy.sparse._csr.csr_matrix",
        "Path",
    )
]
suppress_warnings = ["myst.header"]  # the reports start at level 1 inside the gallery


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _ops_page(out: Path) -> None:
    """The vocabulary: every op record and composite function, from the registry."""
    import diffkit as dk
    from diffkit.ir.op import functions

    lines = [
        "# Op vocabulary\n",
        "Every op diffkit knows, read from its registry when these pages are built. Each op "
        "is one record: its shape rule, numpy implementation and derivative rules; the "
        "columns say which rule kinds the record carries or derives from its kind, and "
        "which numpy functions trace to it.\n",
        "| op | kind | names | numpy | rules | description |",
        "|---|---|---|---|---|---|",
    ]
    for name, op in sorted(dk.registry().items()):
        numpy_names = ", ".join(
            getattr(f[0] if isinstance(f, tuple) else f, "__name__", str(f))
            + (f".{f[1]}" if isinstance(f, tuple) else "")
            for f in (op.numpy or ())
        )
        rules = ", ".join(sorted(k for k, v in (op.rules or {}).items() if v is not None))
        doc = (op.doc or "").replace("|", "\\|").replace("\n", " ")
        names = ", ".join(op.names or (name,))
        lines.append(f"| `{name}` | {op.kind} | {names} | {numpy_names} | {rules} | {doc} |")
    lines += [
        "\n## Composite functions\n",
        "Functions built from the ops above; their derivatives follow from the ops'.\n",
        "| function | description |",
        "|---|---|",
    ]
    for name, fn in sorted(functions().items()):
        doc = (getattr(fn, "doc", None) or "").split("\n")[0].replace("|", "\\|")
        lines.append(f"| `{name}` | {doc} |")
    _write(out / "ops.md", "\n".join(lines) + "\n")


def _cli_page(out: Path) -> None:
    """``diffkit --help`` and every subcommand's, from the parser."""
    import argparse

    from diffkit.cli import build_parser

    parser = build_parser()
    parts = ["# Command line\n", "The `diffkit` command; each subcommand's `--help`.\n"]
    parts += ["```text", parser.format_help().rstrip(), "```\n"]
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subs.choices.items():
        parts += [f"## diffkit {name}\n", "```text", sub.format_help().rstrip(), "```\n"]
    _write(out / "cli.md", "\n".join(parts))


def _gallery(out: Path) -> None:
    """Each committed study report, with its figures, as a page of the gallery."""
    from diffkit.demo import STUDIES, TITLES

    reports = ROOT / "reports"
    entries = []
    for name in STUDIES:
        src = reports / name
        if not (src / "README.md").exists():
            continue
        dst = out / "gallery" / name
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        for f in src.iterdir():
            if f.suffix in (".png", ".svg"):
                shutil.copy2(f, dst / f.name)
        _write(dst / "index.md", (src / "README.md").read_text())
        entries.append(f"{name}/index")
    text = [
        "# Gallery of the studies\n",
        "Each study turns one claim of the course into measurements; these are the "
        "committed reports (full runs, `make reports`).\n",
        "| study | question |",
        "|---|---|",
    ]
    text += [f"| [{n}]({n}/index.md) | {TITLES[n]} |" for n in STUDIES if f"{n}/index" in entries]
    text += ["\n```{toctree}", ":hidden:", *entries, "```\n"]
    _write(out / "gallery" / "index.md", "\n".join(text))


def _api_rest(out: Path, srcdir: Path) -> None:
    """Every public name of ``diffkit`` that the hand-grouped API page does not list,
    documented from its docstring, so that no public name is missing."""
    import inspect
    import re

    import diffkit as dk

    listed = set(re.findall(r"diffkit\.(\w+)", (srcdir / "reference" / "api.md").read_text()))
    lines = ["```{eval-rst}"]
    for name in dk.__all__:
        obj = getattr(dk, name)
        if name in listed or inspect.ismodule(obj):
            continue
        if inspect.isclass(obj):
            kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        elif callable(obj):
            kind = "autofunction"
        else:
            kind = "autodata"
        lines.append(f".. {kind}:: diffkit.{name}")
    lines.append("```\n")
    _write(out / "api-more.md", "\n".join(lines))


def _generate(app) -> None:
    out = Path(app.srcdir) / "_generated"
    _api_rest(out, Path(app.srcdir))
    _ops_page(out)
    _cli_page(out)
    _gallery(out)


_REMOTE = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)


def _no_remote_assets(app, exc) -> None:
    """Fail the build if a page loads a script or a stylesheet from the network: the site,
    like the graph page, works offline."""
    if exc is not None or app.builder.format != "html":
        return
    remote = sorted(
        str(page.relative_to(app.outdir))
        for page in Path(app.outdir).rglob("*.html")
        if _REMOTE.search(page.read_text(errors="replace"))
    )
    if remote:
        raise RuntimeError(f"pages load scripts or styles from the network: {remote[:5]}")


def setup(app):
    app.connect("builder-inited", _generate)
    app.connect("build-finished", _no_remote_assets)

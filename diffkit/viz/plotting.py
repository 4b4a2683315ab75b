"""Plotting and report helpers: one that saves a figure, one that writes a Markdown table,
both atomic.

Figures are :class:`matplotlib.figure.Figure` objects drawn on their own Agg canvas (no
screen needed): matplotlib's backend, pyplot's current figure and the figures a user has
open are left as they were.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io import atomic_write_bytes, atomic_write_text

__all__ = ["new_figure", "figure_bytes", "save_figure", "markdown_table", "write_text", "mean_sd"]


def new_figure(rows: int = 1, cols: int = 1, figsize=(7, 4.5)):
    """A figure (on its own Agg canvas, unknown to pyplot) and its axes.

    Args:
        rows, cols: the grid of axes.
        figsize: the size in inches.

    Returns:
        ``(figure, axes)``: one Axes, or an array of them for a grid.

    >>> from diffkit import viz
    >>> fig, axes = viz.new_figure(1, 2)
    >>> type(fig).__name__, axes.shape
    ('Figure', (2,))
    """
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    axes = fig.subplots(rows, cols, squeeze=True)
    return fig, axes


def figure_bytes(fig, fmt: str = "png", dpi: int = 110, **savefig) -> bytes:
    """``fig`` rendered as ``fmt`` (png, svg, pdf), with no date or software stamp, so that
    the same figure gives the same bytes."""
    buf = io.BytesIO()
    meta = {"Software": None} if fmt == "png" else ({"Date": None} if fmt == "svg" else {})
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=meta, **savefig)
    return buf.getvalue()


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG to ``path`` atomically.

    Args:
        fig: a matplotlib Figure.
        path: the file to write.
        dpi: the resolution.

    Returns:
        Path: ``path``.

    >>> import pathlib, tempfile
    >>> from diffkit import viz
    >>> fig, ax = viz.new_figure()
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     viz.save_figure(fig, pathlib.Path(d) / "line.png").read_bytes()[:8]  # the PNG signature
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    if not fig.legends:
        fig.tight_layout()
    return atomic_write_bytes(path, figure_bytes(fig, "png", dpi))


def _cell(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "—"
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.2e}"
    return str(v)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub-flavoured Markdown table; a NaN cell (a value not computed, or a column
    that does not apply to the row) prints as "—", explained under the table.

    Args:
        headers: the column titles.
        rows: the rows, one value per column.

    Returns:
        str: the table.

    >>> from diffkit import viz
    >>> print(viz.markdown_table(["n", "error"], [[1, 0.5], [2, 0.25]]), end="")
    | n | error |
    |---|---|
    | 1 | 0.5 |
    | 2 | 0.25 |
    """
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    cells = [[_cell(v) for v in row] for row in rows]
    for row in cells:
        lines.append("| " + " | ".join(row) + " |")
    if any("—" in row for row in cells):
        lines.append("")
        lines.append("—: not computed for this row, or not applicable to it.")
    return "\n".join(lines) + "\n"


def write_text(path: str | Path, text: str) -> Path:
    """Write a report atomically.

    Args:
        path: the file to write (its directory is created).
        text: the text.

    Returns:
        Path: ``path``.

    >>> import pathlib, tempfile
    >>> from diffkit import viz
    >>> with tempfile.TemporaryDirectory() as d:
    ...     viz.write_text(pathlib.Path(d) / "README.md", "# Report").read_text()
    '# Report'
    """
    return atomic_write_text(path, text)


def mean_sd(values, fmt: str = ".4g") -> str:
    """A table cell for repeated measurements: ``mean ± sd`` (sample standard deviation),
    the value alone when all agree or there is one, — when there is none (NaNs, such as
    runs that diverged, are left out)."""
    import math

    values = [float(v) for v in values if not math.isnan(float(v))]
    if not values:
        return "—"
    mean = sum(values) / len(values)
    if len(values) == 1 or all(v == values[0] for v in values):
        return format(mean, fmt)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{format(mean, fmt)} ± {sd:.2g}"

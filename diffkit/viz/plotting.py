"""Plotting and report helpers: one that saves a figure, one that writes a Markdown table,
both atomic; matplotlib runs on the Agg backend (no screen needed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io import atomic_write_bytes, atomic_write_text  # noqa: E402

__all__ = ["new_figure", "save_figure", "markdown_table", "write_text", "mean_sd", "plt"]


def new_figure(rows: int = 1, cols: int = 1, figsize=(7, 4.5)):
    """A figure and its axes, with a readable default style."""
    fig, axes = plt.subplots(rows, cols, figsize=figsize, squeeze=True)
    return fig, axes


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG to ``path`` atomically and close it."""
    buf = io.BytesIO()
    if not fig.legends:
        fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


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
    that does not apply to the row) prints as "—", explained under the table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    cells = [[_cell(v) for v in row] for row in rows]
    for row in cells:
        lines.append("| " + " | ".join(row) + " |")
    if any("—" in row for row in cells):
        lines.append("")
        lines.append("—: not computed for this row, or not applicable to it.")
    return "\n".join(lines) + "\n"


def write_text(path: str | Path, text: str) -> Path:
    """Write a report atomically."""
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

"""Drawing computational graphs, and the plotting helpers the studies share."""

from .graph import draw_graph, node_label
from .plotting import markdown_table, new_figure, save_figure, write_text

__all__ = ["draw_graph", "node_label", "markdown_table", "new_figure", "save_figure", "write_text"]

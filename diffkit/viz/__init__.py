"""Drawing computational graphs, and the plotting helpers the studies share."""

from .graph import MAX_NODES, Graph, GraphTooLarge, draw_graph, layout, node_label
from .plotting import markdown_table, new_figure, save_figure, write_text

__all__ = [
    "draw_graph",
    "Graph",
    "GraphTooLarge",
    "layout",
    "MAX_NODES",
    "node_label",
    "markdown_table",
    "new_figure",
    "save_figure",
    "write_text",
]

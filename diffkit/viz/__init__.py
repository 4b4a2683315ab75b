"""Drawing computational graphs (as pictures, and as pages that step through the
passes), and the plotting helpers the studies share."""

from .graph import MAX_NODES, Graph, GraphTooLarge, draw_graph, layout, node_label
from .plotting import markdown_table, new_figure, save_figure, write_text
from .stepper import SteppedGraph, graph_html, graph_steps, write_graph_html

__all__ = [
    "draw_graph",
    "Graph",
    "graph_html",
    "graph_steps",
    "write_graph_html",
    "SteppedGraph",
    "GraphTooLarge",
    "layout",
    "MAX_NODES",
    "node_label",
    "markdown_table",
    "new_figure",
    "save_figure",
    "write_text",
]

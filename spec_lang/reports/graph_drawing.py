"""The matplotlib drawing of a program's picture, for machines without Graphviz: a layered layout (each node one
row below the lowest of the nodes it is computed from: inputs, stacks, heads, losses, the objective), boxes in the
colours of `NODE_STYLES` and arrows in the styles of `EDGE_STYLES`, the reversal points red and dashed.

>>> from spec_lang.reports.graph import Edge, Graph, Node
>>> rows(Graph(("model m",), (Node("a", "input", ("a",)), Node("b", "stack", ("b",)),
...                          Node("c", "loss", ("c",))), (Edge("a", "b"), Edge("a", "c"), Edge("b", "c"))))
[['a'], ['b'], ['c']]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from spec_lang.reports.graph import BORDER_COLOUR, EDGE_STYLES, NODE_STYLES, REVERSAL_COLOUR, Edge, Graph, Node

FONT_SIZE = 8  # points
CHAR_WIDTH = 0.075  # inches per character at FONT_SIZE, a little wider than most characters
LINE_HEIGHT = 0.16  # inches per line at FONT_SIZE
PADDING = 0.25  # inches around a node's text
GAP = (0.35, 0.7)  # inches between the boxes of a row, and between rows
MARGIN = 0.3  # inches around the picture


def rows(graph: Graph) -> list[list[str]]:
    """The nodes by rows: a node goes one row below the lowest of the nodes with an edge into it, a loss one row
    above the highest of those it goes into (so losses share a row above the objective); within a row, below the
    nodes it comes from (the first row in the graph's order)."""
    row = {node.id: 0 for node in graph.nodes}
    for _ in graph.nodes:  # the longest path to each node is found in at most as many rounds as there are nodes
        changed = False
        for edge in graph.edges:
            if row[edge.target] <= row[edge.source]:
                row[edge.target] = row[edge.source] + 1
                changed = True
        if not changed:
            break
    for node in reversed(graph.nodes):  # losses as low as they can go: one row above what reads them
        after = [row[e.target] for e in graph.edges if e.source == node.id]
        if node.kind == "loss" and after:
            row[node.id] = min(after) - 1
    found: list[list[str]] = [[] for _ in range(max(row.values(), default=-1) + 1)]
    for node in graph.nodes:
        found[row[node.id]].append(node.id)
    place: dict[str, float] = {}  # where in its row a node stands, from 0 (left) to 1 (right)
    sources: dict[str, list[str]] = {}
    for edge in graph.edges:
        sources.setdefault(edge.target, []).append(edge.source)
    for index, nodes in enumerate(found):
        if index:  # below the average place of the nodes it comes from, which keeps crossings few
            nodes.sort(key=lambda n: sum(place[s] for s in sources[n]) / len(sources[n]) if n in sources else 0.5)
        place |= {n: (i + 0.5) / len(nodes) for i, n in enumerate(nodes)}
    return found


def _size(node: Node) -> tuple[float, float]:
    """A node's box in inches: wide enough for its longest line, tall enough for its lines."""
    return max(len(line) for line in node.lines) * CHAR_WIDTH + PADDING, len(node.lines) * LINE_HEIGHT + PADDING


def _ends(
    graph: Graph, centre: dict[str, tuple[float, float]], sizes: dict[str, tuple[float, float]]
) -> dict[Edge, tuple[tuple[float, float], tuple[float, float]]]:
    """Where each edge leaves its source's bottom and meets its target's top: a node's edges spread along its
    side, in the order of the nodes at their other ends, so that they do not lie on top of each other."""
    outgoing: dict[str, list[Edge]] = {}
    incoming: dict[str, list[Edge]] = {}
    for edge in graph.edges:
        outgoing.setdefault(edge.source, []).append(edge)
        incoming.setdefault(edge.target, []).append(edge)

    def spread(node_id: str, edges: list[Edge], other: Callable[[Edge], str]) -> dict[Edge, float]:
        ordered = sorted(edges, key=lambda e: centre[other(e)][0])
        step = min(0.6 * sizes[node_id][0] / len(ordered), 0.25)
        x = centre[node_id][0]
        return {e: x + (i - (len(ordered) - 1) / 2) * step for i, e in enumerate(ordered)}

    starts = {e: x for n, es in outgoing.items() for e, x in spread(n, es, lambda e: e.target).items()}
    stops = {e: x for n, es in incoming.items() for e, x in spread(n, es, lambda e: e.source).items()}
    return {
        e: (
            (starts[e], centre[e.source][1] - sizes[e.source][1] / 2),
            (stops[e], centre[e.target][1] + sizes[e.target][1] / 2),
        )
        for e in graph.edges
    }


def _label_place(
    start: tuple[float, float],
    end: tuple[float, float],
    y: float,
    length: int,
    placed: list[tuple[float, float, float]],
) -> tuple[float, float, str]:
    """Where an edge's label of `length` characters goes: on the line at height `y` (the gap under its source's
    row, where no box is), beside it on the side it leans away from (so that the labels of a fan part), lower down
    while it would cover a label already `placed` (which it joins)."""
    slope = (end[0] - start[0]) / (start[1] - end[1])
    side = "right" if slope < -0.1 else "left" if slope > 0.1 else "center"
    width = length * CHAR_WIDTH * 0.9
    for _ in range(4):
        x = start[0] + (start[1] - y) * slope + {"right": -0.05, "left": 0.05, "center": 0.0}[side]
        left = {"right": x - width, "left": x, "center": x - width / 2}[side]
        if not any(abs(y - h) < LINE_HEIGHT and left < r and l < left + width for l, r, h in placed):
            break
        y -= LINE_HEIGHT
    placed.append((left, left + width, y))
    return x, y, side


def draw(graph: Graph, stream: BinaryIO, fmt: str) -> None:
    """Draw the graph with matplotlib and save it to `stream` as `fmt` (png or svg), at 100 dots per inch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    nodes = {node.id: node for node in graph.nodes}
    sizes = {node.id: _size(node) for node in graph.nodes}
    layout = rows(graph)
    widths = [sum(sizes[n][0] for n in row) + GAP[0] * (len(row) - 1) for row in layout]
    heights = [max(sizes[n][1] for n in row) for row in layout]
    title = len(graph.title) * LINE_HEIGHT * 1.3 + GAP[1] / 2
    width = max([*widths, max(len(line) for line in graph.title) * CHAR_WIDTH * 1.1]) + 2 * MARGIN
    height = sum(heights) + GAP[1] * (len(layout) - 1) + title + 2 * MARGIN
    centre: dict[str, tuple[float, float]] = {}
    below: dict[str, float] = {}
    top = height - MARGIN - title
    for row, row_width, row_height in zip(layout, widths, heights, strict=True):
        x = (width - row_width) / 2
        for node_id in row:
            centre[node_id] = (x + sizes[node_id][0] / 2, top - row_height / 2)
            below[node_id] = top - row_height - GAP[1] / 2  # the middle of the gap under its row
            x += sizes[node_id][0] + GAP[0]
        top -= row_height + GAP[1]

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, width)
    axes.set_ylim(0, height)
    axes.axis("off")
    axes.text(
        MARGIN, height - MARGIN, "\n".join(graph.title), ha="left", va="top", fontsize=FONT_SIZE + 1, parse_math=False
    )
    for node_id, (x, y) in centre.items():
        node, (w, h) = nodes[node_id], sizes[node_id]
        _, style, fill = NODE_STYLES[node.kind]
        axes.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0,rounding_size=0.08" if node.kind != "loss" else "square,pad=0",
                facecolor=fill,
                edgecolor=REVERSAL_COLOUR if node.reverses else BORDER_COLOUR,
                linestyle="--" if "dashed" in style else ":" if "dotted" in style else "-",
                linewidth=2 if node.reverses or "bold" in style else 1,
                zorder=2,
            )
        )
        axes.text(x, y, "\n".join(node.lines), ha="center", va="center", fontsize=FONT_SIZE, zorder=3, parse_math=False)
    ends = _ends(graph, centre, sizes)
    placed: list[tuple[float, float, float]] = []  # the edge labels drawn: left, right, height
    for edge in graph.edges:
        colour, line, line_width = EDGE_STYLES[edge.kind]
        start, end = ends[edge]
        axes.annotate(
            "",
            xy=end,
            xytext=start,
            zorder=1,
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "linestyle": line,
                "linewidth": line_width,
                "shrinkA": 0,
                "shrinkB": 0,
                "mutation_scale": 10,
            },
        )
        if edge.label:
            x, y, side = _label_place(start, end, below[edge.source], len(edge.label), placed)
            axes.text(
                x,
                y,
                edge.label,
                ha=side,
                va="center",
                fontsize=FONT_SIZE - 1,
                color=colour,
                zorder=4,
                parse_math=False,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
            )
    figure.savefig(stream, format=fmt, dpi=100)

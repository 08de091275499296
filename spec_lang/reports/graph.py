"""A picture of a checked program (`specc graph`): inputs with their types, stack applications with their layers,
heads, losses and the optimiser's objective, with the reversal points drawn in red dashes and the edges whose
gradients are reversed in red.

The graph is built once (`build_graph`) and written as DOT text (`to_dot`), or drawn as PNG or SVG by Graphviz's
`dot` when it is installed (`apt-get install graphviz`), else by matplotlib (`spec_lang.reports.graph_drawing`).

>>> import spec_lang
>>> graph = build_graph(spec_lang.load("examples/seed_dann.dann").program)
>>> sorted({edge.kind for edge in graph.edges})
['data', 'reversal', 'reversed']
>>> graph_format("model.svg"), graph_format("model.gv")
('svg', 'dot')
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from spec_lang import program as P
from spec_lang.diagnostics import file_error
from spec_lang.files import check_output, write_atomic
from spec_lang.reports.plots import require_matplotlib
from spec_lang.reports.summary import layer_text, optimizer_text, stack_options_text, type_text, value_namer

FORMATS = {".dot": "dot", ".gv": "dot", ".png": "png", ".svg": "svg"}  # a file's suffix → what is written there
RENDERERS = ("auto", "dot", "matplotlib")
DOT_TIMEOUT = 120  # seconds Graphviz may take to lay a graph out
WIDTH = 52  # characters per line of a node's label

# A node's kind → its DOT shape, style and fill colour; the matplotlib drawing uses the fill colours too.
NODE_STYLES = {
    "input": ("ellipse", "filled", "#dbe9f6"),
    "stack": ("box", "rounded,filled", "#e6f4e6"),
    "head": ("box", "rounded,filled,bold", "#c4e8c4"),
    "reverse": ("box", "rounded,filled,dashed", "#fbe3e3"),
    "outer": ("box", "rounded,filled", "#eeeeee"),
    "interpolate": ("box", "rounded,filled,dotted", "#eeeeee"),
    "loss": ("box", "filled", "#fff2c2"),
    "objective": ("box", "filled,bold", "#ffd8a8"),
}
GRAPH_ATTRIBUTES: dict[str, object] = {
    "labelloc": "t",
    "fontname": "Helvetica",
    "fontsize": 12,
    "rankdir": "TB",
    "nodesep": 0.3,
    "ranksep": 0.45,
}
REVERSAL_COLOUR = "#d62728"
BORDER_COLOUR = "#333333"
# An edge's kind → its colour, line style and width. `reversal`: where gradients are reversed; `reversed`: an edge
# whose gradient (of the losses behind a reversal point) arrives reversed; `conditioning`: outer's predictions,
# which get no gradient; `parameters`: a penalty reading a stack's parameters.
EDGE_STYLES: dict[str, tuple[str, Literal["solid", "dashed", "dotted"], float]] = {
    "data": ("#444444", "solid", 1.0),
    "reversal": (REVERSAL_COLOUR, "dashed", 2.0),
    "reversed": (REVERSAL_COLOUR, "solid", 2.0),
    "conditioning": ("#888888", "dotted", 1.0),
    "parameters": ("#888888", "dotted", 1.0),
}


@dataclass(frozen=True)
class Node:
    """A box of the picture: `kind` is a key of `NODE_STYLES`; `reverses` marks a stack application with a
    `reverse` layer inside, drawn with a red border like a `reverse(...)`."""

    id: str
    kind: str
    lines: tuple[str, ...]
    reverses: bool = False


@dataclass(frozen=True)
class Edge:
    """An arrow along which values flow forward (and gradients back); `kind` is a key of `EDGE_STYLES`."""

    source: str
    target: str
    kind: str = "data"
    label: str = ""


@dataclass(frozen=True)
class Graph:
    """A program's picture: its title and caption lines, nodes in a topological order, edges."""

    title: tuple[str, ...]
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, break_long_words=False, break_on_hyphens=False) or [""]


def _pack(parts: list[str]) -> list[str]:
    """Parts joined by ", ", as many to a line as fit in `WIDTH` characters."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 2 + len(part) <= WIDTH:
            lines[-1] += ", " + part
        else:
            if lines:
                lines[-1] += ","
            lines.append(part)
    return lines


def _loss_refs(scalar: P.Scalar) -> list[str]:
    """The losses a scalar expression names, left to right."""
    if isinstance(scalar, P.Arith):
        return _loss_refs(scalar.left) + (_loss_refs(scalar.right) if scalar.right else [])
    return [scalar.name] if isinstance(scalar, P.LossRef) else []


class _Builder:
    """Builds a program's `Graph`: values first (each after the values it is computed from), then the losses and
    the objective."""

    def __init__(self, program: P.Program):
        self.program = program
        _, _, self.scalar = value_namer(program)
        self.names: dict[int, list[str]] = {}
        for name, value in program.values.items():
            self.names.setdefault(id(value), []).append(name)
        for name, value in program.heads.items():
            self.names.setdefault(id(value), []).append(f"head {name}")
        self.short = {key: names[0].removeprefix("head ") for key, names in self.names.items()}
        self.ids: dict[int, str] = {}
        self.applications: dict[str, list[str]] = {}  # stack → the nodes applying it
        self.nodes: list[Node] = []
        self.edges: dict[Edge, None] = {}  # an ordered set
        self.points = P.reversal_points(program)
        self.reversed: set[int] = set()  # values whose incoming edges carry reversed gradients
        for point in self.points:
            below = point.value if point.layer else point.value.arg  # a reverse layer after the first: inside
            self.reversed |= {id(v) for v in P.ancestors(below, gradient=True)}

    def build(self) -> Graph:
        scalars = [*self.program.losses.values(), *(phase.objective for phase in self.program.phases)]
        roots = [*self.program.inputs, *self.program.values.values(), *self.program.heads.values()]
        for value in roots + [v for s in scalars for v in P.tensors(s)]:
            self.visit(value)
        for name, loss in self.program.losses.items():
            lines = [f"loss {name}", *_wrap(self.scalar(loss))]
            self.nodes.append(Node(f"loss_{name}", "loss", tuple(lines)))
            self.feed(loss, f"loss_{name}")
        several = len(self.program.phases) > 1
        for phase in self.program.phases:
            lines = [f"minimize {self.scalar(phase.objective)}", optimizer_text(phase, self.scalar)]
            if several:
                repeat = f" repeat {phase.repeat}" if phase.repeat > 1 else ""
                lines = [f"{phase.name}: updates {', '.join(phase.stacks)}{repeat}", *lines]
            node = f"phase_{phase.name}" if several else "objective"
            self.nodes.append(Node(node, "objective", tuple(line for text in lines for line in _wrap(text))))
            self.feed(phase.objective, node)
        return Graph(self.title(), tuple(self.nodes), tuple(self.edges))

    def title(self) -> tuple[str, ...]:
        lines = [f"model {self.program.name}"]
        if self.points:
            losses = ", ".join(dict.fromkeys(n for p in self.points for n in p.losses)) or "no loss"
            stacks = ", ".join(dict.fromkeys(s for p in self.points for s in p.stacks)) or "no stack"
            lines += [
                "red dashed: gradient reversal (identity forward, gradient × −λ backward)",
                f"red: edges carrying the reversed gradients of {losses} to {stacks}",
            ]
        if self.program.stages:
            stages = [
                f"{s.name} ({f'{s.epochs} epochs' if s.epochs else 'to the end'}) runs {', '.join(s.phases)}"
                for s in self.program.stages
            ]
            lines.append("stages: " + "; then ".join(stages))
        elif len(self.program.phases) > 1:
            lines.append(f"each batch runs, in order: {', '.join(p.name for p in self.program.phases)}")
        return tuple(lines)

    def visit(self, root: P.Value) -> None:
        """Add a value's node, after those of the values it is computed from (depth first, without recursion)."""
        pending: list[tuple[P.Value, bool]] = [(root, False)]
        while pending:
            value, ready = pending.pop()
            if id(value) in self.ids:
                continue
            if ready:
                self.add(value)
            else:
                pending.append((value, True))
                pending += [(parent, False) for parent in reversed(P.parents(value))]

    def add(self, value: P.Value) -> None:
        node_id = f"input_{value.name}" if isinstance(value, P.InputValue) else f"v{len(self.ids)}"
        self.ids[id(value)] = node_id
        shown = type_text(self.program, value.type)
        match value:
            case P.InputValue(name=name, bound=bound):
                self.nodes.append(Node(node_id, "input", (f"input {name}", shown + (f" < {bound}" if bound else ""))))
            case P.Applied(stack=stack):
                definition = self.program.stack(stack)
                layers = _pack([layer_text(layer, self.scalar) for layer in definition.layers])
                kind = "head" if any(n.startswith("head ") for n in self.names.get(id(value), [])) else "stack"
                lines = (self.heading(value), *layers, *_wrap(stack_options_text(definition).strip()), shown)
                reverses = any(layer.reverses_gradient for layer in definition.layers)
                self.nodes.append(Node(node_id, kind, tuple(line for line in lines if line), reverses))
                self.applications.setdefault(stack, []).append(node_id)
            case P.Reversed():
                self.nodes.append(Node(node_id, "reverse", (self.heading(value), shown), True))
            case P.Outer():
                self.nodes.append(Node(node_id, "outer", (self.heading(value), shown)))
            case _:  # interpolate(…)
                self.nodes.append(Node(node_id, "interpolate", (self.heading(value), shown)))
        for parent in P.parents(value):
            self.edges[self.edge(parent, value)] = None

    def heading(self, value: P.Value) -> str:
        """`fs = features(xs)`, `head label_probabilities = label(fs)`, or the expression of an unnamed value."""
        text = P.expression(value, self.short)
        names = self.names.get(id(value))
        return f"{' / '.join(names)} = {text}" if names else text

    def edge(self, parent: P.Value, child: P.Value) -> Edge:
        source, target = self.ids[id(parent)], self.ids[id(child)]
        if isinstance(child, P.Outer) and parent is child.predictions and parent is not child.features:
            return Edge(source, target, "conditioning", "no gradient")
        lam = self.reversal(child)
        if lam is not None:
            return Edge(source, target, "reversal", f"reverse λ = {self.scalar(lam)}")
        return Edge(source, target, "reversed" if id(child) in self.reversed else "data")

    def reversal(self, value: P.Value) -> P.Scalar | None:
        """The λ of a reversal at a value's input: a `reverse(...)`, or a stack whose first layer is `reverse`."""
        if isinstance(value, P.Reversed):
            return value.lam
        first = self.program.stack(value.stack).layers[:1] if isinstance(value, P.Applied) else ()
        return cast(P.Scalar, first[0].option("lambda")) if first and first[0].reverses_gradient else None

    def feed(self, scalar: P.Scalar, target: str) -> None:
        """Edges into a loss or the objective: from the values its loss functions read, the stacks whose parameters
        a penalty reads, and the losses it names."""
        for term in P.loss_functions(scalar):
            for value in term.values:
                self.edges[Edge(self.ids[id(value)], target)] = None
            for stack in term.stacks:  # its first application stands for the parameters all of them share
                for source in self.applications.get(stack, [])[:1]:
                    self.edges[Edge(source, target, "parameters", f"parameters of {stack}")] = None
        for name in _loss_refs(scalar):
            self.edges[Edge(f"loss_{name}", target)] = None


def build_graph(program: P.Program) -> Graph:
    """The picture of a checked program: nodes for its inputs, each application of a stack (its layers
    summarised), `reverse(...)` and `outer(...)` values, its losses and the objective; edges from each value to
    those computed from it."""
    return _Builder(program).build()


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped; newlines become DOT's centred line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attributes(pairs: Mapping[str, object]) -> str:
    return "[" + ", ".join(f"{k}={_quote(str(v))}" for k, v in pairs.items() if v != "") + "]"


def to_dot(graph: Graph) -> str:
    """The graph as Graphviz DOT text, the same for the same program (so it can be compared with a golden copy)."""
    out = [
        f"digraph {_quote(graph.title[0].removeprefix('model '))} {{",
        f"  graph {_attributes({'label': chr(10).join(graph.title), **GRAPH_ATTRIBUTES})}",
        f"  node {_attributes({'fontname': 'Helvetica', 'fontsize': 10, 'penwidth': 1})}",
        f"  edge {_attributes({'fontname': 'Helvetica', 'fontsize': 9, 'arrowsize': 0.7})}",
    ]
    for node in graph.nodes:
        shape, style, fill = NODE_STYLES[node.kind]
        border = REVERSAL_COLOUR if node.reverses else BORDER_COLOUR
        pairs = {"label": "\n".join(node.lines), "shape": shape, "style": style, "fillcolor": fill, "color": border}
        out.append(f"  {_quote(node.id)} {_attributes(pairs)}")
    for edge in graph.edges:
        colour, line, width = EDGE_STYLES[edge.kind]
        drawn = {"label": edge.label, "color": colour, "fontcolor": colour, "style": line, "penwidth": width}
        out.append(f"  {_quote(edge.source)} -> {_quote(edge.target)} {_attributes(drawn)}")
    inputs = [node.id for node in graph.nodes if node.kind == "input"]
    if inputs:
        out.append("  { rank=same; " + " ".join(f"{_quote(i)};" for i in inputs) + " }")
    return "\n".join(out) + "\n}\n"


def graph_format(path: str | os.PathLike) -> str:
    """What a file of this name holds: `dot` (.dot, .gv), `png` or `svg`; another suffix is an error (E004)."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise file_error(
            path, "E004", f"unknown graph format '{suffix}'", "name a .png, .svg or .dot file (.gv for DOT too)"
        )
    return FORMATS[suffix]


def choose_renderer(fmt: str, renderer: str = "auto") -> str | None:
    """Who draws a picture of format `fmt`: None for DOT text (no one), `dot` (Graphviz, when `dot` is on the PATH
    and `renderer` is `auto` or `dot`) or `matplotlib`. Neither installed: an error (E005) with the install
    commands."""
    if fmt == "dot":
        return None
    if renderer in ("auto", "dot") and shutil.which("dot"):
        return "dot"
    if renderer != "dot":
        try:
            require_matplotlib()
            return "matplotlib"
        except ImportError:
            pass
    wanted = {"auto": "Graphviz's dot or matplotlib", "dot": "Graphviz's dot", "matplotlib": "matplotlib"}[renderer]
    raise file_error(
        None,
        "E005",
        f"drawing a .{fmt} file needs {wanted}, which is not installed",
        "install Graphviz (apt-get install graphviz) or matplotlib (pip install 'spec-lang[plots]'), or write a "
        ".dot file",
    )


def _run_dot(text: str, fmt: str, path: str | os.PathLike) -> bytes:
    """The picture Graphviz's `dot` draws of DOT text; a failure is an error (E004) naming its last message."""
    try:
        done = subprocess.run(
            [shutil.which("dot") or "dot", f"-T{fmt}"], input=text.encode(), capture_output=True, timeout=DOT_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        problem = str(error)
    else:
        if done.returncode == 0 and done.stdout:
            return done.stdout
        problem = (done.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    raise file_error(
        path,
        "E004",
        f"cannot draw it: Graphviz's dot failed: {problem}",
        "draw it with matplotlib (--renderer matplotlib), or write a .dot file",
    )


def write_graph(program: P.Program, path: str | os.PathLike, *, renderer: str = "auto", force: bool = False) -> str:
    """Write the program's picture to `path`: DOT text (.dot, .gv), or a PNG or SVG drawn by Graphviz's `dot` or
    matplotlib (`renderer`: auto, dot or matplotlib; auto prefers dot). An existing file is replaced only with
    `force` (else E002). Returns who drew it: `dot`, `matplotlib`, or `text` for DOT text."""
    fmt = graph_format(path)
    check_output(path, force)
    chosen = choose_renderer(fmt, renderer)
    graph = build_graph(program)
    if chosen is None:
        write_atomic(path, to_dot(graph))
    elif chosen == "dot":
        write_atomic(path, _run_dot(to_dot(graph), fmt, path))
    else:
        from spec_lang.reports.graph_drawing import draw

        write_atomic(path, lambda stream: draw(graph, stream, fmt))
    return chosen or "text"

"""The comments of `.dann` text, carried over by the printer: attached to the statement or layer they belong to, and
trailing comments that stood aligned on consecutive lines aligned again.

>>> print(align(["input x : float[b]  # one", "input yy : int[b]  # two"], [1, 1]))
['input x : float[b]  # one', 'input yy : int[b]   # two']
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from spec_lang.syntax import ir

type Position = tuple[int, int]  # a line and a column


@dataclass
class Comments:
    """Comments of the source text, attached to statements and layers by the line they start on. A comment after
    code carries its group: the first of the consecutive lines whose comments after code stood in its column. One
    after code inside a statement, where an operand of the statement's value ends, is a note of that statement."""

    leading: dict[Position, list[str]] = field(default_factory=dict)
    trailing: dict[Position, list[tuple[str, int]]] = field(default_factory=dict)
    notes: dict[Position, dict[Position, tuple[str, int]]] = field(default_factory=dict)  # by where the code ends
    end: list[str] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)  # the group of each comment printed after code, in order

    @classmethod
    def attach(cls, text: str, model: ir.Model) -> Comments:
        """The comments of `text`, of which `model` was read."""
        anchors = sorted(_anchors(model), key=lambda s: (s.line, s.column))
        comments = cls()
        after_code: dict[int, tuple[int, int]] = {}  # line → the column of its comment after code, its group
        for number, line in enumerate(text.splitlines(), 1):
            if "#" not in line:
                continue
            column = line.index("#")
            comment, code = line[column:].rstrip(), line[:column].rstrip()
            above = after_code.get(number - 1)
            group = above[1] if above is not None and above[0] == column else number
            if code:
                after_code[number] = (column, group)
            ending_here = [
                a for a in anchors if a.end_line == number and a.line <= number and a.end_column <= column + 1
            ]
            if ending_here:
                outer = min(ending_here, key=lambda s: (s.line, s.column))
                comments.trailing.setdefault(_key(outer), []).append((comment, group))
                continue
            anchor, inside = _owner(anchors, number)
            if anchor is None:
                comments.end.append(comment)
            elif inside and code:
                comments.notes.setdefault(_key(anchor), {})[(number, len(code) + 1)] = (comment, group)
            else:
                comments.leading.setdefault(_key(anchor), []).append(comment)
        return comments

    def lines_before(self, span: ir.Span | None, indent: str) -> list[str]:
        """The comments on the lines before a node, and the notes of a statement left where they were not
        printed, to print before it."""
        if span is None:
            return []
        left = [comment for comment, _ in self.notes.pop(_key(span), {}).values()]
        return [indent + c for c in self.leading.pop(_key(span), []) + left]

    def after(self, span: ir.Span | None) -> str:
        """The trailing comment of a node, to append to its last line; printed lines must call this and `note` in
        their order."""
        found = self.trailing.pop(_key(span), []) if span else []
        self.groups += [group for _, group in found[:1]]
        return "".join("  " + c for c, _ in found)

    def noted(self, statement: ir.Span | None, node: ir.Node) -> bool:
        """Whether the code of a line inside the statement ends where `node` ends, followed by a comment."""
        return _end(node) in self.notes.get(_key(statement), {}) if statement else False

    def note(self, statement: ir.Span | None, node: ir.Node) -> str:
        """The comment after `node` inside the statement, to append to the line `node` ends, if there is one."""
        end = _end(node)
        found = self.notes.get(_key(statement), {}).pop(end, None) if statement and end else None
        if found is None:
            return ""
        self.groups.append(found[1])
        return "  " + found[0]

    def touches(self, nodes: tuple) -> bool:
        """Whether any of the nodes has a comment."""
        keys = {_key(n.span) for n in nodes if n.span}
        return bool(keys & (set(self.leading) | set(self.trailing) | set(self.notes)))


def align(lines: list[str], groups: list[int]) -> list[str]:
    """The lines with trailing comments of one group on consecutive lines aligned, two spaces after the longest
    code among them; `groups` holds the group of each trailing comment, in order. Other trailing comments stand
    two spaces after their code, as the printer writes them."""
    marked = [(line, _code_end(line)) for line in lines]
    pending = iter(groups)
    owners = [next(pending) if end is not None else None for _, end in marked]
    aligned: list[str] = []
    start = 0
    while start < len(lines):
        stop = start + 1
        while owners[start] is not None and stop < len(lines) and owners[stop] == owners[start]:
            stop += 1
        run = marked[start:stop]
        column = max(end or 0 for _, end in run) + 2
        for line, end in run:
            aligned.append(line if end is None else line[:end].ljust(column) + line[end:].lstrip())
        start = stop
    return aligned


def _code_end(line: str) -> int | None:
    """Where the code of a line with a trailing comment ends (no code holds `#`), or None for other lines."""
    if "#" not in line or line.lstrip().startswith("#"):
        return None
    return len(line[: line.index("#")].rstrip())


def _owner(anchors: list[ir.Span], number: int) -> tuple[ir.Span | None, bool]:
    """Where a comment on line `number` that ends no statement or layer goes: before the next one, unless the line
    lies inside a statement that ends later (a broken expression), to which it then belongs; and whether inside."""
    after = next((a for a in anchors if a.line > number), None)
    inside = [a for a in anchors if a.line <= number < a.end_line]
    if not inside or (after is not None and after.line <= inside[-1].end_line):
        return after, False
    return inside[-1], True


def _through(start: ir.Span | None, end: ir.Span | None) -> ir.Span | None:
    """A span from where `start` starts to where `end` ends."""
    if start is None or end is None:
        return start
    return replace(start, end_line=end.end_line, end_column=end.end_column)


def _key(span: ir.Span) -> Position:
    return span.line, span.column


def _end(node: ir.Node) -> Position | None:
    return (node.span.end_line, node.span.end_column) if node.span else None


def _anchors(model: ir.Model) -> list[ir.Span]:
    spans: list[ir.Span | None] = [model.span]
    spans += [_through(p.span, p.default.span) for p in model.params]  # a parameter's span is its name
    spans += [n.span for group in (model.includes, model.inputs, model.lets, model.heads, model.losses) for n in group]
    spans += [n.span for group in (model.optimizers, model.stages) for n in group]
    spans += [model.init.span if model.init else None]

    def layers(items: tuple[ir.Layer, ...]) -> None:
        for layer in items:
            spans.append(layer.span)
            if isinstance(layer, ir.ForLayers):
                layers(layer.body)

    blocks: tuple[ir.Template | ir.Stack, ...] = (*model.templates, *model.stacks)
    for block in blocks:
        spans.append(block.span)
        layers(block.layers)
    return [s for s in spans if s is not None]

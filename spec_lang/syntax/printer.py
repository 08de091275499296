"""IR → canonical `.dann` text (what `specc fmt` writes). Printing is idempotent; comments in the original text are
carried over to the statement or layer they belong to (`comments.py`), and a statement longer than the line length
is broken over lines (`layout.py`).

>>> from spec_lang.syntax.parser import parse
>>> print(format_model(parse("model m(a=1)  stack s{dense a tanh;dense 2 softmax}")), end="")
model m(a = 1)
<BLANKLINE>
stack s { dense a tanh; dense 2 softmax }
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from spec_lang.syntax import ir
from spec_lang.syntax.comments import Comments, align
from spec_lang.syntax.layout import ATOM, INDENT, Item, Layout, arguments, flat, format_expr, items, terms

LINE_LENGTH = 100
__all__ = ["LINE_LENGTH", "format_expr", "format_model", "format_source"]


@dataclass
class _Printer:
    """The comments still to print and the layout of long lines."""

    layout: Layout
    c: Comments = field(default_factory=Comments)

    def statement(self, node: ir.Node, lines: list[str]) -> list[str]:
        """A statement's lines with its comments: those before it, and its trailing one after its last line."""
        return self.c.lines_before(node.span, "") + lines[:-1] + [lines[-1] + self.c.after(node.span)]

    def bracket(
        self, opener: str, entries: Sequence[Item], closer: str, indent: str = "", comma: bool = True
    ) -> list[str]:
        """`opener`, the entries joined by commas and `closer` on one line if that fits, else broken."""
        line = opener + ", ".join(p + ("" if v is None else flat(v, 0)) for p, v in entries) + closer
        if self.layout.fits(line) or not entries:
            return [line]
        return self.layout.bracket(opener, entries, closer, indent, comma)


def format_model(model: ir.Model, comments: Comments | None = None, line_length: int = LINE_LENGTH) -> str:
    """The canonical text of a model: header, includes, settings, inputs, templates, stacks, values, heads, losses,
    optimiser; lines longer than `line_length` (but for their trailing comments) are broken."""
    p = _Printer(Layout(line_length), comments or Comments())
    blocks: list[list[str]] = [p.statement(model, _header(model, p))]
    blocks.append([line for i in model.includes for line in p.statement(i, [f'include "{i.path}"'])])
    blocks.append(_settings(model, p))
    blocks.append([line for i in model.inputs for line in _input(i, p)])
    blocks += _together([_template(t, p) for t in model.templates])
    blocks += _together([_stack(s, p) for s in model.stacks])
    for keyword, group in (("let", model.lets), ("head", model.heads), ("loss", model.losses)):
        blocks.append([line for d in group for line in _definition(keyword, d, p)])
    blocks += _together([_optimize(o, p) for o in model.optimizers])
    blocks.append([line for stage in model.stages for line in p.statement(stage, [_stage(stage)])])
    blocks.append(list(p.c.end))
    lines = [line for lines in _joined([b for b in blocks if b]) for line in lines]
    return "\n".join(align(lines, p.c.groups)) + "\n"


def _header(model: ir.Model, p: _Printer) -> list[str]:
    """`model NAME(params)`; parameters with comments stand on lines of their own, with their comments."""
    opener = f"model {model.name}("
    if not p.c.touches(model.params):
        return p.bracket(opener, [(f"{q.name} = ", q.default) for q in model.params], ")")
    lines = [opener]
    for param in model.params:
        lines += p.c.lines_before(param.span, INDENT)
        value = p.layout.lines(param.default, f"{INDENT}{param.name} = ", ",", 0, INDENT)
        lines += value[:-1] + [value[-1] + p.c.after(param.span)]
    return [*lines, ")"]


def _joined(blocks: list[list[str]]) -> list[list[str]]:
    """The blocks with an empty line between each two."""
    return [block if k == 0 else ["", *block] for k, block in enumerate(blocks)]


def _settings(model: ir.Model, p: _Printer) -> list[str]:
    lines: list[str] = []
    init = model.init
    if init is not None and (init.weights is not None or init.biases is not None):
        roles = [(role, value) for role in ("weights", "biases") if (value := getattr(init, role)) is not None]
        body = ["init " + ", ".join(f"{role} = {format_expr(value)}" for role, value in roles)]
        if not p.layout.fits(body[0]):  # each role after the first on a line of its own, indented
            body = []
            for k, (role, value) in enumerate(roles):
                lead, indent = ("init ", "") if k == 0 else ("    ", "    ")
                body += p.layout.lines(value, f"{lead}{role} = ", "," if k < len(roles) - 1 else "", 0, indent)
        lines += p.statement(init, body)
    if model.seed is not None:
        lines += p.layout.lines(model.seed, "seed ")
    if model.precision is not None:
        lines.append(f"precision {model.precision}")
    return lines


def _together(entries: list[list[str]]) -> list[list[str]]:
    """Blocks of lines: consecutive one-line entries (e.g. stacks) stand together in one block, longer ones alone."""
    blocks: list[list[str]] = []
    grouping = False  # whether the last block holds one-line entries
    for lines in entries:
        if len(lines) == 1 and grouping:
            blocks[-1].extend(lines)
        else:
            blocks.append(list(lines))
            grouping = len(lines) == 1
    return blocks


def _input(node: ir.Input, p: _Printer) -> list[str]:
    bound = "" if node.bound is None else f" < {flat(node.bound, ATOM)}"
    shape: list[Item] = [("", d) for d in node.shape]
    return p.statement(node, p.bracket(f"input {node.name} : {node.dtype}[", shape, "]" + bound, comma=False))


def _definition(keyword: str, node: ir.Let | ir.Head | ir.Loss, p: _Printer) -> list[str]:
    """`let`, `head` or `loss`: a chain of operators too long for a line continues with the operators under the `=`,
    each term in a box of its own; an adversarial loss begins `adversarial loss`."""
    marked = isinstance(node, ir.Loss) and node.adversarial
    lead = f"{'adversarial ' if marked else ''}{keyword} {node.name} = "
    return p.statement(node, _value(node, node.value, lead, "", " " * (len(lead) - 2), " " * len(lead), p))


def _value(node: ir.Node, value: ir.Expr, lead: str, indent: str, cont: str, box: str | None, p: _Printer) -> list[str]:
    """A statement's value after `lead`; a chain of operators continues at `cont`, its operands closing their
    brackets at `box` (see `Layout.chain`). A comment after an operand inside the statement keeps it on the line
    the operand ends, which breaks the chain."""
    if isinstance(value, ir.BinOp):
        if any(p.c.noted(node.span, term) for _, term in terms(value)):
            return p.layout.chain(value, lead, "", indent, cont, box, lambda term: p.c.note(node.span, term))
        if box is not None and not p.layout.fits(lead + format_expr(value)):
            return p.layout.chain(value, lead, "", indent, cont, box)
    return p.layout.lines(value, lead, "", 0, indent, cont)


def _optimize(node: ir.Optimize, p: _Printer) -> list[str]:
    """`optimize [NAME =] CALL [updates STACKS] [repeat N] minimize OBJECTIVE`; too long for a line, `minimize …`
    continues on a line of its own."""
    lead = "optimize " + (f"{node.name} = " if node.name else "")
    tail = (" updates " + ", ".join(r.name for r in node.updates) if node.updates else "") + (
        f" repeat {format_expr(node.repeat)}" if node.repeat is not None else ""
    )
    line = f"{lead}{format_expr(node.optimizer)}{tail}"
    lines = [line] if p.layout.fits(line) else [*p.layout.lines(node.optimizer, lead), INDENT + tail.strip()]
    if node.objective is not None:
        objective = _value(node, node.objective, INDENT + "minimize ", INDENT, 2 * INDENT, None, p)
        line += f" minimize {format_expr(node.objective)}"
        lines = [line] if p.layout.fits(line) and len(objective) == 1 else lines + objective
    return p.statement(node, [text for text in lines if text.strip()])


def _stage(node: ir.Stage) -> str:
    """`stage NAME(OPTIONS) runs PHASES`."""
    options = f"({arguments((), node.options)})" if node.options else ""
    return f"stage {node.name}{options} runs {', '.join(r.name for r in node.runs)}"


def _layer_lines(layer: ir.Dense | ir.LayerCall, indent: str, p: _Printer) -> list[str]:
    if isinstance(layer, ir.Dense):
        head = f"{indent}dense {flat(layer.units, ATOM)} {layer.activation}"
        return p.bracket(head + " (", items((), layer.options), ")", indent) if layer.options else [head]
    return p.bracket(f"{indent}{layer.kind}(", items(layer.args, layer.kwargs), ")", indent)


def _layer_line(layer: ir.Layer) -> str:
    match layer:
        case ir.Dense(units=units, activation=activation, options=options):
            return f"dense {flat(units, ATOM)} {activation}" + (f" ({arguments((), options)})" if options else "")
        case ir.LayerCall(kind=kind, args=args, kwargs=kwargs):
            return f"{kind}({arguments(args, kwargs)})"
    raise TypeError(f"not a one-line layer: {layer!r}")


def _stack(stack: ir.Stack, p: _Printer) -> list[str]:
    options = items((), stack.options)

    def head(tail: str) -> list[str]:
        return p.bracket(f"stack {stack.name}(", options, ")" + tail) if options else [f"stack {stack.name}{tail}"]

    if stack.template is None:
        return _block(head, stack.layers, stack, p)
    lead = head(" = ")
    if not p.layout.fits(lead[-1] + stack.template.func + "("):  # the options break only if the call cannot
        lead = p.layout.bracket(f"stack {stack.name}(", options, ") = ", "")
    return p.statement(stack, lead[:-1] + p.layout.lines(stack.template, lead[-1]))


def _template(template: ir.Template, p: _Printer) -> list[str]:
    params: list[Item] = [(q.name + ("" if q.default is None else " = "), q.default) for q in template.params]
    return _block(
        lambda tail: p.bracket(f"template {template.name}(", params, ")" + tail), template.layers, template, p
    )


def _block(
    head: Callable[[str], list[str]], layers: tuple[ir.Layer, ...], node: ir.Stack | ir.Template, p: _Printer
) -> list[str]:
    """A stack's or template's layers in braces after its head (given what follows it, it gives its lines): on one
    line when they fit and hold no loop or comment."""
    if all(not isinstance(layer, ir.ForLayers) for layer in layers) and not p.c.touches(layers):
        one_line = head(f" {{ {'; '.join(_layer_line(layer) for layer in layers)} }}")
        if len(one_line) == 1 and p.layout.fits(one_line[0]):
            return p.statement(node, one_line)
    before = p.c.lines_before(node.span, "")
    return before + head(" {") + _layers(layers, "  ", p) + ["}" + p.c.after(node.span)]


def _layers(layers: tuple[ir.Layer, ...], indent: str, p: _Printer) -> list[str]:
    lines: list[str] = []
    for layer in layers:
        lines += p.c.lines_before(layer.span, indent)
        if isinstance(layer, ir.ForLayers):
            lines += p.layout.lines(layer.iterable, f"{indent}for {layer.var} in ", " {", ATOM, indent)
            lines += _layers(layer.body, indent + "  ", p)
            lines.append(f"{indent}}}{p.c.after(layer.span)}")
        else:
            body = _layer_lines(layer, indent, p)
            lines += body[:-1] + [body[-1] + p.c.after(layer.span)]
    return lines


def format_source(text: str, filename: str = "<string>", line_length: int = LINE_LENGTH) -> str:
    """Parse `.dann` text and print it canonically, keeping its comments."""
    from spec_lang.syntax.parser import parse

    model = parse(text, filename)
    return format_model(model, Comments.attach(text, model), line_length)

"""IR → canonical `.dann` text (what `specc fmt` writes). Printing is idempotent, and comments in the
original text are carried over to the statement or layer they belong to.

>>> from spec_lang.syntax.parser import parse
>>> print(format_model(parse("model m(a=1)  stack s{dense a tanh;dense 2 softmax}")), end="")
model m(a = 1)
<BLANKLINE>
stack s { dense a tanh; dense 2 softmax }
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spec_lang.syntax import ir

LINE_WIDTH = 100
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def format_expr(expr: ir.Expr) -> str:
    """One expression on one line, with only the parentheses its structure needs."""
    return _expr(expr, 0)


def _expr(expr: ir.Expr, context: int) -> str:
    match expr:
        case ir.Number(value=value):
            text = repr(value)
            return f"({text})" if context >= 3 and text.startswith("-") else text
        case ir.Bool(value=value):
            return "true" if value else "false"
        case ir.Ref(name=name):
            return name
        case ir.ListExpr(items=items):
            return "[" + ", ".join(_expr(i, 0) for i in items) + "]"
        case ir.Call(func=func, args=args, kwargs=kwargs):
            return f"{func}({_arguments(args, kwargs)})"
        case ir.Neg(operand=operand):
            text = "-" + _expr(operand, 3)
            return f"({text})" if context > 3 else text
        case ir.BinOp(op=op, left=left, right=right):
            precedence = _PRECEDENCE[op]
            # Left-associative: the right operand needs parentheses at equal precedence, so that
            # a + (b + c) keeps its shape through a round trip.
            text = f"{_expr(left, precedence)} {op} {_expr(right, precedence + 1)}"
            return f"({text})" if precedence < context else text
    raise TypeError(f"not an expression: {expr!r}")


def _arguments(args: tuple[ir.Expr, ...], kwargs: tuple[ir.Keyword, ...]) -> str:
    return ", ".join([_expr(a, 0) for a in args] + [f"{k.name} = {_expr(k.value, 0)}" for k in kwargs])


def _split_sum(expr: ir.Expr) -> list[tuple[str, ir.Expr]]:
    """The terms of a top-level sum, for breaking long loss lines at `+` and `-`."""
    if isinstance(expr, ir.BinOp) and expr.op in "+-":
        return _split_sum(expr.left) + [(expr.op, expr.right)]
    return [("", expr)]


@dataclass
class Comments:
    """Comments of the source text, attached to statements and layers by the line they start on."""

    leading: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    trailing: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    end: list[str] = field(default_factory=list)

    @classmethod
    def attach(cls, text: str, model: ir.Model) -> Comments:
        anchors = sorted(_anchors(model), key=lambda s: (s.line, s.column))
        comments = cls()
        for number, line in enumerate(text.splitlines(), 1):
            if "#" not in line:
                continue
            comment = line[line.index("#") :].rstrip()
            ending_here = [
                a for a in anchors if a.end_line == number and a.line <= number and a.end_column <= line.index("#") + 1
            ]
            if ending_here:
                outer = min(ending_here, key=lambda s: (s.line, s.column))
                comments.trailing.setdefault(_key(outer), []).append(comment)
                continue
            after = [a for a in anchors if a.line > number]
            target = comments.leading.setdefault(_key(after[0]), []) if after else comments.end
            target.append(comment)
        return comments

    def lines_before(self, span: ir.Span | None, indent: str) -> list[str]:
        return [indent + c for c in self.leading.pop(_key(span), [])] if span else []

    def after(self, span: ir.Span | None) -> str:
        found = self.trailing.pop(_key(span), []) if span else []
        return "".join("  " + c for c in found)

    def touches(self, nodes: tuple) -> bool:
        keys = {_key(n.span) for n in nodes if n.span}
        return bool(keys & (set(self.leading) | set(self.trailing)))


def _key(span: ir.Span) -> tuple[int, int]:
    return span.line, span.column


def _anchors(model: ir.Model) -> list[ir.Span]:
    spans: list[ir.Span | None] = [model.span]
    spans += [
        n.span
        for group in (model.params, model.includes, model.inputs, model.lets, model.heads, model.losses)
        for n in group
    ]
    spans += [model.optimize.span if model.optimize else None, model.init.span if model.init else None]

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


def format_model(model: ir.Model, comments: Comments | None = None) -> str:
    """The canonical text of a model: header, includes, settings, inputs, templates, stacks, values, heads, losses,
    optimiser."""
    c = comments or Comments()
    blocks: list[list[str]] = []
    header = [*c.lines_before(model.span, ""), f"model {model.name}({_params(model.params)}){c.after(model.span)}"]
    blocks.append(header)
    blocks.append(
        [line for i in model.includes for line in c.lines_before(i.span, "") + [f'include "{i.path}"{c.after(i.span)}']]
    )
    settings: list[str] = []
    if model.init is not None and (model.init.weights is not None or model.init.biases is not None):
        roles = [
            f"{role} = {format_expr(value)}"
            for role in ("weights", "biases")
            if (value := getattr(model.init, role)) is not None
        ]
        settings += c.lines_before(model.init.span, "") + ["init " + ", ".join(roles) + c.after(model.init.span)]
    if model.seed is not None:
        settings.append(f"seed {format_expr(model.seed)}")
    if model.precision is not None:
        settings.append(f"precision {model.precision}")
    blocks.append(settings)
    blocks.append([line for i in model.inputs for line in _input(i, c)])
    blocks += _together([_template(t, c) for t in model.templates])
    blocks += _together([_stack(s, c) for s in model.stacks])
    for keyword, group in (("let", model.lets), ("head", model.heads), ("loss", model.losses)):
        blocks.append([line for d in group for line in _definition(keyword, d, c)])
    if model.optimize is not None:
        opt = model.optimize
        text = f"optimize {format_expr(opt.optimizer)}"
        if opt.objective is not None:
            text += f" minimize {format_expr(opt.objective)}"
        blocks.append(c.lines_before(opt.span, "") + [text + c.after(opt.span)])
    blocks.append(list(c.end))
    return "\n\n".join("\n".join(b) for b in blocks if b) + "\n"


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


def _params(params: tuple[ir.Param, ...]) -> str:
    return ", ".join(f"{p.name} = {format_expr(p.default)}" for p in params)


def _template_params(params: tuple[ir.TemplateParam, ...]) -> str:
    return ", ".join(p.name if p.default is None else f"{p.name} = {format_expr(p.default)}" for p in params)


def _input(node: ir.Input, c: Comments) -> list[str]:
    text = f"input {node.name} : {node.dtype}[{', '.join(format_expr(d) for d in node.shape)}]"
    if node.bound is not None:
        text += f" < {_expr(node.bound, 4)}"
    return c.lines_before(node.span, "") + [text + c.after(node.span)]


def _definition(keyword: str, node: ir.Let | ir.Head | ir.Loss, c: Comments) -> list[str]:
    lead = f"{keyword} {node.name} = "
    text = lead + format_expr(node.value)
    terms = _split_sum(node.value)
    if len(text) > LINE_WIDTH and len(terms) > 1:
        pad = " " * (len(lead) - 2)
        lines = [lead + format_expr(terms[0][1])]
        lines += [f"{pad}{op} {_expr(term, 2)}" for op, term in terms[1:]]
        lines[-1] += c.after(node.span)
        return c.lines_before(node.span, "") + lines
    return c.lines_before(node.span, "") + [text + c.after(node.span)]


def _layer_line(layer: ir.Layer) -> str:
    match layer:
        case ir.Dense(units=units, activation=activation, options=options):
            return f"dense {_expr(units, 4)} {activation}" + (f" ({_arguments((), options)})" if options else "")
        case ir.LayerCall(kind=kind, args=args, kwargs=kwargs):
            return f"{kind}({_arguments(args, kwargs)})"
    raise TypeError(f"not a one-line layer: {layer!r}")


def _stack(stack: ir.Stack, c: Comments) -> list[str]:
    name = f"{stack.name}({_arguments((), stack.options)})" if stack.options else stack.name
    if stack.template is not None:
        return c.lines_before(stack.span, "") + [f"stack {name} = {format_expr(stack.template)}{c.after(stack.span)}"]
    return _block(f"stack {name}", stack.layers, stack.span, c)


def _template(template: ir.Template, c: Comments) -> list[str]:
    return _block(f"template {template.name}({_template_params(template.params)})", template.layers, template.span, c)


def _block(lead: str, layers: tuple[ir.Layer, ...], span: ir.Span | None, c: Comments) -> list[str]:
    """A stack's or template's layers in braces after `lead`: on one line when they fit and hold no loop or comment."""
    before = c.lines_before(span, "")
    if all(not isinstance(layer, ir.ForLayers) for layer in layers) and not c.touches(layers):
        one_line = f"{lead} {{ {'; '.join(_layer_line(layer) for layer in layers)} }}"
        if len(one_line) <= LINE_WIDTH:
            return before + [one_line + c.after(span)]
    return before + [f"{lead} {{"] + _layers(layers, "  ", c) + ["}" + c.after(span)]


def _layers(layers: tuple[ir.Layer, ...], indent: str, c: Comments) -> list[str]:
    lines: list[str] = []
    for layer in layers:
        lines += c.lines_before(layer.span, indent)
        if isinstance(layer, ir.ForLayers):
            lines.append(f"{indent}for {layer.var} in {_expr(layer.iterable, 4)} {{")
            lines += _layers(layer.body, indent + "  ", c)
            lines.append(f"{indent}}}{c.after(layer.span)}")
        else:
            lines.append(indent + _layer_line(layer) + c.after(layer.span))
    return lines


def format_source(text: str, filename: str = "<string>") -> str:
    """Parse `.dann` text and print it canonically, keeping its comments."""
    from spec_lang.syntax.parser import parse

    model = parse(text, filename)
    return format_model(model, Comments.attach(text, model))

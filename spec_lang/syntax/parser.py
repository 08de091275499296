"""`.dann` text → IR: a Transformer over the Lark parse tree that builds IR nodes with spans (syntax errors become
located diagnostics with hints in `syntax_errors`).

>>> model = parse("model m(width = 3)\\ninput x : float[batch, 2]\\nstack s { dense width tanh }\\n")
>>> model.stacks[0].layers[0]
Dense(units=Ref(name='width'), activation='tanh', options=())
"""

from __future__ import annotations

import math
import re
import sys

from lark import Token, v_args
from lark.exceptions import UnexpectedInput, VisitError
from lark.visitors import Transformer_NonRecursive

from spec_lang.diagnostics import Diagnostic, Source, Span, SpecError, did_you_mean, normalise_newlines
from spec_lang.syntax import ir
from spec_lang.syntax.grammar import lark_parser, token_span
from spec_lang.syntax.syntax_errors import syntax_diagnostic


def _name(token: Token) -> str:
    return str(token)


def _opt(items: list) -> tuple:
    return tuple(i for i in items if i is not None)


@v_args(meta=True)
class _ToIR(Transformer_NonRecursive):
    """Builds IR nodes bottom-up, without recursion (so deep nesting is reported, not a crash); each node carries
    the span of its text."""

    def start(self, meta, children):
        header, *statements = children
        name, params, span = header
        fields: dict[str, list] = {
            "inputs": [],
            "stacks": [],
            "lets": [],
            "heads": [],
            "losses": [],
            "includes": [],
            "templates": [],
            "optimizers": [],
            "stages": [],
        }
        single: dict[str, object] = {}
        first: dict[str, Span | None] = {}
        for kind, node, where in statements:
            if kind in fields:
                fields[kind].append(node)
            elif kind in single:
                line = f"the first is at line {first[kind].line}" if first[kind] else "keep one"
                raise SpecError(
                    [
                        Diagnostic(
                            "error", "E105", f"`{kind}` is given twice", where, f"keep one `{kind}` statement; {line}"
                        )
                    ]
                )
            else:
                single[kind], first[kind] = node, where
        return ir.Model(name, params, **{k: tuple(v) for k, v in fields.items()}, **single, span=span)

    def header(self, meta, children):
        name, *params = children
        return _name(name), _opt(params), token_span(meta)

    def param(self, meta, children):
        name, default = children
        return ir.Param(_name(name), default, span=token_span(name))

    def input(self, meta, children):
        name, dtype, *rest = children
        *shape, bound = rest
        return (
            "inputs",
            ir.Input(_name(name), _name(dtype), _opt(shape), bound, span=token_span(meta)),
            token_span(meta),
        )

    def include(self, meta, children):
        return "includes", ir.Include(str(children[0])[1:-1], span=token_span(meta)), token_span(meta)

    def template(self, meta, children):
        name, *params, layers = children
        return "templates", ir.Template(_name(name), _opt(params), layers, span=token_span(meta)), token_span(meta)

    def template_param(self, meta, children):
        name, default = children
        return ir.TemplateParam(_name(name), default, span=token_span(name))

    def stack(self, meta, children):
        name, options, body = children  # body: the layers, or the call of a template
        if options and options[0]:
            raise SpecError(
                [
                    Diagnostic(
                        "error",
                        "E107",
                        "stack options are keyword arguments",
                        options[0][0].span,
                        "write e.g. `stack features(lr_mult = 0.1) { … }`",
                    )
                ]
            )
        kwargs = options[1] if options else ()
        stack = (
            ir.Stack(_name(name), (), kwargs, body, span=token_span(meta))
            if isinstance(body, ir.Call)
            else ir.Stack(_name(name), body, kwargs, span=token_span(meta))
        )
        return "stacks", stack, token_span(meta)

    def layers(self, meta, children):
        return tuple(children)

    def dense(self, meta, children):
        units, activation, options = children
        if options and options[0]:
            raise SpecError(
                [
                    Diagnostic(
                        "error",
                        "E107",
                        "layer options of `dense` are keyword arguments",
                        options[0][0].span,
                        "write e.g. `dense 64 relu (weights = he_normal)`",
                    )
                ]
            )
        return ir.Dense(
            units,
            _name(activation),
            options[1] if options else (),
            span=token_span(meta),
            activation_span=token_span(activation),
        )

    def layer_call(self, meta, children):
        name, arguments = children
        args, kwargs = arguments or ((), ())
        return ir.LayerCall(_name(name), args, kwargs, span=token_span(meta))

    def for_layers(self, meta, children):
        var, iterable, body = children
        return ir.ForLayers(_name(var), iterable, body, span=token_span(meta))

    def let(self, meta, children):
        return "lets", ir.Let(_name(children[0]), children[1], span=token_span(meta)), token_span(meta)

    def head(self, meta, children):
        return "heads", ir.Head(_name(children[0]), children[1], span=token_span(meta)), token_span(meta)

    def loss(self, meta, children):
        adversarial, name, value = children
        node = ir.Loss(_name(name), value, adversarial is not None, span=token_span(meta))
        return "losses", node, token_span(meta)

    def optimize(self, meta, children):
        name, optimizer, updates, repeat, objective = children
        node = ir.Optimize(
            optimizer, objective, None if name is None else _name(name), updates or (), repeat, span=token_span(meta)
        )
        return "optimizers", node, token_span(meta)

    def stage(self, meta, children):
        name, arguments, runs = children
        args, options = arguments or ((), ())
        if args:
            raise SpecError(
                [
                    Diagnostic(
                        "error",
                        "E107",
                        "a stage's options are named",
                        args[0].span,
                        "write e.g. `stage pretraining(epochs = 10) runs source_step`",
                    )
                ]
            )
        return "stages", ir.Stage(_name(name), runs, options, span=token_span(meta)), token_span(meta)

    def name_list(self, meta, children):
        return tuple(ir.Ref(_name(token), span=token_span(token)) for token in children)

    def init(self, meta, children):
        roles: dict[str, ir.Expr] = {}
        for name, value in children:
            if name.value not in ("weights", "biases"):
                raise SpecError(
                    [
                        Diagnostic(
                            "error",
                            "E106",
                            f"unknown initialiser role '{name}'",
                            token_span(name),
                            "the roles are `weights` and `biases`",
                        )
                    ]
                )
            if name.value in roles:
                raise SpecError(
                    [
                        Diagnostic(
                            "error",
                            "E105",
                            f"`{name}` is initialised twice",
                            token_span(name),
                            "give each role one initialiser",
                        )
                    ]
                )
            roles[name.value] = value
        return "init", ir.Init(**roles, span=token_span(meta)), token_span(meta)

    def init_role(self, meta, children):
        return tuple(children)

    def seed(self, meta, children):
        return "seed", children[0], token_span(meta)

    def precision(self, meta, children):
        word = children[0]
        if word.value not in ir.PRECISIONS:
            raise SpecError(
                [
                    Diagnostic(
                        "error",
                        "E106",
                        f"unknown precision '{word}'",
                        token_span(word),
                        did_you_mean(word.value, ir.PRECISIONS) or "use float32 or float64",
                    )
                ]
            )
        return "precision", word.value, token_span(meta)

    # expressions
    def number(self, meta, children):
        return _number(str(children[0]), token_span(meta))

    def number_list(self, meta, children):
        """A list of numbers read as one token: each number gets the span it would get as an item of a list."""
        token = children[0]
        text, line, line_start = str(token), token.line, -token.column  # line_start: where column 1 would be
        items = []
        last = 0
        for match in _SIGNED_NUMBER.finditer(text):
            (start, end), (minus, digits) = match.span(), match.groups()
            if (newlines := text.count("\n", last, start)) != 0:
                line, line_start = line + newlines, text.rfind("\n", last, start)
            last, column, end_column = start, start - line_start, end - line_start
            if minus:
                number = _number(digits, Span(line, column + 1, line, end_column))
                items.append(ir.negate(number, Span(line, column, line, end_column)))
            elif digits.isdigit() and len(digits) < 300:  # most lists: a whole number, short enough to be finite
                items.append(ir.Number(int(digits), span=Span(line, column, line, end_column)))
            else:
                items.append(_number(digits, Span(line, column, line, end_column)))
        return ir.ListExpr(tuple(items), span=token_span(meta))

    def true(self, meta, children):
        return ir.Bool(True, span=token_span(meta))

    def false(self, meta, children):
        return ir.Bool(False, span=token_span(meta))

    def ref(self, meta, children):
        return ir.Ref(_name(children[0]), span=token_span(meta))

    def list(self, meta, children):
        return ir.ListExpr(_opt(children), span=token_span(meta))

    def neg(self, meta, children):
        return ir.negate(children[0], token_span(meta))

    @staticmethod
    def _binop(op: str):  # a factory used at class creation
        def build(self, meta, children):
            return ir.BinOp(op, children[0], children[1], span=token_span(meta))

        return build

    add, sub, mul, div = _binop("+"), _binop("-"), _binop("*"), _binop("/")

    def call(self, meta, children):
        name, arguments = children
        args, kwargs = arguments or ((), ())
        return ir.Call(_name(name), args, kwargs, span=token_span(meta))

    def arguments(self, meta, children):
        args = tuple(c for c in children if c is not None and not isinstance(c, ir.Keyword))
        kwargs = tuple(c for c in children if isinstance(c, ir.Keyword))
        first_keyword = next((i for i, c in enumerate(children) if isinstance(c, ir.Keyword)), len(children))
        late = [c for c in children[first_keyword:] if c is not None and not isinstance(c, ir.Keyword)]
        if late:
            raise SpecError(
                [
                    Diagnostic(
                        "error",
                        "E107",
                        "a positional argument follows a keyword argument",
                        late[0].span,
                        "put positional arguments first",
                    )
                ]
            )
        return args, kwargs

    def keyword(self, meta, children):
        name, value = children
        return ir.Keyword(_name(name), value, span=token_span(name))


# a number of a NUMBER_LIST, with the `-` before it
_SIGNED_NUMBER = re.compile(r"(-?)((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")


def _number(text: str, span: Span | None) -> ir.Number:
    """The number a NUMBER token writes; one too large for a float is an error."""
    if not math.isfinite(float(text)):
        shown = text if len(text) <= 20 else f"{text[:8]}…{text[-8:]} ({len(text)} characters)"
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    "E109",
                    f"the number {shown} is too large",
                    span,
                    f"numbers are at most about {sys.float_info.max:.1e}",
                )
            ]
        )
    value = float(text) if any(c in text for c in ".eE") else int(text.lstrip("0") or "0")
    return ir.Number(value, span=span)


def parse(text: str, filename: str = "<string>") -> ir.Model:
    """Parse `.dann` text into the IR; raises `SpecError` with located diagnostics on bad syntax. A line ends with
    `\\n`, `\\r\\n` or a lone `\\r`."""
    text = normalise_newlines(text)
    source = Source(filename, text)
    try:
        tree = lark_parser().parse(text)
    except UnexpectedInput as error:
        raise SpecError([syntax_diagnostic(error, text)], source) from None
    try:
        model = _ToIR().transform(tree)
    except VisitError as error:  # errors raised inside the Transformer arrive wrapped
        if isinstance(error.orig_exc, SpecError):
            raise SpecError(error.orig_exc.diagnostics, source) from None
        raise
    deep = ir.too_deep(model)
    if deep is not None:
        raise SpecError([deep], source)
    return model

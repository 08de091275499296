"""`.dann` text → IR: the Lark grammar, a Transformer that builds IR nodes with spans, and syntax errors
turned into located diagnostics with hints.

>>> model = parse("model m(width = 3)\\ninput x : float[batch, 2]\\nstack s { dense width tanh }\\n")
>>> model.stacks[0].layers[0]
Dense(units=Ref(name='width'), activation='tanh', options=())
"""

from __future__ import annotations

import math
import sys
from functools import lru_cache

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from spec_lang.syntax import ir
from spec_lang.diagnostics import Diagnostic, Source, Span, SpecError, did_you_mean
from spec_lang.syntax.grammar import grammar_path
from spec_lang.library.layers import LAYERS

# Terminal names as a user would read them.
_TERMINAL_WORDS = {"NAME": "a name", "NUMBER": "a number", "PATH": "a path in double quotes", "$END": "end of file"}

# Named syntax errors: each label gets a message and a hint, and is recognised by examples that fail the
# same way: in the same parser state, on the same kind of token (see `_named_error`).
_NAMED_ERRORS: dict[str, tuple[str, str, list[str]]] = {
    "missing-activation": (
        "a dense layer needs a width and an activation",
        f"write e.g. `dense 8 tanh`; activations: {', '.join(ir.ACTIVATIONS)}",
        ["model m()\nstack s { dense 3 }", "model m()\nstack s { dense 3; dense 4 tanh }",
         "model m()\nstack s { dense 3, dense 4 tanh }", "model m()\nstack s { dense h }",
         "model m()\nstack s { dense h; dense 4 tanh }", "model m()\nstack s { dense 3\nreverse(lambda = 1) }",
         "model m()\nstack s { dense }"],
    ),
    "missing-header": (
        "a model file must start with its header",
        "begin with e.g. `model my_model(lr = 0.01)`; the parentheses may be empty",
        ["input x : float[batch, 2]", "stack s { dense 3 tanh }", "let a = x", "head h = x", "loss l = x",
         "optimize sgd(lr = 1)", "init weights = zeros", "seed 1", "precision float32", "model m\ninput",
         'include "lib.dann"', "template t() { dense 3 tanh }"],
    ),
    "include-path": (
        "an include path is a file name in double quotes",
        'write e.g. `include "lib/blocks.dann"`: `/` between folders, and no `"`, `\\` or `#` in the path',
        ["model m()\ninclude lib", "model m()\ninclude 'lib.dann'", "model m()\ninclude"],
    ),
    "input-type": (
        "an input needs a type and a shape",
        "write e.g. `input x : float[batch, 2]` or `input y : int[batch] < 10`",
        ["model m()\ninput x float[batch, 2]", "model m()\ninput x : float", "model m()\ninput x = float[batch]"],
    ),
    "width-expression": (
        "a layer width that is an expression needs parentheses",
        "write e.g. `dense (hidden / 2) tanh`",
        ["model m()\nstack s { dense h / 2 tanh }", "model m()\nstack s { dense 2 * h tanh }",
         "model m()\nstack s { dense h - 1 tanh }", "model m()\nstack s { dense h + 1 tanh }"],
    ),
}
_BRACKETS = {"{": "}", "[": "]", "(": ")"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", propagate_positions=True,
                maybe_placeholders=True)


def _span(meta_or_token) -> Span | None:
    if getattr(meta_or_token, "empty", False):
        return None
    return Span(meta_or_token.line, meta_or_token.column, meta_or_token.end_line, meta_or_token.end_column)


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
        fields: dict[str, list] = {"inputs": [], "stacks": [], "lets": [], "heads": [], "losses": [], "includes": [],
                                   "templates": []}
        single: dict[str, object] = {}
        first: dict[str, Span | None] = {}
        for kind, node, where in statements:
            if kind in fields:
                fields[kind].append(node)
            elif kind in single:
                line = f"the first is at line {first[kind].line}" if first[kind] else "keep one"
                raise SpecError([Diagnostic("error", "E105", f"`{kind}` is given twice", where,
                                            f"keep one `{kind}` statement; {line}")])
            else:
                single[kind], first[kind] = node, where
        return ir.Model(name, params, **{k: tuple(v) for k, v in fields.items()}, **single, span=span)

    def header(self, meta, children):
        name, *params = children
        return _name(name), _opt(params), _span(meta)

    def param(self, meta, children):
        name, default = children
        return ir.Param(_name(name), default, span=_span(name))

    def input(self, meta, children):
        name, dtype, *rest = children
        *shape, bound = rest
        return "inputs", ir.Input(_name(name), _name(dtype), _opt(shape), bound, span=_span(meta)), _span(meta)

    def include(self, meta, children):
        return "includes", ir.Include(str(children[0])[1:-1], span=_span(meta)), _span(meta)

    def template(self, meta, children):
        name, *params, layers = children
        return "templates", ir.Template(_name(name), _opt(params), layers, span=_span(meta)), _span(meta)

    def template_param(self, meta, children):
        name, default = children
        return ir.TemplateParam(_name(name), default, span=_span(name))

    def stack(self, meta, children):
        name, options, body = children  # body: the layers, or the call of a template
        if options and options[0]:
            raise SpecError([Diagnostic("error", "E107", "stack options are keyword arguments", options[0][0].span,
                                        "write e.g. `stack features(lr_mult = 0.1) { … }`")])
        kwargs = options[1] if options else ()
        stack = (ir.Stack(_name(name), (), kwargs, body, span=_span(meta)) if isinstance(body, ir.Call)
                 else ir.Stack(_name(name), body, kwargs, span=_span(meta)))
        return "stacks", stack, _span(meta)

    def layers(self, meta, children):
        return tuple(children)

    def dense(self, meta, children):
        units, activation, options = children
        if options is not None and _name(activation) in LAYERS:  # `dense 3` then a layer call on the next line
            message, hint, _ = _NAMED_ERRORS["missing-activation"]
            raise SpecError([Diagnostic("error", "E101", f"{message} (found '{activation}')", _span(activation),
                                        hint)])
        if options and options[0]:
            raise SpecError([Diagnostic("error", "E107", "layer options of `dense` are keyword arguments",
                                        options[0][0].span, "write e.g. `dense 64 relu (weights = he_normal)`")])
        return ir.Dense(units, _name(activation), options[1] if options else (), span=_span(meta))

    def layer_call(self, meta, children):
        name, arguments = children
        args, kwargs = arguments or ((), ())
        return ir.LayerCall(_name(name), args, kwargs, span=_span(meta))

    def for_layers(self, meta, children):
        var, iterable, body = children
        return ir.ForLayers(_name(var), iterable, body, span=_span(meta))

    def let(self, meta, children):
        return "lets", ir.Let(_name(children[0]), children[1], span=_span(meta)), _span(meta)

    def head(self, meta, children):
        return "heads", ir.Head(_name(children[0]), children[1], span=_span(meta)), _span(meta)

    def loss(self, meta, children):
        return "losses", ir.Loss(_name(children[0]), children[1], span=_span(meta)), _span(meta)

    def optimize(self, meta, children):
        optimizer, objective = children
        return "optimize", ir.Optimize(optimizer, objective, span=_span(meta)), _span(meta)

    def init(self, meta, children):
        roles: dict[str, ir.Expr] = {}
        for name, value in children:
            if name.value not in ("weights", "biases"):
                raise SpecError([Diagnostic("error", "E106", f"unknown initialiser role '{name}'", _span(name),
                                            "the roles are `weights` and `biases`")])
            if name.value in roles:
                raise SpecError([Diagnostic("error", "E105", f"`{name}` is initialised twice", _span(name),
                                            "give each role one initialiser")])
            roles[name.value] = value
        return "init", ir.Init(**roles, span=_span(meta)), _span(meta)

    def init_role(self, meta, children):
        return tuple(children)

    def seed(self, meta, children):
        return "seed", children[0], _span(meta)

    def precision(self, meta, children):
        word = children[0]
        if word.value not in ir.PRECISIONS:
            raise SpecError([Diagnostic("error", "E106", f"unknown precision '{word}'", _span(word),
                                        did_you_mean(word.value, ir.PRECISIONS) or "use float32 or float64")])
        return "precision", word.value, _span(meta)

    # expressions
    def number(self, meta, children):
        text = str(children[0])
        if not math.isfinite(float(text)):
            shown = text if len(text) <= 20 else f"{text[:8]}…{text[-8:]} ({len(text)} characters)"
            raise SpecError([Diagnostic("error", "E109", f"the number {shown} is too large", _span(meta),
                                        f"numbers are at most about {sys.float_info.max:.1e}")])
        value = float(text) if any(c in text for c in ".eE") else int(text.lstrip("0") or "0")
        return ir.Number(value, span=_span(meta))

    def true(self, meta, children):
        return ir.Bool(True, span=_span(meta))

    def false(self, meta, children):
        return ir.Bool(False, span=_span(meta))

    def ref(self, meta, children):
        return ir.Ref(_name(children[0]), span=_span(meta))

    def list(self, meta, children):
        return ir.ListExpr(_opt(children), span=_span(meta))

    def neg(self, meta, children):
        return ir.negate(children[0], _span(meta))

    def _binop(op):  # noqa: N805 - a factory used at class creation
        def build(self, meta, children):
            return ir.BinOp(op, children[0], children[1], span=_span(meta))
        return build

    add, sub, mul, div = _binop("+"), _binop("-"), _binop("*"), _binop("/")

    def call(self, meta, children):
        name, arguments = children
        args, kwargs = arguments or ((), ())
        return ir.Call(_name(name), args, kwargs, span=_span(meta))

    def arguments(self, meta, children):
        args = tuple(c for c in children if c is not None and not isinstance(c, ir.Keyword))
        kwargs = tuple(c for c in children if isinstance(c, ir.Keyword))
        first_keyword = next((i for i, c in enumerate(children) if isinstance(c, ir.Keyword)), len(children))
        late = [c for c in children[first_keyword:] if c is not None and not isinstance(c, ir.Keyword)]
        if late:
            raise SpecError([Diagnostic("error", "E107", "a positional argument follows a keyword argument",
                                        late[0].span, "put positional arguments first")])
        return args, kwargs

    def keyword(self, meta, children):
        name, value = children
        return ir.Keyword(_name(name), value, span=_span(name))


def parse(text: str, filename: str = "<string>") -> ir.Model:
    """Parse `.dann` text into the IR; raises `SpecError` with located diagnostics on bad syntax."""
    source = Source(filename, text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise SpecError([_syntax_diagnostic(error, text)], source) from None
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


def _expected_words(error: UnexpectedInput) -> list[str]:
    # `accepts` (what the parser can really take next) is sharper than LALR's `expected` lookahead set
    expected = (getattr(error, "accepts", None) or getattr(error, "expected", None)
                or getattr(error, "allowed", None) or set())
    words = []
    for name in sorted(expected):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        else:
            try:
                pattern = _parser().get_terminal(name).pattern
            except KeyError:
                continue
            words.append(f"'{pattern.value}'" if pattern.type == "str" else name.lower())
    return words


Situation = tuple[object, frozenset[str] | None, str | None]


def _situation(error: UnexpectedInput) -> Situation:
    """How a parse failed: the LALR state and, for an unexpected token, what the parser could accept instead and
    the kind of token it got. Unlike Lark's `match_examples`, the depth of the parse stack is left out, so an
    example matches however many statements or layers come before the error."""
    state = getattr(error, "state", None)
    if isinstance(error, UnexpectedToken):
        return getattr(state, "position", state), frozenset(error.accepts or ()), error.token.type
    return getattr(state, "position", state), None, None


@lru_cache(maxsize=1)
def _example_errors() -> dict[Situation, str]:
    """How each named error's examples fail, parsed once; the first label given for a situation keeps it."""
    found: dict[Situation, str] = {}
    for label, (_, _, examples) in _NAMED_ERRORS.items():
        for example in examples:
            try:
                _parser().parse(example)
            except UnexpectedInput as error:
                found.setdefault(_situation(error), label)
    return found


def _named_error(error: UnexpectedInput) -> str | None:
    return _example_errors().get(_situation(error))


@lru_cache(maxsize=1)
def _keywords() -> tuple[str, ...]:
    """The grammar's words, e.g. `dense`, `input`, `minimize`."""
    return tuple(sorted(t.pattern.value for t in _parser().terminals
                        if t.pattern.type == "str" and t.pattern.value.isalpha()))


@lru_cache(maxsize=1)
def _statement_keywords() -> frozenset[str]:
    """The words that begin a statement, read off the grammar: what may follow the header."""
    interactive = _parser().parse_interactive("model m()")
    interactive.exhaust_lexer()
    return frozenset(_parser().get_terminal(name).pattern.value for name in interactive.accepts() if name != "$END")


def _last_token(value: object) -> Token | None:
    """The last token of a parse-stack entry: a token, or the rightmost token of a tree (found without recursion:
    the tree may be deep)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Token):
            return item
        pending.extend(getattr(item, "children", ()))  # the last child is looked at first
    return None


def _unclosed_bracket(error: UnexpectedInput) -> Diagnostic | None:
    """When the file ends, or a new statement begins, while a bracket is still open, the missing closing bracket
    is the error: point at the bracket that is never closed."""
    stack = getattr(getattr(error, "state", None), "value_stack", None)
    if not isinstance(error, UnexpectedToken) or not stack:
        return None
    if error.token.type == "$END":
        note = "the file ends before it is closed"
    else:
        keyword = next((t for t in (_last_token(stack[-1]), error.token)
                        if t is not None and str(t) in _statement_keywords()), None)
        if keyword is None:
            return None
        note = f"`{keyword}` at line {keyword.line} begins a new statement before it is closed"
    depth = 0
    for value in reversed(stack):  # from the top: a closing bracket still on the stack pairs with an opening one
        if isinstance(value, Token) and value.value in _BRACKETS.values():
            depth += 1
        elif isinstance(value, Token) and value.value in _BRACKETS:
            if depth == 0:
                return Diagnostic("error", "E102", f"this '{value}' is never closed", _span(value),
                                  f"close it with '{_BRACKETS[value.value]}'", (note,))
            depth -= 1
    return None


def _misspelt_keyword(error: UnexpectedInput) -> Diagnostic | None:
    """A keyword misspelt where a call may stand, e.g. `dnese 3 tanh` among layers: the parser read the word as
    the name of a call and stopped when no `(` followed it."""
    if not isinstance(error, UnexpectedToken) or error.accepts != {"LPAR"}:
        return None
    name = _last_token(error.state.value_stack[-1])
    hint = did_you_mean(str(name), _keywords())
    return Diagnostic("error", "E100", f"unexpected '{name}'", _span(name), hint) if hint else None


def _syntax_diagnostic(error: UnexpectedInput, text: str) -> Diagnostic:
    special = _unclosed_bracket(error) or _misspelt_keyword(error)
    if special is not None:
        return special
    label = _named_error(error)
    line, column = max(error.line, 1), max(error.column, 1)
    width = 1
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        found = f"'{error.token}'"
        width = max(1, len(str(error.token)))
    elif isinstance(error, UnexpectedCharacters):
        character = text[error.pos_in_stream:error.pos_in_stream + 1]
        shown = character if character.isprintable() else repr(character)[1:-1]  # e.g. \x00, not the character
        found = f"'{shown}'" if character else "end of file"
    else:
        found = "end of file"
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    span = Span(line, column, line, column + width)
    expected = _expected_words(error)
    if label:
        message, hint, _ = _NAMED_ERRORS[label]
        return Diagnostic("error", "E101", f"{message} (found {found})", span, hint)
    hint = None
    if isinstance(error, UnexpectedToken) and error.token.type == "NAME":
        keywords = [w.strip("'") for w in expected if w.startswith("'")]
        hint = did_you_mean(str(error.token), keywords)
    if hint is None and expected:
        hint = "expected " + (", ".join(expected[:8]) + (" …" if len(expected) > 8 else ""))
    return Diagnostic("error", "E100", f"unexpected {found}", span, hint)


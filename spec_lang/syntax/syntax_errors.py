"""Syntax errors as a user reads them: the parser's situation recognised from named examples, unclosed brackets,
misspelt keywords, and what could come next, each a located diagnostic with a hint."""

from __future__ import annotations

from functools import lru_cache
from typing import cast

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from spec_lang.diagnostics import Diagnostic, Span, did_you_mean
from spec_lang.syntax import ir
from spec_lang.syntax.grammar import lark_parser, token_span

# Terminal names as a user would read them.
_TERMINAL_WORDS = {"NAME": "a name", "NUMBER": "a number", "PATH": "a path in double quotes", "$END": "end of file"}

# Named syntax errors: each label gets a message and a hint, and is recognised by examples that fail the
# same way: in the same parser state, on the same kind of token (see `_named_error`).
NAMED_ERRORS: dict[str, tuple[str, str, list[str]]] = {
    "missing-activation": (
        "a dense layer needs a width and an activation",
        f"write e.g. `dense 8 tanh`; activations: {', '.join(ir.ACTIVATIONS)}",
        [
            "model m()\nstack s { dense 3 }",
            "model m()\nstack s { dense 3; dense 4 tanh }",
            "model m()\nstack s { dense 3, dense 4 tanh }",
            "model m()\nstack s { dense h }",
            "model m()\nstack s { dense h; dense 4 tanh }",
            "model m()\nstack s { dense }",
        ],
    ),
    "missing-header": (
        "a model file must start with its header",
        "begin with e.g. `model my_model(lr = 0.01)`; the parentheses may be empty",
        [
            "input x : float[batch, 2]",
            "stack s { dense 3 tanh }",
            "let a = x",
            "head h = x",
            "loss l = x",
            "optimize sgd(lr = 1)",
            "init weights = zeros",
            "seed 1",
            "precision float32",
            "model m\ninput",
            'include "lib.dann"',
            "template t() { dense 3 tanh }",
        ],
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
        [
            "model m()\nstack s { dense h / 2 tanh }",
            "model m()\nstack s { dense 2 * h tanh }",
            "model m()\nstack s { dense h - 1 tanh }",
            "model m()\nstack s { dense h + 1 tanh }",
        ],
    ),
}
_BRACKETS = {"{": "}", "[": "]", "(": ")"}


def _expected_words(error: UnexpectedInput) -> list[str]:
    # `accepts` (what the parser can really take next) is sharper than LALR's `expected` lookahead set
    expected = (
        getattr(error, "accepts", None) or getattr(error, "expected", None) or getattr(error, "allowed", None) or set()
    )
    words = []
    for name in sorted(expected):
        if name == "NUMBER_LIST":  # a list of numbers in one token: where it may come, so may '['
            continue
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        else:
            try:
                pattern = lark_parser().get_terminal(name).pattern
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
        return getattr(state, "position", state), frozenset(error.accepts or ()), _token_type(error.token)
    return getattr(state, "position", state), None, None


def _token_type(token: Token) -> str:
    """A token's type, a list of numbers (read as one token) counting as its opening bracket."""
    return "LSQB" if token.type == "NUMBER_LIST" else token.type


@lru_cache(maxsize=1)
def _example_errors() -> dict[Situation, str]:
    """How each named error's examples fail, parsed once; the first label given for a situation keeps it."""
    found: dict[Situation, str] = {}
    for label, (_, _, examples) in NAMED_ERRORS.items():
        for example in examples:
            try:
                lark_parser().parse(example)
            except UnexpectedInput as error:
                found.setdefault(_situation(error), label)
    return found


def _named_error(error: UnexpectedInput) -> str | None:
    return _example_errors().get(_situation(error))


@lru_cache(maxsize=1)
def keywords() -> tuple[str, ...]:
    """The grammar's words, e.g. `dense`, `input`, `minimize`."""
    return tuple(
        sorted(
            t.pattern.value for t in lark_parser().terminals if t.pattern.type == "str" and t.pattern.value.isalpha()
        )
    )


@lru_cache(maxsize=1)
def _statement_keywords() -> frozenset[str]:
    """The words that begin a statement, read off the grammar: what may follow the header."""
    interactive = lark_parser().parse_interactive("model m()")
    interactive.exhaust_lexer()
    return frozenset(lark_parser().get_terminal(name).pattern.value for name in interactive.accepts() if name != "$END")


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
        keyword = next(
            (t for t in (_last_token(stack[-1]), error.token) if t is not None and str(t) in _statement_keywords()),
            None,
        )
        if keyword is None:
            return None
        note = f"`{keyword}` at line {keyword.line} begins a new statement before it is closed"
    depth = 0
    for value in reversed(stack):  # from the top: a closing bracket still on the stack pairs with an opening one
        if isinstance(value, Token) and value.value in _BRACKETS.values():
            depth += 1
        elif isinstance(value, Token) and value.value in _BRACKETS:
            if depth == 0:
                return Diagnostic(
                    "error",
                    "E102",
                    f"this '{value}' is never closed",
                    token_span(value),
                    f"close it with '{_BRACKETS[value.value]}'",
                    (note,),
                )
            depth -= 1
    return None


def _misspelt_keyword(error: UnexpectedInput) -> Diagnostic | None:
    """A keyword misspelt where a call may stand, e.g. `dnese 3 tanh` among layers: the parser read the word as
    the name of a call and stopped when no `(` followed it."""
    if not isinstance(error, UnexpectedToken) or error.accepts != {"LPAR"}:
        return None
    name = _last_token(error.state.value_stack[-1])
    hint = did_you_mean(str(name), keywords())
    return Diagnostic("error", "E100", f"unexpected '{name}'", token_span(name), hint) if hint else None


def syntax_diagnostic(error: UnexpectedInput, text: str) -> Diagnostic:
    special = _unclosed_bracket(error) or _misspelt_keyword(error)
    if special is not None:
        return special
    label = _named_error(error)
    line, column = max(error.line, 1), max(error.column, 1)
    width = 1
    if isinstance(error, UnexpectedToken) and error.token.type == "NUMBER_LIST":
        found = "'['"  # where a bracket is unexpected, so is the list it opens
    elif isinstance(error, UnexpectedToken) and error.token.type != "$END":
        found = f"'{error.token}'"
        width = max(1, len(str(error.token)))
    elif isinstance(error, UnexpectedCharacters):
        start = cast(int, error.pos_in_stream)  # lark types it None; UnexpectedCharacters sets the lexer's position
        character = text[start : start + 1]
        shown = character if character.isprintable() else repr(character)[1:-1]  # e.g. \x00, not the character
        found = f"'{shown}'" if character else "end of file"
    else:
        found = "end of file"
        lines = text.removesuffix("\n").split("\n")  # the last line; the parser's line ends are all `\n`
        line, column = len(lines), len(lines[-1]) + 1
    span = Span(line, column, line, column + width)
    expected = _expected_words(error)
    hint: str | None
    if label:
        message, hint, _ = NAMED_ERRORS[label]
        return Diagnostic("error", "E101", f"{message} (found {found})", span, hint)
    hint = None
    if isinstance(error, UnexpectedToken) and error.token.type == "NAME":
        keywords = [w.strip("'") for w in expected if w.startswith("'")]
        hint = did_you_mean(str(error.token), keywords)
    if hint is None and expected:
        hint = "expected " + (", ".join(expected[:8]) + (" …" if len(expected) > 8 else ""))
    return Diagnostic("error", "E100", f"unexpected {found}", span, hint)

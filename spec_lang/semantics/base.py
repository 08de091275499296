"""The checker's shared state and the means every concern uses: recording located diagnostics, binding a call's
arguments to a signature, and finding what a name is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypedDict

from spec_lang import program as P
from spec_lang.diagnostics import Diagnostic, Span, did_you_mean
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY, MAX_ERRORS
from spec_lang.library.layers import LayerKind
from spec_lang.library.registry import Signature
from spec_lang.syntax import ir

# What declares a name: a model parameter, an input, a stack, a `let` value, a head, a loss, a named `optimize`
# statement (a phase) or a stage.
Declaration = ir.Param | ir.Input | ir.Stack | ir.Let | ir.Head | ir.Loss | ir.Optimize | ir.Stage

# What to do about an unknown name when there is nothing close to suggest, by the kind of name expected.
HOW_TO_DEFINE = {
    "parameter": "declare it in the model's header, e.g. `model m(width = 8)`",
    "name": "declare it with `input`, `let` or `head`",
    "stack": "declare it with `stack NAME { … }`",
    "loss": "declare it with `loss NAME = …`",
    "phase": "name an optimize statement, e.g. `optimize source_step = sgd(lr = 0.01) minimize label_loss`",
}


class StackOptions(TypedDict, total=False):
    """A stack's checked options, as `P.StackDef` takes them."""

    lr_mult: float
    frozen: bool


class TooManyErrors(Exception):
    """Stops checking altogether once `MAX_ERRORS` errors are recorded."""


class Abort(Exception):
    """Stops checking one declaration after its error was recorded; the checker moves to the next."""


@dataclass(frozen=True)
class Planned:
    """A layer of a declared stack with its options checked; shapes come when the stack is first applied."""

    kind: LayerKind
    options: dict[str, object]
    node: ir.Node
    inits: dict[str, P.Initializer]  # the initialisers the layer's options choose, by role


@dataclass
class CheckerState:
    """What the checker knows so far; each concern (constants, scalars, stacks, values, losses, objective, lints) is
    a class adding its checks on top of the concerns it uses, and `checker.Checker` runs them in phases."""

    model: ir.Model
    max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY  # bytes
    diagnostics: list[Diagnostic] = field(default_factory=list)
    named: dict[str, tuple[str, Declaration]] = field(default_factory=dict)  # each declared name: (kind, node)
    value_nodes: dict[str, ir.Let | ir.Head] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)
    hypers: dict[str, float] = field(default_factory=dict)
    inputs: tuple[P.InputValue, ...] = ()
    stacks: dict[str, P.StackDef] = field(default_factory=dict)
    stack_inputs: dict[str, tuple[tuple[int | None, ...], Span | None]] = field(default_factory=dict)
    stack_plans: dict[str, list[Planned]] = field(default_factory=dict)
    options: dict[str, StackOptions] = field(default_factory=dict)  # each stack's checked options
    stack_inits: dict[str, dict[str, P.Initializer]] = field(default_factory=dict)  # initialisers stacks choose
    model_inits: dict[str, P.Initializer] = field(default_factory=dict)  # the model's `init`, with defaults
    values: dict[str, P.Value] = field(default_factory=dict)
    resolving: list[str] = field(default_factory=list)
    depths: dict[int, int] = field(default_factory=dict)  # by id: the layers on each value's longest path from an input
    used: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # parameters, values and stacks whose error is already reported
    # what the phases found, for the program
    lets: dict[str, P.Value] = field(default_factory=dict)
    heads: dict[str, P.Value] = field(default_factory=dict)
    losses: dict[str, P.Scalar] = field(default_factory=dict)
    phases_found: tuple[P.Phase, ...] | None = None
    stages_found: tuple[P.Stage, ...] | None = None
    seed_found: int | None = None

    def error(
        self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None, notes: tuple[str, ...] = ()
    ) -> NoReturn:
        self.diagnostics.append(Diagnostic("error", code, message, where(node), hint, notes))
        if sum(d.severity == "error" for d in self.diagnostics) >= MAX_ERRORS:
            raise TooManyErrors
        raise Abort

    def warn(self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic("warning", code, message, where(node), hint))

    def attempt[T](self, action: Callable[..., T], *args: Any) -> T | None:
        """`action(*args)`, or None when it reported an error (and aborted its declaration)."""
        try:
            return action(*args)
        except Abort:
            return None

    def definitions(self) -> dict[str, tuple[str, Declaration]]:
        found: dict[str, tuple[str, Declaration]] = {}
        m = self.model
        groups: list[tuple[str, tuple[Declaration, ...]]] = [
            ("parameter", m.params),
            ("input", m.inputs),
            ("stack", m.stacks),
            ("value", m.lets),
            ("head", m.heads),
            ("loss", m.losses),
            ("phase", m.optimizers),
            ("stage", m.stages),
        ]
        for kind, nodes in groups:
            for node in nodes:
                if node.name is None:  # the one unnamed optimize statement of a model has no name to clash
                    continue
                if node.name in found:
                    other_kind, other = found[node.name]
                    line = f" at line {other.span.line}" if other.span else ""
                    self.attempt(
                        self.error,
                        "E202",
                        f"'{node.name}' is defined twice",
                        node,
                        f"rename one of them; the {other_kind} '{node.name}' is defined{line}",
                    )
                else:
                    found[node.name] = (kind, node)
        return found

    def unknown(self, ref: ir.Ref, expected: str, candidates: list[str]) -> NoReturn:
        candidates = list(dict.fromkeys(candidates))
        self.error(
            "E201",
            f"unknown {expected} '{ref.name}'",
            ref,
            did_you_mean(ref.name, candidates)
            or (f"define it, or use one of: {some_of(candidates)}" if candidates else HOW_TO_DEFINE[expected]),
        )

    def not_a_number(self, ref: ir.Ref, env: dict[str, object]) -> NoReturn:
        """A name used where a number is expected that is not a usable parameter (or loop variable)."""
        kind = self.named.get(ref.name, ("",))[0]
        if kind == "parameter":
            if ref.name in self.failed:
                raise Abort  # its default has an error, already reported
            self.error(
                "E205",
                f"parameter '{ref.name}' is used before it is declared",
                ref,
                "a parameter's default may only use the parameters declared before it",
            )
        if kind:
            self.error(
                "E204",
                f"'{ref.name}' is {with_article(kind)}, not a number",
                ref,
                "use a number or a model parameter here",
            )
        self.unknown(ref, "parameter", list(env))

    def arguments(self, call: ir.Call, signature: Signature) -> dict[str, ir.Expr]:
        """Match a call's arguments to a vocabulary entry's signature (see `bind`)."""
        return self.bind(call, call, signature.positional, signature.keywords, signature.required)

    def bind(
        self,
        node: ir.Node,
        call: ir.Call,
        positional: tuple[str, ...],
        keywords: tuple[str, ...],
        required: tuple[str, ...],
    ) -> dict[str, ir.Expr]:
        """Match a call's arguments to parameter names: too many, unknown, duplicate and missing ones are errors."""
        if len(call.args) > len(positional):
            signature = ", ".join([*positional, *(f"{k} = …" for k in keywords)])
            self.error(
                "E207",
                f"{call.func} takes {counted(len(positional), 'positional argument')}, got {len(call.args)}",
                call.args[len(positional)],
                f"write {call.func}({signature})",
            )
        bound: dict[str, ir.Expr] = dict(zip(positional, call.args, strict=False))
        for kw in call.kwargs:
            if kw.name not in positional + keywords:
                self.error(
                    "E207",
                    f"{call.func} has no argument '{kw.name}'",
                    kw,
                    did_you_mean(kw.name, positional + keywords)
                    or f"{call.func} takes: {', '.join(positional + keywords) or 'nothing'}",
                )
            if kw.name in bound:
                self.error("E207", f"argument '{kw.name}' is given twice", kw, "give each argument once")
            bound[kw.name] = kw.value
        missing = [name for name in required if name not in bound]
        if missing:
            self.error(
                "E207",
                f"{call.func} is missing its argument '{missing[0]}'",
                node,
                f"write {call.func}({', '.join(f'{n} = …' if n in keywords else n for n in required)})",
            )
        return bound


def where(node: ir.Node | Span | None) -> Span | None:
    return node if isinstance(node, Span) or node is None else node.span


def leading(node: ir.Node, word: str) -> Span | None:
    """The span of the word a node's text begins with, e.g. a call's function name."""
    if node.span is None:
        return None
    return node.span.head(len(word))


def trailing(node: ir.Node, word: str) -> Span | None:
    """The span of the word a node's text ends with, e.g. a dense layer's activation."""
    if node.span is None:
        return None
    return node.span.tail(len(word))


def some_of(names: list[str], shown: int = 10) -> str:
    """Names for a hint: the first `shown` of them, and how many more there are."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def with_article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    return repr(value)

"""The loss registry's types: what a loss declares (`LossKind`), what its check and lowering may ask
(`LossChecks`, `LossLowering`), the role a term plays for training (`TermRole`), the checks several losses share, and
`label_classes`, the classes each label input must lie in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, Protocol

from spec_lang import program as P
from spec_lang.diagnostics import Span
from spec_lang.library.registry import Registry, Signature
from spec_lang.syntax import ir


class LossChecks(Protocol):
    """What a loss's check may ask of the checker; each method reports a located error and aborts on bad input."""

    settings: dict[str, object]

    def arguments(self, call: ir.Call, signature: Signature) -> dict[str, ir.Expr]: ...
    def value(self, expr: ir.Expr) -> P.Value: ...
    def number(self, expr: ir.Expr, env: dict[str, object]) -> int | float: ...
    def is_number(self, expr: ir.Expr) -> bool: ...
    def stack_names(self, call: ir.Call) -> tuple[str, ...]: ...
    def error(
        self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None, notes: tuple[str, ...] = ()
    ) -> NoReturn: ...


class LossLowering(Protocol):
    """What a loss's lowering may use: the backend, lowered tensors, stable forms from logits, parameters."""

    backend: Any

    def tensor(self, value: P.Value) -> Any: ...
    def of_probabilities(self, op: str, predictions: P.Value, *args: Any) -> Any: ...
    def parameters(self, stacks: tuple[str, ...], biases: bool) -> list[Any]: ...


@dataclass(frozen=True)
class TermRole:
    """What a loss term tells training: "label" — `predictions` are classified against the labels input `target`;
    "domain" — `predictions` classify one batch's domain as the constant `target`."""

    role: Literal["label", "domain"]
    predictions: P.Value
    target: P.Value | float | int


@dataclass(frozen=True)
class LossKind:
    name: str
    summary: str  # one line, for hints and the language reference
    signature: Signature
    check: Callable[[LossChecks, ir.Call], P.LossTerm]  # binds the call's arguments itself
    lower: Callable[[LossLowering, P.LossTerm], Any]
    describe: Callable[[P.LossTerm, Callable[[P.Value], str]], str]
    role: Callable[[P.LossTerm], tuple[TermRole, ...]] = lambda term: ()  # a term may play several (bce_domains)
    # tensor formulas of the loss's own, `f(*tensors, xp)`, that its lowering calls by name (`backend.op(name, …)`)
    formulas: tuple[Callable[..., Any], ...] = ()


LOSSES = Registry[LossKind]("loss function")


def predictions(checks: LossChecks, call: ir.Call, bound: dict[str, ir.Expr]) -> P.Value:
    """The float predictions a loss reads (its first argument)."""
    value = checks.value(bound["predictions"])
    if value.type.dtype != "float":
        checks.error(
            "E401",
            f"{call.func} needs float predictions, got {value.type}",
            bound["predictions"],
            "pass the output of a stack",
        )
    return value


def need_activation(checks: LossChecks, call: ir.Call, value: P.Value, activation: str, where: ir.Node) -> None:
    """Refuse predictions that do not come out of a layer ending in `activation` (softmax or sigmoid)."""
    if value.activation != activation:
        checks.error(
            "E401",
            f"{call.func} expects probabilities from a {activation} layer, got {value.activation or 'no activation'}",
            where,
            f"end the stack with `dense N {activation}`",
        )


def same_shape(checks: LossChecks, call: ir.Call, predicted: P.Value, target: P.Value, where: ir.Expr) -> None:
    a, b = predicted.type.shape, target.type.shape
    if len(a) != len(b) or a[-1] != b[-1]:
        checks.error(
            "E301",
            f"{call.func}: predictions are {predicted.type} but the target is {target.type}",
            where,
            "the target needs the predictions' shape",
        )


def shown(value: object, name: Callable[[P.Value], str]) -> str:
    """An argument in the summary: a value by name, a number as written."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    assert isinstance(value, P.Value)
    return name(value)


def describe(term: P.LossTerm, name: Callable[[P.Value], str]) -> str:
    """`kind(arguments)`: every argument as the summary shows it."""
    return f"{term.kind}({', '.join(shown(v, name) for _, v in term.args)})"


def label_classes(program: P.Program) -> dict[str, int]:
    """The classes each integer input holds labels of: labels of input `y` must lie in [0, classes[y]), the width of
    every prediction a loss compares them with and the input's declared bound `< N`, whichever is smallest. A label
    outside it would read past the predictions: garbage, or a crash in compiled code."""
    classes = {i.name: i.bound for i in program.inputs if i.bound is not None}
    for loss in program.losses.values():
        for term in P.loss_functions(loss):
            for role in LOSSES[term.kind].role(term):
                if role.role == "label" and isinstance(role.target, P.InputValue):
                    width = role.predictions.type.shape[-1]
                    if width is not None:
                        classes[role.target.name] = min(classes.get(role.target.name, width), width)
    return classes

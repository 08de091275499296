"""What a layer kind is: its arguments, how its options are checked, how shapes flow through it, which parameters it
owns and how it is lowered, with the properties the passes read; the registry of kinds, and the checks many share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, cast

from spec_lang import program as P
from spec_lang.diagnostics import Span
from spec_lang.library.registry import Registry
from spec_lang.syntax import ir

Shape = tuple[int | None, ...]


class Checks(Protocol):
    """What a layer kind may ask of the checker; each method reports a located error and aborts on bad input."""

    def size(self, expr: ir.Expr, env: dict[str, object], what: str) -> int: ...
    def number(self, expr: ir.Expr, env: dict[str, object]) -> int | float: ...
    def symbol(self, expr: ir.Expr, choices: tuple[str, ...], what: str) -> str: ...
    def reversal_lambda(self, expr: ir.Expr, env: dict[str, object]) -> P.Scalar: ...
    def error(
        self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None, notes: tuple[str, ...] = ()
    ) -> NoReturn: ...


@dataclass
class Lowering:
    """What a layer's lowering may use: the backend, scalar lowering (for λ and rates), whether the graph is the
    training graph, and a place to put updates of state variables (running statistics, random generators).

    A layer that ends in an activation applies it with `activate`, which keeps the activation's input: the
    walker gives a softmax or sigmoid output's logits to the losses, which use their numerically stable forms."""

    backend: Any
    scalar: Callable[[P.Scalar], Any]
    training: bool
    state_updates: list[tuple[Any, Any]] = field(default_factory=list)
    activated: tuple[Any, Any] | None = None  # (output, input) of the latest `activate`
    generators: int = 0  # random generators made so far for this graph

    def generator(self) -> Any:
        """A new shared random generator for one application of a random layer (dropout); the layer stores the
        generator's next state with `update`, so each step draws new numbers."""
        self.generators += 1
        return self.backend.generator(self.generators - 1)

    def current(self, variable: Any) -> Any:
        """A state variable's value after the update this graph already makes to it (a stack applied twice
        updates its running statistics twice, in order), or the variable itself. (PyTensor variables compare
        by identity, the code backend's by their text.)"""
        return next((new for old, new in self.state_updates if old == variable), variable)

    def update(self, variable: Any, value: Any) -> None:
        """Store `value` in a state variable after the training step, in place of an earlier update of it."""
        self.state_updates[:] = [(old, new) for old, new in self.state_updates if old != variable]
        self.state_updates.append((variable, value))

    def activate(self, activation: str, z: Any) -> Any:
        """The activation op `activation` applied to the pre-activation `z`."""
        output = self.backend.op(activation, z)
        self.activated = (output, z)
        return output

    def logits(self, h: Any) -> Any | None:
        """The pre-activation of `h` when `h` is the output of the latest `activate`, else None."""
        return self.activated[1] if self.activated is not None and self.activated[0] is h else None


@dataclass(frozen=True)
class Inferred:
    out_shape: Shape
    params: tuple[tuple[str, tuple[int, ...], str, bool], ...] = ()  # (suffix, shape, role, trainable)
    activation: str | None = None


@dataclass(frozen=True)
class LayerKind:
    name: str
    summary: str  # one line, for hints and the language reference
    positional: tuple[str, ...]
    keywords: tuple[str, ...]
    required: tuple[str, ...]
    resolve: Callable[[Checks, dict[str, ir.Expr], dict[str, object]], dict[str, object]]
    infer: Callable[[Checks, dict[str, object], Shape, ir.Node], Inferred]
    lower: Callable[[Lowering, Any, dict[str, Any], dict[str, object]], Any]
    initialised: tuple[str, ...] = ()  # parameter roles whose initialiser the layer's options may choose
    # output row i depends on input row i only: in every graph, or in the inference graph only (batch normalisation
    # by running statistics; dropout is the identity there). The batching pass runs such layers over joined inputs.
    row_wise: bool = True
    row_wise_in_inference: bool = True
    reverses_gradient: bool = False  # identity forward, gradient times -λ backward (the reversal analysis reads it)


def features(checks: Checks, in_shape: Shape, node: ir.Node, kind: str) -> int:
    """The feature width of a [batch, features] input, or a located error."""
    if len(in_shape) != 2 or in_shape[1] is None:
        checks.error(
            "E301",
            f"{kind} needs a [batch, features] input, got [{dims(in_shape)}]",
            node,
            "flatten image features first, e.g. `flatten()`",
        )
    return in_shape[1]


def example_sizes(shape: Shape) -> tuple[int, ...]:
    """A shape without its batch dimension: the sizes of one example, never symbolic (only the leading dimension of
    an input may be)."""
    return cast(tuple[int, ...], shape[1:])


def dims(shape: Shape) -> str:
    return ", ".join("batch" if d is None else str(d) for d in shape)


def unchanged(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    """The shapes of a layer whose output has its input's shape and no parameters."""
    return Inferred(in_shape)


def rate(checks: Checks, expr: ir.Expr, env: dict[str, object], what: str, hint: str) -> float:
    """A number in [0, 1), such as a dropout rate or a momentum, or a located error."""
    value = checks.number(expr, env)
    if not 0 <= value < 1:
        checks.error("E601", f"{what} must be at least 0 and below 1, got {value:g}", expr, hint)
    return float(value)


def whole(checks: Checks, expr: ir.Expr, env: dict[str, object], what: str) -> int:
    """A whole number ≥ 0, such as a padding, or a located error."""
    value = checks.number(expr, env)
    if not isinstance(value, int) or value < 0:
        checks.error("E601", f"{what} must be a whole number ≥ 0, got {value:g}", expr, "use e.g. 1, or 0 for none")
    return value


LAYERS = Registry[LayerKind]("layer")

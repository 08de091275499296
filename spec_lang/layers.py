"""The layer kinds a stack may hold. Each kind says which arguments it takes, how its options are checked,
how shapes flow through it and which parameters it owns, and how it is lowered; adding a kind here is all it
takes to add a layer to the language (the grammar, JSON and builder spell every layer but `dense` as a call).

>>> sorted(LAYERS)
['dense', 'reverse']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from . import ir
from . import program as P

Shape = tuple[int | None, ...]


class Checks(Protocol):
    """What a layer kind may ask of the checker; each method reports a located error and aborts on bad input."""

    def size(self, expr: ir.Expr, env: dict[str, object], what: str) -> int: ...
    def number(self, expr: ir.Expr, env: dict[str, object]) -> int | float: ...
    def symbol(self, expr: ir.Expr, choices: tuple[str, ...], what: str) -> str: ...
    def reversal_lambda(self, expr: ir.Expr, env: dict[str, object]) -> P.Scalar: ...
    def error(self, code: str, message: str, node: Any, hint: str | None = None,
              notes: tuple[str, ...] = ()) -> Any: ...


@dataclass
class Lowering:
    """What a layer's lowering may use: the backend, scalar lowering (for λ and rates), whether the graph is the
    training graph, and a place to put updates of state variables (running statistics)."""

    backend: Any
    scalar: Callable[[P.Scalar], Any]
    training: bool
    state_updates: list[tuple[Any, Any]] = field(default_factory=list)


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


def features(checks: Checks, in_shape: Shape, node: ir.Node, kind: str) -> int:
    """The feature width of a [batch, features] input, or a located error."""
    if len(in_shape) != 2 or in_shape[1] is None:
        checks.error("E301", f"{kind} needs a [batch, features] input, got [{_dims(in_shape)}]", node,
                     "flatten image features first, e.g. `flatten()`")
    return in_shape[1]


def _dims(shape: Shape) -> str:
    return ", ".join("batch" if d is None else str(d) for d in shape)


def _dense_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {"units": checks.size(args["units"], env, "a layer width"),
            "activation": checks.symbol(args["activation"], ir.ACTIVATIONS, "activation")}


def _dense_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    width, units = features(checks, in_shape, node, "dense"), options["units"]
    return Inferred((in_shape[0], units), (("W", (width, units), "weights", True), ("b", (units,), "biases", True)),
                    options["activation"])


def _dense_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    z = ctx.backend.op("affine", h, params["weights"], params["biases"])
    return ctx.backend.op(options["activation"], z)


def _reverse_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {"lambda": checks.reversal_lambda(args["lambda"], env)}


def _reverse_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    return ctx.backend.op("reverse_gradient", h, ctx.scalar(options["lambda"]))


LAYERS: dict[str, LayerKind] = {kind.name: kind for kind in (
    LayerKind("dense", "`dense N ACTIVATION`: act(x @ W + b)", ("units", "activation"), (), ("units", "activation"),
              _dense_resolve, _dense_infer, _dense_lower),
    LayerKind("reverse", "`reverse(lambda = λ)`: gradient reversal, identity forward", (), ("lambda",), ("lambda",),
              _reverse_resolve, lambda checks, options, in_shape, node: Inferred(in_shape), _reverse_lower),
)}

"""Queries over a checked program's graph, shared by the checker, the reports, the lowering and training: what a
value is computed from, which losses read it, where gradients are reversed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from spec_lang.diagnostics import Span
from spec_lang.program.types import (
    Applied,
    Arith,
    Const,
    InputValue,
    Interpolated,
    LossTerm,
    Outer,
    Program,
    Reversed,
    Scalar,
    Schedule,
    Value,
)


def schedules(scalar: Scalar) -> list[Schedule]:
    """The schedules inside a scalar expression, left to right."""
    if isinstance(scalar, Arith):
        return schedules(scalar.left) + (schedules(scalar.right) if scalar.right else [])
    return [scalar] if isinstance(scalar, Schedule) else []


def parents(value: Value, gradient: bool = False) -> tuple[Value, ...]:
    """The values a value is computed from directly: none for an input, two for `outer` and `interpolate`, else
    one. With `gradient`, only those its gradient flows into (not `outer`'s predictions)."""
    match value:
        case InputValue():
            return ()
        case Outer(features=features, predictions=predictions):
            return (features,) if gradient else (features, predictions)
        case Interpolated(first=first, second=second):
            return (first, second)
    return (value.arg,)


def ancestors(value: Value, gradient: bool = False) -> list[Value]:
    """The value and every value it is computed from, each once, nearest first, down to its inputs. With
    `gradient`, only the values that the value's gradient reaches."""
    found: dict[int, Value] = {}
    pending = [value]
    while pending:
        node = pending.pop(0)
        if id(node) not in found:
            found[id(node)] = node
            pending += parents(node, gradient)
    return list(found.values())


def inputs_of(value: Value) -> list[InputValue]:
    """The inputs a value is computed from."""
    return [a for a in ancestors(value) if isinstance(a, InputValue)]


def loss_functions(scalar: Scalar) -> list[LossTerm]:
    """The loss functions inside a scalar expression, left to right."""
    if isinstance(scalar, Arith):
        return loss_functions(scalar.left) + (loss_functions(scalar.right) if scalar.right else [])
    return [scalar] if isinstance(scalar, LossTerm) else []


def tensors(scalar: Scalar) -> list[Value]:
    """The tensor values a scalar expression reads."""
    return [value for term in loss_functions(scalar) for value in term.values]


@dataclass(frozen=True)
class ReversalPoint:
    """Where gradients are reversed, with which λ, for which losses, and which stacks feel it.

    `value` is the `Reversed` value, or the `Applied` stack whose layer `layer` is a `reverse` layer.
    """

    value: Reversed | Applied
    layer: int | None
    lam: Scalar
    losses: tuple[str, ...]
    stacks: tuple[str, ...]

    @property
    def span(self) -> Span | None:
        return self.value.span


def reversal_points(program: Program) -> list[ReversalPoint]:
    """Every reversal point: `reverse(...)` expressions and `reverse` layers inside applied stacks."""
    reads = {
        name: {id(a) for v in tensors(loss) for a in ancestors(v, gradient=True)}
        for name, loss in program.losses.items()
    }
    everything = [*program.values.values(), *program.heads.values()]
    everything += [v for loss in program.losses.values() for v in tensors(loss)]
    points: dict[tuple[int, int], ReversalPoint] = {}
    seen: set[int] = set()
    for value in everything:
        for node in ancestors(value):
            if id(node) in seen or not isinstance(node, Reversed | Applied):
                continue
            seen.add(id(node))
            if isinstance(node, Applied) and not any(l.reverses_gradient for l in program.stack(node.stack).layers):
                continue  # (what follows costs a walk of the graph: only for reversal points)
            upstream = tuple(
                dict.fromkeys(a.stack for a in ancestors(node, gradient=True)[1:] if isinstance(a, Applied))
            )
            losses = tuple(n for n, ids in reads.items() if id(node) in ids)
            if isinstance(node, Reversed):
                points[(id(node), -1)] = ReversalPoint(node, None, node.lam, losses, upstream)
            elif isinstance(node, Applied):
                for index, layer in enumerate(program.stack(node.stack).layers):
                    if layer.reverses_gradient:
                        inside = (f"{node.stack} (layers before {index})",) if index else ()
                        points[(id(node), index)] = ReversalPoint(
                            node, index, cast(Scalar, layer.option("lambda")), losses, inside + upstream
                        )
    return _one_per_idle_layer(list(points.values()))


def _one_per_idle_layer(points: list[ReversalPoint]) -> list[ReversalPoint]:
    """A stack's `reverse` layer applied where no loss reads it (a head's `domain(fs)` for predictions) is that
    layer once more, not a reversal point of its own: it is kept only when no application of the layer reaches a
    loss, and then once."""
    layers = {(p.value.stack, p.layer) for p in points if isinstance(p.value, Applied) and p.losses}
    kept = []
    for point in points:
        if isinstance(point.value, Applied) and not point.losses:
            key = (point.value.stack, point.layer)
            if key in layers:
                continue
            layers.add(key)
        kept.append(point)
    return kept


PLAIN, REVERSED, HELD = "plain", "reversed", "held"  # how a gradient reaches a parameter (see `gradient_reach`)


@dataclass(frozen=True)
class Reach:
    """A stack whose parameters a value's gradient reaches, and how: `PLAIN` (as it is), `REVERSED` (times -λ, past
    an odd number of reversals) or `HELD` (past a reversal whose λ is the constant 0: the gradient is zero there, as
    in a source-only twin). `reversal` is the last reversal point passed (a `Reversed` value, or the `Applied` stack
    with a `reverse` layer), None when none was."""

    stack: str
    way: str
    reversal: Reversed | Applied | None


def _through(way: str, lam: object) -> str:
    """How a gradient goes on past a reversal with this λ."""
    if way == HELD or (isinstance(lam, Const) and lam.value == 0):
        return HELD
    return REVERSED if way == PLAIN else PLAIN


def gradient_reach(program: Program, value: Value) -> set[Reach]:
    """Every stack with trainable parameters (frozen stacks aside) that the gradient of `value` reaches, with how
    it reaches it along each path: reversal points on the way, `reverse` layers inside stacks for the layers before
    them, no gradient into `outer`'s predictions."""
    found: set[Reach] = set()
    seen: set[tuple[int, str, int]] = set()
    pending: list[tuple[Value, str, Reversed | Applied | None]] = [(value, PLAIN, None)]
    while pending:
        node, way, last = pending.pop()
        if (id(node), way, id(last)) in seen:
            continue
        seen.add((id(node), way, id(last)))
        if isinstance(node, Reversed):
            way, last = _through(way, node.lam), node
        elif isinstance(node, Applied):
            stack = program.stack(node.stack)
            for layer in reversed(stack.layers):
                if layer.reverses_gradient:
                    way, last = _through(way, layer.option("lambda")), node
                elif not stack.frozen and any(p.trainable for p in layer.params):
                    found.add(Reach(node.stack, way, last))
        pending += [(parent, way, last) for parent in parents(node, gradient=True)]
    return found


def expression(value: Value, names: Mapping[int, str] | None = None, lam: Callable[[Scalar], str] | None = None) -> str:
    """The expression that computes a value, as the language writes it: `label(features(xs))`. Its parts appear by
    name where `names` (by `id`) gives them one; a reversal shows its λ when `lam` writes it. The one way the summary,
    the listing and training's messages name values.

    >>> from spec_lang.program.types import Const, TensorType
    >>> x = InputValue("x", TensorType("float", (None, 2)))
    >>> h = Applied("net", x, TensorType("float", (None, 3)), None)
    >>> expression(Applied("head", Reversed(h, Const(0.5), h.type, None), h.type, None), {id(h): "h"})
    'head(reverse(h))'
    """

    def part(value: Value) -> str:
        named = (names or {}).get(id(value))
        return named or (value.name if isinstance(value, InputValue) else expression(value, names, lam))

    match value:
        case InputValue(name=name):
            return name
        case Reversed(arg=arg):
            return f"reverse({part(arg)}{f', λ = {lam(value.lam)}' if lam else ''})"
        case Outer(features=features, predictions=predictions, dim=dim):
            return f"outer({part(features)}, {part(predictions)}{'' if dim is None else f', dim = {dim}'})"
        case Interpolated(first=first, second=second):
            return f"interpolate({part(first)}, {part(second)})"
        case Applied(stack=stack, arg=arg):
            return f"{stack}({part(arg)})"
    raise TypeError(value)

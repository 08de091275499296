"""The checked program: a model with its parameters applied, loops unrolled, shapes and dtypes known.

`check.resolve` builds it from the IR; lowering and code generation walk it. Tensor values form a DAG
(identity matters: applying one stack twice gives two values that share weights); scalar expressions
(losses, their weights, λ, the learning rate) are trees over constants, hyperparameters and loss functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

from .diagnostics import Span

# Scalars -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    value: float


@dataclass(frozen=True)
class Hyper:
    """A numeric model parameter used at run time (λ, learning rate, loss weights): a shared variable,
    so it can change between steps without recompiling."""

    name: str


@dataclass(frozen=True)
class Arith:
    op: str  # + - * / or "neg" (then right is None)
    left: Scalar
    right: Scalar | None = None


@dataclass(frozen=True, eq=False)
class CrossEntropy:
    """Mean categorical cross-entropy of softmax probabilities against integer labels."""

    predictions: Value
    labels: Value


@dataclass(frozen=True, eq=False)
class BinaryCrossEntropy:
    """Mean binary cross-entropy of sigmoid probabilities against a constant 0/1 or a tensor."""

    predictions: Value
    target: Value | float


@dataclass(frozen=True, eq=False)
class MeanSquaredError:
    predictions: Value
    target: Value


@dataclass(frozen=True)
class Penalty:
    """`l2`/`l1`: the sum of squares / absolute values of the parameters of the named stacks."""

    norm: str  # "l1" | "l2"
    stacks: tuple[str, ...]
    biases: bool


@dataclass(frozen=True)
class LossRef:
    name: str


LossFunction = Union[CrossEntropy, BinaryCrossEntropy, MeanSquaredError, Penalty]
Scalar = Union[Const, Hyper, Arith, CrossEntropy, BinaryCrossEntropy, MeanSquaredError, Penalty, LossRef]

# Tensors -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorType:
    dtype: str  # "float" | "int"
    shape: tuple[int | None, ...]  # None: a symbolic size such as the batch

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join('batch' if d is None else str(d) for d in self.shape)}]"


@dataclass(frozen=True, eq=False)
class InputValue:
    name: str
    type: TensorType
    bound: int | None = None
    activation: str | None = None


@dataclass(frozen=True, eq=False)
class Applied:
    """A stack applied to a value."""

    stack: str
    arg: Value
    type: TensorType
    activation: str | None
    span: Span | None = None


@dataclass(frozen=True, eq=False)
class Reversed:
    """Gradient reversal: identity forward, gradient times -λ backward."""

    arg: Value
    lam: Scalar
    type: TensorType
    activation: str | None
    span: Span | None = None


Value = Union[InputValue, Applied, Reversed]

# Stacks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a layer: its name (e.g. "features.0.W"), shape and role. The role picks the initialiser
    (`weights`, `biases` follow the spec's `init`; other roles have fixed starts, e.g. a scale starts at 1);
    a parameter that is not trainable is state the update function maintains itself (running statistics)."""

    name: str
    shape: tuple[int, ...]
    role: str
    trainable: bool = True

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class LayerInstance:
    """A layer of a stack with its options resolved and its shapes known (see `layers.py` for the kinds).

    `activation` names what the output holds (e.g. "softmax" probabilities) for the loss checks; None
    means the layer passes on whatever its input held (reverse, dropout)."""

    kind: str
    options: tuple[tuple[str, object], ...]
    params: tuple[ParamSpec, ...]
    in_shape: tuple[int | None, ...]
    out_shape: tuple[int | None, ...]
    activation: str | None = None

    def option(self, name: str) -> object:
        return dict(self.options)[name]

    def param(self, role: str) -> ParamSpec:
        return next(p for p in self.params if p.role == role)


@dataclass(frozen=True)
class StackDef:
    name: str
    layers: tuple[LayerInstance, ...]
    span: Span | None = None

    @property
    def parameter_count(self) -> int:
        """Trainable parameters, counted one per number."""
        return sum(p.size for p in self.params if p.trainable)

    @property
    def params(self) -> list[ParamSpec]:
        return [p for layer in self.layers for p in layer.params]


@dataclass(frozen=True)
class Initializer:
    scheme: str  # normal | uniform | glorot_uniform | zeros | constant
    args: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Program:
    name: str
    precision: str
    seed: int
    weights_init: Initializer
    biases_init: Initializer
    hypers: dict[str, float]
    inputs: tuple[InputValue, ...]
    stacks: tuple[StackDef, ...]
    values: dict[str, Value]
    heads: dict[str, Value]
    losses: dict[str, Scalar]
    objective: Scalar
    optimizer: str
    learning_rate: Scalar
    settings: dict[str, object] = field(default_factory=dict)  # every model parameter's value

    def stack(self, name: str) -> StackDef:
        return next(s for s in self.stacks if s.name == name)

    def params(self) -> list[ParamSpec]:
        """Every parameter and state variable in a fixed order: stacks in declaration order, layer by layer."""
        return [p for s in self.stacks for p in s.params]

    def parameter_names(self) -> list[str]:
        """The trainable parameters' names, in the order of `params`."""
        return [p.name for p in self.params() if p.trainable]


# Graph queries shared by the checker, the reports and the lowering ------------------------------


def ancestors(value: Value) -> list[Value]:
    """The value and every value it is computed from, nearest first, down to its input."""
    chain = [value]
    while not isinstance(chain[-1], InputValue):
        chain.append(chain[-1].arg)
    return chain


def loss_functions(scalar: Scalar) -> list[LossFunction]:
    """The loss functions inside a scalar expression, left to right."""
    if isinstance(scalar, Arith):
        return loss_functions(scalar.left) + (loss_functions(scalar.right) if scalar.right else [])
    if isinstance(scalar, (CrossEntropy, BinaryCrossEntropy, MeanSquaredError, Penalty)):
        return [scalar]
    return []


def tensors(scalar: Scalar) -> list[Value]:
    """The tensor values a scalar expression reads."""
    found: list[Value] = []
    for term in loss_functions(scalar):
        for attr in ("predictions", "labels", "target"):
            value = getattr(term, attr, None)
            if isinstance(value, (InputValue, Applied, Reversed)):
                found.append(value)
    return found


@dataclass(frozen=True)
class ReversalPoint:
    """Where gradients are reversed, with which λ, for which losses, and which stacks feel it.

    `value` is the `Reversed` value, or the `Applied` stack whose layer `layer` is a `reverse` layer.
    """

    value: Value
    layer: int | None
    lam: Scalar
    losses: tuple[str, ...]
    stacks: tuple[str, ...]

    @property
    def span(self) -> Span | None:
        return self.value.span


def reversal_points(program: Program) -> list[ReversalPoint]:
    """Every reversal point: `reverse(...)` expressions and `reverse` layers inside applied stacks."""
    reads = {name: {id(a) for v in tensors(loss) for a in ancestors(v)} for name, loss in program.losses.items()}
    everything = [*program.values.values(), *program.heads.values()]
    everything += [v for loss in program.losses.values() for v in tensors(loss)]
    points: dict[tuple[int, int], ReversalPoint] = {}
    for value in everything:
        for node in ancestors(value):
            upstream = tuple(dict.fromkeys(a.stack for a in ancestors(node)[1:] if isinstance(a, Applied)))
            losses = tuple(n for n, ids in reads.items() if id(node) in ids)
            if isinstance(node, Reversed):
                points[(id(node), -1)] = ReversalPoint(node, None, node.lam, losses, upstream)
            elif isinstance(node, Applied):
                for index, layer in enumerate(program.stack(node.stack).layers):
                    if layer.kind == "reverse":
                        inside = (f"{node.stack} (layers before {index})",) if index else ()
                        points[(id(node), index)] = ReversalPoint(node, index, layer.option("lambda"), losses,
                                                                  inside + upstream)
    return list(points.values())

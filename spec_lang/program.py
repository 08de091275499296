"""The checked program: a model with its parameters applied, loops unrolled, shapes and dtypes known.

`check.resolve` builds it from the IR; lowering and code generation walk it. Tensor values form a DAG
(identity matters: applying one stack twice gives two values that share weights); scalar expressions
(losses, their weights, λ, the learning rate) are trees over constants, hyperparameters and loss functions.
"""

from __future__ import annotations

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
        return f"{self.dtype}[{', '.join('?' if d is None else str(d) for d in self.shape)}]"


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
class DenseLayer:
    weights: str  # parameter names, e.g. "features.0.W"
    biases: str
    fan_in: int
    units: int
    activation: str


@dataclass(frozen=True)
class ReverseLayer:
    lam: Scalar


Layer = Union[DenseLayer, ReverseLayer]


@dataclass(frozen=True)
class StackDef:
    name: str
    layers: tuple[Layer, ...]
    span: Span | None = None

    @property
    def parameter_count(self) -> int:
        return sum(l.fan_in * l.units + l.units for l in self.layers if isinstance(l, DenseLayer))


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

    def parameter_names(self) -> list[str]:
        """Trainable parameters in a fixed order: stacks in declaration order, layer by layer, W then b."""
        return [n for s in self.stacks for l in s.layers if isinstance(l, DenseLayer) for n in (l.weights, l.biases)]

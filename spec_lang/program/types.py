"""The checked program: a model with its parameters applied, loops unrolled, shapes and dtypes known.

`check.resolve` builds it from the IR; lowering and code generation walk it. Tensor values form a DAG
(identity matters: applying one stack twice gives two values that share weights); scalar expressions
(losses, their weights, λ, the learning rate) are trees over constants, hyperparameters, schedules and loss
functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Union

import numpy as np

from spec_lang.lowering.pytensor import ops
from spec_lang.diagnostics import Span

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


@dataclass(frozen=True)
class Schedule:
    """A value that follows the training progress p ∈ [0, 1] (`model.set_progress`), e.g. `dann_lambda(gamma = 10)`:
    the schedule of that name in `ops.py` applied to p and the arguments (numbers and parameters), named and in
    the order of the schedule's signature, defaults filled in."""

    name: str
    args: tuple[tuple[str, Scalar], ...]


@dataclass(frozen=True, eq=False)
class CrossEntropy:
    """Mean categorical cross-entropy of softmax probabilities against integer labels: a tensor int[batch], or
    one class for every row (an int, e.g. the domain of a batch for a multi-class domain head)."""

    predictions: Value
    labels: Value | int


@dataclass(frozen=True, eq=False)
class BinaryCrossEntropy:
    """Mean binary cross-entropy of sigmoid probabilities against a constant 0/1 or a tensor."""

    predictions: Value
    target: Value | float


@dataclass(frozen=True, eq=False)
class MeanSquaredError:
    predictions: Value
    target: Value


@dataclass(frozen=True, eq=False)
class Entropy:
    """Mean over rows of -Σ p log p of softmax probabilities (entropy minimisation on unlabelled data)."""

    predictions: Value


@dataclass(frozen=True)
class Penalty:
    """`l2`/`l1`: the sum of squares / absolute values of the parameters of the named stacks."""

    norm: str  # "l1" | "l2"
    stacks: tuple[str, ...]
    biases: bool


@dataclass(frozen=True)
class LossRef:
    name: str


LossFunction = Union[CrossEntropy, BinaryCrossEntropy, MeanSquaredError, Entropy, Penalty]
Scalar = Union[Const, Hyper, Arith, Schedule, CrossEntropy, BinaryCrossEntropy, MeanSquaredError, Entropy, Penalty,
               LossRef]

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


@dataclass(frozen=True, eq=False)
class Outer:
    """`outer(features, predictions)`: per row, the outer product flattened to [batch, f * c] (CDAN's
    conditioning). Gradients flow into `features` only; the predictions are conditioning."""

    features: Value
    predictions: Value
    type: TensorType
    activation: str | None = None
    span: Span | None = None


Value = Union[InputValue, Applied, Reversed, Outer]

# Stacks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Initializer:
    """How a parameter's first value is drawn: a function of `initializers.py` and its keyword arguments."""

    scheme: str  # normal | uniform | glorot_uniform | glorot_normal | he_uniform | he_normal | zeros | constant | ones
    args: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a layer: its name (e.g. "features.0.W"), shape, role and initialiser. Weights and biases
    start as their layer, else their stack, else the model's `init` says; other roles have fixed starts (a scale
    starts at 1). A parameter that is not trainable is state the update function maintains itself (running
    statistics)."""

    name: str
    shape: tuple[int, ...]
    role: str
    init: Initializer
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
    lr_mult: float = 1.0  # the optimiser's learning rate for this stack's parameters is scaled by this
    frozen: bool = False  # a frozen stack's parameters are never updated

    @property
    def parameter_count(self) -> int:
        """Trainable parameters, counted one per number."""
        return sum(p.size for p in self.params if p.trainable)

    @property
    def params(self) -> list[ParamSpec]:
        return [p for layer in self.layers for p in layer.params]


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
    # the optimiser's other options (momentum, betas, weight_decay, clip_norm, …), every one with its value
    optimizer_options: dict[str, object] = field(default_factory=dict)

    def stack(self, name: str) -> StackDef:
        return self._stacks_by_name[name]

    @cached_property
    def _stacks_by_name(self) -> dict[str, StackDef]:
        return {s.name: s for s in self.stacks}

    def params(self) -> list[ParamSpec]:
        """Every parameter and state variable in a fixed order: stacks in declaration order, layer by layer."""
        return [p for s in self.stacks for p in s.params]

    def optimized_parameters(self) -> dict[str, float]:
        """The parameters the optimiser updates, with their learning-rate multipliers (their stack's `lr_mult`):
        the trainable parameters of every stack that is not frozen, in the order of `params`."""
        return {p.name: s.lr_mult for s in self.stacks if not s.frozen for p in s.params if p.trainable}


# Graph queries shared by the checker, the reports and the lowering ------------------------------

PROGRESS_POINTS = (0.0, 0.5, 1.0)  # where the checks and the summary evaluate run-time scalars


def evaluate(scalar: Scalar, hypers: dict[str, float], progress: float = 0.0) -> float:
    """The value of a run-time scalar made of numbers, parameters (valued by `hypers`), schedules and arithmetic,
    at training progress `progress`; a division by zero gives infinity."""
    match scalar:
        case Const(value=v):
            return v
        case Hyper(name=name):
            return hypers[name]
        case Arith(op="neg", left=left):
            return -evaluate(left, hypers, progress)
        case Arith(op=op, left=left, right=right):
            a, b = evaluate(left, hypers, progress), evaluate(right, hypers, progress)
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else math.inf}[op]
        case Schedule(name=name, args=args):
            values = [evaluate(a, hypers, progress) for _, a in args]
            with np.errstate(all="ignore"):  # an overflow gives infinity, as the checker's messages show
                return float(getattr(ops, name)(np.float64(progress), *values, xp=np))
    raise TypeError(scalar)


def schedules(scalar: Scalar) -> list[Schedule]:
    """The schedules inside a scalar expression, left to right."""
    if isinstance(scalar, Arith):
        return schedules(scalar.left) + (schedules(scalar.right) if scalar.right else [])
    return [scalar] if isinstance(scalar, Schedule) else []


def parents(value: Value, gradient: bool = False) -> tuple[Value, ...]:
    """The values a value is computed from directly: none for an input, two for `outer`, else one. With
    `gradient`, only those its gradient flows into (not `outer`'s predictions)."""
    match value:
        case InputValue():
            return ()
        case Outer(features=features, predictions=predictions):
            return (features,) if gradient else (features, predictions)
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


def loss_functions(scalar: Scalar) -> list[LossFunction]:
    """The loss functions inside a scalar expression, left to right."""
    if isinstance(scalar, Arith):
        return loss_functions(scalar.left) + (loss_functions(scalar.right) if scalar.right else [])
    if isinstance(scalar, LossFunction):
        return [scalar]
    return []


def tensors(scalar: Scalar) -> list[Value]:
    """The tensor values a scalar expression reads."""
    found: list[Value] = []
    for term in loss_functions(scalar):
        for attr in ("predictions", "labels", "target"):
            value = getattr(term, attr, None)
            if isinstance(value, Value):
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
    reads = {name: {id(a) for v in tensors(loss) for a in ancestors(v, gradient=True)}
             for name, loss in program.losses.items()}
    everything = [*program.values.values(), *program.heads.values()]
    everything += [v for loss in program.losses.values() for v in tensors(loss)]
    points: dict[tuple[int, int], ReversalPoint] = {}
    seen: set[int] = set()
    for value in everything:
        for node in ancestors(value):
            if id(node) in seen or not isinstance(node, Reversed | Applied):
                continue
            seen.add(id(node))
            if isinstance(node, Applied) and not any(l.kind == "reverse" for l in program.stack(node.stack).layers):
                continue  # (what follows costs a walk of the graph: only for reversal points)
            upstream = tuple(dict.fromkeys(a.stack for a in ancestors(node, gradient=True)[1:]
                                           if isinstance(a, Applied)))
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

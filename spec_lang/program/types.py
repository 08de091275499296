"""The checked program: a model with its parameters applied, loops unrolled, shapes and dtypes known.

`spec_lang.semantics.checker.resolve` builds it from the IR; lowering and code generation walk it. Tensor values
form a DAG (identity matters: applying one stack twice gives two values that share weights); scalar expressions
(losses, their weights, λ, the learning rate) are trees over constants, hyperparameters, schedules and loss
functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

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
    the schedule of that name (`spec_lang.library.schedules`) applied to p and the arguments (numbers and
    parameters), named and in the order of the schedule's signature, defaults filled in."""

    name: str
    args: tuple[tuple[str, Scalar], ...]


@dataclass(frozen=True, eq=False)
class LossTerm:
    """A loss function applied: `kind` names its entry in the loss registry (`spec_lang.library.losses`), `args` are
    its checked arguments by name: tensor values, numbers, and for penalties the names of stacks and a flag."""

    kind: str
    args: tuple[tuple[str, object], ...]

    def arg(self, name: str) -> object:
        return dict(self.args)[name]

    def value(self, name: str) -> Value:
        """A tensor argument (the predictions, a tensor target)."""
        found = self.arg(name)
        assert isinstance(found, Value), f"{self.kind}'s {name} is not a tensor"
        return found

    @property
    def values(self) -> list[Value]:
        """The tensor values the term reads, in argument order."""
        return [v for _, v in self.args if isinstance(v, Value)]

    @property
    def stacks(self) -> tuple[str, ...]:
        """The stacks whose parameters the term reads directly (a penalty's), by name."""
        return tuple(cast(Iterable[str], dict(self.args).get("stacks", ())))


@dataclass(frozen=True)
class LossRef:
    name: str


Scalar = Const | Hyper | Arith | Schedule | LossTerm | LossRef

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
    conditioning). Gradients flow into `features` only; the predictions are conditioning. With `dim`, CDAN's
    randomised multilinear map instead: (f·R_f) ⊙ (p·R_p) / √dim, [batch, dim], with fixed standard-normal R_f
    [f, dim] and R_p [c, dim] drawn from the program's seed and the three sizes (`ops.random_maps`)."""

    features: Value
    predictions: Value
    type: TensorType
    activation: str | None = None
    span: Span | None = None
    dim: int | None = None


@dataclass(frozen=True, eq=False)
class Interpolated:
    """`interpolate(first, second)`: per row, α·first + (1 − α)·second with α ~ U(0, 1) drawn anew at every step,
    over the first min(rows of first, rows of second) rows (WGAN-GP's points for the gradient penalty). Gradients
    flow into both."""

    first: Value
    second: Value
    type: TensorType
    activation: str | None = None
    span: Span | None = None


Value = InputValue | Applied | Reversed | Outer | Interpolated

# Stacks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Initializer:
    """How a parameter's first value is drawn: an initialiser of `spec_lang.library.initializers` and its keyword
    arguments."""

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
    """A layer of a stack with its options resolved and its shapes known (see `spec_lang.library.layers` for the kinds).

    `activation` names what the output holds (e.g. "softmax" probabilities) for the loss checks; None
    means the layer passes on whatever its input held (reverse, dropout)."""

    kind: str
    options: tuple[tuple[str, object], ...]
    params: tuple[ParamSpec, ...]
    in_shape: tuple[int | None, ...]
    out_shape: tuple[int | None, ...]
    activation: str | None = None
    reverses_gradient: bool = False  # a `reverse` layer: identity forward, gradient times -λ backward

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
class Phase:
    """One `optimize` statement: an optimiser step per batch (`repeat` steps) on `objective`, updating the trainable
    parameters of `stacks`. A model with one unnamed `optimize` has one phase named `optimize`."""

    name: str
    optimizer: str
    learning_rate: Scalar
    options: dict[str, object]  # the optimiser's other options (momentum, betas, weight_decay, clip_norm, …)
    objective: Scalar
    stacks: tuple[str, ...]  # the stacks it updates, in declaration order (never a frozen one)
    repeat: int = 1
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Stage:
    """`stage NAME(epochs = N, copy = [FROM, TO]) runs …`: `epochs` epochs (None: the rest of the run) in which each
    batch runs the named phases in order. Entering it, training copies the parameters of each stack FROM into the
    stack TO of the same layers (ADDA's target encoder starts as the trained source encoder)."""

    name: str
    phases: tuple[str, ...]
    epochs: int | None = None
    copies: tuple[tuple[str, str], ...] = ()


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
    phases: tuple[Phase, ...]  # at least one; run in this order on each batch (within the current stage)
    settings: dict[str, object] = field(default_factory=dict)  # every model parameter's value
    adversarial: frozenset[str] = frozenset()  # the losses marked `adversarial loss …`, by name
    stages: tuple[Stage, ...] = ()  # none: one stage, the whole run, running every phase

    @property
    def objective(self) -> Scalar:
        """The first phase's objective: what `evaluate` and training report as `objective` (with several phases,
        each phase's objective is reported under its name too)."""
        return self.phases[0].objective

    @property
    def plan(self) -> tuple[Stage, ...]:
        """The stages of the run: those declared, or one stage running every phase for the whole run."""
        return self.stages or (Stage("training", tuple(p.name for p in self.phases)),)

    def phase(self, name: str) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def stage_at(self, epoch: int) -> int:
        """The index in `plan` of the stage that runs epoch `epoch` (0 for the first): the stages follow one
        another, each for its `epochs`; the last one runs to the end of training, however long."""
        end = 0
        for index, stage in enumerate(self.plan):
            end += stage.epochs or 0
            if stage.epochs is None or epoch < end:
                return index
        return len(self.plan) - 1

    def stack(self, name: str) -> StackDef:
        return self._stacks_by_name[name]

    @cached_property
    def _stacks_by_name(self) -> dict[str, StackDef]:
        return {s.name: s for s in self.stacks}

    def params(self) -> list[ParamSpec]:
        """Every parameter and state variable in a fixed order: stacks in declaration order, layer by layer."""
        return [p for s in self.stacks for p in s.params]

    def optimized_parameters(self, phase: Phase | None = None) -> dict[str, float]:
        """The parameters a phase (by default the first) updates, with their learning-rate multipliers (their
        stack's `lr_mult`): the trainable parameters of its stacks, in the order of `params`."""
        stacks = (phase or self.phases[0]).stacks
        return {p.name: s.lr_mult for s in self.stacks if s.name in stacks for p in s.params if p.trainable}

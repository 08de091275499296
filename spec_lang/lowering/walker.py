"""Checked program → graph. One walker, two backends: `PyTensorBackend` builds PyTensor variables; the
code backend in `lowering/python/emitter.py` writes the same steps as Python source.

Every step is a call of a building block (`lowering/pytensor/ops.py`, or a formula a vocabulary declares) or
plain arithmetic, so both backends build the same graph by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, overload

import numpy as np

from spec_lang import program as P
from spec_lang.library import initializers
from spec_lang.library.layers import LAYERS, Lowering
from spec_lang.library.losses import LOSSES
from spec_lang.lowering.passes import Group, Optimizations, batch_groups
from spec_lang.program.types import Interpolated


class Backend[H](Protocol):
    def input(self, name: str, dtype: str, ndim: int) -> H: ...
    def parameter(self, name: str) -> H: ...
    def hyper(self, name: str) -> H: ...
    def progress(self) -> H: ...
    def const(self, value: float) -> H: ...
    def label(self, value: int) -> H: ...
    def arith(self, op: str, left: H, right: H | None) -> H: ...
    def generator(self, index: int) -> H: ...  # a new shared random generator, the `index`-th of its graph
    def seed(self) -> H | int: ...  # the program's seed, for numbers drawn when the graph is built
    # `args` are values, lists of values, or sizes fixed when the graph is built (ints, tuples of ints); an op
    # that returns several values (`outputs` given) gives a tuple
    @overload
    def op(self, name: str, *args: H | list[H] | int | tuple[int, ...], hint: str | None = None) -> H: ...
    @overload
    def op(
        self, name: str, *args: H | list[H] | int | tuple[int, ...], hint: str | None = None, outputs: int
    ) -> tuple[H, ...]: ...
    def bind(self, name: str, value: H) -> H: ...


@dataclass
class LoweredPhase[H]:
    """A phase's objective and learning rate, and the parameters it updates, in the order of
    `Program.optimized_parameters(phase)`."""

    phase: P.Phase
    objective: H
    learning_rate: H
    parameters: list[H]


@dataclass
class Lowered[H]:
    inputs: dict[str, H]
    values: dict[str, H]
    heads: dict[str, H]
    losses: dict[str, H]
    phases: list[LoweredPhase[H]]
    state_updates: list[tuple[H, H]]  # new values of state variables (running statistics) after a training step

    @property
    def objective(self) -> H:
        """The first phase's objective (`Program.objective`)."""
        return self.phases[0].objective


def lower[H](
    program: P.Program, backend: Backend[H], training: bool = True, optimizations: Optimizations | None = None
) -> Lowered[H]:
    """Build the program's graph with `backend`: inputs, values, heads, losses, objective. The training graph
    (dropout active, batch statistics) feeds the update function; the inference graph feeds evaluate and predict.
    `optimizations` (all on by default) may batch applications of a stack in the training graph (see
    `passes.py`); then heads may read every input, so predictions come from the inference graph."""
    optimizations = optimizations or Optimizations()
    if optimizations.fast_tanh and program.precision == "float32":
        backend = _Substituted(backend, {"tanh": "fast_tanh"})
    objectives = [phase.objective for phase in program.phases]
    roots = [t for loss in (*program.losses.values(), *objectives) for t in P.tensors(loss)]
    groups = batch_groups(program, roots, training, optimizations) if training else {}
    building: set[int] = set()  # groups being built (a cycle between groups falls back to single passes)
    parts: dict[int, tuple[H, int, list[H]]] = {}  # id(value) → (batched output, position, rows of each part)
    memo: dict[int, H] = {}
    logits: dict[int, H] = {}  # the pre-activation of each value that comes straight out of an activation
    names = {id(v): n for n, v in (*program.values.items(), *program.heads.items())}
    inputs = {i.name: backend.input(i.name, i.type.dtype, len(i.type.shape)) for i in program.inputs}
    for value in program.inputs:
        memo[id(value)] = inputs[value.name]

    def tensor(value: P.Value) -> H:
        if id(value) not in memo:
            group = groups.get(id(value))
            if group is not None and id(group) not in building:
                build_group(group)
            else:
                memo[id(value)] = build(value, names.get(id(value)))
        return memo[id(value)]

    def joined(args: tuple[P.Value, ...]) -> tuple[H, list[H]]:
        """The rows of `args` joined into one tensor, and the number of rows of each: the output of an earlier
        batched pass when `args` are its parts in order (or those parts reversed alike), else a join."""
        first = parts.get(id(args[0]))
        if (
            first is not None
            and first[1] == 0
            and len(first[2]) == len(args)
            and all(parts.get(id(a), (None, -1))[0] is first[0] and parts[id(a)][1] == i for i, a in enumerate(args))
        ):
            return first[0], first[2]
        reversals = [a for a in args if isinstance(a, P.Reversed)]
        if len(reversals) == len(args) and all(r.lam == reversals[0].lam for r in reversals):
            inner, sizes = joined(tuple(r.arg for r in reversals))
            return backend.op("reverse_gradient", inner, scalar(reversals[0].lam)), sizes
        lowered = [tensor(a) for a in args]
        return backend.op("join_rows", lowered), [backend.op("rows", t) for t in lowered]

    def build_group(group: Group) -> None:
        """One pass of a stack over the joined rows of every argument of the group, split back into the
        applications' values (and their logits)."""
        building.add(id(group))
        h, sizes = joined(group.args)
        for layer in program.stack(group.stack).layers:
            params = {p.role: backend.parameter(p.name) for p in layer.params}
            h = LAYERS[layer.kind].lower(context, h, params, dict(layer.options))
        z = context.logits(h)
        outputs = backend.op("split_rows", h, sizes, outputs=len(sizes))
        pre_activations = backend.op("split_rows", z, sizes, outputs=len(sizes)) if z is not None else None
        members = [m for m, g in groups.items() if g is group and m not in memo]
        for member in members:
            position = group.position[member]
            memo[member] = outputs[position]
            parts[member] = (h, position, sizes)
            if pre_activations is not None:
                logits[member] = pre_activations[position]
            if member in names:
                memo[member] = backend.bind(names[member], memo[member])
        building.discard(id(group))

    def build(value: P.Value, hint: str | None) -> H:
        assert not isinstance(value, P.InputValue)  # inputs are in `memo` from the start
        if isinstance(value, P.Outer):
            features, predictions = tensor(value.features), tensor(value.predictions)
            if value.dim is None:
                return backend.op("outer", features, predictions, hint=hint)
            widths = (value.features.type.shape[1], value.predictions.type.shape[1])
            assert widths[0] is not None and widths[1] is not None  # only the batch dimension is symbolic
            return backend.op(
                "randomized_outer", features, predictions, backend.seed(), (widths[0], widths[1]), value.dim, hint=hint
            )
        if isinstance(value, Interpolated):
            generator = context.generator()
            mixed, next_generator = backend.op(
                "interpolate", tensor(value.first), tensor(value.second), generator, outputs=2
            )
            context.update(generator, next_generator)
            return backend.bind(hint, mixed) if hint else mixed
        h = tensor(value.arg)
        if isinstance(value, P.Reversed):
            return backend.op("reverse_gradient", h, scalar(value.lam), hint=hint)
        for layer in program.stack(value.stack).layers:
            params = {p.role: backend.parameter(p.name) for p in layer.params}
            h = LAYERS[layer.kind].lower(context, h, params, dict(layer.options))
        if (z := context.logits(h)) is not None:
            logits[id(value)] = z
        return backend.bind(hint, h) if hint else h

    def loss_of_probabilities(loss: str, predictions: P.Value, *args: H) -> H:
        """`loss` of the predictions, computed from their logits (`{loss}_from_logits`, finite for any logits)
        when the predictions come straight out of their softmax or sigmoid, else from the probabilities."""
        probabilities = tensor(predictions)  # lowering the predictions records their logits, if any
        if id(predictions) in logits and optimizations.fused_losses:
            return backend.op(f"{loss}_from_logits", logits[id(predictions)], *args)
        return backend.op(loss, probabilities, *args)

    losses: dict[str, H] = {}

    def scalar(s: P.Scalar) -> H:
        match s:
            case P.Const(value=v):
                return backend.const(v)
            case P.Hyper(name=name):
                return backend.hyper(name)
            case P.Arith(op=op, left=left, right=right):
                return backend.arith(op, scalar(left), None if right is None else scalar(right))
            case P.Schedule(name=name, args=args):
                return backend.op(name, backend.progress(), *[scalar(a) for _, a in args])
            case P.LossRef(name=name):
                return losses[name]
            case P.LossTerm(kind=kind):
                return LOSSES[kind].lower(loss_context, s)
        raise TypeError(s)

    def parameters(stacks: tuple[str, ...], biases: bool) -> list[H]:
        """The trainable parameters of the stacks, their biases only with `biases` (a penalty's)."""
        return [
            backend.parameter(p.name)
            for s in stacks
            for p in program.stack(s).params
            if p.trainable and (biases or p.role == "weights")
        ]

    loss_context = LossContext(backend, tensor, loss_of_probabilities, parameters)
    context = Lowering(backend, scalar, training)
    values = {name: tensor(v) for name, v in program.values.items()}
    heads = {name: tensor(v) for name, v in program.heads.items()}
    for name, loss in program.losses.items():
        losses[name] = backend.bind(name, scalar(loss))
    phases = [
        LoweredPhase(
            phase,
            scalar(phase.objective),
            scalar(phase.learning_rate),
            [backend.parameter(n) for n in program.optimized_parameters(phase)],
        )
        for phase in program.phases
    ]
    return Lowered(inputs, values, heads, losses, phases, context.state_updates)


@dataclass
class LossContext[H]:
    """What a loss's lowering may use (`spec_lang.library.losses.LossLowering`)."""

    backend: Backend[H]
    tensor: Callable[[P.Value], H]
    of_probabilities: Callable[..., H]
    parameters: Callable[[tuple[str, ...], bool], list[H]]


class _Substituted:
    """A backend that builds some ops as others: the faster forms that optimisations choose."""

    def __init__(self, backend, substitutes: dict[str, str]):
        self._backend, self._substitutes = backend, substitutes

    def __getattr__(self, name: str):
        return getattr(self._backend, name)

    def op(self, name: str, *args, **options):
        return self._backend.op(self._substitutes.get(name, name), *args, **options)


def input_dtype(program: P.Program, dtype: str) -> str:
    """The array dtype of an input: the model's precision for floats, int32 for labels."""
    return program.precision if dtype == "float" else "int32"


def initial_values(program: P.Program) -> dict[str, np.ndarray]:
    """The seeded initial value of every parameter and state variable."""
    return initializers.initial_parameters(
        initializer_table(program), program.seed, program.precision, initializers.draws()
    )


def initializer_table(program: P.Program) -> list[tuple[str, tuple[int, ...], str, dict[str, float]]]:
    """(name, shape, initialiser name, its keyword arguments) of every parameter and state variable, in order."""
    return [(p.name, p.shape, p.init.scheme, dict(p.init.args)) for p in program.params()]

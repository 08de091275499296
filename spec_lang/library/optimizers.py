"""Optimisers: their options and their update rules. A rule is written once against a tensor module `t`
(`pytensor.tensor`) and the optimiser's state (`state.variable(parameter, name)`, `state.counter(name)`); the lowering
calls it and the emitted module carries its source. To add an optimiser, write its rule and register an
`OptimizerKind` here.

>>> [kind.name for kind in OPTIMIZERS.entries()]
['sgd', 'adam', 'rmsprop']
>>> [option.name for option in OPTIMIZERS["adam"].options]
['beta1', 'beta2', 'epsilon', 'weight_decay', 'clip_norm']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from spec_lang.library.registry import Registry


@dataclass(frozen=True)
class Option:
    """An optimiser option besides `lr`, fixed when the model is compiled: its default (None: off), the kind of value
    it takes (`fraction` in [0, 1), `positive`, `non-negative`, or `flag`: true/false) and an example."""

    name: str
    default: object
    kind: str
    example: str


# every optimiser takes these, after its own options: decoupled weight decay and clipping by global norm
COMMON_OPTIONS = (Option("weight_decay", 0.0, "non-negative", "1e-4"), Option("clip_norm", None, "positive", "1.0"))


@dataclass(frozen=True)
class OptimizerKind:
    """An optimiser: its own options, its default learning rate (None: `lr` must be given), its update rule
    `rule(parameters, gradients, rates, state, t, **options)` returning (variable, new value) pairs, a summary, and
    `state_arrays(options)`: how many arrays shaped like each parameter it updates its rule keeps between steps
    (`state.variable`), for the options given (every one with its value), which the parameter-memory limit (E604)
    counts. A step counter (`state.counter`) is one number and not counted."""

    name: str
    summary: str
    own_options: tuple[Option, ...]
    rule: Callable[..., list[tuple[Any, Any]]]
    state_arrays: Callable[[Mapping[str, object]], int]
    default_lr: float | None = None

    @property
    def options(self) -> tuple[Option, ...]:
        return (*self.own_options, *COMMON_OPTIONS)


OPTIMIZERS = Registry[OptimizerKind]("optimiser")


def sgd_updates(parameters, gradients, rates, state, t, momentum, nesterov, weight_decay):
    """SGD: p ← p - lr · d with the gradient g as the direction d; with momentum μ, a velocity v ← μ · v + g
    (zero at the start) is the direction, or g + μ · v with Nesterov's correction (PyTorch's formulation)."""
    updates = []
    for p, g, rate in zip(parameters, gradients, rates, strict=False):
        direction = g
        if momentum:
            velocity = state.variable(p, "velocity")
            new_velocity = momentum * velocity + g
            updates.append((velocity, new_velocity))
            direction = g + momentum * new_velocity if nesterov else new_velocity
        updates.append((p, descend(p, direction, rate, weight_decay)))
    return updates


def adam_updates(parameters, gradients, rates, state, t, beta1, beta2, epsilon, weight_decay):
    """Adam (Kingma & Ba 2015): with the step count n ← n + 1 and the moments m ← β1 · m + (1 - β1) · g and
    v ← β2 · v + (1 - β2) · g² (zero at the start), the direction is m̂ / (√v̂ + ε) for the bias-corrected
    m̂ = m / (1 - β1^n) and v̂ = v / (1 - β2^n)."""
    step = state.counter("step")
    n = step + 1
    updates = [(step, n)]
    for p, g, rate in zip(parameters, gradients, rates, strict=False):
        m, v = state.variable(p, "m"), state.variable(p, "v")
        new_m = beta1 * m + (1 - beta1) * g
        new_v = beta2 * v + (1 - beta2) * t.sqr(g)
        direction = new_m / (1 - beta1**n) / (t.sqrt(new_v / (1 - beta2**n)) + epsilon)
        updates += [(m, new_m), (v, new_v), (p, descend(p, direction, rate, weight_decay))]
    return updates


def rmsprop_updates(parameters, gradients, rates, state, t, rho, epsilon, weight_decay):
    """RMSprop (Hinton 2012): with a running mean of squared gradients s ← ρ · s + (1 - ρ) · g² (zero at the
    start), the direction is g / (√s + ε)."""
    updates = []
    for p, g, rate in zip(parameters, gradients, rates, strict=False):
        square = state.variable(p, "mean_square")
        new_square = rho * square + (1 - rho) * t.sqr(g)
        direction = g / (t.sqrt(new_square) + epsilon)
        updates += [(square, new_square), (p, descend(p, direction, rate, weight_decay))]
    return updates


def descend(parameter, direction, rate, weight_decay):
    """p - lr · (d + weight_decay · p): a step against the direction d, with decoupled weight decay
    (Loshchilov & Hutter 2019: the decay does not pass through momentum or Adam's moments)."""
    if weight_decay:
        direction = direction + weight_decay * parameter
    return parameter - rate * direction


_EPSILON = Option("epsilon", 1e-8, "positive", "1e-8")
for _kind in (
    OptimizerKind(
        "sgd",
        "`sgd(lr, momentum = 0, nesterov = false)`: stochastic gradient descent",
        (Option("momentum", 0.0, "fraction", "0.9"), Option("nesterov", False, "flag", "true")),
        sgd_updates,
        lambda options: 1 if options.get("momentum") else 0,  # the velocity, with momentum (Nesterov's too)
    ),
    OptimizerKind(
        "adam",
        "`adam(lr = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8)`: Adam",
        (Option("beta1", 0.9, "fraction", "0.9"), Option("beta2", 0.999, "fraction", "0.999"), _EPSILON),
        adam_updates,
        lambda options: 2,  # the moments m and v (and the step count, one number)
        default_lr=0.001,
    ),
    OptimizerKind(
        "rmsprop",
        "`rmsprop(lr = 0.001, rho = 0.9, epsilon = 1e-8)`: RMSprop",
        (Option("rho", 0.9, "fraction", "0.9"), _EPSILON),
        rmsprop_updates,
        lambda options: 1,  # the mean of squared gradients
        default_lr=0.001,
    ),
):
    OPTIMIZERS.register(_kind)

"""Schedules: values that follow the training progress p ∈ [0, 1] (`model.set_progress`), such as DANN's λ and its
annealed learning rate. A schedule's formula is written once for numbers and tensors alike (`xp` is numpy or
`pytensor.tensor`): the checker and the summary evaluate it on numbers, the lowering builds it into the graph and the
emitted module carries its source. To add a schedule, register a `ScheduleKind` here.

>>> sorted(SCHEDULES)
['annealed', 'constant', 'cosine', 'dann_lambda', 'step_decay', 'warmup']
>>> import numpy as np
>>> float(SCHEDULES["annealed"].formula(np.float64(1.0), 0.01, 10.0, 0.75, xp=np))
0.00165560...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from spec_lang.library.registry import Argument, Registry, Signature


@dataclass(frozen=True)
class ScheduleKind:
    """A schedule: its arguments (every one a number or a parameter, never negative), which of them are fractions
    of training (then above 0), its formula of the progress and the arguments in order, and a one-line summary."""

    name: str
    summary: str
    signature: Signature
    formula: Callable[..., Any]
    fractions: tuple[str, ...] = ()


SCHEDULES = Registry[ScheduleKind]("schedule")


def constant(progress, value, xp):
    """`value` at every point of training."""
    return value


def dann_lambda(progress, peak, gamma, xp):
    """Ganin & Lempitsky's λ schedule: peak · (2 / (1 + exp(-gamma · p)) - 1), rising from 0 towards `peak`."""
    return peak * (2 / (1 + xp.exp(-gamma * progress)) - 1)


def warmup(progress, peak, until, xp):
    """Linear from 0 at p = 0 to `peak` at p = `until`, then `peak`."""
    return peak * xp.minimum(progress / until, 1)


def annealed(progress, lr0, alpha, beta, xp):
    """Ganin & Lempitsky's learning-rate annealing: lr0 / (1 + alpha · p)^beta."""
    return lr0 / (1 + alpha * progress) ** beta


def step_decay(progress, lr0, factor, every, xp):
    """lr0 multiplied by `factor` after each `every` of training: lr0 · factor^floor(p / every)."""
    return lr0 * factor ** xp.floor(progress / every)


def cosine(progress, lr0, final, xp):
    """Cosine annealing from lr0 at p = 0 to `final` at p = 1: final + (lr0 - final) · (1 + cos(π · p)) / 2."""
    half_turns = progress * np.asarray(np.pi, dtype=progress.dtype)  # π in the progress's float type
    return final + (lr0 - final) * (1 + xp.cos(half_turns)) / 2


for _kind in (
    ScheduleKind(
        "constant",
        "`constant(value)`: the same value throughout (written as the value itself)",
        Signature((Argument("value"),)),
        constant,
    ),
    ScheduleKind(
        "dann_lambda",
        "`dann_lambda(max = 1, gamma = 10)`: DANN's λ, 0 rising to max",
        Signature((Argument("max", 1.0), Argument("gamma", 10.0))),
        dann_lambda,
    ),
    ScheduleKind(
        "warmup",
        "`warmup(max, until = 0.1)`: linear from 0 to max until a fraction of training",
        Signature((Argument("max"), Argument("until", 0.1))),
        warmup,
        fractions=("until",),
    ),
    ScheduleKind(
        "annealed",
        "`annealed(lr0, alpha = 10, beta = 0.75)`: DANN's learning rate lr0 / (1 + αp)^β",
        Signature((Argument("lr0"), Argument("alpha", 10.0), Argument("beta", 0.75))),
        annealed,
    ),
    ScheduleKind(
        "step_decay",
        "`step_decay(lr0, factor = 0.1, every = 0.3)`: lr0 times factor after each `every`",
        Signature((Argument("lr0"), Argument("factor", 0.1), Argument("every", 0.3))),
        step_decay,
        fractions=("every",),
    ),
    ScheduleKind(
        "cosine",
        "`cosine(lr0, final = 0)`: cosine annealing from lr0 to final",
        Signature((Argument("lr0"), Argument("final", 0.0))),
        cosine,
    ),
):
    SCHEDULES.register(_kind)

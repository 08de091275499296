"""What training needs of a compiled model, as a Protocol: training drives any object with these members (such as
`spec_lang.runtime.model.CompiledProgram`) and never imports the model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from spec_lang import program as P


class Model(Protocol):
    """A compiled program that training can step, evaluate, inspect and save."""

    program: P.Program
    train_inputs: list[str]

    @property
    def parameters(self) -> dict[str, np.ndarray]: ...

    @property
    def progress(self) -> float: ...

    @property
    def hyperparameters(self) -> dict[str, float]: ...

    def set_progress(self, progress: float) -> None: ...

    def set_stage(self, stage: str) -> None: ...

    def train_step(self, **batch: np.ndarray) -> dict[str, float]: ...

    def evaluate(self, **batch: np.ndarray) -> dict[str, float]: ...

    def value_function(self, value: P.Value) -> tuple[list[str], Callable[..., Any]]: ...

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None: ...


def prepare_step(model: Model, step: int, total: int, per_epoch: int) -> None:
    """Before step `step` (0 for the first) of `total`, with `per_epoch` steps an epoch: the training progress
    that schedules follow, and the stage of training that runs the step's epoch (`Program.stage_at`)."""
    model.set_progress(step / total)
    program = model.program
    model.set_stage(program.plan[program.stage_at(step // per_epoch)].name)

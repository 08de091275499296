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

    def train_step(self, **batch: np.ndarray) -> dict[str, float]: ...

    def evaluate(self, **batch: np.ndarray) -> dict[str, float]: ...

    def value_function(self, value: P.Value) -> tuple[list[str], Callable[..., Any]]: ...

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None: ...

"""The tests' way to run a module `specc compile --emit python` wrote: import it as a user would, and train it
side by side with the compiled model on the module's own random batches."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from spec_lang import CompiledModel


def import_module(path: Path) -> ModuleType:
    """Import the Python file at `path` (as `generated`)."""
    module_spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def train_side_by_side(model: CompiledModel, generated: ModuleType, train: Callable, steps: int,
                       rng: np.random.Generator, rel: float, progress=None) -> None:
    """`steps` training steps of both on the same batches: the objective and every loss term agree to `rel` at
    each. With the module's `progress` variable, both follow the training progress from 0 to 1."""
    for step in range(steps):
        if progress is not None:
            model.set_progress(step / (steps - 1))
            progress.set_value(np.asarray(step / (steps - 1), dtype=generated.PRECISION))
        batch = generated.random_batch(rng)
        ours = model.train_step(**{n: batch[n] for n in model.train_inputs})
        theirs = train(*[batch[n] for n in generated.TRAIN_INPUTS])
        phases = model.program.phases
        objectives = [ours[p.name] for p in phases] if len(phases) > 1 else [ours["objective"]]
        assert [*objectives, *(ours[n] for n in model.program.losses)] == pytest.approx(
            [float(v) for v in theirs], rel=rel)

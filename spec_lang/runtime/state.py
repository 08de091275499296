"""The training state of a compiled program, as `CompiledProgram` holds it in shared variables: parameters (running
statistics included), the optimiser's state of each phase, the training progress and stage, the run-time parameters
and the random generators; `state_dict` takes it all and `load_state_dict` puts it back (`runtime.checkpoint`
writes and reads it), `save`/`load` the parameters alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytensor

from spec_lang import program as P
from spec_lang.files import write_atomic
from spec_lang.lowering.pytensor.backend import PyTensorBackend
from spec_lang.reading import read_npz
from spec_lang.runtime import jax_mode

Arrays = Mapping[str, np.ndarray]


class TrainingState:
    """The state part of `CompiledProgram` (see there for an example), over the shared variables it compiled."""

    program: P.Program
    _backend: PyTensorBackend
    _optimizer_state: dict[str, Any]
    _generators: dict[str, Any]
    _jax: bool
    _stage: int  # the index in `program.plan` of the stage whose phases `train_step` runs

    @property
    def stage(self) -> str:
        """The stage of training whose phases `train_step` runs (`Program.plan`; "training" without stages)."""
        return self.program.plan[self._stage].name

    def set_stage(self, stage: str) -> None:
        """Choose the stage whose phases `train_step` runs from the next step, by name (training sets it from the
        epoch, `Program.stage_at`). Moving on to a later stage makes the copies between stacks that each stage
        entered asks for (`Program.Stage.copies`)."""
        plan = self.program.plan
        entered, self._stage = plan[self._stage + 1 : self._stage_index(stage) + 1], self._stage_index(stage)
        parameters = self._backend.parameters
        for source, target in (pair for s in entered for pair in s.copies):
            for name, variable in parameters.items():
                if name.startswith(f"{target}."):
                    own = parameters[source + name[len(target) :]].get_value()
                    variable.set_value(np.array(own, copy=True))

    def _stage_index(self, stage: str) -> int:
        names = [s.name for s in self.program.plan]
        if stage not in names:
            raise KeyError(f"no stage '{stage}'; stages: {', '.join(names)}")
        return names.index(stage)

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, by name (e.g. 'features.0.W'), in a fixed order; state variables such as
        running statistics included."""
        return {n: np.array(v.get_value(borrow=True)) for n, v in self._backend.parameters.items()}

    def set_parameters(self, values: Arrays) -> None:
        """Replace parameters by name; names and shapes must match."""
        _assign(self._backend.parameters, values, "parameter")

    @property
    def optimizer_state(self) -> dict[str, np.ndarray]:
        """A copy of the optimiser's state, by name: momentum velocities (`features.0.W.velocity`), Adam's moments
        (`….m`, `….v`) and step count (`step`), RMSprop's mean squares (`….mean_square`); empty for plain SGD. With
        several phases, each name starts with its phase's (`critic_step/critic.0.W.m`)."""
        return {n: np.array(v.get_value(borrow=True)) for n, v in self._optimizer_state.items()}

    def set_optimizer_state(self, values: Arrays) -> None:
        """Replace optimiser state by name (as `optimizer_state` gives it); names and shapes must match."""
        _assign(self._optimizer_state, values, "optimiser state variable")

    @property
    def progress(self) -> float:
        """The training progress p ∈ [0, 1] that schedules follow."""
        return float(self._backend.training_progress.get_value())

    def set_progress(self, progress: float) -> None:
        """Set the training progress p ∈ [0, 1] (e.g. step / total steps); schedules follow it from the next
        step, without recompiling."""
        if not 0 <= progress <= 1:
            raise ValueError(f"the training progress is between 0 and 1, got {progress}")
        self._backend.training_progress.set_value(np.asarray(progress, dtype=self.program.precision))

    @property
    def hyperparameters(self) -> dict[str, float]:
        """The run-time model parameters (λ, learning rate, loss weights)."""
        return {n: float(v.get_value()) for n, v in self._backend.hypers.items()}

    def set_hyperparameters(self, **values: float) -> None:
        """Change run-time parameters between steps; no recompilation."""
        for name, value in values.items():
            if name not in self._backend.hypers:
                raise KeyError(f"no run-time parameter '{name}'; these are: {', '.join(self._backend.hypers)}")
            self._backend.hypers[name].set_value(np.asarray(value, dtype=self.program.precision))

    @property
    def random_state(self) -> dict[str, dict]:
        """The state of each random generator of the training graph (one per dropout application), by name, as
        numpy's `bit_generator.state` dictionaries, or in the JAX mode, once it has drawn, as JAX keys (JSON-able,
        see `jax_mode.random_state`); empty without dropout."""
        return {n: jax_mode.random_state(v.get_value(borrow=True)) for n, v in self._generators.items()}

    def set_random_state(self, states: Mapping[str, dict]) -> None:
        """Put back random generator states taken from `random_state`; names must match. A state saved in another
        mode (a JAX key in the NUMBA mode, say) seeds this mode's generator (`jax_mode.generator_value`)."""
        unknown = [n for n in states if n not in self._generators]
        if unknown or len(states) != len(self._generators):
            raise KeyError(
                f"random generators of this model: {', '.join(self._generators) or 'none'}; "
                f"got {', '.join(states) or 'none'}"
            )
        for name, state in states.items():
            self._generators[name].set_value(jax_mode.generator_value(state, self._jax))

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The training state: arrays (parameters as `parameters/NAME`, optimiser state as `optimizer/NAME`) and
        JSON-able values (`progress`, `hyperparameters`, `random_state`, `stage`)."""
        arrays = {f"parameters/{n}": v for n, v in self.parameters.items()}
        arrays.update({f"optimizer/{n}": v for n, v in self.optimizer_state.items()})
        meta = {
            "progress": self.progress,
            "hyperparameters": self.hyperparameters,
            "random_state": self.random_state,
            "stage": self.stage,
        }
        return arrays, meta

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Put back what `state_dict` took; other arrays and keys (a checkpoint's own) are ignored."""
        self.set_parameters({n.partition("/")[2]: v for n, v in arrays.items() if n.startswith("parameters/")})
        self.set_optimizer_state({n.partition("/")[2]: v for n, v in arrays.items() if n.startswith("optimizer/")})
        self.set_progress(float(meta["progress"]))
        self.set_hyperparameters(**meta["hyperparameters"])
        self.set_random_state(meta["random_state"])
        self._stage = self._stage_index(meta.get("stage", self.program.plan[0].name))  # as saved: no copies

    def save(self, path: str | os.PathLike) -> None:
        """Write every parameter to a `.npz` file, atomically (a crash never leaves half a file)."""
        parameters = self.parameters
        # numpy's stub takes the keywords for `allow_pickle` (a bool) too; they are arrays by name
        write_atomic(path, lambda stream: np.savez(stream, **parameters))  # type: ignore[arg-type]

    def load(self, path: str | os.PathLike) -> None:
        """Read parameters saved by `save`; the file must hold exactly this model's parameters, with their shapes. A
        file that is not such an archive, or does not fit, is a `ValueError` and no parameter changes."""
        try:
            stored = read_npz(path)
        except ValueError as error:
            raise ValueError(f"cannot read {path}: {error}") from None
        missing = [n for n in self._backend.parameters if n not in stored]
        if missing:
            raise ValueError(f"{path} lacks parameters of this model: {', '.join(missing)}")
        self.set_parameters(stored)


def _assign(shared: dict[str, pytensor.compile.SharedVariable], values: Arrays, what: str) -> None:
    """Set shared variables by name; every name must be known and every shape must match, else nothing is set."""
    unknown = [n for n in values if n not in shared]
    if unknown:
        raise KeyError(f"not {what}s of this model: {', '.join(unknown)}")
    current = {name: shared[name].get_value(borrow=True) for name in values}
    for name, value in values.items():
        if np.shape(value) != current[name].shape:
            raise ValueError(f"{what} '{name}' has shape {current[name].shape}, got {np.shape(value)}")
    for name, value in values.items():
        shared[name].set_value(np.asarray(value, dtype=current[name].dtype))

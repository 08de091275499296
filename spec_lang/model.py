"""A compiled model: the PyTensor update function with the optimiser's `updates`, an evaluate function returning
every loss term, one predict function per head, and access to parameters, hyperparameters, the training progress
and the optimiser's state.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import pytensor
from pytensor.graph.traversal import graph_inputs

from . import ops
from . import program as P
from .lower import Lowered, PyTensorBackend, initial_values, input_dtype, lower

Arrays = Mapping[str, np.ndarray]


class CompiledModel:
    """Train, evaluate and predict with a checked program.

    >>> import numpy as np, spec_lang
    >>> spec = spec_lang.load("examples/seed_dann.dann")
    >>> model = spec.compile()
    >>> rng = np.random.default_rng(0)
    >>> batch = {"xs": rng.normal(size=(9, 2)), "xt": rng.normal(size=(10, 2)), "ys": rng.integers(0, 8, 9)}
    >>> sorted(model.train_step(**batch))
    ['domain_loss', 'label_loss', 'objective']
    >>> model.predict("label_probabilities", batch["xs"]).shape
    (9, 8)
    """

    def __init__(self, program: P.Program, mode: str | None = None):
        started = time.perf_counter()
        self.program = program
        self.mode = mode
        self._backend = PyTensorBackend(program, initial_values(program))
        # Two graphs over the same shared variables: training (dropout on, batch statistics) and inference.
        training = lower(program, self._backend, training=True)
        self._graph = lower(program, self._backend, training=False)
        outputs = [training.objective, *training.losses.values()]
        self.train_inputs = self._needed(training, outputs)
        rule = getattr(ops, f"{program.optimizer}_updates")
        updates, self._optimizer_state = ops.training_updates(
            rule, training.parameters, list(program.optimized_parameters().values()), training.objective,
            training.learning_rate, **program.optimizer_options)
        self._train = self._function(training, self.train_inputs, outputs, updates + training.state_updates)
        self._evaluate: pytensor.compile.function.types.Function | None = None
        self._predict: dict[str, pytensor.compile.function.types.Function] = {}
        self.compile_seconds = time.perf_counter() - started

    # functions
    @staticmethod
    def _needed(graph: Lowered, outputs: list) -> list[str]:
        used = {id(v) for v in graph_inputs(outputs)}
        return [name for name, var in graph.inputs.items() if id(var) in used]

    def _function(self, graph: Lowered, names: list[str], outputs: list, updates=None):
        return pytensor.function([graph.inputs[n] for n in names], outputs, updates=updates,
                                 mode=self.mode, on_unused_input="ignore")

    def _arguments(self, names: list[str], batch: Arrays, what: str) -> list[np.ndarray]:
        missing = [n for n in names if n not in batch]
        unknown = [n for n in batch if n not in self._graph.inputs]
        if missing or unknown:
            raise ValueError(f"{what} takes the inputs {', '.join(names)}"
                             + (f"; missing: {', '.join(missing)}" if missing else "")
                             + (f"; not inputs of this model: {', '.join(unknown)}" if unknown else ""))
        types = {i.name: i.type.dtype for i in self.program.inputs}
        return [np.asarray(batch[n], dtype=input_dtype(self.program, types[n])) for n in names]

    def _losses(self, values: list) -> dict[str, float]:
        return {"objective": float(values[0]), **{n: float(v) for n, v in zip(self._graph.losses, values[1:])}}

    def train_step(self, **batch: np.ndarray) -> dict[str, float]:
        """One optimiser step on a batch (inputs by name); returns the objective and every loss term, before the
        step."""
        return self._losses(self._train(*self._arguments(self.train_inputs, batch, "train_step")))

    def evaluate(self, **batch: np.ndarray) -> dict[str, float]:
        """The objective and every loss term on a batch, without changing any parameter."""
        if self._evaluate is None:
            outputs = [self._graph.objective, *self._graph.losses.values()]
            self._evaluate = self._function(self._graph, self.train_inputs, outputs)
        return self._losses(self._evaluate(*self._arguments(self.train_inputs, batch, "evaluate")))

    def head_inputs(self, head: str) -> list[str]:
        """The inputs a head's prediction depends on."""
        return self._needed(self._graph, [self._head(head)])

    def _head(self, head: str):
        if head not in self._graph.heads:
            raise KeyError(f"no head '{head}'; heads: {', '.join(self._graph.heads) or 'none'}")
        return self._graph.heads[head]

    def predict(self, head: str, x: np.ndarray | None = None, **inputs: np.ndarray) -> np.ndarray:
        """The output of a head; pass its one input positionally or its inputs by name."""
        names = self.head_inputs(head)
        if x is not None:
            if len(names) != 1:
                raise ValueError(f"head '{head}' takes the inputs {', '.join(names)}; pass them by name")
            inputs = {names[0]: x, **inputs}
        if head not in self._predict:
            self._predict[head] = self._function(self._graph, names, self._head(head))
        return self._predict[head](*self._arguments(names, inputs, f"head '{head}'"))

    # parameters
    @property
    def parameters(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, by name (e.g. 'features.0.W'), in a fixed order; state variables such as
        running statistics included."""
        return {n: v.get_value() for n, v in self._backend.parameters.items()}

    def set_parameters(self, values: Arrays) -> None:
        """Replace parameters by name; names and shapes must match."""
        _assign(self._backend.parameters, values, "parameter")

    @property
    def optimizer_state(self) -> dict[str, np.ndarray]:
        """A copy of the optimiser's state, by name: momentum velocities (`features.0.W.velocity`), Adam's moments
        (`….m`, `….v`) and step count (`step`), RMSprop's mean squares (`….mean_square`); empty for plain SGD."""
        return {n: v.get_value() for n, v in self._optimizer_state.items()}

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

    def save(self, path: str | os.PathLike) -> None:
        """Write every parameter to a `.npz` file, atomically (a crash never leaves half a file)."""
        target = Path(path)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(stream, **self.parameters)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load(self, path: str | os.PathLike) -> None:
        """Read parameters saved by `save`; the file must hold exactly this model's parameters."""
        with np.load(path) as data:
            stored = {n: data[n] for n in data.files}
        missing = [n for n in self._backend.parameters if n not in stored]
        if missing:
            raise ValueError(f"{path} lacks parameters of this model: {', '.join(missing)}")
        self.set_parameters(stored)


def _assign(shared: dict[str, pytensor.compile.SharedVariable], values: Arrays, what: str) -> None:
    """Set shared variables by name; every name must be known and every shape must match."""
    unknown = [n for n in values if n not in shared]
    if unknown:
        raise KeyError(f"not {what}s of this model: {', '.join(unknown)}")
    for name, value in values.items():
        current = shared[name].get_value()
        if np.shape(value) != current.shape:
            raise ValueError(f"{what} '{name}' has shape {current.shape}, got {np.shape(value)}")
        shared[name].set_value(np.asarray(value, dtype=current.dtype))

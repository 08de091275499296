"""A compiled program: the PyTensor update function with the optimiser's `updates`, an evaluate function returning
every loss term, one predict function per head, and access to parameters, hyperparameters, the training progress,
the optimiser's state and the whole training state (`state_dict`). Training it is `spec_lang.training`'s part:
`spec_lang.CompiledModel` adds `fit` and `metrics`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pytensor
from numpy.typing import ArrayLike
from pytensor.graph.traversal import graph_inputs
from pytensor.tensor.random.type import RandomGeneratorType

from spec_lang import program as P
from spec_lang.files import write_atomic
from spec_lang.library.losses import label_classes
from spec_lang.library.optimizers import OPTIMIZERS
from spec_lang.lowering.passes import Optimizations
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.pytensor.backend import PyTensorBackend
from spec_lang.lowering.walker import Lowered, initial_values, input_dtype, lower
from spec_lang.reading import read_npz
from spec_lang.runtime import compile_cache, jax_mode

Arrays = Mapping[str, np.ndarray]


class CompiledProgram:
    """The compiled functions of a checked program: step, evaluate and predict, with its parameters and state.

    >>> import numpy as np, spec_lang
    >>> model = CompiledProgram(spec_lang.load("examples/seed_dann.dann").program)
    >>> rng = np.random.default_rng(0)
    >>> batch = {"xs": rng.normal(size=(9, 2)), "xt": rng.normal(size=(10, 2)), "ys": rng.integers(0, 8, 9)}
    >>> sorted(model.train_step(**batch))
    ['domain_loss', 'label_loss', 'objective']
    >>> model.predict("label_probabilities", batch["xs"]).shape
    (9, 8)
    >>> arrays, meta = model.state_dict()
    >>> sorted(meta)
    ['hyperparameters', 'progress', 'random_state']
    >>> model.load_state_dict(arrays, meta)
    """

    def __init__(self, program: P.Program, mode: str | None = None, optimizations: Optimizations | None = None):
        started = time.perf_counter()
        self.program = program
        # PyTensor's "C" links the whole graph as one C module, which fails (NotImplementedError) on Ops without C
        # code, such as its Gemm when no BLAS library is found; "CVM" runs C code per Op, Python where there is none
        self.mode = "CVM" if mode == "C" else mode
        self.optimizations = optimizations or Optimizations()
        self._label_classes = label_classes(program)  # labels outside these are refused before any compiled call
        self._jax = jax_mode.uses_jax(mode)  # functions compiled per signature of input shapes (`jax_mode`)
        if self._jax:
            jax_mode.require_jax()
        # Two graphs over the same shared variables: training (dropout on, batch statistics) and inference. The
        # compiled training graph may come from the compile cache, with the shared variables it updates.
        with _deterministic():
            cache_key = (
                compile_cache.key(program, self.mode, self.optimizations) if self.optimizations.compile_cache else None
            )
            cached = compile_cache.load(cache_key) if cache_key else None
            self.cache_hit = cached is not None
            if cached is not None:
                self.__dict__.update(cached)
                self._backend.program = program
            else:
                self._compile_training()
                if cache_key:
                    compile_cache.store(cache_key, {name: getattr(self, name) for name in self._CACHED})
        self._inference: Lowered | None = None  # the inference graph, built when first needed (`_graph`)
        self._values: dict[int, tuple[list[str], Callable]] = {}
        self._evaluate: Callable | None = None
        self._predict: dict[str, Callable] = {}
        self.compile_seconds = time.perf_counter() - started

    # what `_compile_training` sets, which the compile cache stores (pickled together, so the update function
    # keeps updating these shared variables)
    _CACHED = ("_backend", "train_inputs", "_optimizer_state", "_train", "_generators")

    @property
    def _graph(self) -> Lowered:
        """The inference graph (dropout off, running statistics), over the same shared variables."""
        if self._inference is None:
            self._inference = lower(self.program, self._backend, training=False, optimizations=self.optimizations)
        return self._inference

    def _compile_training(self) -> None:
        """Lower the training graph, add the optimiser's updates and compile the update function."""
        program = self.program
        self._backend = PyTensorBackend(program, initial_values(program), static_shapes=self._jax)
        training = lower(program, self._backend, training=True, optimizations=self.optimizations)
        outputs = [training.objective, *training.losses.values()]
        self.train_inputs = self._needed(training, outputs)
        rule = OPTIMIZERS[program.optimizer].rule
        updates, self._optimizer_state = ops.training_updates(
            rule,
            training.parameters,
            list(program.optimized_parameters().values()),
            training.objective,
            training.learning_rate,
            **program.optimizer_options,
        )
        self._train = self._function(training, self.train_inputs, outputs, updates + training.state_updates)
        # the random generators of the training graph (dropout), whose state a bit-identical resume restores
        self._generators = {
            variable.name: variable
            for variable, _ in training.state_updates
            if isinstance(variable.type, RandomGeneratorType)
        }

    # functions
    @staticmethod
    def _needed(graph: Lowered, outputs: list) -> list[str]:
        used = {id(v) for v in graph_inputs(outputs)}
        return [name for name, var in graph.inputs.items() if id(var) in used]

    def _function(self, graph: Lowered, names: list[str], outputs: list, updates=None) -> Callable:
        inputs = [graph.inputs[n] for n in names]
        if self._jax:
            return jax_mode.ShapedFunction(inputs, outputs, updates or ())
        with _deterministic():
            return pytensor.function(inputs, outputs, updates=updates, mode=self.mode, on_unused_input="ignore")

    def _arguments(self, names: list[str], batch: Arrays, what: str) -> list[np.ndarray]:
        missing = [n for n in names if n not in batch]
        known = {i.name for i in self.program.inputs}
        unknown = [n for n in batch if n not in known]
        if missing or unknown:
            raise ValueError(
                f"{what} takes the inputs {', '.join(names)}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; not inputs of this model: {', '.join(unknown)}" if unknown else "")
            )
        types = {i.name: i.type.dtype for i in self.program.inputs}
        for name in names:
            if name in self._label_classes:
                _check_labels(name, batch[name], self._label_classes[name], what)
        return [np.asarray(batch[n], dtype=input_dtype(self.program, types[n])) for n in names]

    def _losses(self, values: list) -> dict[str, float]:
        terms = zip(self.program.losses, values[1:], strict=True)
        return {"objective": float(values[0]), **{n: float(v) for n, v in terms}}

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
        return {n: np.array(v.get_value(borrow=True)) for n, v in self._backend.parameters.items()}

    def set_parameters(self, values: Arrays) -> None:
        """Replace parameters by name; names and shapes must match."""
        _assign(self._backend.parameters, values, "parameter")

    @property
    def optimizer_state(self) -> dict[str, np.ndarray]:
        """A copy of the optimiser's state, by name: momentum velocities (`features.0.W.velocity`), Adam's moments
        (`….m`, `….v`) and step count (`step`), RMSprop's mean squares (`….mean_square`); empty for plain SGD."""
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

    def value_function(self, value: P.Value) -> tuple[list[str], Callable]:
        """The names of the inputs a program value (e.g. the predictions inside a loss) depends on, and a compiled
        function of those inputs that computes it with the inference graph (no dropout, running statistics)."""
        if id(value) not in self._values:
            program = replace(self.program, heads={"__value__": value})
            graph = lower(program, self._backend, training=False)
            names = self._needed(graph, [graph.heads["__value__"]])
            self._values[id(value)] = names, self._function(graph, names, graph.heads["__value__"])
        return self._values[id(value)]

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The training state: arrays (parameters as `parameters/NAME`, optimiser state as `optimizer/NAME`) and
        JSON-able values (`progress`, `hyperparameters`, `random_state`)."""
        arrays = {f"parameters/{n}": v for n, v in self.parameters.items()}
        arrays.update({f"optimizer/{n}": v for n, v in self.optimizer_state.items()})
        meta = {"progress": self.progress, "hyperparameters": self.hyperparameters, "random_state": self.random_state}
        return arrays, meta

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Put back what `state_dict` took; other arrays and keys (a checkpoint's own) are ignored."""
        self.set_parameters({n.partition("/")[2]: v for n, v in arrays.items() if n.startswith("parameters/")})
        self.set_optimizer_state({n.partition("/")[2]: v for n, v in arrays.items() if n.startswith("optimizer/")})
        self.set_progress(float(meta["progress"]))
        self.set_hyperparameters(**meta["hyperparameters"])
        self.set_random_state(meta["random_state"])

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


def _check_labels(name: str, labels: ArrayLike, classes: int, what: str) -> None:
    """Refuse labels the compiled functions cannot take: outside [0, classes) (they would read past the predictions:
    garbage, or a crash in compiled code) or not whole numbers."""
    values = np.asarray(labels)
    if values.size == 0:
        return
    if not np.issubdtype(values.dtype, np.number) or not np.array_equal(values, np.round(values)):
        raise ValueError(f"{what}: the labels '{name}' must be whole numbers 0 to {classes - 1}")
    low, high = values.min(), values.max()
    if low < 0 or high >= classes:
        raise ValueError(
            f"{what}: the labels '{name}' range over [{low:g}, {high:g}], outside [0, {classes}): "
            f"the model predicts {classes} classes"
        )


def _deterministic() -> Any:
    """PyTensor's settings while specc compiles: Numba without fastmath. With it, LLVM may reassociate floating-point
    arithmetic differently in a fresh compile and in one loaded from Numba's cache, and the same spec and seed ended
    at different numbers depending on the state of the caches; without it, the step is as fast within the noise of
    `bench/run.py --only step`."""
    return pytensor.config.change_flags(numba__fastmath=False)

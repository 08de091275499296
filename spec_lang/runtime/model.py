"""A compiled program: the PyTensor update function with the optimiser's `updates`, an evaluate function returning
every loss term, one predict function per head, and access to parameters, hyperparameters, the training progress,
the optimiser's state and the whole training state (`state_dict`). Training it is `spec_lang.training`'s part:
`spec_lang.CompiledModel` adds `fit` and `metrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytensor
from numpy.typing import ArrayLike
from pytensor.graph.traversal import graph_inputs
from pytensor.tensor.random.type import RandomGeneratorType

from spec_lang import program as P
from spec_lang.library.losses import label_classes
from spec_lang.library.optimizers import OPTIMIZERS
from spec_lang.lowering.passes import Optimizations
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.pytensor.backend import PyTensorBackend
from spec_lang.lowering.walker import Lowered, initial_values, input_dtype, lower
from spec_lang.runtime import compile_cache, jax_mode, linking
from spec_lang.runtime.state import Arrays, TrainingState


class CompiledProgram(TrainingState):
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
    ['hyperparameters', 'progress', 'random_state', 'stage']
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
        self._stage = 0  # the index in `program.plan` of the stage whose phases `train_step` runs
        self._inference: Lowered | None = None  # the inference graph, built when first needed (`_graph`)
        self._values: dict[int, tuple[list[str], Callable]] = {}
        self._evaluate: Callable | None = None
        self._predict: dict[str, Callable] = {}
        self.compile_seconds = time.perf_counter() - started

    # what `_compile_training` sets, which the compile cache stores (pickled together, so the update functions
    # keep updating these shared variables)
    _CACHED = ("_backend", "train_inputs", "_optimizer_state", "_train", "_generators")

    @property
    def _graph(self) -> Lowered:
        """The inference graph (dropout off, running statistics), over the same shared variables."""
        if self._inference is None:
            self._inference = lower(self.program, self._backend, training=False, optimizations=self.optimizations)
        return self._inference

    def _compile_training(self) -> None:
        """Lower the training graph, add each phase's optimiser updates and compile one update function per phase.
        Each returns, before its step, every phase's objective and every loss term."""
        program = self.program
        self._backend = PyTensorBackend(program, initial_values(program), static_shapes=self._jax)
        training = lower(program, self._backend, training=True, optimizations=self.optimizations)
        outputs = self._outputs(training)
        self.train_inputs = self._needed(training, outputs)
        self._optimizer_state: dict[str, Any] = {}
        self._train: dict[str, Callable] = {}
        for lowered in training.phases:
            phase = lowered.phase
            updates, state = ops.training_updates(
                OPTIMIZERS[phase.optimizer].rule,
                lowered.parameters,
                list(program.optimized_parameters(phase).values()),
                lowered.objective,
                lowered.learning_rate,
                **phase.options,
            )
            # one phase's state keeps the names it always had; several phases' are told apart by the phase
            prefix = f"{phase.name}/" if len(program.phases) > 1 else ""
            self._optimizer_state.update({prefix + name: variable for name, variable in state.items()})
            self._train[phase.name] = self._function(
                training, self.train_inputs, outputs, updates + training.state_updates
            )
        # the random generators of the training graph (dropout), whose state a bit-identical resume restores
        self._generators = {
            variable.name: variable
            for variable, _ in training.state_updates
            if isinstance(variable.type, RandomGeneratorType)
        }

    # functions
    @staticmethod
    def _outputs(graph: Lowered) -> list:
        """What the update and evaluate functions return: every phase's objective, then every loss term."""
        return [*(phase.objective for phase in graph.phases), *graph.losses.values()]

    @staticmethod
    def _needed(graph: Lowered, outputs: list) -> list[str]:
        used = {id(v) for v in graph_inputs(outputs)}
        return [name for name, var in graph.inputs.items() if id(var) in used]

    def _function(self, graph: Lowered, names: list[str], outputs: list, updates=None) -> Callable:
        inputs = [graph.inputs[n] for n in names]
        if self._jax:
            return jax_mode.ShapedFunction(inputs, outputs, updates or ())
        with _deterministic():
            return linking.function(inputs, outputs, updates or (), self.mode)  # large graphs: node by node

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
        """`objective` (the first phase's), every loss term, and with several phases each phase's objective by the
        phase's name."""
        phases = self.program.phases
        terms = zip(self.program.losses, values[len(phases) :], strict=True)
        named = {p.name: float(v) for p, v in zip(phases, values, strict=False)} if len(phases) > 1 else {}
        return {"objective": float(values[0]), **{n: float(v) for n, v in terms}, **named}

    def train_step(self, **batch: np.ndarray) -> dict[str, float]:
        """One training step on a batch (inputs by name): each phase of the current stage in order, each taking
        its `repeat` optimiser steps. Returns the objectives and every loss term before the step.

        >>> import numpy as np, spec_lang
        >>> model = spec_lang.load("examples/methods/mcd.dann").compile("FAST_COMPILE")
        >>> rng = np.random.default_rng(0)
        >>> losses = model.train_step(xs=rng.normal(size=(4, 2)), xt=rng.normal(size=(4, 2)), ys=[0, 1, 2, 3])
        >>> sorted(losses)  # each phase's objective by its name, and each loss term
        ['discrepancy', 'label_loss', 'objective', 'step_a', 'step_b', 'step_c']
        """
        arguments = self._arguments(self.train_inputs, batch, "train_step")
        losses: dict[str, float] | None = None
        for name in self.program.plan[self._stage].phases:
            for _ in range(self.program.phase(name).repeat):
                values = self._train[name](*arguments)
                if losses is None:
                    losses = self._losses(values)
        assert losses is not None  # a stage runs at least one phase
        return losses

    def evaluate(self, **batch: np.ndarray) -> dict[str, float]:
        """The objectives and every loss term on a batch, without changing any parameter."""
        if self._evaluate is None:
            self._evaluate = self._function(self._graph, self.train_inputs, self._outputs(self._graph))
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

    def value_function(self, value: P.Value) -> tuple[list[str], Callable]:
        """The names of the inputs a program value (e.g. the predictions inside a loss) depends on, and a compiled
        function of those inputs that computes it with the inference graph (no dropout, running statistics)."""
        if id(value) not in self._values:
            program = replace(self.program, heads={"__value__": value})
            graph = lower(program, self._backend, training=False)
            names = self._needed(graph, [graph.heads["__value__"]])
            self._values[id(value)] = names, self._function(graph, names, graph.heads["__value__"])
        return self._values[id(value)]


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

"""The PyTensor backend of the walker: every step of the lowering becomes PyTensor variables."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt

from spec_lang import program as P
from spec_lang.library.formulas import formulas
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.walker import input_dtype


class PyTensorBackend:
    """Builds PyTensor variables; parameters, hyperparameters and the training progress are shared variables it
    creates. With `static_shapes`, the parameters' types carry their shapes (the JAX mode needs every shape when it
    compiles; the other modes keep the types as they were benchmarked)."""

    def __init__(self, program: P.Program, values: dict[str, np.ndarray], static_shapes: bool = False):
        self.program = program
        self.parameters = {
            p.name: pytensor.shared(values[p.name], name=p.name, shape=values[p.name].shape if static_shapes else None)
            for p in program.params()
        }
        self.hypers = {
            n: pytensor.shared(np.asarray(v, dtype=program.precision), name=n) for n, v in program.hypers.items()
        }
        self.training_progress = pytensor.shared(np.asarray(0.0, dtype=program.precision), name="progress")

    def input(self, name: str, dtype: str, ndim: int):
        return pt.tensor(name, dtype=input_dtype(self.program, dtype), shape=(None,) * ndim)

    def parameter(self, name: str):
        return self.parameters[name]

    def hyper(self, name: str):
        return self.hypers[name]

    def progress(self):
        return self.training_progress

    def const(self, value: float):
        return pt.constant(value, dtype=self.program.precision)

    def label(self, value: int):
        return pt.constant(value, dtype="int32")

    def arith(self, op: str, left, right):
        if op == "neg":
            return -left
        return {"+": left + right, "-": left - right, "*": left * right, "/": left / right}[op]

    def generator(self, index: int):
        return ops.random_generator(self.program.seed, index)

    def seed(self) -> int:
        return self.program.seed

    def op(self, name: str, *args, hint: str | None = None, outputs: int = 1):
        formula = formulas().get(name)
        value = formula(*args, xp=pt) if formula else getattr(ops, name)(*args)
        return self.bind(hint, value) if hint else value

    def bind(self, name: str, value):
        if value.name is None:  # a name for PyTensor's printouts; shared variables keep their own
            value.name = name
        return value

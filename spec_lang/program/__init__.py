"""The checked program: what the checker produces and the lowering, the reports and training read (`types`), the
queries over its graph (`graph`) and its fingerprint (`fingerprint`)."""

from spec_lang.program.graph import (
    ReversalPoint,
    ancestors,
    inputs_of,
    loss_functions,
    parents,
    reversal_points,
    schedules,
    tensors,
)
from spec_lang.program.types import (
    Applied,
    Arith,
    Const,
    Hyper,
    Initializer,
    InputValue,
    LayerInstance,
    LossRef,
    LossTerm,
    Outer,
    ParamSpec,
    Program,
    Reversed,
    Scalar,
    Schedule,
    StackDef,
    TensorType,
    Value,
)

__all__ = ["Applied", "Arith", "Const", "Hyper", "Initializer", "InputValue", "LayerInstance", "LossRef", "LossTerm",
           "Outer", "ParamSpec", "Program", "ReversalPoint", "Reversed", "Scalar", "Schedule", "StackDef", "TensorType",
           "Value", "ancestors", "inputs_of", "loss_functions", "parents", "reversal_points", "schedules", "tensors"]

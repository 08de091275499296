"""The public compiled model: a checked program's compiled functions (`spec_lang.runtime.model.CompiledProgram`)
with `fit` and `metrics` (`spec_lang.training.Trainer`). `Spec.compile` returns one; this module imports PyTensor.
"""

from spec_lang.runtime.model import CompiledProgram
from spec_lang.training.trainer import Trainer


class CompiledModel(Trainer, CompiledProgram):
    """Train, evaluate and predict with a checked program: `train_step`, `evaluate`, `predict`, parameters, state
    and `save`/`load` (from `CompiledProgram`); `fit` and `metrics` (from `Trainer`).

    >>> import spec_lang
    >>> from spec_lang.data import two_moons
    >>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
    >>> isinstance(model, CompiledModel), "target_accuracy" in model.metrics(two_moons())
    (True, True)
    """

"""`fit` and `metrics` as methods: the `Trainer` mixin, which `spec_lang.CompiledModel` adds to a compiled program.
Training drives the model through `spec_lang.training.protocol.Model` and never imports it."""

from __future__ import annotations

from typing import Any, cast

from spec_lang import program as P
from spec_lang.training.dataset import Data, Prepared, prepare
from spec_lang.training.evaluation import metrics
from spec_lang.training.history import History
from spec_lang.training.loop import fit
from spec_lang.training.protocol import Model
from spec_lang.training.roles import Roles, infer_roles


class Trainer:
    """Adds `fit` and `metrics` to a class that satisfies `Model` (such as `CompiledProgram`)."""

    def fit(self: Model, source: Data, target: Data | None = None, **options: Any) -> History:
        """Train on `source` (and `target`) data: dictionaries of arrays by input name, or `.npz`/`.csv` paths.
        Returns a `History` (`.records`, one per epoch, and `.final`). See `spec_lang.training.fit` for the
        options: epochs or steps, batch size, seed, log, checkpoints, resuming, target labels.

        >>> import spec_lang
        >>> from spec_lang.data import two_moons
        >>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
        >>> history = model.fit(two_moons(), epochs=2, batch_size=50, seed=0)  # xs, ys, xt; yt: target labels
        >>> [(record["epoch"], record["step"]) for record in history.records]
        [(1, 3), (2, 6)]
        >>> history.final["status"], 0 <= history.final["target_accuracy"] <= 1
        ('completed', True)
        """
        return fit(self, source, target, **options)

    def metrics(self: Model, source: Data, target: Data | None = None, **options: Any) -> dict[str, float]:
        """Metrics on labelled data, as `fit` records them: the objective and every loss term, source accuracy,
        target accuracy (with target labels), the domain classifier's accuracy and the proxy A-distance; those the
        data allows. See `spec_lang.training.metrics`."""
        return metrics(self, source, target, **options)


class _Uncompiled:
    """What reading the data needs of a model, from the checked program alone: the inputs the objective and the
    loss terms read, in declaration order (the compiled training step's `train_inputs`)."""

    def __init__(self, program: P.Program):
        scalars = [program.objective, *program.losses.values()]
        used = {i.name for s in scalars for value in P.tensors(s) for i in P.inputs_of(value)}
        self.program = program
        self.train_inputs = [i.name for i in program.inputs if i.name in used]


def program_roles(
    program: P.Program, label_head: str | None = None, domain_head: str | None = None, target_input: str | None = None
) -> Roles:
    """The roles of a checked program's inputs (sources, targets, the label and domain heads), as `fit` will infer
    them, without compiling the program."""
    return infer_roles(cast(Model, _Uncompiled(program)), label_head, domain_head, target_input)


def check_data(
    program: P.Program,
    source: Data,
    target: Data | None = None,
    *,
    target_labels: str | None | bool = None,
    label_head: str | None = None,
    domain_head: str | None = None,
    target_input: str | None = None,
) -> Prepared:
    """Read and check training data against a checked program before it is compiled, as `fit` will (the same
    errors, E801 and E802): a bad path or array fails at once, not after minutes of compiling."""
    model = cast(Model, _Uncompiled(program))  # the roles and the data need only `program` and `train_inputs`
    roles = infer_roles(model, label_head, domain_head, target_input)
    return prepare(model, roles, source, target, target_labels, strict=True)

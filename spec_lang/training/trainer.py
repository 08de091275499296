"""`fit` and `metrics` as methods: the `Trainer` mixin, which `spec_lang.CompiledModel` adds to a compiled program.
Training drives the model through `spec_lang.training.protocol.Model` and never imports it."""

from __future__ import annotations

from typing import Any

from spec_lang.training.dataset import Data
from spec_lang.training.evaluation import metrics
from spec_lang.training.history import History
from spec_lang.training.loop import fit
from spec_lang.training.protocol import Model


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

"""Metrics of a model on whole data sets, as `fit` records them after each epoch.

A record holds `epoch`, `step`, `progress`, `objective` and every loss term on the whole data (inference graph: no
dropout), every run-time parameter by name, `lambda` (the first reversal point's λ) and `learning_rate` at that
progress, `source_accuracy`, `target_accuracy` (with target labels), `domain_accuracy` and `proxy_a_distance`.
The proxy A-distance is 2 (1 - 2ε) with ε the error of the model's own domain classifier on the source and target
data (all rows, not held out): a cheap stand-in for the paper's separately trained classifier, which it does not
replace; near 0 means the features no longer tell the domains apart, 2 means they separate them perfectly.

>>> import spec_lang
>>> from spec_lang.data import two_moons
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> values = metrics(model, two_moons())  # xs, ys, xt and the target labels yt
>>> [name for name in values if "accuracy" in name or "distance" in name]
['source_accuracy', 'target_accuracy', 'domain_accuracy', 'proxy_a_distance']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from spec_lang import program as P
from spec_lang.diagnostics import file_error
from spec_lang.semantics.scalars import evaluate
from spec_lang.training.dataset import Data, Prepared, prepare
from spec_lang.training.protocol import Model
from spec_lang.training.roles import Roles, infer_roles, value_key

CHUNK = 4096  # rows per evaluation call


class Evaluator:
    """Metrics of a model on prepared data; compiles the functions it needs once."""

    def __init__(self, model: Model, roles: Roles):
        self.model, self.roles = model, roles
        points = P.reversal_points(model.program)
        self.lam = points[0].lam if points else None
        self.functions: dict[tuple, Callable[..., Any]] = {}

    def _apply(self, value: P.Value, x: np.ndarray) -> np.ndarray:
        """A one-input value applied to `x` (in chunks); values that compute the same on different inputs share one
        compiled function. `x` is prepared data, already of the input's dtype."""
        key = value_key(value, names=False)
        if key not in self.functions:
            self.functions[key] = self.model.value_function(value)[1]
        function = self.functions[key]
        outputs = [function(x[part]) for part in _chunks(len(x))]
        return np.concatenate(outputs) if outputs else np.zeros((0,))

    def schedule_values(self) -> dict[str, float]:
        """Run-time parameters by name, `lambda` and `learning_rate` at the model's current progress."""
        model = self.model
        hypers = model.hyperparameters
        values: dict[str, float] = dict(hypers)
        if self.lam is not None:
            values["lambda"] = evaluate(self.lam, hypers, model.progress)
        values["learning_rate"] = evaluate(model.program.learning_rate, hypers, model.progress)
        return values

    def __call__(self, data: Prepared) -> dict[str, Any]:
        """Every metric the data allows (see the module's description), at the model's current parameters."""
        model, roles = self.model, self.roles
        arrays = data.arrays
        result: dict[str, Any] = {}
        if all(n in arrays for n in model.train_inputs):
            result.update(self._losses(data))
        result.update(self.schedule_values())
        if roles.label_value is not None and roles.classifier_input in data.source and roles.label_input in arrays:
            predictions = self._apply(roles.label_value, data.source[roles.classifier_input])
            result["source_accuracy"] = float(np.mean(predictions.argmax(axis=1) == arrays[roles.label_input]))
        if roles.label_value is not None and data.target_labels is not None and roles.target_input in data.target:
            predictions = self._apply(roles.label_value, data.target[roles.target_input])
            result["target_accuracy"] = float(np.mean(predictions.argmax(axis=1) == data.target_labels))
        if roles.domain_terms and all(t.input in arrays for t in roles.domain_terms):
            accuracy = self._domain_accuracy(arrays)
            result["domain_accuracy"] = accuracy
            result["proxy_a_distance"] = 2 * (1 - 2 * (1 - accuracy))
        return result

    def _domain_accuracy(self, arrays: dict[str, np.ndarray]) -> float:
        """How often the domain classifier (the named domain head, else each term's predictions) tells each domain
        term's input's domain."""
        correct = total = 0
        domain_head = self.roles.domain_head
        head = self.model.program.heads[domain_head] if domain_head else None
        for term in self.roles.domain_terms:
            p = self._apply(term.value if head is None else head, arrays[term.input])
            if term.kind == "bce" or p.ndim == 1 or p.shape[1] == 1:
                hits = (p > 0.5) == (term.target > 0.5)
            else:
                hits = p.argmax(axis=1) == term.target
            correct, total = correct + int(hits.sum()), total + hits.size
        return correct / total if total else math.nan

    def _losses(self, data: Prepared) -> dict[str, float]:
        """The objective and loss terms on all the data: one call when it fits in a chunk, else the mean over
        paired chunks weighted by their source rows."""
        names = self.model.train_inputs
        rows = max([len(a) for a in data.arrays.values()] + [1])
        parts = max(1, math.ceil(rows / CHUNK))
        if parts == 1:
            return self.model.evaluate(**{n: data.arrays[n] for n in names})
        groups = [{n: np.array_split(a, parts)[k] for n, a in data.arrays.items() if n in names} for k in range(parts)]
        weights = np.array([max(len(next(iter(g.values()))), 1) for g in groups], dtype=float)
        values = [self.model.evaluate(**g) for g in groups]
        return {k: float(np.average([v[k] for v in values], weights=weights)) for k in values[0]}


def _chunks(rows: int) -> list[slice]:
    return [slice(i, i + CHUNK) for i in range(0, rows, CHUNK)]


def metrics(
    model: Model,
    source: Data,
    target: Data | None = None,
    *,
    target_labels: str | None | bool = None,
    label_head: str | None = None,
    domain_head: str | None = None,
    target_input: str | None = None,
) -> dict[str, Any]:
    """Metrics of `model` on labelled data (dicts of arrays or `.npz`/`.csv` paths, inputs by name): the objective
    and every loss term (when every input of the training step is there), run-time parameters, `lambda`,
    `learning_rate`, `source_accuracy`, `target_accuracy` (with target labels: `target_labels`, default `yt`),
    `domain_accuracy` and `proxy_a_distance` — those the data allows. `target` defaults to `source`."""
    roles = infer_roles(model, label_head, domain_head, target_input)
    data = prepare(model, roles, source, target, target_labels, strict=False)
    result = Evaluator(model, roles)(data)
    if not any(k in result for k in ("objective", "source_accuracy", "target_accuracy", "domain_accuracy")):
        wanted = ", ".join(dict.fromkeys((*roles.source_inputs, *roles.target_inputs))) or "none"
        raise file_error(
            data.source_name,
            "E801",
            f"no metric can be computed from {data.source_name}: it holds none of the model's "
            f"inputs, or not enough of them",
            f"the inputs are {wanted}",
        )
    return result

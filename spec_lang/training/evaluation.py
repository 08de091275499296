"""Metrics of a model on whole data sets, as `fit` records them after each epoch.

A record holds `epoch`, `step`, `progress`, `objective` and every loss term on the whole data (inference graph: no
dropout), every run-time parameter by name, `lambda` (the first reversal point's λ) and `learning_rate` at that
progress, `source_accuracy`, `target_accuracy` (with target labels), `domain_accuracy` and `proxy_a_distance`.
With several sources (or targets), each one's accuracy is recorded too, as `source_INPUT_accuracy` after the input its
classifier reads (`target_INPUT_accuracy`), and `source_accuracy` (`target_accuracy`) is over all their rows.

The proxy A-distance (Ben-David et al.) is 2 (1 - 2ε) with ε the error of the model's own domain classifier on the
source and target data (all rows, not held out): a cheap stand-in for the paper's separately trained classifier,
which it does not replace; near 0 means the features no longer tell the domains apart, 2 means they separate them
perfectly. It is defined for two domains. With k > 2 domain classes (a k-way softmax domain head), it is the mean
over the k (k - 1) / 2 pairs of domains of the pairwise one-vs-one distance: for domains i and j, ε is the error of
the classifier on the rows of i and j when it chooses between i and j only (the larger of its two probabilities),
so chance is 0 again, as for two domains (the k-way accuracy would make chance 2 (1 - 2 (1 - 1/k)) < 0).

>>> import spec_lang
>>> from spec_lang.data import two_moons
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> values = metrics(model, two_moons())  # xs, ys, xt and the target labels yt
>>> [name for name in values if "accuracy" in name or "distance" in name]
['source_accuracy', 'target_accuracy', 'domain_accuracy', 'proxy_a_distance']
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from spec_lang import program as P
from spec_lang.diagnostics import file_error
from spec_lang.semantics.scalars import evaluate
from spec_lang.training.dataset import Data, Prepared, prepare
from spec_lang.training.protocol import Model
from spec_lang.training.roles import Roles, infer_roles, value_key
from spec_lang.training.validation import validation_for

CHUNK = 4096  # rows per evaluation call


class Evaluator:
    """Metrics of a model on prepared data; compiles the functions it needs once."""

    def __init__(self, model: Model, roles: Roles):
        self.model, self.roles = model, roles
        points = P.reversal_points(model.program)
        self.lam = points[0].lam if points else None
        self.functions: dict[tuple, Callable[..., Any]] = {}

    def apply(self, value: P.Value, x: np.ndarray) -> np.ndarray:
        """A one-input value applied to `x` (in chunks); values that compute the same on different inputs share one
        compiled function. `x` is prepared data, already of the input's dtype."""
        key = value_key(value, names=False)
        if key not in self.functions:
            self.functions[key] = self.model.value_function(value)[1]
        function = self.functions[key]
        outputs = [function(x[part]) for part in _chunks(len(x))]
        return np.concatenate(outputs) if outputs else np.zeros((0,))

    def schedule_values(self) -> dict[str, float]:
        """Run-time parameters by name, `lambda` and `learning_rate` (the first phase's; with several phases, each
        phase's as `PHASE_learning_rate` too) at the model's current progress."""
        model = self.model
        hypers = model.hyperparameters
        values: dict[str, float] = dict(hypers)
        if self.lam is not None:
            values["lambda"] = evaluate(self.lam, hypers, model.progress)
        phases = model.program.phases
        values["learning_rate"] = evaluate(phases[0].learning_rate, hypers, model.progress)
        if len(phases) > 1:  # each phase's, by its name
            rates = {f"{p.name}_learning_rate": evaluate(p.learning_rate, hypers, model.progress) for p in phases}
            values.update(rates)
        return values

    def __call__(self, data: Prepared) -> dict[str, Any]:
        """Every metric the data allows (see the module's description), at the model's current parameters."""
        model, roles = self.model, self.roles
        arrays = data.arrays
        result: dict[str, Any] = {}
        if all(n in arrays for n in model.train_inputs):
            result.update(self._losses(data))
        result.update(self.schedule_values())
        for kind in ("source", "target"):
            result.update(self._accuracies(data, kind))
        if roles.domain_terms and all(t.input in arrays for t in roles.domain_terms):
            outputs = self._domain_outputs(arrays)
            result["domain_accuracy"] = domain_accuracy(outputs)
            result["proxy_a_distance"] = proxy_a_distance(outputs)
        return result

    def _accuracies(self, data: Prepared, kind: str) -> dict[str, float]:
        """`KIND_accuracy` over the parts of one kind with labels, and each part's `KIND_INPUT_accuracy` when there
        are several."""
        label_value = self.roles.label_value
        hits: dict[str, np.ndarray] = {}
        for part in data.sources if kind == "source" else data.targets:
            x, y = part.group.classified, part.group.labels
            labels = part.arrays.get(y) if y is not None else part.labels
            if label_value is not None and x in part.arrays and labels is not None:
                hits[x] = self.apply(label_value, part.arrays[x]).argmax(axis=1) == labels
        if not hits:
            return {}
        result = {f"{kind}_accuracy": float(np.mean(np.concatenate(list(hits.values()))))}
        if len(hits) > 1:
            result.update({f"{kind}_{x}_accuracy": float(np.mean(h)) for x, h in hits.items()})
        return result

    def _domain_outputs(self, arrays: dict[str, np.ndarray]) -> list[tuple[np.ndarray, int]]:
        """The domain classifier's outputs (the named domain head, else each term's predictions) on each domain
        term's input, with that input's domain class."""
        domain_head = self.roles.domain_head
        head = self.model.program.heads[domain_head] if domain_head else None
        outputs = []
        for term in self.roles.domain_terms:
            p = self.apply(term.value if head is None else head, arrays[term.input])
            sigmoid = isinstance(term.target, float)  # bce, bce_domains: a probability of domain 1 per output
            if sigmoid or p.ndim == 1 or p.shape[1] == 1:
                p = p.reshape(-1, 1)
                p = np.concatenate([1 - p, p], axis=1)
            outputs.append((p, int(term.target > 0.5) if sigmoid else int(term.target)))
        return outputs

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


def domain_accuracy(outputs: list[tuple[np.ndarray, int]]) -> float:
    """How often the domain classifier's most probable class is the domain, over all rows; NaN without rows.

    >>> domain_accuracy([(np.array([[0.9, 0.1], [0.4, 0.6]]), 0), (np.array([[0.2, 0.8]]), 1)])
    0.6666666666666666
    """
    hits = [p.argmax(axis=1) == d for p, d in outputs]
    total = sum(h.size for h in hits)
    return sum(int(h.sum()) for h in hits) / total if total else math.nan


def proxy_a_distance(outputs: list[tuple[np.ndarray, int]]) -> float:
    """The proxy A-distance of a domain classifier, from its probabilities on rows of known domains (see the
    module's description): 2 (1 - 2ε) for two domains, the mean of the one-vs-one distances for more; NaN when
    fewer than two domains have rows.

    >>> two = [(np.array([[0.9, 0.1], [0.4, 0.6]]), 0), (np.array([[0.2, 0.8], [0.3, 0.7]]), 1)]
    >>> proxy_a_distance(two)  # ε = 1/4
    1.0
    """
    by_domain: dict[int, list[np.ndarray]] = {}
    for p, d in outputs:
        by_domain.setdefault(d, []).append(p)
    rows = {d: np.concatenate(ps) for d, ps in by_domain.items() if sum(len(p) for p in ps)}
    distances = []
    for i in sorted(rows):
        for j in (j for j in sorted(rows) if j > i):
            wrong = np.sum(rows[i][:, j] > rows[i][:, i]) + np.sum(rows[j][:, i] >= rows[j][:, j])
            error = wrong / (len(rows[i]) + len(rows[j]))
            distances.append(2 * (1 - 2 * error))
    return float(np.mean(distances)) if distances else math.nan


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
    validation: Data | None = None,
    validators: Sequence[str] = (),
) -> dict[str, Any]:
    """Metrics of `model` on labelled data (dicts of arrays or `.npz`/`.csv` paths, inputs by name): the objective
    and every loss term (when every input of the training step is there), run-time parameters, `lambda`,
    `learning_rate`, `source_accuracy`, `target_accuracy` (the oracle, with target labels: `target_labels`, default
    `yt`), `domain_accuracy` and `proxy_a_distance` — those the data allows. `target` defaults to `source`.
    `validators` (names of `spec_lang.library.validators.VALIDATORS`; `source_accuracy` when only `validation` is
    given) adds each one's score as `val_NAME`, reading the labelled source rows of `validation`, else of `source`
    (held out from training, as evaluation data is), and the target rows (see `spec_lang.training.validation`)."""
    roles = infer_roles(model, label_head, domain_head, target_input)
    data = prepare(model, roles, source, target, target_labels, strict=False)
    evaluator = Evaluator(model, roles)
    result = evaluator(data)
    if validators or validation is not None:
        held = source if validation is None else validation
        _, checked = validation_for(model, roles, data, held, validators, 0, trains=False)
        assert checked is not None  # validators or validation data were given
        result.update(checked.scores(evaluator.apply, data))
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

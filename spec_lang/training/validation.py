"""Validators in training and evaluation: held-out labelled source rows (a validation data set, or a fraction of the
source held out, chosen by the seed), the evidence the validators of `spec_lang.library.validators` read, gathered
from a model, and the reverse-validation procedure, which trains a fresh copy of the model.

**Reverse validation** (Ganin et al. 2016, §5.1.2, after Zhong et al. 2010): the model's label classifier labels the
target rows (pseudo-labels); a fresh copy of the model (the spec's initial weights, a new optimiser state) is
trained with the pseudo-labelled target rows as its source and the training source rows as its target, for as many
steps as the run has taken, following the same schedule (progress `i / total` at step i) and batches of the same
size and seed; its accuracy on the held-out source rows is the score. The model's state (parameters, optimiser,
random generators) is put back afterwards, so the run continues as if nothing happened. It costs a training run
per record: about (epochs + 1) / 2 times the run's own steps in all.

>>> import spec_lang
>>> from spec_lang.data import two_moons
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> history = model.fit(two_moons(), epochs=2, batch_size=50, validation=0.2, validators=["snd", "source_accuracy"])
>>> sorted(k for k in history.final if k.startswith("val_")), history.best["validator"]
(['val_snd', 'val_source_accuracy'], 'snd')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from spec_lang import program as P
from spec_lang.diagnostics import did_you_mean, file_error
from spec_lang.library.validators import VALIDATORS, Evidence, ValidatorKind, record_key
from spec_lang.lowering.walker import initial_values
from spec_lang.program.fingerprint import digest
from spec_lang.training.dataset import Data, Part, Prepared, prepare
from spec_lang.training.protocol import Model, prepare_step
from spec_lang.training.roles import Roles
from spec_lang.training.sampler import Sampler

Apply = Callable[[P.Value, np.ndarray], np.ndarray]  # a one-input value applied to rows (`Evaluator.apply`)
DEFAULT = "source_accuracy"  # the validator of a run given validation data and no validator
NEEDS = {  # what a validator may lack, and the hint that says how to give it
    "source": ("held-out labelled source rows", "give --val FILE or --val-fraction 0.1 (validation= in Python)"),
    "target": ("target rows of the label classifier's input type", "give target data with that input"),
    "target_labels": ("target labels: it is the oracle", "give yt in the target data, or --target-labels NAME"),
    "reverse": (
        "to train a fresh model on the target's pseudo-labels",
        "`specc train` and `fit` compute it (not `specc eval`), for a model with one labelled source (its input and "
        "labels alone) and one target input",
    ),
}


def resolve(names: Sequence[str]) -> list[ValidatorKind]:
    """The registry's entries for `names`, in order; an unknown name is an error (E809) suggesting a close one."""
    if isinstance(names, str):
        names = [names]
    unknown = next((n for n in names if n not in VALIDATORS), None)
    if unknown is not None:
        raise file_error(
            None,
            "E809",
            f"unknown validator '{unknown}'",
            did_you_mean(unknown, VALIDATORS) or f"validators: {', '.join(VALIDATORS)}",
        )
    return [VALIDATORS[n] for n in dict.fromkeys(names)]


@dataclass
class Validation:
    """The validators a run computes (the first is the selector) and the held-out labelled source parts they read;
    `batch_size` and `seed` are the run's, for reverse validation."""

    model: Model
    roles: Roles
    kinds: list[ValidatorKind]
    held_out: list[Part] = field(default_factory=list)
    batch_size: int = 32
    seed: int = 0

    @property
    def selector(self) -> ValidatorKind:
        return self.kinds[0]

    def settings(self) -> dict[str, object]:
        """What a resumed run must share: the validators and the held-out rows (their digest)."""
        arrays = {f"{i} {n}": a for i, p in enumerate(self.held_out) for n, a in p.arrays.items()}
        return {"validators": [k.name for k in self.kinds], "validation": digest(arrays) if arrays else None}

    def best(self, record: dict[str, Any], best: dict[str, Any] | None, where: Path | None) -> dict[str, Any] | None:
        """The new best (validator, score, epoch, step, the checkpoint kept `where`) when the selector scores
        `record` better than the `best` so far, else None."""
        kind = self.selector
        key = record_key(kind.name)
        if key not in record or (best is not None and not kind.better(record[key], best["score"])):
            return None
        place = None if where is None else str(where)
        return {
            "validator": kind.name,
            "score": record[key],
            "epoch": record["epoch"],
            "step": record["step"],
            "checkpoint": place,
        }

    def check(self, data: Prepared, trains: bool) -> None:
        """Every validator's evidence can be had from this data (E810, naming what is missing), before any step."""
        roles = self.roles
        held = bool(self.held_out) and roles.label_value is not None
        target = any(p.group.classified in p.arrays and p.rows for p in data.targets) and roles.label_value is not None
        have = {
            "source_probabilities": ("source", held),
            "source_labels": ("source", held),
            "target_probabilities": ("target", target),
            "target_labels": ("target_labels", any(p.labels is not None for p in data.targets)),
            "source_features": ("source", held),
            "target_features": ("target", target),
            "reverse_probabilities": ("reverse", trains and held and target and _reversible(roles)),
        }
        for kind in self.kinds:
            lacking = sorted((have[n][0] for n in kind.needs if not have[n][1]), key=list(NEEDS).index)
            if lacking:
                what, hint = NEEDS[lacking[0]]
                raise file_error(None, "E810", f"the validator '{kind.name}' cannot be computed: it needs {what}", hint)

    def scores(self, apply: Apply, data: Prepared, step: int = 0, total: int = 1) -> dict[str, float]:
        """Each validator's score at the model's current parameters, by record key (the oracle's `target_accuracy`
        is the evaluator's, and left to it)."""
        evidence = self.evidence(apply, data, step, total)
        return {record_key(k.name): float(k.score(evidence)) for k in self.kinds if not k.oracle}

    def evidence(self, apply: Apply, data: Prepared, step: int, total: int) -> Evidence:
        """The arrays the validators need, and no others (the features and the reverse model cost time)."""
        needs = {n for k in self.kinds for n in k.needs}
        label = self.roles.label_value
        assert label is not None  # `check` refused validators without a label classifier
        held = [(p.arrays[p.group.classified or ""], p.arrays[p.group.labels or ""]) for p in self.held_out]
        targets = [p.arrays[p.group.classified] for p in data.targets if p.group.classified in p.arrays]
        evidence = Evidence()
        if held:
            x_held = np.concatenate([x for x, _ in held])
            evidence.source_probabilities = probabilities(apply(label, x_held), label.activation)
            evidence.source_labels = np.concatenate([y for _, y in held])
        if targets:
            x_target = np.concatenate(targets)
            evidence.target_probabilities = probabilities(apply(label, x_target), label.activation)
        if held and targets and "source_features" in needs:
            features = _features(label)
            evidence.source_features = _flat(x_held if features is None else apply(features, x_held))
            evidence.target_features = _flat(x_target if features is None else apply(features, x_target))
        if "reverse_probabilities" in needs:
            evidence.reverse_probabilities = self._reverse(apply, data, step, total)
        return evidence

    def _reverse(self, apply: Apply, data: Prepared, step: int, total: int) -> np.ndarray:
        """Reverse validation's model (see the module's description) on the held-out source rows."""
        model, label = self.model, self.roles.label_value
        assert label is not None
        source, target = data.sources[0], data.targets[0]
        xs, ys, xt = source.group.classified, source.group.labels, target.group.classified
        assert xs is not None and ys is not None and xt is not None  # `_reversible` held when it was checked
        source_x, target_x = source.arrays[xs], target.arrays[xt]
        pseudo = np.argmax(apply(label, target_x), axis=1).astype(source.arrays[ys].dtype)
        arrays, meta = model.state_dict()
        fresh = {f"parameters/{n}": v for n, v in initial_values(model.program).items()}
        fresh.update({n: np.zeros_like(v) for n, v in arrays.items() if n.startswith("optimizer/")})
        try:
            model.load_state_dict(fresh, {**meta, "progress": 0.0, "stage": model.program.plan[0].name})
            sampler = Sampler([len(target_x), len(source_x)], self.batch_size, self.seed)
            for i in range(step):
                rows, other = sampler.batch()
                prepare_step(model, i, total, sampler.per_epoch)
                model.train_step(**{xs: target_x[rows], ys: pseudo[rows], xt: source_x[other]})
                sampler.advance()
            held = np.concatenate([p.arrays[xs] for p in self.held_out])
            return probabilities(apply(label, held), label.activation)
        finally:
            model.load_state_dict(arrays, meta)


def validation_for(
    model: Model,
    roles: Roles,
    data: Prepared,
    validation: Data | float | None,
    validators: Sequence[str],
    seed: int,
    batch_size: int = 32,
    trains: bool = True,
) -> tuple[Prepared, Validation | None]:
    """The data to train on and the run's `Validation`, checked (None when neither `validation` nor `validators`
    is given): `validation` is a data set of held-out labelled source rows, or a fraction of each source's rows to
    hold out (chosen by `seed`; they are then not trained on); without validators, `source_accuracy`."""
    if validation is None and not validators:
        return data, None
    kinds = resolve(validators) if validators else [VALIDATORS[DEFAULT]]
    held: list[Part] = []
    if isinstance(validation, float):
        data, held = hold_out(data, validation, seed)
    elif validation is not None and not isinstance(validation, bool):
        held = [p for p in prepare(model, roles, validation, None, None, strict=False).sources if _labelled(p)]
        if not held:
            where = validation if isinstance(validation, str) else "the validation data"
            raise file_error(
                str(where),
                "E801",
                f"{where} holds no labelled source rows",
                f"validation data needs the label classifier's input and labels: {', '.join(roles.source_inputs)}",
            )
    result = Validation(model, roles, kinds, held, batch_size, seed)
    result.check(data, trains)
    return data, result


def best_path(checkpoint: Path) -> Path:
    """Where a run keeps its best model by the selector: `best.npz` beside a run folder's `checkpoint.npz`, else
    `NAME.best.npz` beside `NAME.npz`.

    >>> best_path(Path("runs/dann/1/checkpoint.npz")).as_posix(), best_path(Path("run.npz")).as_posix()
    ('runs/dann/1/best.npz', 'run.best.npz')
    """
    return checkpoint.with_name("best.npz" if checkpoint.name == "checkpoint.npz" else f"{checkpoint.stem}.best.npz")


def hold_out(data: Prepared, fraction: float, seed: int) -> tuple[Prepared, list[Part]]:
    """Hold out `fraction` of each source's rows (at least one, leaving at least one), chosen by a generator seeded
    with `seed`: the data to train on, and the held-out parts.

    >>> from spec_lang.training.roles import Group
    >>> part = Part("source", Group(("xs", "ys"), "ys", "xs"), {"xs": np.zeros((10, 2)), "ys": np.arange(10)}, "a")
    >>> train, held = hold_out(Prepared([part]), 0.2, seed=0)
    >>> train.parts[0].rows, sorted(held[0].arrays["ys"].tolist())
    (8, [1, 9])
    """
    check_fraction(fraction)
    generator = np.random.Generator(np.random.PCG64([seed, 1]))  # not the batches' generator
    parts, held = [], []
    for part in data.parts:
        if part.kind != "source":
            parts.append(part)
            continue
        if part.rows < 2:
            raise file_error(
                part.where, "E801", f"{part.where} has {part.rows} source rows: none can be held out", "give --val"
            )
        order = generator.permutation(part.rows)
        cut = min(max(1, round(fraction * part.rows)), part.rows - 1)
        keep, out = np.sort(order[cut:]), np.sort(order[:cut])
        parts.append(replace(part, arrays={n: a[keep] for n, a in part.arrays.items()}))
        held.append(replace(part, arrays={n: a[out] for n, a in part.arrays.items()}, where=f"{part.where} (held out)"))
    return Prepared(parts), held


def check_fraction(fraction: float) -> None:
    """A fraction of rows to hold out is above 0 and below 1 (E802)."""
    if not 0 < fraction < 1 or math.isnan(fraction):
        raise file_error(
            None, "E802", f"the validation fraction must be between 0 and 1, got {fraction}", "e.g. --val-fraction 0.1"
        )


def probabilities(outputs: np.ndarray, activation: str | None) -> np.ndarray:
    """The label classifier's outputs as class probabilities: a softmax's as they are, one sigmoid output as two
    classes, anything else (logits) through a softmax."""
    outputs = np.asarray(outputs, dtype=float)
    if activation == "softmax":
        return outputs
    if activation == "sigmoid" and outputs.ndim == 2 and outputs.shape[1] == 1:
        return np.concatenate([1 - outputs, outputs], axis=1)
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _features(label: P.Value) -> P.Value | None:
    """What the label classifier's last stack reads (its features), gradient reversals skipped; None when that is
    the model's input itself."""
    value = label.arg if isinstance(label, P.Applied) else label
    while isinstance(value, P.Reversed):
        value = value.arg
    return None if isinstance(value, P.InputValue) else value


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(len(x), -1)


def _labelled(part: Part) -> bool:
    group = part.group
    return group.labels in part.arrays and group.classified in part.arrays and part.rows > 0


def _reversible(roles: Roles) -> bool:
    """Whether the model's data can swap roles: one source of a classified input and its labels alone, and one
    target of one input of the same type."""
    if len(roles.sources) != 1 or len(roles.targets) != 1:
        return False
    source, target = roles.sources[0], roles.targets[0]
    return set(source.inputs) == {source.labels, source.classified} and target.inputs == (target.classified,)

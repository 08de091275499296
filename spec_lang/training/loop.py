"""Training runs: data mapped onto a spec's inputs, paired source/target batches, schedules fed with the training
progress, metrics per epoch, a JSON-lines log, checkpoints and bit-identical resuming.

Roles, inferred from the checked program:

* the **label classifier** is what a `crossentropy` loss compares with a label input (`ys`): a head computing it
  (`label_probabilities`), else the predictions inside the loss; `label_head=` names a head instead. Two losses
  comparing different predictions with labels make the choice ambiguous: an error asks for `label_head`.
* the **domain classifier** is what the losses behind a gradient-reversal point compare with a constant domain
  (`bce(domain(reverse(fs)), 0)`, `bce(…(ft)…, 1)`, `crossentropy(…, 2)`): each such term gives a domain class
  for one input; `domain_head=` names a head to use instead, fed each domain's inputs.
* **source inputs** are the label input, the label classifier's input and the inputs of the same domain; the
  **target inputs** are the other inputs the training step takes (`xt`). Source inputs are read from the source
  data, target inputs from the target data (from the source data when no target is given).
* **target labels** (evaluation only, never trained on) are the array `target_labels` of the target data, by
  default `yt` when it has one; they are compared with the label classifier applied to the target input of the
  label classifier's input type (`target_input=` picks one when there are several).

An epoch is one pass over the source rows in a shuffled order; each source batch is paired with as many target
rows, drawn from shuffled passes over the target data (recycled when the target is smaller). The order comes from
`numpy.random.Generator(PCG64(seed))`, so the same seed gives the same batches. Before each step the training
progress is set to `step / total steps`, which schedules follow.

Each epoch's record (`History.records`) holds `epoch`, `step`, `progress`, `objective` and every loss term on the
whole data (inference graph: no dropout), every run-time parameter by name, `lambda` (the first reversal point's
λ) and `learning_rate` at that progress, `source_accuracy`, `target_accuracy` (with target labels),
`domain_accuracy` and `proxy_a_distance`. The proxy A-distance is 2 (1 - 2ε) with ε the error of the model's own
domain classifier on the source and target data (all rows, not held out): a cheap stand-in for the paper's
separately trained classifier, which it does not replace; near 0 means the features no longer tell the domains
apart, 2 means they separate them perfectly.

>>> from spec_lang.data import two_moons
>>> import spec_lang
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> roles = infer_roles(model)
>>> roles.label_head, roles.label_input, roles.source_inputs, roles.target_inputs
('label_probabilities', 'ys', ('xs', 'ys'), ('xt',))
>>> values = metrics(model, two_moons())  # xs, ys, xt and the target labels yt
>>> [name for name in values if "accuracy" in name or "distance" in name]
['source_accuracy', 'target_accuracy', 'domain_accuracy', 'proxy_a_distance']
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, TextIO

import numpy as np

from spec_lang import program as P
from spec_lang.runtime.checkpoint import read_checkpoint, write_checkpoint
from spec_lang.data import check_arrays, load_arrays
from spec_lang.diagnostics import SpecError, did_you_mean, file_error
from spec_lang.files import refuse_existing, write_atomic

if TYPE_CHECKING:
    from spec_lang.runtime.model import CompiledModel

Data = Mapping[str, np.ndarray] | str | os.PathLike
DEFAULT_TARGET_LABELS = "yt"
RUN_HINT = ("pass --resume to continue the run that wrote it, --force to start a new run over it (overwrite=True "
            "in Python), or choose another path")
CHUNK = 4096  # rows per evaluation call


# Roles --------------------------------------------------------------------------------------------------------


def _key(value: P.Value, names: bool = True) -> tuple:
    """What a value computes, as nested tuples; reversal is the identity forward. With `names` False, the inputs are
    anonymous, so a stack chain applied to xs and to xt gives the same key."""
    match value:
        case P.InputValue():
            return ("input", value.name if names else None)
        case P.Reversed():
            return _key(value.arg, names)
        case P.Outer():
            return ("outer", _key(value.features, names), _key(value.predictions, names))
    return ("stack", value.stack, _key(value.arg, names))


def _reversed(program: P.Program, value: P.Value) -> bool:
    return any(isinstance(a, P.Reversed) or (isinstance(a, P.Applied) and any(
        layer.kind == "reverse" for layer in program.stack(a.stack).layers)) for a in P.ancestors(value))


@dataclass(frozen=True)
class DomainTerm:
    """One term of a domain loss: the classifier's predictions for one input, and that input's domain class."""

    input: str
    target: float | int
    kind: str  # "bce" | "crossentropy"
    value: P.Value


@dataclass(frozen=True)
class Roles:
    """What the training loop and the metrics read from a program (see the module's description)."""

    label_input: str | None
    label_head: str | None
    label_value: P.Value | None
    classifier_input: str | None
    domain_head: str | None
    domain_terms: tuple[DomainTerm, ...]
    source_inputs: tuple[str, ...]
    target_inputs: tuple[str, ...]
    target_input: str | None
    target_input_choices: tuple[str, ...] = ()


def infer_roles(model: CompiledModel, label_head: str | None = None, domain_head: str | None = None,
                target_input: str | None = None) -> Roles:
    """The label classifier, the domain classifier, the source and target inputs of a compiled model."""
    program = model.program
    heads = program.heads
    for name, what in ((label_head, "--label-head"), (domain_head, "--domain-head")):
        if name is not None and name not in heads:
            raise file_error(None, "E802", f"{what} {name}: the model has no head '{name}'",
                             did_you_mean(name, heads) or f"heads: {', '.join(heads) or 'none'}")
    terms = [t for loss in program.losses.values() for t in P.loss_functions(loss)]
    label_terms = [(t.labels.name, t.predictions) for t in terms
                   if isinstance(t, P.CrossEntropy) and isinstance(t.labels, P.InputValue)]
    label_input = label_value = chosen_head = None
    if label_head is not None:
        label_value, chosen_head = heads[label_head], label_head
        exact = [y for y, v in label_terms if _key(v) == _key(label_value)]
        similar = [y for y, v in label_terms if _key(v, False) == _key(label_value, False)]
        inputs = list(dict.fromkeys(exact or similar or [y for y, _ in label_terms]))
        if len(inputs) > 1:
            raise file_error(None, "E802",
                             f"cannot tell which labels head '{label_head}' predicts: {', '.join(inputs)}",
                             "compare the head with its labels in a crossentropy loss")
        label_input = inputs[0] if inputs else None
    elif label_terms:
        distinct = list({(y, _key(v)): (y, v) for y, v in label_terms}.values())
        if len(distinct) > 1:
            described = "; ".join(f"'{y}' with {_describe(v)}" for y, v in distinct)
            raise file_error(None, "E802",
                             f"cannot tell which head is the label classifier: crossentropy losses compare "
                             f"{described}", "name it with --label-head NAME (label_head= in Python)")
        label_input, label_value = distinct[0]
        chosen_head = next((n for n, v in heads.items() if _key(v) == _key(label_value)), None)
        if chosen_head is not None:
            label_value = heads[chosen_head]
    classifier_input = None
    if label_value is not None:
        inputs = [i.name for i in P.inputs_of(label_value)]
        classifier_input = inputs[0] if len(set(inputs)) == 1 else None

    domain_terms = []
    for t in terms:
        if isinstance(t, P.BinaryCrossEntropy) and isinstance(t.target, float):
            kind, target = "bce", t.target
        elif isinstance(t, P.CrossEntropy) and isinstance(t.labels, int):
            kind, target = "crossentropy", t.labels
        else:
            continue
        inputs = {i.name for i in P.inputs_of(t.predictions)}
        if len(inputs) == 1 and _reversed(program, t.predictions):
            domain_terms.append(DomainTerm(inputs.pop(), target, kind, t.predictions))
    if domain_head is not None:
        if not domain_terms:
            raise file_error(None, "E802",
                             f"--domain-head {domain_head}: the model has no domain loss (a bce or crossentropy "
                             "against a constant domain behind a gradient reversal)", "leave --domain-head out")
        if len({i.name for i in P.inputs_of(heads[domain_head])}) != 1:
            raise file_error(None, "E802", f"--domain-head {domain_head}: the head reads several inputs",
                             "name a head of one input, e.g. domain(fs)")
    else:
        keys = {_key(t.value, False) for t in domain_terms}
        domain_head = next((n for n, v in heads.items() if _key(v, False) in keys), None)

    train = list(model.train_inputs)
    if label_input is None and classifier_input is None:
        source = tuple(train)
    else:
        domains = {t.input: t.target for t in domain_terms}
        home = domains.get(classifier_input, object())
        source = tuple(n for n in train if n in (label_input, classifier_input) or domains.get(n, None) == home)
    target = tuple(n for n in train if n not in source)
    types = {i.name: i.type for i in program.inputs}
    choices = tuple(n for n in target if classifier_input and types[n] == types[classifier_input])
    if target_input is not None:
        if target_input not in types:
            raise file_error(None, "E802", f"--target-input {target_input}: the model has no input '{target_input}'",
                             did_you_mean(target_input, types) or f"target inputs: {', '.join(target) or 'none'}")
    elif len(choices) == 1:
        target_input = choices[0]
    return Roles(label_input, chosen_head, label_value, classifier_input, domain_head, tuple(domain_terms),
                 source, target, target_input, choices)


def _describe(value: P.Value) -> str:
    match value:
        case P.InputValue():
            return value.name
        case P.Reversed():
            return f"reverse({_describe(value.arg)})"
        case P.Outer():
            return f"outer({_describe(value.features)}, {_describe(value.predictions)})"
    return f"{value.stack}({_describe(value.arg)})"


# Data ---------------------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """Checked arrays by input name, split into the source and target groups, with the target labels."""

    source: dict[str, np.ndarray]
    target: dict[str, np.ndarray]
    target_labels: np.ndarray | None
    source_name: str
    target_name: str

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {**self.source, **self.target}

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        extra = {} if self.target_labels is None else {"target labels": self.target_labels}
        for name, array in sorted({**self.arrays, **extra}.items()):
            digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def _read(data: Data, what: str) -> tuple[dict[str, np.ndarray], str]:
    if isinstance(data, (str, os.PathLike)):
        return load_arrays(data), str(data)
    if isinstance(data, Mapping):
        return dict(data), f"the {what} arrays"
    raise TypeError(f"{what} data is a dict of arrays or a path to a .npz/.csv file, got {type(data).__name__}")


def _rows(arrays: dict[str, np.ndarray], where: str) -> int:
    counts = {n: len(a) for n, a in arrays.items()}
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"'{n}' {c}" for n, c in counts.items())
        raise file_error(where, "E801", f"the arrays of {where} have different numbers of rows: {listed}",
                         "rows are examples: each input of a domain needs one row per example")
    return next(iter(counts.values()), 0)


def prepare(model: CompiledModel, roles: Roles, source: Data, target: Data | None = None,
            target_labels: str | None | bool = None, strict: bool = True) -> Prepared:
    """Read and check the data: source inputs from `source`, target inputs from `target` (or `source`), target
    labels. `strict` (training): every input the training step takes must be there; otherwise (metrics) those
    present are taken."""
    program = model.program
    source_arrays, source_name = _read(source, "source")
    target_arrays, target_name = (source_arrays, source_name) if target is None else _read(target, "target")
    source_names = [n for n in roles.source_inputs if strict or n in source_arrays]
    target_names = [n for n in roles.target_inputs if strict or n in target_arrays]
    checked_source = check_arrays(program, source_arrays, source_names, source_name)
    checked_target = check_arrays(program, target_arrays, target_names, target_name)
    _rows(checked_source, source_name)
    rows = _rows(checked_target, target_name)
    if strict and roles.source_inputs and not len(next(iter(checked_source.values()))):
        raise file_error(source_name, "E801", f"{source_name} has no rows", "training needs at least one example")
    if strict and roles.target_inputs and not rows:
        raise file_error(target_name, "E801", f"{target_name} has no rows",
                         "training needs at least one target example")
    labels = None
    automatic = target_labels is None or target_labels is True
    name = DEFAULT_TARGET_LABELS if automatic else target_labels
    if automatic and (name not in target_arrays or roles.label_input is None or not roles.target_inputs):
        name = None  # the default name, absent or unusable: no target accuracy
    if target_labels is not False and name:
        labels = _target_labels(program, roles, target_arrays, name, target_name, checked_target)
    return Prepared(checked_source, checked_target, labels, source_name, target_name)


def _target_labels(program: P.Program, roles: Roles, arrays: dict[str, np.ndarray], name: str, where: str,
                   target: dict[str, np.ndarray]) -> np.ndarray:
    if name not in arrays:
        raise file_error(where, "E801", f"{where} has no array '{name}' for the target labels",
                         f"arrays in the file: {', '.join(sorted(arrays)) or 'none'}")
    if roles.label_input is None:
        raise file_error(None, "E802",
                         "target labels were given, but the model has no label classifier to compare them with",
                         "a crossentropy loss against a label input defines it")
    if roles.target_input is None:
        choices = roles.target_input_choices
        raise file_error(None, "E802", f"cannot tell which target input the target labels '{name}' belong to"
                         + (f": {', '.join(choices)}" if choices else ""),
                         "name it with --target-input NAME (target_input= in Python)" if choices
                         else f"no target input has the type of the label classifier's input "
                              f"'{roles.classifier_input}'")
    labels = np.asarray(arrays[name])
    bound = next(i.bound for i in program.inputs if i.name == roles.label_input)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.number) or not np.array_equal(labels, np.round(labels)):
        raise file_error(where, "E801",
                         f"target labels '{name}' in {where} must be a vector of whole numbers, got shape "
                         f"{list(labels.shape)} of {labels.dtype}", "labels are whole numbers 0, 1, …")
    if bound is not None and labels.size and (labels.min() < 0 or labels.max() >= bound):
        raise file_error(where, "E801",
                         f"target labels '{name}' in {where} range over [{labels.min()}, {labels.max()}], "
                         f"outside [0, {bound})", f"'{roles.label_input}' is declared `< {bound}`")
    if roles.target_input in target and len(labels) != len(target[roles.target_input]):
        raise file_error(where, "E801", f"target labels '{name}' in {where} have {len(labels)} rows, but "
                         f"'{roles.target_input}' has {len(target[roles.target_input])}",
                         "one label per target example")
    return labels.astype("int32")


# Metrics ------------------------------------------------------------------------------------------------------


class Evaluator:
    """Metrics of a model on prepared data; compiles the functions it needs once."""

    def __init__(self, model: CompiledModel, roles: Roles):
        self.model, self.roles = model, roles
        program = model.program
        points = P.reversal_points(program)
        self.lam = points[0].lam if points else None
        self.functions: dict[tuple, tuple] = {}

    def _apply(self, value: P.Value, x: np.ndarray) -> np.ndarray:
        """A one-input value applied to `x` (in chunks); values that compute the same on different inputs share one
        compiled function."""
        key = _key(value, names=False)
        if key not in self.functions:
            self.functions[key] = self.model.value_function(value)
        names, function = self.functions[key]
        outputs = [function(*self.model._arguments(names, {names[0]: x[part]}, "metrics"))
                   for part in _chunks(len(x))]
        return np.concatenate(outputs) if outputs else np.zeros((0,))

    def schedule_values(self) -> dict[str, float]:
        """Run-time parameters by name, `lambda` and `learning_rate` at the model's current progress."""
        model, program = self.model, self.model.program
        hypers = model.hyperparameters
        values: dict[str, float] = dict(hypers)
        if self.lam is not None:
            values["lambda"] = P.evaluate(self.lam, hypers, model.progress)
        values["learning_rate"] = P.evaluate(program.learning_rate, hypers, model.progress)
        return values

    def __call__(self, data: Prepared) -> dict[str, Any]:
        model, roles = self.model, self.roles
        arrays = data.arrays
        result: dict[str, Any] = {}
        if all(n in arrays for n in model.train_inputs):
            result.update(self._losses(data))
        result.update(self.schedule_values())
        if roles.label_value is not None and roles.classifier_input in data.source and roles.label_input in arrays:
            predictions = self._apply(roles.label_value, data.source[roles.classifier_input])
            result["source_accuracy"] = float(np.mean(predictions.argmax(axis=1) == arrays[roles.label_input]))
        if data.target_labels is not None and roles.target_input in data.target:
            predictions = self._apply(roles.label_value, data.target[roles.target_input])
            result["target_accuracy"] = float(np.mean(predictions.argmax(axis=1) == data.target_labels))
        terms = roles.domain_terms
        if terms and all(t.input in arrays for t in terms):
            correct = total = 0
            head = model.program.heads[roles.domain_head] if roles.domain_head else None
            for term in terms:
                p = self._apply(term.value if head is None else head, arrays[term.input])
                if term.kind == "bce" or p.ndim == 1 or p.shape[1] == 1:
                    hits = (p > 0.5) == (term.target > 0.5)
                else:
                    hits = p.argmax(axis=1) == term.target
                correct, total = correct + int(hits.sum()), total + hits.size
            accuracy = correct / total if total else math.nan
            result["domain_accuracy"] = accuracy
            result["proxy_a_distance"] = 2 * (1 - 2 * (1 - accuracy))
        return result

    def _losses(self, data: Prepared) -> dict[str, float]:
        """The objective and loss terms on all the data: one call when it fits in a chunk, else the mean over
        paired chunks weighted by their source rows."""
        names = self.model.train_inputs
        rows = max([len(a) for a in data.arrays.values()] + [1])
        parts = max(1, math.ceil(rows / CHUNK))
        if parts == 1:
            return self.model.evaluate(**{n: data.arrays[n] for n in names})
        groups = [{n: np.array_split(a, parts)[k] for n, a in data.arrays.items() if n in names}
                  for k in range(parts)]
        weights = np.array([max(len(next(iter(g.values()))), 1) for g in groups], dtype=float)
        values = [self.model.evaluate(**g) for g in groups]
        return {k: float(np.average([v[k] for v in values], weights=weights)) for k in values[0]}


def _chunks(rows: int) -> list[slice]:
    return [slice(i, i + CHUNK) for i in range(0, rows, CHUNK)]


def metrics(model: CompiledModel, source: Data, target: Data | None = None, *, target_labels: str | None | bool = None,
            label_head: str | None = None, domain_head: str | None = None,
            target_input: str | None = None) -> dict[str, Any]:
    """Metrics of `model` on labelled data (dicts of arrays or `.npz`/`.csv` paths, inputs by name): the objective
    and every loss term (when every input of the training step is there), run-time parameters, `lambda`,
    `learning_rate`, `source_accuracy`, `target_accuracy` (with target labels: `target_labels`, default `yt`),
    `domain_accuracy` and `proxy_a_distance` — those the data allows. `target` defaults to `source`."""
    roles = infer_roles(model, label_head, domain_head, target_input)
    data = prepare(model, roles, source, target, target_labels, strict=False)
    result = Evaluator(model, roles)(data)
    if not any(k in result for k in ("objective", "source_accuracy", "target_accuracy", "domain_accuracy")):
        wanted = ", ".join(dict.fromkeys((*roles.source_inputs, *roles.target_inputs))) or "none"
        raise file_error(data.source_name, "E801",
                         f"no metric can be computed from {data.source_name}: it holds none of the model's "
                         f"inputs, or not enough of them", f"the inputs are {wanted}")
    return result


# The training loop --------------------------------------------------------------------------------------------


@dataclass
class History:
    """What `fit` recorded: `records`, one per epoch (and one for a last partial epoch), and `final`, the record
    at the end of training with `final: True` and `status` ("completed" or "interrupted")."""

    records: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    checkpoint: Path | None = None

    def __repr__(self) -> str:
        return f"History({len(self.records)} records, final step {self.final and self.final.get('step')})"


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT/SIGTERM (or a KeyboardInterrupt from a callback) between two steps; a checkpoint
    of that step was written when a checkpoint path was given. Carries the history so far."""

    def __init__(self, history: History, step: int, total: int, signal_number: int | None):
        self.history, self.step, self.total, self.signal_number = history, step, total, signal_number
        where = f"; checkpoint written to {history.checkpoint}" if history.checkpoint else ""
        super().__init__(f"training interrupted after step {step} of {total}{where}")


class _Abort(KeyboardInterrupt):
    """A second SIGINT/SIGTERM: stop at once, possibly inside a step, so write no checkpoint."""


@contextmanager
def _stop_signals() -> Iterator[dict[str, int | None]]:
    """While training, SIGINT and SIGTERM ask the loop to stop after the current step (a second one stops at once,
    without a checkpoint). Only in the main thread, where Python handles signals."""
    flag: dict[str, int | None] = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag["signal"] is not None:
            raise _Abort
        flag["signal"] = signum

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


class _Display:
    """A progress line on a terminal (rewritten in place, at most ten times a second), or a plain line per epoch
    on any other stream."""

    def __init__(self, stream: TextIO | None, total: int, per_epoch: int, losses: list[str]):
        self.stream, self.total, self.per_epoch, self.losses = stream, total, per_epoch, ["objective", *losses]
        self.tty = bool(stream) and hasattr(stream, "isatty") and stream.isatty()
        self.epochs = math.ceil(total / per_epoch)
        self.shown = 0.0

    def step(self, epoch: int, step: int, losses: dict[str, float], schedule: Callable[[], dict[str, float]]) -> None:
        if not self.tty or (time.monotonic() - self.shown < 0.1 and step != self.total):
            return
        self.shown = time.monotonic()
        values = schedule()
        width = 20
        done = int(width * step / self.total)
        text = (f"\repoch {epoch}/{self.epochs} [{'#' * done}{'.' * (width - done)}] step {step}/{self.total} "
                + " ".join(f"{k} {v:.4g}" for k, v in losses.items()) + _schedule_text(values))
        self.stream.write(text + "\x1b[K")
        self.stream.flush()

    def record(self, record: dict[str, Any]) -> None:
        if self.stream is None:
            return
        shown = [(k, k) for k in self.losses if k in record] + [(short, k) for short, k in _SHORT if k in record]
        text = (f"epoch {record['epoch']}/{self.epochs} step {record['step']}/{self.total} "
                + " ".join(f"{short} {record[k]:.4g}" for short, k in shown) + _schedule_text(record))
        self.stream.write(("\r" if self.tty else "") + text + ("\x1b[K" if self.tty else "") + "\n")
        self.stream.flush()


_SHORT = (("source_acc", "source_accuracy"), ("target_acc", "target_accuracy"), ("domain_acc", "domain_accuracy"),
          ("PAD", "proxy_a_distance"))


def _schedule_text(values: Mapping[str, Any]) -> str:
    parts = [f"λ {values['lambda']:.4g}"] if "lambda" in values else []
    return "".join(f" {p}" for p in parts + [f"lr {values['learning_rate']:.4g}"])


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise file_error(None, "E802", f"{what} must be a whole number of at least 1, got {value!r}",
                         "e.g. 1, 32 or 100")
    return int(value)


def fit(model: CompiledModel, source: Data, target: Data | None = None, *, epochs: int | None = None,
        steps: int | None = None, batch_size: int = 32, seed: int = 0, log: str | os.PathLike | None = None,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None, resume: bool = False,
        overwrite: bool = False, target_labels: str | None | bool = None, label_head: str | None = None,
        domain_head: str | None = None, target_input: str | None = None, verbose: bool | TextIO = False,
        callback: Callable[[dict[str, Any]], None] | None = None) -> History:
    """Train `model` from its current parameters (see the module's description for roles, batches and records).

    `epochs` (default 10) or `steps` sets the length; `seed` the batch order. `log`: a JSON-lines file, one record
    per epoch and a final record. `checkpoint`: a `.npz` written every `checkpoint_every` steps and at the end;
    `resume=True` continues the run saved there, ending with exactly the parameters of an uninterrupted run.
    Existing log and checkpoint files of a new run are refused unless `overwrite`. `verbose`: True or a stream
    for progress output. `callback(info)` runs after every step with the step's losses.

    A non-finite loss stops training with an error naming the step and the term; the last checkpoint written stays
    as it was. SIGINT/SIGTERM (or KeyboardInterrupt from `callback`) stop after the current step, write a
    checkpoint and raise `Interrupted`.
    """
    if epochs is not None and steps is not None:
        raise file_error(None, "E802", "give epochs or steps, not both",
                         "epochs count passes over the source data, steps count batches: choose one")
    batch_size = _positive(batch_size, "the batch size")
    if checkpoint_every is not None:
        checkpoint_every = _positive(checkpoint_every, "checkpoint_every")
        if checkpoint is None:
            raise file_error(None, "E802", "checkpoint_every needs a checkpoint path", "pass --checkpoint PATH")
    if resume and checkpoint is None:
        raise file_error(None, "E802", "resume needs the checkpoint to resume from", "pass --checkpoint PATH")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise file_error(None, "E802", f"the seed must be a whole number, got {seed!r}", "e.g. seed=0")
    roles = infer_roles(model, label_head, domain_head, target_input)
    data = prepare(model, roles, source, target, target_labels, strict=True)
    source_rows = len(next(iter(data.source.values())))
    target_rows = len(next(iter(data.target.values()))) if data.target else 0
    per_epoch = math.ceil(source_rows / batch_size)
    total = _positive(steps, "steps") if steps is not None else per_epoch * _positive(
        10 if epochs is None else epochs, "epochs")
    run = {"batch_size": batch_size, "seed": int(seed), "total_steps": total, "data": data.fingerprint(),
           "source_inputs": list(roles.source_inputs), "target_inputs": list(roles.target_inputs)}
    checkpoint_path = None if checkpoint is None else Path(checkpoint)
    log_path = None if log is None else Path(log)
    stream = sys.stderr if verbose is True else (verbose or None)
    display = _Display(stream, total, per_epoch, list(model.program.losses))
    evaluate = Evaluator(model, roles)
    history = History(checkpoint=checkpoint_path)

    generator = np.random.Generator(np.random.PCG64(int(seed)))
    step, epoch, position = 0, 0, per_epoch
    source_order = target_order = np.zeros(0, dtype=np.int64)
    if resume:
        if not checkpoint_path.is_file():
            raise file_error(str(checkpoint_path), "E803", f"cannot resume: {checkpoint_path} does not exist",
                             "drop --resume to start a new run")
        saved = read_checkpoint(checkpoint_path, model.program)
        stored_run = saved.meta.get("run", {})
        changed = [k for k in run if stored_run.get(k) != run[k]]
        if changed:
            described = "; ".join(f"{k}: {_short(stored_run.get(k))} in the checkpoint, {_short(run[k])} now"
                                  for k in changed)
            raise file_error(str(checkpoint_path), "E806",
                             f"cannot resume from {checkpoint_path}: the run differs ({described})",
                             "resume with the same data, batch size, seed and epochs/steps")
        saved.restore(model)
        step, epoch, position = saved.meta["step"], saved.meta["epoch"], saved.meta["position"]
        generator.bit_generator.state = saved.meta["sampler"]
        source_order, target_order = saved.run_arrays["source_order"], saved.run_arrays["target_order"]
        history.records = list(saved.meta["history"])
        if log_path is not None:
            _write_lines(log_path, history.records)
    else:
        for path in (checkpoint_path, log_path):
            if path is not None:
                refuse_existing(path, overwrite, RUN_HINT)
        if log_path is not None:
            _write_lines(log_path, [])

    def save() -> None:
        if checkpoint_path is None:
            return
        bad = [n for n, v in model.parameters.items() if not np.isfinite(v).all()]
        if bad:
            raise _diverged(step, epoch, f"parameter '{bad[0]}'", "not finite", checkpoint_path, log_path)
        meta = {"run": run, "step": step, "epoch": epoch, "position": position,
                "sampler": generator.bit_generator.state, "history": history.records}
        write_checkpoint(checkpoint_path, model, meta, {"source_order": source_order, "target_order": target_order})

    def record() -> dict[str, Any]:
        model.set_progress(step / total)
        values = evaluate(data)
        bad = next((k for k in model.program.losses if not math.isfinite(values.get(k, 0.0))), None)
        if bad is not None or not math.isfinite(values.get("objective", 0.0)):
            raise _diverged(step, epoch, f"loss term '{bad or 'objective'}'", f"{values.get(bad or 'objective')}",
                            checkpoint_path, log_path, "on the whole data")
        return {"epoch": epoch, "step": step, "progress": step / total, **values}

    with _stop_signals() as stop:
        try:
            while step < total:
                if stop["signal"] is not None:
                    raise KeyboardInterrupt
                if position >= per_epoch:
                    source_order = generator.permutation(source_rows)
                    if target_rows:
                        passes = math.ceil(source_rows / target_rows)
                        target_order = np.concatenate([generator.permutation(target_rows) for _ in range(passes)])
                        target_order = target_order[:source_rows]
                    epoch, position = epoch + 1, 0
                rows = source_order[position * batch_size:(position + 1) * batch_size]
                batch = {n: a[rows] for n, a in data.source.items()}
                if target_rows:
                    paired = target_order[position * batch_size:position * batch_size + len(rows)]
                    batch.update({n: a[paired] for n, a in data.target.items()})
                model.set_progress(step / total)
                losses = model.train_step(**batch)
                terms = [k for k in losses if k != "objective"] + ["objective"]
                bad = next((k for k in terms if not math.isfinite(losses[k])), None)
                if bad is not None:
                    raise _diverged(step + 1, epoch, "objective" if bad == "objective" else f"loss term '{bad}'",
                                    f"{losses[bad]}", checkpoint_path, log_path)
                step, position = step + 1, position + 1
                display.step(epoch, step, losses, evaluate.schedule_values)
                if position == per_epoch:
                    history.records.append(record())
                    _append(log_path, history.records[-1])
                    display.record(history.records[-1])
                if checkpoint_every and step % checkpoint_every == 0 and step < total:
                    save()
                if callback is not None:
                    callback({"step": step, "epoch": epoch, "progress": step / total, **losses})
        except _Abort:
            raise
        except KeyboardInterrupt:  # asked for by a signal, between steps, or raised by the callback
            interrupted = True
        else:
            interrupted = False
    if interrupted:
        save()
        final = {**record(), "final": True, "status": "interrupted"}
        history.final = final
        _append(log_path, final)
        model.set_progress(step / total)
        raise Interrupted(history, step, total, stop["signal"])
    if not history.records or history.records[-1]["step"] != step:
        history.records.append(record())
        _append(log_path, history.records[-1])
        display.record(history.records[-1])
    model.set_progress(step / total)
    history.final = {**history.records[-1], "final": True, "status": "completed"}
    save()
    _append(log_path, history.final)
    return history


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 24 else text[:12] + "…"


def _diverged(step: int, epoch: int, what: str, value: str, checkpoint: Path | None, log: Path | None,
              where: str = "") -> SpecError:
    _append(log, {"final": True, "status": "diverged", "step": step, "epoch": epoch, "term": what, "value": value})
    kept = (f"the last good checkpoint, {checkpoint}, was kept" if checkpoint is not None and checkpoint.exists()
            else "no checkpoint was written")
    return file_error(None, "E805", f"training diverged at step {step} (epoch {epoch}): {what} is {value}"
                      + (f" {where}" if where else ""),
                      f"{kept}; lower the learning rate or clip gradients (clip_norm) and train again")


def _write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    """Write a JSON-lines file atomically."""
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def _append(path: Path | None, record: dict[str, Any]) -> None:
    if path is not None:
        with path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(record) + "\n")

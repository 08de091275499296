"""Training data: arrays (dicts or `.npz`/`.csv` files) read, checked against the program's inputs and split into
the source inputs, the target inputs and the target labels (see `spec_lang.training.roles`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from spec_lang import program as P
from spec_lang.data import check_arrays, load_arrays
from spec_lang.diagnostics import file_error
from spec_lang.program.fingerprint import digest
from spec_lang.training.protocol import Model
from spec_lang.training.roles import Roles

Data = Mapping[str, np.ndarray] | str | os.PathLike
DEFAULT_TARGET_LABELS = "yt"


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

    @property
    def source_rows(self) -> int:
        return len(next(iter(self.source.values())))

    @property
    def target_rows(self) -> int:
        return len(next(iter(self.target.values()))) if self.target else 0

    def fingerprint(self) -> str:
        """The digest of every array, target labels included: a resumed run must read the same data."""
        extra = {} if self.target_labels is None else {"target labels": self.target_labels}
        return digest({**self.arrays, **extra})


def prepare(
    model: Model,
    roles: Roles,
    source: Data,
    target: Data | None = None,
    target_labels: str | None | bool = None,
    strict: bool = True,
) -> Prepared:
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
        raise file_error(
            target_name, "E801", f"{target_name} has no rows", "training needs at least one target example"
        )
    labels = None
    if target_labels is None or target_labels is True:  # the default name: absent or unusable, no target accuracy
        if DEFAULT_TARGET_LABELS in target_arrays and roles.label_input is not None and roles.target_inputs:
            labels = _target_labels(program, roles, target_arrays, DEFAULT_TARGET_LABELS, target_name, checked_target)
    elif target_labels:
        labels = _target_labels(program, roles, target_arrays, target_labels, target_name, checked_target)
    return Prepared(checked_source, checked_target, labels, source_name, target_name)


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
        raise file_error(
            where,
            "E801",
            f"the arrays of {where} have different numbers of rows: {listed}",
            "rows are examples: each input of a domain needs one row per example",
        )
    return next(iter(counts.values()), 0)


def _target_labels(
    program: P.Program,
    roles: Roles,
    arrays: dict[str, np.ndarray],
    name: str,
    where: str,
    target: dict[str, np.ndarray],
) -> np.ndarray:
    """The target labels `name` of the target data, checked against the label input's bound and the target rows."""
    if name not in arrays:
        raise file_error(
            where,
            "E801",
            f"{where} has no array '{name}' for the target labels",
            f"arrays in the file: {', '.join(sorted(arrays)) or 'none'}",
        )
    if roles.label_input is None:
        raise file_error(
            None,
            "E802",
            "target labels were given, but the model has no label classifier to compare them with",
            "a crossentropy loss against a label input defines it",
        )
    if roles.target_input is None:
        choices = roles.target_input_choices
        raise file_error(
            None,
            "E802",
            f"cannot tell which target input the target labels '{name}' belong to"
            + (f": {', '.join(choices)}" if choices else ""),
            "name it with --target-input NAME (target_input= in Python)"
            if choices
            else f"no target input has the type of the label classifier's input '{roles.classifier_input}'",
        )
    labels = np.asarray(arrays[name])
    bound = next(i.bound for i in program.inputs if i.name == roles.label_input)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.number) or not np.array_equal(labels, np.round(labels)):
        raise file_error(
            where,
            "E801",
            f"target labels '{name}' in {where} must be a vector of whole numbers, got shape "
            f"{list(labels.shape)} of {labels.dtype}",
            "labels are whole numbers 0, 1, …",
        )
    if bound is not None and labels.size and (labels.min() < 0 or labels.max() >= bound):
        raise file_error(
            where,
            "E801",
            f"target labels '{name}' in {where} range over [{labels.min()}, {labels.max()}], outside [0, {bound})",
            f"'{roles.label_input}' is declared `< {bound}`",
        )
    if roles.target_input in target and len(labels) != len(target[roles.target_input]):
        raise file_error(
            where,
            "E801",
            f"target labels '{name}' in {where} have {len(labels)} rows, but "
            f"'{roles.target_input}' has {len(target[roles.target_input])}",
            "one label per target example",
        )
    return labels.astype("int32")

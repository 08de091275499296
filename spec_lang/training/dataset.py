"""Training data: data sets (dicts of arrays, `.npz`/`.csv` files, image folders, `DataFile`s with renames) read,
checked against the program's inputs and split into groups (see `spec_lang.training.roles`): each labelled source's
inputs, each target domain's inputs, with each target's target labels.

Sources: with one source data set, every source group reads from it; with several, the i-th source group reads from
the i-th (as many data sets as the model has sources). Targets likewise, from the target data sets, or from the first
source data set when none is given. Each group has its own row count (its inputs share it); `Prepared.rows` lists
them with the longest source first, whose passes are the epochs (`spec_lang.training.sampler`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from spec_lang import program as P
from spec_lang.data import DataFile, check_arrays
from spec_lang.diagnostics import file_error
from spec_lang.program.fingerprint import digest
from spec_lang.training.protocol import Model
from spec_lang.training.roles import Group, Roles

DataSet = Mapping[str, np.ndarray] | str | os.PathLike | DataFile
Data = DataSet | list[DataSet] | tuple[DataSet, ...]  # one data set, or one per source (per target)
DEFAULT_TARGET_LABELS = "yt"


@dataclass
class Part:
    """One group's checked arrays, read from one data set (`where` names it); a target's target labels."""

    kind: str  # "source" or "target"
    group: Group
    arrays: dict[str, np.ndarray]
    where: str
    labels: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0


@dataclass
class Prepared:
    """Checked arrays by input name, in groups: the sources' parts first, then the targets'."""

    parts: list[Part]

    @property
    def sources(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "source"]

    @property
    def targets(self) -> list[Part]:
        return [p for p in self.parts if p.kind == "target"]

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        return {n: a for p in self.parts for n, a in p.arrays.items()}

    @property
    def source_name(self) -> str:
        return self.parts[0].where

    @property
    def order(self) -> list[int]:
        """The parts with rows, the longest source first (its passes make the epochs), then the others in order."""
        used = [i for i, p in enumerate(self.parts) if p.arrays]
        sources = [i for i in used if self.parts[i].kind == "source"] or used
        first = max(sources, key=lambda i: self.parts[i].rows, default=0)
        return [first, *(i for i in used if i != first)] if used else [0]

    @property
    def rows(self) -> list[int]:
        """The row counts of the parts, in `order`."""
        return [self.parts[i].rows for i in self.order]

    def batch(self, rows: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The arrays of a batch: `rows` gives each part's rows, in `order` (as `Sampler.batch` does)."""
        return {n: a[r] for i, r in zip(self.order, rows, strict=True) for n, a in self.parts[i].arrays.items()}

    def fingerprint(self) -> str:
        """The digest of every array, target labels included: a resumed run must read the same data."""
        labelled = [p.labels for p in self.targets if p.labels is not None]
        extra = {("target labels" + (f" {k}" if k else "")): a for k, a in enumerate(labelled)}
        return digest({**self.arrays, **extra})


def prepare(
    model: Model,
    roles: Roles,
    source: Data,
    target: Data | None = None,
    target_labels: str | None | bool = None,
    strict: bool = True,
) -> Prepared:
    """Read and check the data: each source group's inputs from its source data set, each target group's from its
    target data set (see the module's description), target labels. `strict` (training): every input the training
    step takes must be there; otherwise (metrics) those present are taken."""
    program = model.program
    sources = _read_all(source, "source", program)
    targets = sources[:1] if target is None else _read_all(target, "target", program)
    parts = [
        _part(program, "source", g, arrays, where, strict)
        for g, (arrays, where) in zip(roles.sources, _assign(sources, roles.sources, "source"), strict=True)
    ]
    for group, (arrays, where) in zip(roles.targets, _assign(targets, roles.targets, "target"), strict=True):
        part = _part(program, "target", group, arrays, where, strict)
        part.labels = _labels(program, roles, part, arrays, target_labels)
        parts.append(part)
    return Prepared(parts)


def _read_all(data: Data, what: str, program: P.Program) -> list[tuple[dict[str, np.ndarray], str]]:
    """The data sets given, each as its arrays and its name."""
    if isinstance(data, (list, tuple)):
        if not data:
            raise file_error(None, "E802", f"no {what} data given", f"give at least one {what} data set")
        return [_read(d, what, program) for d in data]
    return [_read(data, what, program)]


def _read(data: DataSet, what: str, program: P.Program) -> tuple[dict[str, np.ndarray], str]:
    """A data set's arrays (an image folder's for `program`'s inputs, renames applied) and its name."""
    if isinstance(data, Mapping):
        return dict(data), f"the {what} arrays"
    if isinstance(data, (str, os.PathLike, DataFile)):
        file = data if isinstance(data, DataFile) else DataFile(str(data))
        return file.read(program, DEFAULT_TARGET_LABELS), file.name
    raise TypeError(
        f"{what} data is a dict of arrays, a path to a .npz/.csv file or an image folder, or a list of them, "
        f"got {type(data).__name__}"
    )


def _assign(
    data: list[tuple[dict[str, np.ndarray], str]], groups: tuple[Group, ...], what: str
) -> list[tuple[dict[str, np.ndarray], str]]:
    """The data set of each group: the one given, or the i-th of as many as there are groups."""
    if len(data) == 1:
        return data * len(groups)
    if len(data) != len(groups):
        listed = "; ".join(", ".join(g.inputs) for g in groups) or "none"
        raise file_error(
            None,
            "E802",
            f"{len(data)} {what} data sets were given, but the model has {len(groups)} {what}s ({listed})",
            f"give one {what} data set for all of them, or one per {what}, in this order",
        )
    return data


def _part(program: P.Program, kind: str, group: Group, arrays: dict[str, np.ndarray], where: str, strict: bool) -> Part:
    """A group's checked arrays; in training (`strict`) every input must be there, with at least one row."""
    names = [n for n in group.inputs if strict or n in arrays]
    part = Part(kind, group, check_arrays(program, arrays, names, where), where)
    _rows(part.arrays, where)
    if strict and names and not part.rows:
        example = "example" if kind == "source" else "target example"
        raise file_error(where, "E801", f"{where} has no rows", f"training needs at least one {example}")
    return part


def _labels(
    program: P.Program, roles: Roles, part: Part, arrays: dict[str, np.ndarray], target_labels: str | None | bool
) -> np.ndarray | None:
    """A target part's target labels: the array named (default `yt`, when there and usable), or None."""
    if target_labels is None or target_labels is True:  # the default name: absent or unusable, no target accuracy
        if DEFAULT_TARGET_LABELS in arrays and roles.label_input is not None and part.group.inputs:
            return _target_labels(program, roles, part, arrays, DEFAULT_TARGET_LABELS)
        return None
    return _target_labels(program, roles, part, arrays, target_labels) if target_labels else None


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
    program: P.Program, roles: Roles, part: Part, arrays: dict[str, np.ndarray], name: str
) -> np.ndarray:
    """The target labels `name` of a target's data, checked against the label input's bound and the target rows."""
    where, target, target_input = part.where, part.arrays, part.group.classified
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
    if target_input is None:
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
    if target_input in target and len(labels) != len(target[target_input]):
        raise file_error(
            where,
            "E801",
            f"target labels '{name}' in {where} have {len(labels)} rows, but "
            f"'{target_input}' has {len(target[target_input])}",
            "one label per target example",
        )
    return labels.astype("int32")

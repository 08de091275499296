"""Data for training and evaluation: `.npz` and `.csv` files mapped onto a spec's inputs by name, checked
against the spec's shapes and dtypes before anything runs.

A `.npz` file holds one array per input name. A `.csv` file has a header; a column named like an input holds
that input (a vector), and columns `NAME.0`, `NAME.1`, … hold the features of a matrix input.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from spec_lang.diagnostics import file_error
from spec_lang.library.losses import label_classes
from spec_lang.program import Program


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a `.npz` or `.csv` file, by name."""
    target = Path(path)
    if not target.is_file():
        raise file_error(path, "E801", f"cannot read {path}: no such file", "check the path")
    if target.suffix == ".npz":
        try:
            with np.load(target, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except (OSError, ValueError) as error:
            raise file_error(
                path, "E801", f"cannot read {path} as .npz: {error}", "write it with numpy.savez"
            ) from None
    if target.suffix == ".csv":
        return _read_csv(target)
    raise file_error(path, "E801", f"unknown data format '{target.suffix}'", "use a .npz or a .csv file")


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    if not rows:
        raise file_error(path, "E801", "the file is empty", "the first line names the columns")
    header, body = rows[0], rows[1:]
    columns: dict[str, list[tuple[int, int]]] = {}
    for index, name in enumerate(header):
        base, _, position = name.strip().partition(".")
        columns.setdefault(base, []).append((int(position) if position.isdigit() else -1, index))
    arrays = {}
    for name, parts in columns.items():
        try:
            values = np.array([[float(row[i]) for _, i in sorted(parts)] for row in body])
        except (ValueError, IndexError) as error:
            raise file_error(
                path,
                "E801",
                f"column '{name}' holds a value that is not a number ({error})",
                "every cell must be a number",
            ) from None
        arrays[name] = values[:, 0] if parts == [(-1, parts[0][1])] else values
    return arrays


def check_arrays(
    program: Program, arrays: dict[str, np.ndarray], names: list[str], source: str
) -> dict[str, np.ndarray]:
    """The named inputs from `arrays`, checked against the spec and cast to its dtypes: a missing input, a wrong
    shape, a non-integer label, a label outside the classes the model predicts (`label_classes`) or a NaN is an error
    naming the input and the file."""
    inputs = {i.name: i for i in program.inputs}
    classes = label_classes(program)
    checked: dict[str, np.ndarray] = {}
    for name in names:
        spec = inputs[name]
        expected = "[" + ", ".join("n" if d is None else str(d) for d in spec.type.shape) + "]"
        if name not in arrays:
            raise file_error(
                source,
                "E801",
                f"{source} has no array '{name}' for input {name} : {spec.type}",
                f"arrays in the file: {', '.join(sorted(arrays)) or 'none'}",
            )
        array = np.asarray(arrays[name])
        shape_ok = array.ndim == len(spec.type.shape) and all(
            d is None or d == a for d, a in zip(spec.type.shape, array.shape, strict=False)
        )
        if not shape_ok:
            raise file_error(
                source,
                "E801",
                f"input '{name}' expects shape {expected}, but '{name}' in {source} has shape {list(array.shape)}",
                "reshape the data or fix the input's declaration",
            )
        if spec.type.dtype == "float":
            if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
                raise file_error(
                    source,
                    "E801",
                    f"input '{name}' in {source} holds NaN, infinite or non-numeric values",
                    "clean the data first",
                )
            checked[name] = array.astype(program.precision)
            continue
        if not np.issubdtype(array.dtype, np.number) or not np.array_equal(array, np.round(array)):
            raise file_error(
                source,
                "E801",
                f"input '{name}' holds integer labels, but {source} has non-integer values",
                "labels are whole numbers 0, 1, …",
            )
        labels = array.astype("int64")
        bound = classes.get(name)
        if bound is not None and labels.size and (labels.min() < 0 or labels.max() >= bound):
            raise file_error(
                source,
                "E801",
                f"labels of '{name}' in {source} range over [{labels.min()}, {labels.max()}], outside [0, {bound})",
                f"'{name}' is declared `< {spec.bound}`"
                if spec.bound == bound
                else f"the model predicts {bound} classes for '{name}': labels 0 to {bound - 1}",
            )
        checked[name] = labels.astype("int32")
    return checked

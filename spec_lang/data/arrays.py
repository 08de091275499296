"""Data for training and evaluation: `.npz` and `.csv` files mapped onto a spec's inputs by name, checked
against the spec's shapes and dtypes before anything runs.

A `.npz` file holds one array per input name. A `.csv` file has a header; a column named like an input holds
that input (a vector), and columns `NAME.0`, `NAME.1`, … hold the features of a matrix input. Reading either never
hangs on a FIFO or a device, never unpickles, and never allocates what the file does not hold (`spec_lang.reading`,
`csv_file`); every fault is an E801 naming the file.

A `DataFile` is a file with renames (`--map INPUT=ARRAY`): the input reads the array ARRAY of the file, the one
array of a `.npy` file when ARRAY is the path of one (`read_npy`, as careful as the `.npz` reader), or the array NAME
of another `.npz`/`.csv` file when ARRAY is `FILE:NAME`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from spec_lang.data.csv_file import read_csv
from spec_lang.data.images import image_folder_arrays
from spec_lang.diagnostics import file_error
from spec_lang.library.losses import label_classes
from spec_lang.program import Program
from spec_lang.reading import open_regular, read_npz

NPZ_HINT = "write it with numpy.savez('data.npz', xs=xs, ys=ys): one array per input, named like the input"


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a `.npz` or `.csv` file, by name."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".npy":
        raise file_error(
            path,
            "E801",
            f"{path} is a .npy file, which holds one unnamed array; specc reads inputs by name",
            "save the arrays by name in a .npz file instead: numpy.savez('data.npz', xs=xs, ys=ys), or feed it "
            f"to one input with --map INPUT={path}",
        )
    if suffix not in (".npz", ".csv"):
        raise file_error(path, "E801", f"unknown data format '{target.suffix}'", "use a .npz or a .csv file")
    try:
        stream = open_regular(target)
    except ValueError as error:
        hint = "check the path" if not target.exists() else "give the path of a .npz or .csv file"
        raise file_error(path, "E801", f"cannot read {path}: {error}", hint) from None
    with stream:
        if suffix == ".csv":
            return read_csv(stream, target)
    try:
        return read_npz(target)
    except ValueError as error:
        raise file_error(path, "E801", f"cannot read {path} as .npz: {error}", NPZ_HINT) from None


@dataclass(frozen=True)
class DataFile:
    """A data file (`.npz`, `.csv`, an image folder) whose inputs may read arrays of other names: `mapping` is
    input name → array name in the file, the path of a `.npy` file, or `FILE:NAME` (`--map xs=X --map ys=y`)."""

    path: str
    mapping: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The file, and its renames, as errors name it."""
        return self.path + "".join(f" (input {n} from '{a}')" for n, a in self.mapping.items())

    def read(self, program: Program, labels_name: str = "yt") -> dict[str, np.ndarray]:
        """The file's arrays, renames applied; an image folder's for `program`'s inputs (`image_folder_arrays`, with
        its labels also as `labels_name`, the target labels)."""
        if Path(self.path).is_dir():
            return self.renamed(image_folder_arrays(self.path, program, labels_name))
        return self.renamed(load_arrays(self.path))

    def renamed(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`arrays` (read from the file) with each mapped input added under its own name: the array it names in
        the file, a `.npy` file's array, or an array of another file; a name the file lacks is left out (another
        data file may hold it, else the input is missing: an E801 naming this file and its renames)."""
        added = {}
        for name, array in self.mapping.items():
            path, sep, member = array.rpartition(":")
            if Path(array).suffix.lower() == ".npy":
                added[name] = read_npy(array)
            elif sep and Path(path).suffix.lower() in (".npz", ".csv"):
                other = load_arrays(path)
                if member not in other:
                    raise file_error(
                        path,
                        "E801",
                        f"--map {name}={array}: {path} has no array '{member}'",
                        f"arrays in the file: {', '.join(sorted(other)) or 'none'}",
                    )
                added[name] = other[member]
            elif array in arrays:
                added[name] = arrays[array]
        return {**arrays, **added}


def read_npy(path: str | os.PathLike) -> np.ndarray:
    """The one array of a `.npy` file: a regular file, never unpickled, its header checked against its size before
    the array is allocated; every fault an E801."""
    try:
        with open_regular(path) as stream:
            return _npy_array(stream, os.fstat(stream.fileno()).st_size)
    except ValueError as error:
        raise file_error(path, "E801", f"cannot read {path} as .npy: {error}", "write it with numpy.save") from None


def _npy_array(stream: IO[bytes], size: int) -> np.ndarray:
    import numpy.lib.format as npy

    try:
        version = npy.read_magic(stream)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = read_header(stream)
    except ValueError as error:
        raise ValueError(f"it is not a .npy array ({str(error).splitlines()[0]})") from None
    if dtype.hasobject:
        raise ValueError("it holds Python objects (pickled data), which are never loaded")
    count = int(np.prod(shape, dtype=object))
    declared, held = count * dtype.itemsize, size - stream.tell()
    if declared != held:
        raise ValueError(f"its header declares shape {list(shape)} of {dtype} ({declared} bytes), but it holds {held}")
    array = np.frombuffer(stream.read(held), dtype).reshape(shape[::-1] if fortran else shape)
    return (array.T if fortran else array).copy()


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
                f"arrays in the file: {', '.join(sorted(arrays)) or 'none'}; read one with --map {name}=ARRAY",
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
            checked[name] = _features(array, name, source, program.precision)
            continue
        whole = array.dtype.kind in "iu" or (
            array.dtype.kind == "f" and np.isfinite(array).all() and np.array_equal(array, np.round(array))
        )
        if not whole:
            raise file_error(
                source,
                "E801",
                f"input '{name}' holds integer labels, but {source} has non-integer values",
                "labels are whole numbers 0, 1, …",
            )
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        bound = classes.get(name)
        if bound is not None and (low < 0 or high >= bound):
            raise file_error(
                source,
                "E801",
                f"labels of '{name}' in {source} range over [{low}, {high}], outside [0, {bound})",
                f"'{name}' is declared `< {spec.bound}`"
                if spec.bound == bound
                else f"the model predicts {bound} classes for '{name}': labels 0 to {bound - 1}",
            )
        if low < -(2**31) or high >= 2**31:
            raise file_error(
                source,
                "E801",
                f"input '{name}' in {source} holds whole numbers beyond int32 (from {low} to {high})",
                "labels are whole numbers 0, 1, …",
            )
        checked[name] = array.astype("int32")
    return checked


def _features(array: np.ndarray, name: str, source: str, precision: str) -> np.ndarray:
    """A float input's array cast to the model's precision: it must hold real numbers that are finite before the cast
    and after it (1e300 is a float64 but no float32); numpy's warnings about the cast are never printed."""
    if array.dtype.kind not in "iuf" or not np.isfinite(array).all():
        raise file_error(
            source,
            "E801",
            f"input '{name}' in {source} holds NaN, infinite or non-numeric values",
            "clean the data first",
        )
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(precision)
    if not np.isfinite(cast).all():
        largest = float(np.abs(array).max())
        raise file_error(
            source,
            "E801",
            f"input '{name}' in {source} holds values beyond the range of {precision} "
            f"(largest magnitude {largest:.1e})",
            "scale the data" + (", or declare `precision float64` in the spec" if precision != "float64" else ""),
        )
    return cast

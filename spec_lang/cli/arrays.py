"""Data files that `specc data` and `specc predict` write: `.npz` (one array per name) or `.csv`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from spec_lang.diagnostics import file_error
from spec_lang.files import check_output, write_atomic

if TYPE_CHECKING:
    import numpy as np


def refuse_array_output(path: Path, force: bool) -> None:
    """Fail unless `path` can be written: it does not exist (or `force`), its folder can be written, and it names a
    `.npz` or `.csv` file."""
    check_output(path, force)
    if path.suffix not in (".npz", ".csv"):
        raise file_error(
            None, "E004", f"cannot write {path}: unknown data format '{path.suffix}'", "name a .npz or a .csv file"
        )


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray], force: bool) -> None:
    """Write arrays to a new `.npz` (one array per name) or `.csv` (a column per vector, `NAME.0`, `NAME.1`, …
    per matrix; every array the same number of rows), atomically."""
    import numpy as np

    refuse_array_output(path, force)
    if path.suffix == ".npz":
        # numpy's stub types the names as keywords that include allow_pickle: bool
        write_atomic(path, lambda stream: np.savez(stream, **arrays))  # type: ignore[arg-type]
        return
    columns: list[tuple[str, np.ndarray]] = []
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.ndim == 1:
            columns.append((name, array))
        else:
            flat = array.reshape(len(array), -1)
            columns += [(f"{name}.{i}", flat[:, i]) for i in range(flat.shape[1])]
    if len({len(c) for _, c in columns}) > 1:
        raise file_error(
            None, "E004", f"cannot write {path}: the arrays have different numbers of rows", "write a .npz file instead"
        )
    lines = [",".join(n for n, _ in columns)]
    rows = range(len(columns[0][1]) if columns else 0)
    lines += [",".join(repr(c[row].item()) for _, c in columns) for row in rows]
    write_atomic(path, "\n".join(lines) + "\n")

"""Reading a `.csv` data file as it streams: the header names the columns (`NAME` a vector, `NAME.0`, `NAME.1`, …
the features of a matrix), and every other line is one example of numbers. Rows are parsed some 16,000 cells at a time
into float64 blocks, so reading holds about twice the arrays it returns, never the text as Python objects.

Whatever is wrong is an E801 naming the line (1-based, as an editor shows it) and, where there is one, the column:
text that is not UTF-8 (a UTF-8 byte-order mark is fine), a header with a nameless, repeated or missing column, a
row with too few or too many cells, an empty or non-numeric cell, a blank line between rows, no rows at all.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from spec_lang.diagnostics import file_error

if TYPE_CHECKING:
    from _csv import Reader

CHUNK_CELLS = 1 << 14  # cells parsed per block: about a megabyte of text objects at a time
NUMBER_HINT = "every cell holds one number, cells separated by commas"
Selection = int | slice | list[int]


def read_csv(stream: IO[bytes], path: Path) -> dict[str, np.ndarray]:
    """The arrays of the CSV text `stream` reads (the file `path`), by name: float64 vectors and matrices."""
    if stream.read(4) == b"PK\x03\x04":
        raise file_error(path, "E801", f"{path} is a .npz archive (a zip file), not CSV text", "rename it .npz")
    stream.seek(0)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            raise file_error(path, "E801", "the file is empty", "the first line names the columns, e.g. xs.0,xs.1,ys")
        names = [name.strip() for name in header]
        columns = _columns(names, path)
        blocks = _blocks(reader, names, path)
    except UnicodeDecodeError:
        raise file_error(path, "E801", _bad_byte(stream), "save the file as UTF-8 text") from None
    except csv.Error as error:
        raise file_error(path, "E801", f"line {reader.line_num} is not valid CSV ({error})", NUMBER_HINT) from None
    return {
        name: np.ascontiguousarray(np.concatenate([block[:, selection] for block in blocks]))
        for name, selection in columns.items()
    }


def _columns(names: list[str], path: Path) -> dict[str, Selection]:
    """Where each array's columns are, in the header's order: a vector's index, or a matrix's feature columns."""
    if not any(names):
        raise file_error(path, "E801", "line 1 is blank", "the first line names the columns, e.g. xs.0,xs.1,ys")
    seen: dict[str, int] = {}
    arrays: dict[str, dict[int, int]] = {}  # array → feature (-1: the array is a vector) → column
    for index, name in enumerate(names):
        if not name:
            raise file_error(path, "E801", f"column {index + 1} of the header has no name", "name every column")
        if name in seen:
            message = f"the header names '{name}' twice (columns {seen[name] + 1} and {index + 1})"
            raise file_error(path, "E801", message, "give each column its own name")
        seen[name] = index
        base, dot, position = name.rpartition(".")
        matrix = dot and base and position.isascii() and position.isdigit()
        array, feature = (base, int(position)) if matrix else (name, -1)
        features = arrays.setdefault(array, {})
        if feature in features:
            message = f"columns '{names[features[feature]]}' and '{name}' are both feature {feature} of '{array}'"
            raise file_error(path, "E801", message, "give each column its own name")
        features[feature] = index
    columns: dict[str, Selection] = {}
    for array, features in arrays.items():
        if -1 in features and len(features) > 1:
            message = f"the header has both a column '{array}' and columns '{array}.0', …"
            raise file_error(path, "E801", message, f"'{array}' is a vector or a matrix, not both: rename one")
        if -1 in features:
            columns[array] = features[-1]
            continue
        missing = next(k for k in range(len(features) + 1) if k not in features)
        if missing < len(features):
            message = f"the header has '{array}.{max(features)}' but no '{array}.{missing}'"
            raise file_error(path, "E801", message, f"number a matrix's columns {array}.0, {array}.1, … without gaps")
        order = [features[k] for k in range(len(features))]
        consecutive = order == list(range(order[0], order[0] + len(order)))
        columns[array] = slice(order[0], order[-1] + 1) if consecutive else order
    return columns


def _blocks(reader: Reader, names: list[str], path: Path) -> list[np.ndarray]:
    """The rows after the header as float64 blocks of `CHUNK_CELLS` cells each."""
    width, size = len(names), max(1, CHUNK_CELLS // len(names))
    rows: list[list[str]] = []
    lines: list[int] = []
    blocks: list[np.ndarray] = []
    blank = 0
    for row in reader:
        if len(row) != width:
            if not row:  # a blank line: harmless at the end of the file, an error before a row
                blank = blank or reader.line_num
                continue
            raise file_error(path, "E801", _ragged(reader.line_num, row, names), NUMBER_HINT)
        if blank:
            raise file_error(path, "E801", f"line {blank} is blank", "remove blank lines between rows")
        rows.append(row)
        lines.append(reader.line_num)
        if len(rows) == size:
            blocks.append(_numbers(rows, lines, names, path))
            rows, lines = [], []
    if rows:
        blocks.append(_numbers(rows, lines, names, path))
    if not blocks:
        raise file_error(path, "E801", "the file has a header but no rows", "each line after the header is one example")
    return blocks


def _ragged(line: int, row: list[str], names: list[str]) -> str:
    count = f"line {line} has {len(row)} cell{'s' * (len(row) != 1)}, but the header names {len(names)} columns"
    if len(row) < len(names):
        return f"{count}: no cell for '{names[len(row)]}'"
    return f"{count}: cell {len(names) + 1} has no column"


def _numbers(rows: list[list[str]], lines: list[int], names: list[str], path: Path) -> np.ndarray:
    """The block of `rows` as float64; a cell that is not a number is named by its line and column."""
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError as error:
        pairs = zip(rows, lines, strict=True)
        cells = ((line, name, cell) for row, line in pairs for name, cell in zip(names, row, strict=True))
        located = next((found for found in cells if not _is_number(found[2])), None)
        if located is None:
            message = f"lines {lines[0]} to {lines[-1]}: {error}"
        else:
            line, name, cell = located
            shown = cell if len(cell) <= 30 else cell[:27] + "…"
            what = "the cell is empty" if not cell.strip() else f"{shown!r} is not a number"
            message = f"line {line}, column '{name}': {what}"
        raise file_error(path, "E801", message, NUMBER_HINT) from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _bad_byte(stream: IO[bytes]) -> str:
    """Where the first byte that is not UTF-8 is, by line and column."""
    stream.seek(0)
    for number, line in enumerate(stream, 1):
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            column = len(line[: error.start].decode("utf-8")) + 1
            return f"line {number}, column {column}: byte 0x{line[error.start]:02x} is not UTF-8 text"
    return "the file is not UTF-8 text"

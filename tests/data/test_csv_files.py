"""Attacks on the `.csv` reader: every fault is an E801 naming the line (1-based, as an editor shows it) and the
column; reading streams, holding about twice the arrays it returns."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.data import load_arrays
from spec_lang.data.csv_file import CHUNK_CELLS


def _csv(tmp_path: Path, content: str | bytes, name: str = "d.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def _error(path: Path) -> str:
    with pytest.raises(spec_lang.SpecError) as caught:
        load_arrays(path)
    assert [d.code for d in caught.value.diagnostics] == ["E801"]
    return caught.value.diagnostics[0].message


def test_columns_keep_the_headers_order_and_matrices_their_feature_order(tmp_path: Path) -> None:
    arrays = load_arrays(_csv(tmp_path, "ys,xs.1,xs.0,w\r\n0,1,2,3\r\n1,4,5,6\r\n"))
    assert list(arrays) == ["ys", "xs", "w"]
    np.testing.assert_array_equal(arrays["xs"], [[2, 1], [5, 4]])
    assert arrays["ys"].flags.c_contiguous and arrays["xs"].flags.c_contiguous


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    arrays = load_arrays(_csv(tmp_path, b"\xef\xbb\xbfxs.0,xs.1,ys\n1,2,0\n3,4,1\n"))
    assert list(arrays) == ["xs", "ys"] and arrays["xs"].shape == (2, 2)


def test_trailing_blank_lines_are_harmless(tmp_path: Path) -> None:
    assert load_arrays(_csv(tmp_path, "ys\n1\n2\n\n\n"))["ys"].tolist() == [1, 2]


def test_rows_across_many_blocks_are_read_in_order(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(size=(3 * CHUNK_CELLS // 4 + 7, 4))
    lines = ["xs.0,xs.1,xs.2,ys"] + [",".join(repr(v) for v in row) for row in values.tolist()]
    arrays = load_arrays(_csv(tmp_path, "\n".join(lines) + "\n"))
    np.testing.assert_array_equal(arrays["xs"], values[:, :3])
    np.testing.assert_array_equal(arrays["ys"], values[:, 3])
    lines[-3] = lines[-3].replace(",", ",x", 1)  # a bad cell in the last block: its line is still right
    assert _error(_csv(tmp_path, "\n".join(lines), "late.csv")).startswith(f"line {len(lines) - 2}, column 'xs.1': ")


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty"),
        ("xs.0,xs.1,ys\n", "the file has a header but no rows"),
        ("\nxs.0,ys\n1,2\n", "line 1 is blank"),
        ("xs.0,,ys\n1,2,3\n", "column 2 of the header has no name"),
        ("xs.0,ys,xs.0\n1,2,3\n", "the header names 'xs.0' twice (columns 1 and 3)"),
        ("xs.1,xs.01\n1,2\n", "columns 'xs.1' and 'xs.01' are both feature 1 of 'xs'"),
        ("xs,xs.0\n1,2\n", "the header has both a column 'xs' and columns 'xs.0', …"),
        ("xs.0,xs.2\n1,2\n", "the header has 'xs.2' but no 'xs.1'"),
        ("xs.0,xs.1,ys\n1,2,0\n3,4\n", "line 3 has 2 cells, but the header names 3 columns: no cell for 'ys'"),
        ("xs.0,xs.1,ys\n1,2,0,7\n", "line 2 has 4 cells, but the header names 3 columns: cell 4 has no column"),
        ("xs.0,xs.1,ys\n1,2,0\n1,,0\n", "line 3, column 'xs.1': the cell is empty"),
        ("xs.0,xs.1,ys\n1,2,0\n1,2,one\n", "line 3, column 'ys': 'one' is not a number"),
        ("xs.0,ys\n1,2\n\n3,4\n", "line 3 is blank"),
        ('xs.0,ys\n"1\n",3\n4,five\n', "line 4, column 'ys': 'five' is not a number"),
        ("xs.0,ys\n1,2\x00\n", "line 2, column 'ys': '2\\x00' is not a number"),
        ("xs.0,ys\n1," + "9" * 200_000 + "\n", "line 2 is not valid CSV (field larger than field limit (131072))"),
        (b"xs.0,ys\n1,2\n3,\xff\n", "line 3, column 3: byte 0xff is not UTF-8 text"),
        (b"xs.0,ys\n1,2\n3,\xc3\xa9\xff\n", "line 3, column 4: byte 0xff is not UTF-8 text"),
        (b"PK\x03\x04 a zip archive", ".npz archive (a zip file), not CSV text"),
    ],
)
def test_a_bad_csv_is_an_error_naming_its_line_and_column(tmp_path: Path, content: str | bytes, message: str) -> None:
    assert message in _error(_csv(tmp_path, content))


def test_reading_holds_a_small_multiple_of_the_arrays_it_returns(tmp_path: Path) -> None:
    """About 5 MB of text: reading it used to hold every cell as a Python string and float (over ten times the
    arrays); streaming it in float64 blocks holds about twice."""
    rng = np.random.default_rng(1)
    rows = 60_000
    header = ",".join([f"xs.{i}" for i in range(8)] + ["ys", "yt"])
    body = np.column_stack([rng.normal(size=(rows, 8)).round(6), rng.integers(0, 2, size=(rows, 2))])
    path = tmp_path / "big.csv"
    np.savetxt(path, body, delimiter=",", header=header, comments="", fmt="%.6g")
    assert path.stat().st_size > 4_000_000
    tracemalloc.start()
    try:
        arrays = load_arrays(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = sum(a.nbytes for a in arrays.values())
    assert size == rows * 10 * 8
    assert peak < 3 * size, f"reading {size} bytes of arrays held {peak} bytes at its peak"

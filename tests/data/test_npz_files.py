"""Attacks on the `.npz` reader (`spec_lang.reading.read_npz`) and on the paths `load_arrays` is given: every bad
file is a `ValueError` from `read_npz` and an E801 from `load_arrays`, before anything large is allocated."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npy
import pytest

import spec_lang
from spec_lang.data import load_arrays
from spec_lang.reading import read_npz


def _error(path: Path) -> str:
    """What `load_arrays` says about `path`: an E801, as a user reads it."""
    with pytest.raises(spec_lang.SpecError) as caught:
        load_arrays(path)
    assert [d.code for d in caught.value.diagnostics] == ["E801"]
    return caught.value.render()


def _member(header: dict, data: bytes) -> bytes:
    """A `.npy` file with the header `header` (shape, fortran_order, descr) and the bytes `data` after it."""
    stream = io.BytesIO()
    npy.write_array_header_1_0(stream, header)
    return stream.getvalue() + data


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def good(tmp_path: Path) -> Path:
    np.savez(tmp_path / "good.npz", xs=np.arange(12.0).reshape(6, 2), ys=np.array([0, 1, 1, 0, 1, 0]))
    return tmp_path / "good.npz"


def test_plain_arrays_of_every_layout_are_read_as_numpy_writes_them(tmp_path: Path) -> None:
    arrays = {
        "xs": np.arange(12.0).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "none": np.zeros((0, 2)),
        "text": np.array('{"step": 3}'),
        "pairs": np.array([(1, 2.5)], dtype=[("a", "<i4"), ("b", "<f8")]),
    }
    np.savez(tmp_path / "plain.npz", **arrays)
    np.savez_compressed(tmp_path / "compressed.npz", **arrays)
    np.savez(tmp_path / "nothing.npz")
    for name in ("plain.npz", "compressed.npz"):
        read = read_npz(tmp_path / name)
        assert list(read) == list(arrays)
        for key, array in arrays.items():
            np.testing.assert_array_equal(read[key], array)
            assert read[key].dtype == array.dtype
    assert read_npz(tmp_path / "nothing.npz") == {}


def test_a_truncated_archive_is_an_error(good: Path, tmp_path: Path) -> None:
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:300])
    assert "cannot read" in _error(tmp_path / "cut.npz") and "is cut short or damaged" in _error(tmp_path / "cut.npz")


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.npz").write_bytes(b"")
    assert "the file is empty" in _error(tmp_path / "empty.npz")


def test_text_named_npz_is_called_text_not_pickled_data(tmp_path: Path) -> None:
    (tmp_path / "data.npz").write_text("xs.0,xs.1,ys\n1,2,0\n")
    report = _error(tmp_path / "data.npz")
    assert "it is text (a CSV file?), not a .npz archive" in report and "pickle" not in report


def test_a_member_that_is_not_npy_is_an_error(tmp_path: Path) -> None:
    path = _archive(tmp_path / "d.npz", {"xs.npy": b"not an array at all"})
    assert "member 'xs.npy' is not a .npy array" in _error(path)
    path = _archive(tmp_path / "e.npz", {"notes.txt": b"hello"})
    assert "member 'notes.txt' is not a .npy array" in _error(path)


def test_an_array_of_python_objects_is_never_unpickled(tmp_path: Path) -> None:
    np.savez(tmp_path / "objects.npz", xs=np.array([1, "a", None], dtype=object))
    assert "member 'xs.npy' holds Python objects (pickled data), which are never loaded" in _error(
        tmp_path / "objects.npz"
    )


def test_a_header_declaring_two_to_the_forty_rows_is_refused_before_allocating(tmp_path: Path) -> None:
    bomb = _member({"shape": (2**40, 2), "fortran_order": False, "descr": "<f8"}, bytes(32))
    path = _archive(tmp_path / "bomb.npz", {"xs.npy": bomb})
    report = _error(path)
    assert "member 'xs.npy' declares shape [1099511627776, 2] of float64 (17592186044416 bytes), but holds 32" in report


def test_a_header_declaring_fewer_bytes_than_the_member_holds_is_an_error(tmp_path: Path) -> None:
    short = _member({"shape": (1,), "fortran_order": False, "descr": "<f8"}, bytes(24))
    assert "declares shape [1] of float64 (8 bytes), but holds 24 bytes" in _error(
        _archive(tmp_path / "d.npz", {"xs.npy": short})
    )


def test_an_entry_declaring_more_bytes_than_the_archive_holds_is_refused(good: Path, tmp_path: Path) -> None:
    data = bytearray(good.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first member's entry in the table of contents
    struct.pack_into("<I", data, entry + 24, 2**31)  # its uncompressed size
    (tmp_path / "lying.npz").write_bytes(bytes(data))
    assert "declares more bytes than the archive holds" in _error(tmp_path / "lying.npz")


def test_a_damaged_member_fails_its_checksum(good: Path, tmp_path: Path) -> None:
    data = bytearray(good.read_bytes())
    data[data.index(b"NUMPY") + 200] ^= 0xFF  # a byte of the first array's data
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    assert "member 'xs.npy' is damaged (Bad CRC-32" in _error(tmp_path / "flipped.npz")


def test_a_member_stored_twice_is_an_error(tmp_path: Path) -> None:
    array = _member({"shape": (1,), "fortran_order": False, "descr": "<f8"}, bytes(8))
    with pytest.warns(UserWarning), zipfile.ZipFile(tmp_path / "twice.npz", "w") as archive:
        archive.writestr("xs.npy", array)
        archive.writestr("xs.npy", array)
    assert "member 'xs.npy' is stored twice" in _error(tmp_path / "twice.npz")


def test_a_npy_file_says_how_to_make_a_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "xs.npy", np.zeros((3, 2)))
    report = _error(tmp_path / "xs.npy")
    assert "is a .npy file, which holds one unnamed array" in report and "numpy.savez('data.npz'" in report
    (tmp_path / "renamed.npz").write_bytes((tmp_path / "xs.npy").read_bytes())
    assert "it is a .npy file (one unnamed array), not a .npz archive" in _error(tmp_path / "renamed.npz")


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_a_path_that_is_no_regular_file_is_named_so_without_blocking(tmp_path: Path, suffix: str) -> None:
    folder, fifo, device = tmp_path / f"folder{suffix}", tmp_path / f"fifo{suffix}", tmp_path / f"zero{suffix}"
    folder.mkdir()
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    device.symlink_to("/dev/zero")  # reading it would never end
    assert "it is a folder, not a regular file" in _error(folder)
    assert "it is a FIFO (named pipe), not a regular file" in _error(fifo)
    assert "it is a device, not a regular file" in _error(device)
    assert "no such file" in _error(tmp_path / f"missing{suffix}")

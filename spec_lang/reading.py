"""Reading files safely: the counterpart of `files.py` for the files specc reads that it did not write itself (data)
or that may have been damaged since (checkpoints). Both functions raise a plain `ValueError` whose message reads
after "cannot read PATH: "; each caller turns it into its own diagnostic (E801 for data, E803 for checkpoints).

- `open_regular` opens a regular file for reading, and refuses a folder, a device (`/dev/zero`) or a FIFO without
  blocking or reading from it.
- `read_npz` reads the arrays of a `.npz` archive without ever unpickling, and checks each member's `.npy` header
  against the member's size before any array is allocated, so a header that declares 2**40 rows is refused instead
  of attempted.

>>> import tempfile, pathlib, numpy as np
>>> path = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
>>> np.savez(path, xs=np.zeros((3, 2)), ys=np.arange(3))
>>> {name: array.shape for name, array in read_npz(path).items()}
{'xs': (3, 2), 'ys': (3,)}
>>> try:
...     read_npz(path.parent)
... except ValueError as error:
...     print(error)
it is a folder, not a regular file
"""

from __future__ import annotations

import os
import stat
import warnings
import zipfile
import zlib
from typing import IO

import numpy as np
import numpy.lib.format as npy

DEFLATE_RATIO = 1100  # deflate expands at most ~1032 times: a member declaring more than this is lying
CHUNK_BYTES = 1 << 20  # arrays are read in pieces of 1 MiB, so reading never holds a second copy of an array
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive with members; an empty one (numpy.savez with no arrays)


def irregular(mode: int) -> str | None:
    """What a file is when it is not a regular file (from its `st_mode`), e.g. `a folder`; None for a regular file.

    >>> irregular(os.stat(".").st_mode), irregular(os.stat("/dev/null").st_mode)
    ('a folder', 'a device')
    """
    if stat.S_ISREG(mode):
        return None
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((kind for test, kind in kinds if test(mode)), "a special file")


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """`path` opened for binary reading. A missing or unreadable path, or one that is not a regular file (a folder,
    a device, a FIFO, a socket), is a `ValueError`; a FIFO is opened without blocking and never read."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ValueError("no such file") from None
    except OSError as error:
        raise ValueError(error.strerror or str(error)) from None
    kind = irregular(os.fstat(handle).st_mode)
    if kind is not None:
        os.close(handle)
        raise ValueError(f"it is {kind}, not a regular file")
    os.set_blocking(handle, True)
    return os.fdopen(handle, "rb")


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of the `.npz` archive at `path`, by name (`xs.npy` gives `xs`). A `ValueError` says what is
    wrong with anything that is not such an archive of plain arrays, and nothing is allocated that the file does not
    hold: not a regular file (`open_regular`), empty, not a zip archive, cut short or damaged, a member that is not
    a `.npy` array or is stored twice, a member of Python objects (pickled data: never loaded), a member whose header
    declares more (or fewer) bytes than the member holds, a checksum that does not match."""
    with open_regular(path) as stream:
        start = stream.read(8)
        if not start.startswith(_ZIP_MAGIC):
            raise ValueError(_not_an_archive(start))
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError):
            raise ValueError(
                "the archive is cut short or damaged: its table of contents (at its end) is unreadable"
            ) from None
        with archive:
            names = archive.namelist()
            twice = next((name for name in names if names.count(name) > 1), None)
            if twice is not None:
                raise ValueError(f"member '{twice}' is stored twice")
            size = os.fstat(stream.fileno()).st_size
            return {
                info.filename.removesuffix(".npy"): _read_member(archive, info, size) for info in archive.infolist()
            }


def _not_an_archive(start: bytes) -> str:
    if not start:
        return "the file is empty"
    if start.startswith(npy.MAGIC_PREFIX):
        return "it is a .npy file (one unnamed array), not a .npz archive"
    try:
        start.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not a .npz archive (a zip file)"
    return "it is text (a CSV file?), not a .npz archive (a zip file)"


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int) -> np.ndarray:
    """One member's array; its entry and its `.npy` header are checked against its size before it is allocated."""
    member = f"member '{info.filename}'"
    if not info.filename.endswith(".npy") or info.is_dir():
        raise ValueError(f"{member} is not a .npy array")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{member} is compressed with method {info.compress_type}; numpy writes stored or deflated")
    bound = info.compress_size * (1 if info.compress_type == zipfile.ZIP_STORED else DEFLATE_RATIO) + 1024
    if info.compress_size > archive_size or info.file_size > bound:
        raise ValueError(f"the archive is damaged: {member} declares more bytes than the archive holds")
    try:
        with archive.open(info) as stream:
            shape, fortran, dtype = _header(stream, info, member)
            array = np.empty(shape[::-1] if fortran else shape, dtype)
            _read_into(stream, array, member)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as error:
        raise ValueError(f"{member} is damaged ({error})") from None
    return array.T if fortran else array


def _header(stream: IO[bytes], info: zipfile.ZipInfo, member: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, order and dtype a member's `.npy` header declares, if they are plain arrays and the bytes after the
    header are exactly what they need."""
    try:
        version = npy.read_magic(stream)
        with warnings.catch_warnings():  # a header written by Python 2 warns before it parses
            warnings.simplefilter("ignore")
            if version == (1, 0):
                shape, fortran, dtype = npy.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = npy.read_array_header_2_0(stream)
            else:
                raise ValueError(f".npy format {version[0]}.{version[1]} is not read")
    except ValueError as error:
        raise ValueError(f"{member} is not a .npy array ({str(error).splitlines()[0]})") from None
    if dtype.hasobject:
        raise ValueError(f"{member} holds Python objects (pickled data), which are never loaded")
    count = 1
    for length in shape:
        count *= length
    declared, held = count * dtype.itemsize, info.file_size - stream.tell()
    if any(length < 0 for length in shape) or declared != held:
        raise ValueError(f"{member} declares shape {list(shape)} of {dtype} ({declared} bytes), but holds {held} bytes")
    return shape, fortran, dtype


def _read_into(stream: IO[bytes], array: np.ndarray, member: str) -> None:
    """Fill `array` (C-contiguous) from `stream` in pieces, then read on to the member's end, where zipfile checks
    its checksum."""
    view = array.reshape(-1).view(np.uint8) if array.nbytes else np.empty(0, np.uint8)
    for start in range(0, len(view), CHUNK_BYTES):
        wanted = min(CHUNK_BYTES, len(view) - start)
        piece = stream.read(wanted)
        if len(piece) < wanted:
            raise ValueError(f"{member} is cut short")
        view[start : start + len(piece)] = np.frombuffer(piece, np.uint8)
    if stream.read(1):
        raise ValueError(f"{member} holds more bytes than its header declares")

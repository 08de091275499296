"""Writing files safely: every file specc writes (emitted code, checkpoints, logs, predictions, plots, saved
parameters) goes through `write_atomic`, so a crash or Ctrl-C never leaves half a file, and `refuse_existing`
keeps what a user already has unless they ask to replace it.

>>> import tempfile, pathlib
>>> from spec_lang import SpecError
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(folder / "note.txt", "hello\\n").read_text()
'hello\\n'
>>> try:
...     refuse_existing(folder / "note.txt", force=False)
... except SpecError as error:
...     print(error.diagnostics[0].message)
the file already exists
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from spec_lang.diagnostics import file_error

REPLACE_HINT = "choose another path, or pass --force to replace it"


def refuse_existing(path: str | os.PathLike, force: bool, hint: str = REPLACE_HINT) -> None:
    """An error (E002, naming the file) when `path` exists and `force` is false."""
    if Path(path).exists() and not force:
        raise file_error(path, "E002", "the file already exists", hint)


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[BinaryIO], None]) -> Path:
    """Write text (UTF-8), bytes, or whatever `data(stream)` writes, to a temporary file in the target's folder,
    flush it to disk, then rename it over `path`: readers see the old file or the new one, never a part. The file
    gets the usual permissions (0o666 less the umask), not `mkstemp`'s owner-only ones."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(handle, 0o666 & ~mask)
        with os.fdopen(handle, "wb") as stream:
            if callable(data):
                data(stream)
            else:
                stream.write(data.encode("utf-8") if isinstance(data, str) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target

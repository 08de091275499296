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

import contextlib
import fcntl
import glob
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from spec_lang.diagnostics import file_error

REPLACE_HINT = "choose another path, or pass --force to replace it"


def refuse_existing(path: str | os.PathLike, force: bool, hint: str = REPLACE_HINT) -> None:
    """An error (E002, naming the file) when `path` exists and `force` is false."""
    if Path(path).exists() and not force:
        raise file_error(path, "E002", "the file already exists", hint)


def check_output(path: str | os.PathLike, force: bool, hint: str = REPLACE_HINT) -> None:
    """Fail now, before the work whose result `path` is to hold: an existing file without `force` (E002), a folder
    in its place, a missing folder or one that cannot be written (E004)."""
    target = Path(path)
    if target.is_dir():
        raise file_error(path, "E004", "cannot write it: it is a folder", "name a file, e.g. inside that folder")
    refuse_existing(target, force, hint)
    folder = target.parent
    if not folder.is_dir():
        raise file_error(
            path,
            "E004",
            f"cannot write it: the folder {folder} does not exist",
            "create the folder first, or choose another path",
        )
    try:  # by writing, as `write_atomic` will: permissions alone say nothing of root, read-only mounts or quotas
        handle, probe = _temporary(target)
    except OSError as error:
        raise file_error(
            path,
            "E004",
            f"cannot write it: the folder {folder} is not writable ({error.strerror or error})",
            "choose a folder you can write to",
        ) from None
    os.close(handle)
    os.unlink(probe)


def prepare_folder(path: str | os.PathLike, files: Iterable[str], force: bool) -> list[Path]:
    """Before the work whose results go into the folder `path`: create it (and its parents) and `check_output` each
    of `files` in it, so that a folder that cannot be made or written fails now, not after the work (E004).
    Returns the files' paths."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file in its place, a read-only parent
        raise file_error(
            path, "E004", f"cannot create the folder: {error.strerror or error}", "choose another folder"
        ) from None
    targets = [folder / name for name in files]
    for target in targets:
        check_output(target, force)
    return targets


def check_distinct(outputs: dict[str, str | os.PathLike | None], inputs: list[str | os.PathLike | None]) -> None:
    """Refuse (E004) outputs that name one file twice (`--log` and `--checkpoint`), or a file the command reads (the
    spec, the data): writing one would destroy the other."""
    seen: dict[Path, str] = {}
    read = {Path(p).resolve() for p in inputs if p is not None}
    for option, path in outputs.items():
        if path is None:
            continue
        resolved = Path(path).resolve()
        if resolved in seen:
            raise file_error(
                path, "E004", f"{option} names the same file as {seen[resolved]}", "give each output its own file"
            )
        if resolved in read:
            raise file_error(path, "E004", f"{option} names a file this command reads", "choose another path")
        seen[resolved] = option


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable[[BinaryIO], None]) -> Path:
    """Write text (UTF-8), bytes, or whatever `data(stream)` writes, to a temporary file in the target's folder,
    flush it to disk, then rename it over `path`: readers see the old file or the new one, never a part. A symbolic
    link is written through (its target is replaced, the link kept), and a file that exists keeps its permissions;
    a new file gets the usual ones (0o666 less the umask), not `mkstemp`'s owner-only ones."""
    target = Path(os.path.realpath(path))
    try:
        handle, temporary = _temporary(target)
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        if target.exists():
            mode = target.stat().st_mode & 0o7777
        else:
            mask = os.umask(0)
            os.umask(mask)
            mode = 0o666 & ~mask
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            if callable(data):
                data(stream)
            else:
                stream.write(data.encode("utf-8") if isinstance(data, str) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as error:  # a full disk, a folder made read-only meanwhile: the old file is still there
        Path(temporary).unlink(missing_ok=True)
        raise _unwritable(path, error) from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(path)


def _temporary(target: Path) -> tuple[int, str]:
    """A new hidden temporary file beside `target` (`.NAME.XXXX.tmp`, the pattern `exclusive` clears after a killed
    writer), open: its descriptor and path."""
    return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")


def _unwritable(path: str | os.PathLike, error: OSError) -> Exception:
    return file_error(
        path,
        "E004",
        f"cannot write it: {error.strerror or error}",
        "free some space or choose another folder; a file that was there is unchanged",
    )


@contextlib.contextmanager
def exclusive(path: Path | None, companions: Iterable[Path | None] = ()) -> Iterator[None]:
    """Hold `path` for one writer (a training run's checkpoint) while the block runs: a second run writing the same
    file is refused (E807) instead of both succeeding with one result lost. The lock is a hidden `.NAME.lock` beside
    the file (kept, so that no two runs ever lock different files of one name). Holding it, the temporary files an
    earlier writer killed mid-write left behind (`.NAME.*.tmp`) are removed, for `path` and for the `companions` the
    run also writes (its log). None: nothing to hold."""
    if path is None:
        yield
        return
    check_output(path, True)
    lock = path.parent / f".{path.name}.lock"
    try:
        stream = open(lock, "a")  # closed by the `with` below; opening is what may fail
    except OSError as error:
        raise _unwritable(lock, error) from None
    with stream:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise file_error(
                path,
                "E807",
                "another run is writing this checkpoint",
                "wait for it to end, or give this run its own --checkpoint",
            ) from None
        for written in (path, *(c for c in companions if c is not None)):
            for orphan in written.parent.glob(f".{glob.escape(written.name)}.*.tmp"):
                orphan.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)

"""Reading spec files: UTF-8 text or JSON by the file's name, and the templates of the files a model includes."""

from __future__ import annotations

import codecs
import difflib
import os
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path, PurePosixPath

from spec_lang.diagnostics import LINE_END, Diagnostic, Source, Span, SpecError, shown_path
from spec_lang.diagnostics.limits import MAX_INCLUDE_DEPTH, MAX_SOURCE_BYTES, format_memory
from spec_lang.reading import irregular
from spec_lang.syntax import ir
from spec_lang.syntax.parser import parse


def read_source(path: str | os.PathLike) -> Source:
    """Read a spec file as UTF-8, with `\\n`, `\\r\\n` or a lone `\\r` ending lines. A file that cannot be read,
    is not a regular file (a folder, a named pipe, a device: never opened, so never waited on) or is larger than
    `MAX_SOURCE_BYTES` raises `SpecError` E001 before it is read; text that is not UTF-8, located at its first bad
    byte."""
    name = os.fsdecode(path)
    try:
        data = _read_bytes(path)
    except _Refused as refused:
        raise SpecError(
            [Diagnostic("error", "E001", f"cannot read {shown_path(name)}: {refused.reason}", None, refused.hint)],
            Source(name, ""),
        ) from None
    return _decode(name, data)


class _Refused(Exception):
    """Why a file cannot be read as a spec, and what to do."""

    def __init__(self, reason: str, hint: str):
        super().__init__(reason)
        self.reason, self.hint = reason, hint


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a spec file; `_Refused` when it cannot be read, is not a regular file or is too large."""
    try:
        kind = irregular(os.stat(path).st_mode)
        if kind is None:
            # non-blocking: should the file be swapped for a named pipe after the check, opening it does not wait
            with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file:
                info = os.fstat(file.fileno())
                kind, size = irregular(info.st_mode), info.st_size
                data = b"" if kind is not None or size > MAX_SOURCE_BYTES else file.read(MAX_SOURCE_BYTES + 1)
                size = max(size, len(data))  # the file may grow while it is read
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        raise _Refused(
            error.strerror if isinstance(error, OSError) and error.strerror else str(error), "check the path"
        ) from None
    if kind is not None:
        raise _Refused(f"it is {kind}, not a regular file", "give the path of a .dann or .json file")
    if size > MAX_SOURCE_BYTES:
        raise _Refused(
            f"the file is {format_memory(size)}; a spec file is at most {format_memory(MAX_SOURCE_BYTES)}",
            "a spec describes a model; keep data in data files (`specc train --data`)",
        )
    return data


def _decode(name: str, data: bytes) -> Source:
    """The text of a spec file; `SpecError` located at the first byte that is not UTF-8."""
    data = data.removeprefix(codecs.BOM_UTF8)  # the byte-order mark some editors write
    try:
        return Source(name, data.decode("utf-8"))
    except UnicodeDecodeError as error:
        text = data.decode("utf-8", errors="replace")  # to show the line, with � for the bytes that are not UTF-8
        lines = LINE_END.split(data[: error.start].decode("utf-8"))
        line, column = len(lines), len(lines[-1]) + 1
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    "E001",
                    f"cannot read {shown_path(name)}: byte 0x{data[error.start]:02x} is not UTF-8 text",
                    Span(line, column, line, column + 1),
                    "save the file as UTF-8",
                )
            ],
            Source(name, text),
        ) from None


def parse_source(source: Source) -> ir.Model:
    """The IR of a source: JSON when the name ends in `.json`, `.dann` text otherwise."""
    if source.name.endswith(".json"):
        from spec_lang.syntax.jsonio import loads_json

        return loads_json(source.text, source.name)
    return parse(source.text, source.name)


def included_templates(
    model: ir.Model, source: Source | None = None, allow_outside: bool = False
) -> tuple[ir.Template, ...]:
    """The templates of the files a model includes, directly or through those files, each file once, in the order
    of the includes; spans in them carry their file. A path is relative to the folder of the file that includes it
    and may not lead out of that folder unless `allow_outside`: such a path, a missing file or one that is not a
    regular file, an include cycle and includes nested more than `MAX_INCLUDE_DEPTH` files deep raise `SpecError`,
    located at the `include`.

    >>> source = read_source("examples/include_main.dann")
    >>> [template.name for template in included_templates(parse_source(source), source)]
    ['adversary', 'mlp']
    """
    templates: list[ir.Template] = []
    diagnostics: list[Diagnostic] = []
    done: set[Path] = set()
    root = source.name if source else "<model>"
    # the files being read, depth first without recursion: the includes of each still to be read, its name, and
    # the chain of files that led to it (resolved, and as written), the first file first
    pending: list[tuple[Iterator[ir.Include], str, tuple[tuple[Path, str], ...]]] = [
        (iter(model.includes), root, ((Path(root).resolve(), root),))
    ]
    while pending:
        includes, name, chain = pending[-1]
        include = next(includes, None)
        if include is None:
            pending.pop()
            continue
        folder = Path(name).parent
        path = Path(os.path.normpath(folder / include.path))
        shown = shown_path(include.path)  # a NUL byte, say, shown as \x00
        try:
            resolved = path.resolve()
            try:
                kind = irregular(path.stat().st_mode)
            except (FileNotFoundError, NotADirectoryError):
                kind = "missing"
        except (OSError, ValueError, RuntimeError) as error:  # a name too long, a NUL byte, a loop of links
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            diagnostics.append(_cannot_include(include, reason, "check the path"))
            continue
        if not allow_outside and not resolved.is_relative_to(folder.resolve()):
            diagnostics.append(
                Diagnostic(
                    "error",
                    "E903",
                    f'"{shown}" is outside the folder of the including file',
                    include.span,
                    "move it into this folder, or allow it: `specc --allow-outside-includes`, or in Python "
                    "`spec_lang.load(…, allow_outside=True)`",
                )
            )
        elif resolved in (seen := [file for file, _ in chain]):
            cycle = [written for _, written in chain[seen.index(resolved) :]] + [str(path)]
            diagnostics.append(
                Diagnostic(
                    "error",
                    "E902",
                    f"include cycle: {' → '.join(map(shown_path, cycle))}",
                    include.span,
                    "a file cannot include itself, directly or through other files",
                )
            )
        elif kind == "missing":
            diagnostics.append(_cannot_include(include, "no such file", _near(include.path, path, folder)))
        elif kind is not None:
            diagnostics.append(
                _cannot_include(include, f"it is {kind}, not a regular file", "include a .dann or .json file")
            )
        elif resolved in done:
            continue
        elif len(chain) > MAX_INCLUDE_DEPTH:  # the file would be MAX_INCLUDE_DEPTH + 1 files deep
            files = [written for _, written in chain] + [str(path)]
            shortened = [*files[:3], "…", *files[-3:]] if len(files) > 7 else files
            diagnostics.append(
                Diagnostic(
                    "error",
                    "E901",
                    f'cannot include "{shown}": includes nest more than {MAX_INCLUDE_DEPTH} files deep',
                    include.span,
                    "include the files a model needs from its own file instead of from each other",
                    (f"the chain of {len(files)} files: {' → '.join(map(shown_path, shortened))}",),
                )
            )
        else:
            done.add(resolved)
            try:
                data = _read_bytes(path)
            except _Refused as refused:  # e.g. no permission to read it, or too large
                diagnostics.append(_cannot_include(include, refused.reason, refused.hint))
                continue
            included_source = _decode(str(path), data)
            included = ir.with_spans(parse_source(included_source), partial(replace, source=included_source))
            templates.extend(included.templates)
            pending.append((iter(included.includes), str(path), (*chain, (resolved, str(path)))))
    if diagnostics:
        raise SpecError(diagnostics, source)
    return tuple(templates)


def _cannot_include(include: ir.Include, reason: str, hint: str) -> Diagnostic:
    return Diagnostic("error", "E901", f'cannot include "{shown_path(include.path)}": {reason}', include.span, hint)


def _near(written: str, path: Path, folder: Path) -> str:
    """A hint for an include path that names no file: the spec file in its folder with the closest name, or where
    paths start from."""
    folder_files = path.parent.glob("*") if path.parent.is_dir() else []
    files = sorted(p.name for p in folder_files if p.suffix in (".dann", ".json"))
    close = difflib.get_close_matches(path.name, files, n=1, cutoff=0.6)  # by name: the folders are the same
    if close:
        return f"did you mean '{PurePosixPath(written).with_name(close[0])}'?"
    return f"the path is relative to the folder of the including file ({folder.as_posix()})"

"""Reading spec files: UTF-8 text or JSON by the file's name, and the templates of the files a model includes."""

from __future__ import annotations

import codecs
import difflib
import os
from dataclasses import replace
from functools import partial
from pathlib import Path, PurePosixPath

from spec_lang.diagnostics import Diagnostic, Source, Span, SpecError
from spec_lang.syntax import ir
from spec_lang.syntax.parser import parse


def read_source(path: str | os.PathLike) -> Source:
    """Read a spec file as UTF-8; unreadable files raise `SpecError`, located at the first byte that is not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SpecError(
            [Diagnostic("error", "E001", f"cannot read {path}: {error.strerror or error}", None, "check the path")],
            Source(str(path), ""),
        ) from None
    data = data.removeprefix(codecs.BOM_UTF8)  # the byte-order mark some editors write
    try:
        return Source(str(path), data.decode("utf-8"))
    except UnicodeDecodeError as error:
        text = data.decode("utf-8", errors="replace")  # to show the line, with � for the bytes that are not UTF-8
        before = data[: error.start].decode("utf-8")
        line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    "E001",
                    f"cannot read {path}: byte 0x{data[error.start]:02x} is not UTF-8 text",
                    Span(line, column, line, column + 1),
                    "save the file as UTF-8",
                )
            ],
            Source(str(path), text),
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
    and may not lead out of that folder unless `allow_outside`: such a path, a missing file and an include cycle
    raise `SpecError`, located at the `include`.

    >>> source = read_source("examples/include_main.dann")
    >>> [template.name for template in included_templates(parse_source(source), source)]
    ['adversary', 'mlp']
    """
    templates: list[ir.Template] = []
    diagnostics: list[Diagnostic] = []
    done: set[Path] = set()

    def visit(model: ir.Model, name: str, chain: tuple[tuple[Path, str], ...]) -> None:
        folder = Path(name).parent
        for include in model.includes:
            path = Path(os.path.normpath(folder / include.path))
            try:
                resolved, found = path.resolve(), path.is_file()
            except (OSError, ValueError, RuntimeError) as error:  # a name too long, a NUL byte, a loop of links
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                shown = include.path.encode("unicode_escape").decode()  # a NUL byte, say, shown as \x00
                diagnostics.append(
                    Diagnostic("error", "E901", f'cannot include "{shown}": {reason}', include.span, "check the path")
                )
                continue
            if not allow_outside and not resolved.is_relative_to(folder.resolve()):
                diagnostics.append(
                    Diagnostic(
                        "error",
                        "E903",
                        f'"{include.path}" is outside the folder of the including file',
                        include.span,
                        "move it into this folder, or allow it: `specc --allow-outside-includes`, or in Python "
                        "`spec_lang.load(…, allow_outside=True)`",
                    )
                )
            elif resolved in (seen := [file for file, _ in chain]):
                cycle = [shown for _, shown in chain[seen.index(resolved) :]] + [str(path)]
                diagnostics.append(
                    Diagnostic(
                        "error",
                        "E902",
                        f"include cycle: {' → '.join(cycle)}",
                        include.span,
                        "a file cannot include itself, directly or through other files",
                    )
                )
            elif not found:
                diagnostics.append(
                    Diagnostic(
                        "error",
                        "E901",
                        f'cannot include "{include.path}": no such file',
                        include.span,
                        _near(include.path, path, folder),
                    )
                )
            elif resolved not in done:
                done.add(resolved)
                included_source = read_source(path)
                included = ir.with_spans(parse_source(included_source), partial(replace, source=included_source))
                templates.extend(included.templates)
                visit(included, str(path), (*chain, (resolved, str(path))))

    root = source.name if source else "<model>"
    visit(model, root, ((Path(root).resolve(), root),))
    if diagnostics:
        raise SpecError(diagnostics, source)
    return tuple(templates)


def _near(written: str, path: Path, folder: Path) -> str:
    """A hint for an include path that names no file: the spec file in its folder with the closest name, or where
    paths start from."""
    folder_files = path.parent.glob("*") if path.parent.is_dir() else []
    files = sorted(p.name for p in folder_files if p.suffix in (".dann", ".json"))
    close = difflib.get_close_matches(path.name, files, n=1, cutoff=0.6)  # by name: the folders are the same
    if close:
        return f"did you mean '{PurePosixPath(written).with_name(close[0])}'?"
    return f"the path is relative to the folder of the including file ({folder.as_posix()})"

"""One diagnostics type for every stage: a located message with a hint, rendered like a compiler error.

>>> src = Source("m.dann", "model m()\\ninput x : flot[batch, 2]\\n")
>>> d = Diagnostic("error", "E201", "unknown dtype 'flot'", Span(2, 11, 2, 15), "did you mean 'float'?")
>>> print(d.render(src))
m.dann:2:11: error[E201]: unknown dtype 'flot'
  2 | input x : flot[batch, 2]
    |           ^^^^
  hint: did you mean 'float'?
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

Severity = Literal["error", "warning"]
# What ends a line, in every door: old Macs' lone `\r` and Windows' `\r\n` as well as `\n`.
LINE_END = re.compile(r"\r\n?|\n")


def normalise_newlines(text: str) -> str:
    """The text with each line end (`\\r\\n`, a lone `\\r`) a `\\n`; lines and columns stay what they were.

    >>> normalise_newlines("a\\r\\nb\\rc\\n")
    'a\\nb\\nc\\n'
    """
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def shown_path(path: str | os.PathLike) -> str:
    """A file name as messages show it: the bytes of a name that are not UTF-8 (which Python holds as lone
    surrogates) as `\\xff`, and other characters that cannot be printed escaped (`\\n`), so that printing the
    name never fails and never breaks the line.

    >>> shown_path("nu/\\udcff\\udcfe.dann"), shown_path("a\\nb.dann"), shown_path("é.dann")
    ('nu/\\\\xff\\\\xfe.dann', 'a\\\\nb.dann', 'é.dann')
    """
    text = os.fsdecode(path)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else f"\\x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else repr(c)[1:-1]
        for c in text
    )


@dataclass(frozen=True, slots=True)  # slots: a list of a million numbers has a million spans
class Span:
    """A region of source text; lines and columns count from 1, the end column is exclusive.

    `source` is the text the span lies in when that is another file than the one being reported on (a file
    brought in by `include`); `context` holds notes on how the text was reached (for the layers of a template,
    the stack made from it). Both are shown with any message at the span.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    source: Source | None = field(default=None, repr=False)
    context: tuple[str, ...] = field(default=(), repr=False)

    def head(self, width: int) -> Span:
        """The first `width` columns of the span, e.g. the name a call begins with.

        >>> Span(3, 5, 3, 20).head(4)
        Span(line=3, column=5, end_line=3, end_column=9)
        """
        return replace(self, end_line=self.line, end_column=self.column + width)

    def tail(self, width: int) -> Span:
        """The last `width` columns of the span, e.g. the activation a dense layer ends with."""
        return replace(self, line=self.end_line, column=self.end_column - width)


@dataclass(frozen=True)
class Source:
    """The text a model came from, with the name used in messages (a path, `<string>` or a JSON file)."""

    name: str
    text: str

    def line(self, number: int) -> str:
        """Line `number` (from 1), counting lines as the parser does: `\\n`, `\\r\\n` and a lone `\\r` end a line.

        >>> Source("m.dann", "a\\fb\\r\\nc\\rd").line(2), Source("m.dann", "a\\rb").line(2)
        ('c', 'b')
        """
        return self._lines[number - 1] if 0 < number <= len(self._lines) else ""

    @cached_property
    def _lines(self) -> list[str]:  # split once: a file with many errors shows many lines
        return LINE_END.split(self.text)


@dataclass(frozen=True)
class Diagnostic:
    """A message about the user's model: an error stops compilation, a warning does not."""

    severity: Severity
    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    notes: tuple[str, ...] = field(default=())

    def render(self, source: Source | None) -> str:
        """Format as `file:line:col: severity[code]: message`, the source line with a caret, notes, and the hint.
        The span's own source, if it has one, takes the place of `source`."""
        if self.span is not None and self.span.source is not None:
            source = self.span.source
        name = shown_path(source.name) if source else "specc"  # no file to name: a command-line or API problem
        if self.span is None:
            out = [f"{name}: {self.severity}[{self.code}]: {self.message}"]
        else:
            out = [f"{name}:{self.span.line}:{self.span.column}: {self.severity}[{self.code}]: {self.message}"]
            text = source.line(self.span.line) if source else ""
            if text:
                gutter = str(self.span.line)
                end = self.span.end_column if self.span.end_line == self.span.line else len(text) + 1
                width = max(1, min(end, len(text) + 1) - self.span.column)
                out.append(f"  {gutter} | {text.rstrip()}")
                # the caret line keeps the tabs before the span, so the caret lines up under a tab-indented line
                indent = "".join("\t" if c == "\t" else " " for c in text[: self.span.column - 1])
                out.append(f"  {' ' * len(gutter)} | {indent:<{self.span.column - 1}}{'^' * width}")
        out.extend(f"  note: {note}" for note in (*(self.span.context if self.span else ()), *self.notes))
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


class SpecError(Exception):
    """Raised when a model has errors; carries every diagnostic found and the source they point into."""

    def __init__(self, diagnostics: Iterable[Diagnostic], source: Source | None = None):
        self.diagnostics = tuple(diagnostics)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(d.render(self.source) for d in self.diagnostics)


def file_error(path: str | os.PathLike | None, code: str, message: str, hint: str) -> SpecError:
    """An error about a whole file, named before the message (`moons.npz: error[E801]: …`), or, without a path,
    about the command line or an API call (`specc: error[…]: …`): there is no line or column to point at."""
    return SpecError([Diagnostic("error", code, message, None, hint)], None if path is None else Source(str(path), ""))


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint naming the closest candidate, if any is close enough."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None

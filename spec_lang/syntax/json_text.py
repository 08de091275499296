"""JSON text decoded with the line and column of every value, so that errors in a JSON model point into the file;
and the depth check that keeps decoding safe."""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from typing import Any

from spec_lang.diagnostics import Span
from spec_lang.diagnostics.limits import MAX_DEPTH


class DuplicateKey(Exception):
    def __init__(self, key: str, span: Span):
        super().__init__(key)
        self.key, self.span = key, span


# JSON text → data that knows where it is ---------------------------------------------------------------------


class _Object(dict):
    span: Span


class _Array(list):
    span: Span


class _String(str):
    span: Span


class _Int(int):
    span: Span


class _Float(float):
    span: Span


_LOCATED = {dict: _Object, list: _Array, str: _String, int: _Int, float: _Float}  # true, false, null are not


class LocatingDecoder(json.JSONDecoder):
    """A JSON decoder (the standard library's, in Python) whose objects, arrays, strings and numbers carry the span
    of their text; keys given twice are an error, at their object."""

    def __init__(self, text: str):
        super().__init__(object_pairs_hook=list, parse_int=_parse_int)
        self.line_starts = [0, *(i + 1 for i, c in enumerate(text) if c == "\n")]
        self.parse_object, self.parse_array = self._object, self._array
        # the scanner written in Python, which calls `parse_object` and `parse_array` (typeshed leaves it out)
        self.scan_once = self._locating(json.scanner.py_make_scanner(self))  # type: ignore[attr-defined]

    def span_of(self, start: int, end: int) -> Span:
        line, end_line = bisect.bisect(self.line_starts, start), bisect.bisect(self.line_starts, end - 1)
        return Span(line, start - self.line_starts[line - 1] + 1, end_line, end - self.line_starts[end_line - 1] + 1)

    def _locating(self, scan: Callable[[str, int], tuple[Any, int]]) -> Callable[[str, int], tuple[Any, int]]:
        def located(text: str, start: int) -> tuple[Any, int]:
            value, end = scan(text, start)
            if type(value) in _LOCATED:
                value = _LOCATED[type(value)](value)
                value.span = self.span_of(start, end)
            return value, end

        return located

    def _object(
        self, text_and_start: tuple[str, int], strict: bool, scan: Callable, hook: Any, pairs_hook: Any, memo: dict
    ) -> tuple[dict[str, Any], int]:
        # json.decoder's object and array parsers are undocumented, and typeshed leaves them out
        pairs, end = json.decoder.JSONObject(  # type: ignore[attr-defined]
            text_and_start, strict, self._locating(scan), hook, pairs_hook, memo
        )
        if (twice := repeated([key for key, _ in pairs])) is not None:
            raise DuplicateKey(twice, self.span_of(text_and_start[1] - 1, end))
        return dict(pairs), end

    def _array(self, text_and_start: tuple[str, int], scan: Callable) -> tuple[list[Any], int]:
        return json.decoder.JSONArray(text_and_start, self._locating(scan))  # type: ignore[attr-defined]


def _parse_int(digits: str) -> int | float:
    """An integer, or infinity for one too long to be a usable number (Python refuses to read over 4300 digits)."""
    return int(digits) if len(digits) <= 400 else float(digits)


def span_of(data: Any) -> Span | None:
    return getattr(data, "span", None)


# Objects and arrays in objects and arrays: two for each level of the IR at most (a call's object and its array of
# arguments), so that the JSON form of every model within `MAX_DEPTH` loads.
MAX_JSON_DEPTH = 2 * MAX_DEPTH
# a string (to its closing quote, or to the end of an unterminated one, without backtracking: one pass over the text
# whatever it holds), or a bracket
_JSON_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)


def too_deep_text(text: str) -> Span | None:
    """Where JSON text first nests objects and arrays more than `MAX_JSON_DEPTH` deep (strings skipped), if it
    does: decoding and checking such text would exhaust Python's recursion limit."""
    depth = 0
    for match in _JSON_BRACKETS.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                return Span(line, column, line, column + 1)
        elif match.group() in "]}":
            depth -= 1
    return None


def repeated(names: list[str]) -> str | None:
    """The first name that occurs a second time, if any."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None

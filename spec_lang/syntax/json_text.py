"""JSON text decoded with the line and column of every value, so that errors in a JSON model point into the file;
the depth check that keeps decoding safe, and what else the schema cannot rule out."""

from __future__ import annotations

import bisect
import json
import re
import sys
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
    spans: dict[str, Span]  # of each member's value, `null`, `true` and `false` too


class _Array(list):
    span: Span
    spans: list[Span]  # of each item (the numbers of an array of numbers alone are plain `int` and `float`)


class _String(str):
    span: Span


class _Int(int):
    span: Span


class _Float(float):
    span: Span


_LOCATED = {str: _String, int: _Int, float: _Float}  # objects and arrays are built located; true, false, null cannot be
# a flat array of numbers, read in one go rather than number by number (a list of a million numbers loads in seconds)
_JSON_NUMBER = r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?"
_NUMBERS = re.compile(rf"[ \t\n\r]*{_JSON_NUMBER}(?:[ \t\n\r]*,[ \t\n\r]*{_JSON_NUMBER})*+[ \t\n\r]*\]")
_NUMBER = re.compile(_JSON_NUMBER)


class LocatingDecoder(json.JSONDecoder):
    """A JSON decoder (the standard library's, in Python) whose objects, arrays, strings and numbers carry the span
    of their text (`span_of`), and whose objects and arrays hold the span of each of their values (`member_span`):
    of `null`, `true` and `false` too, which cannot carry one, and of the numbers of an array of numbers alone,
    which are read in one go as plain numbers. Keys given twice are an error, at their object. The text's line ends
    are `\\n` (see `normalise_newlines`)."""

    def __init__(self, text: str):
        super().__init__(object_pairs_hook=list, parse_int=_parse_int)
        self.line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
        self.parse_object, self.parse_array = self._object, self._array
        # the scanner written in Python, which calls `parse_object` and `parse_array` (typeshed leaves it out)
        self.scan_once = self._locating(json.scanner.py_make_scanner(self), [])  # type: ignore[attr-defined]

    def span_of(self, start: int, end: int) -> Span:
        line, end_line = bisect.bisect(self.line_starts, start), bisect.bisect(self.line_starts, end - 1)
        return Span(line, start - self.line_starts[line - 1] + 1, end_line, end - self.line_starts[end_line - 1] + 1)

    def _locating(
        self, scan: Callable[[str, int], tuple[Any, int]], spans: list[Span]
    ) -> Callable[[str, int], tuple[Any, int]]:
        """`scan` giving each value it reads its span, and appending the span to `spans`."""

        def located(text: str, start: int) -> tuple[Any, int]:
            value, end = scan(text, start)
            span = self.span_of(start, end)
            if type(value) in _LOCATED:
                value = _LOCATED[type(value)](value)
            if value is not None and value is not True and value is not False:
                value.span = span
            spans.append(span)
            return value, end

        return located

    def _object(
        self, text_and_start: tuple[str, int], strict: bool, scan: Callable, hook: Any, pairs_hook: Any, memo: dict
    ) -> tuple[dict[str, Any], int]:
        # json.decoder's object and array parsers are undocumented, and typeshed leaves them out
        spans: list[Span] = []
        pairs, end = json.decoder.JSONObject(  # type: ignore[attr-defined]
            text_and_start, strict, self._locating(scan, spans), hook, pairs_hook, memo
        )
        if (twice := repeated([key for key, _ in pairs])) is not None:
            raise DuplicateKey(twice, self.span_of(text_and_start[1] - 1, end))
        located = _Object(pairs)
        located.spans = {key: span for (key, _), span in zip(pairs, spans, strict=True)}
        return located, end

    def _array(self, text_and_start: tuple[str, int], scan: Callable) -> tuple[list[Any], int]:
        text, start = text_and_start
        spans: list[Span] = []
        flat = _NUMBERS.match(text, start)
        if flat is not None:
            # plain numbers, as many as a million: their spans are the array's
            values = []
            for number in _NUMBER.finditer(text, start, flat.end()):
                found = number.group()  # read as the scanner reads it: a float with a fraction or an exponent
                values.append(float(found) if number.lastindex else _parse_int(found))
                spans.append(self.span_of(*number.span()))
            end = flat.end()
        else:
            values, end = json.decoder.JSONArray(text_and_start, self._locating(scan, spans))  # type: ignore[attr-defined]
        located = _Array(values)
        located.spans = spans
        return located, end


def member_span(container: Any, key: str | int) -> Span | None:
    """The span of a value of a decoded object or array, by its key or index, whatever the value (`null` too)."""
    try:
        return container.spans[key]
    except (AttributeError, KeyError, IndexError, TypeError):  # data that was not decoded from text
        return None


def _parse_int(digits: str) -> int | float:
    """An integer, or infinity for one too long to be a usable number (Python refuses to read over 4300 digits)."""
    return int(digits) if len(digits) <= 400 else float(digits)


JsonPath = tuple[str | int, ...]  # the keys and indices that lead to a value


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


def span_at(data: Any, path: JsonPath) -> Span | None:
    """Where the value at a path is in the text (`null`, `true` and `false` too; for an unknown key, the key's
    value), or as near to it as the text tells."""
    span = span_of(data)
    for part in path:
        inner = member_span(data, part)
        if inner is None:
            break
        span, data = inner, data[part]
    return span


def beyond_schema(data: Any) -> list[tuple[JsonPath, str, str | None, Span | None]]:
    """What JSON data may hold that the schema cannot exclude: nesting deeper than `MAX_JSON_DEPTH` (not searched
    further: the schema's validator recurses) and numbers that are not finite or too large for a float."""
    problems: list[tuple[JsonPath, str, str | None, Span | None]] = []
    pending: list[tuple[JsonPath, Any, Span | None]] = [((), data, span_of(data))]
    while pending:
        path, value, span = pending.pop()
        if isinstance(value, (dict, list)) and len(path) >= MAX_JSON_DEPTH:
            problems.append(
                (
                    path,
                    f"nested more than {MAX_JSON_DEPTH} levels deep",
                    "no model nests objects and arrays this deeply",
                    span,
                )
            )
        elif isinstance(value, dict):
            pending.extend(((*path, key), item, member_span(value, key)) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(
                ((*path, index), item, member_span(value, index))
                for index, item in enumerate(value)
                if isinstance(item, (dict, list)) or not usable_number(item)  # not each of a million numbers
            )
        elif not usable_number(value):
            shown = str(float(value)) if isinstance(value, float) else "an integer beyond 1.8e+308"
            problems.append(
                (
                    path,
                    f"{shown} is not a usable number",
                    f"numbers are finite, at most about {sys.float_info.max:.1e}",
                    span,
                )
            )
    return problems


def usable_number(value: Any) -> bool:
    """Whether a JSON value is anything but a number that is not finite or too large for a float."""
    return not isinstance(value, (int, float)) or isinstance(value, bool) or abs(value) <= sys.float_info.max


def repeated(names: list[str]) -> str | None:
    """The first name that occurs a second time, if any."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None

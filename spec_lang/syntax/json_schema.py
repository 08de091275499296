"""The JSON door's schema (`schema/dann.schema.json`, packaged) and its errors as problems a diagnostic can show:
each unknown or missing key, wrong type or value at its JSON pointer, with a hint.

>>> [message for _, message, _ in schema_problems({"version": 1, "model": "m", "stacks": [{"layers": []}]})]
["missing key 'name'"]
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from spec_lang.diagnostics import did_you_mean
from spec_lang.syntax.json_text import JsonPath

_JSON_TYPES = {
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "array": "an array",
    "object": "an object",
}


def schema_problems(data: Any) -> list[tuple[JsonPath, str, str | None]]:
    """(path, message, hint) of each way JSON data breaks the schema; none for a model."""
    return [problem for error in validator().iter_errors(abridged(data)) for problem in _problems(error)]


def schema_text() -> str:
    """The JSON Schema of the JSON door, as packaged (`spec_lang/syntax/schema/dann.schema.json`)."""
    return (files("spec_lang.syntax") / "schema" / "dann.schema.json").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text()))


def path_key(path: JsonPath) -> tuple[tuple[bool, str | int], ...]:
    return tuple((isinstance(part, str), part) for part in path)


def pointer(path: JsonPath) -> str:
    """The JSON pointer (RFC 6901) of a path; `top level` for the document itself."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path) or "top level"


def abridged(data: Any) -> Any:
    """The data as the schema's validator sees it: each array of more than a few numbers cut to its first number.
    The schema checks every item of an array alike and no number by its value (`tests/syntax/test_jsonio.py`
    checks), so the verdict is the same, and a list of a million numbers validates in no time; an array of numbers
    where the schema wants something else is reported once, at its first item."""
    if isinstance(data, dict):
        return {key: abridged(value) for key, value in data.items()}
    if isinstance(data, list):
        if len(data) > 8 and all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in data):
            return data[:1]
        return [abridged(item) for item in data]
    return data


def _problems(error: ValidationError) -> list[tuple[JsonPath, str, str | None]]:
    """(path, message, hint) of a schema error; each unknown and each missing key is its own problem."""
    path, value, expected = tuple(error.absolute_path), error.instance, error.validator_value
    hint = error.schema.get("description")
    match error.validator:
        case "additionalProperties":
            known = list(error.schema.get("properties", {}))
            return [
                ((*path, key), f"unknown key '{key}'", did_you_mean(key, known) or f"the keys: {', '.join(known)}")
                for key in value
                if key not in known
            ]
        case "required":
            return [(path, f"missing key '{key}'", hint) for key in expected if key not in value]
        case "oneOf":  # a value of one of several types (one optimize statement, or a list): its type's errors
            fitting = _fitting_branch(error)
            if fitting:
                return [problem for inner in fitting for problem in _problems(inner)]
        case "anyOf":  # each anyOf in the schema lists keys of which an object needs one
            return [(path, f"missing key: one of {_either([repr(b['required'][0]) for b in expected])}", hint)]
        case "not":  # each `not` in the schema lists keys that exclude each other
            return [(path, f"give {_either([repr(key) for key in expected['required']])}, not both", hint)]
        case "type":
            words = [_JSON_TYPES[t] for t in (expected if isinstance(expected, list) else [expected])]
            return [(path, f"expected {_either(words)}, got {_json_type(value)}", hint)]
        case "enum":
            choices = [str(choice) for choice in expected]
            return [
                (path, f"{_show(value)} is not one of {', '.join(choices)}", did_you_mean(str(value), choices) or hint)
            ]
        case "const":
            return [(path, f"expected {_show(expected)}, got {_show(value)}", hint)]
        case "pattern" if "title" in error.schema:
            return [(path, f"{_show(value)} is not {error.schema['title']}", hint)]
        case "pattern":
            return [
                (
                    path,
                    f"{_show(value)} is not a name",
                    "a name is letters, digits and _, not led by a digit, and not true or false",
                )
            ]
    return [(path, error.message, hint)]


def _fitting_branch(error: ValidationError) -> list[ValidationError]:
    """The errors of the one branch of a `oneOf` whose type the value has, or none when not exactly one has it."""
    branches: dict[object, list[ValidationError]] = {}
    for inner in error.context or ():
        branches.setdefault(inner.relative_schema_path[0], []).append(inner)
    fitting = [
        errors
        for errors in branches.values()
        if not any(e.validator == "type" and e.absolute_path == error.absolute_path for e in errors)
    ]
    return fitting[0] if len(fitting) == 1 else []


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _show(value: Any) -> str:
    """A JSON value as a message shows it: a string in quotes with its line breaks and such escaped."""
    return repr(str(value)) if isinstance(value, str) else json.dumps(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    found = [words for name, words in _JSON_TYPES.items() if validator().is_type(value, name)]
    return found[0] if found else f"a Python {type(value).__name__}"

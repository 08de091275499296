"""Mutations of a JSON model's data for the front end's fuzzing (`fuzzing.py`): keys dropped, renamed or added,
values replaced by other types (NaN, infinity, hostile strings), deep nesting, the version changed; then sometimes a
mutation of the text (`mutations.py`).

>>> import random
>>> data, done = mutate_json(random.Random(0), '{"version": 1, "model": {"name": "m"}}')
>>> isinstance(data, bytes) and len(done) >= 1
True
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from mutations import mutate_text, repeat_count

JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    10**30,
    float("inf"),
    float("nan"),
    "",
    "x",
    "true",
    "dense",
    "for",
    "x y",
    'a"b',
    "a\nb",
    "__import__('os').system('true')",
    "\u0430",
    [],
    {},
    [1, 2],
    {"call": "f"},
    {"op": "neg"},
    {"op": "%", "left": 1, "right": 2},
    {"call": "reverse", "args": ["x"], "kwargs": {"lambda": 1}},
)
JSON_KEYS = (
    "version",
    "model",
    "params",
    "inputs",
    "stacks",
    "name",
    "layers",
    "dense",
    "activation",
    "layer",
    "call",
    "args",
    "kwargs",
    "op",
    "left",
    "right",
    "operand",
    "for",
    "in",
    "body",
    "options",
    "template",
    "precison",
    "",
    "a/b~c",
    "\u0430",
)


def _containers(data: Any) -> list[Any]:
    """Every object and array in the data, found without recursion."""
    found, pending = [], [data]
    while pending:
        item = pending.pop()
        if isinstance(item, (dict, list)):
            found.append(item)
            pending.extend(item.values() if isinstance(item, dict) else item)
    return found


def _some_container(rng: random.Random, data: Any) -> dict | list:
    return rng.choice(_containers(data) or [[]])


def _json_drop(rng: random.Random, data: Any) -> None:
    target = _some_container(rng, data)
    if target:
        key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
        del target[key]


def _json_replace(rng: random.Random, data: Any) -> None:
    target = _some_container(rng, data)
    if target:
        key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
        target[key] = json.loads(json.dumps(rng.choice(JSON_VALUES)))


def _json_rename(rng: random.Random, data: Any) -> None:
    objects = [c for c in _containers(data) if isinstance(c, dict) and c]
    if objects:
        target = rng.choice(objects)
        key = rng.choice(list(target))
        target[rng.choice(JSON_KEYS)] = target.pop(key)


def _json_nest(rng: random.Random, data: Any) -> None:
    target = _some_container(rng, data)
    if target:
        key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
        value = target[key]
        for _ in range(repeat_count(rng)):
            value = rng.choice([[value], {"op": "neg", "operand": value}, {"call": "f", "args": [value]}])
        target[key] = value


def _json_version(rng: random.Random, data: Any) -> None:
    if isinstance(data, dict):
        data["version"] = rng.choice([0, 2, 99, "1", True, None, 1.5, -1, [1]])


JSON_MUTATIONS: tuple[Callable[[random.Random, Any], None], ...] = (
    _json_drop,
    _json_replace,
    _json_rename,
    _json_nest,
    _json_version,
)


def mutate_json(rng: random.Random, text: str) -> tuple[bytes, list[str]]:
    """A JSON model with one or two mutations of its data, then sometimes one of its text."""
    data, done = json.loads(text), []
    for _ in range(rng.randint(1, 2)):
        mutation = rng.choice(JSON_MUTATIONS)
        mutation(rng, data)
        done.append(mutation.__name__.strip("_"))
    try:
        text = json.dumps(data, indent=rng.choice([None, 1]))
    except RecursionError:  # nested too deeply for the encoder: write the text by hand
        text, done = "[" * 5000 + "]" * 5000, [*done, "deep text"]
    if rng.random() < 0.3:
        data, more = mutate_text(rng, text)
        return data, done + more
    return text.encode("utf-8", errors="surrogatepass"), done

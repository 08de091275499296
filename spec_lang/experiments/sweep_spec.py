"""What a sweep trains: the swept parameters (values, or distributions to draw from), the seeds, the length of each
run, the data and the selector, from `specc sweep --grid …` and a sweep file (JSON, checked against `SCHEMA` with
located errors, E820); and the settings and trials they expand to.

>>> definition = SweepDefinition("m.dann", {"lr": [0.1, 0.01], "hp_lambda": [0.5]}, seeds=[0, 1])
>>> definition.settings()
[{'lr': 0.1, 'hp_lambda': 0.5}, {'lr': 0.01, 'hp_lambda': 0.5}]
>>> parse_grid(["lr=0.1,0.01", "hidden=[32],[32,32]"])
{'lr': [0.1, 0.01], 'hidden': [[32], [32, 32]]}
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from jsonschema import Draft202012Validator

from spec_lang.diagnostics import Diagnostic, Source, Span, SpecError, did_you_mean, file_error
from spec_lang.experiments.seeds import MAX_SEED, MAX_SEEDS
from spec_lang.syntax.json_text import LocatingDecoder, span_at, too_deep_text
from spec_lang.syntax.sources import read_source

MAX_TRIALS = 100_000  # settings × seeds of one sweep; more is a slip, not an experiment
DISTRIBUTIONS = ("loguniform", "uniform", "choice")
_NUMBER = {"type": "number"}
_RANGE = {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}
_PATHS = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "specc sweep file",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "parameters": {
            "type": "object",
            "description": "model parameters: a list of values each, or a distribution",
            "additionalProperties": {
                "oneOf": [
                    {"type": "array", "minItems": 1},
                    {"type": "object", "additionalProperties": False, "required": ["loguniform"],
                     "properties": {"loguniform": _RANGE}},
                    {"type": "object", "additionalProperties": False, "required": ["uniform"],
                     "properties": {"uniform": _RANGE}},
                    {"type": "object", "additionalProperties": False, "required": ["choice"],
                     "properties": {"choice": {"type": "array", "minItems": 1}}},
                ],
                "description": 'e.g. [0.1, 0.01], {"loguniform": [1e-4, 1e-1]} or {"choice": [16, 32]}',
            },
        },
        "set": {"type": "object", "description": "model parameters fixed for every trial, as --set"},
        "samples": {"type": "integer", "minimum": 1, "description": "draws of the distributions (default 1)"},
        "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": MAX_SEED}, "minItems": 1,
                  "uniqueItems": True, "description": "e.g. [0, 1, 2]"},
        "epochs": {"type": "integer", "minimum": 1},
        "steps": {"type": "integer", "minimum": 1},
        "batch_size": {"type": "integer", "minimum": 1},
        "source": _PATHS,
        "target": _PATHS,
        "select_by": {"type": "string", "description": "a validator, or a key of the epoch record"},
        "validators": {"type": "array", "items": {"type": "string"}, "description": "more validators to log and "
                       "report the choice of, e.g. [\"snd\", \"entropy\"]"},
        "val": {"type": "string", "description": "held-out labelled source rows for the validators"},
        "val_fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1,
                         "description": "hold out this fraction of the source's rows for the validators"},
    },
}  # fmt: skip


@dataclass(frozen=True)
class SweepDefinition:
    """A sweep: the spec, the swept `parameters` (name → list of values, or `{"loguniform": [a, b]}`,
    `{"uniform": [a, b]}`, `{"choice": [...]}` drawn `samples` times), parameters `fixed` for every trial, the
    seeds, the length and batch size of each run, the data files, the selector and further `validators` (whose
    choices are reported beside it), and the validators' held-out source rows: a file `val` or a `val_fraction`."""

    spec: str
    parameters: dict[str, Any]
    fixed: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    epochs: int | None = None
    steps: int | None = None
    batch_size: int = 32
    source: list[str] = field(default_factory=list)
    target: list[str] | None = None
    select_by: str = "source_accuracy"
    samples: int = 1
    validators: list[str] = field(default_factory=list)
    val: str | None = None
    val_fraction: float | None = None

    def settings(self) -> list[dict[str, Any]]:
        """Every setting of the swept parameters: the product of the lists of values, `samples` times, with the
        distributions drawn anew each time (from `PCG64(0)`: the same definition gives the same settings)."""
        generator = np.random.Generator(np.random.PCG64(0))
        grid = {n: v for n, v in self.parameters.items() if isinstance(v, list)}
        settings = []
        for _ in range(self.samples):
            for values in itertools.product(*grid.values()):
                drawn = dict(zip(grid, values, strict=True))
                setting = {n: drawn[n] if n in drawn else _draw(v, generator) for n, v in self.parameters.items()}
                settings.append(setting)
        return settings

    def check(self) -> None:
        """What needs no spec: some data, a length, distributions only with `samples`, not too many trials (E820)."""
        drawn = [n for n, v in self.parameters.items() if isinstance(v, dict)]
        count = self.samples * math.prod(len(v) for v in self.parameters.values() if isinstance(v, list))
        problems = [
            (not self.source, "the sweep has no source data", "pass --source FILE, or `source` in the sweep file"),
            (self.epochs is not None and self.steps is not None, "give epochs or steps, not both", "choose one"),
            (self.samples > 1 and not drawn, f"--samples {self.samples} draws nothing: no parameter is a distribution",
             'give a distribution, e.g. "lr": {"loguniform": [1e-4, 1e-1]}, or leave --samples out'),
            (count * len(self.seeds) > MAX_TRIALS, f"the sweep has {count * len(self.seeds)} trials, more than "
             f"{MAX_TRIALS}", "sweep fewer values"),
            (len(self.seeds) > MAX_SEEDS, f"more than {MAX_SEEDS} seeds", "sweep fewer seeds"),
            (self.val is not None and self.val_fraction is not None, "give val or val_fraction, not both",
             "choose one"),
        ]  # fmt: skip
        for problem, message, hint in problems:
            if problem:
                raise file_error(None, "E820", message, hint)


def _draw(distribution: dict[str, list[Any]], generator: np.random.Generator) -> Any:
    (kind, values), *_ = distribution.items()
    if kind == "choice":
        return values[int(generator.integers(len(values)))]
    low, high = float(values[0]), float(values[1])
    if kind == "loguniform":
        return float(math.exp(generator.uniform(math.log(low), math.log(high))))
    return float(generator.uniform(low, high))


def parse_grid(pairs: list[str]) -> dict[str, Any]:
    """`--grid NAME=V1,V2` pairs: each value JSON (a number, true/false, a list), or one distribution object
    (`--grid 'lr={"loguniform": [1e-4, 0.1]}'`); a name given twice or text that is not JSON is an error (E820)."""
    grid: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        try:
            if not sep or not name or too_deep_text(text) is not None:
                raise ValueError
            values = json.loads(f"[{text}]")
        except ValueError:
            values = []
        if not values:
            raise file_error(
                None, "E820", f"cannot read --grid {pair[:60]}", "write NAME=V1,V2,… with JSON values, e.g. lr=0.1,0.01"
            )
        if name in grid:
            raise file_error(None, "E820", f"--grid {name} is given twice", "give each parameter once, values joined")
        grid[name] = values[0] if len(values) == 1 and _is_distribution(values[0]) else values
        problems = list(_validator().iter_errors({"parameters": {name: grid[name]}}))
        if problems:
            raise file_error(None, "E820", f"cannot read --grid {pair[:60]}", str(SCHEMA["properties"]["parameters"]
                             ["additionalProperties"]["description"]))  # fmt: skip
    return grid


def _is_distribution(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS


def read_sweep_file(path: str | Path) -> dict[str, Any]:
    """The sweep file's content, checked against `SCHEMA`; relative data paths are made relative to the file's
    folder. A file that is not JSON, or against the schema, is an error at the place in the file (E820)."""
    source = read_source(path)  # E001 when it cannot be read
    text = source.text
    deep = too_deep_text(text)
    if deep is not None:
        raise _located(source, [("top level", "nested too deeply", None, deep)])
    try:
        data = LocatingDecoder(text).decode(text)
    except json.JSONDecodeError as error:
        span = Span(error.lineno, error.colno, error.lineno, error.colno + 1)
        raise _located(source, [("", f"invalid JSON: {error.msg}", None, span)]) from None
    except ValueError as error:  # a key given twice (`DuplicateKey` carries its span)
        raise _located(source, [("", f"a key is given twice: {error}", None, getattr(error, "span", None))]) from None
    problems = []
    for problem in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = tuple(problem.absolute_path)
        message = problem.message if len(problem.message) <= 120 else problem.message[:117] + "…"
        hint = problem.schema.get("description") if isinstance(problem.schema, dict) else None
        if problem.validator == "additionalProperties" and not where:
            unknown = [k for k in data if k not in SCHEMA["properties"]]
            message = f"unknown key '{unknown[0]}'" if unknown else message
            hint = did_you_mean(unknown[0], list(SCHEMA["properties"])) if unknown else hint
            where = (unknown[0],) if unknown else where
        pointer = "".join(f"/{part}" for part in where) or "top level"
        problems.append((pointer, message, hint, span_at(data, where)))
    if problems:
        raise _located(source, problems)
    folder = Path(path).parent
    if "val" in data:
        data["val"] = str(folder / data["val"])
    for key in ("source", "target"):
        if key in data:
            data[key] = [str(folder / p) for p in ([data[key]] if isinstance(data[key], str) else data[key])]
    return json.loads(json.dumps(data))  # plain types, without the spans


def _located(source: Source, problems: list[tuple[str, str, str | None, Span | None]]) -> SpecError:
    return SpecError(
        [
            Diagnostic("error", "E820", f"{pointer}: {message}" if pointer else message, span, hint)
            for pointer, message, hint, span in problems
        ],
        source,
    )


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(SCHEMA)

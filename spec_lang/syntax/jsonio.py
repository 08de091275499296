"""The JSON door: the IR as plain JSON, checked against `schema/dann.schema.json`, and back.

Expressions are plain JSON where they can be: numbers, `true`/`false`, a string is a name and an array
is a list; calls and arithmetic are objects: `{"call": "bce", "args": ["p", 0]}`,
`{"op": "+", "left": "a", "right": 1}`, `{"op": "neg", "operand": "a"}`. Empty and absent parts are
left out, and `load_json(dump_json(model)) == model` for every model the other doors build (whose parameters,
and the keyword arguments of each call, have distinct names: a JSON object holds a key once). Names and numbers
follow the text's rules, so that every JSON model prints as text too: no name `true` or `false`, no layer call
named `dense` or `for`, no number that is not finite.

>>> from spec_lang.syntax.parser import parse
>>> model = parse("model m(width = 3)\\nstack s { dense width tanh; reverse(lambda = 0.5) }\\n")
>>> dump_json(model)["stacks"]
[{'name': 's', 'layers': [{'dense': 'width', 'activation': 'tanh'}, {'layer': 'reverse', 'kwargs': {'lambda': 0.5}}]}]
>>> load_json(dump_json(model)) == model
True
>>> loads_json('{"version": 1, "model": "m", "precison": "float64"}', "m.json")
Traceback (most recent call last):
spec_lang.diagnostics.SpecError: m.json:1:42: error[E120]: /precison: unknown key 'precison'
  1 | {"version": 1, "model": "m", "precison": "float64"}
    |                                          ^^^^^^^^^
  hint: did you mean 'precision'?
"""

from __future__ import annotations

import json
from itertools import repeat
from typing import Any, cast

from spec_lang.diagnostics import Diagnostic, Source, Span, SpecError, normalise_newlines
from spec_lang.syntax import ir
from spec_lang.syntax.json_dump import VERSION, dump_json, dumps_json
from spec_lang.syntax.json_schema import path_key, pointer, schema_problems
from spec_lang.syntax.json_text import (
    MAX_JSON_DEPTH,
    DuplicateKey,
    LocatingDecoder,
    beyond_schema,
    member_span,
    span_at,
    span_of,
    too_deep_text,
)

__all__ = ["VERSION", "dump_json", "dumps_json", "load_json", "loads_json"]  # the door, both ways


# JSON → IR -------------------------------------------------------------------------------------


def loads_json(text: str, filename: str) -> ir.Model:
    """Parse JSON text into the IR; bad JSON, a duplicate key or a schema violation raises `SpecError`. Every part
    of the model remembers where it is in the text, so that the checker's messages point into the file. A line
    ends with `\\n`, `\\r\\n` or a lone `\\r`."""
    text = normalise_newlines(text)
    source = Source(filename, text)
    deep = too_deep_text(text)
    if deep is not None:
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    "E120",
                    f"nested more than {MAX_JSON_DEPTH} levels deep",
                    deep,
                    "no model nests objects and arrays this deeply",
                )
            ],
            source,
        )
    try:
        data = LocatingDecoder(text).decode(text)
    except json.JSONDecodeError as error:
        span = Span(error.lineno, error.colno, error.lineno, error.colno + 1)
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    "E120",
                    f"invalid JSON: {error.msg}",
                    span,
                    "JSON wants double-quoted keys and strings, and commas between items but not after the last",
                )
            ],
            source,
        ) from None
    except DuplicateKey as error:
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    "E120",
                    f"the key '{error.key}' is given twice in one object",
                    error.span,
                    "keep one of them",
                )
            ],
            source,
        ) from None
    return _load(data, source)


def load_json(data: Any, filename: str = "<json>") -> ir.Model:
    """The IR of JSON data (as `json.load` returns it); a schema violation raises `SpecError`."""
    return _load(data, Source(filename, ""))


def _load(data: Any, source: Source) -> ir.Model:
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version != VERSION:
        raise SpecError(
            [
                Diagnostic(
                    "error",
                    "E120",
                    f"/version: this file is version {version}; this specc reads version {VERSION}",
                    span_of(version),
                    f"read it with the specc that wrote it, or write it again as version {VERSION}",
                )
            ],
            source,
        )
    problems = beyond_schema(data) or [
        (path, message, hint, span_at(data, path)) for path, message, hint in schema_problems(data)
    ]
    if problems:
        unique = dict.fromkeys(problems)
        raise SpecError(
            [
                Diagnostic("error", "E120", f"{pointer(path)}: {message}", span, hint)
                for path, message, hint, span in sorted(unique, key=lambda p: path_key(p[0]))
            ],
            source,
        )
    return _load_model(data)


def _load_model(data: dict[str, Any]) -> ir.Model:
    """The IR of valid JSON data. Each node has the span of the JSON value it comes from (`true` and `false`, which
    cannot carry one, that of their place in the object or array that holds them)."""
    init, optimize = data.get("init"), data.get("optimize", [])
    params, includes = data.get("params", {}), data.get("includes", [])
    return ir.Model(
        str(data["model"]),
        params=tuple(
            ir.Param(name, _load_expr(value, _at(params, name)), span=_at(params, name))
            for name, value in params.items()
        ),
        inputs=tuple(
            ir.Input(
                str(i["name"]),
                str(i["dtype"]),
                tuple(_load_expr(d, _at(i["shape"], k)) for k, d in enumerate(i["shape"])),
                _load_optional(i.get("bound"), _at(i, "bound")),
                span=span_of(i),
            )
            for i in data.get("inputs", [])
        ),
        stacks=tuple(
            ir.Stack(
                str(s["name"]),
                tuple(map(_load_layer, s.get("layers", []))),
                _load_keywords(s.get("options", {}), _at(s, "options")),
                cast(ir.Call | None, _load_optional(s.get("template"), _at(s, "template"))),  # the schema says a call
                span=span_of(s),
            )
            for s in data.get("stacks", [])
        ),
        lets=tuple(
            ir.Let(str(d["name"]), _load_expr(d["value"], _at(d, "value")), span=span_of(d))
            for d in data.get("lets", [])
        ),
        heads=tuple(
            ir.Head(str(d["name"]), _load_expr(d["value"], _at(d, "value")), span=span_of(d))
            for d in data.get("heads", [])
        ),
        losses=tuple(
            ir.Loss(
                str(d["name"]), _load_expr(d["value"], _at(d, "value")), d.get("adversarial") is True, span=span_of(d)
            )
            for d in data.get("losses", [])
        ),
        optimizers=tuple(map(_load_optimize, optimize if isinstance(optimize, list) else [optimize])),
        stages=tuple(
            ir.Stage(
                str(d["name"]),
                _names(d["runs"]),
                _load_keywords(d.get("options", {}), _at(d, "options")),
                span=span_of(d),
            )
            for d in data.get("stages", [])
        ),
        init=None
        if not init
        else ir.Init(**{role: _load_expr(value, _at(init, role)) for role, value in init.items()}, span=span_of(init)),
        seed=_load_optional(data.get("seed"), _at(data, "seed")),
        precision=None if data.get("precision") is None else str(data["precision"]),
        includes=tuple(ir.Include(str(path), span=_at(includes, k)) for k, path in enumerate(includes)),
        templates=tuple(
            ir.Template(
                str(t["name"]),
                tuple(
                    ir.TemplateParam(name, _load_optional(default, _at(t["params"], name)), span=_at(t["params"], name))
                    for name, default in t.get("params", {}).items()
                ),
                tuple(map(_load_layer, t["layers"])),
                span=span_of(t),
            )
            for t in data.get("templates", [])
        ),
        span=span_of(data),
    )


def _at(container: Any, key: str | int) -> Span | None:
    """Where a value of an object or array is in the text, or (for data not read from text) the container."""
    return member_span(container, key) or span_of(container)


def _load_optional(data: Any, span: Span | None) -> ir.Expr | None:
    return None if data is None else _load_expr(data, span)


def _load_expr(data: Any, span: Span | None = None) -> ir.Expr:
    """An expression; `span` is where it is in the text (`_at`): `true` and `false` cannot carry their own."""
    span = span_of(data) or span
    if isinstance(data, bool):
        return ir.Bool(data, span=span)
    if isinstance(data, (int, float)):
        return ir.Number(float(data) if isinstance(data, float) else int(data), span=span)
    if isinstance(data, str):
        return ir.Ref(str(data), span=span)
    if isinstance(data, list):
        spans = getattr(data, "spans", None)  # of the items; None for data not read from text
        items = zip(data, spans, strict=True) if spans is not None else zip(data, repeat(span))
        return ir.ListExpr(tuple(_load_expr(item, at) for item, at in items), span=span)
    if "call" in data:
        return ir.Call(str(data["call"]), *_load_arguments(data), span=span)
    if data["op"] == "neg":
        return ir.negate(_load_expr(data["operand"], _at(data, "operand")), span)
    return ir.BinOp(
        str(data["op"]),
        _load_expr(data["left"], _at(data, "left")),
        _load_expr(data["right"], _at(data, "right")),
        span=span,
    )


def _load_arguments(data: dict[str, Any]) -> tuple[tuple[ir.Expr, ...], tuple[ir.Keyword, ...]]:
    """The arguments of a call or of a layer written as one."""
    args = data.get("args", [])
    return tuple(_load_expr(arg, _at(args, k)) for k, arg in enumerate(args)), _load_keywords(
        data.get("kwargs", {}), _at(data, "kwargs")
    )


def _load_optimize(data: dict[str, Any]) -> ir.Optimize:
    return ir.Optimize(
        cast(ir.Call, _load_expr(data["optimizer"])),  # the schema says a call
        _load_optional(data.get("minimize"), _at(data, "minimize")),
        None if data.get("name") is None else str(data["name"]),
        _names(data.get("updates", [])),
        _load_optional(data.get("repeat"), _at(data, "repeat")),
        span=span_of(data),
    )


def _names(data: list[Any]) -> tuple[ir.Ref, ...]:
    """A list of names (the schema says strings), each with its place in the text."""
    return tuple(ir.Ref(str(name), span=span_of(name) or _at(data, k)) for k, name in enumerate(data))


def _load_keywords(data: dict[str, Any], around: Span | None) -> tuple[ir.Keyword, ...]:
    return tuple(
        ir.Keyword(name, _load_expr(value, _at(data, name) or around), span=_at(data, name) or around)
        for name, value in data.items()
    )


def _load_layer(data: dict[str, Any]) -> ir.Layer:
    span = span_of(data)
    if "dense" in data:
        return ir.Dense(
            _load_expr(data["dense"], _at(data, "dense")),
            str(data["activation"]),
            _load_keywords(data.get("options", {}), _at(data, "options")),
            span=span,
        )
    if "layer" in data:
        return ir.LayerCall(str(data["layer"]), *_load_arguments(data), span=span)
    return ir.ForLayers(
        str(data["for"]), _load_expr(data["in"], _at(data, "in")), tuple(map(_load_layer, data["body"])), span=span
    )

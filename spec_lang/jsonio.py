"""The JSON door: the IR as plain JSON, checked against `schema/dann.schema.json`, and back.

Expressions are plain JSON where they can be: numbers, `true`/`false`, a string is a name and an array
is a list; calls and arithmetic are objects: `{"call": "bce", "args": ["p", 0]}`,
`{"op": "+", "left": "a", "right": 1}`, `{"op": "neg", "operand": "a"}`. Empty and absent parts are
left out, and `load_json(dump_json(model)) == model` for every model (whose parameters, and the keyword
arguments of each call, have distinct names: a JSON object holds a key once).

>>> from spec_lang.parser import parse
>>> model = parse("model m(width = 3)\\nstack s { dense width tanh; reverse(lambda = 0.5) }\\n")
>>> dump_json(model)["stacks"]
[{'name': 's', 'layers': [{'dense': 'width', 'activation': 'tanh'}, {'layer': 'reverse', 'kwargs': {'lambda': 0.5}}]}]
>>> load_json(dump_json(model)) == model
True
>>> loads_json('{"version": 1, "model": "m", "precison": "float64"}', "m.json")
Traceback (most recent call last):
spec_lang.diagnostics.SpecError: m.json: error[E120]: /precison: unknown key 'precison'
  hint: did you mean 'precision'?
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from . import ir
from .diagnostics import Diagnostic, Source, Span, SpecError, did_you_mean

VERSION = 1
_ROLES = ("weights", "biases")
_DEFINITIONS = ("lets", "heads", "losses")
_JSON_TYPES = {"number": "a number", "boolean": "true or false", "string": "a string", "array": "an array",
               "object": "an object"}


# IR → JSON -------------------------------------------------------------------------------------


def dump_json(model: ir.Model) -> dict[str, Any]:
    """The JSON form of a model, as Python data; raises `ValueError` for a name given twice where JSON
    needs an object (model parameters, keyword arguments), since an object cannot hold it."""
    data: dict[str, Any] = {"version": VERSION, "model": model.name}
    if model.params:
        data["params"] = _object([(p.name, _dump_expr(p.default)) for p in model.params], "parameter")
    if model.includes:
        data["includes"] = [i.path for i in model.includes]
    if model.init is not None and (model.init.weights is not None or model.init.biases is not None):
        data["init"] = {role: _dump_expr(value) for role in _ROLES if (value := getattr(model.init, role)) is not None}
    if model.seed is not None:
        data["seed"] = _dump_expr(model.seed)
    if model.precision is not None:
        data["precision"] = model.precision
    if model.inputs:
        data["inputs"] = [_dump_input(i) for i in model.inputs]
    if model.templates:
        data["templates"] = [_dump_template(t) for t in model.templates]
    if model.stacks:
        data["stacks"] = [_dump_stack(s) for s in model.stacks]
    for key in _DEFINITIONS:
        if group := getattr(model, key):
            data[key] = [{"name": d.name, "value": _dump_expr(d.value)} for d in group]
    if model.optimize is not None:
        data["optimize"] = {"optimizer": _dump_expr(model.optimize.optimizer)}
        if model.optimize.objective is not None:
            data["optimize"]["minimize"] = _dump_expr(model.optimize.objective)
    return data


def dumps_json(model: ir.Model) -> str:
    """The JSON text of a model: indented by two spaces, ending in a newline."""
    return json.dumps(dump_json(model), indent=2) + "\n"


def _dump_expr(expr: ir.Expr) -> Any:
    match expr:
        case ir.Number(value=value) | ir.Bool(value=value):
            return value
        case ir.Ref(name=name):
            return name
        case ir.ListExpr(items=items):
            return [_dump_expr(i) for i in items]
        case ir.Call(func=func, args=args, kwargs=kwargs):
            return _dump_call("call", func, args, kwargs)
        case ir.BinOp(op=op, left=left, right=right):
            return {"op": op, "left": _dump_expr(left), "right": _dump_expr(right)}
        case ir.Neg(operand=operand):
            return {"op": "neg", "operand": _dump_expr(operand)}
    raise TypeError(f"not an expression: {expr!r}")


def _dump_call(key: str, name: str, args: tuple[ir.Expr, ...], kwargs: tuple[ir.Keyword, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {key: name}
    if args:
        data["args"] = [_dump_expr(a) for a in args]
    if kwargs:
        data["kwargs"] = _object([(k.name, _dump_expr(k.value)) for k in kwargs], "keyword argument")
    return data


def _dump_stack(stack: ir.Stack) -> dict[str, Any]:
    data: dict[str, Any] = {"name": stack.name}
    if stack.options:
        data["options"] = _object([(k.name, _dump_expr(k.value)) for k in stack.options], "stack option")
    if stack.template is not None:
        data["template"] = _dump_expr(stack.template)
    else:
        data["layers"] = [_dump_layer(layer) for layer in stack.layers]
    return data


def _dump_template(template: ir.Template) -> dict[str, Any]:
    data: dict[str, Any] = {"name": template.name}
    if template.params:
        data["params"] = _object([(p.name, None if p.default is None else _dump_expr(p.default))
                                  for p in template.params], "template parameter")
    data["layers"] = [_dump_layer(layer) for layer in template.layers]
    return data


def _dump_layer(layer: ir.Layer) -> dict[str, Any]:
    match layer:
        case ir.Dense(units=units, activation=activation, options=options):
            data = {"dense": _dump_expr(units), "activation": activation}
            if options:
                data["options"] = _object([(k.name, _dump_expr(k.value)) for k in options], "layer option")
            return data
        case ir.LayerCall(kind=kind, args=args, kwargs=kwargs):
            return _dump_call("layer", kind, args, kwargs)
        case ir.ForLayers(var=var, iterable=iterable, body=body):
            return {"for": var, "in": _dump_expr(iterable), "body": [_dump_layer(b) for b in body]}
    raise TypeError(f"not a layer: {layer!r}")


def _dump_input(node: ir.Input) -> dict[str, Any]:
    data = {"name": node.name, "dtype": node.dtype, "shape": [_dump_expr(d) for d in node.shape]}
    if node.bound is not None:
        data["bound"] = _dump_expr(node.bound)
    return data


def _object(pairs: list[tuple[str, Any]], what: str) -> dict[str, Any]:
    if (twice := _repeated([name for name, _ in pairs])) is not None:
        raise ValueError(f"the {what} '{twice}' is given twice; a JSON object cannot hold both")
    return dict(pairs)


def _repeated(names: list[str]) -> str | None:
    """The first name that occurs a second time, if any."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


# JSON → IR -------------------------------------------------------------------------------------


def loads_json(text: str, filename: str) -> ir.Model:
    """Parse JSON text into the IR; bad JSON, a duplicate key or a schema violation raises `SpecError`."""
    source = Source(filename, text)
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        span = Span(error.lineno, error.colno, error.lineno, error.colno + 1)
        raise SpecError([Diagnostic("error", "E120", f"invalid JSON: {error.msg}", span,
                                    "JSON wants double-quoted keys and strings, and commas between items "
                                    "but not after the last")], source) from None
    except _DuplicateKey as error:
        raise SpecError([Diagnostic("error", "E120", f"the key '{error.key}' is given twice in one object",
                                    None, "keep one of them")], source) from None
    return _load(data, source)


def load_json(data: Any, filename: str = "<json>") -> ir.Model:
    """The IR of JSON data (as `json.load` returns it); a schema violation raises `SpecError`."""
    return _load(data, Source(filename, ""))


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if (twice := _repeated([key for key, _ in pairs])) is not None:
        raise _DuplicateKey(twice)
    return dict(pairs)


def _load(data: Any, source: Source) -> ir.Model:
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version != VERSION:
        raise SpecError([Diagnostic("error", "E120", f"this file is version {version}; this specc reads version "
                                    f"{VERSION}", None, "read it with the specc that wrote it")], source)
    problems = dict.fromkeys(p for error in _validator().iter_errors(data) for p in _problems(error))
    if problems:
        raise SpecError([Diagnostic("error", "E120", f"{_pointer(path)}: {message}", None, hint)
                         for path, message, hint in sorted(problems, key=lambda p: _path_key(p[0]))], source)
    return _load_model(data)


def _load_model(data: dict[str, Any]) -> ir.Model:
    init, optimize = data.get("init"), data.get("optimize")
    return ir.Model(
        data["model"],
        params=tuple(ir.Param(name, _load_expr(value)) for name, value in data.get("params", {}).items()),
        inputs=tuple(ir.Input(i["name"], i["dtype"], tuple(map(_load_expr, i["shape"])), _load_optional(i.get("bound")))
                     for i in data.get("inputs", [])),
        stacks=tuple(ir.Stack(s["name"], tuple(map(_load_layer, s.get("layers", []))),
                              _load_arguments({"kwargs": s.get("options", {})})[1], _load_optional(s.get("template")))
                     for s in data.get("stacks", [])),
        lets=tuple(ir.Let(d["name"], _load_expr(d["value"])) for d in data.get("lets", [])),
        heads=tuple(ir.Head(d["name"], _load_expr(d["value"])) for d in data.get("heads", [])),
        losses=tuple(ir.Loss(d["name"], _load_expr(d["value"])) for d in data.get("losses", [])),
        optimize=None if optimize is None else ir.Optimize(_load_expr(optimize["optimizer"]),
                                                           _load_optional(optimize.get("minimize"))),
        init=None if not init else ir.Init(**{role: _load_expr(value) for role, value in init.items()}),
        seed=_load_optional(data.get("seed")),
        precision=data.get("precision"),
        includes=tuple(ir.Include(path) for path in data.get("includes", [])),
        templates=tuple(ir.Template(t["name"], tuple(ir.TemplateParam(name, _load_optional(default))
                                                     for name, default in t.get("params", {}).items()),
                                    tuple(map(_load_layer, t["layers"]))) for t in data.get("templates", [])),
    )


def _load_optional(data: Any) -> ir.Expr | None:
    return None if data is None else _load_expr(data)


def _load_expr(data: Any) -> ir.Expr:
    if isinstance(data, bool):
        return ir.Bool(data)
    if isinstance(data, (int, float)):
        return ir.Number(data)
    if isinstance(data, str):
        return ir.Ref(data)
    if isinstance(data, list):
        return ir.ListExpr(tuple(map(_load_expr, data)))
    if "call" in data:
        return ir.Call(data["call"], *_load_arguments(data))
    if data["op"] == "neg":
        return ir.negate(_load_expr(data["operand"]))
    return ir.BinOp(data["op"], _load_expr(data["left"]), _load_expr(data["right"]))


def _load_arguments(data: dict[str, Any]) -> tuple[tuple[ir.Expr, ...], tuple[ir.Keyword, ...]]:
    args = tuple(map(_load_expr, data.get("args", [])))
    return args, tuple(ir.Keyword(name, _load_expr(value)) for name, value in data.get("kwargs", {}).items())


def _load_layer(data: dict[str, Any]) -> ir.Layer:
    if "dense" in data:
        return ir.Dense(_load_expr(data["dense"]), data["activation"],
                        _load_arguments({"kwargs": data.get("options", {})})[1])
    if "layer" in data:
        return ir.LayerCall(data["layer"], *_load_arguments(data))
    return ir.ForLayers(data["for"], _load_expr(data["in"]), tuple(map(_load_layer, data["body"])))


# Schema errors → diagnostics ------------------------------------------------------------------


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads((files("spec_lang") / "schema" / "dann.schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


_Path = tuple[str | int, ...]


def _path_key(path: _Path) -> tuple[tuple[bool, str | int], ...]:
    return tuple((isinstance(part, str), part) for part in path)


def _pointer(path: _Path) -> str:
    """The JSON pointer (RFC 6901) of a path; `top level` for the document itself."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path) or "top level"


def _problems(error: ValidationError) -> list[tuple[_Path, str, str | None]]:
    """(path, message, hint) of a schema error; each unknown and each missing key is its own problem."""
    path, value, expected = tuple(error.absolute_path), error.instance, error.validator_value
    hint = error.schema.get("description")
    match error.validator:
        case "additionalProperties":
            known = list(error.schema.get("properties", {}))
            return [((*path, key), f"unknown key '{key}'", did_you_mean(key, known) or f"the keys: {', '.join(known)}")
                    for key in value if key not in known]
        case "required":
            return [(path, f"missing key '{key}'", hint) for key in expected if key not in value]
        case "anyOf":  # each anyOf in the schema lists keys of which an object needs one
            return [(path, f"missing key: one of {_either([repr(b['required'][0]) for b in expected])}", hint)]
        case "not":  # each `not` in the schema lists keys that exclude each other
            return [(path, f"give {_either([repr(key) for key in expected['required']])}, not both", hint)]
        case "type":
            words = [_JSON_TYPES[t] for t in (expected if isinstance(expected, list) else [expected])]
            return [(path, f"expected {_either(words)}, got {_json_type(value)}", hint)]
        case "enum":
            choices = [str(choice) for choice in expected]
            return [(path, f"{_show(value)} is not one of {', '.join(choices)}",
                     did_you_mean(str(value), choices) or hint)]
        case "const":
            return [(path, f"expected {_show(expected)}, got {_show(value)}", hint)]
        case "pattern" if "title" in error.schema:
            return [(path, f"{_show(value)} is not {error.schema['title']}", hint)]
        case "pattern":
            return [(path, f"{_show(value)} is not a name", "a name is letters, digits and _, not led by a digit")]
    return [(path, error.message, hint)]


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    found = [words for name, words in _JSON_TYPES.items() if _validator().is_type(value, name)]
    return found[0] if found else f"a Python {type(value).__name__}"

"""IR → JSON: the model as plain JSON data or text (see `spec_lang.syntax.jsonio` for the form and the way back)."""

from __future__ import annotations

import json
from typing import Any

from spec_lang.syntax import ir
from spec_lang.syntax.json_text import repeated

VERSION = 1
_ROLES = ("weights", "biases")
_DEFINITIONS = ("lets", "heads", "losses")


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
            data[key] = [_dump_definition(d) for d in group]
    if model.optimizers:
        steps = [_dump_optimize(o) for o in model.optimizers]
        data["optimize"] = steps[0] if len(steps) == 1 and model.optimizers[0].name is None else steps
    if model.stages:
        data["stages"] = [_dump_stage(s) for s in model.stages]
    return data


def _dump_optimize(node: ir.Optimize) -> dict[str, Any]:
    data: dict[str, Any] = {} if node.name is None else {"name": node.name}
    data["optimizer"] = _dump_expr(node.optimizer)
    if node.updates:
        data["updates"] = [r.name for r in node.updates]
    if node.repeat is not None:
        data["repeat"] = _dump_expr(node.repeat)
    if node.objective is not None:
        data["minimize"] = _dump_expr(node.objective)
    return data


def _dump_stage(node: ir.Stage) -> dict[str, Any]:
    data: dict[str, Any] = {"name": node.name}
    if node.options:
        data["options"] = _object([(k.name, _dump_expr(k.value)) for k in node.options], "stage option")
    data["runs"] = [r.name for r in node.runs]
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


def _dump_definition(node: ir.Let | ir.Head | ir.Loss) -> dict[str, Any]:
    """`{"name": …, "value": …}`, with `"adversarial": true` for a loss so marked (only then, so the JSON of a
    model without the mark is as it was)."""
    data: dict[str, Any] = {"name": node.name, "value": _dump_expr(node.value)}
    if isinstance(node, ir.Loss) and node.adversarial:
        data["adversarial"] = True
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
        data["params"] = _object(
            [(p.name, None if p.default is None else _dump_expr(p.default)) for p in template.params],
            "template parameter",
        )
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
    if (twice := repeated([name for name, _ in pairs])) is not None:
        raise ValueError(f"the {what} '{twice}' is given twice; a JSON object cannot hold both")
    return dict(pairs)

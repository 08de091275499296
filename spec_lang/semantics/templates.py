"""Stacks made from templates. `stack enc = block(64)` gets the layers of `template block(width, act = relu)`
with the arguments in place of the parameters, before the checker sees the stack; like any stack, it owns its
parameters, so two stacks made from one template have separate weights.

A template's body holds layers only, never a stack or another template, so templates cannot recurse. It is
checked in each stack made from it; a message about its layers says which stack that was.

>>> import spec_lang
>>> spec = spec_lang.loads(
...     "model m()\\ninput x : float[batch, 2]\\ninput y : int[batch] < 3\\n"
...     "template block(width, act = tanh) { dense width act }\\n"
...     "stack enc = block(4)\\nstack out = block(3, act = softmax)\\n"
...     "loss xent = crossentropy(out(enc(x)), y)\\noptimize sgd(lr = 0.1)\\n")
>>> [(p.name, p.shape) for stack in spec.program.stacks for p in stack.params]
[('enc.0.W', (2, 4)), ('enc.0.b', (4,)), ('out.0.W', (4, 3)), ('out.0.b', (3,))]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn, Protocol, cast

from spec_lang.diagnostics import Span, did_you_mean
from spec_lang.syntax import ir
from spec_lang.syntax.printer import format_expr


class Checks(Protocol):
    """What making stacks from templates asks of the checker (see `checker.Checker`)."""

    failed: set[str]

    def error(
        self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None, notes: tuple[str, ...] = ()
    ) -> NoReturn: ...
    def warn(self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None) -> None: ...
    def attempt[T](self, action: Callable[..., T], *args: Any) -> T | None: ...
    def bind(
        self,
        node: ir.Node,
        call: ir.Call,
        positional: tuple[str, ...],
        keywords: tuple[str, ...],
        required: tuple[str, ...],
    ) -> dict[str, ir.Expr]: ...
    def symbol(self, expr: ir.Expr, choices: tuple[str, ...], what: str) -> str: ...


def instantiate(checks: Checks, model: ir.Model, included: tuple[ir.Template, ...] = ()) -> ir.Model:
    """The model with each stack made from a template given that template's layers; `included` are the templates of
    the files the model includes. A stack whose template or arguments have an error is reported and marked failed.
    The model's own templates are checked for parameters named like model parameters and, when every stack could be
    made, for use (warnings)."""
    templates = _templates(checks, model, included)
    stacks = []
    failed = False
    for stack in model.stacks:
        if stack.template is not None:
            layers = checks.attempt(_layers, checks, stack, templates)
            if layers is None:
                checks.failed.add(stack.name)
                failed = True
            stack = replace(stack, layers=layers or (), template=None)
        stacks.append(stack)
    used = {stack.template.func for stack in model.stacks if stack.template is not None}
    for template in model.templates:
        if template.name not in used and not failed:  # a stack that failed may have meant it
            checks.warn(
                "W901",
                f"template '{template.name}' is never used",
                template,
                f"make a stack from it, e.g. `stack NAME = {template.name}(…)`, or remove it",
            )
    return replace(model, stacks=tuple(stacks))


def _templates(checks: Checks, model: ir.Model, included: tuple[ir.Template, ...]) -> dict[str, ir.Template]:
    """The templates by name, each defined once; a parameter given twice is an error, and a parameter of the model's
    own template that is named like a model parameter is a warning (the template's parameter hides it)."""
    found: dict[str, ir.Template] = {}
    for template in (*included, *model.templates):
        if template.name in found:
            other = _place(found[template.name].span)
            checks.attempt(
                checks.error,
                "E202",
                f"template '{template.name}' is defined twice",
                template,
                "rename one of them" + (f"; the other is{other}" if other else ""),
            )
        else:
            found[template.name] = template
        seen: set[str] = set()
        for param in template.params:
            if param.name in seen:
                checks.attempt(
                    checks.error,
                    "E202",
                    f"parameter '{param.name}' is given twice",
                    param,
                    f"give each parameter of template '{template.name}' its own name",
                )
            seen.add(param.name)
    model_params = {p.name for p in model.params}
    for template in model.templates:
        for param in template.params:
            if param.name in model_params:
                checks.warn(
                    "W902",
                    f"template parameter '{param.name}' hides the model parameter '{param.name}'",
                    param,
                    f"inside template '{template.name}', '{param.name}' is this parameter; rename it "
                    "if the template means the model's",
                )
    return found


def _layers(checks: Checks, stack: ir.Stack, templates: dict[str, ir.Template]) -> tuple[ir.Layer, ...]:
    """The layers of a stack made from a template: the template's, with the arguments in place of the parameters
    (a default may use the parameters before it). Their spans say which stack they were made for."""
    call = stack.template
    assert call is not None  # `instantiate` makes only the stacks that have a template
    template = templates.get(call.func)
    if template is None:
        checks.error(
            "E201",
            f"unknown template '{call.func}'",
            call.span.head(len(call.func)) if call.span else None,
            did_you_mean(call.func, templates)
            or (
                f"the templates are {', '.join(templates)}"
                if templates
                else "define it with `template NAME(parameters) { layers }`, or include a file that does"
            ),
        )
    bound = checks.bind(
        call,
        call,
        tuple(p.name for p in template.params),
        (),
        required=tuple(p.name for p in template.params if p.default is None),
    )
    note = f"in stack '{stack.name}' = {format_expr(call)}"
    template = ir.with_spans(template, lambda span: replace(span, context=(*span.context, note)))
    args: dict[str, ir.Expr] = {}
    for param in template.params:
        if param.name in bound:
            args[param.name] = bound[param.name]
        else:
            assert param.default is not None  # `bind` requires the parameters without a default
            args[param.name] = _substitute(checks, param.default, args)
    return _substitute(checks, template.layers, args)


def _substitute[T](checks: Checks, node: T, args: dict[str, ir.Expr]) -> T:
    """A node with each name in `args` replaced by its argument, all at once: where a parameter names a dense layer's
    activation, its argument must be an activation; a loop variable hides the parameter of its name."""
    # Each node becomes one of its kind (a name an expression, a layer a layer), which `T` cannot say: hence the casts.
    match node:
        case ir.Ref(name=name) if name in args:
            return cast(T, args[name])
        case ir.Dense(units=units, activation=word) if word in args:
            activation = checks.symbol(args[word], ir.ACTIVATIONS, "activation")
            dense = ir.Dense(
                _substitute(checks, units, args),
                activation,
                _substitute(checks, node.options, args),
                span=node.span,
                activation_span=node.activation_span,
            )
            return cast(T, dense)
        case ir.ForLayers(var=var, iterable=iterable, body=body):
            inner = {name: arg for name, arg in args.items() if name != var}
            used = {ref.name for ref in _refs(body)}
            captured = next(
                (ref for name, arg in inner.items() if name in used for ref in _refs(arg) if ref.name == var), None
            )
            if captured is not None:
                checks.error(
                    "E904",
                    f"'{var}' in this argument would be hidden by the template's loop variable '{var}'",
                    captured,
                    "rename the loop variable in the template, or use another name here",
                    (f"the loop `for {var} in …` is{_place(node.span)}",),
                )
            loop = ir.ForLayers(
                var, _substitute(checks, iterable, args), _substitute(checks, body, inner), span=node.span
            )
            return cast(T, loop)
    return ir.rebuild(node, lambda child: _substitute(checks, child, args))


def _refs(node: object) -> list[ir.Ref]:
    """The names a node uses, as written."""
    return [node] if isinstance(node, ir.Ref) else [ref for child in ir.children(node) for ref in _refs(child)]


def _place(span: Span | None) -> str:
    """` at line N`, or ` at FILE:N` for a span in another file; nothing without a span."""
    if span is None:
        return ""
    return f" at {span.source.name}:{span.line}" if span.source else f" at line {span.line}"

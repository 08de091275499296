"""The classification losses (crossentropy, bce, bce_domains, mse, entropy) and the parameter penalties (l2,
l1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spec_lang import program as P
from spec_lang.library.losses.kinds import (
    LOSSES,
    LossChecks,
    LossKind,
    LossLowering,
    TermRole,
    describe,
    need_activation,
    predictions,
    same_shape,
)
from spec_lang.library.registry import Argument, Signature
from spec_lang.syntax import ir

_PREDICTIONS = Argument("predictions", holds="a tensor of predictions")
_CROSSENTROPY = Signature((_PREDICTIONS, Argument("target", holds="int[batch] labels or a class")))
_BCE = Signature((_PREDICTIONS, Argument("target", holds="0, 1 or a tensor")))
_MSE = Signature((_PREDICTIONS, Argument("target", holds="a float tensor")))
_ENTROPY = Signature((_PREDICTIONS,))


# crossentropy ---------------------------------------------------------------------------------------------------


def _crossentropy_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _CROSSENTROPY)
    predicted = predictions(checks, call, bound)
    need_activation(checks, call, predicted, "softmax", call.args[0] if call.args else call)
    classes = predicted.type.shape[-1]
    assert classes is not None  # the output of a softmax layer: [batch, …, classes]
    labels_expr = bound["target"]
    if checks.is_number(labels_expr):
        label = checks.number(labels_expr, checks.settings)
        if not isinstance(label, int) or label < 0:
            checks.error(
                "E601",
                f"a constant class label is a whole number ≥ 0, got {_literal(label)}",
                labels_expr,
                "give the class of every row, e.g. 0 for the source domain",
            )
        if label >= classes:
            checks.error(
                "E302",
                f"class {label} is out of range: the predictions have {classes} classes (0 to {classes - 1})",
                labels_expr,
                f"use a class below {classes}, or make the last layer `dense {label + 1} softmax`",
            )
        return P.LossTerm("crossentropy", (("predictions", predicted), ("labels", label)))
    labels = checks.value(labels_expr)
    if labels.type.dtype != "int" or len(labels.type.shape) != 1:
        checks.error(
            "E401",
            f"crossentropy needs integer class labels int[batch], got {labels.type}",
            labels_expr,
            "declare the labels as e.g. `input y : int[batch] < 10`, or give one class for every row, e.g. 0",
        )
    if isinstance(labels, P.InputValue) and labels.bound is not None and labels.bound != classes:
        checks.error(
            "E302",
            f"the predictions have {classes} classes, but '{labels.name}' holds labels below {labels.bound}",
            call,
            f"make the last layer `dense {labels.bound} softmax`, or change the bound of '{labels.name}'",
        )
    return P.LossTerm("crossentropy", (("predictions", predicted), ("labels", labels)))


def _crossentropy_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    labels = term.arg("labels")
    target = ctx.backend.label(labels) if isinstance(labels, int) else ctx.tensor(term.value("labels"))
    return ctx.of_probabilities("crossentropy", term.value("predictions"), target)


def _crossentropy_role(term: P.LossTerm) -> tuple[TermRole, ...]:
    predicted, labels = term.value("predictions"), term.arg("labels")
    if isinstance(labels, int):
        return (TermRole("domain", predicted, labels),)
    return (TermRole("label", predicted, labels),) if isinstance(labels, P.InputValue) else ()


# bce ------------------------------------------------------------------------------------------------------------


def _bce_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _BCE)
    predicted = predictions(checks, call, bound)
    need_activation(checks, call, predicted, "sigmoid", bound["predictions"])
    target_expr = bound["target"]
    if checks.is_number(target_expr):
        value = checks.number(target_expr, checks.settings)
        if value not in (0, 1):
            checks.error(
                "E601",
                f"a constant bce target must be 0 or 1, got {_literal(value)}",
                target_expr,
                "use 0 for the source domain and 1 for the target domain",
            )
        return P.LossTerm("bce", (("predictions", predicted), ("target", float(value))))
    target = checks.value(target_expr)
    same_shape(checks, call, predicted, target, target_expr)
    return P.LossTerm("bce", (("predictions", predicted), ("target", target)))


def _bce_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    target = term.arg("target")
    lowered = ctx.backend.const(target) if isinstance(target, float) else ctx.tensor(term.value("target"))
    return ctx.of_probabilities("binary_crossentropy", term.value("predictions"), lowered)


def _bce_role(term: P.LossTerm) -> tuple[TermRole, ...]:
    target = term.arg("target")
    return (TermRole("domain", term.value("predictions"), target),) if isinstance(target, float) else ()


# bce_domains ----------------------------------------------------------------------------------------------------

_BCE_DOMAINS = Signature((Argument("source", holds="domain 0 outputs"), Argument("target", holds="domain 1 outputs")))


def _bce_domains_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _BCE_DOMAINS)
    source, target = (predictions(checks, call, {"predictions": bound[k]}) for k in ("source", "target"))
    for value, where in ((source, bound["source"]), (target, bound["target"])):
        need_activation(checks, call, value, "sigmoid", where)
    if source.type.shape[1:] != target.type.shape[1:]:
        checks.error(
            "E301",
            f"bce_domains: the source predictions are {source.type} but the target predictions are {target.type}",
            bound["target"],
            "pass one domain classifier's outputs for both batches, e.g. bce_domains(domain(fs), domain(ft))",
        )
    return P.LossTerm("bce_domains", (("source", source), ("target", target)))


def mean_over_domain_rows(source_loss, target_loss, source, target, xp):
    """The mean over the rows of both batches, from each batch's mean loss: each mean weighted by how many numbers
    it averages (a batch's share of the rows, as both have the same width)."""
    source_size, target_size = xp.ones_like(source).sum(), xp.ones_like(target).sum()
    return (source_loss * source_size + target_loss * target_size) / (source_size + target_size)


def _bce_domains_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    values = (term.value("source"), term.value("target"))
    means = [ctx.of_probabilities("binary_crossentropy", v, ctx.backend.const(d)) for d, v in enumerate(values)]
    return ctx.backend.op("mean_over_domain_rows", *means, *map(ctx.tensor, values))


def _bce_domains_role(term: P.LossTerm) -> tuple[TermRole, ...]:
    return (TermRole("domain", term.value("source"), 0.0), TermRole("domain", term.value("target"), 1.0))


# mse, entropy ---------------------------------------------------------------------------------------------------


def _mse_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _MSE)
    predicted = predictions(checks, call, bound)
    target = checks.value(bound["target"])
    if target.type.dtype != "float":
        checks.error(
            "E401", f"mse needs a float target, got {target.type}", bound["target"], "declare the target as float"
        )
    same_shape(checks, call, predicted, target, bound["target"])
    return P.LossTerm("mse", (("predictions", predicted), ("target", target)))


def _mse_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    return ctx.backend.op(
        "mean_squared_error",
        ctx.tensor(term.value("predictions")),
        ctx.tensor(term.value("target")),
    )


def _entropy_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _ENTROPY)
    predicted = checks.value(bound["predictions"])
    need_activation(checks, call, predicted, "softmax", bound["predictions"])
    return P.LossTerm("entropy", (("predictions", predicted),))


def _entropy_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    return ctx.of_probabilities("entropy", term.value("predictions"))


# l2, l1 ---------------------------------------------------------------------------------------------------------

_PENALTY_OPTIONS = Signature((Argument("biases", True, positional=False, holds="true or false"),))


def _penalty_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    stacks = checks.stack_names(call)
    options = checks.arguments(ir.Call(call.func, (), call.kwargs), _PENALTY_OPTIONS)
    biases = options.get("biases", ir.Bool(True))
    if not isinstance(biases, ir.Bool):
        checks.error("E601", "`biases` is true or false", biases, "biases = false penalises weights only")
    return P.LossTerm(call.func, (("stacks", stacks), ("biases", biases.value)))


def _penalty_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    chosen = ctx.parameters(term.stacks, bool(term.arg("biases")))
    return ctx.backend.op(f"{term.kind}_penalty", chosen)


def _penaltydescribe(term: P.LossTerm, name: Callable[[P.Value], str]) -> str:
    stacks = term.stacks
    return f"{term.kind}({', '.join(stacks)}{'' if term.arg('biases') else ', biases = false'})"


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "a list" if isinstance(value, list) else repr(value)


_STACKS = Signature(
    (Argument("stacks", (), holds="stack names, any number (none: every stack)"), *_PENALTY_OPTIONS.arguments)
)
for _kind in (
    LossKind(
        "crossentropy",
        "`crossentropy(p, y)`: mean categorical cross-entropy of softmax outputs against "
        "integer labels, or one class for every row",
        _CROSSENTROPY,
        _crossentropy_check,
        _crossentropy_lower,
        describe,
        _crossentropy_role,
    ),
    LossKind(
        "bce",
        "`bce(p, t)`: mean binary cross-entropy of sigmoid outputs against 0/1 or a tensor",
        _BCE,
        _bce_check,
        _bce_lower,
        describe,
        _bce_role,
    ),
    LossKind(
        "bce_domains",
        "`bce_domains(ps, pt)`: binary cross-entropy of a domain classifier's sigmoid outputs, source rows against 0 "
        "and target rows against 1, averaged over all the rows of both batches (Transfer-Learning-Library's DANN)",
        _BCE_DOMAINS,
        _bce_domains_check,
        _bce_domains_lower,
        describe,
        _bce_domains_role,
        formulas=(mean_over_domain_rows,),
    ),
    LossKind("mse", "`mse(p, t)`: mean squared error", _MSE, _mse_check, _mse_lower, describe),
    LossKind(
        "entropy",
        "`entropy(p)`: mean entropy of softmax outputs (entropy minimisation)",
        _ENTROPY,
        _entropy_check,
        _entropy_lower,
        describe,
    ),
    LossKind(
        "l2",
        "`l2(stacks…, biases = true)`: sum of squared parameters",
        _STACKS,
        _penalty_check,
        _penalty_lower,
        _penaltydescribe,
    ),
    LossKind(
        "l1",
        "`l1(stacks…, biases = true)`: sum of absolute parameters",
        _STACKS,
        _penalty_check,
        _penalty_lower,
        _penaltydescribe,
    ),
):
    LOSSES.register(_kind)

"""Losses that compare classifiers or weigh a domain term by a classifier's confidence: MCD's classifier discrepancy
(Saito et al. 2018), MDD's margin disparity discrepancy (Zhang et al. 2019) and CDAN+E's domain loss weighted by
the label classifier's certainty (Long et al. 2018). Their tensor formulas are written once for numpy and PyTensor
(`xp`), so the emitted module carries them as they are."""

from __future__ import annotations

from typing import Any

from spec_lang import program as P
from spec_lang.library.losses.kinds import LOSSES, LossChecks, LossKind, LossLowering, TermRole, describe
from spec_lang.library.registry import Argument, Signature
from spec_lang.syntax import ir

_DISCREPANCY = Signature(
    (Argument("first", holds="one classifier's softmax outputs"), Argument("second", holds="the other's, as wide"))
)
_MDD = Signature(
    (
        Argument("source", holds="the classifier's softmax outputs on the source batch"),
        Argument("source_adversary", holds="the adversarial classifier's on the source batch"),
        Argument("target", holds="the classifier's on the target batch"),
        Argument("target_adversary", holds="the adversarial classifier's on the target batch"),
        Argument("margin", 4.0, positional=False, holds="a number > 0 (γ)"),
    )
)
_WEIGHTED = Signature(
    (
        Argument("predictions", holds="a domain classifier's sigmoid outputs"),
        Argument("domain", holds="0 or 1"),
        Argument("probabilities", holds="the label classifier's softmax outputs on the same batch"),
    )
)


def _softmax(checks: LossChecks, call: ir.Call, expr: ir.Expr) -> P.Value:
    """A [batch, classes] float value out of a softmax layer, with at least two classes."""
    value = checks.value(expr)
    if value.type.dtype != "float" or value.activation != "softmax":
        checks.error(
            "E401",
            f"{call.func} expects probabilities from a softmax layer, got {value.type} "
            f"from {value.activation or 'no activation'}",
            expr,
            "pass a classifier's outputs: a stack that ends in `dense N softmax`",
        )
    if len(value.type.shape) != 2 or (value.type.shape[-1] or 0) < 2:
        checks.error("E301", f"{call.func} needs [batch, classes] with 2 classes or more, got {value.type}", expr)
    return value


def _number(term: P.LossTerm, name: str) -> float:
    """A number the check stored in the term (the margin, the domain)."""
    value = term.arg(name)
    assert isinstance(value, float)
    return value


def _same_width(checks: LossChecks, call: ir.Call, values: list[P.Value], where: ir.Expr, hint: str) -> None:
    if len({v.type.shape[-1] for v in values}) > 1:
        shown = " and ".join(str(v.type) for v in values)
        checks.error("E301", f"{call.func} compares classifiers of the same classes, got {shown}", where, hint)


# classifier_discrepancy (MCD) -----------------------------------------------------------------------------------


def _discrepancy_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _DISCREPANCY)
    first, second = (_softmax(checks, call, bound[k]) for k in ("first", "second"))
    hint = "pass both classifiers' outputs on one batch, e.g. classifier_discrepancy(c1(ft), c2(ft))"
    _same_width(checks, call, [first, second], bound["second"], hint)
    return P.LossTerm("classifier_discrepancy", (("first", first), ("second", second)))


def mcd_discrepancy(first, second, xp):
    """Mean over rows of the mean absolute difference of two classifiers' probabilities."""
    return abs(first - second).mean()


def _discrepancy_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    return ctx.backend.op("mcd_discrepancy", ctx.tensor(term.value("first")), ctx.tensor(term.value("second")))


# mdd ------------------------------------------------------------------------------------------------------------


def _mdd_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _MDD)
    names = ("source", "source_adversary", "target", "target_adversary")
    values = [_softmax(checks, call, bound[k]) for k in names]
    hint = "the adversarial classifier has the classifier's classes: mdd(c(fs), adv(reverse(fs)), c(ft), adv(…))"
    _same_width(checks, call, values, bound["target_adversary"], hint)
    margin = bound.get("margin")
    gamma = 4.0 if margin is None else checks.number(margin, checks.settings)
    if isinstance(gamma, bool) or gamma <= 0:
        checks.error("E601", f"the margin γ of mdd is a number > 0, got {gamma!r}", margin, "the paper uses margin = 4")
    return P.LossTerm("mdd", (*zip(names, values, strict=True), ("margin", float(gamma))))


def mdd_predicted_class(probabilities, xp):
    """Each row's class of highest probability (the first on a tie), as labels: no gradient flows through them."""
    return xp.argmax(probabilities, axis=-1)


def mdd_is_label(rows, labels, xp):
    """A one-hot mask of each row's label, in the rows' dtype (without a symbolic `arange` of the batch)."""
    columns = xp.cumsum(xp.ones_like(rows), axis=-1) - 1
    return 1 - xp.minimum(abs(columns - labels[:, None].astype(rows.dtype)), 1)


def mdd_disagreement(probabilities, labels, xp):
    """Mean over rows of -log(1 - q[i, k_i]), with 1 - q[i, k_i] summed from the other classes' probabilities
    (exact where q[i, k_i] is near 1)."""
    others = probabilities * (1 - mdd_is_label(probabilities, labels, xp))
    return -xp.log(others.sum(axis=-1)).mean()


def mdd_disagreement_from_logits(logits, labels, xp):
    """`mdd_disagreement(softmax(logits), labels)`: log Σ_j exp z_j - log Σ_{j≠k} exp z_j, each shifted by its
    largest term so that every exponential is at most 1."""
    chosen = mdd_is_label(logits, labels, xp)
    rest = logits * (1 - chosen) + logits.min(axis=-1, keepdims=True) * chosen
    top, high = rest.max(axis=-1, keepdims=True), logits.max(axis=-1, keepdims=True)
    log_rest = xp.log((xp.exp(rest - top) * (1 - chosen)).sum(axis=-1)) + top[:, 0]
    log_all = xp.log(xp.exp(logits - high).sum(axis=-1)) + high[:, 0]
    return (log_all - log_rest).mean()


def _mdd_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    """γ · crossentropy(adversary on source, predicted source classes) - log(1 - adversary's target probability of
    the predicted target class)."""
    source_labels = ctx.backend.op("mdd_predicted_class", ctx.tensor(term.value("source")))
    target_labels = ctx.backend.op("mdd_predicted_class", ctx.tensor(term.value("target")))
    agreement = ctx.of_probabilities("crossentropy", term.value("source_adversary"), source_labels)
    disagreement = ctx.of_probabilities("mdd_disagreement", term.value("target_adversary"), target_labels)
    margin = ctx.backend.const(_number(term, "margin"))
    return ctx.backend.arith("+", ctx.backend.arith("*", margin, agreement), disagreement)


# bce_weighted_by_entropy (CDAN+E) -------------------------------------------------------------------------------


def _weighted_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _WEIGHTED)
    predicted = checks.value(bound["predictions"])
    if predicted.type.dtype != "float" or predicted.activation != "sigmoid" or len(predicted.type.shape) != 2:
        checks.error(
            "E401",
            f"{call.func} expects a domain classifier's [batch, k] outputs from a sigmoid layer, got "
            f"{predicted.type} from {predicted.activation or 'no activation'}",
            bound["predictions"],
            "end the domain classifier with `dense 1 sigmoid`",
        )
    domain_expr = bound["domain"]
    domain = checks.number(domain_expr, checks.settings) if checks.is_number(domain_expr) else None
    if domain is None or isinstance(domain, bool) or domain not in (0, 1):
        checks.error(
            "E601",
            f"the domain of {call.func} is a constant 0 or 1" + ("" if domain is None else f", got {domain!r}"),
            domain_expr,
            "bce_weighted_by_entropy(domain(reverse(fs)), 0, ps) + bce_weighted_by_entropy(domain(reverse(ft)), 1, pt)",
        )
    probabilities = _softmax(checks, call, bound["probabilities"])
    return P.LossTerm(
        call.func, (("predictions", predicted), ("domain", float(domain)), ("probabilities", probabilities))
    )


def weights_by_entropy(probabilities, xp):
    """Each row's 1 + exp(-H), H = -Σ_j p_j log p_j, divided by their mean over the batch (0 log 0 = 0). The floor
    2^-100 is exact in float32, so the weights keep the probabilities' dtype."""
    weights = 1 + xp.exp((probabilities * xp.log(xp.clip(probabilities, 2.0**-100, 1))).sum(axis=-1))
    return weights / weights.mean()


def weighted_domain_bce(probabilities, target, weights, xp):
    """Mean binary cross-entropy against a constant 0/1, each row's terms times its weight."""
    rows = -(target * xp.log(probabilities) + (1 - target) * xp.log(1 - probabilities))
    return (weights[:, None] * rows).mean()


def weighted_domain_bce_from_logits(logits, target, weights, xp):
    """`weighted_domain_bce(sigmoid(logits), target, weights)` as softplus(z) - t·z."""
    softplus = xp.maximum(logits, 0) + xp.log1p(xp.exp(-abs(logits)))
    return (weights[:, None] * (softplus - target * logits)).mean()


def _weighted_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    weights = ctx.backend.op("weights_by_entropy", ctx.tensor(term.value("probabilities")))
    constant = ctx.backend.op("stop_gradient", weights)  # no gradient into p
    target = ctx.backend.const(_number(term, "domain"))
    return ctx.of_probabilities("weighted_domain_bce", term.value("predictions"), target, constant)


def _weighted_role(term: P.LossTerm) -> tuple[TermRole, ...]:
    return (TermRole("domain", term.value("predictions"), _number(term, "domain")),)


for _kind in (
    LossKind(
        "classifier_discrepancy",
        "`classifier_discrepancy(p1, p2)`: mean absolute difference of two classifiers' softmax outputs "
        "(MCD, Saito et al. 2018)",
        _DISCREPANCY,
        _discrepancy_check,
        _discrepancy_lower,
        describe,
        formulas=(mcd_discrepancy,),
    ),
    LossKind(
        "mdd",
        "`mdd(ps, pas, pt, pat, margin = 4)`: margin disparity discrepancy of an adversarial classifier against the "
        "classifier's predicted classes (MDD, Zhang et al. 2019; Transfer-Learning-Library's, negated)",
        _MDD,
        _mdd_check,
        _mdd_lower,
        describe,
        formulas=(mdd_predicted_class, mdd_is_label, mdd_disagreement, mdd_disagreement_from_logits),
    ),
    LossKind(
        "bce_weighted_by_entropy",
        "`bce_weighted_by_entropy(d, domain, p)`: bce of a domain classifier's sigmoid outputs against 0 or 1, each "
        "row weighted by 1 + exp(-H(p)) normalised to mean 1, no gradient into p (CDAN+E, Long et al. 2018)",
        _WEIGHTED,
        _weighted_check,
        _weighted_lower,
        describe,
        _weighted_role,
        formulas=(weights_by_entropy, weighted_domain_bce, weighted_domain_bce_from_logits),
    ),
):
    LOSSES.register(_kind)

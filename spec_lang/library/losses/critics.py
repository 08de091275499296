"""The Wasserstein critic's losses (WDGRL, Shen et al. AAAI 2018, as ADAPT's `WDGRL`): `wasserstein`, the gap between
a critic's mean output on the source and on the target batch, which the critic maximises and the features minimise;
and `gradient_penalty` (WGAN-GP, Gulrajani et al. 2017), which holds the critic's gradient norm near 1 at points
between the batches (`interpolate(fs, ft)`). A W-critic's last layer is linear: outputs out of a sigmoid or a softmax
are an error, as probabilities are where other losses need them.
"""

from __future__ import annotations

from typing import Any

from spec_lang import program as P
from spec_lang.library.losses.kinds import LOSSES, LossChecks, LossKind, LossLowering, describe
from spec_lang.library.registry import Argument, Signature
from spec_lang.syntax import ir

_WASSERSTEIN = Signature(
    (
        Argument("critic_source", holds="a critic's outputs on the source batch float[batch, 1], no activation"),
        Argument("critic_target", holds="its outputs on the target batch float[batch, 1]"),
    )
)
_PENALTY = Signature(
    (
        Argument("critic_output", holds="a critic's outputs float[batch, 1] on `wrt`"),
        Argument("wrt", holds="the value the critic reads, e.g. `interpolate(fs, ft)`"),
    )
)


def critic_gap(source, target, xp):
    """The Wasserstein-1 estimate of a critic: its mean output on the source rows minus that on the target rows."""
    return source.mean() - target.mean()


def _critic(checks: LossChecks, call: ir.Call, expr: ir.Expr) -> P.Value:
    """A critic's outputs: float[batch, 1], from a layer without a squashing activation."""
    value = checks.value(expr)
    if value.type.dtype != "float" or value.activation in ("sigmoid", "softmax"):
        checks.error(
            "E401",
            f"{call.func} expects a Wasserstein critic's unbounded scores, got {value.type} from "
            f"{value.activation or 'no activation'}",
            expr,
            "end the critic with a linear layer, e.g. `dense 1 linear`",
        )
    if len(value.type.shape) != 2 or value.type.shape[1] != 1:
        checks.error(
            "E301",
            f"{call.func} expects one score per row, float[batch, 1], got {value.type}",
            expr,
            "end the critic with `dense 1 linear`",
        )
    return value


def _wasserstein_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _WASSERSTEIN)
    source, target = (_critic(checks, call, bound[k]) for k in ("critic_source", "critic_target"))
    return P.LossTerm("wasserstein", (("critic_source", source), ("critic_target", target)))


def _wasserstein_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    source, target = (ctx.tensor(term.value(k)) for k in ("critic_source", "critic_target"))
    return ctx.backend.op("critic_gap", source, target)


def _penalty_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _PENALTY)
    output = _critic(checks, call, bound["critic_output"])
    wrt = checks.value(bound["wrt"])
    if not any(value is wrt for value in P.ancestors(output, gradient=True)):
        checks.error(
            "E204",
            f"the gradient penalty differentiates the critic's outputs with respect to `wrt`, but "
            f"{P.expression(output)} does not depend on {P.expression(wrt)}",
            bound["wrt"],
            "name the value the critic reads: let mix = interpolate(fs, ft) … gradient_penalty(critic(mix), mix)",
        )
    return P.LossTerm("gradient_penalty", (("critic_output", output), ("wrt", wrt)))


def _penalty_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    return ctx.backend.op("gradient_penalty", ctx.tensor(term.value("critic_output")), ctx.tensor(term.value("wrt")))


for _kind in (
    LossKind(
        "wasserstein",
        "`wasserstein(cs, ct)`: a critic's mean output on the source batch minus its mean on the target batch, both "
        "float[batch, 1] from a linear layer; the critic maximises it, the features minimise it (WDGRL, Shen et al. "
        "AAAI 2018)",
        _WASSERSTEIN,
        _wasserstein_check,
        _wasserstein_lower,
        describe,
        formulas=(critic_gap,),
    ),
    LossKind(
        "gradient_penalty",
        "`gradient_penalty(c, x)`: the mean over rows of (‖∂ Σ c / ∂ x_i‖ − 1)², `x` a value the critic's outputs "
        "`c` depend on, typically `interpolate(fs, ft)` (WGAN-GP, Gulrajani et al. 2017)",
        _PENALTY,
        _penalty_check,
        _penalty_lower,
        describe,
    ),
):
    LOSSES.register(_kind)

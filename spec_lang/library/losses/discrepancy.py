"""The discrepancy losses: how far apart a source and a target batch of features lie, with no labels and no domain
classifier. `mmd` (DAN: multi-kernel maximum mean discrepancy, Long et al. 2015), `jmmd` (JAN: joint MMD over the
features and the predictions, Long et al. 2017) and `coral` (Deep CORAL: the distance of the covariances, Sun & Saenko
2016).

The Gaussian kernels follow Transfer-Learning-Library (`tllib/modules/kernels.py`, `GaussianKernel`): a kernel
`exp(-‖x - y‖² / (2σ²))` whose σ² is a multiple of the mean squared distance of the joined batch, held constant for
the gradient (TLL detaches it; a bandwidth that followed the gradient would let the features spread out to shrink
the loss). The multiples are `multiplier^(i - kernels // 2)`, i = 0 … kernels - 1, as in DAN's code (2^-2 … 2^2 by
default; TLL's examples take 2^-3 … 2^1). The estimate is the biased one (a V-statistic over all pairs), so the
batches may differ in size; TLL's estimate is unbiased and needs batches of equal size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spec_lang import program as P
from spec_lang.library.losses.kinds import LOSSES, LossChecks, LossKind, LossLowering
from spec_lang.library.registry import Argument, Signature
from spec_lang.syntax import ir

_SOURCE = Argument("source", holds="source features float[batch, d]")
_TARGET = Argument("target", holds="target features float[batch, d]")
_KERNELS = (
    Argument("kernels", 5, positional=False, holds="how many Gaussian kernels, a whole number ≥ 1"),
    Argument("multiplier", 2.0, positional=False, holds="the ratio of neighbouring bandwidths, > 0"),
)
_MMD = Signature((_SOURCE, _TARGET, *_KERNELS))
_JMMD = Signature(
    (
        _SOURCE,
        _TARGET,
        Argument("source_predictions", holds="source predictions float[batch, c]"),
        Argument("target_predictions", holds="target predictions float[batch, c]"),
        *_KERNELS,
        Argument("sigma", 0.92, positional=False, holds="the predictions' kernel bandwidth, > 0"),
    )
)
_CORAL = Signature((_SOURCE, _TARGET))


# formulas (numpy and PyTensor alike) ----------------------------------------------------------------------------


def squared_distances(source, target, xp):
    """The squared Euclidean distance between every two rows of the joined batch (source rows first), [n, n]. From
    the norms and one matrix product; the rounding that could make one slightly negative is clipped."""
    joined = xp.concatenate([source, target], axis=0)
    norms = (joined**2).sum(axis=1)
    return xp.maximum(norms[:, None] + norms[None, :] - 2 * xp.dot(joined, joined.T), 0)


def gaussian_kernels(distances, held, kernels, multiplier, xp):
    """DAN's multi-kernel: the sum of `kernels` Gaussian kernels exp(-d / (2σ²)), σ² = multiplier^(i - kernels // 2)
    times the mean of `held` (the distances, passing no gradient), at least 2⁻¹⁰⁰: when every feature of both
    batches is 0 (dead ReLUs), the mean distance is 0 and the kernel would be 0 / 0 (a power of two, so float32
    stays float32)."""
    scale = xp.maximum(held.mean(), 2.0**-100)
    return sum(xp.exp(-distances / (2 * multiplier ** (i - kernels // 2) * scale)) for i in range(kernels))


def gaussian_kernel(distances, sigma, xp):
    """One Gaussian kernel of fixed bandwidth, exp(-d / (2σ²)) (JAN's kernel on the predictions)."""
    return xp.exp(-distances / (2 * sigma**2))


def mean_discrepancy(kernel, source, xp):
    """The squared MMD's biased estimate from the kernel of the joined batch (source rows first): the mean kernel
    within the source, plus within the target, minus twice across."""
    rows = source.shape[0]
    return kernel[:rows, :rows].mean() + kernel[rows:, rows:].mean() - 2 * kernel[:rows, rows:].mean()


def covariance_distance(source, target, xp):
    """Deep CORAL: ‖C_s - C_t‖²_F / (4 d²), the covariances unbiased (divided by rows - 1)."""

    def covariance(x):
        centred = x - x.mean(axis=0)
        return xp.dot(centred.T, centred) / (xp.ones_like(x[:, 0]).sum() - 1)

    width = xp.ones_like(source[0]).sum()
    return ((covariance(source) - covariance(target)) ** 2).sum() / (4 * width**2)


# checks ---------------------------------------------------------------------------------------------------------


def _pair(
    checks: LossChecks, call: ir.Call, bound: dict[str, ir.Expr], pair: tuple[str, str], what: str, example: str
) -> list[P.Value]:
    """A source and a target value (`what`: features or predictions), both float[batch, d] of the same d; `example`
    is the right call."""
    values = []
    for name in pair:
        value = checks.value(bound[name])
        if value.type.dtype != "float":
            checks.error("E401", f"{call.func} needs float {what}, got {value.type}", bound[name], f"e.g. {example}")
        if len(value.type.shape) != 2:
            checks.error(
                "E301",
                f"{call.func} compares rows of {what} float[batch, d], got {value.type}",
                bound[name],
                "flatten the features first, e.g. end the stack with `flatten`",
            )
        values.append(value)
    if values[0].type.shape[1] != values[1].type.shape[1]:
        checks.error(
            "E301",
            f"{call.func}: the source {what} are {values[0].type} but the target {what} are {values[1].type}",
            bound[pair[1]],
            f"pass one stack's outputs for both batches, e.g. {example}",
        )
    return values


def _option(checks: LossChecks, call: ir.Call, bound: dict[str, ir.Expr], name: str) -> int | float:
    """A positive number option (a whole number for `kernels`), its default when not given."""
    default = _JMMD.default(name)
    assert isinstance(default, (int, float))
    expr = bound.get(name)
    if expr is None:
        return default
    value = checks.number(expr, checks.settings) if checks.is_number(expr) else None
    whole = isinstance(default, int)
    if value is None or isinstance(value, bool) or value <= 0 or (whole and not isinstance(value, int)):
        checks.error(
            "E601",
            f"{call.func}'s `{name}` is a {'whole number ≥ 1' if whole else 'number > 0'}"
            + ("" if value is None else f", got {value:g}"),
            expr,
            f"e.g. {name} = {default:g}",
        )
    return value if whole else float(value)


def _kernel_options(checks: LossChecks, call: ir.Call, bound: dict[str, ir.Expr]) -> tuple[tuple[str, object], ...]:
    return tuple((name, _option(checks, call, bound, name)) for name in ("kernels", "multiplier"))


def _mmd_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _MMD)
    source, target = _pair(checks, call, bound, ("source", "target"), "features", "mmd(features(xs), features(xt))")
    return P.LossTerm("mmd", (("source", source), ("target", target), *_kernel_options(checks, call, bound)))


def _jmmd_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _JMMD)
    example = "jmmd(features(xs), features(xt), label(features(xs)), label(features(xt)))"
    source, target = _pair(checks, call, bound, ("source", "target"), "features", example)
    ps, pt = _pair(checks, call, bound, ("source_predictions", "target_predictions"), "predictions", example)
    values = (("source", source), ("target", target), ("source_predictions", ps), ("target_predictions", pt))
    sigma = ("sigma", _option(checks, call, bound, "sigma"))
    return P.LossTerm("jmmd", (*values, *_kernel_options(checks, call, bound), sigma))


def _coral_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _CORAL)
    source, target = _pair(checks, call, bound, ("source", "target"), "features", "coral(features(xs), features(xt))")
    return P.LossTerm("coral", (("source", source), ("target", target)))


def _describe(term: P.LossTerm, name: Callable[[P.Value], str]) -> str:
    """`kind(values, option = value)` in the summary: the options given other than their defaults, as written."""
    options = [f"{k} = {v:g}" for k, v in term.args if isinstance(v, (int, float)) and v != _JMMD.default(k)]
    return f"{term.kind}({', '.join([*map(name, term.values), *options])})"


# lowering -------------------------------------------------------------------------------------------------------


def _multi_kernel(ctx: LossLowering, term: P.LossTerm) -> tuple[Any, Any]:
    """The features' multi-kernel over the joined batch, and the source features (where the batch splits)."""
    source = ctx.tensor(term.value("source"))
    distances = ctx.backend.op("squared_distances", source, ctx.tensor(term.value("target")), hint="distances")
    # the bandwidth follows the batch but passes no gradient
    held = ctx.backend.op("stop_gradient", distances, hint="held_distances")
    multiplier = ctx.backend.const(float(term.arg("multiplier")))  # type: ignore[arg-type]
    kernel = ctx.backend.op("gaussian_kernels", distances, held, term.arg("kernels"), multiplier, hint="kernel")
    return kernel, source


def _mmd_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    return ctx.backend.op("mean_discrepancy", *_multi_kernel(ctx, term))


def _jmmd_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    kernel, source = _multi_kernel(ctx, term)
    predicted = (ctx.tensor(term.value(name)) for name in ("source_predictions", "target_predictions"))
    distances = ctx.backend.op("squared_distances", *predicted, hint="prediction_distances")
    sigma = ctx.backend.const(float(term.arg("sigma")))  # type: ignore[arg-type]
    joint = ctx.backend.arith("*", kernel, ctx.backend.op("gaussian_kernel", distances, sigma))
    return ctx.backend.op("mean_discrepancy", joint, source)


def _coral_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    source, target = (ctx.tensor(term.value(name)) for name in ("source", "target"))
    return ctx.backend.op("covariance_distance", source, target)


_MMD_FORMULAS = (squared_distances, gaussian_kernels, mean_discrepancy)
for _kind in (
    LossKind(
        "mmd",
        "`mmd(fs, ft, kernels = 5, multiplier = 2)`: squared maximum mean discrepancy of two batches of features "
        "with DAN's multi-kernel Gaussian (Long et al. 2015)",
        _MMD,
        _mmd_check,
        _mmd_lower,
        _describe,
        formulas=_MMD_FORMULAS,
    ),
    LossKind(
        "jmmd",
        "`jmmd(fs, ft, ps, pt, kernels = 5, multiplier = 2, sigma = 0.92)`: joint MMD of the features and the "
        "predictions of two batches, the product of their kernels (JAN, Long et al. 2017)",
        _JMMD,
        _jmmd_check,
        _jmmd_lower,
        _describe,
        formulas=(*_MMD_FORMULAS, gaussian_kernel),
    ),
    LossKind(
        "coral",
        "`coral(fs, ft)`: squared Frobenius distance of the two batches' feature covariances over 4d² (Deep CORAL, "
        "Sun & Saenko 2016)",
        _CORAL,
        _coral_check,
        _coral_lower,
        _describe,
        formulas=(covariance_distance,),
    ),
):
    LOSSES.register(_kind)

"""The feature regularisers: batch spectral penalty (`bsp`), minimum class confusion (`mcc`) and the stepwise
adaptive feature norm (`afn`). Each reads a batch of features or predictions `float[batch, d]`, needs no labels and
plays no training role of its own.

Their formulas are written once for numpy and PyTensor alike. Where a term is held constant for the gradient (MCC's
row weights, AFN's target norms), the formula takes a second copy of its input, `fixed`, that the lowering passes
with its gradient stopped (`stop_gradient`); numpy, which has no gradient, passes the input itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spec_lang import program as P
from spec_lang.library.losses.kinds import LOSSES, LossChecks, LossKind, LossLowering, need_activation
from spec_lang.library.registry import Argument, Signature
from spec_lang.syntax import ir

_BSP = Signature(
    (
        Argument("source", holds="a batch of source features float[batch, d]"),
        Argument("target", holds="a batch of target features float[batch, d]"),
        Argument("k", 1, positional=False, holds="how many of the largest singular values, a whole number ≥ 1"),
    )
)
_MCC = Signature(
    (
        Argument("predictions", holds="softmax outputs float[batch, classes]"),
        Argument("temperature", 2.5, positional=False, holds="a number > 0"),
    )
)
_AFN = Signature(
    (
        Argument("features", holds="a batch of features float[batch, d]"),
        Argument("delta", 1.0, positional=False, holds="the step Δr of the norm, a number > 0"),
    )
)


# formulas -------------------------------------------------------------------------------------------------------


def spectral_penalty(features, k, xp):
    """The sum of the squares of the `k` largest singular values of `features`: the `k` largest eigenvalues of the
    batch's Gram matrix f·fᵀ (batch × batch; ascending). The gradient of an eigenvalue, v·vᵀ, needs no other one;
    PyTensor's SVD does not lower in JAX, and its `eigh` divides by the gaps between eigenvalues (NaN at a tie).
    Theano has no gradient of `eigvalsh` without `b`: there `eigh`, whose gradient is NaN where eigenvalues tie
    exactly."""
    gram = xp.dot(features, features.T)
    if hasattr(xp, "linalg"):  # numpy, PyTensor
        eigenvalues = xp.linalg.eigvalsh(gram)
    else:  # Theano
        eigenvalues = xp.nlinalg.eigh(gram)[0]
    return eigenvalues[-k:].sum()


def softmax_scores(probabilities, xp):
    """Scores whose softmax is `probabilities`: their logarithms, probabilities below 2⁻¹⁰⁰ (≈ 8e-31) read as 2⁻¹⁰⁰
    (a power of two, so float32 stays float32)."""
    return xp.log(xp.maximum(probabilities, 2.0**-100))


def softmax_scores_from_logits(logits, xp):
    """The logits of a softmax layer, its scores as they are."""
    return logits


def minimum_class_confusion(scores, fixed, temperature, xp):
    """MCC (Jin et al. 2020) of a batch of class scores, as Transfer-Learning-Library's `MinimumClassConfusionLoss`:
    p = softmax(scores / T); rows weighted by 1 + exp(-H(p_i)) (from `fixed`, constant for the gradient), scaled to
    sum to the batch size; the class confusion matrix C = (w·p)ᵀp, each row divided by its sum; the sum of C's
    off-diagonal entries divided by the number of classes. The entropy is exact, from the log-softmax (TLL adds 1e-5
    inside the logarithm); a class that no row gives any probability (all of it underflowed) adds no confusion
    (TLL's is NaN)."""

    def log_softmax(z):
        shifted = z - z.max(axis=1, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))

    probabilities, held = xp.exp(log_softmax(scores / temperature)), log_softmax(fixed / temperature)
    weights = 1 + xp.exp((xp.exp(held) * held).sum(axis=1))  # 1 + exp(-entropy)
    weights = weights / weights.mean()  # summing to the batch size
    confusion = xp.dot((probabilities * weights[:, None]).T, probabilities)
    confusion = confusion / xp.maximum(confusion.sum(axis=1, keepdims=True), 2.0**-100)  # a row of zeros stays 0
    return (confusion.sum(axis=1) - confusion.diagonal()).mean()  # the off-diagonal sum over the classes


def stepwise_feature_norm(features, fixed, delta, xp):
    """SAFN (Xu et al. 2019): the mean over rows of (‖fixed_i‖ + Δr − ‖f_i‖)², the target norms read from `fixed`
    (constant for the gradient). A row's squared norm is at least 2⁻⁴⁰ (≈ 9e-13), so a row of zeros has a zero
    gradient, not NaN."""
    norms = xp.sqrt(xp.maximum((features**2).sum(axis=1), 2.0**-40))
    goals = xp.sqrt(xp.maximum((fixed**2).sum(axis=1), 2.0**-40)) + delta
    return ((goals - norms) ** 2).mean()


# checks and lowerings -------------------------------------------------------------------------------------------


def _features(checks: LossChecks, call: ir.Call, expr: ir.Expr, what: str) -> P.Value:
    """A float matrix argument, `float[batch, d]`."""
    value = checks.value(expr)
    if value.type.dtype != "float" or len(value.type.shape) != 2:
        checks.error(
            "E401",
            f"{call.func} needs {what} float[batch, d], got {value.type}",
            expr,
            f"pass the output of a stack, e.g. {_EXAMPLES[call.func]}",
        )
    return value


def _positive(checks: LossChecks, call: ir.Call, bound: dict[str, ir.Expr], name: str, default: float) -> float:
    """A keyword option that is a number > 0."""
    if name not in bound:
        return default
    value = checks.number(bound[name], checks.settings)
    if isinstance(value, bool) or value <= 0:
        checks.error("E601", f"{call.func}: `{name}` is a number > 0, got {value!r}", bound[name], _HINTS[call.func])
    return float(value)


def _bsp_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _BSP)
    source, target = (_features(checks, call, bound[k], "features") for k in ("source", "target"))
    k = checks.number(bound["k"], checks.settings) if "k" in bound else 1
    widths = [w for w in (source.type.shape[1], target.type.shape[1]) if w is not None]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or any(k > w for w in widths):
        most = f" and at most {min(widths)}, the features' width" if widths else ""
        checks.error("E601", f"bsp: `k` is a whole number ≥ 1{most}, got {k!r}", bound.get("k", call), _HINTS["bsp"])
    return P.LossTerm("bsp", (("source", source), ("target", target), ("k", k)))


def _bsp_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    k = term.arg("k")
    source, target = (ctx.backend.op("spectral_penalty", ctx.tensor(term.value(n)), k) for n in ("source", "target"))
    return ctx.backend.arith("+", source, target)


def _mcc_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _MCC)
    predicted = _features(checks, call, bound["predictions"], "predictions")
    need_activation(checks, call, predicted, "softmax", bound["predictions"])
    temperature = _positive(checks, call, bound, "temperature", 2.5)
    return P.LossTerm("mcc", (("predictions", predicted), ("temperature", temperature)))


def _mcc_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    scores = ctx.of_probabilities("softmax_scores", term.value("predictions"))  # the logits when there are any
    fixed = ctx.backend.op("stop_gradient", scores)
    return ctx.backend.op("minimum_class_confusion", scores, fixed, ctx.backend.const(term.arg("temperature")))


def _afn_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _AFN)
    features = _features(checks, call, bound["features"], "features")
    return P.LossTerm("afn", (("features", features), ("delta", _positive(checks, call, bound, "delta", 1.0))))


def _afn_lower(ctx: LossLowering, term: P.LossTerm) -> Any:
    features = ctx.tensor(term.value("features"))
    fixed = ctx.backend.op("stop_gradient", features)
    return ctx.backend.op("stepwise_feature_norm", features, fixed, ctx.backend.const(term.arg("delta")))


def _describe(term: P.LossTerm, name: Callable[[P.Value], str]) -> str:
    """`kind(values…, option = value)`: the values by name, the options as keywords."""
    shown = [name(v) if isinstance(v, P.Value) else f"{key} = {v:g}" for key, v in term.args]
    return f"{term.kind}({', '.join(shown)})"


_EXAMPLES = {"bsp": "bsp(features(xs), features(xt))", "mcc": "mcc(label(ft))", "afn": "afn(features(xt))"}
_HINTS = {
    "bsp": "e.g. bsp(fs, ft, k = 1): the largest singular value of each batch",
    "mcc": "e.g. mcc(pt, temperature = 2.5)",
    "afn": "e.g. afn(ft, delta = 1.0): each step enlarges the norms by delta",
}

for _kind in (
    LossKind(
        "bsp",
        "`bsp(fs, ft, k = 1)`: batch spectral penalty, the sum of the squares of the k largest singular values of "
        "the source and of the target features (BSP, Chen et al. ICML 2019)",
        _BSP,
        _bsp_check,
        _bsp_lower,
        _describe,
        formulas=(spectral_penalty,),
    ),
    LossKind(
        "mcc",
        "`mcc(p, temperature = 2.5)`: minimum class confusion of softmax outputs, the off-diagonal mass of the "
        "entropy-weighted class correlation matrix, rows normalised, over the classes (MCC, Jin et al. ECCV 2020)",
        _MCC,
        _mcc_check,
        _mcc_lower,
        _describe,
        formulas=(softmax_scores, softmax_scores_from_logits, minimum_class_confusion),
    ),
    LossKind(
        "afn",
        "`afn(f, delta = 1.0)`: stepwise adaptive feature norm, the mean of (‖f_i‖ held constant + delta − ‖f_i‖)² "
        "(SAFN, Xu et al. ICCV 2019)",
        _AFN,
        _afn_check,
        _afn_lower,
        _describe,
        formulas=(stepwise_feature_norm,),
    ),
):
    LOSSES.register(_kind)

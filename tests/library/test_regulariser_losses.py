"""The feature regularisers `bsp`, `mcc` and `afn`: their formulas against independent NumPy references (loops where
clearer), the compiled model against the references, gradients (MCC's and AFN's with their constant terms frozen,
as Transfer-Learning-Library detaches them), the located errors and the emitted module (NUMBA and JAX:
test_losses_in_numba_and_jax.py)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from emitted import import_module, train_side_by_side
from gradients import check_gradient

import spec_lang
from spec_lang.library.losses.regularisers import (
    minimum_class_confusion,
    softmax_scores,
    spectral_penalty,
    stepwise_feature_norm,
)
from spec_lang.lowering.passes import Optimizations
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.reports.summary import summary

MODE = "FAST_COMPILE"
SPEC = """model m()
precision float64
input xs : float[batch, 3]
input xt : float[batch, 3]
input ys : int[batch] < 4
stack features { dense 5 tanh }
stack label { dense 4 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
head source_features = fs
head target_features = ft
head target_probabilities = label(ft)
loss label_loss = crossentropy(label(fs), ys)
loss regulariser = LOSS
optimize sgd(lr = 0.1)
"""
ALL = "bsp(fs, ft, k = 2) + mcc(label(ft), temperature = 2) + afn(ft, delta = 0.5)"


# independent references -----------------------------------------------------------------------------------------


def _bsp_reference(source: np.ndarray, target: np.ndarray, k: int) -> float:
    """Σ of the k largest squared singular values of each batch (numpy's SVD; fewer when a batch has fewer rows)."""
    return sum(float((np.linalg.svd(f, compute_uv=False)[:k] ** 2).sum()) for f in (source, target))


def _mcc_reference(logits: np.ndarray, temperature: float, frozen: np.ndarray | None = None) -> float:
    """TLL's MinimumClassConfusionLoss written out with loops; the row weights come from `frozen` (default: the
    logits themselves), so a finite difference with `frozen` fixed is the gradient with the weights detached."""
    frozen = logits if frozen is None else frozen
    batch, classes = logits.shape

    def softmax(row: np.ndarray) -> np.ndarray:
        e = np.exp(row - row.max())
        return e / e.sum()

    p = np.array([softmax(row / temperature) for row in logits])
    q = np.array([softmax(row / temperature) for row in frozen])
    w = np.array([1 + np.exp(sum(v * np.log(v) for v in row)) for row in q])
    w = batch * w / w.sum()
    confusion = np.zeros((classes, classes))
    for i in range(classes):
        for j in range(classes):
            confusion[i, j] = sum(w[b] * p[b, i] * p[b, j] for b in range(batch))
    confusion /= confusion.sum(axis=1, keepdims=True)
    return sum(confusion[i, j] for i in range(classes) for j in range(classes) if i != j) / classes


def _afn_reference(features: np.ndarray, delta: float, frozen: np.ndarray | None = None) -> float:
    frozen = features if frozen is None else frozen
    return float(
        np.mean([(np.linalg.norm(r0) + delta - np.linalg.norm(r)) ** 2 for r, r0 in zip(features, frozen, strict=True)])
    )


def _numeric_gradient(function, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function of `x`."""
    gradient = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (function(up) - function(down)) / (2 * step)
    return gradient


def _symbolic_gradient(formula, x: np.ndarray, *options) -> np.ndarray:
    """pytensor.grad of `formula(x, x with its gradient stopped, *options)`, as the lowering builds it."""
    v = pt.matrix("x", dtype="float64")
    cost = formula(v, ops.stop_gradient(v), *options, xp=pt)
    return pytensor.function([v], pytensor.grad(cost, v), mode=MODE)(x)


# (a) known answers of the formulas ------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "k"), [((6, 4), 1), ((6, 4), 3), ((2, 5), 3), ((3, 3), 3)])
def test_spectral_penalty_is_the_sum_of_the_largest_squared_singular_values(shape: tuple[int, int], k: int) -> None:
    rng = np.random.default_rng(0)
    source, target = rng.normal(size=shape), rng.normal(size=(shape[0] + 1, shape[1]))
    value = spectral_penalty(source, k, np) + spectral_penalty(target, k, np)
    assert value == pytest.approx(_bsp_reference(source, target, k), rel=1e-10)  # (2, 5), k = 3: rank 2 < k


def test_spectral_penalty_known_answer() -> None:
    diagonal = np.diag([3.0, 2.0, 1.0])  # singular values 3, 2, 1
    assert spectral_penalty(diagonal, 1, np) == pytest.approx(9.0)
    assert spectral_penalty(diagonal, 2, np) == pytest.approx(13.0)
    assert spectral_penalty(np.zeros((4, 3)), 2, np) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_minimum_class_confusion_matches_the_loops(temperature: float) -> None:
    logits = np.random.default_rng(1).normal(size=(7, 4)) * 3
    value = minimum_class_confusion(logits, logits, temperature, np)
    assert value == pytest.approx(_mcc_reference(logits, temperature), rel=1e-10)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # the form from probabilities
    scores = softmax_scores(probabilities, np)
    assert minimum_class_confusion(scores, scores, temperature, np) == pytest.approx(value, rel=1e-10)


def test_minimum_class_confusion_edge_cases() -> None:
    uniform = np.zeros((5, 4))  # every row 1/4: each row of C is 1/4, so the off-diagonal sum is 3 of 4 classes
    assert minimum_class_confusion(uniform, uniform, 2.5, np) == pytest.approx(3 / 4)
    confident = np.eye(4)[[0, 1, 2, 3, 0]] * 200  # one class per row, each class predicted: no confusion
    assert minimum_class_confusion(confident, confident, 2.5, np) == pytest.approx(0.0, abs=1e-12)
    unused = np.eye(4)[[0, 1, 2, 0]] * 1e4  # class 3's probability underflows to 0 in every row: it adds nothing
    assert minimum_class_confusion(unused, unused, 2.5, np) == 0.0
    huge = np.random.default_rng(2).normal(size=(3, 4)) * 1e4  # finite for any logits
    assert np.isfinite(minimum_class_confusion(huge, huge, 2.5, np))


def test_stepwise_feature_norm_is_delta_squared_and_a_zero_row_is_finite() -> None:
    features = np.random.default_rng(3).normal(size=(4, 5))
    features[2] = 0.0  # a row of zeros
    assert stepwise_feature_norm(features, features, 0.5, np) == pytest.approx(0.25)
    assert stepwise_feature_norm(features, features, 0.5, np) == pytest.approx(_afn_reference(features, 0.5))
    moved = features * 1.5  # against norms held at the old features: ‖f0‖ + Δr − ‖f‖
    assert stepwise_feature_norm(moved, features, 0.5, np) == pytest.approx(_afn_reference(moved, 0.5, features))


# (c) gradients --------------------------------------------------------------------------------------------------


def test_spectral_penalty_gradient() -> None:
    rng = np.random.default_rng(4)
    check_gradient(lambda f: spectral_penalty(f, 2, pt), [rng.normal(size=(5, 3))], rng)
    check_gradient(lambda f: spectral_penalty(f, 1, pt), [rng.normal(size=(2, 4))], rng)  # fewer rows than d
    check_gradient(lambda f: spectral_penalty(f, 2, pt), [rng.normal(size=(6, 2))], rng)  # more rows than d


def test_spectral_penalty_gradient_is_finite_where_eigenvalues_tie() -> None:
    """Two zero rows: the Gram matrix has a tied eigenvalue 0 (where `eigh`'s gradient is NaN); the gradient of
    σ₁² + σ₂² is 2·f projected on the top two singular directions, here f itself (rank 2)."""
    features = np.zeros((4, 3))
    features[0], features[1] = [1.0, 2.0, 0.0], [0.0, 1.0, 3.0]
    v = pt.matrix("f", dtype="float64")
    gradient = pytensor.function([v], pytensor.grad(spectral_penalty(v, 2, pt), v), mode=MODE)(features)
    assert gradient == pytest.approx(2 * features, abs=1e-12)


def test_minimum_class_confusion_gradient_holds_the_weights() -> None:
    logits = np.random.default_rng(5).normal(size=(6, 3))
    numeric = _numeric_gradient(lambda z: _mcc_reference(z, 2.5, frozen=logits), logits)
    symbolic = _symbolic_gradient(minimum_class_confusion, logits, 2.5)
    assert symbolic == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    free = _numeric_gradient(lambda z: _mcc_reference(z, 2.5), logits)  # weights not held: another gradient
    assert not np.allclose(symbolic, free, rtol=1e-4, atol=1e-8)


def test_stepwise_feature_norm_gradient_pulls_the_norms_up() -> None:
    features = np.random.default_rng(6).normal(size=(4, 3))
    features[1] = 0.0
    symbolic = _symbolic_gradient(stepwise_feature_norm, features, 0.5)
    norms = np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-300)
    expected = -2 * 0.5 / len(features) * features / norms  # d/df of (‖f0‖ + Δr − ‖f‖)² at f = f0, over 4 rows
    assert symbolic == pytest.approx(expected, rel=1e-10, abs=1e-15)
    assert np.all(symbolic[1] == 0.0)  # the zero row: a zero gradient, not NaN
    numeric = _numeric_gradient(lambda f: _afn_reference(f, 0.5, frozen=features), features)
    assert symbolic[[0, 2, 3]] == pytest.approx(numeric[[0, 2, 3]], rel=1e-5)


def test_the_formulas_keep_float32() -> None:
    """No constant of theirs upcasts a float32 model to float64 (their small constants are powers of two)."""
    v, option = pt.matrix("x", dtype="float32"), pt.constant(2.5, dtype="float32")
    fixed = ops.stop_gradient(v)
    built = [
        spectral_penalty(v, 2, pt),
        softmax_scores(v, pt),
        minimum_class_confusion(v, fixed, option, pt),
        stepwise_feature_norm(v, fixed, option, pt),
    ]
    assert [b.dtype for b in built] == ["float32"] * 4


# (b) the compiled model, (e) the emitted module (NUMBA and JAX: test_losses_in_numba_and_jax.py) ----------------


def test_the_compiled_model_gives_the_references() -> None:
    rng = np.random.default_rng(7)
    xs, xt = rng.normal(size=(6, 3)), rng.normal(size=(5, 3))
    batch = {"xs": xs, "xt": xt, "ys": np.zeros(6, dtype="int32")}
    model = spec_lang.loads(SPEC.replace("LOSS", ALL)).compile(MODE)
    fs, ft = model.predict("source_features", xs), model.predict("target_features", xt)
    logits = np.log(model.predict("target_probabilities", xt))  # softmax(log p / T) = softmax(z / T)
    expected = _bsp_reference(fs, ft, 2) + _mcc_reference(logits, 2.0) + _afn_reference(ft, 0.5)
    assert model.evaluate(**batch)["regulariser"] == pytest.approx(expected, rel=1e-9)
    unfused = spec_lang.loads(SPEC.replace("LOSS", ALL)).compile(MODE, Optimizations(fused_losses=False))
    assert unfused.evaluate(**batch)["regulariser"] == pytest.approx(expected, rel=1e-9)  # MCC from probabilities


@pytest.mark.parametrize(
    ("loss", "shown"),
    [
        ("bsp(fs, ft)", "= bsp(source_features, target_features, k = 1)"),
        ("mcc(label(ft))", "= mcc(label(target_features), temperature = 2.5)"),
        ("afn(ft)", "= afn(target_features, delta = 1)"),
    ],
)
def test_the_defaults_and_the_summary(loss: str, shown: str) -> None:
    spec = spec_lang.loads(SPEC.replace("LOSS", loss))
    assert shown in summary(spec.program, "m.dann", None, MODE)
    xt = np.random.default_rng(10).normal(size=(4, 3))
    model = spec.compile(MODE)
    value = model.evaluate(xs=xt, xt=xt, ys=np.zeros(4, dtype="int32"))["regulariser"]
    ft = model.predict("target_features", xt)
    expected = {
        "bsp": _bsp_reference(ft, ft, 1),
        "mcc": _mcc_reference(np.log(model.predict("target_probabilities", xt)), 2.5),
        "afn": 1.0,
    }[loss.split("(")[0]]
    assert value == pytest.approx(expected, rel=1e-9)


def test_the_emitted_module_computes_the_losses_like_the_compiled_model(tmp_path) -> None:
    spec = spec_lang.loads(SPEC.replace("LOSS", ALL))
    module = emit_python(spec.program, "m.dann")
    for formula in ("spectral_penalty(", "minimum_class_confusion(", "softmax_scores_from_logits(", "feature_norm("):
        assert formula in module
    target = tmp_path / "m.py"
    target.write_text(module)
    generated = import_module(target)
    train = generated.compile_model(mode=MODE)[0]
    train_side_by_side(spec.compile(MODE), generated, train, 3, np.random.default_rng(9), rel=1e-10)


# (d) misuse -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "code", "message"),
    [
        ("bsp(fs, ys)", "E401", "bsp needs features float[batch, d], got int[batch]"),
        ("bsp(fs, ft, k = 6)", "E601", "bsp: `k` is a whole number ≥ 1 and at most 5, the features' width, got 6"),
        ("bsp(fs, ft, k = 1.5)", "E601", "got 1.5"),
        ("bsp(fs, ft, 1)", "E207", "bsp takes 2 positional arguments"),
        ("mcc(domain(ft))", "E401", "mcc expects probabilities from a softmax layer, got sigmoid"),
        ("mcc(label(ft), temperature = 0)", "E601", "mcc: `temperature` is a number > 0, got 0"),
        ("afn(ys)", "E401", "afn needs features float[batch, d], got int[batch]"),
        ("afn(ft, delta = -1)", "E601", "afn: `delta` is a number > 0, got -1"),
    ],
)
def test_misuse_is_a_located_error(loss: str, code: str, message: str) -> None:
    with pytest.raises(spec_lang.SpecError) as raised:
        spec_lang.loads(SPEC.replace("LOSS", loss))
    diagnostic = raised.value.diagnostics[0]
    assert diagnostic.code == code and message in diagnostic.message, diagnostic.message

"""The discrepancy losses `mmd` (DAN), `jmmd` (JAN) and `coral` (Deep CORAL): their formulas against loop-based NumPy
references written here, the compiled model and the emitted module against the same references, their gradients,
and their located errors."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from emitted import import_module, train_side_by_side
from gradients import check_gradient

import spec_lang
from spec_lang import program as P
from spec_lang.library.losses import LOSSES as LOSS_KINDS
from spec_lang.library.losses.discrepancy import (
    covariance_distance,
    gaussian_kernel,
    gaussian_kernels,
    mean_discrepancy,
    squared_distances,
)
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.theano.target import emit_theano

MODE = "FAST_COMPILE"
SPEC = """model m()
precision float64
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features { dense 4 tanh }
stack label { dense 3 softmax }
let fs = features(xs)
let ft = features(xt)
head source_features = fs
head probabilities = label(fs)
loss label_loss = crossentropy(probabilities, ys)
loss discrepancy = LOSS
optimize sgd(lr = 0.1)
"""
LOSSES = {
    "mmd": "mmd(fs, ft)",
    "mmd3": "mmd(fs, ft, kernels = 3, multiplier = 1.5)",
    "jmmd": "jmmd(fs, ft, label(fs), label(ft))",
    "jmmd_sigma": "jmmd(fs, ft, label(fs), label(ft), kernels = 1, sigma = 0.5)",
    "coral": "coral(fs, ft)",
}


# independent references: loops over the pairs, as the papers write them ---------------------------------------


def _kernel_matrix(z: np.ndarray, bandwidths: list[float]) -> np.ndarray:
    """K[i, j] = Σ_b exp(-‖z_i - z_j‖² / (2 b)) for every pair of rows."""
    n = len(z)
    k = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            distance = float(np.sum((z[i] - z[j]) ** 2))
            k[i, j] = sum(np.exp(-distance / (2 * b)) for b in bandwidths)
    return k


def _multi_kernel(z: np.ndarray, kernels: int, multiplier: float) -> np.ndarray:
    n = len(z)
    mean = sum(float(np.sum((z[i] - z[j]) ** 2)) for i in range(n) for j in range(n)) / n**2
    return _kernel_matrix(z, [multiplier ** (q - kernels // 2) * mean for q in range(kernels)])


def _v_statistic(k: np.ndarray, m: int) -> float:
    """(1/m²) Σ k(s, s') + (1/n²) Σ k(t, t') - (2/mn) Σ k(s, t), the source the first m rows of n + m."""
    n = len(k) - m
    ss = sum(k[i, j] for i in range(m) for j in range(m)) / m**2
    tt = sum(k[i, j] for i in range(m, m + n) for j in range(m, m + n)) / n**2
    st = sum(k[i, j] for i in range(m) for j in range(m, m + n)) / (m * n)
    return ss + tt - 2 * st


def reference_mmd(fs: np.ndarray, ft: np.ndarray, kernels: int = 5, multiplier: float = 2.0) -> float:
    return _v_statistic(_multi_kernel(np.vstack([fs, ft]), kernels, multiplier), len(fs))


def reference_jmmd(fs, ft, ps, pt_, kernels: int = 5, multiplier: float = 2.0, sigma: float = 0.92) -> float:
    features = _multi_kernel(np.vstack([fs, ft]), kernels, multiplier)
    predictions = _kernel_matrix(np.vstack([ps, pt_]), [sigma**2])
    return _v_statistic(features * predictions, len(fs))


def reference_coral(fs: np.ndarray, ft: np.ndarray) -> float:
    d = fs.shape[1]
    difference = np.cov(fs, rowvar=False, ddof=1).reshape(d, d) - np.cov(ft, rowvar=False, ddof=1).reshape(d, d)
    return float(np.sum(difference**2)) / (4 * d**2)


# the formulas, composed as the lowering composes them, on numpy ---------------------------------------------------


def formula_mmd(fs, ft, kernels=5, multiplier=2.0, xp=np):
    distances = squared_distances(fs, ft, xp)
    return mean_discrepancy(gaussian_kernels(distances, distances, kernels, multiplier, xp), fs, xp)


def formula_jmmd(fs, ft, ps, pt_, kernels=5, multiplier=2.0, sigma=0.92, xp=np):
    distances = squared_distances(fs, ft, xp)
    kernel = gaussian_kernels(distances, distances, kernels, multiplier, xp)
    return mean_discrepancy(kernel * gaussian_kernel(squared_distances(ps, pt_, xp), sigma, xp), fs, xp)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(("rows", "width"), [((4, 6), 3), ((5, 5), 2), ((3, 1), 4)])
def test_mmd_and_jmmd_formulas_match_the_references(rows: tuple[int, int], width: int) -> None:
    rng = np.random.default_rng(sum(rows) + width)
    fs, ft = rng.normal(size=(rows[0], width)), rng.normal(0.5, 2.0, size=(rows[1], width))
    ps, pt_ = _softmax(rng.normal(size=(rows[0], 3))), _softmax(rng.normal(size=(rows[1], 3)))
    assert formula_mmd(fs, ft) == pytest.approx(reference_mmd(fs, ft), rel=1e-12)
    assert formula_mmd(fs, ft, 3, 1.5) == pytest.approx(reference_mmd(fs, ft, 3, 1.5), rel=1e-12)
    assert formula_mmd(fs, ft, 1, 2.0) == pytest.approx(reference_mmd(fs, ft, 1, 2.0), rel=1e-12)
    assert formula_jmmd(fs, ft, ps, pt_) == pytest.approx(reference_jmmd(fs, ft, ps, pt_), rel=1e-12)
    assert formula_jmmd(fs, ft, ps, pt_, 2, 3.0, 0.3) == pytest.approx(
        reference_jmmd(fs, ft, ps, pt_, 2, 3.0, 0.3), rel=1e-12
    )


def test_mmd_known_answers_and_edge_cases() -> None:
    # one row each, 1 apart: the mean distance over the 4 pairs is 1/2, σ² = 1/2 · 2^e (e = -2 … 2), so
    # k(s, s) = k(t, t) = 5 and k(s, t) = Σ_e exp(-1 / 2^e)
    fs, ft = np.array([[0.0]]), np.array([[1.0]])
    by_hand = 2 * sum(1 - np.exp(-(2.0**-e)) for e in range(-2, 3))
    assert formula_mmd(fs, ft) == pytest.approx(by_hand, rel=1e-12)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 3))
    assert formula_mmd(x, x) == pytest.approx(0.0, abs=1e-12)  # the same batch twice: no discrepancy
    assert formula_jmmd(x, x, _softmax(x), _softmax(x)) == pytest.approx(0.0, abs=1e-12)
    assert formula_mmd(x, x + 10.0) > formula_mmd(x, x + 1.0) > 0  # batches further apart
    far = x * 1e4  # large features: the bandwidth scales with them, the value does not overflow
    assert formula_mmd(far, far + 1e4) == pytest.approx(formula_mmd(x, x + 1.0), rel=1e-6)
    assert (squared_distances(x, x, np) >= 0).all()  # rounding clipped at 0


def test_coral_matches_the_reference_and_known_answers() -> None:
    rng = np.random.default_rng(4)
    fs, ft = rng.normal(size=(6, 3)), rng.normal(0.0, 3.0, size=(4, 3))
    assert covariance_distance(fs, ft, np) == pytest.approx(reference_coral(fs, ft), rel=1e-12)
    assert covariance_distance(fs, fs + 5.0, np) == pytest.approx(0.0, abs=1e-12)  # a shift keeps the covariance
    # d = 1, two rows each: variances 2 (rows 0, 2) and 8 (rows 0, 4): (2 - 8)² / 4
    assert covariance_distance(np.array([[0.0], [2.0]]), np.array([[0.0], [4.0]]), np) == pytest.approx(9.0)
    f32 = covariance_distance(fs.astype("float32"), ft.astype("float32"), pt).eval()
    assert f32.dtype == np.float32  # the row and width counts keep the features' precision


# the compiled model -------------------------------------------------------------------------------------------------


def _spec(loss: str) -> spec_lang.Spec:
    return spec_lang.loads(SPEC.replace("LOSS", loss))


@pytest.mark.parametrize("name", list(LOSSES))
def test_the_compiled_model_computes_the_reference(name: str) -> None:
    model = _spec(LOSSES[name]).compile(MODE)
    rng = np.random.default_rng(5)
    xs, xt = rng.normal(size=(5, 2)), rng.normal(1.0, 1.0, size=(3, 2))
    fs, ft = model.predict("source_features", xs), model.predict("source_features", xt)
    ps, pt_ = model.predict("probabilities", xs), model.predict("probabilities", xt)
    expected = {
        "mmd": lambda: reference_mmd(fs, ft),
        "mmd3": lambda: reference_mmd(fs, ft, 3, 1.5),
        "jmmd": lambda: reference_jmmd(fs, ft, ps, pt_),
        "jmmd_sigma": lambda: reference_jmmd(fs, ft, ps, pt_, 1, 2.0, 0.5),
        "coral": lambda: reference_coral(fs, ft),
    }[name]()
    value = model.evaluate(xs=xs, xt=xt, ys=np.zeros(5, dtype="int32"))["discrepancy"]
    assert value == pytest.approx(expected, rel=1e-10)


# gradients ----------------------------------------------------------------------------------------------------------


def test_the_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(6)
    fs, ft = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    ps, pt_ = _softmax(rng.normal(size=(4, 2))), _softmax(rng.normal(size=(3, 2)))
    held = pt.constant(squared_distances(fs, ft, np))  # the bandwidth passes no gradient: held at the point

    def mmd(s, t):
        return mean_discrepancy(gaussian_kernels(squared_distances(s, t, pt), held, 5, 2.0, pt), s, pt)

    def jmmd(s, t, p, q):
        kernel = gaussian_kernels(squared_distances(s, t, pt), held, 5, 2.0, pt)
        return mean_discrepancy(kernel * gaussian_kernel(squared_distances(p, q, pt), 0.92, pt), s, pt)

    check_gradient(mmd, [fs, ft], rng)
    check_gradient(jmmd, [fs, ft, ps, pt_], rng)
    check_gradient(lambda s, t: covariance_distance(s, t, pt), [fs, ft], rng)


def test_the_bandwidth_passes_no_gradient() -> None:
    """As the lowering builds it (the distances through `stop_gradient`), the gradient is the one with the
    bandwidth held constant, which differs from the one through the bandwidth."""
    rng = np.random.default_rng(7)
    fs, ft = rng.normal(size=(4, 3)), rng.normal(size=(3, 3))
    s, t = pt.dmatrix("s"), pt.dmatrix("t")
    distances = squared_distances(s, t, pt)

    def gradient(held) -> np.ndarray:
        loss = mean_discrepancy(gaussian_kernels(distances, held, 5, 2.0, pt), s, pt)
        return pytensor.function([s, t], pytensor.grad(loss, s), mode=MODE)(fs, ft)

    lowered = gradient(ops.stop_gradient(distances))
    constant = gradient(pt.constant(squared_distances(fs, ft, np)))
    np.testing.assert_allclose(lowered, constant, rtol=1e-12)
    assert not np.allclose(lowered, gradient(distances))


# the emitted modules (NUMBA and JAX: test_losses_in_numba_and_jax.py) -----------------------------------------------


@pytest.mark.parametrize("name", ["mmd", "jmmd_sigma", "coral"])
def test_the_emitted_module_computes_the_loss_like_the_compiled_model(name: str, tmp_path) -> None:
    spec = _spec(LOSSES[name])
    module = emit_python(spec.program, "m.dann")
    assert "def squared_distances(" in module or "def covariance_distance(" in module
    target = tmp_path / "m.py"
    target.write_text(module)
    generated = import_module(target)
    train = generated.compile_model(mode=MODE)[0]
    train_side_by_side(spec.compile(MODE), generated, train, 3, np.random.default_rng(9), rel=1e-10)


def test_theano_gets_the_same_formulas() -> None:
    module = emit_theano(_spec(f"{LOSSES['jmmd']} + {LOSSES['coral']}").program, "m.dann")
    for name in ("squared_distances", "gaussian_kernels", "gaussian_kernel", "mean_discrepancy", "stop_gradient"):
        assert f"def {name}(" in module
    assert "xp=tt)" in module and "import pytensor" not in module


# misuse -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "code", "message"),
    [
        ("mmd(fs, wide(xt))", "E301", "mmd: the source features are float[batch, 4] but the target features are"),
        ("coral(fs, ys)", "E401", "coral needs float features, got int[batch]"),
        ("jmmd(fs, ft, label(fs), ft)", "E301", "jmmd: the source predictions are float[batch, 3]"),
        ("mmd(fs, ft, kernels = 2.5)", "E601", "mmd's `kernels` is a whole number ≥ 1, got 2.5"),
        ("jmmd(fs, ft, label(fs), label(ft), sigma = 0)", "E601", "jmmd's `sigma` is a number > 0, got 0"),
        ("mmd(fs, ft, multiplier = fs)", "E601", "mmd's `multiplier` is a number > 0"),
        ("coral(fs)", "E207", ""),
    ],
)
def test_misuse_is_a_located_error(loss: str, code: str, message: str) -> None:
    text = SPEC.replace("LOSS", loss).replace("stack label", "stack wide { dense 5 tanh }\nstack label")
    with pytest.raises(spec_lang.SpecError) as raised:
        spec_lang.loads(text)
    diagnostic = raised.value.diagnostics[0]
    assert diagnostic.code == code and message in diagnostic.message
    assert diagnostic.span is not None


def test_the_summary_shows_the_options_given_as_written() -> None:
    def described(loss: str) -> str:
        (term,) = P.loss_functions(_spec(loss).program.losses["discrepancy"])
        return LOSS_KINDS[term.kind].describe(term, lambda value: "v")

    assert described(LOSSES["jmmd_sigma"]) == "jmmd(v, v, v, v, kernels = 1, sigma = 0.5)"
    assert described(LOSSES["mmd3"]) == "mmd(v, v, kernels = 3, multiplier = 1.5)"
    assert described("mmd(fs, ft, kernels = 5)") == "mmd(v, v)"
    assert described(LOSSES["coral"]) == "coral(v, v)"


def test_the_multi_kernel_stays_finite_when_every_feature_is_zero() -> None:
    """Dead ReLUs on both batches: every distance is 0, and so is their mean, the kernels' bandwidth."""
    zeros = np.zeros((4, 4))
    kernel = gaussian_kernels(zeros, zeros, 5, 2.0, np)
    assert np.all(kernel == 5.0)  # exp(0) for each of the 5 kernels

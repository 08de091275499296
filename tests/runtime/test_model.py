"""The compiled model's Python API: train, evaluate, predict, parameters, hyperparameters, save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from gradients import check_gradient

import spec_lang
from spec_lang.lowering.pytensor import ops

ROOT = Path(__file__).resolve().parents[2]
MODE = "FAST_COMPILE"  # numerics are mode-independent; test_fidelity covers the default and C modes


@pytest.fixture(scope="module")
def spec() -> spec_lang.Spec:
    return spec_lang.load(ROOT / "examples" / "seed_dann.dann")


def batch(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"xs": rng.normal(size=(9, 2)), "xt": rng.normal(size=(10, 2)), "ys": rng.integers(0, 8, 9)}


def test_train_step_returns_every_loss_term_and_moves_parameters(spec) -> None:
    model = spec.compile(MODE)
    before = model.parameters
    losses = model.train_step(**batch())
    assert set(losses) == {"objective", "label_loss", "domain_loss"}
    assert losses["objective"] == pytest.approx(losses["label_loss"] + losses["domain_loss"])
    assert all(not np.array_equal(before[n], v) for n, v in model.parameters.items())


def test_evaluate_changes_nothing_and_agrees_with_train_step(spec) -> None:
    model = spec.compile(MODE)
    before = model.parameters
    evaluated = model.evaluate(**batch())
    assert all(np.array_equal(before[n], v) for n, v in model.parameters.items())
    assert model.train_step(**batch()) == pytest.approx(evaluated)


def test_predict_returns_probabilities(spec) -> None:
    model = spec.compile(MODE)
    x = batch()["xs"]
    label = model.predict("label_probabilities", x)
    assert label.shape == (9, 8) and np.allclose(label.sum(axis=1), 1)
    domain = model.predict("domain_probabilities", xs=x)
    assert domain.shape == (9, 6) and ((domain > 0) & (domain < 1)).all()
    with pytest.raises(KeyError, match="no head 'labels'"):
        model.predict("labels", x)


def test_missing_inputs_are_named(spec) -> None:
    model = spec.compile(MODE)
    with pytest.raises(ValueError, match="missing: ys"):
        model.train_step(xs=batch()["xs"], xt=batch()["xt"])


def test_initial_parameters_are_seeded_and_reproducible(spec) -> None:
    a, b = spec.compile(MODE).parameters, spec.compile(MODE).parameters
    assert all(np.array_equal(a[n], b[n]) for n in a)
    other = spec_lang.loads((ROOT / "examples" / "seed_dann.dann").read_text().replace("seed 1", "seed 2"))
    assert not np.array_equal(other.compile(MODE).parameters["features.0.W"], a["features.0.W"])
    assert all(not v.any() for n, v in a.items() if n.endswith(".b"))  # biases = zeros


def test_save_and_load_parameters(spec, tmp_path) -> None:
    trained = spec.compile(MODE)
    for seed in range(3):
        trained.train_step(**batch(seed))
    trained.save(tmp_path / "params.npz")
    fresh = spec.compile(MODE)
    fresh.load(tmp_path / "params.npz")
    assert fresh.evaluate(**batch(9)) == trained.evaluate(**batch(9))
    with pytest.raises(ValueError, match="has shape"):
        fresh.set_parameters({"features.0.W": np.zeros((3, 3))})
    other = spec_lang.load(ROOT / "examples" / "seed_l2_mlp.dann").compile(MODE)
    with pytest.raises(ValueError, match="lacks parameters"):
        other.load(tmp_path / "params.npz")


def test_loading_parameters_that_do_not_fit_changes_nothing(spec, tmp_path) -> None:
    model = spec.compile(MODE)
    before = model.parameters
    wrong = {**before, "features.0.b": before["features.0.b"] + 1, "label.0.W": np.zeros((1, 1))}
    np.savez(tmp_path / "wrong.npz", **wrong)  # a good first parameter, then one of the wrong shape
    with pytest.raises(ValueError, match="has shape"):
        model.load(tmp_path / "wrong.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "wrong.npz").read_bytes()[:200])
    with pytest.raises(ValueError, match="cannot read .*cut.npz"):
        model.load(tmp_path / "cut.npz")
    after = model.parameters
    assert all(np.array_equal(before[n], after[n]) for n in before)


def test_precision_float32_by_default() -> None:
    model = spec_lang.load(ROOT / "examples" / "dann_reverse_layer.dann").compile(MODE)
    assert {v.dtype for v in model.parameters.values()} == {np.dtype("float32")}
    assert model.predict("label_probabilities", batch()["xs"]).dtype == np.float32


def test_reverse_gradient_is_identity_forward_and_scales_the_gradient_by_minus_lambda() -> None:
    x, w = pt.dvector("x"), pt.dvector("w")
    lam = pytensor.shared(0.7)
    y = ops.reverse_gradient(x, lam)
    forward = pytensor.function([x], y, mode=MODE)
    gradient = pytensor.function([x, w], pytensor.grad((w * y).sum(), x), mode=MODE)
    values, weights = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.25, -1.0])
    np.testing.assert_array_equal(forward(values), values)
    np.testing.assert_allclose(gradient(values, weights), -0.7 * weights)
    lam.set_value(0.0)
    np.testing.assert_allclose(gradient(values, weights), 0 * weights)


def test_loss_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0, 2, 1])

    def crossentropy(z):
        return ops.crossentropy(ops.softmax(z), pt.constant(labels))

    def bce(z):
        return ops.binary_crossentropy(ops.sigmoid(z), 1.0)

    def mse(z):
        return ops.mean_squared_error(ops.tanh(z), pt.constant(np.ones((3, 3))))

    def l2(z):
        return ops.l2_penalty([z, 2 * z])

    def l1(z):
        return ops.l1_penalty([z])

    for loss in (crossentropy, bce, mse, l2, l1):
        check_gradient(loss, [rng.normal(size=(3, 3)) + 0.1], rng)


def test_l2_over_weights_only(tmp_path) -> None:
    text = (ROOT / "examples" / "seed_l2_mlp.dann").read_text()
    weights_only = spec_lang.loads(text.replace("l2(net)", "l2(net, biases = false)")).compile(MODE)
    both = spec_lang.loads(text).compile(MODE)
    biases = {n: np.ones_like(v) for n, v in both.parameters.items() if n.endswith(".b")}
    both.set_parameters(biases)
    weights_only.set_parameters(biases)
    data = {"x": np.zeros((2, 10)), "z": np.array([0, 1])}
    count = sum(v.size for v in biases.values())
    assert both.evaluate(**data)["reg"] - weights_only.evaluate(**data)["reg"] == pytest.approx(0.1 * count)


def test_the_compile_cache_key_covers_every_lowering_source_and_fails_without_one(tmp_path: Path) -> None:
    from spec_lang.runtime import compile_cache

    package = ROOT / "spec_lang"
    files = compile_cache._source_files(package)
    assert package / "lowering" / "pytensor" / "ops.py" in files
    assert package / "library" / "layers" / "images.py" in files  # found recursively
    assert len(set(files)) == len(files)
    (tmp_path / "program").mkdir()
    (tmp_path / "program" / "types.py").write_text("")
    with pytest.raises(RuntimeError, match="spec_lang/library is missing"):
        compile_cache._source_files(tmp_path)


UNBOUNDED_LABELS = """model m()
input x : float[batch, 2]
input y : int[batch]
stack s { dense 3 softmax }
loss l = crossentropy(s(x), y)
optimize sgd(lr = 0.1)
"""


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE", "JAX"])
@pytest.mark.parametrize("labels", [[0, 10**9], [0, 3], [-1, 0], [0.5, 1]])
def test_labels_outside_the_predicted_classes_are_refused_in_every_door(mode: str, labels: list) -> None:
    """`y` declares no bound, but the model predicts 3 classes: a label of 3 or more (10^9 crashed the Numba step)
    or below 0 or fractional never reaches a compiled function."""
    model = spec_lang.loads(UNBOUNDED_LABELS).compile(mode)
    x, y = np.zeros((2, 2)), np.array(labels)
    before = model.parameters
    for door in (model.train_step, model.evaluate):
        with pytest.raises(ValueError, match=r"the labels 'y' (range over .* outside \[0, 3\)|must be whole numbers)"):
            door(x=x, y=y)
    assert all(np.array_equal(before[n], v) for n, v in model.parameters.items())
    assert model.train_step(x=x, y=np.array([0, 2]))["l"] == pytest.approx(np.log(3), rel=1e-5)


def test_data_files_with_labels_outside_the_predicted_classes_are_refused(tmp_path: Path) -> None:
    from spec_lang.data import check_arrays

    program = spec_lang.loads(UNBOUNDED_LABELS).program
    arrays = {"x": np.zeros((2, 2)), "y": np.array([0, 100])}
    with pytest.raises(spec_lang.SpecError, match=r"labels of 'y' in d.npz range over \[0, 100\], outside \[0, 3\)"):
        check_arrays(program, arrays, ["x", "y"], "d.npz")


def test_the_c_mode_compiles_without_a_blas_library(spec) -> None:
    model = spec.compile("C")  # PyTensor's all-C linker has no Gemm without BLAS; C code per Op has
    assert model.mode == "CVM" and np.isfinite(model.train_step(**batch())["objective"])

"""CDAN's randomised multilinear map, `outer(f, p, dim = D)`: the compiled values against NumPy, with the fixed
matrices drawn as documented (numpy's default_rng from the seed and the three sizes); shared by the source and the
target batch, changed by the seed, never stored; gradients into the features only; float32 kept; the summary, the
fingerprint and the emitted modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from emitted import import_module, train_side_by_side
from gradients import check_gradient

import spec_lang
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.theano.target import emit_theano
from spec_lang.program.fingerprint import fingerprint
from spec_lang.reports.summary import summary

MODE = "FAST_COMPILE"
SPEC = """model m()
precision PRECISION
seed SEED
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features { dense 4 tanh }
stack label { dense 3 softmax }
stack domain { dense 5 relu; dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
head source_features = fs
head source_probabilities = label(fs)
head source_map = outer(fs, label(fs), dim = 8)
head target_map = outer(ft, label(ft), dim = 8)
loss label_loss = crossentropy(label(fs), ys)
loss domain_loss = bce(domain(reverse(outer(fs, label(fs), dim = 8), lambda = 1)), 0)
                 + bce(domain(reverse(outer(ft, label(ft), dim = 8), lambda = 1)), 1)
optimize sgd(lr = 0.1)
    minimize label_loss + domain_loss
"""


def _spec(precision: str = "float64", seed: int = 0) -> str:
    return SPEC.replace("PRECISION", precision).replace("SEED", str(seed))


def _reference(features: np.ndarray, predictions: np.ndarray, seed: int, dim: int) -> np.ndarray:
    """Transfer-Learning-Library's RandomizedMultiLinearMap: (f R_f) ⊙ (g R_g) / √dim, R_f then R_g standard normal
    from numpy's default_rng([seed, features, classes, dim])."""
    draw = np.random.default_rng([seed, features.shape[1], predictions.shape[1], dim])
    feature_map = draw.standard_normal((features.shape[1], dim))
    prediction_map = draw.standard_normal((predictions.shape[1], dim))
    return np.einsum("bi,ik->bk", features, feature_map) * (predictions @ prediction_map) / np.sqrt(dim)


@pytest.mark.parametrize(
    ("precision", "seed", "rel"), [("float64", 0, 1e-12), ("float64", 7, 1e-12), ("float32", 0, 1e-5)]
)
def test_the_map_gives_the_reference(precision: str, seed: int, rel: float) -> None:
    model = spec_lang.loads(_spec(precision, seed)).compile(MODE)
    xs = np.random.default_rng(0).normal(size=(5, 2)).astype(precision)
    mapped = model.predict("source_map", xs)
    assert mapped.dtype == precision and mapped.shape == (5, 8)
    fs, ps = model.predict("source_features", xs), model.predict("source_probabilities", xs)
    expected = _reference(fs.astype("float64"), ps.astype("float64"), seed, 8)
    assert mapped == pytest.approx(expected, rel=rel, abs=rel * 1e-2)
    assert model.predict("target_map", xt=xs) == pytest.approx(mapped, rel=1e-12)  # one map for both batches


def test_the_seed_chooses_the_maps_and_nothing_is_stored() -> None:
    xs = np.random.default_rng(1).normal(size=(4, 2))
    first, other = (spec_lang.loads(_spec(seed=s)).compile(MODE) for s in (0, 1))
    other.set_parameters(first.parameters)
    assert not np.allclose(first.predict("source_map", xs), other.predict("source_map", xs))
    arrays, meta = first.state_dict()
    assert {name.partition("/")[2] for name in arrays} == set(first.parameters)  # parameters only: no map
    resumed = spec_lang.loads(_spec()).compile(MODE)
    resumed.load_state_dict(arrays, meta)
    assert resumed.predict("source_map", xs) == pytest.approx(first.predict("source_map", xs), rel=1e-15)


def test_gradients_reach_the_features_only() -> None:
    rng = np.random.default_rng(2)
    predictions = pt.constant(rng.dirichlet(np.ones(3), size=4))
    weights = pt.constant(rng.normal(size=(4, 6)))  # a scalar of the map that depends on every column
    check_gradient(
        lambda f: (ops.randomized_outer(f, predictions, 0, (5, 3), 6) * weights).sum(), [rng.normal(size=(4, 5))], rng
    )
    features, conditioning = pt.matrix("f", dtype="float64"), pt.matrix("p", dtype="float64")
    cost = ops.randomized_outer(features, conditioning, 0, (5, 3), 6).sum()
    gradient = pytensor.grad(cost, conditioning)
    assert pytensor.function([features, conditioning], gradient, mode=MODE)(
        np.ones((2, 5)), np.ones((2, 3))
    ) == pytest.approx(np.zeros((2, 3)))


def test_float32_stays_float32() -> None:
    features, predictions = pt.matrix(dtype="float32"), pt.matrix(dtype="float32")
    assert ops.randomized_outer(features, predictions, 0, (5, 3), 6).dtype == "float32"


def test_summary_and_fingerprint() -> None:
    program = spec_lang.loads(_spec()).program
    assert "= outer(source_features, label(source_features), dim = 8)  float64[batch, 8]" in summary(
        program, "m.dann", None, MODE
    )
    other_dim = spec_lang.loads(_spec().replace("label(fs), dim = 8)\n", "label(fs), dim = 16)\n")).program
    plain = spec_lang.loads(_spec().replace(", dim = 8", "")).program
    assert len({fingerprint(program), fingerprint(other_dim), fingerprint(plain)}) == 3


def test_the_emitted_modules(tmp_path: Path) -> None:
    """The PyTensor module draws the same maps from its SEED and trains as the compiled model."""
    program = spec_lang.loads(_spec(seed=3)).program
    path = tmp_path / "cdan_model.py"
    text = emit_python(program, "m.dann")
    assert "target_map = randomized_outer(ft, " in text and ", SEED, (4, 3), 8)" in text
    path.write_text(text)
    generated = import_module(path)
    train, *_ = generated.compile_model(mode=MODE)
    model = spec_lang.loads(_spec(seed=3)).compile(MODE)
    train_side_by_side(model, generated, train, 2, np.random.default_rng(3), rel=1e-10)
    assert "def random_maps(seed, features, classes, dim)" in emit_theano(program, "m.dann")

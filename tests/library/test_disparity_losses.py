"""The classifier disparity losses: MCD's `classifier_discrepancy`, MDD's `mdd` and CDAN+E's
`bce_weighted_by_entropy`, each against a loop-based NumPy reference written here, through the compiled model, the
emitted module (Numba and JAX: test_losses_in_numba_and_jax.py), with gradient checks and their located errors."""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from emitted import import_module, train_side_by_side
from gradients import check_gradient

import spec_lang
from spec_lang.library.losses import disparity
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.theano.target import emit_theano
from spec_lang.training.roles import infer_roles

MODE = "FAST_COMPILE"
SPEC = """model m()
precision float64
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features { dense 4 tanh }
stack c1 { dense 3 softmax }
stack c2 { dense 3 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
head first = c1(fs)
head second = c2(fs)
head domain_probabilities = domain(fs)
loss label_loss = crossentropy(c1(fs), ys)
loss extra = LOSS
optimize sgd(lr = 0.1)
"""
DISCREPANCY = "-classifier_discrepancy(c1(reverse(ft, lambda = 1)), c2(reverse(ft, lambda = 1)))"
MDD = "mdd(c1(fs), c2(reverse(fs, lambda = 1)), c1(ft), c2(reverse(ft, lambda = 1)), margin = 3)"
WEIGHTED = (
    "bce_weighted_by_entropy(domain(reverse(fs, lambda = 1)), 0, c1(fs))"
    " + bce_weighted_by_entropy(domain(reverse(ft, lambda = 1)), 1, c1(ft))"
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# independent NumPy references, row by row ---------------------------------------------------------------------


def _discrepancy(p1: np.ndarray, p2: np.ndarray) -> float:
    return sum(
        sum(abs(a - b) for a, b in zip(r1, r2, strict=True)) / len(r1) for r1, r2 in zip(p1, p2, strict=True)
    ) / len(p1)


def _mdd(ps: np.ndarray, pas: np.ndarray, pt_: np.ndarray, pat: np.ndarray, margin: float) -> float:
    source = [-math.log(q[int(np.argmax(p))]) for p, q in zip(ps, pas, strict=True)]
    target = [-math.log(1 - q[int(np.argmax(p))]) for p, q in zip(pt_, pat, strict=True)]
    return margin * sum(source) / len(source) + sum(target) / len(target)


def _weights(p: np.ndarray) -> np.ndarray:
    entropies = [-sum(v * math.log(v) for v in row if v > 0) for row in p]
    raw = [1 + math.exp(-h) for h in entropies]
    return np.array([w * len(raw) / sum(raw) for w in raw])


def _weighted_bce(d: np.ndarray, domain: float, p: np.ndarray) -> float:
    terms = [
        w * -(domain * math.log(v) + (1 - domain) * math.log(1 - v))
        for w, row in zip(_weights(p), d, strict=True)
        for v in row
    ]
    return sum(terms) / d.size


# (a) the formulas against the references ---------------------------------------------------------------------


def test_the_discrepancy_formula_known_answers() -> None:
    rng = np.random.default_rng(0)
    p1, p2 = _softmax(rng.normal(size=(5, 4))), _softmax(rng.normal(size=(5, 4)))
    assert disparity.mcd_discrepancy(p1, p2, np) == pytest.approx(_discrepancy(p1, p2), rel=1e-12)
    assert disparity.mcd_discrepancy(p1, p1, np) == 0.0  # the same classifier: no discrepancy
    one_hot = np.eye(3)[[0, 1]]  # opposite certain predictions: |1 - 0| + |0 - 1| over 3 classes
    assert disparity.mcd_discrepancy(one_hot, one_hot[::-1], np) == pytest.approx(2 / 3)


def test_the_mdd_formulas_known_answers() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 3)) * 3
    labels = disparity.mdd_predicted_class(_softmax(rng.normal(size=(6, 3))), np)
    q = _softmax(z)
    expected = np.mean([-math.log(1 - q[i, k]) for i, k in enumerate(labels)])
    assert disparity.mdd_disagreement(q, labels, np) == pytest.approx(expected, rel=1e-12)
    assert disparity.mdd_disagreement_from_logits(z, labels, np) == pytest.approx(expected, rel=1e-12)
    # an adversary certain of the predicted class: -log(1 - q_k) = lse(z) - lse(the others) ≈ 60 - log 2, finite
    certain = np.array([[60.0, 0.0, 0.0]])
    assert disparity.mdd_disagreement_from_logits(certain, np.array([0]), np) == pytest.approx(60 - math.log(2))
    assert disparity.mdd_disagreement(_softmax(certain), np.array([0]), np) == pytest.approx(60 - math.log(2))
    # ties go to the first class, as numpy's and torch's argmax
    assert list(disparity.mdd_predicted_class(np.array([[0.5, 0.5], [0.2, 0.8]]), np)) == [0, 1]


def test_the_entropy_weights_and_the_weighted_bce_known_answers() -> None:
    rng = np.random.default_rng(2)
    p = _softmax(rng.normal(size=(5, 3)))
    p[0] = [1.0, 0.0, 0.0]  # certain: entropy 0, weight 2 before normalising (0 log 0 = 0)
    weights = disparity.weights_by_entropy(p, np)
    np.testing.assert_allclose(weights, _weights(p), rtol=1e-12)
    assert weights.mean() == pytest.approx(1.0) and weights[0] == weights.max()
    z = rng.normal(size=(5, 1))
    for domain in (0.0, 1.0):
        expected = _weighted_bce(1 / (1 + np.exp(-z)), domain, p)
        assert disparity.weighted_domain_bce(1 / (1 + np.exp(-z)), domain, weights, np) == pytest.approx(expected)
        assert disparity.weighted_domain_bce_from_logits(z, domain, weights, np) == pytest.approx(expected)
    assert disparity.weighted_domain_bce_from_logits(np.array([[800.0]]), 1.0, np.ones(1), np) == 0.0  # no overflow


# (b) the compiled model against the references ----------------------------------------------------------------


def _batch(rows: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"xs": rng.normal(size=(rows, 2)), "xt": rng.normal(size=(rows + 1, 2)), "ys": rng.integers(0, 3, rows)}


def test_the_compiled_losses_equal_the_references() -> None:
    batch = _batch()
    xs, xt = batch["xs"], batch["xt"]
    model = spec_lang.loads(SPEC.replace("LOSS", f"{DISCREPANCY} + {MDD}")).compile(MODE)
    c1s, c2s, c1t, c2t = (model.predict(h, x) for x in (xs, xt) for h in ("first", "second"))
    expected = -_discrepancy(c1t, c2t) + _mdd(c1s, c2s, c1t, c2t, 3.0)
    assert model.evaluate(**batch)["extra"] == pytest.approx(expected, rel=1e-10)
    model = spec_lang.loads(SPEC.replace("LOSS", WEIGHTED)).compile(MODE)
    ds, dt = model.predict("domain_probabilities", xs), model.predict("domain_probabilities", xt)
    c1s, c1t = model.predict("first", xs), model.predict("first", xt)
    expected = _weighted_bce(ds, 0.0, c1s) + _weighted_bce(dt, 1.0, c1t)
    assert model.evaluate(**batch)["extra"] == pytest.approx(expected, rel=1e-10)


def test_no_gradient_flows_into_the_weights_or_the_predicted_classes() -> None:
    """With the classifier c1 read only for CDAN+E's weights and MDD's labels, training leaves it as it was."""
    text = SPEC.replace("loss label_loss = crossentropy(c1(fs), ys)\n", "").replace(
        "LOSS", "bce_weighted_by_entropy(domain(ft), 1, c1(ft)) + mdd(c1(fs), c2(fs), c1(ft), c2(ft))"
    )
    model = spec_lang.loads(text).compile(MODE)
    before = {k: v.copy() for k, v in model.parameters.items()}
    for _ in range(2):
        model.train_step(xs=_batch()["xs"], xt=_batch()["xt"])
    assert all(np.array_equal(before[k], model.parameters[k]) for k in before if k.startswith("c1."))
    assert not np.array_equal(before["domain.0.W"], model.parameters["domain.0.W"])
    assert not np.array_equal(before["c2.0.W"], model.parameters["c2.0.W"])


# (c) gradients -------------------------------------------------------------------------------------------------


def test_the_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(4)
    labels = np.array([0, 2, 1, 2])
    check_gradient(lambda a, b: disparity.mcd_discrepancy(a, b, pt), [rng.random((4, 3)), rng.random((4, 3))], rng)
    check_gradient(lambda z: disparity.mdd_disagreement_from_logits(z, labels, pt), [rng.normal(size=(4, 3))], rng)
    check_gradient(lambda q: disparity.mdd_disagreement(q, labels, pt), [rng.uniform(0.1, 0.5, (4, 3))], rng)
    check_gradient(lambda p: disparity.weights_by_entropy(p, pt), [rng.uniform(0.1, 1.0, (4, 3))], rng)
    check_gradient(
        lambda z, w: disparity.weighted_domain_bce_from_logits(z, 1.0, w, pt),
        [rng.normal(size=(4, 1)), rng.random(4)],
        rng,
    )


def test_the_predicted_classes_pass_no_gradient() -> None:
    p, q = pt.matrix("p"), pt.matrix("q")
    loss = disparity.mdd_disagreement(q, disparity.mdd_predicted_class(p, pt), pt)
    gradient = pytensor.function([p, q], pytensor.grad(loss, p), mode=MODE, on_unused_input="ignore")
    assert not gradient(np.eye(3)[[0, 1]], np.full((2, 3), 1 / 3)).any()


# (d) misuse ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "code", "message"),
    [
        ("classifier_discrepancy(c1(ft), domain(ft))", "E401", "expects probabilities from a softmax layer"),
        ("classifier_discrepancy(c1(ft), wide(ft))", "E301", "compares classifiers of the same classes"),
        ("mdd(c1(fs), c2(fs), c1(ft), wide(ft))", "E301", "compares classifiers of the same classes"),
        ("mdd(c1(fs), c2(fs), c1(ft), c2(ft), margin = 0)", "E601", "the margin γ of mdd is a number > 0"),
        ("mdd(c1(fs), c2(fs), c1(ft))", "E207", ""),
        ("bce_weighted_by_entropy(c1(fs), 0, c1(fs))", "E401", "from a sigmoid layer"),
        ("bce_weighted_by_entropy(domain(fs), 2, c1(fs))", "E601", "is a constant 0 or 1"),
        ("bce_weighted_by_entropy(domain(fs), ys, c1(fs))", "E601", "is a constant 0 or 1"),
        ("bce_weighted_by_entropy(domain(fs), 0, domain(fs))", "E401", "from a softmax layer"),
    ],
)
def test_misuse_is_a_located_error(loss: str, code: str, message: str) -> None:
    text = SPEC.replace("LOSS", loss).replace("stack domain", "stack wide { dense 4 softmax }\nstack domain")
    with pytest.raises(spec_lang.SpecError) as raised:
        spec_lang.loads(text)
    diagnostic = raised.value.diagnostics[0]
    assert diagnostic.code == code and message in diagnostic.message and diagnostic.span is not None


# (e) roles, Numba, the emitted modules -------------------------------------------------------------------------


def test_training_reads_both_domains_from_the_weighted_terms_of_cdan_e() -> None:
    conditioned = WEIGHTED.replace("reverse(fs,", "reverse(outer(fs, c1(fs)),").replace(
        "reverse(ft,", "reverse(outer(ft, c1(ft)),"
    )
    text = SPEC.replace("dense 1 sigmoid", "dense 5 relu; dense 1 sigmoid").replace("LOSS", conditioned)
    model = spec_lang.loads(text.replace("head domain_probabilities = domain(fs)\n", "")).compile(MODE)
    assert model.train_step(**_batch())["extra"] > 0
    roles = infer_roles(model)
    assert [(t.input, t.target, t.kind) for t in roles.domain_terms] == [("xs", 0.0, "bce"), ("xt", 1.0, "bce")]
    assert roles.source_inputs == ("xs", "ys") and roles.target_inputs == ("xt",)


def test_the_formulas_keep_float32() -> None:
    z = pt.matrix("z", dtype="float32")
    labels, weights = disparity.mdd_predicted_class(z, pt), disparity.weights_by_entropy(z, pt)
    one = pt.constant(1.0, dtype="float32")
    for value in (
        disparity.mcd_discrepancy(z, z, pt),
        disparity.mdd_disagreement(z, labels, pt),
        disparity.mdd_disagreement_from_logits(z, labels, pt),
        weights,
        disparity.weighted_domain_bce(z, one, weights, pt),
        disparity.weighted_domain_bce_from_logits(z, one, weights, pt),
    ):
        assert value.dtype == "float32"


def test_the_emitted_module_computes_the_losses_like_the_compiled_model(tmp_path) -> None:
    spec = spec_lang.loads(SPEC.replace("LOSS", f"{DISCREPANCY} + {MDD} + {WEIGHTED}"))
    module = emit_python(spec.program, "m.dann")
    for name in ("mcd_discrepancy(", "mdd_disagreement_from_logits(", "weighted_domain_bce_from_logits("):
        assert name in module
    target = tmp_path / "m.py"
    target.write_text(module)
    generated = import_module(target)
    train = generated.compile_model(mode=MODE)[0]
    train_side_by_side(spec.compile(MODE), generated, train, 3, np.random.default_rng(0), rel=1e-10)
    theano = emit_theano(spec.program, "m.dann")  # the formulas are written for any array module
    assert "def mdd_is_label(rows, labels, xp):" in theano and "xp=tt" in theano

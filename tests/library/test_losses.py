"""Numerically stable losses, multi-domain heads, entropy minimisation and CDAN conditioning (`outer`).

The compiler lowers a loss of softmax or sigmoid predictions to its form on the logits; these tests check that
the stable forms equal the naive ones where both are finite and stay finite (with finite gradients) where the
naive ones overflow, and that the multi-target and CDAN examples train.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from gradients import check_gradient

import spec_lang
from spec_lang import program as P
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.reports.summary import listing, summary

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODE = "FAST_COMPILE"
LABELS = np.array([0, 2, 1], dtype="int32")

# Each loss as (naive form of the probabilities, stable form of the logits), both functions of the logits.
LOSSES = {
    "crossentropy": (lambda z: ops.crossentropy(ops.softmax(z), pt.constant(LABELS)),
                     lambda z: ops.crossentropy_from_logits(z, pt.constant(LABELS))),
    "crossentropy, one class": (lambda z: ops.crossentropy(ops.softmax(z), pt.constant(2, dtype="int32")),
                                lambda z: ops.crossentropy_from_logits(z, pt.constant(2, dtype="int32"))),
    "bce, constant target": (lambda z: ops.binary_crossentropy(ops.sigmoid(z), 1.0),
                             lambda z: ops.binary_crossentropy_from_logits(z, 1.0)),
    "bce, tensor target": (lambda z: ops.binary_crossentropy(ops.sigmoid(z), pt.constant(np.eye(3))),
                           lambda z: ops.binary_crossentropy_from_logits(z, pt.constant(np.eye(3)))),
    "entropy": (lambda z: ops.entropy(ops.softmax(z)), ops.entropy_from_logits),
}


def _loss_and_gradient(loss, dtype: str):
    z = pt.matrix("z", dtype=dtype)
    cost = loss(z)
    return pytensor.function([z], [cost, pytensor.grad(cost, z)], mode=MODE)


@pytest.mark.parametrize("name", LOSSES)
def test_the_stable_form_equals_the_naive_form(name: str) -> None:
    naive, stable = (_loss_and_gradient(loss, "float64") for loss in LOSSES[name])
    logits = np.random.default_rng(0).normal(scale=3.0, size=(3, 3))
    for a, b in zip(naive(logits), stable(logits), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", LOSSES)
def test_the_stable_form_stays_finite_where_the_naive_form_does_not(name: str, dtype: str) -> None:
    naive, stable = (_loss_and_gradient(loss, dtype) for loss in LOSSES[name])
    logits = np.array([[1000, -1000, 0], [-1000, 1000, 0], [0, -1000, 1000]], dtype=dtype)
    assert not all(np.isfinite(v).all() for v in naive(logits))
    loss, gradient = stable(logits)
    assert np.isfinite(loss) and np.isfinite(gradient).all()


@pytest.mark.parametrize("name", LOSSES)
def test_stable_loss_gradients_match_finite_differences(name: str) -> None:
    rng = np.random.default_rng(1)
    check_gradient(LOSSES[name][1], [rng.normal(size=(3, 3))], rng)


def test_naive_entropy_and_one_class_crossentropy_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(2)
    for loss in (LOSSES["entropy"][0], LOSSES["crossentropy, one class"][0]):
        check_gradient(loss, [rng.normal(size=(3, 3))], rng)


def test_outer_is_the_flattened_per_row_outer_product_and_passes_no_gradient_to_the_predictions() -> None:
    rng = np.random.default_rng(3)
    f, p = rng.normal(size=(5, 4)), rng.normal(size=(5, 3))
    features, predictions = pt.dmatrix("f"), pt.dmatrix("p")
    product = ops.outer(features, predictions)
    weights = pt.constant(rng.normal(size=(5, 12)))
    cost = (weights * product).sum()
    compute = pytensor.function([features, predictions], [product, *pytensor.grad(cost, [features, predictions])],
                                mode=MODE)
    value, to_features, to_predictions = compute(f, p)
    np.testing.assert_allclose(value, np.einsum("bi,bj->bij", f, p).reshape(5, 12))
    np.testing.assert_allclose(to_features, np.einsum("bij,bj->bi", weights.data.reshape(5, 4, 3), p))
    assert not to_predictions.any()
    constant_p = pt.constant(p)
    check_gradient(lambda x: ops.outer(x, constant_p), [f], rng)


# The compiler ---------------------------------------------------------------------------------------


def _random_batch(program: P.Program, rng: np.random.Generator, size: int = 16) -> dict[str, np.ndarray]:
    return {i.name: rng.integers(0, i.bound, size) if i.type.dtype == "int"
            else rng.standard_normal((size, *i.type.shape[1:])) for i in program.inputs}


def test_the_compiler_uses_the_stable_forms_so_huge_logits_give_finite_losses_and_steps() -> None:
    spec = spec_lang.load(EXAMPLES / "cdan.dann")
    module = emit_python(spec.program, "cdan.dann")
    for loss in ("crossentropy_from_logits", "binary_crossentropy_from_logits", "entropy_from_logits"):
        assert f" = {loss}(" in module
    model = spec.compile(MODE)
    model.set_parameters({"label.0.W": 1e4 * model.parameters["label.0.W"],
                          "domain.1.W": 1e4 * model.parameters["domain.1.W"]})
    batch = _random_batch(spec.program, np.random.default_rng(0))
    losses = model.train_step(**batch)
    assert all(np.isfinite(v) for v in losses.values()) and losses["label_loss"] > 100  # the logits really are huge
    assert all(np.isfinite(v).all() for v in model.parameters.values())
    probabilities = model.predict("label_probabilities", batch["xs"])  # heads still give probabilities
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_without_logits_at_hand_the_loss_is_computed_from_the_probabilities() -> None:
    text = ("model m()\ninput x : float[batch, 2]\nstack f { dense 3 tanh }\nstack d { dense 3 softmax%s }\n"
            "loss a = crossentropy(d(f(x)), 1) + entropy(d(f(x)))\noptimize sgd(lr = 0.1)\n")
    stable, fallback = (spec_lang.loads(text % tail) for tail in ("", "; reverse(lambda = 1)"))
    assert " = entropy_from_logits(" in emit_python(stable.program, "m")
    assert " = entropy(" in emit_python(fallback.program, "m")  # the reverse layer follows the softmax
    x = np.random.default_rng(0).normal(size=(5, 2))
    assert stable.compile(MODE).evaluate(x=x)["a"] == pytest.approx(fallback.compile(MODE).evaluate(x=x)["a"], rel=1e-6)


@pytest.mark.parametrize("example", ["multi_target_dann.dann", "cdan.dann"])
def test_the_example_trains(example: str) -> None:
    spec = spec_lang.load(EXAMPLES / example)
    model = spec.compile(MODE)
    batch = _random_batch(spec.program, np.random.default_rng(0))
    before = model.evaluate(**batch)
    for _ in range(30):
        losses = model.train_step(**batch)
        assert all(np.isfinite(v) for v in losses.values())
    assert model.evaluate(**batch)["objective"] < before["objective"]


def test_a_constant_class_label_is_the_class_of_every_row() -> None:
    spec = spec_lang.loads("model m()\ninput x : float[batch, 2]\nstack domain { dense 3 softmax }\n"
                           "head p = domain(x)\nloss d = crossentropy(p, 2)\noptimize sgd(lr = 0.1)\n")
    assert spec.program.losses["d"].arg("labels") == 2
    model = spec.compile(MODE)
    x = np.random.default_rng(0).normal(size=(7, 2))
    expected = -np.log(model.predict("p", x)[:, 2]).mean()
    assert model.evaluate(x=x)["d"] == pytest.approx(expected, rel=1e-5)


def test_multi_target_reversal_points_each_have_their_own_lambda() -> None:
    program = spec_lang.load(EXAMPLES / "multi_target_dann.dann").program
    points = P.reversal_points(program)
    assert [p.lam for p in points] == [P.Hyper("lambda_source"), P.Hyper("lambda_t1"), P.Hyper("lambda_t2")]
    assert all(p.losses == ("domain_loss",) and p.stacks == ("features",) for p in points)


def test_outer_has_two_parents_but_sends_gradients_to_its_features_only() -> None:
    program = spec_lang.load(EXAMPLES / "cdan.dann").program
    domain_loss = P.loss_functions(program.losses["domain_loss"])[0]
    reversed_ = domain_loss.arg("predictions").arg
    conditioned = reversed_.arg
    assert isinstance(conditioned, P.Outer) and conditioned.type == P.TensorType("float", (None, 32))
    assert P.parents(conditioned) == (program.values["fs"], program.heads["label_probabilities"])
    assert P.parents(conditioned, gradient=True) == (program.values["fs"],)
    reached = {a.stack for a in P.ancestors(reversed_, gradient=True) if isinstance(a, P.Applied)}
    assert reached == {"features"}
    assert {a.stack for a in P.ancestors(reversed_) if isinstance(a, P.Applied)} == {"features", "label"}
    assert [i.name for i in P.inputs_of(conditioned)] == ["xs"]
    assert [p.stacks for p in P.reversal_points(program)] == [("features",), ("features",)]


def test_reversed_domain_gradients_do_not_reach_the_label_stack_through_outer() -> None:
    spec = spec_lang.loads("model m()\ninput xs : float[batch, 2]\nstack features { dense 4 tanh }\n"
                           "stack label { dense 3 softmax }\nstack domain { dense 1 sigmoid }\n"
                           "let fs = features(xs)\n"
                           "loss d = bce(domain(reverse(outer(fs, label(fs)), lambda = 1)), 0)\n"
                           "optimize sgd(lr = 0.1)\n")
    model = spec.compile(MODE)
    before = model.parameters
    model.train_step(xs=np.random.default_rng(0).normal(size=(6, 2)))
    after = model.parameters
    assert np.array_equal(before["label.0.W"], after["label.0.W"])
    assert not np.array_equal(before["features.0.W"], after["features.0.W"])


def test_reports_describe_outer_entropy_and_constant_labels() -> None:
    cdan = spec_lang.load(EXAMPLES / "cdan.dann").program
    text = summary(cdan, "cdan.dann", None, MODE)
    assert "reverse(outer(fs, label_probabilities)) (line 24): λ = hp_lambda (1)" in text
    assert "target_entropy  = entropy_weight (0.1) * entropy(target_predictions)" in text
    assert "loss target_entropy = entropy_weight (0.1) * entropy(target_predictions)" in listing(cdan)
    multi = listing(spec_lang.load(EXAMPLES / "multi_target_dann.dann").program)
    assert "crossentropy(domain(reverse(ft2, λ = lambda_t2 (0.8))), 2)" in multi

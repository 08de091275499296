"""Validators in `fit` and `metrics`: held-out source rows, per-epoch scores against NumPy references, the best
checkpoint by the selector, reverse validation leaving the run untouched, and the errors (E809, E810, E802)."""

from __future__ import annotations

import io

import numpy as np
import pytest

import spec_lang
from spec_lang.data import two_moons
from spec_lang.diagnostics import SpecError
from spec_lang.library.validators import accuracy, information_maximisation, mean_entropy, soft_neighbourhood_density
from spec_lang.runtime.checkpoint import read_checkpoint
from spec_lang.training.dataset import Part, Prepared
from spec_lang.training.roles import Group
from spec_lang.training.validation import hold_out

SPEC = """\
model small(lr = 0.02)
seed 5
precision float64
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 2
stack features { dense 8 relu; dropout(0.1) }
stack label { dense 2 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
head label_probabilities = label(fs)
loss label_loss = crossentropy(label_probabilities, ys)
loss domain_loss = bce(domain(reverse(fs, lambda = dann_lambda())), 0)
                 + bce(domain(reverse(features(xt), lambda = dann_lambda())), 1)
optimize adam(lr = lr) minimize label_loss + domain_loss
"""


@pytest.fixture(scope="module")
def model():
    compiled = spec_lang.loads(SPEC, "small.dann").compile("FAST_COMPILE")
    compiled.initial = compiled.state_dict()
    return compiled


@pytest.fixture
def fresh(model):
    model.load_state_dict(*model.initial)
    return model


@pytest.fixture(scope="module")
def moons():
    data = two_moons(60)
    return {"xs": data["xs"][:40], "ys": data["ys"][:40], "xt": data["xt"], "yt": data["yt"]}, {
        "xs": data["xs"][40:],
        "ys": data["ys"][40:],
    }


def test_scores_per_epoch_match_numpy_references(fresh, moons, tmp_path):
    train, held = moons
    names = ["snd", "source_accuracy", "entropy", "info_max", "iwv", "dev"]
    progress = io.StringIO()
    history = fresh.fit(train, epochs=2, batch_size=20, validation=held, validators=names, verbose=progress)
    assert "val_snd" in progress.getvalue() and "oracle_target_acc" in progress.getvalue()  # the epoch lines
    assert [r["step"] for r in history.records] == [2, 4]  # 40 training rows: the held-out rows are not trained on
    for record in history.records:
        assert {f"val_{n}" for n in names} <= set(record) and "target_accuracy" in record
    final = history.final
    p_held = fresh.predict("label_probabilities", held["xs"])
    p_target = fresh.predict("label_probabilities", train["xt"])
    assert final["val_source_accuracy"] == accuracy(p_held, held["ys"])
    assert final["val_entropy"] == pytest.approx(mean_entropy(p_target), rel=1e-12)
    assert final["val_info_max"] == pytest.approx(information_maximisation(p_target), rel=1e-12)
    assert final["val_snd"] == pytest.approx(soft_neighbourhood_density(p_target), rel=1e-12)
    assert final["val_dev"] != final["val_iwv"] and final["val_iwv"] > 0
    assert history.best["validator"] == "snd"
    assert history.best["score"] == max(r["val_snd"] for r in history.records)


def test_a_fraction_is_held_out_by_the_seed():
    part = Part("source", Group(("xs", "ys"), "ys", "xs"), {"xs": np.arange(20.0)[:, None], "ys": np.arange(20)}, "a")
    train, held = hold_out(Prepared([part]), 0.25, 3)
    again = hold_out(Prepared([part]), 0.25, 3)[1]
    other = hold_out(Prepared([part]), 0.25, 4)[1]
    assert train.parts[0].rows == 15 and held[0].rows == 5
    assert np.array_equal(held[0].arrays["ys"], again[0].arrays["ys"])
    assert not np.array_equal(held[0].arrays["ys"], other[0].arrays["ys"])
    assert sorted([*train.parts[0].arrays["ys"], *held[0].arrays["ys"]]) == list(range(20))
    assert np.array_equal(held[0].arrays["xs"][:, 0], held[0].arrays["ys"])  # rows stay whole


def test_best_checkpoint_holds_the_best_epochs_model(fresh, moons, tmp_path):
    train, _ = moons
    checkpoint = tmp_path / "checkpoint.npz"
    history = fresh.fit(
        train, epochs=3, batch_size=10, validation=0.25, validators=["entropy"], checkpoint=checkpoint, seed=1
    )
    scores = [r["val_entropy"] for r in history.records]
    best = history.best
    assert best["epoch"] == 1 + int(np.argmin(scores)) and best["checkpoint"] == str(tmp_path / "best.npz")
    saved = read_checkpoint(tmp_path / "best.npz", fresh.program)
    assert saved.meta["step"] == best["step"]
    saved.restore(fresh)
    assert fresh.metrics(train, validators=["entropy"])["val_entropy"] == pytest.approx(best["score"], rel=1e-12)
    with pytest.raises(SpecError, match="E002"):  # a new run over the best checkpoint is refused too
        fresh.fit(train, epochs=1, validation=0.25, checkpoint=tmp_path / "other.npz", log=tmp_path / "best.npz")


def test_reverse_validation_leaves_the_run_as_it_was(fresh, model, moons):
    train, held = moons
    plain = fresh.fit(train, epochs=2, batch_size=20, validation=held, seed=2)
    parameters = fresh.parameters
    model.load_state_dict(*model.initial)
    checked = model.fit(train, epochs=2, batch_size=20, validation=held, validators=["reverse_validation"], seed=2)
    assert all(np.array_equal(parameters[n], v) for n, v in model.parameters.items())  # dropout state put back
    assert plain.final["objective"] == checked.final["objective"]
    scores = [r["val_reverse_validation"] for r in checked.records]
    assert all(0 <= s <= 1 for s in scores) and len(set(scores)) >= 1
    assert "val_source_accuracy" in plain.final  # validation data alone selects by source accuracy


@pytest.mark.parametrize(
    ("options", "code", "text"),
    [
        ({"validators": ["sdn"]}, "E809", "did you mean 'snd'"),
        ({"validators": ["iwv"]}, "E810", "--val FILE or --val-fraction"),
        ({"validators": ["reverse_validation"]}, "E810", "--val FILE or --val-fraction"),
        ({"validation": 1.5}, "E802", "between 0 and 1"),
    ],
)
def test_errors(fresh, moons, options, code, text):
    with pytest.raises(SpecError) as error:
        fresh.fit(moons[0], epochs=1, **options)
    assert error.value.diagnostics[0].code == code and text in str(error.value)


def test_metrics_computes_validators_but_not_reverse_validation(fresh, moons):
    train, held = moons
    values = fresh.metrics(train, validators=["snd", "source_accuracy"], validation=held)
    assert values["val_source_accuracy"] == accuracy(fresh.predict("label_probabilities", held["xs"]), held["ys"])
    on_data = fresh.metrics(train, validators=["source_accuracy"])  # the evaluated source rows, held out by nature
    assert on_data["val_source_accuracy"] == on_data["source_accuracy"]
    with pytest.raises(SpecError, match="specc train"):
        fresh.metrics(train, validators=["reverse_validation"])
    no_labels = {k: v for k, v in train.items() if k != "yt"}
    with pytest.raises(SpecError, match="it needs target labels"):
        fresh.metrics(no_labels, validators=["target_accuracy"])

"""`CompiledModel.fit` and `metrics`: roles inferred from the program, a DANN learning the two moons, records and
logs, reproducible seeds, divergence, interruption, and resuming bit for bit (dropout and batchnorm included)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import spec_lang
from spec_lang import program as P
from spec_lang.data import two_moons
from spec_lang.runtime.checkpoint import read_checkpoint
from spec_lang.training import Interrupted, infer_roles

ROOT = Path(__file__).resolve().parents[2]

# A DANN for the two moons with everything a resume must restore: dropout generators, batchnorm running
# statistics, Adam's moments and step, and schedules of the training progress.
MOONS = """\
model moons(lr = 0.01)
seed 3
precision float64
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 2
stack features { dense 32 relu; batchnorm(); dropout(0.1); dense 16 tanh }
stack label { dense 16 relu; dropout(0.2); dense 2 softmax }
stack domain { dense 16 relu; dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
head label_probabilities = label(fs)
head domain_probabilities = domain(fs)
loss label_loss = crossentropy(label_probabilities, ys)
loss domain_loss = bce(domain(reverse(fs, lambda = dann_lambda())), 0)
                 + bce(domain(reverse(ft, lambda = dann_lambda())), 1)
optimize adam(lr = annealed(lr)) minimize label_loss + domain_loss
"""

RECORD_KEYS = ["epoch", "step", "progress", "objective", "label_loss", "domain_loss", "lr", "lambda", "learning_rate",
               "source_accuracy", "target_accuracy", "domain_accuracy", "proxy_a_distance"]


@pytest.fixture(scope="module")
def model():
    """One compiled model for the module; `fresh` puts its initial state back before each test. FAST_COMPILE: Numba's
    cold first compile of this training graph (dropout, batchnorm, Adam) takes minutes on a fresh machine."""
    compiled = spec_lang.loads(MOONS, "moons.dann").compile("FAST_COMPILE")
    compiled.initial = compiled.state_dict()
    return compiled


@pytest.fixture
def fresh(model):
    model.load_state_dict(*model.initial)
    model.set_hyperparameters(lr=0.01)
    return model


@pytest.fixture(scope="module")
def moons():
    return two_moons()


def test_roles_are_inferred_from_the_program(model) -> None:
    roles = infer_roles(model)
    assert (roles.label_input, roles.label_head, roles.classifier_input) == ("ys", "label_probabilities", "xs")
    assert (roles.source_inputs, roles.target_inputs, roles.target_input) == (("xs", "ys"), ("xt",), "xt")
    assert [(t.input, t.target) for t in roles.domain_terms] == [("xs", 0.0), ("xt", 1.0)]
    assert roles.domain_head == "domain_probabilities"


def _two_labelled_classifiers(heads: str) -> SimpleNamespace:
    """The moons DANN with a second classifier trained on labels of its own, and `heads` added."""
    text = MOONS.replace("input ys : int[batch] < 2", "input ys : int[batch] < 2\ninput zs : int[batch] < 2")
    other = "stack other_label { dense 2 softmax }\nloss other = crossentropy(other_label(ft), zs)\n"
    text = text.replace("optimize", other + heads + "optimize")
    text = text.replace("minimize label_loss", "minimize other + label_loss")
    program = spec_lang.loads(text, "two.dann").program
    return SimpleNamespace(program=program, train_inputs=["xs", "xt", "ys", "zs"])  # all infer_roles reads


def test_ambiguous_label_classifier_is_an_error_naming_the_choices() -> None:
    model = _two_labelled_classifiers("head other_probabilities = other_label(ft)\n")  # a head for each
    with pytest.raises(spec_lang.SpecError) as error:
        infer_roles(model)
    assert error.value.diagnostics[0].code == "E802"
    assert "'ys' with label(features(xs))" in str(error.value)
    assert "'zs' with other_label(features(xt))" in str(error.value)
    assert infer_roles(model, label_head="label_probabilities").label_input == "ys"
    assert infer_roles(model, label_head="other_probabilities").label_input == "zs"


def test_of_two_labelled_classifiers_the_one_with_a_head_is_the_label_classifier() -> None:
    roles = infer_roles(_two_labelled_classifiers(""))
    assert (roles.label_head, roles.label_input, roles.classifier_input) == ("label_probabilities", "ys", "xs")


@pytest.mark.parametrize(
    ("method", "head"),
    [
        ("adda", "label(target_encoder(xs))"),  # the label loss reads label(source_encoder(xs)): the same classifier
        ("mcd", "c1(features(xs))"),  # c1 and c2 are both trained on ys; the head is c1's
    ],
)
def test_the_method_library_needs_no_label_head_option(method: str, head: str) -> None:
    program = spec_lang.load(ROOT / "examples" / "methods" / f"{method}.dann").program
    roles = infer_roles(SimpleNamespace(program=program, train_inputs=["xs", "xt", "ys"]))
    assert (roles.label_head, roles.label_input, roles.source_inputs, roles.target_inputs) == (
        "label_probabilities",
        "ys",
        ("xs", "ys"),
        ("xt",),
    )
    assert P.expression(program.heads["label_probabilities"]) == head


def test_the_dann_learns_the_moons_and_records_every_metric(fresh, moons, tmp_path) -> None:
    history = fresh.fit(moons, epochs=8, batch_size=16, seed=1, log=tmp_path / "run.jsonl")
    assert len(history.records) == 8 and [r["epoch"] for r in history.records] == list(range(1, 9))
    first, final = history.records[0], history.final
    assert list(first) == RECORD_KEYS
    assert final["step"] == 80 and final["progress"] == 1.0 and final["status"] == "completed"
    assert final["source_accuracy"] > 0.9
    assert final["label_loss"] < first["label_loss"]
    assert 0 <= final["target_accuracy"] <= 1 and 0 <= final["domain_accuracy"] <= 1
    assert final["proxy_a_distance"] == pytest.approx(2 * (1 - 2 * (1 - final["domain_accuracy"])))
    assert final["lambda"] == pytest.approx(2 / (1 + np.exp(-10)) - 1)  # dann_lambda at p = 1
    assert final["learning_rate"] == pytest.approx(0.01 / 11 ** 0.75)  # annealed(0.01) at p = 1
    lines = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert lines == [*history.records, final]
    # the metrics fit records are model.metrics on the same data, parameters as they are now
    assert fresh.metrics(moons) == pytest.approx({k: v for k, v in final.items()
                                                  if k not in ("epoch", "step", "progress", "final", "status")})


def test_target_labels_are_for_evaluation_only(fresh, moons) -> None:
    without = {k: v for k, v in moons.items() if k != "yt"}
    trained_with = fresh.fit(moons, steps=12, batch_size=32, seed=4).final
    parameters = fresh.parameters
    fresh.load_state_dict(*fresh.initial)
    trained_without = fresh.fit(without, steps=12, batch_size=32, seed=4).final
    assert "target_accuracy" in trained_with and "target_accuracy" not in trained_without
    assert all(np.array_equal(parameters[n], v) for n, v in fresh.parameters.items())
    # a target file of its own, labels under another name
    renamed = {"xt": moons["xt"], "labels": moons["yt"]}
    values = fresh.metrics(moons, renamed, target_labels="labels")
    assert values["target_accuracy"] == trained_with["target_accuracy"]
    with pytest.raises(spec_lang.SpecError, match="has no array 'nope' for the target labels"):
        fresh.metrics(moons, target_labels="nope")


def test_the_same_seed_gives_the_same_run_and_another_seed_another(fresh, moons, tmp_path) -> None:
    runs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        fresh.load_state_dict(*fresh.initial)
        fresh.fit(moons, epochs=2, batch_size=32, seed=seed, log=tmp_path / f"{name}.jsonl")
        runs.append(((tmp_path / f"{name}.jsonl").read_bytes(), fresh.parameters))
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(runs[0][1][n], runs[1][1][n]) for n in runs[0][1])
    assert runs[0][0] != runs[2][0]


def _uninterrupted(model, moons, tmp_path):
    model.load_state_dict(*model.initial)
    model.fit(moons, epochs=4, batch_size=32, seed=5, log=tmp_path / "whole.jsonl", checkpoint=tmp_path / "whole.npz")
    return model.parameters, model.optimizer_state, model.random_state


def _same(model, reference) -> None:
    parameters, optimizer, generators = reference
    assert parameters.keys() == model.parameters.keys()
    for name, value in model.parameters.items():
        assert np.array_equal(value, parameters[name]), name
    for name, value in model.optimizer_state.items():
        assert np.array_equal(value, optimizer[name]), name
    assert model.random_state == generators


def test_a_run_stopped_and_resumed_ends_bit_for_bit_like_an_uninterrupted_one(fresh, moons, tmp_path) -> None:
    reference = _uninterrupted(fresh, moons, tmp_path)
    assert fresh.random_state  # the spec has dropout: its generators are part of the state

    # a crash (not an interrupt) at step 12: the work after the checkpoint of step 7 is lost
    def crash(info):
        if info["step"] == 12:
            raise RuntimeError("power cut")

    fresh.load_state_dict(*fresh.initial)
    options = {"epochs": 4, "batch_size": 32, "seed": 5, "checkpoint": tmp_path / "run.npz",
               "log": tmp_path / "run.jsonl"}
    with pytest.raises(RuntimeError, match="power cut"):
        fresh.fit(moons, checkpoint_every=7, callback=crash, **options)
    assert read_checkpoint(tmp_path / "run.npz").meta["step"] == 7
    history = fresh.fit(moons, checkpoint_every=7, resume=True, **options)  # the model is at step 12: resume rewinds
    _same(fresh, reference)
    assert (tmp_path / "run.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()
    assert history.final["step"] == 20 and len(history.records) == 4

    # Ctrl-C (KeyboardInterrupt from the callback): a checkpoint of that very step, then resume
    def stop(info):
        if info["step"] == 9:
            raise KeyboardInterrupt

    fresh.load_state_dict(*fresh.initial)
    with pytest.raises(Interrupted) as interrupted:
        fresh.fit(moons, callback=stop, overwrite=True, **options)
    assert interrupted.value.step == 9 and interrupted.value.history.final["status"] == "interrupted"
    assert read_checkpoint(tmp_path / "run.npz").meta["step"] == 9
    fresh.load_state_dict(*fresh.initial)  # as a new process would start
    fresh.fit(moons, resume=True, **options)
    _same(fresh, reference)
    assert (tmp_path / "run.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()


def test_resuming_with_other_settings_or_data_is_refused(fresh, moons, tmp_path) -> None:
    path = tmp_path / "c.npz"
    fresh.fit(moons, steps=3, batch_size=32, seed=5, checkpoint=path)
    with pytest.raises(spec_lang.SpecError) as error:
        fresh.fit(moons, steps=3, batch_size=16, seed=5, checkpoint=path, resume=True)
    assert error.value.diagnostics[0].code == "E806" and "batch_size: 32 in the checkpoint, 16 now" in str(error.value)
    shifted = {**moons, "xs": moons["xs"] + 1}
    with pytest.raises(spec_lang.SpecError, match="E806|the run differs .*data"):
        fresh.fit(shifted, steps=3, batch_size=32, seed=5, checkpoint=path, resume=True)
    with pytest.raises(spec_lang.SpecError, match="already exists"):
        fresh.fit(moons, steps=3, batch_size=32, seed=5, checkpoint=path)  # a new run never overwrites silently
    with pytest.raises(spec_lang.SpecError, match="does not exist"):
        fresh.fit(moons, steps=3, checkpoint=tmp_path / "none.npz", resume=True)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_non_finite_loss_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint(
        fresh, moons, tmp_path) -> None:
    def explode(info):
        if info["step"] == 6:
            fresh.set_hyperparameters(lr=1e200)

    path, log = tmp_path / "c.npz", tmp_path / "run.jsonl"
    with pytest.raises(spec_lang.SpecError) as error:
        fresh.fit(moons, epochs=5, batch_size=32, seed=0, checkpoint=path, checkpoint_every=3, log=log,
                  callback=explode)
    diagnostic = error.value.diagnostics[0]
    assert diagnostic.code == "E805"
    assert "training diverged at step 8 (epoch 2): loss term 'label_loss' is nan" in diagnostic.message
    assert "last good checkpoint" in diagnostic.hint
    saved = read_checkpoint(path)
    assert saved.meta["step"] == 6  # the checkpoint of step 6, not the broken state
    assert all(np.isfinite(v).all() for v in saved.arrays.values() if v.dtype.kind == "f")
    assert json.loads(log.read_text().splitlines()[-1])["status"] == "diverged"


@pytest.mark.parametrize("arrays, message", [
    ({"xs": np.zeros((4, 2)), "ys": np.zeros(4)}, "the source arrays has no array 'xt' for input xt"),
    ({"xs": np.zeros((4, 3)), "ys": np.zeros(4), "xt": np.zeros((4, 2))},
     "input 'xs' expects shape [n, 2], but 'xs' in the source arrays has shape [4, 3]"),
    ({"xs": np.zeros((4, 2)), "ys": np.array([0, 1, 2, 0]), "xt": np.zeros((4, 2))},
     "labels of 'ys' in the source arrays range over [0, 2], outside [0, 2)"),
    ({"xs": np.full((4, 2), np.nan), "ys": np.zeros(4), "xt": np.zeros((4, 2))},
     "input 'xs' in the source arrays holds NaN"),
    ({"xs": np.zeros((4, 2)), "ys": np.zeros(3), "xt": np.zeros((4, 2))},
     "the arrays of the source arrays have different numbers of rows: 'xs' 4, 'ys' 3"),
])
def test_data_errors_are_reported_before_the_first_step(fresh, arrays, message) -> None:
    before = fresh.parameters
    with pytest.raises(spec_lang.SpecError) as error:
        fresh.fit(arrays, steps=2)
    assert error.value.diagnostics[0].code == "E801" and message in str(error.value)
    assert all(np.array_equal(before[n], v) for n, v in fresh.parameters.items())


def test_data_files_are_read_by_name(fresh, moons, tmp_path) -> None:
    np.savez(tmp_path / "source.npz", xs=moons["xs"], ys=moons["ys"])
    header = "xt.0,xt.1,yt\n"
    (tmp_path / "target.csv").write_text(header + "".join(f"{float(a)!r},{float(b)!r},{y}\n" for (a, b), y in
                                                         zip(moons["xt"], moons["yt"], strict=True)))
    from_files = fresh.metrics(tmp_path / "source.npz", tmp_path / "target.csv")
    assert from_files == fresh.metrics(moons)
    with pytest.raises(spec_lang.SpecError, match="no array 'xt' for input xt"):
        fresh.fit(tmp_path / "source.npz", steps=1)


def test_a_named_domain_head_gives_the_domain_losss_own_classifier(fresh, moons) -> None:
    default = fresh.metrics(moons)
    named = fresh.metrics(moons, domain_head="domain_probabilities")  # domain(fs): the same weights, fed xs and xt
    assert named["domain_accuracy"] == default["domain_accuracy"]
    with pytest.raises(spec_lang.SpecError, match="no head 'domain_probs'.*\n.*did you mean 'domain_probabilities'"):
        fresh.metrics(moons, domain_head="domain_probs")

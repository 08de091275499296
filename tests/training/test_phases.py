"""Several optimize statements (phases) and stages: each phase updates only its stacks, `repeat` takes several
steps, stages follow the epochs and copy stacks when entered, and a run stopped in the middle of a multi-phase,
multi-stage training resumes bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_examples import random_batch

import spec_lang
from spec_lang.data import two_moons
from spec_lang.runtime.checkpoint import read_checkpoint
from spec_lang.training.interrupts import Interrupted

METHODS = Path(__file__).resolve().parents[2] / "examples" / "methods"

TWO_PHASES = """model two(lr = 0.1)
input x : float[batch, 2]
input y : int[batch] < 2
stack f { dense 4 tanh }
stack c { dense 2 softmax }
loss l = crossentropy(c(f(x)), y)
optimize first = adam(lr = lr) updates f minimize l
optimize second = adam(lr = lr) updates c repeat 3 minimize 2 * l
"""


def _changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> set[str]:
    return {name.split(".")[0] for name in before if not np.array_equal(before[name], after[name])}


def test_each_phase_updates_only_its_stacks_and_repeats_its_steps() -> None:
    model = spec_lang.loads(TWO_PHASES).compile("FAST_COMPILE")
    batch = random_batch(model.program, np.random.default_rng(0))
    before = model.parameters
    losses = model.train_step(**batch)
    assert set(losses) == {"objective", "l", "first", "second"}
    assert losses["second"] == pytest.approx(2 * losses["l"]) and losses["objective"] == losses["first"]
    assert _changed(before, model.parameters) == {"f", "c"}
    state = model.optimizer_state
    assert state["first/step"] == 1 and state["second/step"] == 3  # `repeat 3`: three Adam steps per batch
    assert {name.split("/")[0] for name in state} == {"first", "second"}


def test_a_phase_leaves_the_stacks_it_does_not_update_alone() -> None:
    spec = spec_lang.load(METHODS / "mcd.dann")
    model = spec.compile("FAST_COMPILE")
    batch = random_batch(spec.program, np.random.default_rng(1))
    for name, phase in [("step_b", ("c1", "c2")), ("step_c", ("features",))]:
        before = model.parameters
        model._train[name](*model._arguments(model.train_inputs, batch, name))
        assert _changed(before, model.parameters) == set(phase), name


def test_stages_follow_the_epochs_and_entering_one_copies_its_stacks() -> None:
    spec = spec_lang.load(METHODS / "adda.dann", pretrain_epochs=2, classes=2)
    program = spec.program
    assert [program.stage_at(epoch) for epoch in range(5)] == [0, 0, 1, 1, 1]
    model = spec.compile("FAST_COMPILE")
    batch = random_batch(program, np.random.default_rng(2))
    before = model.parameters
    model.train_step(**batch)  # the first stage runs only the pre-training
    assert _changed(before, model.parameters) == {"source_encoder", "label"}
    model.set_stage("adaptation")
    copied = model.parameters
    for name, value in copied.items():
        if name.startswith("target_encoder."):
            np.testing.assert_array_equal(value, copied["source_encoder." + name.split(".", 1)[1]])
    model.train_step(**batch)
    assert _changed(copied, model.parameters) == {"domain", "target_encoder"}
    assert model.state_dict()[1]["stage"] == "adaptation"


def test_a_multi_phase_run_stopped_in_its_second_stage_resumes_bit_for_bit(tmp_path: Path) -> None:
    moons = two_moons(n_samples=60)
    model = spec_lang.load(METHODS / "adda.dann", pretrain_epochs=2, classes=2).compile("FAST_COMPILE")
    initial = model.state_dict()
    options = {"epochs": 4, "batch_size": 16, "seed": 3, "label_head": "label_probabilities"}
    whole = model.fit(moons, checkpoint=tmp_path / "whole.npz", **options)
    reference = model.parameters, model.optimizer_state

    def stop(info: dict) -> None:
        if info["step"] == 11:  # in the adaptation stage (4 steps an epoch)
            raise KeyboardInterrupt

    model.load_state_dict(*initial)
    with pytest.raises(Interrupted):
        model.fit(moons, checkpoint=tmp_path / "run.npz", callback=stop, **options)
    assert read_checkpoint(tmp_path / "run.npz").meta["stage"] == "adaptation"
    model.load_state_dict(*initial)  # as a new process would start
    resumed = model.fit(moons, checkpoint=tmp_path / "run.npz", resume=True, **options)
    for ours, theirs in zip((model.parameters, model.optimizer_state), reference, strict=True):
        assert ours.keys() == theirs.keys()
        for name, value in ours.items():
            assert np.array_equal(value, theirs[name]), name
    assert resumed.records == whole.records

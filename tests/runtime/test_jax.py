"""The JAX mode (`spec_lang.runtime.jax_mode`): every example trains, evaluates and predicts in it as in the NUMBA mode
(float64, the same initial parameters, batches and progress: losses, parameters, running statistics and optimiser
state equal to 1e-8 over 10 steps); batch sizes may change between calls; dropout draws from JAX's generator, whose
state round-trips; a missing jax and a model the mode cannot compile are one-line diagnostics.

Dropout draws differ between the modes (different generators), so the examples are compared with their dropout
rates set to 0 (the layer still draws), and dropout itself by its statistics.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from test_examples import random_batch

import spec_lang
from spec_lang.cli.main import main
from spec_lang.lowering.passes import Optimizations
from spec_lang.lowering.pytensor import ops
from spec_lang.runtime import compile_cache
from spec_lang.runtime.checkpoint import read_checkpoint, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.dann"))
STEPS, ROWS = 10, 3

# Batch normalisation, Adam (its step count), weight decay, clipping, a schedule of the learning rate and a dropout
# layer that draws without dropping anything: the state the examples do not exercise.
STATEFUL = """\
model stateful(rate = 0.0)
precision float64
input x : float[batch, 5]
input y : int[batch] < 3
stack net { dense 8 relu; batchnorm(); dropout(rate); dense 3 softmax }
head p = net(x)
loss xent = crossentropy(p, y)
optimize adam(lr = annealed(0.05, alpha = 10, beta = 0.75), weight_decay = 1e-3, clip_norm = 1.0) minimize xent
"""

DROPOUT = """\
model drop()
input x : float[batch, 4000]
input t : float[batch, 4000]
stack net { dropout(0.5) }
loss l = mse(net(x), t)
optimize sgd(lr = 0.1)
"""


def float64(path: Path) -> spec_lang.Spec:
    """An example in float64, its dropout rates 0."""
    text = re.sub(r"dropout\([^)]*\)", "dropout(0)", path.read_text(encoding="utf-8"))
    if "precision float64" not in text:
        text += "\nprecision float64\n"
    return spec_lang.loads(text, str(path))


def assert_same(jax_values: dict, numba_values: dict) -> None:
    assert jax_values.keys() == numba_values.keys()
    for name, value in numba_values.items():
        np.testing.assert_allclose(jax_values[name], value, rtol=1e-8, atol=1e-12, err_msg=name)


def train_side_by_side(spec: spec_lang.Spec, rows: list[int]) -> tuple:
    """The JAX and NUMBA models of a spec after a step on each batch size of `rows` (progress following the steps),
    asserting equal losses at each step; and a batch of another size for evaluating and predicting."""
    jax_model, numba_model = spec.compile("JAX"), spec.compile("NUMBA")
    assert_same(jax_model.parameters, numba_model.parameters)
    rng = np.random.default_rng(0)
    for step, size in enumerate(rows):
        batch = random_batch(spec.program, rng, size)
        batch = {name: batch[name] for name in numba_model.train_inputs}
        for model in (jax_model, numba_model):
            model.set_progress(step / len(rows))
        assert_same(jax_model.train_step(**batch), numba_model.train_step(**batch))
    return jax_model, numba_model, random_batch(spec.program, rng, ROWS + 2)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_trains_evaluates_and_predicts_in_jax_as_in_numba(path: Path) -> None:
    jax_model, numba_model, batch = train_side_by_side(float64(path), [ROWS] * STEPS)
    assert_same(jax_model.parameters, numba_model.parameters)  # running statistics included
    assert_same(jax_model.optimizer_state, numba_model.optimizer_state)
    assert_same(jax_model.evaluate(**batch), numba_model.evaluate(**batch))
    for head in jax_model.program.heads:
        inputs = {name: batch[name] for name in jax_model.head_inputs(head)}
        predicted = jax_model.predict(head, **inputs)
        assert isinstance(predicted, np.ndarray)
        np.testing.assert_allclose(predicted, numba_model.predict(head, **inputs), rtol=1e-8, atol=1e-12)


def test_adam_batch_norm_schedules_and_changing_batch_sizes_match_numba() -> None:
    jax_model, numba_model, batch = train_side_by_side(spec_lang.loads(STATEFUL), [4, 6, 4, 5, 6, 4, 4, 5, 6, 4])
    assert len(jax_model._train["optimize"]._compiled) == 3  # one compiled function per batch size, same state
    assert jax_model.optimizer_state["step"] == 10
    assert_same(jax_model.parameters, numba_model.parameters)
    assert_same(jax_model.optimizer_state, numba_model.optimizer_state)
    assert_same(jax_model.evaluate(**batch), numba_model.evaluate(**batch))


def test_a_float32_model_stays_float32_and_no_jax_function_is_cached() -> None:
    spec = spec_lang.load(ROOT / "examples" / "blocks.dann")
    assert compile_cache.key(spec.program, "JAX", Optimizations()) is None
    assert compile_cache.key(spec.program, "NUMBA", Optimizations()) is not None
    model = spec.compile("JAX")
    batch = random_batch(model.program, np.random.default_rng(0), ROWS)
    for _ in range(2):
        model.train_step(**{name: batch[name] for name in model.train_inputs})
    assert {value.dtype for value in model.parameters.values()} == {np.dtype("float32")}
    assert len(model._train["optimize"]._compiled) == 1


def test_dropout_draws_anew_each_step_and_its_state_round_trips(tmp_path: Path) -> None:
    model = spec_lang.loads(DROPOUT).compile("JAX")
    batch = {"x": np.ones((2, 4000), dtype="float32"), "t": np.zeros((2, 4000), dtype="float32")}
    start = model.random_state
    assert start["generator_0"]["bit_generator"] == "PCG64"  # numpy's, until the JAX mode draws
    first = model.train_step(**batch)["l"]
    assert first == pytest.approx(2, abs=0.1)  # half the values kept, doubled: the mean of their squares is 2
    saved = model.random_state
    assert saved["generator_0"]["bit_generator"] == "jax"
    write_checkpoint(tmp_path / "c.npz", model, {})
    second = model.train_step(**batch)["l"]
    assert second != first
    read_checkpoint(tmp_path / "c.npz", model.program).restore(model)
    assert model.random_state == saved
    assert model.train_step(**batch)["l"] == second  # a resumed run draws the same masks
    model.set_random_state(start)
    assert model.train_step(**batch)["l"] == first
    numba_model = spec_lang.loads(DROPOUT).compile("NUMBA")
    numba_model.set_random_state(saved)  # a JAX key seeds numpy's generator
    assert numba_model.train_step(**batch)["l"] == pytest.approx(2, abs=0.1)
    assert numba_model.random_state["generator_0"]["bit_generator"] == "PCG64"


def test_a_run_resumed_in_jax_mode_ends_bit_for_bit_like_an_uninterrupted_one(tmp_path: Path) -> None:
    spec = spec_lang.loads(STATEFUL, rate=0.5)  # dropout drawing, batch normalisation, Adam
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(40, 5)), "y": rng.integers(0, 3, 40)}
    options = {"steps": 8, "batch_size": 8, "seed": 1, "verbose": False, "checkpoint_every": 4}
    whole = spec.compile("JAX")
    whole.fit(data, checkpoint=tmp_path / "whole.npz", **options)

    def crash(info):
        if info["step"] == 6:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        spec.compile("JAX").fit(data, checkpoint=tmp_path / "run.npz", callback=crash, **options)
    resumed = spec.compile("JAX")  # a fresh model, as in a new process
    resumed.fit(data, checkpoint=tmp_path / "run.npz", resume=True, **options)
    assert resumed.random_state == whole.random_state
    assert resumed.random_state["generator_0"]["bit_generator"] == "jax"
    for name, value in whole.parameters.items():
        assert np.array_equal(resumed.parameters[name], value), name
    for name, value in whole.optimizer_state.items():
        assert np.array_equal(resumed.optimizer_state[name], value), name


def test_train_eval_and_predict_with_mode_jax_on_the_command_line(tmp_path: Path, capsys) -> None:
    assert main(["data", "moons", "-o", str(tmp_path / "moons.npz")]) == 0
    for mode in ("jax", "numba"):
        command = [
            "train",
            "examples/seed_dann.dann",
            "--source",
            str(tmp_path / "moons.npz"),
            "--steps",
            "5",
            "--batch-size",
            "4",
            "--quiet",
            "--mode",
            mode,
            "--checkpoint",
            str(tmp_path / f"{mode}.npz"),
        ]
        assert main(command) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []  # after `specc data`'s line, --quiet printed nothing
    jax_run, numba_run = (read_checkpoint(tmp_path / f"{mode}.npz") for mode in ("jax", "numba"))
    assert_same(jax_run.arrays, numba_run.arrays)
    spec_and_data = [
        "examples/seed_dann.dann",
        "--checkpoint",
        str(tmp_path / "jax.npz"),
        "--data",
        str(tmp_path / "moons.npz"),
        "--mode",
        "jax",
    ]
    assert main(["eval", *spec_and_data]) == 0
    assert "source_accuracy" in capsys.readouterr().out
    assert main(["predict", *spec_and_data, "--head", "label_probabilities", "-o", str(tmp_path / "p.npz")]) == 0
    with np.load(tmp_path / "p.npz") as predictions:
        assert predictions["label_probabilities"].shape == (150, 8)


def test_a_missing_jax_is_a_diagnostic_from_the_command_line_and_from_compile() -> None:
    script = """\
import sys
sys.modules["jax"] = None  # `import jax` fails as when it is not installed
import spec_lang
from spec_lang.cli.main import main
try:
    spec_lang.load("examples/seed_dann.dann").compile("JAX")
except spec_lang.SpecError as error:
    print(error.diagnostics[0].code)
sys.exit(main(["compile", "examples/seed_dann.dann", "--mode", "jax"]))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == "E005\n"
    assert result.stderr == (
        "specc: error[E005]: the JAX mode needs the package jax, which cannot be imported (import of jax halted; None "
        "in sys.modules)\n"
        '  hint: install it: pip install jax (or "jax[cuda12]" for an NVIDIA GPU); or compile it in another mode: '
        '--mode numba (the default), or spec.compile("NUMBA")\n'
    )


class NoJax(Op):
    """An operation with no JAX implementation: the identity, computed in Python."""

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0].copy()

    def pullback(self, inputs, outputs, gradients):
        return gradients


def test_a_model_the_jax_mode_cannot_compile_is_a_diagnostic(monkeypatch, capsys) -> None:
    monkeypatch.setattr(ops, "tanh", lambda x: NoJax()(pt.tanh(x)))
    expected = (
        "specc: error[E006]: the JAX mode cannot compile this model: PyTensor's JAX backend has no implementation of "
        "NoJax\n"
        '  hint: compile it in another mode: --mode numba (the default), or spec.compile("NUMBA")\n'
    )
    with pytest.raises(spec_lang.SpecError) as caught:
        spec_lang.load(ROOT / "examples" / "seed_dann.dann").compile("JAX")
    assert caught.value.render() + "\n" == expected
    assert main(["compile", "examples/seed_dann.dann", "--mode", "jax"]) == 1
    assert capsys.readouterr().err == expected


def test_an_operation_whose_jax_form_fails_is_a_diagnostic_at_the_first_call(monkeypatch) -> None:
    # nonzero has a JAX implementation that refuses to compile: its output's shape depends on the data
    monkeypatch.setattr(ops, "tanh", lambda x: pt.tanh(x) + pt.cast(pt.nonzero(x)[0].shape[0] < 0, x.dtype))
    model = spec_lang.load(ROOT / "examples" / "seed_dann.dann").compile("JAX")
    batch = random_batch(model.program, np.random.default_rng(0), ROWS)
    with pytest.raises(
        spec_lang.SpecError,
        match=r"error\[E006\]: the JAX mode cannot compile this model: JAX does "
        r"not support nonzero",
    ):
        model.train_step(**{name: batch[name] for name in model.train_inputs})

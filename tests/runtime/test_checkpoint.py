"""Checkpoint files: what they hold, the spec's hash, atomic writes, and damaged or foreign files refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.program.fingerprint import fingerprint as spec_hash
from spec_lang.runtime.checkpoint import CHECKSUM, read_checkpoint, write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SEED_DANN = ROOT / "examples" / "seed_dann.dann"


@pytest.fixture(scope="module")
def model():
    return spec_lang.load(SEED_DANN).compile("FAST_COMPILE")


@pytest.fixture
def saved(model, tmp_path) -> Path:
    path = tmp_path / "c.npz"
    write_checkpoint(path, model, {})  # a model's checkpoint, without a training run
    return path


def test_a_checkpoint_holds_the_whole_training_state(model, saved) -> None:
    model.set_progress(0.25)
    model.set_hyperparameters(hp_lambda=0.125)
    write_checkpoint(saved, model, {})
    back = read_checkpoint(saved, model.program)
    assert back.meta["progress"] == 0.25 and back.meta["spec_hash"] == spec_hash(model.program)
    assert back.meta["hyperparameters"] == {"hp_lambda": 0.125, "hp_mu": 0.01}
    assert {n.partition("/")[2] for n in back.arrays if n.startswith("parameters/")} == set(model.parameters)
    assert not back.holds_run and back.run_arrays == {}
    parameters = model.parameters
    model.set_parameters({n: v + 1 for n, v in parameters.items()})
    model.set_progress(0.0)
    model.set_hyperparameters(hp_lambda=0.5)
    back.restore(model)
    assert all(np.array_equal(parameters[n], v) for n, v in model.parameters.items())
    assert model.progress == 0.25 and model.hyperparameters["hp_lambda"] == 0.125
    model.set_hyperparameters(hp_lambda=0.5)


def test_the_spec_hash_ignores_layout_and_comments_but_not_values() -> None:
    text = SEED_DANN.read_text()
    base = spec_hash(spec_lang.loads(text).program)
    assert spec_hash(spec_lang.loads("# a comment\n" + text.replace("  # g_y", "")).program) == base
    assert spec_hash(spec_lang.loads(text, hp_lambda=0.5).program) == base  # the default, spelt out
    assert spec_hash(spec_lang.loads(text, hp_lambda=0.3).program) != base
    assert spec_hash(spec_lang.loads(text.replace("dense 7 tanh", "dense 9 tanh")).program) != base
    assert spec_hash(spec_lang.loads(text.replace("seed 1", "seed 2")).program) != base


def test_a_checkpoint_of_another_spec_is_refused_naming_what_differs(model, saved) -> None:
    with pytest.raises(spec_lang.SpecError) as error:
        read_checkpoint(saved, spec_lang.load(SEED_DANN, hp_lambda=0.3).program)
    diagnostic = error.value.diagnostics[0]
    assert diagnostic.code == "E804" and "was written for a different spec" in diagnostic.message
    assert "hp_lambda = 0.5 in the checkpoint, 0.3 now" in diagnostic.hint
    other = spec_lang.load(ROOT / "examples" / "dann_reverse_layer.dann").program
    with pytest.raises(spec_lang.SpecError, match="model 'seed_dann', not 'dann_reverse_layer'"):
        read_checkpoint(saved, other)


def test_a_flipped_byte_is_detected(saved) -> None:
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0x10
    saved.write_bytes(bytes(data))
    with pytest.raises(spec_lang.SpecError) as error:
        read_checkpoint(saved)
    assert error.value.diagnostics[0].code == "E803" and "corrupt" in error.value.diagnostics[0].message


def test_a_truncated_file_is_detected(saved) -> None:
    saved.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(spec_lang.SpecError, match="E803.*corrupt or truncated"):
        read_checkpoint(saved)


def test_changed_contents_with_valid_zip_records_fail_the_checksum(saved, tmp_path) -> None:
    with np.load(saved) as archive:
        arrays = {n: archive[n] for n in archive.files}
    name = next(n for n in arrays if n.startswith("parameters/"))
    arrays[name] = arrays[name] + 1e-12  # a well-formed file whose numbers are not the ones checksummed
    np.savez(saved, **arrays)
    with pytest.raises(spec_lang.SpecError, match="its checksum does not match"):
        read_checkpoint(saved)
    arrays.pop(CHECKSUM)
    np.savez(saved, **arrays)
    with pytest.raises(spec_lang.SpecError, match="is not a specc checkpoint"):
        read_checkpoint(saved)


def test_parameters_saved_by_model_save_are_not_a_checkpoint(model, tmp_path) -> None:
    model.save(tmp_path / "p.npz")
    with pytest.raises(spec_lang.SpecError, match="not a specc checkpoint"):
        read_checkpoint(tmp_path / "p.npz")


def test_a_failed_write_leaves_the_previous_checkpoint_whole(model, saved, monkeypatch) -> None:
    before = saved.read_bytes()

    def broken(stream, **arrays):
        stream.write(b"PK half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(spec_lang.SpecError, match="cannot write it: disk full"):  # a diagnostic, not a traceback
        write_checkpoint(saved, model, {})
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary file left behind
    assert read_checkpoint(saved, model.program).meta["format"] == "specc-checkpoint/1"  # still whole and readable
    assert zipfile.is_zipfile(saved)

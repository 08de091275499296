"""Checkpoints that pass the checksum but are not what they claim: anyone can recompute `digest`, so each attack below
is a real training checkpoint, changed, then signed again. Every one must be refused with E803 (never a traceback)
before anything of the model is changed: by `read_checkpoint`, `Checkpoint.restore` and `fit(resume=True)` in Python,
and by `specc eval`, `specc predict` and `specc train --resume`. A member whose `.npy` header declares 2^40 rows must
be refused while loading, before numpy tries to allocate terabytes for it."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import spec_lang
from spec_lang.cli.main import main
from spec_lang.program.fingerprint import digest
from spec_lang.runtime.checkpoint import CHECKSUM, META, read_checkpoint

# Small, and with everything a checkpoint holds: Adam's moments and step count, batch normalisation's running
# statistics, dropout's random generators, a sampler over source and target rows.
SPEC = """\
model attacked(lr = 0.01)
seed 1
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 2
stack features { dense 3 relu; batchnorm(); dropout(0.5) }
stack label { dense 2 softmax }
stack domain { dense 1 sigmoid }
head label_probabilities = label(features(xs))
loss label_loss = crossentropy(label_probabilities, ys)
loss domain_loss = bce(domain(reverse(features(xs), lambda = 1)), 0) + bce(domain(reverse(features(xt), lambda = 1)), 1)
optimize adam(lr = lr) minimize label_loss + domain_loss
"""
OPTIONS = {"steps": 3, "batch_size": 4, "seed": 0}
Arrays = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The spec, its data and a checkpoint of a real run (3 steps, written at the end), in one folder."""
    folder = tmp_path_factory.mktemp("attacks")
    rng = np.random.default_rng(0)
    data = {"xs": rng.normal(size=(10, 2)), "ys": rng.integers(0, 2, 10), "xt": rng.normal(size=(6, 2))}
    np.savez(folder / "data.npz", **data)
    (folder / "attacked.dann").write_text(SPEC, encoding="utf-8")
    model = spec_lang.loads(SPEC).compile("FAST_COMPILE")
    model.fit(str(folder / "data.npz"), checkpoint=folder / "real.npz", **OPTIONS)
    return {"spec": folder / "attacked.dann", "data": folder / "data.npz", "checkpoint": folder / "real.npz"}


@pytest.fixture(scope="module")
def model():
    return spec_lang.loads(SPEC).compile("FAST_COMPILE")


def _contents(path: Path) -> tuple[Arrays, Any]:
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays.pop(CHECKSUM)
    return arrays, json.loads(str(arrays.pop(META)))


def _signed(path: Path, arrays: Arrays, meta: Any) -> Path:
    """A checkpoint of these arrays and header, with a valid checksum."""
    stored = {**arrays, META: np.array(json.dumps(meta))}
    stored[CHECKSUM] = np.array(digest(stored))
    np.savez(path, **stored)
    return path


def _state(model) -> tuple[Arrays, dict[str, Any]]:
    arrays, meta = model.state_dict()
    return {n: v.copy() for n, v in arrays.items()}, json.loads(json.dumps(meta))


def _assert_unchanged(model, before: tuple[Arrays, dict[str, Any]]) -> None:
    arrays, meta = _state(model)
    assert arrays.keys() == before[0].keys()
    assert all(np.array_equal(arrays[n], before[0][n]) and arrays[n].dtype == before[0][n].dtype for n in arrays)
    assert meta == before[1]


# Attacks -----------------------------------------------------------------------------------------------------------
# Each changes (arrays, header) in place or returns a `Header` to replace it; `pattern` is what the message says.


class Header:
    """What an attack returns to replace the whole header."""

    def __init__(self, value: Any):
        self.value = value


def _header(value: Any) -> Callable[[Arrays, dict], Header]:
    return lambda arrays, meta: Header(value)


def _set(key: str, value: Any) -> Callable[[Arrays, dict], None]:
    return lambda arrays, meta: meta.__setitem__(key, value)


def _drop(key: str) -> Callable[[Arrays, dict], None]:
    return lambda arrays, meta: meta.__delitem__(key)


def _array(name: str, value: Any) -> Callable[[Arrays, dict], None]:
    return lambda arrays, meta: arrays.__setitem__(name, np.asarray(value))


def _without(name: str) -> Callable[[Arrays, dict], None]:
    return lambda arrays, meta: arrays.__delitem__(name)


def _generator(arrays: Arrays, meta: dict) -> None:
    meta["random_state"]["generator_0"] = {"bit_generator": "seed"}  # never looked up in numpy.random


def _record(arrays: Arrays, meta: dict) -> None:
    del meta["history"][0]["step"]


def _metrics(arrays: Arrays, meta: dict) -> None:
    meta["history"][0]["objective"] = "low"


def _orders(rows: int) -> Callable[[Arrays, dict], None]:
    """Source and target orders of another number of rows."""

    def attack(arrays: Arrays, meta: dict) -> None:
        arrays["run/source_order"] = arrays["run/target_order"] = np.arange(rows)

    return attack


W = "parameters/features.0.W"  # float32 [2, 3]
M = "optimizer/features.0.W.m"

# refused by every door: the file's structure is wrong whatever model and data read it
STRUCTURE: dict[str, tuple[Callable[[Arrays, dict], Any], str]] = {
    "header a list": (_header([1, 2]), "its header is a list, not an object"),
    "header a number": (_header(3), "its header is a number, not an object"),
    "header null": (_header(None), "its header is null, not an object"),
    "format missing": (_drop("format"), "has checkpoint format null"),
    "step missing": (_drop("step"), "has the training run's .* but lacks 'step'"),
    "epoch missing": (_drop("epoch"), "lacks 'epoch'"),
    "history missing": (_drop("history"), "lacks 'history'"),
    "sampler missing": (_drop("sampler"), "lacks 'sampler'"),
    "hyperparameters missing": (_drop("hyperparameters"), "its header lacks 'hyperparameters'"),
    "random state missing": (_drop("random_state"), "its header lacks 'random_state'"),
    "step a string": (_set("step", "x"), "'step' is \"x\", not a whole number"),
    "step negative": (_set("step", -1), "'step' is -1, not a whole number"),
    "step a float": (_set("step", 2.0), "'step' is 2.0, not a whole number"),
    "step a boolean": (_set("step", True), "'step' is true, not a whole number"),
    "epoch null": (_set("epoch", None), "'epoch' is null"),
    "position a list": (_set("position", [1]), "'position' is \\[1\\]"),
    "model a number": (_set("model", 7), "'model' is 7, not a string"),
    "settings a list": (_set("settings", []), "'settings' is \\[\\], not an object"),
    "run a string": (_set("run", "fast"), "'run' is \"fast\", not an object"),
    "progress above 1": (_set("progress", 2), "'progress' is 2, not a number from 0 to 1"),
    "progress NaN": (_set("progress", float("nan")), "'progress' is NaN"),
    "hyperparameter a string": (_set("hyperparameters", {"lr": "fast"}), "'hyperparameters' is"),
    "history an object": (_set("history", {}), "'history' is \\{\\}, not a list of records"),
    "history record without step": (_record, "'history' is"),
    "history metric a string": (_metrics, "'history' is"),
    "sampler of another generator": (_set("sampler", {"bit_generator": "MT19937"}), "not a PCG64 generator state"),
    "sampler state out of range": (
        _set("sampler", {"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0, "uinteger": 0}),
        "'sampler' is",
    ),
    "generator naming a numpy function": (_generator, "'random_state' is"),
    "generator names differ": (_set("random_state", {}), "random generators are none, the model's are 'generator_0'"),
    "hyperparameter unknown": (_set("hyperparameters", {"lr": 0.1, "evil": 1}), "run-time parameters are 'evil', 'lr'"),
    "parameter missing": (_without(W), "it lacks the parameter 'features.0.W'"),
    "parameter extra": (_array("parameters/features.9.W", np.zeros((2, 2), "float32")), "parameter 'features.9.W'"),
    "parameter of another shape": (
        _array(W, np.zeros((3, 2), "float32")),
        "parameter 'features.0.W' has shape \\[3, 2\\], the model's is \\[2, 3\\]",
    ),
    "parameter float64": (_array(W, np.zeros((2, 3))), "parameter 'features.0.W' is float64, the model's is float32"),
    "parameter of integers": (_array(W, np.zeros((2, 3), int)), "is int64, the model's is float32"),
    "parameter big-endian": (_array(W, np.zeros((2, 3), ">f4")), "is >f4, the model's is float32"),
    "parameter 0-d": (_array(W, np.float32(1)), "has shape \\[\\], the model's is \\[2, 3\\]"),
    "optimiser state missing": (_without(M), "it lacks the optimiser state 'features.0.W.m'"),
    "optimiser state of another shape": (_array(M, np.zeros(6, "float32")), "state 'features.0.W.m' has shape \\[6\\]"),
    "optimiser step count a float": (_array("optimizer/step", 3.0), "state 'step' is float64, the model's is int64"),
    "optimiser state extra": (_array("optimizer/evil", 1), "optimiser state 'evil', which the model does not have"),
    "array of no kind": (_array("evil", np.zeros(3)), "an array 'evil', which no checkpoint holds"),
    "source order not a permutation": (
        _array("run/source_order", np.zeros(10, int)),
        "'run/source_order' is not a permutation",
    ),
    "source order of floats": (_array("run/source_order", np.arange(10.0)), "'run/source_order' is a 1-d array of f"),
    "source order 2-d": (_array("run/source_order", np.arange(10).reshape(2, 5)), "is a 2-d array"),
    "target order negative": (_array("run/target_order", -np.ones(10, int)), "'run/target_order' is not 10 row"),
    "target order too short": (_array("run/target_order", np.arange(3)), "'run/target_order' is not 10 row numbers"),
    "target order missing": (_without("run/target_order"), "its run arrays are 'source_order', not"),
}

# refused when resuming, where the data and the batches are known; they fit the model, so evaluating may read them
RUN: dict[str, tuple[Callable[[Arrays, dict], Any], str]] = {
    "source order of other rows": (_orders(7), "its source order has 7 rows, the data 10"),
    "target order past the target rows": (_array("run/target_order", np.arange(10)), "its target order is not 10 rows"),
    "step past the run": (_set("step", 99), "its step 99 is past the run's 3 steps"),
    "position not the step": (_set("position", 0), "its epoch 1 and batch 0 are not step 3 at 3 batches an epoch"),
    "epoch not the step": (_set("epoch", 5), "its epoch 5 and batch 3 are not step 3"),
}


def _attacked(files: dict[str, Path], tmp_path: Path, attack: Callable[[Arrays, dict], Any]) -> Path:
    arrays, meta = _contents(files["checkpoint"])
    result = attack(arrays, meta)
    return _signed(tmp_path / "attacked.npz", arrays, result.value if isinstance(result, Header) else meta)


def _refused(error: pytest.ExceptionInfo[spec_lang.SpecError], pattern: str) -> None:
    diagnostic = error.value.diagnostics[0]
    assert diagnostic.code == "E803", diagnostic.message
    assert re.search(pattern, diagnostic.message), diagnostic.message


def test_the_real_checkpoint_is_accepted(files, model) -> None:
    """The attacks start from a checkpoint every door accepts."""
    read_checkpoint(files["checkpoint"], model.program).restore(model)
    model.fit(str(files["data"]), checkpoint=files["checkpoint"], resume=True, **OPTIONS)


@pytest.mark.parametrize("name", STRUCTURE)
def test_a_checkpoint_of_the_wrong_structure_is_refused_in_python(name: str, files, model, tmp_path: Path) -> None:
    attack, pattern = STRUCTURE[name]
    path = _attacked(files, tmp_path, attack)
    before = _state(model)
    with pytest.raises(spec_lang.SpecError) as error:
        read_checkpoint(path, model.program).restore(model)
    _refused(error, pattern)
    _assert_unchanged(model, before)
    with pytest.raises(spec_lang.SpecError) as error:
        model.fit(str(files["data"]), checkpoint=path, resume=True, **OPTIONS)
    _refused(error, pattern)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("name", RUN)
def test_a_checkpoint_that_does_not_fit_the_run_is_refused_when_resuming(name: str, files, model, tmp_path) -> None:
    attack, pattern = RUN[name]
    path = _attacked(files, tmp_path, attack)
    before = _state(model)
    with pytest.raises(spec_lang.SpecError) as error:
        model.fit(str(files["data"]), checkpoint=path, resume=True, **OPTIONS)
    _refused(error, pattern)
    _assert_unchanged(model, before)


def test_a_model_checkpoint_is_not_a_run_to_resume(files, model, tmp_path: Path) -> None:
    arrays, meta = _contents(files["checkpoint"])
    for key in ("run", "step", "epoch", "position", "sampler", "history"):
        del meta[key]
    path = _signed(tmp_path / "model.npz", {n: v for n, v in arrays.items() if not n.startswith("run/")}, meta)
    read_checkpoint(path, model.program).restore(model)  # a model's checkpoint: it evaluates and predicts
    with pytest.raises(spec_lang.SpecError) as error:
        model.fit(str(files["data"]), checkpoint=path, resume=True, **OPTIONS)
    _refused(error, "it holds a model but no training run to resume")
    arrays["run/order"] = np.arange(3)
    with pytest.raises(spec_lang.SpecError) as error:
        read_checkpoint(_signed(path, arrays, meta))
    _refused(error, "it holds the run array 'run/")


@pytest.mark.parametrize(
    "name", ["header a list", "step a string", "parameter of another shape", "target order missing"]
)
def test_the_commands_refuse_them_with_e803_and_no_traceback(name: str, files, tmp_path, capsys) -> None:
    attack, pattern = STRUCTURE[name]
    path = _attacked(files, tmp_path, attack)
    spec, data = str(files["spec"]), str(files["data"])
    common = ["--checkpoint", str(path), "--mode", "fast_compile"]
    commands = [
        ["eval", spec, "--data", data, *common],
        ["predict", spec, "--data", data, "--head", "label_probabilities", "-o", str(tmp_path / "p.npz"), *common],
        ["train", spec, "--source", data, "--steps", "3", "--batch-size", "4", "--resume", "--quiet", *common],
    ]
    before = path.read_bytes()
    for command in commands:
        assert main(command) == 1, command[0]
        err = capsys.readouterr().err
        assert "error[E803]" in err and "Traceback" not in err, err
        assert re.search(pattern, err), err
    assert path.read_bytes() == before and not (tmp_path / "p.npz").exists()


# Size bombs -------------------------------------------------------------------------------------------------------


def _npy_header(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
    return stream.getvalue()


def _bomb(source: Path, target: Path, member: str, data: bytes) -> Path:
    """`source` with one member's bytes replaced, checksum untouched: the bomb must go off while loading."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as bombed:
        for info in original.infolist():
            bombed.writestr(info.filename, data if info.filename == member else original.read(info.filename))
    return target


@pytest.mark.parametrize(
    ("member", "data", "pattern"),
    [
        (f"{W}.npy", _npy_header((2**40, 2)) + bytes(64), "declares shape \\[1099511627776, 2\\] of float32"),
        ("run/source_order.npy", _npy_header((2**62,), "<i8") + bytes(8), "declares shape \\[4611686018427387904\\]"),
        (f"{META}.npy", _npy_header((), "<U500000000") + bytes(16), "declares shape \\[\\] of <U500000000"),
        (f"{W}.npy", _npy_header((2, 3)) + bytes(8), "declares shape \\[2, 3\\] of float32 \\(24 bytes\\)"),
    ],
    ids=["2^40 rows", "2^62 rows", "a string of 2 GB", "too few bytes"],
)
def test_a_member_whose_header_lies_about_its_size_is_refused_while_loading(
    member: str, data: bytes, pattern: str, files, model, tmp_path: Path
) -> None:
    path = _bomb(files["checkpoint"], tmp_path / "bomb.npz", member, data)
    before = _state(model)
    with pytest.raises(spec_lang.SpecError) as error:
        read_checkpoint(path, model.program)
    diagnostic = error.value.diagnostics[0]
    assert diagnostic.code == "E803" and "is corrupt or truncated" in diagnostic.message
    assert re.search(pattern, diagnostic.message), diagnostic.message
    _assert_unchanged(model, before)


def test_specc_eval_refuses_a_size_bomb_without_a_traceback(files, tmp_path: Path, capsys) -> None:
    path = _bomb(files["checkpoint"], tmp_path / "bomb.npz", f"{W}.npy", _npy_header((2**40, 2)) + bytes(64))
    assert main(["eval", str(files["spec"]), "--checkpoint", str(path), "--data", str(files["data"])]) == 1
    err = capsys.readouterr().err
    assert "error[E803]" in err and "1099511627776" in err and "Traceback" not in err

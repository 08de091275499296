"""The two-moons reproduction: the examples are the authors' network, and a short run already shows DANN adapting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.cli.main import main
from spec_lang.data import two_moons
from spec_lang.experiments.moons import MOONS_EXAMPLES, example, reproduce_moons

MOONS_SPECS = {name: example(file) for name, file in MOONS_EXAMPLES.items()}


def test_the_moons_examples_are_the_authors_network() -> None:
    for path in MOONS_SPECS.values():
        program = spec_lang.load(path).program
        assert [(layer.out_shape, layer.activation) for name in ("features", "label_classifier", "domain_classifier")
                for layer in program.stack(name).layers] == [((None, 15), "sigmoid"), ((None, 2), "softmax"),
                                                             ((None, 1), "sigmoid")]
        assert program.phases[0].optimizer == "sgd" and program.hypers == {"lambda_adapt": 6.0, "lr": 0.05}


def test_the_nn_trains_its_hidden_layer_as_a_plain_network() -> None:
    """moons_nn's domain classifier learns, but its gradient never reaches the hidden layer or the labels."""
    data = two_moons()
    nn = spec_lang.load(MOONS_SPECS["NN"]).compile("FAST_COMPILE")
    plain = spec_lang.load(MOONS_SPECS["NN"], lambda_adapt=0).compile("FAST_COMPILE")
    for model in (nn, plain):
        for i in range(20):
            model.train_step(xs=data["xs"][i:i + 1], ys=data["ys"][i:i + 1], xt=data["xt"][i:i + 1])
    for name, value in nn.parameters.items():
        if name.startswith("domain_classifier"):
            assert not np.array_equal(value, plain.parameters[name])
        else:
            np.testing.assert_array_equal(value, plain.parameters[name])


def test_a_short_reproduction_writes_the_table_and_figures_and_dann_adapts(tmp_path: Path) -> None:
    lines: list[str] = []
    result = reproduce_moons(1, tmp_path, epochs=100, report=lines.append)
    summary = result.summary()
    assert list(summary) == ["NN", "DANN"] and len(lines) == 2
    for stats in summary.values():
        assert set(stats) == {"source_accuracy", "target_accuracy"}
        assert all(set(s) == {"mean", "min", "max"} and s["min"] <= s["mean"] <= s["max"] for s in stats.values())
        assert stats["source_accuracy"]["mean"] >= 0.95
    # After 100 epochs DANN is ahead on the rotated moons for each of the seeds 0–4 (by 3 to 14 points).
    assert summary["DANN"]["target_accuracy"]["mean"] > summary["NN"]["target_accuracy"]["mean"]
    table = result.table().splitlines()
    assert table[0].startswith("| model | seeds | source accuracy") and table[2].startswith("| NN | 1 | ")
    document = json.loads((tmp_path / "moons.json").read_text())
    assert document["summary"] == summary and document["runs"]["DANN"][0]["seed"] == 0
    assert sorted(p.name for p in result.files) == sorted(p.name for p in tmp_path.iterdir()) == [
        "moons.json", "moons.png", "moons_dann_history.png", "moons_nn_history.png"]
    with pytest.raises(spec_lang.SpecError, match="already exists"):  # refused before any training
        reproduce_moons(1, tmp_path, epochs=1)


def test_the_command_refuses_existing_output(tmp_path: Path, capsys) -> None:
    (tmp_path / "moons.png").write_bytes(b"kept")
    assert main(["reproduce", "moons", "--seeds", "1", "--epochs", "1", "-o", str(tmp_path)]) == 1
    assert f"{tmp_path / 'moons.png'}: error[E002]: the file already exists" in capsys.readouterr().err
    assert (tmp_path / "moons.png").read_bytes() == b"kept"


def test_the_command_wants_at_least_one_seed_and_epoch(capsys) -> None:
    for bad in (["--seeds", "0"], ["--epochs", "-3"]):
        with pytest.raises(SystemExit) as exit_:
            main(["reproduce", "moons", *bad])
        assert exit_.value.code == 2 and "at least 1" in capsys.readouterr().err

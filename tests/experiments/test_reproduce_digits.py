"""`specc reproduce digits`: every method of examples/methods/ on the digits shift; here a tiny run of two methods,
one of them multi-phase, checked for its files and table, and the pieces it is made of."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.cli.main import main
from spec_lang.data.digits import load_digits
from spec_lang.experiments.accuracies import Accuracies, example
from spec_lang.experiments.digits import digits_features, method_specs, reproduce_digits


def test_the_target_is_the_other_half_of_the_digits_rotated_by_30_degrees() -> None:
    from scipy.ndimage import rotate

    images, labels = load_digits()
    order = np.random.default_rng(0).permutation(len(images))
    data = digits_features(rows=3)
    assert data["xs"].shape == (3, 64) and data["xs"].dtype == np.float32
    np.testing.assert_allclose(data["xs"][1], images[order[1]].ravel() / 16, rtol=1e-6)
    turned = rotate(images[order[len(images) // 2 + 2]], 30, reshape=False, order=1)
    np.testing.assert_allclose(data["xt"][2], turned.ravel() / 16, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(data["yt"], labels[order[len(images) // 2 :][:3]])


def test_every_method_file_is_found_source_only_first() -> None:
    specs = method_specs()
    assert list(specs)[0] == "source_only" and {"dann", "adda", "mcd"} <= set(specs)
    assert set(specs) == {path.stem for path in example("methods").glob("*.dann")}
    with pytest.raises(ValueError, match="no method nope"):
        method_specs(["dann", "nope"])


def test_a_diverged_run_is_left_out_of_the_summary_and_counted_in_the_table() -> None:
    runs = {
        "source_only": [{"source_accuracy": 0.9, "target_accuracy": 0.2}],
        "dan": [{"diverged": "training diverged at step 3"}],
        "dann": [{"source_accuracy": 0.8, "target_accuracy": 0.25}, {"diverged": "training diverged at step 9"}],
    }
    result = Accuracies(runs, baseline="source_only")
    assert list(result.summary()) == ["source_only", "dann"]
    assert result.differences()["dann"] == pytest.approx(0.05)
    assert result.table().splitlines()[3:] == [
        "| dan | 0 of 1 | diverged | diverged | — |",
        "| dann | 1 of 2 | 80.0% (80.0–80.0) | 25.0% (25.0–25.0) | +5.0 |",
    ]


def test_a_tiny_reproduction_writes_the_table_json_csv_and_figure(tmp_path: Path) -> None:
    lines: list[str] = []
    result = reproduce_digits(
        1, tmp_path, epochs=2, methods=["source_only", "adda"], rows=64, mode="FAST_COMPILE", report=lines.append
    )
    assert [line.split(":")[0] for line in lines] == ["source_only seed 0", "adda seed 0"]
    assert sorted(p.name for p in result.files) == sorted(p.name for p in tmp_path.iterdir()) == [
        "digits.csv", "digits.json", "digits.png"]
    table = result.table().splitlines()
    assert table[0] == ("| model | seeds | source accuracy: mean (min–max) | target accuracy: mean (min–max) | "
                        "target vs source_only (points) |")
    assert table[2].startswith("| source_only | 1 | ") and table[2].endswith(" | — |")
    assert table[3].startswith("| adda | 1 | ")
    document = json.loads((tmp_path / "digits.json").read_text())
    assert document["baseline"] == "source_only" and document["setup"]["overrides"]["adda"] == {
        "classes": 10, "dim": 64, "pretrain_epochs": 1}
    adda = document["runs"]["adda"][0]
    assert adda["seed"] == 0 and 0 <= adda["target_accuracy"] <= 1
    summary = document["summary"]["adda"]
    assert summary["target_accuracy"]["mean"] == adda["target_accuracy"]
    assert summary["target_vs_baseline"] == pytest.approx(
        adda["target_accuracy"] - document["runs"]["source_only"][0]["target_accuracy"])
    rows = list(csv.DictReader((tmp_path / "digits.csv").open()))
    assert [row["method"] for row in rows] == ["source_only", "adda"]
    assert float(rows[1]["target_accuracy_max"]) == adda["target_accuracy"]
    with pytest.raises(spec_lang.SpecError, match="already exists"):  # refused before any training
        reproduce_digits(1, tmp_path, epochs=1, methods=["source_only"], rows=8)


def test_the_command_refuses_unknown_methods_and_methods_for_moons(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["reproduce", "digits", "--methods", "dann,nope"])
    assert exit_.value.code == 2 and "no method nope in examples/methods/" in capsys.readouterr().err
    assert main(["reproduce", "moons", "--methods", "dann"]) == 2
    assert "--methods is for digits" in capsys.readouterr().err

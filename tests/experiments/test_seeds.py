"""Several seeds of one run (`--seeds`) and run folders (issue 13, item 3): the seeds' syntax, the aggregate's
numbers, the JSON written, and run folders that never collide."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from spec_lang import SpecError
from spec_lang.experiments.runs import RunFolder, checkpoint_path, load_spec, new_run_folder
from spec_lang.experiments.seeds import aggregate, parse_seeds, table, write_summary
from spec_lang.program.fingerprint import fingerprint

ROOT = Path(__file__).resolve().parents[2]


def test_seeds_are_lists_and_ranges() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("7") == [7]
    assert parse_seeds("0-2,10") == [0, 1, 2, 10]
    assert parse_seeds(f"{2**63 - 1}") == [2**63 - 1]


@pytest.mark.parametrize("text", ["", "a", "1,,2", "-1", "3-1", "1,1", "0-2,2", f"{2**63}", "0-5000", "1.5"])
def test_anything_else_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_seeds(text)


RUNS = {
    0: {"epoch": 3, "step": 30, "progress": 1.0, "objective": 0.5, "target_accuracy": 0.8, "status": "completed"},
    1: {"epoch": 3, "step": 30, "progress": 1.0, "objective": 0.25, "target_accuracy": 0.9},
    4: {"epoch": 3, "step": 30, "progress": 1.0, "objective": 0.75, "target_accuracy": 1.0, "extra": 1.0},
}


def test_the_aggregate_is_mean_std_min_and_max_of_the_metrics_every_run_has() -> None:
    summary = aggregate(RUNS)
    assert list(summary) == ["objective", "target_accuracy"]  # no counters, strings or metrics of one run only
    assert summary["objective"] == pytest.approx({"mean": 0.5, "std": math.sqrt(1 / 24), "min": 0.25, "max": 0.75})
    assert summary["target_accuracy"] == pytest.approx(
        {"mean": 0.9, "std": math.sqrt(0.02 / 3), "min": 0.8, "max": 1.0}
    )  # the population's standard deviation, numpy's default


def test_equal_values_have_no_spread() -> None:
    runs = {seed: {"learning_rate": 0.0016556000000000001, "lambda": 0.999909} for seed in range(3)}
    assert aggregate(runs)["learning_rate"] == {
        "mean": 0.0016556000000000001,
        "std": 0.0,
        "min": 0.0016556000000000001,
        "max": 0.0016556000000000001,
    }


def test_the_table_has_a_line_per_metric_and_names_the_seeds() -> None:
    lines = table(aggregate(RUNS), [0, 1, 4]).splitlines()
    assert lines[0].split() == ["metric", "mean", "std", "min", "max", "(3", "seeds:", "0,", "1,", "4)"]
    assert lines[1].split() == ["objective", "0.5", "0.204124", "0.25", "0.75"]
    assert lines[2].split() == ["target_accuracy", "(oracle)", "0.9", "0.0816497", "0.8", "1"]


def test_the_summary_is_written_as_json(tmp_path: Path) -> None:
    folders = {seed: tmp_path / f"seed-{seed}" for seed in RUNS}
    write_summary(tmp_path / "seeds.json", RUNS, folders, {"spec": "m.dann"})
    document = json.loads((tmp_path / "seeds.json").read_text())
    assert document["spec"] == "m.dann" and document["seeds"] == [0, 1, 4]
    assert document["summary"]["objective"]["mean"] == 0.5
    assert [run["folder"] for run in document["runs"]] == [str(folders[s]) for s in RUNS]
    assert document["runs"][2]["final"]["target_accuracy"] == 1.0


def test_run_folders_are_numbered_and_never_shared(tmp_path: Path) -> None:
    first = new_run_folder("m", root=tmp_path)
    second = new_run_folder("m", root=tmp_path)
    assert (first.path, second.path) == (tmp_path / "m" / "1", tmp_path / "m" / "2")
    (tmp_path / "m" / "7").mkdir()
    (tmp_path / "m" / "notes").mkdir()
    assert new_run_folder("m", root=tmp_path).path == tmp_path / "m" / "8"
    assert first.seed(3).path == first.path / "seed-3" and (first.path / "seed-3").is_dir()
    with pytest.raises(SpecError, match="E002"):
        first.seed(3)


def test_a_chosen_run_folder_must_be_new_or_empty(tmp_path: Path) -> None:
    assert new_run_folder("m", tmp_path / "mine").path == tmp_path / "mine"
    assert new_run_folder("m", tmp_path / "mine").path == tmp_path / "mine"  # still empty
    (tmp_path / "mine" / "log.jsonl").write_text("")
    with pytest.raises(SpecError, match="the run folder already exists"):
        new_run_folder("m", tmp_path / "mine")
    with pytest.raises(SpecError, match="E002"):
        new_run_folder("m", tmp_path / "missing" / "mine")


def test_a_run_folder_names_its_checkpoint_and_a_parent_of_seeds_names_none(tmp_path: Path) -> None:
    assert checkpoint_path(tmp_path / "c.npz") == tmp_path / "c.npz"
    assert checkpoint_path(tmp_path) == tmp_path / "checkpoint.npz"
    RunFolder(tmp_path).seed(0)
    with pytest.raises(SpecError, match="holds a run per seed"):
        checkpoint_path(tmp_path)


def test_the_seed_replaces_the_specs_seed_statement_and_is_printed(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "examples" / "seed_dann.dann", {"hp_lambda": 0.25}, 7)
    assert spec.program.seed == 7 and spec.program.settings["hp_lambda"] == 0.25
    assert load_spec(ROOT / "examples" / "seed_dann.dann", {}).program.seed == 1  # the spec's own
    folder = RunFolder(tmp_path)
    folder.record(spec, {"set": {"hp_lambda": 0.25}, "seed": 7})
    text = folder.spec.read_text()
    assert "seed 7\n" in text and "hp_lambda = 0.25" in text
    assert fingerprint(load_spec(folder.spec, {}).program) == fingerprint(spec.program)  # it reads back the same
    assert folder.read_overrides() == {"set": {"hp_lambda": 0.25}, "seed": 7}


def test_unreadable_overrides_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "overrides.json").write_text("[1]")
    with pytest.raises(SpecError, match="E803"):
        RunFolder(tmp_path).read_overrides()


def test_the_statistics_of_huge_finite_values_do_not_overflow() -> None:
    summary = aggregate({0: {"objective": 1e308}, 1: {"objective": -1e308}, 2: {"objective": 1e308}})
    stats = summary["objective"]
    assert stats["mean"] == pytest.approx(1e308 / 3) and stats["std"] == pytest.approx(math.sqrt(8) / 3 * 1e308)

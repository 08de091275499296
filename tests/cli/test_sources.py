"""Several labelled sources and targets from the command line (issue 13, item 5): `--source` and `--target` are
repeatable on `specc train` (and `--data`, `--target` on `specc eval`), one file per group in the order the spec's
groups are inferred; each file keeps its own row count; a wrong count is an E802 listing the groups; run folders
record the files as lists and `--resume RUN_DIR` reads them back (a single path in older folders)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spec_lang.cli.main import main
from spec_lang.experiments.runs import RunFolder
from spec_lang.runtime.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "tests" / "diagnostics" / "cli" / "sources_two_sources.dann")  # sources xs1/ys1, xs2/ys2; target xt
FAST = ["--mode", "fast_compile", "--batch-size", "4"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two source files of 10 and 7 rows, a target file of 5 rows with target labels, and one file with all."""
    folder = tmp_path_factory.mktemp("sources")
    generator = np.random.default_rng(0)
    first = {"xs1": generator.normal(size=(10, 2)), "ys1": generator.integers(0, 2, 10)}
    second = {"xs2": generator.normal(size=(7, 2)), "ys2": generator.integers(0, 2, 7)}
    target = {"xt": generator.normal(size=(5, 2)), "yt": np.array([0, 1, 0, 1, 1])}
    np.savez(folder / "a.npz", **first)
    np.savez(folder / "b.npz", **second)
    np.savez(folder / "t.npz", **target)
    np.savez(folder / "all.npz", **first, **second, **target)
    return folder


def _train(work: Path, *options: str) -> list[str]:
    files = ["--source", str(work / "a.npz"), "--source", str(work / "b.npz"), "--target", str(work / "t.npz")]
    return ["train", SPEC, *files, *FAST, *options]


def test_two_source_files_of_their_own_sizes_report_each_accuracy(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = work / "run"
    assert main(_train(work, "--epochs", "2", "--run-dir", str(run))) == 0
    err = capsys.readouterr().err
    assert err.startswith(
        f"data: source 1 (xs1, ys1): {work / 'a.npz'}\ndata: source 2 (xs2, ys2): {work / 'b.npz'}\n"
        f"data: target 1 (xt): {work / 't.npz'}\n"
    )
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert (final["epoch"], final["step"]) == (2, 6)  # an epoch is a pass over the longer source: 3 batches of 4
    first, second = final["source_xs1_accuracy"], final["source_xs2_accuracy"]
    assert final["source_accuracy"] == pytest.approx((10 * first + 7 * second) / 17)  # over all 17 source rows
    overrides = json.loads((run / "overrides.json").read_text())
    assert overrides["source"] == [str(work / "a.npz"), str(work / "b.npz")]
    assert overrides["target"] == [str(work / "t.npz")]
    evaluate = ["eval", SPEC, "--checkpoint", str(run), "--json", "--mode", "fast_compile"]
    files = ["--data", str(work / "a.npz"), "--data", str(work / "b.npz"), "--target", str(work / "t.npz")]
    assert main([*evaluate, *files]) == 0
    values = json.loads(capsys.readouterr().out)
    for name in ("source_xs1_accuracy", "source_xs2_accuracy", "source_accuracy", "target_accuracy"):
        assert values[name] == pytest.approx(final[name])
    assert main([*evaluate, "--data", str(work / "all.npz")]) == 0  # one file for every group: the same numbers
    assert json.loads(capsys.readouterr().out) == values


def test_map_still_feeds_a_source_from_another_file(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    separate, mapped = work / "separate", work / "mapped"
    assert main(_train(work, "--steps", "4", "--run-dir", str(separate), "--quiet")) == 0
    other = work / "b.npz"
    renames = ["--map", f"xs2={other}:xs2", "--map", f"ys2={other}:ys2", "--target", str(work / "t.npz")]
    assert (
        main(
            ["train", SPEC, "--source", str(work / "a.npz"), *renames, *FAST, "--steps", "4", "--run-dir", str(mapped)]
        )
        == 0
    )
    assert f"data: source 2 (xs2, ys2): {work / 'a.npz'} (xs2 from {other}:xs2, ys2 from {other}:ys2)\n" in (
        capsys.readouterr().err
    )
    final = json.loads((mapped / "metrics.json").read_text())["final"]
    assert final == json.loads((separate / "metrics.json").read_text())["final"]  # the same rows: the same run


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        (
            ["--source", "a.npz", "--source", "b.npz", "--source", "c.npz"],
            "3 --source files were given, but the model has 2 labelled sources",
            "give one --source for all of them, or one per source in the order of the spec's label terms: "
            "1. xs1, ys1; 2. xs2, ys2",
        ),
        (
            ["--source", "a.npz", "--target", "t.npz", "--target", "u.npz"],
            "2 --target files were given, but the model has 1 target domain",
            "give one --target for all of them, or one per target in the order of the spec's input declarations: 1. xt",
        ),
    ],
)
def test_a_wrong_number_of_files_names_the_groups(
    options: list[str], message: str, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", SPEC, *options, "--steps", "2", "--mode", "fast_compile"]) == 1
    err = capsys.readouterr().err
    assert err == f"{SPEC}: error[E802]: {message}\n  hint: {hint}\n"


def test_eval_checks_the_number_of_data_files_before_compiling(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = work / "counted"
    assert main(_train(work, "--steps", "1", "--run-dir", str(run), "--quiet")) == 0
    three = [f"--data={work / name}" for name in ("a.npz", "b.npz", "t.npz")]
    assert main(["eval", SPEC, "--checkpoint", str(run), *three]) == 1
    assert "error[E802]: 3 --data files were given, but the model has 2 labelled sources" in capsys.readouterr().err


def test_an_interrupted_two_source_run_resumes_from_its_recorded_files(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spec_lang.training.trainer import Trainer

    original = Trainer.fit

    def stopped_at_step_3(self: Trainer, *data: object, **options: object) -> object:
        def stop(info: dict) -> None:
            if info["step"] == 3:
                raise KeyboardInterrupt

        return original(self, *data, callback=stop, **options)

    whole, stopped = work / "whole", work / "stopped"
    assert main(_train(work, "--steps", "6", "--run-dir", str(whole), "--quiet")) == 0
    monkeypatch.setattr(Trainer, "fit", stopped_at_step_3)
    assert main(_train(work, "--steps", "6", "--run-dir", str(stopped), "--quiet")) == 130
    assert read_checkpoint(stopped / "checkpoint.npz").meta["step"] == 3
    monkeypatch.setattr(Trainer, "fit", original)
    capsys.readouterr()
    assert main(["train", SPEC, "--resume", str(stopped), "--steps", "6", *FAST]) == 0  # no --source: the folder's
    assert "data: source 2 (xs2, ys2): " in capsys.readouterr().err
    resumed, uninterrupted = read_checkpoint(stopped / "checkpoint.npz"), read_checkpoint(whole / "checkpoint.npz")
    assert resumed.meta["step"] == 6
    assert all(np.array_equal(resumed.arrays[name], uninterrupted.arrays[name]) for name in uninterrupted.arrays)


def test_a_folder_of_an_older_specc_records_one_path(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = work / "old"
    shared = ["train", SPEC, "--source", str(work / "all.npz"), "--steps", "3", *FAST, "--quiet"]
    assert main([*shared, "--run-dir", str(old)]) == 0
    saved = json.loads((old / "overrides.json").read_text())
    (old / "overrides.json").write_text(json.dumps({**saved, "source": str(work / "all.npz"), "target": None}))
    assert RunFolder(old).data_files() == ([str(work / "all.npz")], None)
    assert main(["train", SPEC, "--resume", str(old), "--steps", "3", *FAST]) == 0
    assert capsys.readouterr().out.startswith(
        f"trained 3 steps (1 epochs, seed 0, initial weights from seed 0) in {old}"
    )
    (old / "overrides.json").write_text(json.dumps({**saved, "source": 3}))
    assert main(["train", SPEC, "--resume", str(old), "--steps", "3", *FAST]) == 1
    assert "error[E803]: cannot read the data files of the run folder" in capsys.readouterr().err


def test_train_without_source_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["train", SPEC, "--steps", "2"])
    assert stop.value.code == 2
    assert "the following arguments are required: --source" in capsys.readouterr().err

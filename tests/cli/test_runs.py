"""Run folders, seeds and quiet runs of `specc train` (issue 13, items 3 and 4): each run in its own folder with the
resolved spec, its overrides, log, checkpoint and metrics; `--seed` sets the batch order and the initial weights;
`--seeds` aggregates; `eval`, `predict` and `--resume` recover the overrides; data is checked before compiling;
`--quiet` prints nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spec_lang.cli.main import main
from spec_lang.data import load_arrays
from spec_lang.runtime.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "seed_dann.dann")
FAST = ["--mode", "fast_compile"]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the moons data, and a run of 6 steps with an override and a seed in home/runs/seed_dann/1."""
    folder = tmp_path_factory.mktemp("runs")
    assert main(["data", "moons", "-o", str(folder / "d.npz")]) == 0
    (folder / "home").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder / "home")
        arguments = ["train", SPEC, "--source", "../d.npz", "--steps", "6", "--set", "hp_lambda=0.25", "--seed", "4"]
        assert main([*arguments, *FAST, "--quiet"]) == 0
    return folder


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_a_run_writes_its_folder_and_nothing_else(work: Path) -> None:
    run = work / "home" / "runs" / "seed_dann" / "1"
    assert [p.name for p in (work / "home").iterdir()] == ["runs"]
    assert {"spec.dann", "overrides.json", "log.jsonl", "checkpoint.npz", "metrics.json"} <= {
        p.name for p in run.iterdir()
    }
    overrides = json.loads((run / "overrides.json").read_text())
    assert overrides == {"set": {"hp_lambda": 0.25}, "seed": 4, "init_seed": 4, "source": ["../d.npz"], "target": None}
    spec = (run / "spec.dann").read_text()
    assert "hp_lambda = 0.25" in spec and "\nseed 4\n" in spec  # the spec's own `seed 1` replaced
    saved = read_checkpoint(run / "checkpoint.npz")
    assert saved.meta["run"]["seed"] == 4 and saved.meta["run"]["init_seed"] == 4 and saved.meta["step"] == 6
    metrics = _metrics(run)
    assert (metrics["seed"], metrics["init_seed"], metrics["final"]["step"]) == (4, 4, 6)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["status"] == "completed" and log[-1]["objective"] == metrics["final"]["objective"]


def test_the_seed_sets_the_initial_weights_and_a_rerun_takes_the_next_folder(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(work / "home")
    arguments = ["train", SPEC, "--source", "../d.npz", "--steps", "6", "--set", "hp_lambda=0.25", "--quiet", *FAST]
    assert main([*arguments, "--seed", "4", "--run-dir", "../same"]) == 0  # same seed: same numbers, bit for bit
    assert main([*arguments, "--seed", "5"]) == 0  # no E002: a new folder
    first = read_checkpoint(work / "home/runs/seed_dann/1/checkpoint.npz")
    again = read_checkpoint(work / "same/checkpoint.npz")
    other = read_checkpoint(work / "home/runs/seed_dann/2/checkpoint.npz")
    name = "parameters/features.0.W"
    assert np.array_equal(first.arrays[name], again.arrays[name])
    assert not np.array_equal(first.arrays[name], other.arrays[name]) and other.meta["run"]["init_seed"] == 5


def test_eval_and_predict_recover_the_overrides_from_a_run_folder(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = work / "home" / "runs" / "seed_dann" / "1"
    data = str(work / "d.npz")
    for checkpoint in (run, run / "checkpoint.npz"):
        assert main(["eval", SPEC, "--checkpoint", str(checkpoint), "--data", data, "--json", *FAST]) == 0
        captured = capsys.readouterr()
        values = json.loads(captured.out)
        assert f"recovered --set hp_lambda=0.25 --seed 4 from {run / 'checkpoint.npz'}" in captured.err
        final = _metrics(run)["final"]
        assert values["objective"] == pytest.approx(final["objective"], rel=1e-9)
        assert values["source_accuracy"] == final["source_accuracy"]
    output = work / "p.npz"
    arguments = ["predict", SPEC, "--checkpoint", str(run), "--data", data, "--head", "label_probabilities"]
    assert main([*arguments, "-o", str(output), *FAST]) == 0
    assert load_arrays(output)["label_probabilities"].shape == (150, 8)
    assert main(["eval", SPEC, "--checkpoint", str(run), "--data", data, "--set", "hp_lambda=0.5", *FAST]) == 1
    assert "error[E804]" in capsys.readouterr().err  # --set given on the command line wins


def test_resume_takes_a_run_folder_and_its_overrides(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = work / "home" / "runs" / "seed_dann" / "1"
    log = (run / "log.jsonl").read_text()
    arguments = ["train", SPEC, "--source", str(work / "d.npz"), "--steps", "6", "--resume", str(run), *FAST]
    assert main(arguments) == 0  # no --set, no --seed: both from the folder
    out = capsys.readouterr().out
    assert out.startswith(f"trained 6 steps (2 epochs, seed 4, initial weights from seed 4) in {run}\n")
    assert (run / "log.jsonl").read_text() == log  # nothing left to train: the same run, rewritten alike


def test_an_interrupted_run_resumes_in_its_folder_to_the_same_numbers(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spec_lang.training.trainer import Trainer

    original = Trainer.fit

    def stopped_at_step_3(self: Trainer, *data: object, **options: object) -> object:
        def stop(info: dict) -> None:
            if info["step"] == 3:
                raise KeyboardInterrupt

        return original(self, *data, callback=stop, **options)

    folder = work / "stopped"
    arguments = ["train", SPEC, "--source", str(work / "d.npz"), "--steps", "6", "--run-dir", str(folder), *FAST]
    monkeypatch.setattr(Trainer, "fit", stopped_at_step_3)
    assert main([*arguments, "--set", "hp_lambda=0.25", "--seed", "4", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "stopped after step 3 of 6" in err and err.endswith("; continue with the same command and --resume\n")
    assert read_checkpoint(folder / "checkpoint.npz").meta["step"] == 3
    monkeypatch.setattr(Trainer, "fit", original)
    assert main([*arguments, "--resume", "--quiet"]) == 0  # --set and --seed from the folder
    resumed = read_checkpoint(folder / "checkpoint.npz")
    whole = read_checkpoint(work / "home" / "runs" / "seed_dann" / "1" / "checkpoint.npz")
    assert resumed.meta["step"] == 6 and resumed.arrays.keys() == whole.arrays.keys()
    assert all(np.array_equal(resumed.arrays[name], whole.arrays[name]) for name in whole.arrays)


def test_several_seeds_are_aggregated_in_the_parent_folder(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = work / "seeds"
    arguments = ["train", SPEC, "--source", str(work / "d.npz"), "--steps", "3", "--seeds", "0,2", "--plot"]
    assert main([*arguments, "--run-dir", str(parent), *FAST]) == 0
    out = capsys.readouterr().out
    finals = {seed: _metrics(parent / f"seed-{seed}")["final"] for seed in (0, 2)}
    assert _metrics(parent / "seed-2")["init_seed"] == 2 and (parent / "seed-2" / "history.png").is_file()
    document = json.loads((parent / "seeds.json").read_text())
    assert document["seeds"] == [0, 2] and document["set"] == {}
    objective = document["summary"]["objective"]
    values = [finals[0]["objective"], finals[2]["objective"]]
    assert objective["mean"] == pytest.approx(np.mean(values)) and objective["std"] == pytest.approx(np.std(values))
    assert (objective["min"], objective["max"]) == (min(values), max(values))
    assert "metric" in out and "(2 seeds: 0, 2)" in out and f"wrote the aggregate of 2 seeds to {parent}" in out
    assert main(["eval", SPEC, "--checkpoint", str(parent), "--data", str(work / "d.npz"), *FAST]) == 1
    assert "holds a run per seed (seed-0, seed-2)" in capsys.readouterr().err


def test_quiet_prints_nothing_and_progress_goes_to_standard_error(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["train", SPEC, "--source", str(work / "d.npz"), "--steps", "3", *FAST]
    assert main([*arguments, "--run-dir", str(work / "quiet"), "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main([*arguments, "--run-dir", str(work / "loud")]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("compiling the update function…\ncompiled the update function in ")
    assert "epoch 1/1 step 3/3 objective" in captured.err and "\r" not in captured.err  # plain lines: not a terminal
    assert "source_accuracy" in captured.out


def test_bad_data_fails_before_compiling_and_writes_nothing(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import spec_lang.cli.train

    def refuse(*_: object) -> None:
        raise AssertionError("compiled before the data was checked")

    monkeypatch.setattr(spec_lang.cli.train, "compile_spec", refuse)
    arguments = ["train", SPEC, "--steps", "3", "--run-dir", str(work / "never"), *FAST]
    assert main([*arguments, "--source", str(work / "missing.npz")]) == 1
    assert "missing.npz: error[E801]" in capsys.readouterr().err
    np.savez(work / "bad.npz", xs=np.zeros((5, 3)), ys=np.zeros(5), xt=np.zeros((5, 2)))
    assert main([*arguments, "--source", str(work / "bad.npz")]) == 1
    assert "error[E801]: input 'xs' expects shape [n, 2]" in capsys.readouterr().err
    assert not (work / "never").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--checkpoint", "c.npz", "--run-dir", "r"], "--checkpoint and --run-dir do not go together"),
        (["--resume"], "--resume needs the run to continue"),
        (["--seeds", "0,1", "--log", "l.jsonl"], "--seeds does not go with --checkpoint, --log"),
        (["--checkpoint", "c.npz", "--plot"], "--plot needs a file name with --checkpoint"),
    ],
)
def test_options_that_do_not_go_together(
    work: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    assert main(["train", SPEC, "--source", str(work / "d.npz"), *options]) == 1
    assert f"error[E802]: {message}" in capsys.readouterr().err


def test_seed_and_seeds_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["train", SPEC, "--source", "d.npz", "--seed", "1", "--seeds", "0,1"])
    assert stopped.value.code == 2 and "not allowed with argument" in capsys.readouterr().err

"""`specc train --val-fraction/--val --validator` and `specc eval --validator`: per-epoch scores in the log, the best
checkpoint in the run folder with `metrics.json` naming its epoch, the oracle marked in printed tables, and a resumed
run folder repeating its validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spec_lang.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "seed_dann.dann")
FAST = ["--mode", "fast_compile"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The moons data, a held-out file of 30 source rows, and a run folder trained with two validators."""
    folder = tmp_path_factory.mktemp("validators")
    assert main(["data", "moons", "-o", str(folder / "moons.npz")]) == 0
    with np.load(folder / "moons.npz") as data:
        np.savez(folder / "held.npz", xs=data["xs"][:30], ys=data["ys"][:30])
    train = ["train", SPEC, "--source", str(folder / "moons.npz"), "--epochs", "3", "--batch-size", "50", *FAST]
    validators = ["--val-fraction", "0.2", "--validator", "entropy", "--validator", "source_accuracy"]
    assert main([*train, *validators, "--run-dir", str(folder / "run")]) == 0
    return folder


def test_train_logs_scores_and_keeps_the_best_checkpoint(work, capsys) -> None:
    run = work / "run"
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all({"val_entropy", "val_source_accuracy"} <= set(r) for r in records)
    metrics = json.loads((run / "metrics.json").read_text())
    scores = [r["val_entropy"] for r in records if not r.get("final")]
    assert metrics["best"]["epoch"] == 1 + int(np.argmin(scores)) and metrics["best"]["validator"] == "entropy"
    assert metrics["best"]["checkpoint"] == str(run / "best.npz") and (run / "best.npz").is_file()
    overrides = json.loads((run / "overrides.json").read_text())
    assert overrides["val_fraction"] == 0.2 and overrides["validators"] == ["entropy", "source_accuracy"]


def test_eval_scores_the_best_checkpoint_as_training_did(work, capsys) -> None:
    capsys.readouterr()
    evaluate = ["eval", SPEC, "--checkpoint", str(work / "run" / "best.npz"), "--data", str(work / "moons.npz"), *FAST]
    assert main([*evaluate, "--validator", "entropy", "--val", str(work / "held.npz"), "--json"]) == 0
    values = json.loads(capsys.readouterr().out)
    best = json.loads((work / "run" / "metrics.json").read_text())["best"]
    assert values["val_entropy"] == pytest.approx(best["score"], rel=1e-12)  # the same target rows
    assert main([*evaluate, "--validator", "snd"]) == 0
    printed = capsys.readouterr().out
    assert "target_accuracy (oracle)" in printed and "val_snd" in printed


def test_resuming_a_run_folder_repeats_its_validation(work, capsys) -> None:
    resume = ["train", SPEC, "--resume", str(work / "run"), "--epochs", "3", "--batch-size", "50", "--quiet", *FAST]
    assert main(resume) == 0  # E806 if the validators and held-out rows were not recovered
    assert main([*resume, "--validator", "snd"]) == 1
    assert "E806" in capsys.readouterr().err


def test_train_prints_the_best_epoch_and_the_oracle(work, tmp_path, capsys) -> None:
    capsys.readouterr()
    train = ["train", SPEC, "--source", str(work / "moons.npz"), "--epochs", "2", "--batch-size", "75", *FAST]
    assert main([*train, "--val", str(work / "held.npz"), "--checkpoint", str(tmp_path / "run.npz")]) == 0
    out = capsys.readouterr().out
    assert "best by source_accuracy: epoch" in out and f"kept in {tmp_path / 'run.best.npz'}" in out
    assert "target_accuracy (oracle)" in out and (tmp_path / "run.best.npz").is_file()

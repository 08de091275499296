"""Sweeps on a real local Ray instance (two workers, started once for the module): trials trained by `fit` in their
folders, a failing setting recorded without stopping the sweep, an interrupted sweep resumed without running a
finished trial again, and the results aggregated and selected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spec_lang.diagnostics import SpecError
from spec_lang.experiments.runs import RunFolder
from spec_lang.experiments.sweep_results import Selector, selector
from spec_lang.experiments.sweep_spec import SweepDefinition
from spec_lang.experiments.sweeps import new_sweep, pending, read_outcome, run_sweep, run_trial
from spec_lang.training import Interrupted

ROOT = Path(__file__).resolve().parent.parent.parent
SPEC = ROOT / "examples" / "moons_dann.dann"


def test_a_sweep_records_failures_and_resumes_without_repeating_finished_trials(
    local_ray: None, moons: Path, tmp_path: Path
) -> None:
    # lambda_adapt=1e308 diverges (E805), a list is refused by the spec (E601): recorded, the sweep goes on
    definition = SweepDefinition(
        str(SPEC),
        {"lambda_adapt": [6, 1e308, [1, 2]]},
        seeds=[0, 1],
        epochs=2,
        batch_size=50,
        source=[str(moons)],
        validators=["snd"],  # beside the default selector, source_accuracy on a held-out tenth of the source
    )
    folder, plan = new_sweep(definition, tmp_path / "sweep", mode="FAST_COMPILE")
    assert len(plan["trials"]) == 6 and plan["per_epoch"] == 3 and plan["val_fraction"] == 0.1
    assert plan["selectors"] == ["source_accuracy", "snd"] and plan["computed"] == ["source_accuracy", "snd"]
    lines: list[str] = []
    first = run_sweep(folder, plan, workers=2, max_trials=1, say=lines.append)  # stopped after the first trial
    assert first.ended == 1 and pending(folder, plan) == list(range(1, 6))
    assert any("1 done, 0 running, 0 failed of 6] trial 0" in line for line in lines)

    def stop_at_step_4(info: dict) -> None:  # trial 1 interrupted mid-way, as a killed worker leaves it
        if info["step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        run_trial(plan, 1, callback=stop_at_step_4)
    finished = folder.trial(0)
    stamps = {p: p.stat().st_mtime_ns for p in (finished.metrics, finished.checkpoint, finished.log)}
    lines.clear()
    results = run_sweep(folder, plan, workers=2, say=lines.append)  # the resume: what has not ended
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # trial 0 was read back, not run again
    assert sum("started" in line for line in lines) == 5 and not any("trial 0 " in line for line in lines)
    resumed = json.loads(folder.trial(1).metrics.read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == 4 and resumed["final"]["step"] == 6
    epochs = [json.loads(line)["epoch"] for line in folder.trial(1).log.read_text().splitlines()]
    assert epochs == [1, 2, 2]  # the records of both epochs, the first from before the interruption, then the final
    statuses = [t["status"] for t in results.trials]
    assert statuses == ["completed"] * 2 + ["failed"] * 4 and results.ended == 6
    assert "E805" in results.trials[2]["error"] and "E601" in results.trials[4]["error"]
    assert results.selected == 0 and results.settings[0].completed == [0, 1]
    accuracies = [json.loads(folder.trial(i).metrics.read_text())["final"]["source_accuracy"] for i in (0, 1)]
    assert results.settings[0].summary["source_accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert {"val_source_accuracy", "val_snd", "target_accuracy"} <= set(results.settings[0].summary)
    assert results.document()["by_validator"]["snd"]["setting"] == 0  # the only setting that completed
    written = results.write(folder.path)
    assert [p.name for p in written] == ["results.json", "results.csv", "results.png"]
    rows = (folder.path / "results.csv").read_text().splitlines()
    assert rows[0].startswith("setting,lambda_adapt,seeds,failed,stopped,val_source_accuracy_mean") and len(rows) == 4


def test_selectors_are_validators_first_then_record_keys() -> None:
    assert selector("snd") == Selector("snd", "val_snd", True)
    assert selector("target_accuracy") == Selector("target_accuracy", "target_accuracy", True)  # the oracle, by name
    assert selector("domain_loss", ["domain_loss"]) == Selector("domain_loss", "domain_loss", False)
    with pytest.raises(SpecError, match=r"E820.*cannot select by 'snd2'") as caught:
        selector("snd2")
    assert caught.value.diagnostics[0].hint == "did you mean 'snd'?"


def test_distributions_are_drawn_samples_times_the_grid_the_same_each_time() -> None:
    parameters = {"lr": {"loguniform": [1e-4, 1e-1]}, "hp_lambda": [0.1, 1.0], "width": {"choice": [8, 16]}}
    definition = SweepDefinition("m.dann", parameters, samples=3)
    settings = definition.settings()
    assert len(settings) == 6 and settings == definition.settings()
    assert [s["hp_lambda"] for s in settings] == [0.1, 1.0] * 3
    assert all(1e-4 <= s["lr"] <= 1e-1 and s["width"] in (8, 16) for s in settings)
    assert len({s["lr"] for s in settings}) == 6  # each setting draws its own


def test_a_trial_that_failed_in_ray_is_run_again_on_resume_but_not_one_that_failed_in_specc(tmp_path: Path) -> None:
    ray_failure, specc_failure = RunFolder(tmp_path / "0"), RunFolder(tmp_path / "1")
    for folder, retry in ((ray_failure, True), (specc_failure, False)):
        folder.path.mkdir()
        (folder.path / "error.json").write_text(json.dumps({"status": "failed", "error": "…", "retry": retry}))
    assert read_outcome(ray_failure)["status"] == "failed" and read_outcome(ray_failure, retry=True) is None
    assert read_outcome(specc_failure, retry=True)["status"] == "failed"

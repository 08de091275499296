"""Running a sweep's trials on Ray Tune (the `sweep` extra: `pip install 'spec-lang[sweep]'`): one Tune trial per
specc trial, each a CPU's worth of work, trained by `sweeps.run_trial` in its own folder; a progress line per trial
event with the counts of trials done, running and failed; ASHA early stopping on the selector when asked."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spec_lang.diagnostics import file_error
from spec_lang.experiments.sweep_results import Selector
from spec_lang.experiments.sweeps import SweepFolder, read_outcome, run_trial
from spec_lang.files import write_atomic
from spec_lang.reports.plots import load_log

EXTRA_HINT = "install the extra: pip install 'spec-lang[sweep]' (Ray Tune)"


def require_ray() -> None:
    """E005 naming the extra when Ray Tune cannot be imported."""
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
    except ImportError:
        raise file_error(None, "E005", "specc sweep needs Ray Tune, which is not installed", EXTRA_HINT) from None


def _tune_trial(config: dict[str, Any], plan: dict[str, Any]) -> None:
    """A Tune trainable: trial `config["trial"]` of `plan`, each epoch's record reported to Tune."""
    from ray import tune

    run_trial(plan, config["trial"], report=tune.report)


def tune_trials(
    folder: SweepFolder,
    plan: dict[str, Any],
    trials: list[int],
    workers: int | None,
    address: str | None,
    asha: Selector | None,
    say: Callable[[str], None] | None,
) -> None:
    """Run `trials` of `plan` on Ray Tune, at most `workers` at once (default: the cluster's CPUs, or every core of
    a local instance started here and shut down after); `asha`: stop trials early by this selector."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's older output, which `verbose=0` silences
    logging.getLogger("ray.tune").setLevel(logging.ERROR)  # its hints name Tune's own resume, not --resume
    started = not ray.is_initialized()
    if started:
        cpus = None if address else workers or os.cpu_count() or 1
        ray.init(
            address=address, num_cpus=cpus, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
        )
    scheduler = None
    if asha is not None:
        # one report per epoch; past the last one, so that ASHA never stops a trial for reaching max_t, which would
        # cut off its last epoch's record before the trial writes its metrics
        beyond = -(-plan["total_steps"] // plan["per_epoch"]) + 1
        scheduler = ASHAScheduler(metric=asha.key, mode="max" if asha.higher_is_better else "min", max_t=beyond)
    progress = _Progress(folder, plan, say)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(_tune_trial, plan=plan), {"cpu": 1}),
        param_space={"trial": tune.grid_search(trials)},
        tune_config=tune.TuneConfig(max_concurrent_trials=workers, reuse_actors=True, scheduler=scheduler),
        run_config=tune.RunConfig(
            storage_path=str(folder.tune.resolve()),
            name=f"run-{len(list(folder.tune.glob('run-*'))) + 1}",  # one per invocation: the first, then resumes
            verbose=0,
            callbacks=[progress.callback()],
        ),
    )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Tune's own banners; specc's table keeps standard output
            tuner.fit()
    finally:
        if started:
            ray.shutdown()


class _Progress:
    """The trial events: a line each with the counts, and the record of a trial Tune ended without its own (stopped
    early by ASHA: `stopped.json`; failed outside specc's errors: `error.json`)."""

    def __init__(self, folder: SweepFolder, plan: dict[str, Any], say: Callable[[str], None] | None):
        self.folder, self.plan, self.say = folder, plan, say
        self.total = len(plan["trials"])
        ended = [read_outcome(folder.trial(i), retry=True) for i in range(self.total)]
        self.counts = {
            "done": sum(1 for o in ended if o is not None and o["status"] != "failed"),
            "running": 0,
            "failed": sum(1 for o in ended if o is not None and o["status"] == "failed"),
        }

    def callback(self) -> Any:
        from ray import tune

        progress = self

        class Callback(tune.Callback):
            def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                progress.started(trial.config["trial"])

            def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                progress.ended(trial.config["trial"], None)

            def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
                progress.ended(trial.config["trial"], _error_text(trial.error_file))

        return Callback()

    def started(self, index: int) -> None:
        self.counts["running"] += 1
        self._say(index, "started")

    def ended(self, index: int, error: str | None) -> None:
        self.counts["running"] -= 1
        folder = self.folder.trial(index)
        outcome = read_outcome(folder) if error is None else None
        if outcome is None:  # Tune ended it: ASHA stopped it, or it failed outside specc's own errors
            if error is None:
                records = load_log(folder.log) if folder.log.is_file() else []
                outcome = {"status": "stopped", "final": records[-1] if records else {}}
            else:
                outcome = {"status": "failed", "error": f"the trial failed in Ray: {error}", "retry": True}
            folder.path.mkdir(parents=True, exist_ok=True)
            write_atomic(folder.path / f"{'stopped' if error is None else 'error'}.json", json.dumps(outcome) + "\n")
        self.counts["failed" if outcome["status"] == "failed" else "done"] += 1
        detail = outcome["status"]
        if outcome["status"] == "failed":
            detail += ": " + outcome["error"].splitlines()[0]
        elif "seconds" in outcome:
            detail += f" in {outcome['seconds']} s"
        self._say(index, detail)

    def _say(self, index: int, event: str) -> None:
        if self.say is None:
            return
        trial = self.plan["trials"][index]
        values = " ".join(f"{n}={json.dumps(v)}" for n, v in self.plan["settings"][trial["setting"]].items())
        c = self.counts
        self.say(
            f"[{c['done']} done, {c['running']} running, {c['failed']} failed of {self.total}] trial {index} "
            f"({values}, seed {trial['seed']}) {event}"
        )


def _error_text(path: str | None) -> str:
    """The exception of a trial's error file (Tune's `error.txt`: a traceback, the exception last), or a note."""
    try:
        lines = [line for line in Path(path or "").read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError:
        return "no error file"
    return lines[-1].strip() if lines else "no error message"

"""Sweeps: every setting of the swept parameters trained once per seed, each such trial a run of specc's own `fit`
in a run folder of the sweep folder, scheduled by Ray Tune (`spec_lang.experiments.sweep_ray`), then aggregated
over the seeds and selected by a validator (`spec_lang.experiments.sweep_results`).

A sweep folder is `sweeps/MODEL/N/` (or `--out`) holding `sweep.json` (the plan: the definition, every setting and
the trials, written before any trial starts), `trials/NNNN/` (one run folder per trial, `runs.RunFolder`'s files,
and `error.json` for a trial that failed or `stopped.json` for one stopped early by ASHA), `tune/` (Ray Tune's own
records) and the results: `results.json`, `results.csv`, `results.png`.

Resuming reads the plan and the trial folders, never Tune's state: a trial with `metrics.json`, `error.json` or
`stopped.json` has ended and is read back, never run again; one with a checkpoint continues from it (`fit`'s resume,
bit for bit like an uninterrupted run); the others start afresh.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from spec_lang.diagnostics import SpecError, file_error
from spec_lang.experiments.runs import RunFolder, load_spec, new_run_folder
from spec_lang.experiments.sweep_results import Results, selector, summarise
from spec_lang.experiments.sweep_spec import SweepDefinition
from spec_lang.files import write_atomic
from spec_lang.lowering.passes import Optimizations
from spec_lang.training.dataset import Data, DataSet

SWEEPS = Path("sweeps")  # the default root of sweep folders, in the current folder
PLAN_VERSION = 1
DEFAULT_FRACTION = 0.1  # of the source held out for validators that read held-out rows, unless told otherwise
ENDED = ("metrics.json", "error.json", "stopped.json")  # a trial folder holding one of these has ended
Report = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class SweepFolder:
    """The files of one sweep folder."""

    path: Path

    @property
    def plan(self) -> Path:
        return self.path / "sweep.json"

    @property
    def tune(self) -> Path:
        return self.path / "tune"

    def trial(self, index: int) -> RunFolder:
        return RunFolder(self.path / "trials" / f"{index:04d}")

    def read_plan(self) -> dict[str, Any]:
        """The plan of a sweep folder; a folder without a readable one is an error (E821)."""
        try:
            plan = json.loads(self.plan.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            plan = None
        if not isinstance(plan, dict) or plan.get("version") != PLAN_VERSION:
            raise file_error(
                str(self.plan),
                "E821",
                f"cannot read the plan of the sweep folder {self.path}",
                "give a sweep folder written by `specc sweep`",
            )
        return plan


def plan_sweep(definition: SweepDefinition, folder: SweepFolder, mode: str, no_opt: list[str]) -> dict[str, Any]:
    """The plan of a new sweep: the definition with absolute paths, its settings, the trials (setting × seed, by
    index `setting * len(seeds) + k`), the backend, and the steps per epoch and in all (from the data, read and
    checked here, before any trial starts: E801)."""
    from spec_lang.training.trainer import check_data
    from spec_lang.training.validation import hold_out

    definition.check()
    spec = load_spec(definition.spec, definition.fixed)
    validation = _validation(definition, list(spec.program.losses))  # an unknown selector fails now (E820)
    known = list(spec.program.settings)
    for name in definition.parameters:
        if name not in known:
            load_spec(definition.spec, {**definition.fixed, name: 0})  # raises the E602 that names the parameters
    source = [str(Path(p).resolve()) for p in definition.source]
    target = None if definition.target is None else [str(Path(p).resolve()) for p in definition.target]
    prepared = check_data(spec.program, _data(source), None if target is None else _data(target))
    if validation["val_fraction"] is not None:  # the held-out rows are not trained on: fewer steps per epoch
        prepared, _ = hold_out(prepared, validation["val_fraction"], 0)
    per_epoch = math.ceil(prepared.rows[0] / definition.batch_size)
    total = definition.steps or per_epoch * (definition.epochs or 10)
    settings = definition.settings()
    absolute = {"spec": str(Path(definition.spec).resolve()), "source": source, "target": target, **validation}
    return {
        "version": PLAN_VERSION,
        **asdict(definition),
        **absolute,
        "mode": mode,
        "no_opt": no_opt,
        "folder": str(folder.path.resolve()),
        "losses": list(spec.program.losses),
        "per_epoch": per_epoch,
        "total_steps": total,
        "settings": settings,
        "trials": [{"setting": s, "seed": seed} for s in range(len(settings)) for seed in definition.seeds],
    }


def _validation(definition: SweepDefinition, losses: list[str]) -> dict[str, Any]:
    """The validators each trial computes (those of the selectors; the oracle is recorded anyway) and their
    held-out source rows: the definition's, else a tenth of the source when a validator reads held-out rows."""
    from spec_lang.library.validators import VALIDATORS
    from spec_lang.training.validation import check_fraction, resolve

    names = list(dict.fromkeys([definition.select_by, *definition.validators]))
    selectors = [selector(name, losses) for name in names]
    computed = [kind.name for kind in resolve([n for n in names if n in VALIDATORS]) if not kind.oracle]
    held_out = any("source_labels" in VALIDATORS[name].needs for name in computed)
    fraction = definition.val_fraction
    if fraction is None and definition.val is None and held_out:
        fraction = DEFAULT_FRACTION
    if fraction is not None:
        check_fraction(fraction)
    if definition.val is not None and not Path(definition.val).is_file():
        raise file_error(definition.val, "E801", "cannot read the validation data: no such file", "check the path")
    return {
        "selectors": [s.name for s in selectors],
        "computed": computed,
        "val": None if definition.val is None else str(Path(definition.val).resolve()),
        "val_fraction": fraction,
    }


def _data(paths: list[str]) -> Data:
    """Data files as `fit` takes them: one for every source (target), or a list of one per source (target)."""
    return paths[0] if len(paths) == 1 else list[DataSet](paths)


def new_sweep(
    definition: SweepDefinition,
    out: str | Path | None = None,
    *,
    mode: str = "NUMBA",
    no_opt: list[str] | None = None,
    asha: bool = False,
) -> tuple[SweepFolder, dict[str, Any]]:
    """A new sweep folder (`out`, else `sweeps/MODEL/N`) with its plan written (`mode`: a PyTensor mode, `no_opt`:
    optimisations switched off, `asha`: whether it stops trials early); nothing is trained yet."""
    name = Path(definition.spec).stem
    folder = SweepFolder(Path("."))  # the plan's `folder` is set once the folder exists
    plan = plan_sweep(definition, folder, mode, list(no_opt or []))
    folder = SweepFolder(new_run_folder(name, out, root=SWEEPS).path)
    plan["folder"], plan["asha"] = str(folder.path.resolve()), asha
    write_atomic(folder.plan, json.dumps(plan, indent=2) + "\n")
    return folder, plan


def read_outcome(folder: RunFolder, retry: bool = False) -> dict[str, Any] | None:
    """How a trial ended, read from its folder (`completed` with its final record, `failed` with its error,
    `stopped` early with its last record), or None when it has not ended. `retry`: a trial that failed in Ray rather
    than in specc (a lost worker: `"retry": true`) counts as not ended, so that resuming runs it again."""
    for name in ENDED:
        path = folder.path / name
        if path.is_file():
            try:
                outcome = dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                return None  # written atomically: a file that cannot be read is not one of ours; run the trial
            return None if retry and outcome.get("retry") else outcome
    return None


def run_trial(plan: dict[str, Any], index: int, report: Report | None = None, callback: Report | None = None) -> dict:
    """Train trial `index` of a plan in its folder, or continue it from its checkpoint, or read it back when it has
    ended; `report` receives each epoch's record (with `trial`), `callback` is `fit`'s. A `SpecError` (a parameter
    value the spec refuses, a run that diverges: E805) ends the trial as failed, with its message in `error.json`.
    Returns the outcome (`read_outcome`)."""
    folder = SweepFolder(Path(plan["folder"])).trial(index)
    ended = read_outcome(folder, retry=True)
    if ended is not None:
        return ended
    folder.path.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        outcome = _train(plan, index, folder, report, callback)
    except SpecError as error:
        outcome = {"status": "failed", "error": error.render()}
    outcome["seconds"] = round(time.perf_counter() - started, 2)
    name = "metrics.json" if outcome["status"] == "completed" else "error.json"
    write_atomic(folder.path / name, json.dumps(outcome, indent=2) + "\n")
    return outcome


def _train(
    plan: dict[str, Any], index: int, folder: RunFolder, report: Report | None, callback: Report | None
) -> dict[str, Any]:
    from spec_lang.runtime.checkpoint import read_checkpoint

    trial = plan["trials"][index]
    setting, seed = plan["settings"][trial["setting"]], trial["seed"]
    overrides = {**plan["fixed"], **setting}
    spec = load_spec(plan["spec"], overrides, seed)
    resume = folder.checkpoint.is_file()
    saved = read_checkpoint(folder.checkpoint, spec.program) if resume else None
    if not resume:
        given = {"set": overrides, "seed": seed, "init_seed": spec.program.seed}
        folder.record(spec, {**given, "source": plan["source"], "target": plan["target"]})
    epochs = _Epochs(folder.log, plan["per_epoch"], index, report, callback)
    if saved is not None:
        epochs.replay(saved.meta["history"])
    model = spec.compile(plan["mode"], Optimizations.parse(plan["no_opt"]))
    every = plan["per_epoch"] if plan["per_epoch"] < plan["total_steps"] else None
    history = model.fit(
        _data(plan["source"]),
        None if plan["target"] is None else _data(plan["target"]),
        steps=plan["total_steps"],
        batch_size=plan["batch_size"],
        seed=seed,
        log=folder.log,
        checkpoint=folder.checkpoint,
        checkpoint_every=every,
        resume=resume,
        overwrite=True,
        callback=epochs,
        **(
            {"validation": plan["val"] or plan["val_fraction"], "validators": plan["computed"]}
            if plan["computed"]
            else {}
        ),
    )
    final = history.final
    assert final is not None  # `fit` returns when training ended, with its final record
    epochs.finish(final)
    values = {k: v for k, v in final.items() if k not in ("final", "status")}
    resumed = {"resumed_from_step": saved.meta["step"]} if saved is not None else {}
    return {"status": "completed", "setting": trial["setting"], "seed": seed, "final": values, **resumed}


class _Epochs:
    """`fit`'s callback that hands each epoch's record, read from the run's log as the loop writes it, to `report`
    (Ray Tune's), then calls the caller's own callback."""

    def __init__(self, log: Path, per_epoch: int, trial: int, report: Report | None, callback: Report | None):
        self.log, self.per_epoch, self.trial, self.report, self.callback = log, per_epoch, trial, report, callback
        self.reported = 0  # the step of the last record reported

    def __call__(self, info: dict[str, Any]) -> None:
        if self.report is not None and info["step"] % self.per_epoch == 0:
            lines = self.log.read_text(encoding="utf-8").splitlines()
            self._send(json.loads(lines[-1]))
        if self.callback is not None:
            self.callback(info)

    def replay(self, records: list[dict[str, Any]]) -> None:
        """Report the records of the run a trial resumes, so that a scheduler counts its epochs from the start."""
        for record in records:
            self._send(record)

    def finish(self, final: dict[str, Any]) -> None:
        """Report the last record when no epoch ended with it (a run of --steps)."""
        if final["step"] > self.reported:
            self._send(final)

    def _send(self, record: dict[str, Any]) -> None:
        if self.report is None or record.get("step", 0) <= self.reported:
            return
        self.reported = record["step"]
        numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.report({**numbers, "trial": self.trial})


def pending(folder: SweepFolder, plan: dict[str, Any]) -> list[int]:
    """The trials that have not ended (or failed in Ray, to run again), in order."""
    return [index for index in range(len(plan["trials"])) if read_outcome(folder.trial(index), retry=True) is None]


def run_sweep(
    folder: SweepFolder,
    plan: dict[str, Any],
    *,
    workers: int | None = None,
    address: str | None = None,
    max_trials: int | None = None,
    asha: bool = False,
    say: Callable[[str], None] | None = None,
) -> Results:
    """Run the trials of a sweep folder that have not ended (at most `max_trials` of them) on Ray Tune: a local
    Ray instance of `workers` CPUs (default: every core) started for the call, or the cluster at `address`, or
    the instance already started in this process. `asha`: stop trials early by ASHA on the selector. `say`
    receives a line per trial event. Returns the results of every trial that has ended, aggregated and selected.
    Without Ray installed, E005."""
    todo = pending(folder, plan)[:max_trials]
    selectors = [selector(name, plan["losses"]) for name in plan["selectors"]]
    if todo:
        from spec_lang.experiments import sweep_ray

        sweep_ray.require_ray()
        sweep_ray.tune_trials(folder, plan, todo, workers, address, selectors[0] if asha else None, say)
    outcomes = {index: read_outcome(folder.trial(index)) for index in range(len(plan["trials"]))}
    return summarise(plan, outcomes, selectors)

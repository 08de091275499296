"""The training loop: paired source/target batches (`sampler`), schedules fed with the training progress, metrics
per epoch (`evaluation`), a JSON-lines log (`history`), checkpoints and bit-identical resuming.

Before each step the training progress is set to `step / total steps`, which schedules follow, and the stage of
training to the one that runs the current epoch (`Program.stage_at`: stages measure epochs). A checkpoint holds
the model's state, the sampler's state, the step, the history so far and the run's settings; resuming compares the
settings and puts everything back, so the run ends with exactly the parameters of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from spec_lang import program as P
from spec_lang.diagnostics import SpecError, file_error
from spec_lang.files import check_output, exclusive
from spec_lang.runtime.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from spec_lang.training.dataset import Data, Prepared, prepare
from spec_lang.training.display import Display
from spec_lang.training.evaluation import Evaluator
from spec_lang.training.history import History, Log
from spec_lang.training.interrupts import Abort, Interrupted, stop_signals
from spec_lang.training.protocol import Model, prepare_step
from spec_lang.training.roles import infer_roles
from spec_lang.training.sampler import Sampler
from spec_lang.training.validation import Validation, best_path, validation_for

RUN_HINT = (
    "pass --resume to continue the run that wrote it, --force to start a new run over it (overwrite=True "
    "in Python), or choose another path"
)


def fit(
    model: Model,
    source: Data,
    target: Data | None = None,
    *,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    log: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    validation: Data | float | None = None,
    validators: Sequence[str] = (),
    target_labels: str | None | bool = None,
    label_head: str | None = None,
    domain_head: str | None = None,
    target_input: str | None = None,
    verbose: bool | TextIO = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> History:
    """Train `model` from its current parameters (see `spec_lang.training.roles` for the roles of its inputs,
    `sampler` for the batches, `evaluation` for the records).

    `epochs` (default 10) or `steps` sets the length; `seed` the batch order (the program's own `seed` draws the
    initial weights; the checkpoint's run settings record it as `init_seed`). `log`: a JSON-lines file, one record
    per epoch and a final record. `checkpoint`: a `.npz` written every `checkpoint_every` steps and at the end;
    `resume=True` continues the run saved there, ending with exactly the parameters of an uninterrupted run.
    Existing log and checkpoint files of a new run are refused unless `overwrite`. `verbose`: True or a stream
    for progress output. `callback(info)` runs after every step with the step's losses.

    `validation`: held-out labelled source rows (a data set), or the fraction of each source's rows to hold out
    (chosen by `seed`, not trained on); `validators`: names of `spec_lang.library.validators.VALIDATORS`, each one's
    score recorded per epoch as `record_key(name)` (`val_NAME`), the first the selector (`source_accuracy` when only
    `validation` is given): `History.best` names the record it scores best, and with a checkpoint path the model of
    that record is kept in `best_path(checkpoint)` (`best.npz` beside `checkpoint.npz`).

    A non-finite loss stops training with an error naming the step and the term; the last checkpoint written stays
    as it was. SIGINT/SIGTERM (or KeyboardInterrupt from `callback`) stop after the current step, write a
    checkpoint and raise `Interrupted`.
    """
    batch_size, checkpoint_every = _check_options(epochs, steps, batch_size, seed, checkpoint, checkpoint_every, resume)
    roles = infer_roles(model, label_head, domain_head, target_input)
    data = prepare(model, roles, source, target, target_labels, strict=True)
    data, checked = validation_for(model, roles, data, validation, validators, int(seed), batch_size)
    sampler = Sampler(data.rows, batch_size, int(seed))
    total = (
        _positive(steps, "steps")
        if steps is not None
        else sampler.per_epoch * _positive(10 if epochs is None else epochs, "epochs")
    )
    settings = {
        "batch_size": batch_size,
        "seed": int(seed),
        "init_seed": model.program.seed,  # recorded so that `eval` can recover a seed given on the command line
        "total_steps": total,
        "data": data.fingerprint(),
        "source_inputs": list(roles.source_inputs),
        "target_inputs": list(roles.target_inputs),
        **(checked.settings() if checked is not None else {}),
    }
    stream = sys.stderr if verbose is True else (verbose or None)
    run = _Run(
        model,
        data,
        Evaluator(model, roles),
        sampler,
        total,
        settings,
        None if checkpoint is None else Path(checkpoint),
        Log(None if log is None else Path(log)),
        Display(stream, total, sampler.per_epoch, list(model.program.losses)),
        checked,
    )
    with exclusive(run.checkpoint, [run.log.path, run.best]):
        if resume:
            run.resume()
        else:
            run.start(overwrite)
        return run.train(checkpoint_every, callback)


@dataclass(frozen=True)
class _Snapshot:
    """A run's state taken at one step: the model's (copies), the counters and history, the sampler's arrays."""

    program: P.Program
    state: tuple[dict[str, np.ndarray], dict[str, Any]]
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return self.state


class _Run:
    """One training run: the model, its data, batches and metrics, the step counter, the history, the log file
    and the checkpoint file."""

    def __init__(
        self,
        model: Model,
        data: Prepared,
        evaluate: Evaluator,
        sampler: Sampler,
        total: int,
        settings: dict[str, Any],
        checkpoint: Path | None,
        log: Log,
        display: Display,
        validation: Validation | None = None,
    ):
        self.model, self.data, self.evaluate, self.sampler, self.total = model, data, evaluate, sampler, total
        self.settings = settings  # what a resumed run must share with the run it continues
        self.checkpoint, self.log, self.display = checkpoint, log, display
        self.history = History(checkpoint=checkpoint)
        self.step = 0
        self.pending: _Snapshot | None = None  # a periodic checkpoint, written once the next step is sound
        self.validation = validation
        self.best = best_path(checkpoint) if validation is not None and checkpoint is not None else None

    def start(self, overwrite: bool) -> None:
        """A new run: existing checkpoint and log files are refused unless `overwrite`; the log starts empty."""
        for path in (self.checkpoint, self.log.path, self.best):
            if path is not None:
                check_output(path, overwrite, RUN_HINT)
        self.log.write([])

    def resume(self) -> None:
        """Continue the run saved in the checkpoint: the same settings are required; the model, the sampler, the
        step and the history (and the log) are put back."""
        path = self.checkpoint
        assert path is not None  # fit requires a checkpoint path to resume
        if not path.is_file():
            raise file_error(
                str(path), "E803", f"cannot resume: {path} does not exist", "drop --resume to start a new run"
            )
        saved = read_checkpoint(path, self.model.program)  # its structure checked (E803), its spec too (E804)
        if not saved.holds_run:
            raise saved.invalid("it holds a model but no training run to resume")
        stored = saved.meta["run"]
        changed = [k for k in self.settings if stored.get(k) != self.settings[k]]
        if changed:
            described = "; ".join(
                f"{k}: {_short(stored.get(k))} in the checkpoint, {_short(self.settings[k])} now" for k in changed
            )
            raise file_error(
                str(path),
                "E806",
                f"cannot resume from {path}: the run differs ({described})",
                "resume with the same data, batch size, seed and epochs/steps",
            )
        if self.log.path is not None and not self.log.is_log():
            raise file_error(
                str(self.log.path),
                "E002",
                "the file is not a training log, and resuming would replace it",
                "name the run's own log with --log, or leave --log out",
            )
        problem = self._resume_problem(saved)
        if problem is not None:
            raise saved.invalid(problem)
        saved.restore(self.model)  # checked against the model first: a checkpoint that does not fit changes nothing
        self.step = saved.meta["step"]
        self.sampler.restore(saved.meta, saved.run_arrays)
        self.history.records = list(saved.meta["history"])
        for record in self.history.records:
            self._better(record)
        self.log.write(self.history.records)

    def _resume_problem(self, saved: Checkpoint) -> str | None:
        """What in a checkpoint of this run's settings does not fit its data and length, or None; the checkpoint's
        own structure is `read_checkpoint`'s to check, its fit with the model `Checkpoint.restore`'s."""
        step = saved.meta["step"]
        if step > self.total:
            return f"its step {step} is past the run's {self.total} steps"
        return self.sampler.problem(step, saved.meta, saved.run_arrays)

    def train(self, checkpoint_every: int | None, callback: Callable[[dict[str, Any]], None] | None) -> History:
        """Step to the end and return the history; after a stop, write a checkpoint and raise `Interrupted`."""
        with stop_signals() as stop:
            try:
                while self.step < self.total:
                    if stop.signal is not None:
                        raise KeyboardInterrupt
                    losses = self._train_step()
                    if self.pending is not None:  # this step started from it, and its losses are finite
                        self._write(self.pending)
                        self.pending = None
                    if checkpoint_every and self.step % checkpoint_every == 0 and self.step < self.total:
                        self.pending = self._snapshot()
                    if callback is not None:
                        callback(
                            {
                                "step": self.step,
                                "epoch": self.sampler.epoch,
                                "progress": self.step / self.total,
                                **losses,
                            }
                        )
            except Abort:
                raise
            except KeyboardInterrupt:  # asked for by a signal, between steps, or raised by the callback
                interrupted = True
            else:
                interrupted = False
        if interrupted:
            self._save()
            self.history.final = {**self._record(), "final": True, "status": "interrupted"}
            self.log.append(self.history.final)
            self.model.set_progress(self.step / self.total)
            raise Interrupted(self.history, self.step, self.total, stop.signal)
        if not self.history.records or self.history.records[-1]["step"] != self.step:
            self._epoch_record()
        self.model.set_progress(self.step / self.total)
        self.history.final = {**self.history.records[-1], "final": True, "status": "completed"}
        self._save()
        self.log.append(self.history.final)
        return self.history

    def _train_step(self) -> dict[str, float]:
        """One optimiser step on the next batch; a non-finite loss is an error. Returns the step's losses."""
        batch = self.data.batch(self.sampler.batch())
        prepare_step(self.model, self.step, self.total, self.sampler.per_epoch)
        losses = self.model.train_step(**batch)
        terms = [k for k in losses if k != "objective"] + ["objective"]
        bad = next((k for k in terms if not math.isfinite(losses[k])), None)
        if bad is not None:
            raise self._diverged(
                self.step + 1, "objective" if bad == "objective" else f"loss term '{bad}'", f"{losses[bad]}"
            )
        self.step += 1
        self.sampler.advance()
        self.display.step(self.sampler.epoch, self.step, losses, self.evaluate.schedule_values)
        if self.sampler.epoch_done:
            self._epoch_record()
        return losses

    def _epoch_record(self) -> None:
        """Record the metrics now: in the history, the log and the progress output."""
        self.history.records.append(self._record())
        self.log.append(self.history.records[-1])
        self.display.record(self.history.records[-1])
        if self._better(self.history.records[-1]) and self.best is not None:
            snapshot = self._snapshot()
            write_checkpoint(self.best, snapshot, snapshot.meta, snapshot.arrays)

    def _better(self, record: dict[str, Any]) -> bool:
        """Whether the selector scores `record` better than every earlier one; if so, `History.best` names it."""
        best = None if self.validation is None else self.validation.best(record, self.history.best, self.best)
        self.history.best = best or self.history.best
        return best is not None

    def _record(self) -> dict[str, Any]:
        """The metrics on the whole data at the current step; a non-finite loss is an error."""
        self.model.set_progress(self.step / self.total)
        values = self.evaluate(self.data)
        if self.validation is not None:
            values.update(self.validation.scores(self.evaluate.apply, self.data, self.step, self.total))
            self.model.set_progress(self.step / self.total)  # reverse validation trains a copy from progress 0
        bad = next((k for k in self.model.program.losses if not math.isfinite(values.get(k, 0.0))), None)
        if bad is not None or not math.isfinite(values.get("objective", 0.0)):
            term = bad or "objective"
            raise self._diverged(self.step, f"loss term '{term}'", f"{values.get(term)}", "on the whole data")
        return {"epoch": self.sampler.epoch, "step": self.step, "progress": self.step / self.total, **values}

    def _save(self) -> None:
        """Write a checkpoint of this step, if the run has a checkpoint path; non-finite parameters are an error
        (the last good checkpoint stays)."""
        if self.checkpoint is not None:
            self._write(self._snapshot())

    def _snapshot(self) -> _Snapshot:
        """The run's state now, to be written as a checkpoint (the periodic ones once the next step shows it sound:
        its losses, computed from this state, are finite). Non-finite parameters are an error."""
        bad = [n for n, v in self.model.parameters.items() if not np.isfinite(v).all()]
        if bad:
            raise self._diverged(self.step, f"parameter '{bad[0]}'", "not finite")
        sampler_meta, sampler_arrays = self.sampler.state()
        meta = {"run": self.settings, "step": self.step, **sampler_meta, "history": list(self.history.records)}
        arrays = {name: np.array(value) for name, value in sampler_arrays.items()}
        return _Snapshot(self.model.program, self.model.state_dict(), meta, arrays)

    def _write(self, snapshot: _Snapshot) -> None:
        if self.checkpoint is not None:
            write_checkpoint(self.checkpoint, snapshot, snapshot.meta, snapshot.arrays)

    def _diverged(self, step: int, what: str, value: str, where: str = "") -> SpecError:
        """The error for a non-finite value at `step`, after a final "diverged" record in the log."""
        epoch = self.sampler.epoch
        self.log.append(
            {"final": True, "status": "diverged", "step": step, "epoch": epoch, "term": what, "value": value}
        )
        kept = (
            f"the last good checkpoint, {self.checkpoint}, was kept"
            if self.checkpoint is not None and self.checkpoint.exists()
            else "no checkpoint was written"
        )
        return file_error(
            None,
            "E805",
            f"training diverged at step {step} (epoch {epoch}): {what} is {value}" + (f" {where}" if where else ""),
            f"{kept}; lower the learning rate or clip gradients (clip_norm) and train again",
        )


def _check_options(
    epochs: int | None,
    steps: int | None,
    batch_size: int,
    seed: int,
    checkpoint: str | os.PathLike | None,
    checkpoint_every: int | None,
    resume: bool,
) -> tuple[int, int | None]:
    """Errors in the options that need no data (E802); the batch size and `checkpoint_every` as ints."""
    if epochs is not None and steps is not None:
        raise file_error(
            None,
            "E802",
            "give epochs or steps, not both",
            "epochs count passes over the source data, steps count batches: choose one",
        )
    batch_size = _positive(batch_size, "the batch size")
    if checkpoint_every is not None:
        checkpoint_every = _positive(checkpoint_every, "checkpoint_every")
        if checkpoint is None:
            raise file_error(None, "E802", "checkpoint_every needs a checkpoint path", "pass --checkpoint PATH")
    if resume and checkpoint is None:
        raise file_error(None, "E802", "resume needs the checkpoint to resume from", "pass --checkpoint PATH")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        huge = isinstance(seed, int) and abs(seed) >= 2**64  # its repr may be thousands of digits, or refused
        shown = ("a negative number" if seed < 0 else "a larger number") if huge else repr(seed)[:40]
        raise file_error(
            None, "E802", f"the seed must be a whole number from 0 to 2**63 - 1, got {shown}", "e.g. seed=0"
        )
    return batch_size, checkpoint_every


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise file_error(
            None, "E802", f"{what} must be a whole number of at least 1, got {value!r}", "e.g. 1, 32 or 100"
        )
    return int(value)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 24 else text[:12] + "…"

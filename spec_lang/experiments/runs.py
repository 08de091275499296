"""Run folders: where `specc train` writes a run unless told otherwise, and how a trained run is read back.

A run folder is `runs/MODEL/N/` (N the next free whole number, taken with `os.mkdir`, so two runs started at once
never share one) holding

* `spec.dann`: the spec as trained, printed canonically, with the `--set` overrides and the `--seed` applied;
* `overrides.json`: what the command line changed: `set` (the `--set` values), `seed` (`--seed`, or null),
  `init_seed` (the seed that drew the initial weights) and the data files: `source` and `target`, lists of paths
  (one per source and per target, or one for all; `target` null when not given), single paths in older folders;
  with validators, `val`, `val_fraction` and `validators` as given (a resumed run repeats them);
* `log.jsonl`, `checkpoint.npz`, `history.png` (with `--plot`), `metrics.json` (the final record and the seeds; with
  validators, `best`: the selector's best epoch), `best.npz` (with validators: that epoch's checkpoint).

A multi-seed run (`--seeds 0,1,2`) is one such folder per seed, `runs/MODEL/N/seed-0/`, …, under a parent folder
that holds the aggregate (`spec_lang.experiments.seeds`).

`eval`, `predict` and `--resume` take a run folder or a checkpoint and recover the overrides it was trained with
(`load_trained`): the checkpoint's header stores every parameter's value (`settings`) and the initialisation seed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spec_lang.api import Spec, from_ir
from spec_lang.diagnostics import file_error
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY
from spec_lang.files import write_atomic
from spec_lang.program.fingerprint import fingerprint
from spec_lang.syntax import ir
from spec_lang.syntax.printer import format_model
from spec_lang.syntax.sources import parse_source, read_source

if TYPE_CHECKING:
    from spec_lang.runtime.checkpoint import Checkpoint

RUNS = Path("runs")  # the default root of run folders, in the current folder
MAX_RUNS = 1_000_000  # folders 1 … MAX_RUNS; past that the root is a mistake, not a history


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder."""

    path: Path

    @property
    def spec(self) -> Path:
        return self.path / "spec.dann"

    @property
    def overrides(self) -> Path:
        return self.path / "overrides.json"

    @property
    def log(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.npz"

    @property
    def plot(self) -> Path:
        return self.path / "history.png"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    def seed(self, seed: int) -> RunFolder:
        """The folder of one seed of a multi-seed run, created (it must not exist)."""
        folder = RunFolder(self.path / f"seed-{seed}")
        _make(folder.path)
        return folder

    def record(self, spec: Spec, overrides: dict[str, Any]) -> None:
        """Write the resolved spec and the overrides, before training starts."""
        write_atomic(self.spec, format_model(spec.model))
        write_atomic(self.overrides, json.dumps(overrides, indent=2) + "\n")

    def read_overrides(self) -> dict[str, Any]:
        """The `overrides.json` of a run folder; a missing or unreadable one is an error (E803)."""
        try:
            values = json.loads(self.overrides.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            values = None
        if not isinstance(values, dict) or not isinstance(values.get("set", {}), dict):
            raise file_error(
                str(self.overrides),
                "E803",
                f"cannot read the overrides of the run folder {self.path}",
                "give a run folder written by `specc train`, or the checkpoint itself",
            )
        return values

    def data_files(self) -> tuple[list[str] | None, list[str] | None]:
        """The `source` and `target` files of `overrides.json` as lists (a single path in folders written before
        `--source` was repeatable), or None when not recorded."""
        values = self.read_overrides()
        found = [values.get(key) for key in ("source", "target")]
        files = [[f] if isinstance(f, str) else f for f in found]
        if any(f is not None and not (isinstance(f, list) and all(isinstance(p, str) for p in f)) for f in files):
            raise file_error(
                str(self.overrides),
                "E803",
                f"cannot read the data files of the run folder {self.path}: `source` and `target` are not paths",
                "give --source (and --target) on the command line",
            )
        return files[0], files[1]


def new_run_folder(model: str, chosen: str | os.PathLike | None = None, root: Path = RUNS) -> RunFolder:
    """A new, empty run folder: `chosen` (created; an existing non-empty folder is refused, E002), else
    `root/MODEL/N` for the next free N (created with `os.mkdir`, which fails when another run took N first)."""
    if chosen is not None:
        path = Path(chosen)
        if path.is_dir() and not any(path.iterdir()):
            return RunFolder(path)
        _make(path)
        return RunFolder(path)
    parent = root / model
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise file_error(
            str(parent), "E002", f"cannot create the run folder: {error.strerror}", "pass --run-dir"
        ) from None
    taken = [int(p.name) for p in parent.iterdir() if p.name.isdigit()]
    number = max(taken, default=0) + 1
    while number <= MAX_RUNS:
        try:
            os.mkdir(parent / str(number))
            return RunFolder(parent / str(number))
        except FileExistsError:
            number += 1  # another run took it between the listing and now
    raise file_error(str(parent), "E002", f"{parent} holds {MAX_RUNS} runs", "pass --run-dir, or clear old runs")


def _make(path: Path) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        raise file_error(
            str(path), "E002", "the run folder already exists", "choose another --run-dir, or leave it out"
        ) from None
    except OSError as error:
        raise file_error(
            str(path), "E002", f"cannot create the run folder: {error.strerror}", "check the path"
        ) from None


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint a path names: a run folder's `checkpoint.npz`, or the file itself. A multi-seed run's parent
    folder names no single checkpoint (E802)."""
    target = Path(path)
    if not target.is_dir():
        return target
    if not (target / "checkpoint.npz").exists() and any(target.glob("seed-*")):
        seeds = sorted(p.name for p in target.glob("seed-*"))
        raise file_error(
            str(target),
            "E802",
            f"{target} holds a run per seed ({', '.join(seeds)})",
            f"name one of them, e.g. {target / seeds[0]}",
        )
    return RunFolder(target).checkpoint


def load_spec(
    file: str | os.PathLike,
    overrides: dict[str, object],
    seed: int | None = None,
    *,
    allow_outside: bool = False,
    max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY,
    strict: bool = False,
) -> Spec:
    """The checked spec of `file` with parameter `overrides` and, when `seed` is given, the initialisation seed
    `seed` in place of the spec's own `seed` statement (`spec_lang.api.from_ir` for the options)."""
    source = read_source(file)
    model = parse_source(source)
    if seed is not None:
        model = replace(model, seed=ir.literal(seed))
    return from_ir(
        model,
        source,
        allow_outside=allow_outside,
        max_parameter_memory=max_parameter_memory,
        strict=strict,
        **overrides,
    )


def recovered(saved: Checkpoint, spec: Spec, given: dict[str, object]) -> tuple[dict[str, object], int | None]:
    """The overrides and initialisation seed a checkpoint was trained with that differ from `spec` (loaded with the
    overrides `given` on the command line, which win): the parameters of its header's `settings`, the seed of its
    run (`run.init_seed`). Nothing when the checkpoint was written for `spec` itself."""
    if saved.meta["spec_hash"] == fingerprint(spec.program) or saved.meta["model"] != spec.program.name:
        return {}, None
    now = json.loads(json.dumps(spec.program.settings, default=repr))
    values = {
        name: value
        for name, value in saved.meta["settings"].items()
        if name not in given and name in now and now[name] != value
    }
    seed = saved.meta.get("run", {}).get("init_seed")
    return values, seed if isinstance(seed, int) and seed != spec.program.seed else None


def load_trained(
    file: str | os.PathLike,
    checkpoint: str | os.PathLike,
    given: dict[str, object],
    *,
    allow_outside: bool = False,
    max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY,
    strict: bool = False,
) -> tuple[Spec, Checkpoint, str]:
    """The spec of `file` as a checkpoint (or run folder) was trained with, the checkpoint checked against it, and a
    note of what was recovered ("" when nothing was): the `given` overrides, then those recovered from the
    checkpoint (`recovered`). A checkpoint of another spec is refused (E804), before anything is compiled."""
    from spec_lang.runtime.checkpoint import read_checkpoint

    path = checkpoint_path(checkpoint)
    options: dict[str, Any] = {
        "allow_outside": allow_outside,
        "max_parameter_memory": max_parameter_memory,
        "strict": strict,
    }
    spec = load_spec(file, given, **options)
    saved = read_checkpoint(path)
    values, seed = recovered(saved, spec, given)
    if values or seed is not None:
        spec = load_spec(file, {**given, **values}, seed, **options)
    if saved.meta["spec_hash"] != fingerprint(spec.program):
        read_checkpoint(path, spec.program)  # raises the error naming what differs (E804)
    shown = [f"--set {n}={json.dumps(v)}" for n, v in values.items()] + ([f"--seed {seed}"] if seed is not None else [])
    return spec, saved, f"recovered {' '.join(shown)} from {path}" if shown else ""

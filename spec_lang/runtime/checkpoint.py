"""Checkpoints: everything a training run needs to continue bit for bit, in one `.npz` file written atomically.

A checkpoint holds the parameters (running statistics included), the optimiser's state, the training progress,
the run-time parameters, the state of every random generator of the training graph (dropout), the step and
epoch counters with the batch sampler's state and the run's history so far, the hash of the checked spec
(`spec_hash`: `spec_lang.program.fingerprint.fingerprint`, its parameters' values included) and a sha256 checksum
over every array stored (`fingerprint.digest`). Reading checks the checksum and the spec: a corrupt or truncated
file, or a checkpoint of another spec, is an error (E803, E804) and is never loaded. The model is anything with a
`program` and `state_dict`/`load_state_dict` (`Stateful`); this module never imports it.

>>> import tempfile, pathlib, spec_lang
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> path = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
>>> write_checkpoint(path, model, {"step": 0})
>>> read_checkpoint(path, model.program).meta["step"]
0
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from spec_lang.diagnostics import file_error
from spec_lang.files import write_atomic
from spec_lang.program import Program
from spec_lang.program.fingerprint import digest, fingerprint

FORMAT = "specc-checkpoint/1"
META, CHECKSUM = "__meta__", "__checksum__"


class Saveable(Protocol):
    """What a checkpoint saves: a compiled program's training state (see `CompiledProgram`), or one taken earlier."""

    @property
    def program(self) -> Program: ...

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...


class Stateful(Saveable, Protocol):
    """What a checkpoint saves and restores."""

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None: ...


def write_checkpoint(
    path: str | os.PathLike, model: Saveable, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> None:
    """Write the model's state (`state_dict`), `meta` (JSON-able: counters, history…) and extra `arrays` (the
    sampler's order) to `path`, atomically: a temporary file in the same folder, flushed to disk, then renamed over
    `path`."""
    state, model_meta = model.state_dict()
    stored = {**state, **{f"run/{n}": np.asarray(v) for n, v in (arrays or {}).items()}}
    header = {
        "format": FORMAT,
        "model": model.program.name,
        "spec_hash": fingerprint(model.program),
        "settings": {k: _jsonable(v) for k, v in model.program.settings.items()},
        **model_meta,
        **meta,
    }
    stored[META] = np.array(json.dumps(header))
    stored[CHECKSUM] = np.array(digest(stored))
    # numpy's stub takes the keywords for `allow_pickle` (a bool) too; they are arrays by name
    write_atomic(path, lambda stream: np.savez(stream, **stored))  # type: ignore[arg-type]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (bool, int, float, str)) or value is None else repr(value)


@dataclass
class Checkpoint:
    """A checkpoint read back: its JSON header (`meta`), the model's arrays and the run's extra arrays."""

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def run_arrays(self) -> dict[str, np.ndarray]:
        return {n.partition("/")[2]: v for n, v in self.arrays.items() if n.startswith("run/")}

    def restore(self, model: Stateful) -> None:
        """Put the model's parameters, optimiser state, progress, run-time parameters and generators back."""
        model.load_state_dict(self.arrays, self.meta)


def read_checkpoint(path: str | os.PathLike, program: Program | None = None) -> Checkpoint:
    """Read and verify a checkpoint: a missing, unreadable, corrupt or truncated file (its checksum) is an error
    (E803); so is, when `program` is given, a checkpoint written for another spec or other parameter values
    (E804)."""
    target = Path(path)
    if not target.is_file():
        raise file_error(path, "E803", f"cannot read checkpoint {path}: no such file", "check the path")
    corrupt = "the file is damaged or was cut short; use an earlier checkpoint, or train again"
    with target.open("rb") as stream:
        is_zip = stream.read(4) == b"PK\x03\x04"  # a .npz archive starts so, however much of it is left
    if not is_zip:
        raise file_error(
            path,
            "E803",
            f"{path} is not a checkpoint (not a .npz archive)",
            "give a checkpoint written by `specc train` or `model.fit(checkpoint=…)`",
        )
    try:
        with np.load(target, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as error:
        raise file_error(path, "E803", f"checkpoint {path} is corrupt or truncated ({error})", corrupt) from None
    if META not in arrays or CHECKSUM not in arrays:
        raise file_error(path, "E803", f"{path} is not a specc checkpoint", "write one with `specc train --checkpoint`")
    stored = str(arrays.pop(CHECKSUM))
    if digest(arrays) != stored:
        raise file_error(
            path, "E803", f"checkpoint {path} is corrupt: its checksum does not match its contents", corrupt
        )
    try:
        meta = json.loads(str(arrays.pop(META)))
    except ValueError:
        raise file_error(path, "E803", f"checkpoint {path} is corrupt: unreadable header", corrupt) from None
    if meta.get("format") != FORMAT:
        raise file_error(
            path,
            "E803",
            f"{path} has checkpoint format {meta.get('format')!r}, expected {FORMAT!r}",
            "it was written by another version of specc",
        )
    if program is not None and meta.get("spec_hash") != fingerprint(program):
        if meta.get("model") != program.name:
            raise file_error(
                path,
                "E804",
                f"checkpoint {path} was written for model '{meta.get('model')}', not '{program.name}'",
                f"use it with the spec of model '{meta.get('model')}'",
            )
        raise file_error(
            path, "E804", f"checkpoint {path} was written for a different spec", _difference(meta, program)
        )
    return Checkpoint(target, meta, arrays)


def _difference(meta: Mapping[str, Any], program: Program) -> str:
    """A hint naming the parameter values that differ between a checkpoint and a spec, if any do."""
    stored = meta.get("settings", {})
    now = {k: _jsonable(v) for k, v in program.settings.items()}
    changed = [
        f"{k} = {json.dumps(stored.get(k))} in the checkpoint, {json.dumps(now.get(k))} now"
        for k in sorted(set(stored) | set(now))
        if stored.get(k) != now.get(k)
    ]
    if changed:
        return "parameter values differ: " + "; ".join(changed) + " (pass the same --set values)"
    return "load it with the spec (and --set values) it was trained with; the stacks, losses or settings differ"

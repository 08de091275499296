"""Checkpoints: everything a training run needs to continue bit for bit, in one `.npz` file written atomically.

A checkpoint holds the parameters (running statistics included), the optimiser's state, the training progress,
the run-time parameters, the state of every random generator of the training graph (dropout), the step and
epoch counters with the batch sampler's state and the run's history so far, the hash of the checked spec
(`spec_hash`: its parameters' values included) and a sha256 checksum over every array stored. Reading checks
the checksum and the spec: a corrupt or truncated file, or a checkpoint of another spec, is an error (E803,
E804) and is never loaded.

>>> import tempfile, pathlib, spec_lang
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> path = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
>>> write_checkpoint(path, model, {"step": 0})
>>> read_checkpoint(path, model.program).meta["step"]
0
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from spec_lang.diagnostics import file_error
from spec_lang.files import write_atomic
from spec_lang.program import Program

if TYPE_CHECKING:
    from spec_lang.runtime.model import CompiledModel

FORMAT = "specc-checkpoint/1"
META, CHECKSUM = "__meta__", "__checksum__"


# The spec's identity ------------------------------------------------------------------------------------------


def _canonical(obj: Any, seen: dict[int, int]) -> Any:
    """A JSON-able form of a checked program that ignores source positions; a value met twice (a stack's output
    used twice) is written once and then referred to by number, so sharing is part of the form."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if id(obj) in seen:
            return {"ref": seen[id(obj)]}
        if not obj.__dataclass_params__.eq:  # tensor values: identity matters
            seen[id(obj)] = len(seen)
        fields = {f.name: _canonical(getattr(obj, f.name), seen) for f in dataclasses.fields(obj)
                  if f.name not in ("span", "spans")}
        return {"type": type(obj).__name__, **fields}
    if isinstance(obj, Mapping):
        return [[str(k), _canonical(v, seen)] for k, v in obj.items()]
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, seen) for v in obj]
    if isinstance(obj, (bool, int, str)) or obj is None:
        return obj
    if isinstance(obj, (float, np.floating)):
        return repr(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return repr(obj)


def spec_hash(program: Program) -> str:
    """sha256 of the checked program in a canonical form: its stacks, layers, shapes, losses, optimiser,
    settings and every parameter's value (so overrides count), but not comments, layout or source positions."""
    text = json.dumps(_canonical(program, {}), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# Model state --------------------------------------------------------------------------------------------------


def model_state(model: CompiledModel) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The model's training state: arrays (parameters, optimiser state) and JSON-able values (progress,
    run-time parameters, random generators)."""
    arrays = {f"parameters/{n}": v for n, v in model.parameters.items()}
    arrays.update({f"optimizer/{n}": v for n, v in model.optimizer_state.items()})
    meta = {"progress": model.progress, "hyperparameters": model.hyperparameters,
            "random_state": model.random_state}
    return arrays, meta


def restore_model_state(model: CompiledModel, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """Put back what `model_state` took."""
    model.set_parameters({n.partition("/")[2]: v for n, v in arrays.items() if n.startswith("parameters/")})
    model.set_optimizer_state({n.partition("/")[2]: v for n, v in arrays.items() if n.startswith("optimizer/")})
    model.set_progress(float(meta["progress"]))
    model.set_hyperparameters(**meta["hyperparameters"])
    model.set_random_state(meta["random_state"])


# Files --------------------------------------------------------------------------------------------------------


def checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_checkpoint(path: str | os.PathLike, model: CompiledModel, meta: Mapping[str, Any],
                     arrays: Mapping[str, np.ndarray] | None = None) -> None:
    """Write the model's state, `meta` (JSON-able: counters, history…) and extra `arrays` (the sampler's order)
    to `path`, atomically: a temporary file in the same folder, flushed to disk, then renamed over `path`."""
    state, model_meta = model_state(model)
    stored = {**state, **{f"run/{n}": np.asarray(v) for n, v in (arrays or {}).items()}}
    header = {"format": FORMAT, "model": model.program.name, "spec_hash": spec_hash(model.program),
              "settings": {k: _jsonable(v) for k, v in model.program.settings.items()}, **model_meta, **meta}
    stored[META] = np.array(json.dumps(header))
    stored[CHECKSUM] = np.array(checksum(stored))
    write_atomic(path, lambda stream: np.savez(stream, **stored))


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

    def restore(self, model: CompiledModel) -> None:
        """Put the model's parameters, optimiser state, progress, run-time parameters and generators back."""
        restore_model_state(model, self.arrays, self.meta)


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
        raise file_error(path, "E803", f"{path} is not a checkpoint (not a .npz archive)",
                         "give a checkpoint written by `specc train` or `model.fit(checkpoint=…)`")
    try:
        with np.load(target, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as error:
        raise file_error(path, "E803", f"checkpoint {path} is corrupt or truncated ({error})", corrupt) from None
    if META not in arrays or CHECKSUM not in arrays:
        raise file_error(path, "E803", f"{path} is not a specc checkpoint", "write one with `specc train --checkpoint`")
    stored = str(arrays.pop(CHECKSUM))
    if checksum(arrays) != stored:
        raise file_error(path, "E803", f"checkpoint {path} is corrupt: its checksum does not match its contents",
                         corrupt)
    try:
        meta = json.loads(str(arrays.pop(META)))
    except ValueError:
        raise file_error(path, "E803", f"checkpoint {path} is corrupt: unreadable header", corrupt) from None
    if meta.get("format") != FORMAT:
        raise file_error(path, "E803", f"{path} has checkpoint format {meta.get('format')!r}, expected {FORMAT!r}",
                         "it was written by another version of specc")
    if program is not None and meta.get("spec_hash") != spec_hash(program):
        if meta.get("model") != program.name:
            raise file_error(path, "E804", f"checkpoint {path} was written for model '{meta.get('model')}', not "
                             f"'{program.name}'", f"use it with the spec of model '{meta.get('model')}'")
        raise file_error(path, "E804", f"checkpoint {path} was written for a different spec",
                         _difference(meta, program))
    return Checkpoint(target, meta, arrays)


def _difference(meta: Mapping[str, Any], program: Program) -> str:
    """A hint naming the parameter values that differ between a checkpoint and a spec, if any do."""
    stored = meta.get("settings", {})
    now = {k: _jsonable(v) for k, v in program.settings.items()}
    changed = [f"{k} = {json.dumps(stored.get(k))} in the checkpoint, {json.dumps(now.get(k))} now"
               for k in sorted(set(stored) | set(now)) if stored.get(k) != now.get(k)]
    if changed:
        return "parameter values differ: " + "; ".join(changed) + " (pass the same --set values)"
    return "load it with the spec (and --set values) it was trained with; the stacks, losses or settings differ"

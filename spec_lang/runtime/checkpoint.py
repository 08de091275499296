"""Checkpoints: everything a training run needs to continue bit for bit, in one `.npz` file written atomically.

A checkpoint holds the parameters (running statistics included), the optimiser's state, the training progress,
the run-time parameters, the state of every random generator of the training graph (dropout), the step and
epoch counters with the batch sampler's state and the run's history so far, the hash of the checked spec
(`spec_hash`: `spec_lang.program.fingerprint.fingerprint`, its parameters' values included) and a sha256 checksum
over every array stored (`fingerprint.digest`). The model is anything with a `program` and
`state_dict`/`load_state_dict` (`Stateful`); this module never imports it.

Reading trusts nothing in the file, checksum included (anyone can recompute it); every refusal is an error (E803,
E804), never a traceback, and comes before anything of the model is changed:

- while loading (`spec_lang.reading.read_npz`), every member's `.npy` header must declare as many bytes as the
  member holds, so a header that claims 2^40 rows is refused before anything is allocated for it;
- the checksum, then the header (`__meta__`): a JSON object with this format, every field of `MODEL_FIELDS` of
  its type and, in a training run's checkpoint, every field of `RUN_FIELDS` and the sampler's orders (`RUN_ARRAYS`,
  a permutation and its target rows); only the arrays a checkpoint holds (`parameters/…`, `optimizer/…`, `run/…`);
- the spec it was written for (E804, when a program is given);
- `Checkpoint.restore`: the arrays' names, shapes and dtypes, the run-time parameters' and the generators' names,
  against the model's own `state_dict()`.

>>> import tempfile, pathlib, spec_lang
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> path = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
>>> write_checkpoint(path, model, {})
>>> saved = read_checkpoint(path, model.program)
>>> saved.meta["progress"], saved.holds_run
(0.0, False)
>>> saved.restore(model)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from spec_lang.diagnostics import SpecError, file_error
from spec_lang.files import write_atomic
from spec_lang.program import Program
from spec_lang.program.fingerprint import digest, fingerprint
from spec_lang.reading import read_npz

FORMAT = "specc-checkpoint/1"
META, CHECKSUM = "__meta__", "__checksum__"
PREFIXES = ("parameters/", "optimizer/", "run/")  # the arrays of a checkpoint, besides META and CHECKSUM
CORRUPT = "the file is damaged or was cut short; use an earlier checkpoint, or train again"
INVALID = "it was not written by specc, or was altered; use a checkpoint written by `specc train` or `fit`"


class Saveable(Protocol):
    """What a checkpoint saves: a compiled program's training state (see `CompiledProgram`), or one taken earlier."""

    @property
    def program(self) -> Program: ...

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...


class Stateful(Saveable, Protocol):
    """What a checkpoint saves and restores."""

    def load_state_dict(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None: ...


# The header's fields, each with what it must be. Every checkpoint has the model's (its spec and `state_dict`'s
# values); one written by a training run (`fit`, `specc train`) has every field of the run's too, with `RUN_ARRAYS`.


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# the numpy bit generators a state may name (never any other attribute of `numpy.random`), and JAX keys
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def _is_generator_state(value: Any, kinds: tuple[str, ...] = (*BIT_GENERATORS, "jax")) -> bool:
    """A numpy `bit_generator.state` that numpy accepts, or a JAX key (two 32-bit words), of one of `kinds`."""
    if not isinstance(value, dict) or value.get("bit_generator") not in kinds:
        return False
    if value["bit_generator"] == "jax":
        key = value.get("key")
        return isinstance(key, list) and len(key) == 2 and all(_is_whole(w) and w < 2**32 for w in key)
    try:
        getattr(np.random, value["bit_generator"])().state = value
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        return False
    return True


def _is_record(value: Any) -> bool:
    """A history record: numbers by name, with a whole `epoch` and `step`."""
    return (
        isinstance(value, dict)
        and all(_is_number(v) for v in value.values())
        and _is_whole(value.get("epoch"))
        and _is_whole(value.get("step"))
    )


Field = tuple[str, Callable[[Any], bool]]
MODEL_FIELDS: dict[str, Field] = {
    "model": ("a string", lambda v: isinstance(v, str)),
    "spec_hash": ("a string", lambda v: isinstance(v, str)),
    "settings": ("an object", lambda v: isinstance(v, dict)),
    "progress": ("a number from 0 to 1", lambda v: _is_number(v) and 0 <= v <= 1),
    "hyperparameters": ("an object of numbers", lambda v: isinstance(v, dict) and all(map(_is_number, v.values()))),
    "random_state": (
        "an object of random generator states",
        lambda v: isinstance(v, dict) and all(map(_is_generator_state, v.values())),
    ),
    "stage": ("a string", lambda v: isinstance(v, str)),  # the stage of training (`Program.plan`) it was taken in
}
RUN_FIELDS: dict[str, Field] = {
    "run": ("an object", lambda v: isinstance(v, dict)),  # its values are compared with the resuming run's (E806)
    "step": ("a whole number of at least 0", _is_whole),
    "epoch": ("a whole number of at least 0", _is_whole),
    "position": ("a whole number of at least 0", _is_whole),
    "sampler": ("a PCG64 generator state", lambda v: _is_generator_state(v, ("PCG64",))),
    "history": (
        "a list of records (numbers by name, with a whole epoch and step)",
        lambda v: isinstance(v, list) and all(map(_is_record, v)),
    ),
}
RUN_ARRAYS = ("source_order", "target_order")  # the sampler's orders of the current epoch


def write_checkpoint(
    path: str | os.PathLike, model: Saveable, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray] | None = None
) -> None:
    """Write the model's state (`state_dict`), `meta` (JSON-able: a training run's `RUN_FIELDS`, or nothing) and
    the run's arrays (`RUN_ARRAYS`: the sampler's orders) to `path`, atomically: a temporary file in the same folder,
    flushed to disk, then renamed over `path`. What would not read back is a `ValueError`, and nothing is written."""
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
    problem = _header_problem(header) or _arrays_problem(stored, header)
    if problem is not None:
        raise ValueError(f"not a valid checkpoint: {problem}")
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
    def holds_run(self) -> bool:
        """Whether a training run wrote it: it has the run's fields (`RUN_FIELDS`) and arrays, and can be resumed."""
        return "step" in self.meta

    @property
    def run_arrays(self) -> dict[str, np.ndarray]:
        return {n.partition("/")[2]: v for n, v in self.arrays.items() if n.startswith("run/")}

    def invalid(self, problem: str) -> SpecError:
        """The error (E803) for a checkpoint whose contents do not fit what reads it."""
        return invalid(self.path, problem)

    def check(self, model: Saveable) -> None:
        """Refuse (E803) a checkpoint whose arrays (names, shapes, dtypes), run-time parameters or random generators
        are not the model's (its `state_dict()`)."""
        problem = _model_problem(self, *model.state_dict())
        stages = [stage.name for stage in model.program.plan]
        if problem is None and self.meta["stage"] not in stages:
            problem = f"its stage {json.dumps(self.meta['stage'])[:40]} is none of the model's ({_names(stages)})"
        if problem is not None:
            raise self.invalid(problem)

    def restore(self, model: Stateful) -> None:
        """Put the model's parameters, optimiser state, progress, run-time parameters and generators back, once
        they are checked against the model's (`check`): a checkpoint that does not fit changes nothing."""
        self.check(model)
        model.load_state_dict(self.arrays, self.meta)


def invalid(path: str | os.PathLike, problem: str) -> SpecError:
    """The error (E803) for a file with a valid checksum whose contents are not a checkpoint's."""
    return file_error(path, "E803", f"{path} is not a valid checkpoint: {problem}", INVALID)


def read_checkpoint(path: str | os.PathLike, program: Program | None = None) -> Checkpoint:
    """Read and verify a checkpoint: a missing, unreadable, corrupt or truncated file (its checksum), or one whose
    structure is not a checkpoint's, is an error (E803); so is, when `program` is given, a checkpoint written for
    another spec or other parameter values (E804). Whether the arrays fit the model is `Checkpoint.check`'s part."""
    target = Path(path)
    if not target.is_file():
        raise file_error(path, "E803", f"cannot read checkpoint {path}: no such file", "check the path")
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
        arrays = read_npz(target)  # every member's header checked against its size before anything is allocated
    except ValueError as error:
        raise file_error(path, "E803", f"checkpoint {path} is corrupt or truncated ({error})", CORRUPT) from None
    if META not in arrays or CHECKSUM not in arrays:
        raise file_error(path, "E803", f"{path} is not a specc checkpoint", "write one with `specc train --checkpoint`")
    stored = str(arrays.pop(CHECKSUM))
    if digest(arrays) != stored:
        raise file_error(
            path, "E803", f"checkpoint {path} is corrupt: its checksum does not match its contents", CORRUPT
        )
    try:
        meta = json.loads(str(arrays.pop(META)))
    except (ValueError, RecursionError):
        raise file_error(path, "E803", f"checkpoint {path} is corrupt: unreadable header", CORRUPT) from None
    if not isinstance(meta, dict):
        raise invalid(path, f"its header is {_json_kind(meta)}, not an object")
    if meta.get("format") != FORMAT:
        raise file_error(
            path,
            "E803",
            f"{path} has checkpoint format {_short(meta.get('format'))}, expected {FORMAT!r}",
            "it was written by another version of specc",
        )
    problem = _header_problem(meta) or _arrays_problem(arrays, meta)
    if problem is not None:
        raise invalid(path, problem)
    if program is not None and meta["spec_hash"] != fingerprint(program):
        if meta["model"] != program.name:
            raise file_error(
                path,
                "E804",
                f"checkpoint {path} was written for model '{meta['model']}', not '{program.name}'",
                f"use it with the spec of model '{meta['model']}'",
            )
        raise file_error(
            path, "E804", f"checkpoint {path} was written for a different spec", _difference(meta, program)
        )
    return Checkpoint(target, meta, arrays)


def _header_problem(meta: Mapping[str, Any]) -> str | None:
    """What is wrong with a checkpoint's header (its fields and their types), or None."""
    missing = [name for name in MODEL_FIELDS if name not in meta]
    if missing:
        return f"its header lacks {_names(missing)}"
    present = [name for name in RUN_FIELDS if name in meta]
    if present and len(present) < len(RUN_FIELDS):
        return f"its header has the training run's {_names(present)} but lacks " + _names(
            [name for name in RUN_FIELDS if name not in meta]
        )
    for name, (kind, fits) in {**MODEL_FIELDS, **RUN_FIELDS}.items():
        if name in meta and not fits(meta[name]):
            return f"its header's '{name}' is {_short(meta[name])}, not {kind}"
    return None


def _arrays_problem(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str | None:
    """What is wrong with the names of a checkpoint's arrays and with the run's arrays, or None."""
    foreign = [name for name in arrays if not name.startswith(PREFIXES)]
    if foreign:
        return f"it holds an array '{foreign[0]}', which no checkpoint holds"
    run = {n.partition("/")[2]: v for n, v in arrays.items() if n.startswith("run/")}
    if "step" not in meta:
        return f"it holds the run array 'run/{next(iter(run))}' but no training run" if run else None
    if sorted(run) != sorted(RUN_ARRAYS):
        return f"its run arrays are {_names(sorted(run)) or 'none'}, not {_names(RUN_ARRAYS)}"
    source, target = run["source_order"], run["target_order"]
    for name, order in run.items():
        if order.ndim != 1 or not np.issubdtype(order.dtype, np.integer):
            return f"'run/{name}' is {_described(order)}, not a list of row numbers"
    if not np.array_equal(np.sort(source), np.arange(len(source))):
        return f"'run/source_order' is not a permutation of the rows 0 to {len(source) - 1}"
    if len(target) not in (0, len(source)) or (target.size and target.min() < 0):
        return f"'run/target_order' is not {len(source)} row numbers of the target data"
    return None


def _model_problem(saved: Checkpoint, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str | None:
    """What in a checkpoint does not fit a model of the same spec (its `state_dict()`: `arrays` and `meta`), or
    None."""
    stored = {n: v for n, v in saved.arrays.items() if not n.startswith("run/")}
    for name, own in arrays.items():
        what = _array_name(name)
        if name not in stored:
            return f"it lacks the {what}"
        value = stored[name]
        if value.shape != own.shape:
            return f"{what} has shape {list(value.shape)}, the model's is {list(own.shape)}"
        if value.dtype != own.dtype:
            return f"{what} is {value.dtype}, the model's is {own.dtype}"
    extra = [name for name in stored if name not in arrays]
    if extra:
        return f"it holds the {_array_name(extra[0])}, which the model does not have"
    for key, what in (("hyperparameters", "run-time parameters"), ("random_state", "random generators")):
        if sorted(saved.meta[key]) != sorted(meta[key]):
            return f"its {what} are {_names(sorted(saved.meta[key])) or 'none'}, the model's are " + (
                _names(sorted(meta[key])) or "none"
            )
    return None


def _array_name(name: str) -> str:
    kind, _, rest = name.partition("/")
    return f"{'optimiser state' if kind == 'optimizer' else 'parameter'} '{rest}'"


def _described(array: np.ndarray) -> str:
    return f"a {array.ndim}-d array of {array.dtype}"


def _names(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _json_kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _short(value: Any) -> str:
    """A JSON value as a message shows it: at most 40 characters."""
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        text = "…"
    return text if len(text) <= 40 else text[:36] + " …"


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

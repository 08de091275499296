"""Fingerprints: of a checked program (what a checkpoint and the compile cache are keyed by) and of arrays (what a
checkpoint's checksum and a training run's data check compare).

>>> import numpy as np
>>> digest({"a": np.zeros(2)}) == digest({"a": np.zeros(2)}) != digest({"a": np.ones(2)})
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np


def canonical(thing: Any, seen: dict[int, int] | None = None) -> Any:
    """A JSON-able form of a checked program that ignores source positions; a value met twice (a stack's output
    used twice) is written once and then referred to by number, so sharing is part of the form."""
    seen = {} if seen is None else seen
    if dataclasses.is_dataclass(thing) and not isinstance(thing, type):
        if id(thing) in seen:
            return {"ref": seen[id(thing)]}
        if not type(thing).__dataclass_params__.eq:  # type: ignore[attr-defined]  # tensor values: identity matters
            seen[id(thing)] = len(seen)
        fields = {
            f.name: canonical(getattr(thing, f.name), seen)
            for f in dataclasses.fields(thing)
            if f.name not in ("span", "spans")
        }
        return {"type": type(thing).__name__, **fields}
    if isinstance(thing, Mapping):
        return [[str(k), canonical(v, seen)] for k, v in thing.items()]
    if isinstance(thing, (list, tuple)):
        return [canonical(v, seen) for v in thing]
    if isinstance(thing, (set, frozenset)):
        return sorted(json.dumps(canonical(v, seen)) for v in thing)
    if isinstance(thing, (bool, int, str)) or thing is None:
        return thing
    if isinstance(thing, (float, np.floating)):
        return repr(float(thing))
    if isinstance(thing, np.integer):
        return int(thing)
    return repr(thing)


def fingerprint(program: Any) -> str:
    """sha256 of a checked program in its canonical form: its stacks, layers, shapes, losses, optimiser, settings
    and every parameter's value (so overrides count), but not comments, layout or source positions."""
    return hashlib.sha256(json.dumps(canonical(program), separators=(",", ":")).encode()).hexdigest()


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    hashed = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        hashed.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        hashed.update(array.tobytes())
    return hashed.hexdigest()

"""The front end's limits: inputs beyond them get a located error (E108, E109, E604, E605) instead of a crash, a
hang or an attempt to allocate absurd memory; checking stops after `MAX_ERRORS` errors.

>>> parse_memory("8GiB"), parse_memory("1.5 GB"), parse_memory("1000")
(8589934592, 1500000000, 1000)
>>> format_memory(3 * 2**30 + 2**29)
'3.5 GiB'
"""

from __future__ import annotations

import re

# How deeply nodes may nest (expressions, calls, lists, `for` loops, counting the statement that holds them): the
# passes over the IR recurse, one or a few levels of Python's recursion limit (1000) per node.
MAX_DEPTH = 100
# Layers on the longest path through a network: PyTensor's gradient recurses once per layer and fails past about 320.
MAX_LAYERS = 250
# Errors reported before checking stops: finding each costs time (suggesting names compares it with every name).
MAX_ERRORS = 100
# The memory a model's parameters may take, unless raised (`--max-parameter-memory`, `max_parameter_memory=`):
# half a billion float32 numbers, far more than a model these backends train in reasonable time.
DEFAULT_MAX_PARAMETER_MEMORY = 2 * 2**30

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_MEMORY = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")


def parse_memory(text: str) -> int:
    """Bytes from a size such as `8GiB`, `512 MiB`, `1.5GB` or `1000` (bytes); `ValueError` for anything else."""
    match = _MEMORY.fullmatch(text)
    if match is None or match[2].lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r}; write e.g. 8GiB, 512MiB or 1.5GB")
    return int(float(match[1]) * _UNITS[match[2].lower()])


def format_memory(size: int) -> str:
    """A size in bytes in the largest binary unit it reaches, e.g. `3.5 GiB`; exact integer arithmetic, since a
    model's size may exceed what a float holds.

    >>> format_memory(10**400)
    'about 10^387 TiB'
    """
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _UNITS[unit.lower()]
        if size >= factor:
            tenths = size * 10 // factor
            if tenths >= 10**16:
                return f"about 10^{len(str(size // factor)) - 1} {unit}"
            return f"{tenths // 10}.{tenths % 10} {unit}"
    return f"{size} bytes"

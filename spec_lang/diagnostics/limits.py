"""The front end's limits: inputs beyond them get a located error (E108, E109, E604, E605, E001, E901) instead of a
crash, a hang or an attempt to allocate absurd memory; checking stops after `MAX_ERRORS` errors.

>>> parse_memory("8GiB"), parse_memory("1.5 GB"), parse_memory("1000")
(8589934592, 1500000000, 1000)
>>> format_memory(3 * 2**30 + 2**29)
'3.5 GiB'
"""

from __future__ import annotations

import re
from fractions import Fraction

# How deeply nodes may nest (expressions, calls, lists, `for` loops, counting the statement that holds them): the
# passes over the IR recurse, one or a few levels of Python's recursion limit (1000) per node.
MAX_DEPTH = 100
# Layers on the longest path through a network: PyTensor's gradient recurses once per layer and fails past about 320.
MAX_LAYERS = 250
# The size of a spec file, read or included: refused before it is read. The largest real spec is a few KiB; a list
# of a million numbers takes 2 to 7 MiB and checks in seconds.
MAX_SOURCE_BYTES = 16 * 2**20
# How many files deep includes go (the file being read includes a file at depth 1, which includes one at depth 2, …):
# the walk over them keeps the chain of files to each and compares each include with it, for cycles.
MAX_INCLUDE_DEPTH = 100
# Errors reported before checking stops: finding each costs time (suggesting names compares it with every name).
MAX_ERRORS = 100
# The memory a model's parameters and its optimiser's state may take, unless raised (`--max-parameter-memory`,
# `max_parameter_memory=`): half a billion float32 numbers, far more than a model these backends train in reasonable
# time.
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
# The largest size a limit may be: 2**63 bytes (8,388,608 TiB), what a signed 64-bit count holds; more is a slip.
MAX_MEMORY = 2**63


def parse_memory(text: str) -> int:
    """Bytes from a size such as `8GiB`, `512 MiB`, `1.5GB` or `1000` (bytes), computed exactly and rounded down to
    whole bytes; `ValueError` for anything else, and for a size below 1 byte or above 2**63 bytes.

    >>> parse_memory("0.5GiB"), parse_memory("1.5")
    (536870912, 1)
    """
    shown = repr(text if len(text) <= 40 else text[:36] + " …")
    match = _MEMORY.fullmatch(text)
    if match is None or match[2].lower() not in _UNITS:
        raise ValueError(f"not a size: {shown}; write e.g. 8GiB, 512MiB or 1.5GB")
    whole, _, fraction = match[1].partition(".")
    if len(whole.lstrip("0")) > 30:  # beyond any limit, and too long for Python to read as an integer
        size = MAX_MEMORY + 1
    else:  # decimals past the 60th never change the whole bytes: a byte in any unit has at most 40
        size = int(Fraction(f"{whole or 0}.{fraction[:60] or 0}") * _UNITS[match[2].lower()])
    if not 1 <= size <= MAX_MEMORY:
        bound = "at least 1 byte" if size < 1 else "at most 2**63 bytes (8,388,608 TiB)"
        raise ValueError(f"a size is {bound}, got {shown}; write e.g. 8GiB, 512MiB or 1.5GB")
    return size


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

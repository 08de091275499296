"""The persistent compile cache: a compiled update function kept on disk, keyed by the checked program's content,
the mode, the optimisations and the versions of everything that shapes the graph, so that compiling the same
spec again, in any process, skips lowering, differentiating and rewriting the graph.

What PyTensor and Numba keep on disk by themselves: Numba's machine code for every op and for the whole graph
(in PyTensor's `base_compiledir`/numba), and PyTensor's C modules. What they redo in every new process: building
the graph and its gradient, the graph rewrites (about half of a warm compile), and linking (turning each node
into a Numba function and loading the graph's machine code). The cache stores the rewritten graph: a pickled
PyTensor `Function` (with the shared variables it updates), so a warm compile is unpickling and linking.

The folder is `$SPECC_CACHE_DIR`, else `specc` inside PyTensor's `base_compiledir` (so `PYTENSOR_FLAGS=
base_compiledir=…` moves both); entries are written atomically and an unreadable entry is compiled afresh. Like
PyTensor's own cache, it loads pickles from that folder: keep it private to the user.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from functools import cache
from pathlib import Path
from typing import Any

from spec_lang.files import write_atomic
from spec_lang.program.fingerprint import fingerprint

FORMAT = 1
# the packages whose code shapes the compiled graph: a change to any of their files invalidates every entry
_PACKAGES = ("program", "library", "lowering", "runtime")


def folder() -> Path:
    configured = os.environ.get("SPECC_CACHE_DIR")
    if configured:
        return Path(configured)
    import pytensor

    return Path(pytensor.config.base_compiledir) / "specc"


def _source_files(package: Path) -> list[Path]:
    """Every Python file of the packages in `_PACKAGES`, in a fixed order. A package that is missing or holds no
    module is an error: a key that silently stopped covering it would serve stale compiled functions."""
    files = []
    for name in _PACKAGES:
        found = sorted((package / name).rglob("*.py"))
        if not found:
            raise RuntimeError(f"spec_lang/{name} is missing: the compile cache cannot key what it compiles")
        files += found
    return files


@cache
def _environment() -> str:
    import numba
    import numpy
    import pytensor

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent  # spec_lang/
    for path in _source_files(package):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return repr((FORMAT, sys.version, numpy.__version__, pytensor.__version__, numba.__version__, digest.hexdigest()))


def key(program: Any, mode: str | None, optimizations: Any) -> str | None:
    """The cache key of a compile, or None when it is not cached: a program that cannot be keyed, or the JAX mode,
    whose functions are compiled at their first call for each signature of input shapes (see `jax_mode`)."""
    import pytensor

    from spec_lang.runtime.jax_mode import uses_jax

    if uses_jax(mode):
        return None
    try:
        content = fingerprint(program)
    except RecursionError:
        return None
    config = pytensor.config
    options = repr(
        (
            mode,
            optimizations,
            config.mode,
            config.linker,
            config.optimizer,
            config.optimizer_including,
            config.optimizer_excluding,
            config.optimizer_requiring,
            config.floatX,
            config.numba__fastmath,
        )
    )
    return hashlib.sha256("\n".join((_environment(), options, content)).encode()).hexdigest()


def load(cache_key: str) -> dict[str, Any] | None:
    """The attributes stored under a key, or None (absent or unreadable)."""
    path = folder() / f"{cache_key}.pkl"
    try:
        with path.open("rb") as stream:
            return pickle.load(stream)
    except FileNotFoundError:
        return None
    except Exception:  # written by another version, truncated, …: compile afresh (and overwrite it)
        return None


def store(cache_key: str, attributes: dict[str, Any]) -> bool:
    """Write the attributes under a key, atomically; False when they could not be written (no error)."""
    target = folder()
    try:
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(
            target / f"{cache_key}.pkl",
            lambda stream: pickle.dump(attributes, stream, protocol=pickle.HIGHEST_PROTOCOL),
        )
        return True
    except Exception:
        return False

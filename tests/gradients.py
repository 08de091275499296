"""The tests' gradient check: PyTensor's `verify_grad` with every function it compiles in FAST_COMPILE.

With `mode="FAST_COMPILE"` alone, `verify_grad` compiles its finite-difference cost function in the default
(Numba) mode instead, which on a fresh machine costs tens of seconds for each new graph; `no_debug_ref=False`
keeps that function in the given mode too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pytensor.gradient import verify_grad


def check_gradient(function: Callable, points: list[np.ndarray], rng: np.random.Generator) -> None:
    """Compare `function`'s symbolic gradient at `points` with finite differences (raises on a mismatch)."""
    verify_grad(function, points, rng=rng, mode="FAST_COMPILE", no_debug_ref=False)

"""What an emitted module is written for: PyTensor (`--emit python`) or Theano 1.0.5 (`--emit theano`).

The emitter walks the program once, whatever the target: the graph's lines are the same calls of building blocks. A
target says what differs: the imports, the name of the tensor module, how an input is declared, where each building
block's source comes from, and how shared source reads on it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from spec_lang.library.formulas import formulas
from spec_lang.lowering.passes import Optimizations
from spec_lang.lowering.pytensor import ops


@dataclass(frozen=True)
class Target:
    """A framework the emitted module builds its graph with."""

    name: str  # as the module's docstring names it
    tensor: str  # the name the module imports the tensor module as (formulas get it as `xp`)
    imports: tuple[str, ...]
    origin: str  # where the building blocks come from, for a comment in the module
    block: Callable[[str], str]  # a building block's source, by name (a `SpecError` when the target has none)
    translate: Callable[[str], str]  # shared source (the update rule, `compile_model`) as the target reads it
    optimizations: Optimizations  # the lowering's optimisations, those whose building blocks the target has
    declare_input: Callable[[str, str, int], str]  # (name, dtype, dimensions) → an expression for the input
    helpers: frozenset[str] = frozenset()  # building blocks of the target's own, besides those of `is_block`


def pytensor_block(name: str) -> str:
    """The source of a building block the graph calls: a vocabulary's formula, or a function of `ops`."""
    return inspect.getsource(formulas().get(name) or getattr(ops, name))


def is_block(name: str) -> bool:
    """Whether a name is a building block: a vocabulary's formula or a function of `ops`."""
    value = getattr(ops, name, None)
    return name in formulas() or inspect.isfunction(value) and value.__module__ == ops.__name__


def _pytensor_input(name: str, dtype: str, ndim: int) -> str:
    shape = "(" + ", ".join(["None"] * ndim) + ("," if ndim == 1 else "") + ")"
    return f"pt.tensor({name!r}, dtype={dtype!r}, shape={shape})"


PYTENSOR = Target(
    "PyTensor",
    "pt",
    (
        "import numpy as np",
        "import pytensor",
        "import pytensor.tensor as pt",
        "from pytensor.gradient import grad_scale",
    ),
    "spec_lang.lowering.pytensor.ops",
    pytensor_block,
    lambda text: text,
    Optimizations(),
    _pytensor_input,
)

"""The tensor formulas the vocabularies declare themselves (a schedule's, a loss's), by name. Each is written once for
numpy and PyTensor alike, taking the array module as `xp`; the lowering calls them as building blocks beside those of
`spec_lang.lowering.pytensor.ops`, and the emitted module carries their source.

>>> {"annealed", "constant", "mean_over_domain_rows"} <= set(formulas())
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spec_lang.library.losses import LOSSES
from spec_lang.library.schedules import SCHEDULES


def formulas() -> dict[str, Callable[..., Any]]:
    """Every declared formula by name: looked up afresh, so an entry registered later (a test's) is found too."""
    found = {kind.name: kind.formula for kind in SCHEDULES.entries()}
    found.update({formula.__name__: formula for kind in LOSSES.entries() for formula in kind.formulas})
    return found

"""Every example compiles and learns: a few update steps on random data lower its objective."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import spec_lang

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dann"))


def random_batch(program, rng: np.random.Generator, size: int = 8) -> dict[str, np.ndarray]:
    """Normal features and uniform labels below their bound, for every input."""
    batch = {}
    for spec in program.inputs:
        shape = tuple(size if d is None else d for d in spec.type.shape)
        batch[spec.name] = (rng.integers(0, spec.bound or 2, shape) if spec.type.dtype == "int"
                            else rng.standard_normal(shape))
    return batch


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_trains_with_its_objective_decreasing(path: Path) -> None:
    spec = spec_lang.load(path)
    assert not spec.warnings
    model = spec.compile("FAST_COMPILE")  # the default mode is covered by test_fidelity and test_layers
    batch = random_batch(spec.program, np.random.default_rng(0))
    batch = {name: batch[name] for name in model.train_inputs}
    before = model.evaluate(**batch)["objective"]
    for step in range(8):
        model.set_progress(step / 8)
        model.train_step(**batch)
    after = model.evaluate(**batch)["objective"]
    assert np.isfinite(after) and after < before


def test_the_digits_dann_has_the_papers_shape() -> None:
    program = spec_lang.load(ROOT / "examples" / "digits_dann.dann").program
    shapes = [layer.out_shape for layer in program.stack("features").layers]
    assert shapes == [(None, 32, 24, 24), (None, 32, 12, 12), (None, 48, 8, 8), (None, 48, 4, 4), (None, 768)]
    assert program.stack("domain").layers[-1].out_shape == (None, 1)

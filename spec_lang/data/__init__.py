"""Data: arrays from `.npz`/`.csv` files checked against a spec's inputs, and the DANN paper's two-moons toy."""

from spec_lang.data.arrays import check_arrays, load_arrays
from spec_lang.data.moons import make_moons, two_moons

__all__ = ["check_arrays", "load_arrays", "make_moons", "two_moons"]

"""Experiments that reproduce published results with bundled specs: the DANN paper's two moons."""

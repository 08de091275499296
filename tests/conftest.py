"""Fixtures the Ray sweep tests share (tests/cli/test_sweep_cli.py, tests/experiments/test_sweeps.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from spec_lang.data import two_moons


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A real local Ray instance with two workers for the module's tests."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def moons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-moons toy as an `.npz` file."""
    path = tmp_path_factory.mktemp("data") / "moons.npz"
    np.savez(path, **two_moons())
    return path

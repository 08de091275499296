"""The repository stays lint-clean and the package formatted and type-checked: ruff check (the whole repository:
package, tests, benchmarks, docs scripts), ruff format and mypy (the package), configured in pyproject.toml, run here
so that the README's test command and CI run them with everything else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [
    ["ruff", "check", "."],
    ["ruff", "format", "--check", "spec_lang"],
    ["mypy"],
], ids=["ruff check", "ruff format", "mypy"])
def test_the_package_is_clean(command: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

"""Same spec, same seed, same numbers, bit for bit, whatever the state of the caches: a run in a fresh compile
cache, another in another fresh one, and a third loading the first's cache end with identical parameters (issue 12,
item 4: with Numba's fastmath, a fresh compile and a cached one could differ)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = """
import hashlib, numpy as np, spec_lang
from spec_lang.data import two_moons
model = spec_lang.load("examples/moons_dann.dann").compile()
model.fit(two_moons(), steps=300, batch_size=8, seed=3)
digest = hashlib.sha256()
for name, value in sorted(model.parameters.items()):
    digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
print(digest.hexdigest(), model.cache_hit)
"""


def _run(cache: Path) -> tuple[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cache), "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}",
           "SPECC_CACHE_DIR": str(cache / "specc"), "NUMBA_CACHE_DIR": str(cache / "numba")}
    done = subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    digest, hit = done.stdout.split()
    return digest, hit


def test_a_run_ends_bit_for_bit_the_same_in_fresh_and_warm_caches(tmp_path: Path) -> None:
    first = _run(tmp_path / "a")
    second = _run(tmp_path / "b")
    again = _run(tmp_path / "a")
    assert (first[1], second[1], again[1]) == ("False", "False", "True")  # cold, cold, from the compile cache
    assert first[0] == second[0] == again[0]

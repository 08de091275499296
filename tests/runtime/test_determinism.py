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
data, rng = two_moons(), np.random.default_rng(3)
for step in range(300):  # the update function only: each function compiled costs seconds from cold caches
    source, target = rng.integers(0, 150, 8), rng.integers(0, 150, 8)
    model.set_progress(step / 300)
    model.train_step(xs=data["xs"][source], ys=data["ys"][source], xt=data["xt"][target])
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

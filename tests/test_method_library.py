"""The method library, examples/methods/: every spec checks with no warning under `strict`, compiles and trains 20
steps on random data (through each of its stages) with every loss finite; three methods (CORAL, DAN, BSP) have known
answers, their alignment term against NumPy on the features computed from the model's own parameters. Being
canonical under `fmt` and the JSON round trip are covered for every file under examples/ (subfolders included) by
tests/syntax/test_roundtrip.py and tests/syntax/test_jsonio.py; tests/test_examples.py trains only the top-level
examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_examples import random_batch

import spec_lang

METHODS = Path(__file__).resolve().parent.parent / "examples" / "methods"
SPECS = sorted(METHODS.glob("*.dann"))


def test_the_library_holds_every_method_expressible_today() -> None:
    methods = "adda afn bsp cdan cdan_e coral dan dann jan mcc mcd mdd source_only wdgrl".split()
    assert [p.stem for p in SPECS] == methods


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_method_trains_with_every_loss_finite(path: Path) -> None:
    spec = spec_lang.load(path, strict=True)
    assert not spec.warnings
    model = spec.compile("FAST_COMPILE")
    batch = random_batch(spec.program, np.random.default_rng(0))
    batch = {name: batch[name] for name in model.train_inputs}
    plan = spec.program.plan
    for step in range(20):
        model.set_progress(step / 20)
        model.set_stage(plan[step * len(plan) // 20].name)  # every stage of training in turn
        losses = model.train_step(**batch)
        phases = [p.name for p in spec.program.phases] if len(spec.program.phases) > 1 else []
        assert set(losses) == {"objective", *(loss.name for loss in spec.model.losses), *phases}
        assert all(np.isfinite(value) for value in losses.values()), losses
    assert all(np.isfinite(value) for value in model.evaluate(**batch).values())


def _features(path: Path) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The model's losses on one random batch, and its source and target features from its parameters in NumPy
    (the library's backbone: two dense ReLU layers)."""
    spec = spec_lang.load(path, strict=True)
    model = spec.compile("FAST_COMPILE")
    batch = random_batch(spec.program, np.random.default_rng(1))
    p = model.parameters

    def features(x: np.ndarray) -> np.ndarray:
        hidden = np.maximum(x @ p["features.0.W"] + p["features.0.b"], 0)
        return np.maximum(hidden @ p["features.1.W"] + p["features.1.b"], 0)

    losses = model.evaluate(**{name: batch[name] for name in model.train_inputs})
    return losses, features(batch["xs"]), features(batch["xt"])


def test_coral_is_the_distance_of_the_feature_covariances() -> None:
    losses, fs, ft = _features(METHODS / "coral.dann")
    d = fs.shape[1]
    expected = np.sum((np.cov(fs, rowvar=False) - np.cov(ft, rowvar=False)) ** 2) / (4 * d * d)
    assert losses["align"] == pytest.approx(expected, rel=1e-4, abs=1e-9)


def test_dan_is_the_multi_kernel_mmd_of_the_features() -> None:
    losses, fs, ft = _features(METHODS / "dan.dann")
    joined = np.concatenate([fs, ft])
    distances = np.sum((joined[:, None, :] - joined[None, :, :]) ** 2, axis=-1)
    kernel = sum(np.exp(-distances / (2 * 2.0 ** (i - 2) * distances.mean())) for i in range(5))
    n = len(fs)
    expected = kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()
    assert losses["discrepancy"] == pytest.approx(expected, rel=1e-4)


def test_bsp_is_the_squared_largest_singular_values_of_the_features() -> None:
    losses, fs, ft = _features(METHODS / "bsp.dann")
    expected = np.linalg.svd(fs, compute_uv=False)[0] ** 2 + np.linalg.svd(ft, compute_uv=False)[0] ** 2
    assert losses["spectral"] == pytest.approx(expected, rel=1e-4)

"""The discrepancy (MMD, JMMD, CORAL), disparity (MCD, MDD, CDAN+E's weighting) and regulariser (BSP, MCC, AFN)
losses lower in the NUMBA and JAX modes: one float32 model with all of them takes two steps in each mode as in the
reference mode (FAST_COMPILE), and stays float32. One model for all, because each function Numba compiles costs
half a minute or more from cold caches; each family's formulas are checked against references in its own module."""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest

import spec_lang

SPEC = """model families()
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features { dense 4 tanh }
stack c1 { dense 3 softmax }
stack c2 { dense 3 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
loss label_loss = crossentropy(c1(fs), ys)
loss discrepancy = jmmd(fs, ft, c1(fs), c1(ft)) + mmd(fs, ft) + coral(fs, ft)
loss disparity = -classifier_discrepancy(c1(reverse(ft, lambda = 1)), c2(reverse(ft, lambda = 1)))
    + mdd(c1(fs), c2(reverse(fs, lambda = 1)), c1(ft), c2(reverse(ft, lambda = 1)), margin = 3)
    + bce_weighted_by_entropy(domain(reverse(fs, lambda = 1)), 0, c1(fs))
    + bce_weighted_by_entropy(domain(reverse(ft, lambda = 1)), 1, c1(ft))
loss regulariser = bsp(fs, ft, k = 2) + mcc(c1(ft), temperature = 2) + afn(ft, delta = 0.5)
optimize sgd(lr = 0.1)
"""


@pytest.mark.parametrize(
    "mode",
    ["NUMBA", pytest.param("JAX", marks=pytest.mark.skipif(find_spec("jax") is None, reason="JAX is not installed"))],
)
def test_every_family_trains_in_the_mode_as_in_the_reference_mode(mode: str) -> None:
    """Two steps: the second step's losses agree too, so the first step's gradients did (BSP's eigenvalues lower
    in both modes with their gradient; PyTensor's SVD does not lower in JAX)."""
    model, reference = spec_lang.loads(SPEC).compile(mode), spec_lang.loads(SPEC).compile("FAST_COMPILE")
    rng = np.random.default_rng(8)
    batch = {"xs": rng.normal(size=(4, 2)), "xt": rng.normal(size=(5, 2)), "ys": np.array([0, 1, 2, 0])}
    for _ in range(2):
        ours, theirs = model.train_step(**batch), reference.train_step(**batch)
        assert set(ours) == {"objective", "label_loss", "discrepancy", "disparity", "regulariser"}
        assert ours == pytest.approx(theirs, rel=1e-5) and all(np.isfinite(v) for v in ours.values())
    assert {str(v.dtype) for v in model.parameters.values()} == {"float32"}
    for name, value in model.parameters.items():
        np.testing.assert_allclose(value, reference.parameters[name], rtol=1e-4, atol=1e-6)

"""After a divergence, the checkpoint kept is one whose model still evaluates to finite numbers: a periodic
checkpoint is written only once the next step, which starts from it, has finite losses (issue 12, item 7)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.runtime.checkpoint import read_checkpoint

SPEC = """model regression(lr = 0.01)
precision float64
input x : float[batch, 3]
input t : float[batch, 1]
stack net { dense 1 linear }
loss fit = mse(net(x), t)
optimize sgd(lr = lr)
"""


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_the_kept_checkpoint_evaluates_finite(tmp_path: Path) -> None:
    model = spec_lang.loads(SPEC).compile("FAST_COMPILE")
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(32, 3)), "t": rng.normal(size=(32, 1))}

    def blow_up(info: dict) -> None:  # the step after 5 makes the weights huge but finite; the next loss is inf
        if info["step"] == 5:
            model.set_hyperparameters(lr=1e150)

    path = tmp_path / "c.npz"
    with pytest.raises(spec_lang.SpecError) as error:
        model.fit(data, steps=40, batch_size=8, checkpoint=path, checkpoint_every=1, callback=blow_up)
    assert error.value.diagnostics[0].code == "E805"
    saved = read_checkpoint(path)
    assert all(np.isfinite(v).all() for v in saved.arrays.values() if v.dtype.kind == "f")
    kept = spec_lang.loads(SPEC).compile("FAST_COMPILE")
    saved.restore(kept)
    assert math.isfinite(kept.evaluate(**data)["fit"]), f"the checkpoint of step {saved.meta['step']} evaluates inf"

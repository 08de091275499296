"""The compiled examples compute the same numbers as literal PyTensor ports of the seed programs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from seed_ports import seed_dann, seed_l2_mlp

import spec_lang

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STEPS = 20
TOLERANCE = 1e-10


def _layers(parameters: dict[str, np.ndarray], stack: str) -> list[tuple[np.ndarray, np.ndarray]]:
    count = sum(1 for name in parameters if name.startswith(f"{stack}.") and name.endswith(".W"))
    return [(parameters[f"{stack}.{i}.W"], parameters[f"{stack}.{i}.b"]) for i in range(count)]


def _assert_same(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE)


def test_seed_l2_mlp_matches_the_seed_program() -> None:
    spec = spec_lang.load(EXAMPLES / "seed_l2_mlp.dann")
    settings = spec.program.settings
    # The example is the seed's call compile(10, [8, 6, 4, 8, 16], 32, 0.1, 0.01).
    assert (spec.program.inputs[0].type.shape[-1], settings["hidden"], settings["classes"],
            settings["reg_lambda"], settings["lr"]) == (10, [8, 6, 4, 8, 16], 32, 0.1, 0.01)
    model = spec.compile()
    start = model.parameters
    port = seed_l2_mlp(10, [8, 6, 4, 8, 16], 32, 0.1, 0.01, _layers(start, "net"))
    rng = np.random.default_rng(7)
    costs = []
    for _ in range(STEPS):
        x, z = rng.standard_normal((6, 10)), rng.integers(0, 32, 6).astype("int32")
        ours = model.train_step(x=x, z=z)
        (theirs,) = port.train(x, z)
        assert abs(ours["objective"] - float(theirs)) <= TOLERANCE
        assert abs(ours["xent"] + ours["reg"] - float(theirs)) <= TOLERANCE
        costs.append(ours["objective"])
    layers = _layers(model.parameters, "net")
    _assert_same([w for w, _ in layers] + [b for _, b in layers], port.values())  # the seed's order: ws + bs
    assert not np.allclose(model.parameters["net.0.W"], start["net.0.W"])  # training really moved them
    assert costs[-1] < costs[0]


def _dann_port(model: spec_lang.CompiledModel, hp_lambda: float):
    start = model.parameters
    return seed_dann(2, [3, 4], [7, 8], [5, 6], hp_lambda, 0.01,
                     _layers(start, "features"), _layers(start, "label"), _layers(start, "domain"))


def _flat(model: spec_lang.CompiledModel) -> list[np.ndarray]:
    # The seed's order: for theta in theta_f + theta_y + theta_d, W then b per layer.
    return [p for s in ("features", "label", "domain") for layer in _layers(model.parameters, s) for p in layer]


def _dann_batches(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):  # the seed's test values: 9 source rows, 10 target rows
        yield rng.standard_normal((9, 2)), rng.standard_normal((10, 2)), rng.integers(0, 8, 9).astype("int32")


def test_seed_dann_matches_the_seed_program() -> None:
    spec = spec_lang.load(EXAMPLES / "seed_dann.dann")
    assert spec.program.hypers == {"hp_lambda": 0.5, "hp_mu": 0.01}
    model = spec.compile()
    port = _dann_port(model, 0.5)
    for xs, xt, ys in _dann_batches(11, STEPS):
        ours = model.train_step(xs=xs, xt=xt, ys=ys)
        assert abs(ours["objective"] - float(port.train(xs, xt, ys))) <= TOLERANCE
    _assert_same(_flat(model), port.values())


@pytest.mark.parametrize("example", ["seed_dann.dann", "dann_reverse_layer.dann"])
def test_reversal_agrees_between_numba_and_c_modes(example: str) -> None:
    spec = spec_lang.load(EXAMPLES / example, hp_mu=0.05)
    numba, c = spec.compile("NUMBA"), spec.compile("CVM")
    for xs, xt, ys in _dann_batches(5, 5):
        a, b = numba.train_step(xs=xs, xt=xt, ys=ys), c.train_step(xs=xs, xt=xt, ys=ys)
        assert a == pytest.approx(b, rel=1e-5)  # dann_reverse_layer is float32
    for name, value in numba.parameters.items():
        np.testing.assert_allclose(value, c.parameters[name], rtol=1e-4, atol=1e-6)


def test_lambda_changes_between_steps_without_recompiling() -> None:
    model = spec_lang.load(EXAMPLES / "seed_dann.dann").compile()
    train = model._train
    batches = list(_dann_batches(3, 6))
    for xs, xt, ys in batches[:3]:
        model.train_step(xs=xs, xt=xt, ys=ys)
    model.set_hyperparameters(hp_lambda=0.0)  # no reversal at all from here on
    port = _dann_port(model, 0.0)
    for xs, xt, ys in batches[3:]:
        assert abs(model.train_step(xs=xs, xt=xt, ys=ys)["objective"] - float(port.train(xs, xt, ys))) <= TOLERANCE
    _assert_same(_flat(model), port.values())
    assert model._train is train

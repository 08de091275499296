"""The lowering's optimisations (`spec_lang/optimize.py`) change speed, never results: batched passes, merged heads
and fused losses give the same losses and parameters as the graph as written (float64, 1e-10); the float32 fast
tanh stays within float32 rounding of tanh; the compile cache gives back a model that trains exactly like a fresh
one. Small models, FAST_COMPILE unless the Numba path itself is the point."""

from __future__ import annotations

import numpy as np
import pytensor
import pytest
from pytensor.graph.traversal import ancestors
from pytensor.tensor.math import Dot

import spec_lang
from spec_lang import program as P
from spec_lang.lowering.passes import Optimizations, batch_groups
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.pytensor.backend import PyTensorBackend
from spec_lang.lowering.walker import initial_values, lower

ALL_ON, ALL_OFF = Optimizations(compile_cache=False), Optimizations.none()

SHARED_HEADS = """model m(hp_lambda = 0.5)
seed 3
precision float64
input xs : float[batch, 5]
input xt : float[batch, 5]
input xu : float[batch, 5]
input ys : int[batch] < 3
stack features { dense 6 tanh; dense 6 relu }
stack label { dense 3 softmax }
stack domain { dense 4 tanh; dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
let fu = features(xu)
head label_probabilities = label(fs)
loss label_loss = crossentropy(label(fs), ys)
loss domain_loss = bce(domain(reverse(fs, lambda = hp_lambda)), 0) + bce(domain(reverse(ft, lambda = hp_lambda)), 1)
                 + bce(domain(reverse(fu, lambda = 0.25)), 1)
optimize sgd(lr = 0.1, momentum = 0.9) minimize label_loss + 0.5 * domain_loss
"""

# batch normalisation and dropout in the feature extractor: its applications must not be joined while training
STATISTICS = """model m()
seed 4
precision float64
input xs : float[batch, 4]
input xt : float[batch, 4]
input ys : int[batch] < 3
stack features { dense 6 tanh; batchnorm(); dropout(0.25) }
stack label { dense 3 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
loss label_loss = crossentropy(label(fs), ys)
loss domain_loss = bce(domain(reverse(fs, lambda = 1.0)), 0) + bce(domain(reverse(ft, lambda = 1.0)), 1)
optimize adam(lr = 0.01) minimize label_loss + domain_loss
"""

# two stacks that feed each other: s over xs and over t(xt), t over xt and over s(xs); batching both would be a
# cycle, so one application runs alone
CROSSED = """model m()
seed 5
precision float64
input xs : float[batch, 4]
input xt : float[batch, 4]
input ys : int[batch] < 4
stack s { dense 4 tanh }
stack t { dense 4 tanh }
stack out { dense 4 softmax }
let a = s(xs)
let b = t(xt)
loss one = crossentropy(out(s(b)), ys)
loss two = crossentropy(out(t(a)), ys)
optimize sgd(lr = 0.1) minimize one + two
"""


def batch(spec: spec_lang.Spec, rows: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Random data for every input, with a different number of rows for each."""
    rng = np.random.default_rng(seed)
    data = {}
    for value in spec.program.inputs:
        n = rows[value.name]
        if value.type.dtype == "int":
            data[value.name] = rng.integers(0, value.bound, n)
        else:
            data[value.name] = rng.normal(size=(n, *value.type.shape[1:]))
    return data


def train(model, data: dict[str, np.ndarray], steps: int) -> list[dict[str, float]]:
    return [model.train_step(**data) for _ in range(steps)]


@pytest.mark.parametrize("text, rows", [
    (SHARED_HEADS, {"xs": 7, "xt": 5, "xu": 6, "ys": 7}),
    (STATISTICS, {"xs": 6, "xt": 9, "ys": 6}),
    (CROSSED, {"xs": 5, "xt": 5, "ys": 5}),
])
def test_optimised_graph_gives_the_same_losses_and_parameters(text: str, rows: dict[str, int]) -> None:
    spec = spec_lang.loads(text)
    data = batch(spec, rows)
    optimised, plain = spec.compile("FAST_COMPILE", ALL_ON), spec.compile("FAST_COMPILE", ALL_OFF)
    for a, b in zip(train(optimised, data, 6), train(plain, data, 6), strict=True):
        assert a.keys() == b.keys()
        for name in a:
            assert a[name] == pytest.approx(b[name], rel=0, abs=1e-10), name
    for name, value in plain.parameters.items():
        np.testing.assert_allclose(optimised.parameters[name], value, rtol=0, atol=1e-10, err_msg=name)
    assert optimised.evaluate(**data) == pytest.approx(plain.evaluate(**data), rel=0, abs=1e-10)
    for head in spec.program.heads:  # predictions need only their own inputs, as without batching
        assert optimised.head_inputs(head) == plain.head_inputs(head)


def test_seed_dann_in_numba_mode_is_unchanged() -> None:
    spec = spec_lang.load("examples/seed_dann.dann")
    data = batch(spec, {"xs": 9, "xt": 10, "ys": 9})
    optimised, plain = spec.compile(None, ALL_ON), spec.compile(None, ALL_OFF)
    for a, b in zip(train(optimised, data, 5), train(plain, data, 5), strict=True):
        assert a == pytest.approx(b, rel=0, abs=1e-10)


def dots(program: P.Program, optimizations: Optimizations) -> int:
    """Matrix products in the training graph of the objective, before PyTensor rewrites it."""
    graph = lower(program, PyTensorBackend(program, initial_values(program)), True, optimizations)
    return sum(isinstance(v.owner.op, Dot) for v in ancestors([graph.objective]) if v.owner is not None)


def test_a_stack_over_several_inputs_is_one_pass() -> None:
    program = spec_lang.loads(SHARED_HEADS).program
    # features: 2 layers × 3 inputs, label: 1, domain: 2 layers × 3 reversed features, when each runs alone
    assert dots(program, ALL_OFF) == 6 + 1 + 6
    assert dots(program, Optimizations(merge_heads=False)) == 2 + 1 + 6
    assert dots(program, Optimizations(batch_inputs=False)) == 6 + 1 + 2
    assert dots(program, ALL_ON) == 2 + 1 + 2


def test_only_row_wise_stacks_are_joined_and_only_while_training() -> None:
    program = spec_lang.loads(STATISTICS).program
    roots = [t for loss in program.losses.values() for t in P.tensors(loss)]
    training = {g.stack for g in batch_groups(program, roots, True, ALL_ON).values()}
    inference = {g.stack for g in batch_groups(program, roots, False, ALL_ON).values()}
    assert training == {"domain"}  # batch statistics and dropout draws stay per input
    assert inference == {"features", "domain"}  # running statistics, no dropout: row-wise


def test_fast_tanh_is_float32_tanh_with_tanh_gradient() -> None:
    x = pytensor.tensor.fvector("x")
    y = ops.fast_tanh(x)
    f = pytensor.function([x], [y, pytensor.grad(y.sum(), x)], mode="FAST_COMPILE")
    values = np.concatenate([np.linspace(-12, 12, 20001), [0.0, 1e-30, -3e-4, np.inf, -np.inf]]).astype("float32")
    output, gradient = f(values)
    exact = np.tanh(values.astype("float64"))
    assert np.abs(output - exact).max() < 4e-7
    assert output[-2:].tolist() == [1.0, -1.0]
    np.testing.assert_allclose(gradient, 1 - output.astype("float64") ** 2, atol=1e-6)


def test_float32_model_with_fast_tanh_trains_like_exact_tanh() -> None:
    spec = spec_lang.loads(SHARED_HEADS.replace("precision float64", "precision float32"))
    data = batch(spec, {"xs": 7, "xt": 5, "xu": 6, "ys": 7})
    fast, exact = spec.compile("FAST_COMPILE", ALL_ON), spec.compile("FAST_COMPILE", Optimizations(fast_tanh=False))
    for a, b in zip(train(fast, data, 5), train(exact, data, 5), strict=True):
        assert a == pytest.approx(b, rel=1e-5)


def test_the_compile_cache_gives_back_a_model_that_trains_the_same(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    spec = spec_lang.loads(SHARED_HEADS)
    data = batch(spec, {"xs": 7, "xt": 5, "xu": 6, "ys": 7})
    first = spec.compile("FAST_COMPILE")
    second = spec_lang.loads(SHARED_HEADS).compile("FAST_COMPILE")  # the same spec, loaded again
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert len(list(tmp_path.glob("*.pkl"))) == 1
    assert train(second, data, 4) == train(first, data, 4)
    for name, value in first.parameters.items():  # the cached function updates the model's own parameters
        np.testing.assert_array_equal(second.parameters[name], value)
    second.set_parameters(first.parameters | {"label.0.b": np.ones(3)})
    first.set_parameters({"label.0.b": np.ones(3)})
    assert second.train_step(**data) == first.train_step(**data)
    second.set_hyperparameters(hp_lambda=0.1)
    first.set_hyperparameters(hp_lambda=0.1)
    assert second.train_step(**data) == first.train_step(**data)
    # anything that changes the graph is another entry: an override, other optimisations, another mode
    assert not spec_lang.loads(SHARED_HEADS, hp_lambda=0.3).compile("FAST_COMPILE").cache_hit
    assert not spec.compile("FAST_COMPILE", Optimizations(merge_heads=False)).cache_hit
    assert not spec.compile("FAST_COMPILE", ALL_ON).cache_hit  # compile_cache off: neither read nor written
    assert len(list(tmp_path.glob("*.pkl"))) == 3


def test_an_unreadable_cache_entry_is_compiled_afresh(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    spec = spec_lang.loads(SHARED_HEADS)
    spec.compile("FAST_COMPILE")
    [entry] = tmp_path.glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    model = spec.compile("FAST_COMPILE")
    assert not model.cache_hit
    assert spec.compile("FAST_COMPILE").cache_hit  # rewritten


def test_optimisations_by_name() -> None:
    assert Optimizations.parse([]) == Optimizations()
    assert Optimizations.parse(["all"]) == Optimizations.none()
    assert not Optimizations.parse(["fast_tanh", "compile_cache"]).fast_tanh
    with pytest.raises(ValueError, match="unknown optimisation 'nope'|unknown optimisation nope"):
        Optimizations.parse(["nope"])

"""WDGRL's building blocks: the critic loss `wasserstein`, the random points `interpolate(a, b)` and the
`gradient_penalty` (WGAN-GP) against independent NumPy references (a tanh critic's input gradient written out by
hand); the penalty's own gradient, a second derivative, against finite differences of the reference in the NUMBA, C
and JAX modes; interpolate's draws per step and their bit-identical resume; the summary and the emitted modules."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from emitted import import_module, train_side_by_side
from gradients import check_gradient

import spec_lang
from spec_lang.library.losses.critics import critic_gap
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.theano.target import emit_theano
from spec_lang.reports.graph import build_graph
from spec_lang.reports.summary import summary

MODE = "FAST_COMPILE"
CRITIC = """model m()
precision float64
input xs : float[batch, 3]
input xt : float[batch, 3]
stack critic { dense 4 tanh; dense 1 linear }
loss gap = wasserstein(critic(xs), critic(xt))
loss penalty = gradient_penalty(critic(xs), xs)
optimize sgd(lr = 0.5)
    minimize OBJECTIVE
"""
WDGRL = """model wdgrl(gamma = 10)
precision float64
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features { dense 4 tanh }
stack label { dense 3 softmax }
stack critic { dense 4 relu; dense 1 linear }
let fs = features(xs)
let ft = features(xt)
let mix = interpolate(reverse(fs, lambda = 0), reverse(ft, lambda = 0))
head mixed = interpolate(xs, xt)
loss label_loss = crossentropy(label(fs), ys)
adversarial loss gap = wasserstein(critic(reverse(fs, lambda = 1)), critic(reverse(ft, lambda = 1)))
loss penalty = gradient_penalty(critic(mix), mix)
optimize sgd(lr = 0.05)
    minimize label_loss - gap + gamma * penalty
"""
SECOND_ORDER = """model second_order()
precision float64
input xs : float[batch, 3]
stack critic { dense 1 tanh }
loss penalty = gradient_penalty(critic(xs), xs)
optimize sgd(lr = 0.5)
    minimize penalty
"""
PHASES = """model wdgrl_phases(gamma = 10)
precision float64
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features { dense 4 tanh }
stack label { dense 3 softmax }
stack critic { dense 4 relu; dense 1 linear }
let fs = features(xs)
let ft = features(xt)
let mix = interpolate(fs, ft)
loss label_loss = crossentropy(label(fs), ys)
loss gap = wasserstein(critic(fs), critic(ft))
loss penalty = gradient_penalty(critic(mix), mix)
optimize critic_step = adam(lr = 0.01) updates critic repeat 2 minimize gamma * penalty - gap
optimize feature_step = adam(lr = 0.01) updates features, label minimize label_loss + gap
"""


def _critic(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The critic's scores [n, 1] and its hidden layer tanh(x W0 + b0)."""
    hidden = np.tanh(x @ params["critic.0.W"] + params["critic.0.b"])
    return hidden @ params["critic.1.W"] + params["critic.1.b"], hidden


def _penalty(params: dict[str, np.ndarray], x: np.ndarray) -> float:
    """WGAN-GP by hand: ∂c/∂x_i = W0 · ((1 − h_i²) ⊙ w1) for the tanh critic, then the mean of (‖·‖ − 1)²."""
    _, hidden = _critic(params, x)
    gradients = ((1 - hidden**2) * params["critic.1.W"][:, 0]) @ params["critic.0.W"].T
    return float(np.mean([(np.sqrt(g @ g) - 1) ** 2 for g in gradients]))


def _one_layer_penalty(params: dict[str, np.ndarray], x: np.ndarray) -> float:
    """WGAN-GP by hand for c = tanh(x w + b): ∂c/∂x_i = (1 − c_i²) w."""
    scores = np.tanh(x @ params["critic.0.W"] + params["critic.0.b"])
    return float(np.mean([(np.linalg.norm((1 - c**2) * params["critic.0.W"][:, 0]) - 1) ** 2 for c in scores[:, 0]]))


def _batch(rng: np.random.Generator, rows: tuple[int, int] = (5, 4), width: int = 3) -> dict[str, np.ndarray]:
    return {"xs": rng.normal(size=(rows[0], width)), "xt": rng.normal(size=(rows[1], width))}


def test_critic_gap_is_the_difference_of_the_means() -> None:
    source, target = np.array([[1.0], [2.0], [6.0]]), np.array([[-1.0], [1.0]])
    assert critic_gap(source, target, np) == pytest.approx(3.0)
    built = critic_gap(pt.matrix(dtype="float32"), pt.matrix(dtype="float32"), pt)
    assert built.dtype == "float32"


def test_the_compiled_losses_give_the_references() -> None:
    model = spec_lang.loads(CRITIC.replace("OBJECTIVE", "penalty - gap")).compile(MODE)
    batch = _batch(np.random.default_rng(0))
    params = model.parameters
    losses = model.evaluate(**batch)
    expected_gap = _critic(params, batch["xs"])[0].mean() - _critic(params, batch["xt"])[0].mean()
    assert losses["gap"] == pytest.approx(expected_gap, rel=1e-12)
    assert losses["penalty"] == pytest.approx(_penalty(params, batch["xs"]), rel=1e-12)


def test_gradient_penalty_gradient() -> None:
    """The penalty's gradient in the critic's weights and in the points: second derivatives of the critic."""
    rng = np.random.default_rng(1)
    w1 = pt.constant(rng.normal(size=(4, 1)))

    def penalty(weights, points):
        return ops.gradient_penalty(pt.dot(pt.tanh(pt.dot(points, weights)), w1), points)

    check_gradient(penalty, [rng.normal(size=(3, 4)), rng.normal(size=(5, 3))], rng)


def test_a_zero_gradient_has_a_finite_penalty_gradient() -> None:
    points = pt.matrix("x", dtype="float64")
    weights = pt.matrix("w", dtype="float64")
    cost = ops.gradient_penalty(pt.dot(points, weights) * 0, points)  # ∂c/∂x = 0: the norm's floor
    value, gradient = pytensor.function([points, weights], [cost, pytensor.grad(cost, weights)], mode=MODE)(
        np.ones((2, 3)), np.ones((3, 1))
    )
    assert value == pytest.approx(1.0, rel=1e-5)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize(
    "mode",
    [
        "NUMBA",
        "C",
        pytest.param("JAX", marks=pytest.mark.skipif(find_spec("jax") is None, reason="JAX is not installed")),
    ],
)
def test_one_step_on_the_penalty_follows_its_second_order_gradient(mode: str) -> None:
    """One SGD step on the penalty alone moves the critic by -lr times the finite-difference gradient of the NumPy
    reference: the compiled second derivative is right in each mode."""
    model = spec_lang.loads(SECOND_ORDER).compile(mode)
    batch = {"xs": np.random.default_rng(2).normal(size=(4, 3))}
    before = model.parameters
    model.train_step(**batch)
    after = model.parameters
    for name, value in before.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(*value.shape):
            up, down = dict(before), dict(before)
            up[name], down[name] = value.copy(), value.copy()
            up[name][index] += 1e-6
            down[name][index] -= 1e-6
            numeric[index] = (_one_layer_penalty(up, batch["xs"]) - _one_layer_penalty(down, batch["xs"])) / 2e-6
        assert after[name] == pytest.approx(value - 0.5 * numeric, rel=1e-6, abs=1e-8), name


def test_interpolate_draws_alpha_per_row_from_its_generator() -> None:
    """The head's generator in the inference graph is the spec's seed and index 1 (`mix` takes 0), drawn as numpy's
    default_rng draws; the rows are the first min(rows) of each batch."""
    model = spec_lang.loads(WDGRL).compile(MODE)
    rng = np.random.default_rng(3)
    xs, xt = rng.normal(size=(5, 2)), rng.normal(size=(3, 2))
    alpha = np.random.default_rng([0, 1]).uniform(size=3)[:, None]
    assert model.predict("mixed", xs=xs, xt=xt) == pytest.approx(alpha * xs[:3] + (1 - alpha) * xt, rel=1e-12)


@pytest.mark.parametrize("text", [WDGRL, PHASES], ids=["one objective", "phases"])
def test_interpolate_draws_anew_each_step_and_resumes_bit_identically(text: str) -> None:
    spec = spec_lang.loads(text)
    model = spec.compile(MODE)
    rng = np.random.default_rng(4)
    batches = [{**_batch(rng, width=2), "ys": rng.integers(0, 3, 5).astype("int32")} for _ in range(3)]
    model.train_step(**batches[0])
    arrays, meta = model.state_dict()
    states = [model.random_state]
    expected = model.train_step(**batches[1])
    states.append(model.random_state)
    assert states[0] != states[1]  # interpolate's generator moved on
    resumed = spec.compile(MODE)
    resumed.load_state_dict(arrays, meta)
    assert resumed.train_step(**batches[1]) == expected
    assert resumed.train_step(**batches[2]) == model.train_step(**batches[2])


def test_the_summary_shows_the_blocks() -> None:
    text = summary(spec_lang.loads(WDGRL).program, "wdgrl.dann", None, MODE)
    assert "penalty     = gradient_penalty(critic(mix), mix)" in text
    assert "gap         = wasserstein(critic(reverse(fs, λ = 1)), critic(reverse(ft, λ = 1)))  (adversarial)" in text
    assert "mixed  = interpolate(xs, xt)" in text
    graph = build_graph(spec_lang.loads(WDGRL).program)
    assert [node.lines[0] for node in graph.nodes if node.kind == "interpolate"] == [
        "mix = interpolate(reverse(fs), reverse(ft))",
        "head mixed = interpolate(xs, xt)",
    ]


def test_the_emitted_modules(tmp_path: Path) -> None:
    """The PyTensor module trains as the compiled model, interpolate's draws included; Theano's has its forms."""
    program = spec_lang.loads(WDGRL).program
    path = tmp_path / "wdgrl_model.py"
    path.write_text(emit_python(program, "wdgrl.dann"))
    generated = import_module(path)
    train, *_ = generated.compile_model(mode=MODE)
    model = spec_lang.loads(WDGRL).compile(MODE)
    train_side_by_side(model, generated, train, 2, np.random.default_rng(5), rel=1e-10)
    theano = emit_theano(program, "wdgrl.dann")
    assert "tt.raw_random.uniform(generator" in theano and "theano.grad(output.sum(), wrt)" in theano

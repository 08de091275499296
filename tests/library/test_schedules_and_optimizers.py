"""Training: schedules of the training progress, the optimisers against numpy references, gradient clipping,
per-stack learning-rate multipliers, frozen stacks and the optimiser's state."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytensor
import pytest
from emitted import import_module, train_side_by_side

import spec_lang
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.reports.summary import summary
from spec_lang.semantics.scalars import evaluate
from spec_lang.syntax.builder import ModelBuilder, adam, annealed, dense, mse, warmup
from spec_lang.syntax.jsonio import dumps_json, loads_json

MODE = "FAST_COMPILE"  # numerics are mode-independent; test_fidelity covers the default mode
TIGHT = {"rtol": 1e-12, "atol": 1e-14}
PROGRESS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)

# A linear layer fitted by mean squared error: its gradient is easy to write in numpy.
LINEAR = """\
model linear()
precision float64
input x : float[batch, 3]
input t : float[batch, 2]
stack net { dense 2 linear }
loss fit = mse(net(x), t)
optimize OPTIMIZER
"""

# Two stacks, so that one can be treated differently from the other.
TWO_STACKS = """\
model two()
precision float64
input x : float[batch, 3]
input t : float[batch, 2]
stack body OPTIONS { dense 4 tanh }
stack top { dense 2 linear }
loss fit = mse(top(body(x)), t)
optimize OPTIMIZER
"""


def linear(optimizer: str) -> spec_lang.CompiledModel:
    return spec_lang.loads(LINEAR.replace("OPTIMIZER", optimizer)).compile(MODE)


def two_stacks(options: str, optimizer: str = "sgd(lr = 0.1)") -> spec_lang.CompiledModel:
    return spec_lang.loads(TWO_STACKS.replace("OPTIONS", options).replace("OPTIMIZER", optimizer)).compile(MODE)


def batches(count: int, seed: int = 0, scale: float = 1.0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(size=(5, 3)), "t": scale * rng.normal(size=(5, 2))} for _ in range(count)]


def gradients(params: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """∂ mean((x W + b - t)²) / ∂(W, b)."""
    residual = batch["x"] @ params["net.0.W"] + params["net.0.b"] - batch["t"]
    d = 2 * residual / residual.size
    return {"net.0.W": batch["x"].T @ d, "net.0.b": d.sum(axis=0)}


# Schedules ---------------------------------------------------------------------------------------

SCHEDULES: dict[str, Callable[[float], float]] = {
    "constant(0.25)": lambda p: 0.25,
    "dann_lambda()": lambda p: 2 / (1 + np.exp(-10 * p)) - 1,
    "dann_lambda(max = 2, gamma = 5)": lambda p: 2 * (2 / (1 + np.exp(-5 * p)) - 1),
    "warmup(3)": lambda p: 3 * min(p / 0.1, 1),
    "warmup(max = 0.5, until = 0.4)": lambda p: 0.5 * min(p / 0.4, 1),
    "annealed(0.01)": lambda p: 0.01 / (1 + 10 * p) ** 0.75,
    "annealed(lr0 = 0.1, alpha = 5, beta = 0.5)": lambda p: 0.1 / (1 + 5 * p) ** 0.5,
    "step_decay(1)": lambda p: 0.1 ** np.floor(p / 0.3),
    "step_decay(0.5, factor = 0.5, every = 0.2)": lambda p: 0.5 * 0.5 ** np.floor(p / 0.2),
    "cosine(0.1)": lambda p: 0.1 * (1 + np.cos(np.pi * p)) / 2,
    "cosine(lr0 = 0.1, final = 0.02)": lambda p: 0.02 + 0.08 * (1 + np.cos(np.pi * p)) / 2,
    "warmup(w)": lambda p: 0.75 * min(p / 0.1, 1),  # a parameter as an argument
}

# Each schedule weighs a copy of one loss, so the ratio of the two is the schedule's value in the compiled graph.
WEIGHTED = "model weighted(w = 0.75)\nprecision float64\ninput x : float[batch, 3]\ninput t : float[batch, 2]\n" \
           "stack net { dense 2 linear }\nloss plain = mse(net(x), t)\n" \
           + "".join(f"loss s{i} = {s} * mse(net(x), t)\n" for i, s in enumerate(SCHEDULES)) \
           + "optimize sgd(lr = 0.1) minimize plain\n"


@pytest.fixture(scope="module")
def weighted() -> spec_lang.Spec:
    return spec_lang.loads(WEIGHTED)


def test_every_schedule_follows_its_formula_in_the_compiled_graph(weighted) -> None:
    model = weighted.compile(MODE)
    batch = batches(1)[0]
    for p in PROGRESS:
        model.set_progress(p)
        losses = model.evaluate(**batch)
        for i, (text, formula) in enumerate(SCHEDULES.items()):
            assert losses[f"s{i}"] / losses["plain"] == pytest.approx(formula(p), rel=1e-12, abs=1e-15), (text, p)


def test_the_checks_and_the_summary_evaluate_schedules_by_the_same_formulas(weighted) -> None:
    program = weighted.program
    for i, (text, formula) in enumerate(SCHEDULES.items()):
        for p in PROGRESS:
            weight = program.losses[f"s{i}"].left
            assert evaluate(weight, program.hypers, p) == pytest.approx(formula(p), rel=1e-12, abs=1e-15), text


def test_the_summary_shows_each_schedule_at_the_start_middle_and_end() -> None:
    spec = spec_lang.loads(LINEAR.replace("OPTIMIZER", "adam(lr = annealed(0.01), clip_norm = 5)"))
    lines = summary(spec.program, "linear.dann", None, MODE).splitlines()
    assert "  adam(lr = annealed(lr0 = 0.01, alpha = 10, beta = 0.75), beta1 = 0.9, beta2 = 0.999, " \
           "epsilon = 1e-08, weight_decay = 0, clip_norm = 5) minimize fit" in lines
    header = lines.index("schedules (values at training progress 0, 0.5, 1)")
    assert lines[header + 1].split("  ") == ["", "annealed(lr0 = 0.01, alpha = 10, beta = 0.75)", "0.01",
                                            f"{0.01 / 6 ** 0.75:.4g}", f"{0.01 / 11 ** 0.75:.4g}"]


def test_progress_changes_the_values_used_without_recompiling(weighted, monkeypatch) -> None:
    model = weighted.compile(MODE)
    batch = batches(1)[0]
    model.evaluate(**batch)
    train, evaluate = model._train, model._evaluate
    compiled: list[object] = []
    function = pytensor.function

    def counting(*args, **kwargs):
        compiled.append(args)
        return function(*args, **kwargs)
    monkeypatch.setattr(pytensor, "function", counting)
    seen = []
    for p in (0.0, 0.5, 1.0):
        model.set_progress(p)
        assert model.progress == p
        seen.append(model.evaluate(**batch)["s1"])
        model.train_step(**batch)
    assert len(set(seen)) == 3 and seen[0] == 0  # dann_lambda() rises from 0
    assert (model._train, model._evaluate, compiled) == (train, evaluate, [])
    with pytest.raises(ValueError, match="between 0 and 1"):
        model.set_progress(1.5)


def test_a_learning_rate_schedule_sets_each_step_size() -> None:
    model = linear("sgd(lr = annealed(0.1))")
    params = model.parameters
    for p, batch in zip((0.0, 0.3, 1.0), batches(3), strict=True):
        model.set_progress(p)
        grads = gradients(params, batch)
        params = {n: v - 0.1 / (1 + 10 * p) ** 0.75 * grads[n] for n, v in params.items()}
        model.train_step(**batch)
        for name, value in model.parameters.items():
            np.testing.assert_allclose(value, params[name], **TIGHT)


def test_a_lambda_schedule_sets_how_much_reversed_gradient_reaches_the_features() -> None:
    spec = spec_lang.loads("model m()\nprecision float64\ninput x : float[batch, 3]\nstack features { dense 4 tanh }\n"
                           "stack domain { dense 1 sigmoid }\n"
                           "loss dom = bce(domain(reverse(features(x), lambda = dann_lambda())), 0)\n"
                           "optimize sgd(lr = 0.1)")
    model = spec.compile(MODE)
    x = batches(1)[0]["x"]
    before = model.parameters
    model.train_step(x=x)  # progress 0: λ = 0, so only the domain classifier learns
    after = model.parameters
    assert np.array_equal(after["features.0.W"], before["features.0.W"])
    assert not np.array_equal(after["domain.0.W"], before["domain.0.W"])
    model.set_progress(1.0)
    model.train_step(x=x)
    assert not np.array_equal(model.parameters["features.0.W"], after["features.0.W"])


# Optimisers against numpy ----------------------------------------------------------------------

Rule = Callable[[str, np.ndarray, np.ndarray, int], np.ndarray]  # (name, parameter, gradient, step) → new value


def sgd_reference(lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> Rule:
    velocity: dict[str, np.ndarray] = {}

    def step(name: str, p: np.ndarray, g: np.ndarray, t: int) -> np.ndarray:
        direction = g
        if momentum:
            velocity[name] = momentum * velocity.get(name, 0) + g
            direction = g + momentum * velocity[name] if nesterov else velocity[name]
        return p - lr * (direction + weight_decay * p)
    return step


def adam_reference(lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
         weight_decay: float = 0.0) -> Rule:
    m: dict[str, np.ndarray] = {}
    v: dict[str, np.ndarray] = {}

    def step(name: str, p: np.ndarray, g: np.ndarray, t: int) -> np.ndarray:
        m[name] = beta1 * m.get(name, 0) + (1 - beta1) * g
        v[name] = beta2 * v.get(name, 0) + (1 - beta2) * g * g
        m_hat, v_hat = m[name] / (1 - beta1 ** t), v[name] / (1 - beta2 ** t)
        return p - lr * (m_hat / (np.sqrt(v_hat) + epsilon) + weight_decay * p)
    return step


def rmsprop_reference(lr: float = 0.001, rho: float = 0.9, epsilon: float = 1e-8,
                      weight_decay: float = 0.0) -> Rule:
    square: dict[str, np.ndarray] = {}

    def step(name: str, p: np.ndarray, g: np.ndarray, t: int) -> np.ndarray:
        square[name] = rho * square.get(name, 0) + (1 - rho) * g * g
        return p - lr * (g / (np.sqrt(square[name]) + epsilon) + weight_decay * p)
    return step


OPTIMIZERS = [
    pytest.param("sgd(lr = 0.1)", sgd_reference(0.1), id="sgd"),
    pytest.param("sgd(lr = 0.1, momentum = 0.9)", sgd_reference(0.1, momentum=0.9), id="momentum"),
    pytest.param("sgd(lr = 0.1, momentum = 0.9, nesterov = true)", sgd_reference(0.1, 0.9, nesterov=True),
                 id="nesterov"),
    pytest.param("sgd(lr = 0.1, weight_decay = 0.05)", sgd_reference(0.1, weight_decay=0.05), id="sgd-weight-decay"),
    pytest.param("sgd(lr = 0.1, momentum = 0.5, weight_decay = 0.05)", sgd_reference(0.1, 0.5, weight_decay=0.05),
                 id="momentum-weight-decay"),
    pytest.param("adam()", adam_reference(), id="adam-defaults"),
    pytest.param("adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, epsilon = 1e-6, weight_decay = 0.1)",
                 adam_reference(0.01, 0.8, 0.99, 1e-6, 0.1), id="adam"),
    pytest.param("rmsprop()", rmsprop_reference(), id="rmsprop-defaults"),
    pytest.param("rmsprop(lr = 0.01, rho = 0.5, epsilon = 1e-4, weight_decay = 0.1)",
                 rmsprop_reference(0.01, 0.5, 1e-4, 0.1), id="rmsprop"),
]


@pytest.mark.parametrize(("optimizer", "rule"), OPTIMIZERS)
def test_the_first_steps_match_a_numpy_reference(optimizer: str, rule: Rule) -> None:
    model = linear(optimizer)
    params = model.parameters
    for t, batch in enumerate(batches(4), 1):
        grads = gradients(params, batch)
        params = {n: rule(n, v, grads[n], t) for n, v in params.items()}
        model.train_step(**batch)
        for name, value in model.parameters.items():
            np.testing.assert_allclose(value, params[name], **TIGHT, err_msg=f"{name} after step {t}")


def test_a_huge_gradient_is_clipped_to_the_global_norm() -> None:
    model = linear("sgd(lr = 1, clip_norm = 0.5)")
    batch = batches(1, scale=1e6)[0]
    before = model.parameters
    grads = gradients(before, batch)
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    assert norm > 1e5
    model.train_step(**batch)
    for name, value in model.parameters.items():  # the step is -0.5 · g / ‖g‖: the direction kept, the norm 0.5
        np.testing.assert_allclose(value, before[name] - 0.5 * grads[name] / norm, **TIGHT)


def test_a_gradient_below_the_clipping_norm_is_untouched() -> None:
    clipped, plain = linear("sgd(lr = 0.1, clip_norm = 1e6)"), linear("sgd(lr = 0.1)")
    for batch in batches(3):
        clipped.train_step(**batch)
        plain.train_step(**batch)
    for name, value in plain.parameters.items():
        np.testing.assert_array_equal(clipped.parameters[name], value)


# Stack options ---------------------------------------------------------------------------------


def _moves(model: spec_lang.CompiledModel, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    before = model.parameters
    model.train_step(**batch)
    return {n: v - before[n] for n, v in model.parameters.items()}


@pytest.mark.parametrize("optimizer", ["sgd(lr = 0.1)", "adam(lr = 0.01, weight_decay = 0.1)"])
def test_lr_mult_scales_the_first_step_of_a_stack(optimizer: str) -> None:
    batch = batches(1)[0]
    full = _moves(two_stacks("", optimizer), batch)
    half = _moves(two_stacks("(lr_mult = 0.5)", optimizer), batch)
    still = _moves(two_stacks("(lr_mult = 0)", optimizer), batch)
    for name in full:
        if name.startswith("body."):
            np.testing.assert_allclose(half[name], 0.5 * full[name], **TIGHT)
            assert full[name].any() and not still[name].any()
        else:  # the other stack moves as it would without the multiplier
            np.testing.assert_allclose(half[name], full[name], **TIGHT)
            np.testing.assert_allclose(still[name], full[name], **TIGHT)


def assert_only_the_top_stack_moves(model, steps: int) -> None:
    start = model.parameters
    for batch in batches(steps):
        model.train_step(**batch)
    assert all(np.array_equal(v, start[n]) for n, v in model.parameters.items() if n.startswith("body."))
    assert not np.array_equal(model.parameters["top.0.W"], start["top.0.W"])


def test_lr_mult_zero_keeps_a_stack_still_over_many_sgd_steps() -> None:
    assert_only_the_top_stack_moves(two_stacks("(lr_mult = 0)", "sgd(lr = 0.1, momentum = 0.9)"), 5)


def test_a_frozen_stack_is_never_updated_and_has_no_optimiser_state() -> None:
    model = two_stacks("(frozen = true)", "adam(lr = 0.01, weight_decay = 0.1)")
    assert_only_the_top_stack_moves(model, 3)
    assert sorted(model.optimizer_state) == ["step", "top.0.W.m", "top.0.W.v", "top.0.b.m", "top.0.b.v"]


# The optimiser's state -------------------------------------------------------------------------


@pytest.mark.parametrize(("optimizer", "names"), [
    ("sgd(lr = 0.1)", []),
    ("sgd(lr = 0.1, momentum = 0.9)", ["net.0.W.velocity", "net.0.b.velocity"]),
    ("adam()", ["net.0.W.m", "net.0.W.v", "net.0.b.m", "net.0.b.v", "step"]),
    ("rmsprop()", ["net.0.W.mean_square", "net.0.b.mean_square"]),
])
def test_the_optimiser_state_round_trips(optimizer: str, names: list[str]) -> None:
    trained = linear(optimizer)
    first, last = batches(3), batches(1, seed=1)[0]
    for batch in first:
        trained.train_step(**batch)
    state = trained.optimizer_state
    assert sorted(state) == names
    restored, forgetful = linear(optimizer), linear(optimizer)
    for model in (restored, forgetful):
        model.set_parameters(trained.parameters)
    restored.set_optimizer_state(state)
    for model in (trained, restored, forgetful):
        model.train_step(**last)
    for name, value in trained.parameters.items():
        np.testing.assert_array_equal(restored.parameters[name], value)
    assert names == [] or not np.array_equal(forgetful.parameters["net.0.W"], trained.parameters["net.0.W"])


def test_the_optimiser_state_is_a_copy_checked_by_name_and_shape() -> None:
    model = linear("adam()")
    model.train_step(**batches(1)[0])
    state = model.optimizer_state
    assert state["step"] == 1
    state["net.0.W.m"][:] = 7
    assert not (model.optimizer_state["net.0.W.m"] == 7).any()
    with pytest.raises(KeyError, match="not optimiser state variables of this model: net.0.W.velocity"):
        model.set_optimizer_state({"net.0.W.velocity": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="has shape"):
        model.set_optimizer_state({"net.0.W.m": np.zeros(3)})


# The other doors and the emitted module --------------------------------------------------------


def test_the_builder_and_json_spell_optimisers_and_schedules_as_the_text() -> None:
    text = spec_lang.loads(LINEAR.replace("OPTIMIZER", "adam(lr = annealed(0.01, beta = 0.5), clip_norm = 1) "
                                                       "minimize warmup(2) * fit")).model
    m = ModelBuilder("linear")
    m.precision("float64")
    x, t = m.input("x", "float", ["batch", 3]), m.input("t", "float", ["batch", 2])
    net = m.stack("net", dense(2, "linear"))
    fit = m.loss("fit", mse(net(x), t))
    m.optimize(adam(lr=annealed(0.01, beta=0.5), clip_norm=1), minimize=warmup(2) * fit)
    assert m.build() == text
    assert loads_json(dumps_json(text), "linear.json") == text


# The emitted module ----------------------------------------------------------------------------

MIXED = """\
model mixed(hp_mu = 0.01)
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 3
stack features(lr_mult = 0.5) { dense 4 tanh }
stack label { dense 3 softmax }
stack domain { dense 4 tanh; dense 1 sigmoid }
stack spare(frozen = true) { dense 3 tanh }
let fs = features(xs)
let ft = features(xt)
head spare_features = spare(xs)
loss label_loss = crossentropy(label(fs), ys)
loss domain_loss = bce(domain(reverse(fs, lambda = dann_lambda())), 0)
                 + bce(domain(reverse(ft, lambda = dann_lambda())), 1)
optimize OPTIMIZER minimize label_loss + warmup(1, until = 0.2) * domain_loss
"""


@pytest.mark.parametrize("optimizer", ["adam(lr = annealed(hp_mu), clip_norm = 1, weight_decay = 1e-3)",
                                       "sgd(lr = cosine(0.1), momentum = 0.9, nesterov = true)"])
def test_the_emitted_module_trains_like_the_compiled_model(optimizer: str, tmp_path) -> None:
    spec = spec_lang.loads(MIXED.replace("OPTIMIZER", optimizer))  # float32, schedules, lr_mult and frozen
    target = tmp_path / "mixed.py"
    target.write_text(emit_python(spec.program, "mixed.dann"))
    generated = import_module(target)
    train, _, params, _, progress, state = generated.compile_model(mode=MODE)
    model = spec.compile(MODE)
    train_side_by_side(model, generated, train, 5, np.random.default_rng(0), rel=1e-5, progress=progress)
    for name, value in model.parameters.items():
        np.testing.assert_allclose(params[name].get_value(), value, rtol=1e-4, atol=1e-6)
    assert sorted(state) == sorted(model.optimizer_state)
    for name, value in model.optimizer_state.items():
        np.testing.assert_allclose(state[name].get_value(), value, rtol=1e-4, atol=1e-7)

"""The layers beyond `dense` and `reverse`: more activations, dropout, batch normalisation and image layers
(conv2d, maxpool, avgpool, flatten, reshape). Their shapes are inferred and checked statically, each layer's
lowering has the right gradients, dropout and batch normalisation act differently when training, a small
convolutional model trains in the default (Numba) mode, and `--emit python` computes the same numbers."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from emitted import import_module, train_side_by_side
from gradients import check_gradient

import spec_lang
from spec_lang.library.layers import LAYERS, Lowering
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.pytensor.backend import PyTensorBackend
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.walker import initial_values
from spec_lang.reports.summary import listing
from spec_lang.syntax import ir
from spec_lang.syntax.jsonio import dump_json, load_json
from spec_lang.syntax.parser import parse
from spec_lang.syntax.printer import format_model

MODE = "FAST_COMPILE"  # where the mode does not matter: it compiles fastest
ROOT = Path(__file__).resolve().parents[2]


def stack_model(layers: str, dims: str, precision: str = "float64") -> str:
    """A model whose stack `net` (line 4) holds the layers, then `flatten()` and a 2-class softmax."""
    shape = f"batch, {dims}" if dims else "batch"
    return (f"model m()\ninput x : float[{shape}]\ninput y : int[batch] < 2\n"
            f"stack net {{ {layers}; flatten(); dense 2 softmax }}\nhead p = net(x)\n"
            f"loss xent = crossentropy(p, y)\noptimize sgd(lr = 0.1)\nprecision {precision}\n")


def first_layer(layers: str, dims: str):
    return spec_lang.loads(stack_model(layers, dims)).program.stack("net").layers[0]


# Shapes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer, dims, out_shape", [
    ("conv2d(8, 5)", "1, 28, 28", (None, 8, 24, 24)),
    ("conv2d(8, 5, stride = 3, padding = 2, activation = relu)", "3, 28, 28", (None, 8, 10, 10)),
    ("conv2d(4, 3, padding = 1)", "2, 5, 7", (None, 4, 5, 7)),
    ("maxpool(2)", "4, 12, 10", (None, 4, 6, 5)),
    ("maxpool(3, stride = 2)", "4, 7, 7", (None, 4, 3, 3)),
    ("avgpool(4)", "2, 8, 12", (None, 2, 2, 3)),
    ("flatten()", "3, 4, 5", (None, 60)),
    ("flatten()", "7", (None, 7)),
    ("reshape([1, 28, 28])", "784", (None, 1, 28, 28)),
    ("reshape([49, 16])", "4, 14, 14", (None, 49, 16)),
    ("batchnorm()", "5", (None, 5)),
    ("batchnorm(momentum = 0.5, epsilon = 0.001)", "3, 4, 4", (None, 3, 4, 4)),
    ("dropout(0.25)", "2, 3, 3", (None, 2, 3, 3)),
    ("dense 6 leaky_relu", "4", (None, 6)),
    ("dense 6 elu", "4", (None, 6)),
    ("dense 6 gelu", "4", (None, 6)),
])
def test_shapes_are_inferred(layer: str, dims: str, out_shape: tuple) -> None:
    assert first_layer(layer, dims).out_shape == out_shape


def test_parameters_and_default_options() -> None:
    conv = first_layer("conv2d(8, 5)", "3, 12, 12")
    assert [(p.name, p.shape, p.role, p.trainable) for p in conv.params] == [
        ("net.0.W", (8, 3, 5, 5), "weights", True), ("net.0.b", (8,), "biases", True)]
    assert dict(conv.options) == {"filters": 8, "kernel": 5, "stride": 1, "padding": 0, "activation": "linear"}
    norm = first_layer("batchnorm()", "3, 4, 4")
    assert [(p.name, p.shape, p.role, p.trainable) for p in norm.params] == [
        ("net.0.scale", (3,), "scale", True), ("net.0.shift", (3,), "shift", True),
        ("net.0.mean", (3,), "mean", False), ("net.0.variance", (3,), "variance", False)]
    assert dict(norm.options) == {"momentum": 0.9, "epsilon": 1e-5}
    assert dict(first_layer("avgpool(3)", "1, 9, 9").options) == {"size": 3, "stride": 3}
    spec = spec_lang.loads(stack_model("conv2d(8, 5); batchnorm(); maxpool(2)", "3, 12, 12"))
    assert spec.program.stack("net").parameter_count == 8 * 3 * 25 + 8 + 2 * 8 + (8 * 4 * 4) * 2 + 2
    values = initial_values(spec.program)
    assert np.all(values["net.1.scale"] == 1) and np.all(values["net.1.variance"] == 1)
    assert np.all(values["net.1.shift"] == 0) and np.all(values["net.1.mean"] == 0)


def test_the_language_reference_example_has_the_shapes_its_comments_give() -> None:
    text = (ROOT / "docs/language.md").read_text(encoding="utf-8")
    block = re.search(r"### Images, dropout and batch normalisation\n\n```\n(.*?)```", text, re.S).group(1)
    spec = spec_lang.loads(f"model m()\n{block}input y : int[batch] < 2\nstack label {{ dense 2 softmax }}\n"
                           "loss xent = crossentropy(label(features(x)), y)\noptimize sgd(lr = 0.1)\n")
    layers = spec.program.stack("features").layers
    commented = [line.split("#")[1].strip() for line in block.splitlines()[2:] if "#" in line]
    shapes = [f"[{', '.join('batch' if d is None else str(d) for d in layer.out_shape)}]" for layer in layers]
    assert shapes[:len(commented)] == commented


def test_image_layers_survive_print_json_and_parse_and_are_listed() -> None:
    text = stack_model("conv2d(8, 3, stride = 2, padding = 1, activation = gelu); maxpool(2, stride = 1); "
                       "batchnorm(momentum = 0.5); dropout(0.1); avgpool(2); reshape([8, 9])", "1, 13, 13")
    model = parse(text)
    assert parse(format_model(model)) == model
    assert load_json(dump_json(model)) == model
    assert "conv2d(8, 3, stride = 2, padding = 1, activation = gelu)" in format_model(model)
    text = listing(spec_lang.loads(text).program)
    assert "conv2d(filters = 8, kernel = 3, stride = 2, padding = 1, activation = gelu) → float64[batch, 8, 7, 7]" \
        in text
    assert "reshape(shape = [8, 9]) → float64[batch, 8, 9]" in text


# Located errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer, dims, message, hint", [
    ("conv2d(8, 5)", "1, 4, 4", "conv2d's 5×5 kernel is larger than its 4×4 input", "padding = 1"),
    ("conv2d(8, 7, padding = 1)", "1, 4, 4", "7×7 kernel is larger than its 4×4 input padded by 1", "padding = 2"),
    ("conv2d(8, 5, stride = 2)", "1, 28, 28", "(28 - 5) / 2 + 1 = 12.5", "use a 6×6 kernel, or stride = 1"),
    ("conv2d(8, 5, stride = 3)", "1, 28, 28", "(28 - 5) / 3 + 1 = 8.66667", "use padding = 2, or stride = 1"),
    ("maxpool(2)", "3, 7, 7", "maxpool's 2×2 windows 2 apart do not fit its 7×7 input", "maxpool(3, stride = 2)"),
    ("avgpool(2)", "3, 7, 6", "(7 - 2) / 2 + 1 = 3.5", "use stride = 1"),
    ("avgpool(5)", "3, 4, 4", "avgpool's 5×5 window is larger than its 4×4 input", "a window of at most 4"),
    ("conv2d(8, 3)", "784", "conv2d needs an image input [batch, channels, height, width], got [batch, 784]",
     "reshape([1, 28, 28])"),
    ("maxpool(2)", "3, 4", "maxpool needs an image input", "reshape([1, 3, 4])"),
    ("avgpool(2)", "10", "got [batch, 10]", "float[batch, 1, 28, 28]"),
    ("batchnorm()", "3, 4", "batchnorm needs a [batch, features] or an image", "flatten"),
    ("flatten()", "", "flatten needs an input with dimensions besides the batch, got [batch]", "remove"),
    ("reshape([2, 14, 14])", "784", "reshape([2, 14, 14]) holds 392 numbers per example, but its input "
                                    "[batch, 784] has 784", "multiply to 784, e.g. reshape([4, 14, 14])"),
    ("reshape([3, 5, 5])", "784", "holds 75 numbers", "reshape([784])"),
    ("reshape(784)", "784", "reshape takes the sizes of an example as a list", "reshape([1, 28, 28])"),
    ("reshape([1, 0, 28])", "784", "a dimension must be positive, got 0", "at least 1"),
    ("dropout(1)", "3", "the dropout rate must be at least 0 and below 1, got 1", "dropout(0.5)"),
    ("dropout()", "3", "dropout is missing its argument 'rate'", "dropout(rate)"),
    ("batchnorm(momentum = -0.1)", "3", "the momentum must be at least 0 and below 1, got -0.1", "0.9"),
    ("batchnorm(epsilon = 0)", "3", "epsilon must be positive, got 0", "1e-5"),
    ("batchnorm(eps = 0.1)", "3", "batchnorm has no argument 'eps'", "epsilon"),
    ("conv2d(2, 3, padding = 0.5)", "1, 8, 8", "the padding must be a whole number ≥ 0, got 0.5", "0 for none"),
    ("conv2d(2, 3, stride = 0)", "1, 8, 8", "the stride must be positive, got 0", "at least 1"),
    ("conv2d(2, 3, activation = relux)", "1, 8, 8", "unknown activation 'relux'", "did you mean 'relu'?"),
    ("dense 4 gelux", "3", "unknown activation 'gelux'", "did you mean 'gelu'?"),
    ("conv2d(2)", "1, 8, 8", "conv2d is missing its argument 'kernel'", "conv2d(filters, kernel)"),
])
def test_errors_are_located_with_a_hint(layer: str, dims: str, message: str, hint: str) -> None:
    with pytest.raises(spec_lang.SpecError) as raised:
        spec_lang.loads(stack_model(layer, dims))
    [error] = raised.value.diagnostics
    assert message in error.message and hint in error.hint
    assert error.span is not None and error.span.line == 4  # the stack's line


# Gradients of each layer's lowering ---------------------------------------------------------------------------


def check_layer_gradient(layer: str, dims: str, training: bool = True) -> None:
    """verify_grad of one layer's lowering, with respect to its input and its trainable parameters. The lowering
    builds dropout's generator as a shared variable that the function never updates, so its mask is fixed."""
    program = spec_lang.loads(stack_model(layer, dims)).program
    instance = program.stack("net").layers[0]
    backend = PyTensorBackend(program, initial_values(program))
    trainable = [p for p in instance.params if p.trainable]

    def lowered(x, *values):
        params = {p.role: backend.parameter(p.name) for p in instance.params}
        params.update({p.role: value for p, value in zip(trainable, values, strict=True)})
        context = Lowering(backend, scalar=None, training=training)
        return LAYERS[instance.kind].lower(context, x, params, dict(instance.options))

    rng = np.random.default_rng(0)
    points = [rng.normal(size=(3, *instance.in_shape[1:])), *(rng.normal(size=p.shape) for p in trainable)]
    check_gradient(lowered, points, rng)


@pytest.mark.parametrize("layer, dims, training", [
    ("conv2d(3, 3, stride = 2, padding = 1, activation = tanh)", "2, 7, 7", True),
    ("conv2d(2, 2, activation = gelu)", "3, 4, 5", True),
    ("maxpool(3, stride = 2)", "2, 7, 7", True),
    ("avgpool(2)", "2, 6, 4", True),
    ("batchnorm()", "2, 5, 5", True),
    ("batchnorm()", "4", True),
    ("batchnorm()", "2, 5, 5", False),
    ("dropout(0.5)", "6", True),
    ("flatten()", "2, 3, 3", True),
    ("reshape([2, 9])", "18", True),
])
def test_layer_gradients(layer: str, dims: str, training: bool) -> None:
    check_layer_gradient(layer, dims, training)


@pytest.mark.parametrize("activation", ir.ACTIVATIONS)
def test_activation_gradients(activation: str) -> None:
    rng = np.random.default_rng(1)
    check_gradient(getattr(ops, activation), [rng.normal(size=(4, 5)) * 3], rng)


def test_new_activations_compute_their_formulas_in_the_input_precision() -> None:
    x = pt.matrix(dtype="float32")
    values = np.linspace(-4, 4, 17, dtype="float32").reshape(1, -1)
    erf = np.vectorize(math.erf)
    expected = {"leaky_relu": np.where(values > 0, values, 0.01 * values),
                "elu": np.where(values > 0, values, np.expm1(values)),
                "gelu": 0.5 * values * (1 + erf(values / np.sqrt(2)))}
    for name, want in expected.items():
        y = getattr(ops, name)(x)
        assert y.dtype == "float32"
        np.testing.assert_allclose(pytensor.function([x], y, mode=MODE)(values), want, rtol=1e-6, atol=1e-7)
    big = pt.scalar()  # elu's gradient stays finite where exp(x) overflows
    assert float(pytensor.function([big], pytensor.grad(ops.elu(big), big), mode=MODE)(1000.0)) == 1.0


# Dropout ------------------------------------------------------------------------------------------------------

DROPOUT_MODEL = """model m(lr = 0.1)
input x : float[batch, 8]
input y : int[batch] < 3
stack net { dense 32 tanh; dropout(0.5); dense 3 softmax }
head p = net(x)
loss xent = crossentropy(p, y)
optimize sgd(lr = lr)
precision float64
"""


def batch(rng: np.random.Generator, size: int = 20) -> dict[str, np.ndarray]:
    return {"x": rng.normal(size=(size, 8)), "y": rng.integers(0, 3, size)}


def test_dropout_zeroes_at_the_rate_and_scales_the_rest_with_a_new_mask_each_step() -> None:
    program = spec_lang.loads(stack_model("dropout(0.25)", "100")).program
    backend = PyTensorBackend(program, initial_values(program))
    x = pt.matrix()
    context = Lowering(backend, scalar=None, training=True)
    output = LAYERS["dropout"].lower(context, x, {}, {"rate": 0.25})
    step = pytensor.function([x], output, updates=context.state_updates, mode=MODE)
    first, second = step(np.ones((100, 100))), step(np.ones((100, 100)))
    assert set(np.unique(first)) == {0, 1 / 0.75}
    assert abs(np.mean(first == 0) - 0.25) < 0.02
    assert not np.array_equal(first, second)
    inference = Lowering(backend, scalar=None, training=False)
    assert LAYERS["dropout"].lower(inference, x, {}, {"rate": 0.25}) is x
    untouched = LAYERS["dropout"].lower(Lowering(backend, scalar=None, training=True), x, {}, {"rate": 0.0})
    np.testing.assert_array_equal(pytensor.function([x], untouched, mode=MODE)(first), first)


def test_dropout_is_on_in_train_step_and_off_in_evaluate_and_predict() -> None:
    model = spec_lang.loads(DROPOUT_MODEL).compile(MODE)
    data = batch(np.random.default_rng(0))
    np.testing.assert_array_equal(model.predict("p", data["x"]), model.predict("p", data["x"]))
    evaluated = model.evaluate(**data)
    assert model.evaluate(**data) == evaluated
    model.set_hyperparameters(lr=0.0)  # steps that keep the parameters: only the dropout masks change
    trained = [model.train_step(**data)["xent"] for _ in range(3)]
    assert len(set(trained)) == 3 and evaluated["xent"] not in trained
    assert model.evaluate(**data) == evaluated


def test_dropout_masks_follow_the_seed() -> None:
    data = batch(np.random.default_rng(0))

    def losses(text: str) -> list[float]:
        model = spec_lang.loads(text).compile(MODE)
        model.set_parameters(reference.parameters)  # the same weights: only the masks may differ
        return [model.train_step(**data)["xent"] for _ in range(3)]

    reference = spec_lang.loads(DROPOUT_MODEL).compile(MODE)
    assert losses(DROPOUT_MODEL) == losses(DROPOUT_MODEL)
    assert losses(DROPOUT_MODEL + "seed 7\n") != losses(DROPOUT_MODEL)


# Batch normalisation ----------------------------------------------------------------------------------------

BATCHNORM_MODEL = """model m()
input x : float[batch, 3]
input y : int[batch] < 2
stack net { batchnorm(momentum = 0.75, epsilon = 0.001); dense 2 softmax }
head p = net(x)
loss xent = crossentropy(p, y)
optimize sgd(lr = 0.1)
precision float64
"""


def normalised_softmax(x: np.ndarray, mean: np.ndarray, variance: np.ndarray, params: dict) -> np.ndarray:
    z = (x - mean) / np.sqrt(variance + 0.001) * params["net.0.scale"] + params["net.0.shift"]
    logits = z @ params["net.1.W"] + params["net.1.b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_batchnorm_trains_on_batch_statistics_and_predicts_with_running_ones() -> None:
    model = spec_lang.loads(BATCHNORM_MODEL).compile(MODE)
    rng = np.random.default_rng(0)
    running_mean, running_variance = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.normal(loc=[1, -2, 5], scale=[1, 3, 0.5], size=(40, 3))
        y = rng.integers(0, 2, 40)
        before = model.parameters
        probabilities = normalised_softmax(x, x.mean(axis=0), x.var(axis=0), before)
        expected = -np.log(probabilities[np.arange(40), y]).mean()
        assert model.train_step(x=x, y=y)["xent"] == pytest.approx(expected, rel=1e-10)
        running_mean = 0.75 * running_mean + 0.25 * x.mean(axis=0)
        running_variance = 0.75 * running_variance + 0.25 * x.var(axis=0)
        np.testing.assert_allclose(model.parameters["net.0.mean"], running_mean, rtol=1e-12)
        np.testing.assert_allclose(model.parameters["net.0.variance"], running_variance, rtol=1e-12)
    x = rng.normal(size=(5, 3))
    np.testing.assert_allclose(model.predict("p", x),
                               normalised_softmax(x, running_mean, running_variance, model.parameters), rtol=1e-10)


def test_batchnorm_of_images_keeps_statistics_per_channel() -> None:
    model = spec_lang.loads(stack_model("batchnorm(momentum = 0.5)", "2, 3, 3")).compile(MODE)
    x = np.random.default_rng(0).normal(loc=[[[4.0]], [[-1.0]]], size=(6, 2, 3, 3))
    model.train_step(x=x, y=np.zeros(6, dtype="int32"))
    np.testing.assert_allclose(model.parameters["net.0.mean"], 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(model.parameters["net.0.variance"], 0.5 + 0.5 * x.var(axis=(0, 2, 3)), rtol=1e-12)


def test_a_stack_applied_twice_moves_its_running_statistics_twice_in_order() -> None:
    model = spec_lang.loads("""model m()
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 2
input yt : int[batch] < 2
stack features { batchnorm(momentum = 0.5) }
stack label { dense 2 softmax }
let fs = features(xs)
let ft = features(xt)
loss xent = crossentropy(label(fs), ys) + crossentropy(label(ft), yt)
optimize sgd(lr = 0.1)
precision float64
""").compile(MODE)
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(loc=3, size=(8, 2)), rng.normal(loc=-1, size=(8, 2))
    model.train_step(xs=xs, xt=xt, ys=np.zeros(8), yt=np.ones(8))
    expected = 0.5 * (0.5 * 0 + 0.5 * xs.mean(axis=0)) + 0.5 * xt.mean(axis=0)
    np.testing.assert_allclose(model.parameters["features.0.mean"], expected, rtol=1e-12)


# A convolutional model, in every mode, and as generated Python ------------------------------------------------

CONV_MODEL = """model convnet(lr = 0.1)
input x : float[batch, 1, 12, 12]
input y : int[batch] < 3
stack net {
  conv2d(4, 3, activation = relu)
  maxpool(2)
  conv2d(6, 3, padding = 1, activation = tanh)
  avgpool(5)
  flatten()
  dense 3 softmax
}
head p = net(x)
loss xent = crossentropy(p, y)
optimize sgd(lr = lr)
"""


# Not "CVM" too (a cold C compile of its ~50 modules, 30 s): the convolution and pooling Ops have no C code, so C code
# per Op runs their `perform`, as FAST_COMPILE does; test_fidelity trains float32 in C mode.
@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_a_small_convolutional_model_trains(mode: str | None) -> None:
    model = spec_lang.loads(CONV_MODEL).compile(mode)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 1, 12, 12)), rng.integers(0, 3, 16)
    losses = [model.train_step(x=x, y=y)["xent"] for _ in range(8)]
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)
    assert model.predict("p", x).shape == (16, 3)
    assert model.parameters["net.0.W"].dtype == np.float32


def test_emitted_python_with_dropout_batchnorm_and_convolutions_computes_the_same_numbers(tmp_path: Path) -> None:
    text = CONV_MODEL.replace("maxpool(2)", "maxpool(2); batchnorm(momentum = 0.8)").replace(
        "flatten()", "flatten(); dropout(0.3)") + "seed 3\n"
    spec = spec_lang.loads(text)
    target = tmp_path / "generated.py"
    target.write_text(emit_python(spec.program, "convnet.dann"), encoding="utf-8")
    generated = import_module(target)
    model = spec.compile(MODE)
    train, predict, params, *_ = generated.compile_model(mode=MODE)
    rng = np.random.default_rng(0)
    train_side_by_side(model, generated, train, 4, rng, rel=1e-6)
    for name, value in model.parameters.items():  # the running statistics included
        np.testing.assert_allclose(params[name].get_value(), value, rtol=1e-5, atol=1e-6)
    data = generated.random_batch(rng)
    np.testing.assert_allclose(predict["p"](data["x"]), model.predict("p", data["x"]), rtol=1e-5, atol=1e-7)

"""Initialisers: their scales, their seeding, and the choice per model (`init`), per stack and per layer."""

from __future__ import annotations

import numpy as np
import pytest

import spec_lang
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.walker import initial_values
from spec_lang.syntax import builder as b
from spec_lang.syntax.printer import format_model

HEADER = "model m()\nprecision float64\ninput x : float[batch, 400]\ninput y : int[batch] < 300\n"
TAIL = "loss l = crossentropy(net(x), y)\noptimize sgd(lr = 0.1)\n"


def emitted_values(spec: spec_lang.Spec) -> dict[str, np.ndarray]:
    """The initial values the generated Python module draws by itself."""
    namespace: dict = {}
    exec(compile(emit_python(spec.program, "m.dann"), "generated", "exec"), namespace)
    return namespace["initial_parameters"](namespace["PARAMETERS"], namespace["SEED"], namespace["PRECISION"],
                                         namespace["DRAWS"])


@pytest.mark.parametrize("scheme, std", [
    ("glorot_uniform", np.sqrt(2 / (400 + 300))), ("glorot_normal", np.sqrt(2 / (400 + 300))),
    ("he_uniform", np.sqrt(2 / 400)), ("he_normal", np.sqrt(2 / 400)), ("normal(std = 0.3)", 0.3),
    ("uniform(scale = 0.6)", 0.6 / np.sqrt(3)),
])
@pytest.mark.parametrize("where", ["model", "stack", "layer"])
def test_initialisers_draw_with_their_scale_wherever_chosen(scheme: str, std: float, where: str) -> None:
    text = HEADER + {"model": f"init weights = {scheme}\nstack net {{ dense 300 softmax }}\n",
                     "stack": f"stack net(weights = {scheme}) {{ dense 300 softmax }}\n",
                     "layer": f"stack net {{ dense 300 softmax (weights = {scheme}) }}\n"}[where] + TAIL
    spec = spec_lang.loads(text)
    weights = initial_values(spec.program)["net.0.W"]
    assert weights.std() == pytest.approx(std, rel=0.02) and abs(weights.mean()) < 0.01
    np.testing.assert_array_equal(weights, initial_values(spec_lang.loads(text).program)["net.0.W"])  # bit for bit
    np.testing.assert_array_equal(emitted_values(spec)["net.0.W"], weights)
    np.testing.assert_array_equal(spec.compile("FAST_COMPILE").parameters["net.0.W"], weights)


PRECEDENCE = """model m(c = 0.25)
init weights = constant(value = 1), biases = constant(value = 2)
input x : float[batch, 3]
stack a { dense 4 tanh; dense 4 tanh (weights = constant(value = 5)) }
stack s(weights = constant(value = 3), biases = constant(value = c)) {
  dense 4 tanh
  batchnorm()
  dense 4 tanh (biases = constant(value = 6))
}
head h = s(a(x))
loss l = l2(a) + l2(s)
optimize sgd(lr = 0.1)
"""


def test_a_layer_overrides_its_stack_which_overrides_the_model() -> None:
    values = initial_values(spec_lang.loads(PRECEDENCE).program)
    starts = {name: float(np.unique(value).item()) for name, value in values.items()}
    assert starts == {
        "a.0.W": 1, "a.0.b": 2,  # the model's `init`
        "a.1.W": 5, "a.1.b": 2,  # the layer's option, and the model's for what the layer leaves alone
        "s.0.W": 3, "s.0.b": 0.25,  # the stack's options (a model parameter as the value)
        "s.1.scale": 1, "s.1.shift": 0, "s.1.mean": 0, "s.1.variance": 1,  # fixed starts, whatever is chosen
        "s.2.W": 3, "s.2.b": 6,
    }


def test_convolution_templates_and_template_stacks_take_initialisers() -> None:
    spec = spec_lang.loads(
        "model m()\ninput x : float[batch, 1, 6, 6]\n"
        "template block(n, init = zeros) { conv2d(n, 3, weights = init, biases = constant(value = 1)); flatten() }\n"
        "stack one = block(2)\nstack two(biases = constant(value = 7)) = block(2, init = he_normal)\n"
        "head h1 = one(x)\nhead h2 = two(x)\nloss l = l2(one) + l2(two)\noptimize sgd(lr = 0.1)\n")
    values = initial_values(spec.program)
    assert not values["one.0.W"].any() and (values["one.0.b"] == 1).all()
    fan_in = 1 * 3 * 3
    assert values["two.0.W"].shape == (2, 1, 3, 3) and 0 < values["two.0.W"].std() < 3 * np.sqrt(2 / fan_in)
    assert (values["two.0.b"] == 1).all()  # the layer's own choice wins over its stack's


def test_every_door_spells_layer_and_stack_initialisers() -> None:
    m = b.ModelBuilder("m")
    x = m.input("x", "float", ["batch", 3])
    net = m.stack("net", b.dense(4, "relu", weights="he_normal"), b.dense(2, "tanh", biases=b.constant(value=0.1)),
                  weights=b.normal(std=0.5))
    m.loss("l", b.l2(net))
    m.head("h", net(x))
    m.optimize(b.sgd(lr=0.1))
    text = format_model(m.build())
    assert ("stack net(weights = normal(std = 0.5)) {\n  dense 4 relu (weights = he_normal)\n"
            "  dense 2 tanh (biases = constant(value = 0.1))\n}") in text
    from spec_lang.syntax.jsonio import dumps_json, loads_json
    assert loads_json(dumps_json(m.build()), "m.json") == spec_lang.loads(text).model


def test_writing_the_default_out_draws_the_same_values() -> None:
    plain = initial_values(spec_lang.loads(HEADER + "stack net { dense 300 softmax }\n" + TAIL).program)
    chosen = initial_values(spec_lang.loads(HEADER + "stack net { dense 300 softmax (weights = glorot_uniform) }\n"
                                            + TAIL).program)
    np.testing.assert_array_equal(plain["net.0.W"], chosen["net.0.W"])

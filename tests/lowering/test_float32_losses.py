"""A float32 model stays float32: every loss of the registry and every value kind (reverse, outer with and without
`dim`, interpolate) in one spec, whose training graph and gradients hold no float64 variable (a float64 constant in
a formula would reach a matrix product, which Numba cannot type: `_gemm(float32, float64, float32)`); and a step
in the JAX mode, whose implementations of some operations compute in other dtypes than they declare, keeps every
parameter and optimiser state float32. (Training a step of these losses in NUMBA takes minutes from cold caches:
the suite checks the graph instead.)"""

from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytensor
import pytest
from pytensor.graph.traversal import applys_between, graph_inputs

import spec_lang
from spec_lang import program as P
from spec_lang.library.losses import LOSSES
from spec_lang.lowering.pytensor.backend import PyTensorBackend
from spec_lang.lowering.walker import initial_values, lower

EVERY = """model every(classes = 3)
precision float32
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < classes
stack features { dense 4 tanh; dropout(0.1) }
stack label { dense classes softmax }
stack second { dense classes softmax }
stack domain { dense 1 sigmoid }
stack critic { dense 1 linear }
let fs = features(xs)
let ft = features(xt)
let ps = label(fs)
let pt = label(ft)
let mix = interpolate(reverse(fs, lambda = 0), reverse(ft, lambda = 0))
loss label_loss = crossentropy(ps, ys) + mse(ps, ps) + 0.1 * entropy(pt) + 0.1 * l2() + 0.1 * l1(label)
loss align = mmd(fs, ft) + jmmd(fs, ft, ps, pt) + coral(fs, ft) + bsp(fs, ft) + mcc(pt) + afn(ft)
loss disc = classifier_discrepancy(pt, second(ft))
adversarial loss disparity = mdd(ps, second(reverse(fs, lambda = 0.1)), pt, second(reverse(ft, lambda = 0.1)))
loss dom = bce_weighted_by_entropy(domain(reverse(outer(fs, ps), lambda = 1)), 0, ps)
         + bce(domain(reverse(outer(ft, pt, dim = 12), lambda = 1)), 1)
         + bce_domains(domain(reverse(outer(fs, ps, dim = 12), lambda = 1)), domain(reverse(outer(ft, pt), lambda = 1)))
adversarial loss gap = wasserstein(critic(reverse(fs, lambda = 1)), critic(reverse(ft, lambda = 1)))
loss penalty = gradient_penalty(critic(mix), mix)
optimize sgd(lr = 0.01, momentum = 0.9)
    minimize label_loss + 0.1 * align + disc + disparity + dom - gap + 10 * penalty
"""


def test_the_spec_uses_every_loss_and_value_kind() -> None:
    """So that a new loss or value kind must join this test."""
    program = spec_lang.loads(EVERY).program
    terms = [term for loss in program.losses.values() for term in P.loss_functions(loss)]
    assert {term.kind for term in terms} == set(LOSSES)
    values = {id(v): v for term in terms for value in term.values for v in P.ancestors(value)}.values()
    kinds = {(type(v).__name__, getattr(v, "dim", None) is not None) for v in values}  # outer with and without dim
    expected = {(kind, False) for kind in ("InputValue", "Applied", "Reversed", "Outer", "Interpolated")}
    assert kinds == expected | {("Outer", True)}


def test_the_training_graph_and_its_gradients_stay_float32() -> None:
    program = spec_lang.loads(EVERY).program
    graph = lower(program, PyTensorBackend(program, initial_values(program)))
    outputs = [*graph.losses.values(), *(value for update in graph.state_updates for value in update)]
    for phase in graph.phases:
        outputs += [phase.objective, *pytensor.grad(phase.objective, phase.parameters, disconnected_inputs="ignore")]
    wide = {
        str(node.op)
        for node in applys_between(list(graph_inputs(outputs)), outputs)
        for variable in (*node.inputs, *node.outputs)
        if getattr(variable.type, "dtype", None) == "float64"
    }
    assert not wide


@pytest.mark.skipif(find_spec("jax") is None, reason="JAX is not installed")
@pytest.mark.parametrize("optimizer", ["sgd(lr = 0.01)", "adam(lr = 0.01)"])
def test_a_step_in_jax_mode_keeps_every_parameter_and_state_float32(optimizer: str) -> None:
    """PyTensor's JAX `Alloc` and `AllocDiag` (in BSP's gradient) returned float64, and so every weight did after two
    steps of plain SGD (momentum's float32 velocity hid it)."""
    model = spec_lang.loads(EVERY.replace("sgd(lr = 0.01, momentum = 0.9)", optimizer)).compile("JAX")
    rng = np.random.default_rng(0)
    batch = {"xs": rng.normal(size=(5, 2)), "xt": rng.normal(size=(4, 2)), "ys": np.array([0, 1, 2, 0, 1])}
    for _ in range(2):
        assert all(np.isfinite(v) for v in model.train_step(**batch).values())
    arrays = {**model.parameters, **{k: v for k, v in model.optimizer_state.items() if k != "step"}}
    assert {name: str(value.dtype) for name, value in arrays.items()} == dict.fromkeys(arrays, "float32")

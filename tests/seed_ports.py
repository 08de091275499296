"""Literal PyTensor 3 ports of the Theano seeds in /work/shared/seeds (000: L2 MLP, 003: DANN).

They are the reference a test compares the compiler against: layers, losses, update rule and parameter
order follow the seeds line by line. Deviations: the caller supplies every initial (W, b) instead of the
seeds' numpy.random draws, everything is float64, and Theano 1 names map to their PyTensor 3 equivalents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key
from pytensor.tensor.special import softmax

Layer = tuple[np.ndarray, np.ndarray]
Theta = list[tuple[Any, Any]]  # [(W, b)] as pytensor shared variables


@dataclass
class SeedProgram:
    """A compiled seed: ``train`` (with SGD ``updates``) and its shared parameters in seed order."""

    train: pytensor.compile.function.types.Function
    params: list[Any]  # pytensor shared variables

    def values(self) -> list[np.ndarray]:
        """Current values of ``params``, in order."""
        return [p.get_value() for p in self.params]


def _shared_layer(layer: Layer, previous_size: int, size: int) -> tuple[Any, Any]:
    """Float64 shared (W, b) from a caller-supplied initial layer, shape-checked."""
    w0, b0 = layer
    assert np.shape(w0) == (previous_size, size) and np.shape(b0) == (size,)
    return pytensor.shared(np.asarray(w0, dtype="float64")), pytensor.shared(np.asarray(b0, dtype="float64"))


def categorical_crossentropy(coding_dist: Variable, true_idx: Variable) -> Variable:
    """Theano's ``tt.nnet.categorical_crossentropy`` for integer targets."""
    return -pt.log(coding_dist[pt.arange(coding_dist.shape[0]), true_idx])


def binary_crossentropy(output: Variable, target: Any) -> Variable:
    """Theano's ``tt.nnet.binary_crossentropy``."""
    return -(target * pt.log(output) + (1.0 - target) * pt.log(1.0 - output))


def seed_l2_mlp(
    input_size: int, hidden_sizes: list[int], output_size: int, reg_lambda: float,
    learning_rate: float, initial: list[Layer],
) -> SeedProgram:  # fmt: skip
    """Port of seed 000 ``compile``; ``initial`` holds (W, b) for each hidden layer, then the output.

    ``train(x, z)`` returns ``[cost]`` and applies one SGD step; ``params`` is ``ws + bs``.
    """
    # The seed drew every W from numpy.random.standard_normal and set every b to zeros.
    ws, bs = [], []
    x = pt.dmatrix("x")
    previous_size = input_size
    h = x
    for hidden_size, layer in zip(hidden_sizes, initial[:-1], strict=True):
        w, b = _shared_layer(layer, previous_size, hidden_size)
        h = pt.tanh(pt.dot(h, w) + b)
        ws.append(w)
        bs.append(b)
        previous_size = hidden_size
    w, b = _shared_layer(initial[-1], previous_size, output_size)
    y = softmax(pt.dot(h, w) + b, axis=-1)
    ws.append(w)
    bs.append(b)
    z = pt.ivector("z")
    cost = categorical_crossentropy(y, z).mean()
    for w, b in zip(ws, bs, strict=True):
        cost += pt.sum(w**2) * reg_lambda
        cost += pt.sum(b**2) * reg_lambda
    updates = [(p, p - learning_rate * pytensor.grad(cost, p)) for p in ws + bs]
    train = pytensor.function([x, z], outputs=[cost], updates=updates)
    return SeedProgram(train=train, params=ws + bs)


class ReverseGradient(Op):
    """Identity forward, ``-hp_lambda * g`` backward (seed 003's custom Op, PyTensor 3 API).

    PyTensor 3 renamed ``Op.grad(inputs, output_gradients)`` to
    ``pullback(inputs, outputs, cotangents)`` (overriding ``grad`` still works, with a FutureWarning).
    """

    __props__ = ("hp_lambda",)
    view_map = {0: [0]}

    def __init__(self, hp_lambda: float) -> None:
        super().__init__()
        self.hp_lambda = hp_lambda

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node: Apply, inputs: list[np.ndarray], output_storage: list[list[Any]]) -> None:
        (xin,) = inputs
        (xout,) = output_storage
        xout[0] = xin

    def pullback(self, inputs: list[Variable], outputs: list[Variable], cotangents: list[Variable]) -> list:
        return [-self.hp_lambda * cotangents[0]]


# Numba (the default linker) knows no user Op: `numba_funcify` falls back to running `perform` in
# `numba.objmode` ("UserWarning: Numba will use object mode to run ReverseGradient{...}'s perform method").
# That works, but makes the graph uncacheable (~5 s of Numba JIT on every first call). The same identity
# registered as an njit function (as PyTensor does for its own ViewOp) is cached and warning-free.
@register_funcify_default_op_cache_key(ReverseGradient)
def _numba_funcify_reverse_gradient(op: ReverseGradient, **kwargs: Any) -> Any:
    @numba_njit
    def reverse_gradient(x: Any) -> Any:
        return x

    return reverse_gradient


def g_f(z: Variable, theta_f: Theta) -> Variable:
    for w_f, b_f in theta_f:
        z = pt.tanh(pt.dot(z, w_f) + b_f)
    return z


def g_y(z: Variable, theta_y: Theta) -> Variable:
    for w_y, b_y in theta_y[:-1]:
        z = pt.tanh(pt.dot(z, w_y) + b_y)
    w_y, b_y = theta_y[-1]
    z = softmax(pt.dot(z, w_y) + b_y, axis=-1)
    return z


def g_d(z: Variable, theta_d: Theta) -> Variable:
    for w_d, b_d in theta_d[:-1]:
        z = pt.tanh(pt.dot(z, w_d) + b_d)
    w_d, b_d = theta_d[-1]
    z = pt.sigmoid(pt.dot(z, w_d) + b_d)
    return z


def l_y(z: Variable, y: Variable) -> Variable:
    return categorical_crossentropy(z, y).mean()


def l_d(z: Variable, d: Any) -> Variable:
    return binary_crossentropy(z, d).mean()


def mlp_parameters(input_size: int, layer_sizes: list[int], initial: list[Layer]) -> tuple[Theta, int]:
    """Seed's ``mlp_parameters``; it drew W from numpy.random.randn and set b to zeros."""
    parameters = []
    previous_size = input_size
    for layer_size, layer in zip(layer_sizes, initial, strict=True):
        parameters.append(_shared_layer(layer, previous_size, layer_size))
        previous_size = layer_size
    return parameters, previous_size


def seed_dann(
    input_size: int, f_layer_sizes: list[int], y_layer_sizes: list[int], d_layer_sizes: list[int],
    hp_lambda: float, hp_mu: float,
    initial_f: list[Layer], initial_y: list[Layer], initial_d: list[Layer],
) -> SeedProgram:  # fmt: skip
    """Port of seed 003 ``compile``. ``train(xs, xt, ys)`` returns ``e`` and applies one SGD step.

    ``params`` is W0, b0, W1, b1, ... of ``theta_f``, then ``theta_y``, then ``theta_d``.
    """
    r = ReverseGradient(hp_lambda)
    theta_f, f_size = mlp_parameters(input_size, f_layer_sizes, initial_f)
    theta_y, _ = mlp_parameters(f_size, y_layer_sizes, initial_y)
    theta_d, _ = mlp_parameters(f_size, d_layer_sizes, initial_d)
    xs = pt.dmatrix("xs")
    xt = pt.dmatrix("xt")
    ys = pt.ivector("ys")
    fs = g_f(xs, theta_f)
    e = l_y(g_y(fs, theta_y), ys) + l_d(g_d(r(fs), theta_d), 0) + l_d(g_d(r(g_f(xt, theta_f)), theta_d), 1)
    updates = [(p, p - hp_mu * pytensor.grad(e, p)) for theta in theta_f + theta_y + theta_d for p in theta]
    train = pytensor.function([xs, xt, ys], outputs=e, updates=updates)
    params = [p for theta in theta_f + theta_y + theta_d for p in theta]
    return SeedProgram(train=train, params=params)

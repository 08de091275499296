"""The benchmarked model, three ways: the specc spec, a hand-written PyTensor program in the seed's style, and the
same model in PyTorch eager. All three start from the same parameters (specc's seeded initial values) and take
the same SGD step on the same batch, so their losses agree (checked by `bench/run.py` before timing).

The model is the seed DANN (`/work/shared/seeds/003_*.txt`, `examples/seed_dann.dann`) widened to 256 units:
features 2 × 256 tanh, label head 256 → 10 softmax, domain head 256 → 1 sigmoid, λ = 0.5, SGD.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

WIDTH, CLASSES, LAMBDA, LEARNING_RATE = 256, 10, 0.5, 0.01

SPEC = f"""model wide_dann(inputs = 2, hp_lambda = {LAMBDA}, hp_mu = {LEARNING_RATE})

init weights = glorot_uniform, biases = zeros
seed 1
precision float32

input xs : float[batch, inputs]
input xt : float[batch, inputs]
input ys : int[batch] < {CLASSES}

stack features {{ dense {WIDTH} tanh; dense {WIDTH} tanh }}
stack label {{ dense {WIDTH} tanh; dense {CLASSES} softmax }}
stack domain {{ dense {WIDTH} tanh; dense 1 sigmoid }}

let fs = features(xs)
let ft = features(xt)

head label_probabilities = label(fs)

loss label_loss = crossentropy(label(fs), ys)
loss domain_loss = bce(domain(reverse(fs, lambda = hp_lambda)), 0)
                 + bce(domain(reverse(ft, lambda = hp_lambda)), 1)

optimize sgd(lr = hp_mu) minimize label_loss + domain_loss
"""

# (stack, [(parameter names)]) in the order the references take them
LAYERS = {stack: [(f"{stack}.{i}.W", f"{stack}.{i}.b") for i in range(2)] for stack in ("features", "label", "domain")}


def spec_text(precision: str = "float32") -> str:
    return SPEC.replace("precision float32", f"precision {precision}")


def batch(inputs: int, size: int, seed: int = 0, dtype: str = "float32") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"xs": rng.normal(size=(size, inputs)).astype(dtype), "xt": rng.normal(size=(size, inputs)).astype(dtype),
            "ys": rng.integers(0, CLASSES, size).astype("int32")}


def train_step_flops(inputs: int, size: int) -> int:
    """Floating-point operations of the matrix products of one train step (2 per multiply-add): each dense layer
    application costs 2·n·i·o forward, as much for its weight gradient, and as much again for the gradient of its
    input unless that input is data. Elementwise work (tanh, biases, losses, the update) is left out."""
    def dense(n: int, i: int, o: int, data: bool = False) -> int:
        return 2 * n * i * o * (2 if data else 3)

    features = dense(size, inputs, WIDTH, data=True) + dense(size, WIDTH, WIDTH)
    label = dense(size, WIDTH, WIDTH) + dense(size, WIDTH, CLASSES)
    domain = dense(size, WIDTH, WIDTH) + dense(size, WIDTH, 1)
    return 2 * features + label + 2 * domain


# A hand-written PyTensor program in the seed's style -----------------------------------------------------------
# The seed's Theano code (`tests/seed_ports.py` has its literal float64 port) in float32: the feature extractor
# applied to xs and xt separately, the domain head twice, the seed's custom ReverseGradient Op, log of the
# probabilities, and one SGD update per parameter.


def seed_style_pytensor(inputs: int, initial: dict[str, np.ndarray], mode: str | None = None) -> Callable[..., Any]:
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.tensor.special import softmax

    class ReverseGradient(Op):
        __props__ = ("hp_lambda",)
        view_map = {0: [0]}

        def __init__(self, hp_lambda: float) -> None:
            super().__init__()
            self.hp_lambda = hp_lambda

        def make_node(self, x):
            x = pt.as_tensor_variable(x)
            return Apply(self, [x], [x.type()])

        def perform(self, node, inputs, output_storage):
            output_storage[0][0] = inputs[0]

        def pullback(self, inputs, outputs, cotangents):
            return [np.float32(-self.hp_lambda) * cotangents[0]]

    _register_numba(ReverseGradient)

    def shared(name):
        return pytensor.shared(np.asarray(initial[name], dtype="float32"), name=name)

    theta = {stack: [(shared(w), shared(b)) for w, b in layers] for stack, layers in LAYERS.items()}

    def g_f(z):
        for w, b in theta["features"]:
            z = pt.tanh(pt.dot(z, w) + b)
        return z

    def g_y(z):
        (w0, b0), (w1, b1) = theta["label"]
        return softmax(pt.dot(pt.tanh(pt.dot(z, w0) + b0), w1) + b1, axis=-1)

    def g_d(z):
        (w0, b0), (w1, b1) = theta["domain"]
        return pt.sigmoid(pt.dot(pt.tanh(pt.dot(z, w0) + b0), w1) + b1)

    def l_y(z, y):
        return -pt.log(z[pt.arange(z.shape[0]), y]).mean()

    def l_d(z, d):
        return -(d * pt.log(z) + (np.float32(1) - d) * pt.log(np.float32(1) - z)).mean()

    r = ReverseGradient(LAMBDA)
    xs, xt, ys = pt.fmatrix("xs"), pt.fmatrix("xt"), pt.ivector("ys")
    fs = g_f(xs)
    e = l_y(g_y(fs), ys) + l_d(g_d(r(fs)), np.float32(0)) + l_d(g_d(r(g_f(xt))), np.float32(1))
    mu = np.float32(LEARNING_RATE)
    updates = [(p, p - mu * pytensor.grad(e, p)) for layers in theta.values() for layer in layers for p in layer]
    return pytensor.function([xs, xt, ys], outputs=e, updates=updates, mode=mode)


_registered: set[type] = set()


def _register_numba(op_type: type) -> None:
    """The seed's Op as an njit identity for PyTensor's Numba backend (as `tests/seed_ports.py` does), so that the
    reference is not slowed down by Numba's object-mode fallback for a Python `perform`."""
    if op_type in _registered:
        return
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

    @register_funcify_default_op_cache_key(op_type)
    def _funcify(op, **kwargs):
        @numba_njit
        def reverse_gradient(x):
            return x

        return reverse_gradient

    _registered.add(op_type)


# The same model in PyTorch eager --------------------------------------------------------------------------------


def pytorch_eager(initial: dict[str, np.ndarray]) -> Callable[..., float]:
    import torch
    import torch.nn.functional as F

    parameters = {n: torch.nn.Parameter(torch.from_numpy(np.array(v, dtype="float32"))) for n, v in initial.items()
                  if n.split(".")[0] in LAYERS}
    optimizer = torch.optim.SGD(parameters.values(), lr=LEARNING_RATE)

    class Reverse(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.view_as(x)

        @staticmethod
        def backward(ctx, gradient):
            return -LAMBDA * gradient

    def mlp(stack, z):
        (w0, b0), (w1, b1) = [(parameters[w], parameters[b]) for w, b in LAYERS[stack]]
        return torch.addmm(b1, torch.tanh(torch.addmm(b0, z, w0)), w1)

    def step(xs, xt, ys):
        fs, ft = torch.tanh(mlp("features", xs)), torch.tanh(mlp("features", xt))
        label_loss = F.cross_entropy(mlp("label", fs), ys)
        zs, zt = mlp("domain", Reverse.apply(fs)), mlp("domain", Reverse.apply(ft))
        domain_loss = (F.binary_cross_entropy_with_logits(zs, torch.zeros_like(zs))
                       + F.binary_cross_entropy_with_logits(zt, torch.ones_like(zt)))
        loss = label_loss + domain_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torch_batch(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    """The batch as PyTorch tensors (labels int64, as its losses take them), converted once before timing."""
    import torch

    return {"xs": torch.from_numpy(batch["xs"]), "xt": torch.from_numpy(batch["xt"]),
            "ys": torch.from_numpy(batch["ys"].astype("int64"))}

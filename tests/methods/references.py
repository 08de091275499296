"""The hand-written references for the method steps (tests/methods/): the schedules, the networks of
examples/methods/lib/networks.dann run from a parameter dictionary in NumPy or raw PyTensor (`Net`), the loss pieces
of the papers and Transfer-Learning-Library, PyTorch's SGD (`sgd_step`), and the comparison with specc's step
(`compiled`, `gradient_function`, `assert_losses`, `assert_state`). Written independently of specc's lowering."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.gradient import disconnected_grad
from test_examples import random_batch

import spec_lang
from spec_lang import CompiledModel
from spec_lang.syntax.sources import parse_source, read_source

METHODS = Path(__file__).resolve().parents[2] / "examples" / "methods"
PROGRESS = 0.3  # λ = 0.905, lr = 0.01 / 4^0.75
SOURCE_ROWS, TARGET_ROWS = 5, 6
MOMENTUM, WEIGHT_DECAY = 0.9, 1e-3  # every file's sgd(lr = annealed(0.01), momentum = 0.9, nesterov = true, …)


# Schedules, by the DANN paper (Ganin & Lempitsky 2015) --------------------------------------------------------


def dann_lambda(progress: float, peak: float = 1.0) -> float:
    return peak * (2 / (1 + np.exp(-10 * progress)) - 1)


def annealed_lr(progress: float) -> float:
    return 0.01 / (1 + 10 * progress) ** 0.75


# The networks, in NumPy or PyTensor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ops:
    """An array module and how it holds a value constant for the gradient (NumPy has no gradient: the identity)."""

    xp: Any
    hold: Callable[[Any], Any]


NUMPY = Ops(np, lambda x: x)
PYTENSOR = Ops(pt, disconnected_grad)

# lib/networks.dann: each stack's dense layers by their activations (the parameters are `STACK.INDEX.W`, `….b`)
BACKBONE, CLASSIFIER, DISCRIMINATOR = ("relu", "relu"), ("relu", "softmax"), ("relu", "relu", "sigmoid")
CRITIC = ("relu", "relu", "linear")
FEATURES, CLASSES = 16, 4  # the backbone's width out, the files' classes
TEMPLATES = {
    **dict.fromkeys(("features", "source_encoder", "target_encoder"), BACKBONE),
    **dict.fromkeys(("label", "adversary", "c1", "c2"), CLASSIFIER),
    "domain": DISCRIMINATOR,
    "critic": CRITIC,
}


@dataclass(frozen=True)
class Net:
    """The method's stacks over a parameter dictionary, in one array module, at one training progress."""

    ops: Ops
    parameters: dict[str, Any]
    progress: float

    def logits(self, stack: str, x: Any) -> Any:
        """The stack's output before its last activation."""
        for index in range(len(TEMPLATES[stack])):
            if index:  # every layer but the last is `relu`
                x = self.ops.xp.maximum(x, 0)
            x = x @ self.parameters[f"{stack}.{index}.W"] + self.parameters[f"{stack}.{index}.b"]
        return x

    def __call__(self, stack: str, x: Any) -> Any:
        z = self.logits(stack, x)
        last = TEMPLATES[stack][-1]
        if last == "linear":
            return z
        if last == "relu":
            return self.ops.xp.maximum(z, 0)
        if last == "sigmoid":
            return 1 / (1 + self.ops.xp.exp(-z))
        return softmax(self.ops, z)

    def reverse(self, x: Any, peak: float = 1.0) -> Any:
        """Gradient reversal: the identity forward, the gradient times -λ (λ = dann_lambda(progress) · peak)."""
        lam = dann_lambda(self.progress, peak)
        return self.ops.hold((1 + lam) * x) - lam * x


def softmax(ops: Ops, z: Any) -> Any:
    e = ops.xp.exp(z - ops.hold(z.max(axis=1, keepdims=True)))
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Batch:
    xs: Any
    xt: Any
    ys: np.ndarray  # labels stay NumPy integers: they only index
    alpha: np.ndarray | None = None  # a step's draws of `interpolate`, [rows, 1] (WDGRL)


# Loss pieces, from the papers and TLL ---------------------------------------------------------------------------


def crossentropy(ops: Ops, p: Any, labels: Any) -> Any:
    return -ops.xp.log(p[np.arange(len(labels)), labels]).mean()


def bce_rows(ops: Ops, d: Any, domain: int) -> Any:
    """Per-row binary cross-entropy of sigmoid outputs [n, 1] against a domain label (source 0, target 1)."""
    return -ops.xp.log(d[:, 0] if domain else 1 - d[:, 0])


def entropy_rows(ops: Ops, p: Any) -> Any:
    return -(p * ops.xp.log(p)).sum(axis=1)


def conditioning(ops: Ops, f: Any, p: Any) -> Any:
    """CDAN's multilinear map of features [n, F] and predictions [n, C], the predictions detached (TLL's
    `F.softmax(g).detach()`), laid out feature-major (entry i · C + j is f_i p_j; TLL's `bmm(g, f)` is class-major,
    a permutation of the discriminator's input weights)."""
    held = ops.hold(p)
    return (f[:, :, None] * held[:, None, :]).reshape((f.shape[0], f.shape[1] * p.shape[1]))


def squared_distances(x: Any) -> Any:
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)


def feature_kernel(ops: Ops, joined: Any) -> Any:
    """TLL's five GaussianKernels, σ² = 2^k · mean squared distance (detached), here k = -2 … 2 (the file's span)."""
    distances = squared_distances(joined)
    mean = ops.hold(distances.mean())
    return sum(ops.xp.exp(-distances / (2 * 2.0**k * mean)) for k in range(-2, 3))


def biased_mmd(kernel: Any, n: int) -> Any:
    """mean K_ss + mean K_tt - 2 mean K_st over all pairs (the files' biased estimate; TLL's excludes i = j)."""
    return kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean()


def covariance(f: Any) -> Any:
    centred = f - f.mean(axis=0)
    return centred.T @ centred / (f.shape[0] - 1)


def domain_bce_all_rows(ops: Ops, d_source: Any, d_target: Any) -> Any:
    """One mean over all source and target rows (TLL's CDAN; its DANN takes 0.5 (mean_s + mean_t), the same for
    batches of one size)."""
    rows = ops.xp.concatenate([bce_rows(ops, d_source, 0), bce_rows(ops, d_target, 1)])
    return rows.mean()


Losses = dict[str, Any]


# The optimiser ---------------------------------------------------------------------------------------------------


def sgd_step(
    parameters: dict[str, np.ndarray],
    gradients: dict[str, np.ndarray],
    velocity: dict[str, np.ndarray],
    lr: float,
    *,
    decoupled: bool,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """PyTorch's SGD (torch.optim.SGD, dampening 0, Nesterov), the new parameters and velocities:
    g ← g + wd · p; v ← μ v + g; p ← p - lr (g + μ v). With `decoupled` the decay skips the momentum
    (Loshchilov & Hutter's SGDW): v ← μ v + g; p ← p - lr (g + μ v + wd · p)."""
    new_parameters, new_velocity = {}, {}
    for name, p in parameters.items():
        g = gradients[name] if decoupled else gradients[name] + WEIGHT_DECAY * p
        v = MOMENTUM * velocity[name] + g
        step = g + MOMENTUM * v + (WEIGHT_DECAY * p if decoupled else 0)
        new_parameters[name], new_velocity[name] = p - lr * step, v
    return new_parameters, new_velocity


# The comparison ----------------------------------------------------------------------------------------------------


def gradient_function(
    objective: Callable[[Net, Batch], Losses], parameters: dict[str, np.ndarray], batch: Batch, loss: str = "objective"
) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The gradient of one of the objective's losses with respect to every parameter (zero where it does not reach),
    a function of parameter values shaped as `parameters`."""
    variables = {name: pt.tensor(name=name, dtype="float64", shape=value.shape) for name, value in parameters.items()}
    constants = replace(batch, xs=pt.as_tensor_variable(batch.xs), xt=pt.as_tensor_variable(batch.xt))
    cost = objective(Net(PYTENSOR, variables, PROGRESS), constants)[loss]
    gradients = pytensor.grad(cost, list(variables.values()), disconnected_inputs="ignore")
    python = Mode(linker="py", optimizer="merge")  # the graph as written (but merged), no C code: it runs a few times
    function = pytensor.function(list(variables.values()), gradients, mode=python)
    return lambda values: dict(zip(parameters, function(*(values[name] for name in parameters)), strict=True))


def compiled(method: str) -> tuple[CompiledModel, dict[str, np.ndarray], Batch]:
    """The method file compiled in float64 at progress 0.3, its biases made nonzero (they start at 0; so every
    parameter's weight decay shows), and a batch: the training inputs by name, and as a `Batch`."""
    source = read_source(METHODS / f"{method}.dann")
    spec = spec_lang.from_ir(replace(parse_source(source), precision="float64"), source, strict=True)
    model = spec.compile("FAST_COMPILE")
    rng = np.random.default_rng(7)
    arrays = random_batch(spec.program, rng, size=SOURCE_ROWS)
    arrays["xt"] = rng.standard_normal((TARGET_ROWS, 2))
    model.set_parameters(
        {name: value + rng.normal(0, 0.1, value.shape) for name, value in model.parameters.items() if name[-1] == "b"}
    )
    model.set_progress(PROGRESS)
    return model, {name: arrays[name] for name in model.train_inputs}, Batch(arrays["xs"], arrays["xt"], arrays["ys"])


def assert_losses(reported: dict[str, float], expected: Losses) -> None:
    """`train_step` reports exactly the reference's losses, with its values."""
    assert set(reported) == set(expected)
    for name, value in expected.items():
        assert reported[name] == pytest.approx(float(value), rel=1e-9), name


def assert_state(
    model: CompiledModel,
    before: dict[str, np.ndarray],
    parameters: dict[str, np.ndarray],
    state: dict[str, Any],
    atol: float = 1e-14,
) -> None:
    """The model's parameters changed from `before` as the reference's `parameters` (to `atol` where a change is
    0), and its optimiser state arrays are the reference's `state` (the same names, every one compared)."""
    after, optimizer_state = model.parameters, model.optimizer_state
    assert set(after) == set(parameters) and set(optimizer_state) == set(state)
    for name, value in state.items():
        np.testing.assert_allclose(optimizer_state[name], value, rtol=1e-7, atol=1e-12, err_msg=name)
    for name, value in parameters.items():
        change, expected = after[name] - before[name], value - before[name]
        np.testing.assert_allclose(change, expected, rtol=1e-7, atol=atol, err_msg=name)

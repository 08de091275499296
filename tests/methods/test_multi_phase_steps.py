"""One whole training step of each method of examples/methods/ with several phases (MCD, ADDA in both its stages,
WDGRL), against a hand-written reference.

references.py's plumbing does the rest: the networks (`Net`), the loss pieces, the float64 compile and the
batch (`compiled`), raw PyTensor's gradients (`gradient_function`) and the comparison (`assert_losses`,
`assert_state`). Here each method's losses are written out from its paper, each phase's optimiser step is made by
hand (PyTorch's SGD with specc's decoupled weight decay, `sgd_step`; `torch.optim.Adam`), the phases run in order on
the same batch, each from the parameters the previous one left, `repeat` times, each with its own optimiser state,
and every parameter's change and every optimiser state array is compared with specc's. WDGRL's `interpolate` draws
anew at every phase step: the reference draws the same numbers from a generator started in the model's random
state, and ends in the state the model ends in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from references import (
    METHODS,
    NUMPY,
    PROGRESS,
    TEMPLATES,
    Batch,
    Losses,
    Net,
    annealed_lr,
    assert_losses,
    assert_state,
    bce_rows,
    compiled,
    crossentropy,
    gradient_function,
    sgd_step,
)
from test_method_steps import OBJECTIVES

from spec_lang import CompiledModel

# The methods' losses: every loss term of the file, and each phase's objective by the phase's name ----------------


def mcd(net: Net, batch: Batch) -> Losses:
    """MCD (Saito et al. CVPR 2018; TLL's mcd.py), trade-off 1: both classifiers' cross-entropies on the source, and
    their discrepancy on the target, the mean absolute difference of their probabilities over rows and classes."""
    fs, ft = net("features", batch.xs), net("features", batch.xt)
    label_loss = crossentropy(net.ops, net("c1", fs), batch.ys) + crossentropy(net.ops, net("c2", fs), batch.ys)
    discrepancy = net.ops.xp.abs(net("c1", ft) - net("c2", ft)).mean()
    phases = {"step_a": label_loss, "step_b": label_loss - discrepancy, "step_c": discrepancy}
    return {"objective": label_loss, "label_loss": label_loss, "discrepancy": discrepancy, **phases}


def adda(net: Net, batch: Batch) -> Losses:
    """ADDA (Tzeng et al. CVPR 2017): the source encoder's label loss; the critic's BCE, one mean per batch, source
    0 and target 1; the target encoder's inverted-label GAN loss, its target rows against 0."""
    ops = net.ops
    fs, ft = net("source_encoder", batch.xs), net("target_encoder", batch.xt)
    label_loss = crossentropy(ops, net("label", fs), batch.ys)
    target = net("domain", ft)
    domain_loss = bce_rows(ops, net("domain", fs), 0).mean() + bce_rows(ops, target, 1).mean()
    confusion = bce_rows(ops, target, 0).mean()
    phases = {"pretrain": label_loss, "critic": domain_loss, "encoder": confusion}
    losses = {"label_loss": label_loss, "domain_loss": domain_loss, "confusion": confusion}
    return {"objective": label_loss, **losses, **phases}


def critic_input_gradient(net: Net, x: Any) -> Any:
    """∂ Σ critic(x) / ∂ x, row by row, written out: the backward pass of its dense layers, `relu` but the last
    (linear); the masks held constant (they have no gradient)."""
    ops, layers = net.ops, len(TEMPLATES["critic"])
    masks = []
    for index in range(layers - 1):
        x = x @ net.parameters[f"critic.{index}.W"] + net.parameters[f"critic.{index}.b"]
        masks.append(ops.hold(1.0 * (x > 0)))
        x = ops.xp.maximum(x, 0)
    gradient = net.parameters[f"critic.{layers - 1}.W"].sum(axis=1)
    for index in reversed(range(layers - 1)):
        gradient = (gradient * masks[index]) @ net.parameters[f"critic.{index}.W"].T
    return gradient


def wdgrl(net: Net, batch: Batch) -> Losses:
    """WDGRL (Shen et al. AAAI 2018), γ = 10, λ = 1: the critic's mean score on the source minus its mean on the
    target, and WGAN-GP's penalty (Gulrajani et al. 2017) at α f_s + (1 - α) f_t over the shorter batch's rows, α
    the step's draws."""
    ops, alpha = net.ops, batch.alpha
    assert alpha is not None
    fs, ft = net("features", batch.xs), net("features", batch.xt)
    label_loss = crossentropy(ops, net("label", fs), batch.ys)
    distance = net("critic", fs).mean() - net("critic", ft).mean()
    gradient = critic_input_gradient(net, alpha * fs[: len(alpha)] + (1 - alpha) * ft[: len(alpha)])
    penalty = ((ops.xp.sqrt((gradient**2).sum(axis=1)) - 1) ** 2).mean()
    phases = {"critic_step": 10 * penalty - distance, "task_step": label_loss + distance}
    losses = {"label_loss": label_loss, "distance": distance, "penalty": penalty}
    return {"objective": phases["critic_step"], **losses, **phases}


# The optimisers: one step of a phase on the reference's parameters and optimiser state (specc's names) ------------


@dataclass(frozen=True)
class Reference:
    """The hand-made training state: parameters, optimiser state by specc's names (`PHASE/PARAMETER.velocity`,
    `PHASE/step`, `PHASE/PARAMETER.m`, `….v`) and, where the method draws, interpolate's generator."""

    parameters: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    random: np.random.Generator | None

    def step_batch(self, batch: Batch) -> Batch:
        """The batch of one phase step: with the generator's next draws, one per row of the shorter batch, as each
        compiled phase step draws (it computes every loss)."""
        if self.random is None:
            return batch
        return replace(batch, alpha=self.random.uniform(size=min(len(batch.xs), len(batch.xt)))[:, None])


Optimizer = Callable[[Reference, str, dict[str, np.ndarray]], None]


def sgd(reference: Reference, phase: str, gradients: dict[str, np.ndarray]) -> None:
    """Every file's `sgd(lr = annealed(0.01), momentum = 0.9, nesterov = true, weight_decay = 0.001)`."""
    velocity = {name: reference.state[f"{phase}/{name}.velocity"] for name in gradients}
    own = {name: reference.parameters[name] for name in gradients}
    parameters, velocity = sgd_step(own, gradients, velocity, annealed_lr(PROGRESS), decoupled=True)
    reference.parameters.update(parameters)
    reference.state.update({f"{phase}/{name}.velocity": value for name, value in velocity.items()})


def adam(lr: float, beta1: float = 0.9) -> Optimizer:
    """`adam(lr, beta1)` as torch.optim.Adam (β2 0.999, ε 1e-8, no weight decay): with the phase's step count n,
    m ← β1 m + (1 - β1) g, v ← β2 v + (1 - β2) g², and p ← p - lr / (1 - β1ⁿ) · m / (√v / √(1 - β2ⁿ) + ε)."""
    beta2, epsilon = 0.999, 1e-8

    def step(reference: Reference, phase: str, gradients: dict[str, np.ndarray]) -> None:
        state = reference.state
        n = state[f"{phase}/step"] = state[f"{phase}/step"] + 1
        for name, g in gradients.items():
            m = state[f"{phase}/{name}.m"] = beta1 * state[f"{phase}/{name}.m"] + (1 - beta1) * g
            v = state[f"{phase}/{name}.v"] = beta2 * state[f"{phase}/{name}.v"] + (1 - beta2) * g**2
            denominator = np.sqrt(v) / np.sqrt(1 - beta2**n) + epsilon
            reference.parameters[name] = reference.parameters[name] - lr / (1 - beta1**n) * m / denominator

    return step


@dataclass(frozen=True)
class Phase:
    """An `optimize` statement as the file writes it: the stacks it updates, its optimiser and its steps per batch."""

    name: str
    stacks: tuple[str, ...]
    optimizer: Optimizer
    repeat: int = 1


MCD = (
    Phase("step_a", ("features", "c1", "c2"), sgd),
    Phase("step_b", ("c1", "c2"), sgd),
    Phase("step_c", ("features",), sgd, repeat=4),  # num_k = 4
)
ADDA_PRETRAIN = (Phase("pretrain", ("source_encoder", "label"), sgd),)
ADDA_ADAPTATION = (
    Phase("critic", ("domain",), adam(2e-4, 0.5)),
    Phase("encoder", ("target_encoder",), adam(2e-4, 0.5)),
)
WDGRL = (
    Phase("critic_step", ("critic",), adam(1e-3), repeat=5),  # critic_steps = 5
    Phase("task_step", ("features", "label"), sgd),
)
# Adam steps a gradient that is 0 but for rounding (≈ 1e-16, e.g. where WDGRL's critic gap does not depend on a bias)
# by lr · g / (|g| + ε) ≈ 1e-8 · lr: with Adam, a change of 0 is matched to 1e-9 (lr 1e-3 or less)
ADAM_ATOL = 1e-9
PHASES = {"mcd": MCD, "adda": ADDA_PRETRAIN + ADDA_ADAPTATION, "wdgrl": WDGRL}  # every method with several phases


def run_phases(
    objective: Callable[[Net, Batch], Losses], phases: tuple[Phase, ...], reference: Reference, batch: Batch
) -> Losses:
    """One training step by hand: each phase in order, `repeat` times, each step's gradient of the phase's objective
    taken at the parameters the step before left, only the phase's stacks stepped. Returns the losses before the
    first step (what `train_step` reports)."""
    losses = None
    for phase in phases:
        for _ in range(phase.repeat):
            drawn = reference.step_batch(batch)
            losses = losses or objective(Net(NUMPY, reference.parameters, PROGRESS), drawn)
            gradients = gradient_function(objective, reference.parameters, drawn, loss=phase.name)(reference.parameters)
            own = {name: g for name, g in gradients.items() if name.split(".")[0] in phase.stacks}
            phase.optimizer(reference, phase.name, own)
    assert losses is not None
    return losses


def start(model: CompiledModel) -> Reference:
    """The reference's state before the first step: the model's parameters, every optimiser state array zero, and
    a generator in the state of the model's one (`interpolate`'s), if it has one."""
    states = list(model.random_state.values())
    assert len(states) <= 1
    random = None
    if states:
        random = np.random.Generator(getattr(np.random, states[0]["bit_generator"])())
        random.bit_generator.state = states[0]
    zero = {name: np.zeros_like(value) for name, value in model.optimizer_state.items()}
    return Reference(model.parameters, zero, random)


def check_stage(
    model: CompiledModel,
    inputs: dict[str, np.ndarray],
    batch: Batch,
    objective: Callable[[Net, Batch], Losses],
    phases: tuple[Phase, ...],
    reference: Reference,
    atol: float = 1e-14,
) -> None:
    """Train one step of the model's current stage and of `phases` by hand from `reference` (which it advances), and
    compare the reported losses, the parameters' changes (to `atol` where one is 0), the optimiser state and the
    random state."""
    before = model.parameters
    assert_losses(model.train_step(**inputs), run_phases(objective, phases, reference, batch))
    assert_state(model, before, reference.parameters, reference.state, atol)
    if reference.random is not None:
        assert list(model.random_state.values()) == [reference.random.bit_generator.state]


def test_every_method_file_has_a_reference() -> None:
    assert sorted([*OBJECTIVES, *PHASES]) == sorted(p.stem for p in METHODS.glob("*.dann"))


def test_a_step_of_mcd_is_its_three_phases_by_hand() -> None:
    model, inputs, batch = compiled("mcd")
    check_stage(model, inputs, batch, mcd, MCD, start(model))


def test_a_step_of_adda_in_each_stage_is_its_phases_by_hand() -> None:
    model, inputs, batch = compiled("adda")
    reference = start(model)
    assert model.stage == "source_training"
    check_stage(model, inputs, batch, adda, ADDA_PRETRAIN, reference)
    model.set_stage("adaptation")  # entering it copies the trained source encoder into the target encoder
    copied = model.parameters
    for name in [name for name in reference.parameters if name.startswith("source_encoder.")]:
        target = "target" + name.removeprefix("source")
        np.testing.assert_array_equal(copied[target], copied[name], err_msg=target)
        reference.parameters[target] = reference.parameters[name].copy()
    check_stage(model, inputs, batch, adda, ADDA_ADAPTATION, reference, ADAM_ATOL)
    assert reference.state["critic/step"] == reference.state["encoder/step"] == 1


def test_a_step_of_wdgrl_is_its_critic_steps_then_its_task_step_by_hand() -> None:
    model, inputs, batch = compiled("wdgrl")
    check_stage(model, inputs, batch, wdgrl, WDGRL, start(model), ADAM_ATOL)

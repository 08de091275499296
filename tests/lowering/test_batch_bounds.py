"""Batched passes have a bounded width: N applications of one stack to N different values run as passes of at
most `passes.MAX_BATCHED` arguments, so the joins and splits around them stay small (a join of N parts compiled in time
growing with N², issue 12) while the numbers stay those of one application each."""

from __future__ import annotations

import numpy as np
import pytest

import spec_lang
from spec_lang.lowering import passes
from spec_lang.lowering.passes import Optimizations, batch_groups

WIDTH = 4  # the bound in these tests: a small model shows it (PyTensor's FAST_COMPILE adds at most 31 terms)
N = 2 * WIDTH + 3


@pytest.fixture(autouse=True)
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passes, "MAX_BATCHED", WIDTH)


def _spec() -> str:
    lines = ["model many()", "input x : float[batch, 2]", "input y : int[batch] < 2", "stack head { dense 2 softmax }"]
    lines += [f"stack s{i} {{ dense 2 tanh }}" for i in range(N)]
    lines += [f"loss l{i} = crossentropy(head(s{i}(x)), y)" for i in range(N)]
    return "\n".join(lines) + "\noptimize sgd(lr = 0.1)\n"


def test_the_applications_of_the_shared_head_run_in_passes_of_bounded_width() -> None:
    program = spec_lang.loads(_spec()).program
    roots = [v for loss in program.losses.values() for v in spec_lang.program.tensors(loss)]
    groups = {id(g): g for g in batch_groups(program, roots, True, Optimizations()).values()}.values()
    widths = sorted(len(g.args) for g in groups if g.stack == "head")
    assert widths == [3, WIDTH, WIDTH]


def test_bounded_passes_compute_what_single_applications_compute() -> None:
    spec = spec_lang.loads(_spec())
    batched, single = spec.compile("FAST_COMPILE"), spec.compile("FAST_COMPILE", optimizations=Optimizations.none())
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(5, 2)), "y": rng.integers(0, 2, 5)}
    ours, theirs = batched.evaluate(**batch), single.evaluate(**batch)
    assert ours.keys() == theirs.keys()
    np.testing.assert_allclose([ours[k] for k in ours], [theirs[k] for k in ours], rtol=1e-6)


def test_a_sum_of_more_than_32_loss_terms_trains_in_fast_compile_mode() -> None:
    """PyTensor merges a long sum into one addition, whose Python implementation refuses more than 32 operands."""
    lines = ["model long_sum()", "input x : float[batch, 2]", "input y : int[batch] < 2", "stack s { dense 2 softmax }"]
    lines += [f"loss l{i} = {i + 1} * crossentropy(s(x), y)" for i in range(40)]
    model = spec_lang.loads("\n".join(lines) + "\noptimize sgd(lr = 0.01)\n").compile("FAST_COMPILE")
    losses = model.train_step(x=np.ones((3, 2)), y=[0, 1, 0])
    assert losses["objective"] == pytest.approx(sum(losses[f"l{i}"] for i in range(40)), rel=1e-5)

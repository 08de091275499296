"""Large graphs are compiled without inplace rewrites and, in the NUMBA mode, in pieces (`runtime.linking`), so that
compile time grows linearly with the graph (issue 12, item 6: many stacks sharing a head). The time itself is
measured by `bench/compile_scaling.py`; these tests check the mechanism: which graphs take it, and that it computes
what the ordinary compile computes."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode, get_mode
from pytensor.link.numba.linker import NumbaLinker

import spec_lang
from spec_lang.lowering.passes import Optimizations
from spec_lang.runtime import linking

SPEC = """
model stacks()
seed 3
input x : float[batch, 4]
input y : int[batch] < 3
stack s1 { dense 8 relu; dropout(0.5) }
stack head { dense 3 softmax }
loss l1 = crossentropy(head(s1(x)), y)
optimize sgd(lr = 0.1) minimize l1
"""


def _graph() -> tuple[list, list, list, int]:
    x = pt.matrix("x")
    ws = [pytensor.shared(np.linspace(-1, 1, 6).reshape(3, 2) * k, name=f"w{k}") for k in (1, 2)]
    cost = (pt.tanh(x @ ws[0]) * pt.tanh(x @ ws[1]) + 1).sum()  # the same nodes twice: one compiled function
    inputs, outputs = [x], [cost]
    updates = [(w, w - 0.1 * g) for w, g in zip(ws, pytensor.grad(cost, ws), strict=True)]
    return inputs, outputs, updates, linking.graph_size(inputs, outputs, updates)


def _writes_in_place(function) -> bool:
    return any(node.op.destroy_map for node in function.maker.fgraph.apply_nodes)


def test_the_large_graph_mode_is_taken_above_the_threshold_only() -> None:
    inputs, outputs, updates, size = _graph()
    ordinary = linking.function(inputs, outputs, updates, "NUMBA", large=size)
    pieces = linking.function(inputs, outputs, updates, "NUMBA", large=size - 1)
    assert type(ordinary.maker.linker) is NumbaLinker and _writes_in_place(ordinary)
    assert isinstance(pieces.maker.linker, linking.ChunkedNumbaLinker) and not _writes_in_place(pieces)
    steps = pieces.vm.jit_fn._steps
    assert len({id(run) for run, *_ in steps}) < len(steps)  # alike nodes share their compiled function
    batch, ws = np.arange(6.0).reshape(2, 3) / 10, [w for w, _ in updates]
    start = [w.get_value() for w in ws]
    expected = [ordinary(batch)[0], ordinary(batch)[0], *(w.get_value() for w in ws)]
    for w, value in zip(ws, start, strict=True):
        w.set_value(value)
    got = [pieces(batch)[0], pieces(batch)[0], *(w.get_value() for w in ws)]
    for value, wanted in zip(got, expected, strict=True):
        np.testing.assert_allclose(value, wanted, rtol=1e-12)


def test_other_modes_keep_their_linker_without_inplace_rewrites() -> None:
    for name in ("CVM", "FAST_COMPILE"):
        mode = linking.large_graph_mode(name)
        assert type(mode.linker) is type(get_mode(name).linker)
        assert "inplace" in mode.provided_optimizer.exclude


def test_a_large_graph_fuses_loops_of_bounded_size() -> None:
    """A sum of 40 terms and its gradient fuse into loops of 81 and more operands in an ordinary compile; in a large
    graph into loops of at most `FUSED_OPERANDS`, computing the same, and the limit is PyTensor's again after."""
    xs = [pt.scalar(f"x{i}") for i in range(40)]
    total = sum((pt.log1p(x * x) for x in xs), pt.constant(0.0))
    outputs = [total, *pytensor.grad(total, xs)]
    python = Mode(linker="py", optimizer="fast_run")  # PyTensor's rewrites, nothing to compile
    ordinary = linking.function(xs, outputs, (), python, large=10**6)
    large = linking.function(xs, outputs, (), python, large=1)

    def widest(function) -> int:
        return max(len(node.inputs) + len(node.outputs) for node in function.maker.fgraph.apply_nodes)

    assert widest(ordinary) > 80 and widest(large) <= linking.FUSED_OPERANDS
    values = np.linspace(-2, 2, 40)  # (the ordinary loops are too wide for the Python linker to run)
    expected = [np.log1p(values**2).sum(), *(2 * values / (1 + values**2))]
    np.testing.assert_allclose(large(*values), expected, rtol=1e-12)
    assert widest(linking.function(xs, outputs, (), python, large=10**6)) > 80


def test_a_model_over_the_threshold_trains_as_an_ordinary_one(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = spec_lang.loads(SPEC)
    ordinary = spec.compile("NUMBA", Optimizations(compile_cache=False))
    monkeypatch.setattr(linking, "LARGE_GRAPH", 60)  # the training graph is over it, evaluate's and predict's under
    monkeypatch.setattr(linking.ChunkedNumbaLinker, "chunk_nodes", 40)  # a few pieces: fewer functions to compile
    large = spec.compile("NUMBA", Optimizations(compile_cache=False))
    [update] = large._train.values()
    assert len(update.vm.jit_fn._steps) > 1 and not _writes_in_place(update)
    rng = np.random.default_rng(0)
    for _ in range(3):
        batch = {"x": rng.normal(size=(6, 4)), "y": rng.integers(0, 3, 6)}
        assert large.train_step(**batch) == pytest.approx(ordinary.train_step(**batch), rel=1e-6)
    for name, value in ordinary.parameters.items():
        np.testing.assert_allclose(large.parameters[name], value, rtol=1e-5, atol=1e-7)
    assert large.random_state == ordinary.random_state

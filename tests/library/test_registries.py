"""Every vocabulary is a registry: an entry added in one place reaches the checker, the lowering, the summary and the
emitted module; the builder's exports and the language reference's tables name exactly the registered entries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from emitted import import_module, train_side_by_side

import spec_lang
from spec_lang import program as P
from spec_lang.library.initializers import INITIALIZERS
from spec_lang.library.layers import LAYERS
from spec_lang.library.losses import LOSSES, LossChecks, LossKind, LossLowering, predictions, same_shape
from spec_lang.library.optimizers import OPTIMIZERS
from spec_lang.library.registry import Argument, Registry, Signature
from spec_lang.library.schedules import SCHEDULES
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.reports.summary import summary
from spec_lang.syntax import builder, ir

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")

# A toy loss, the mean absolute error, declared in one place: how it checks, lowers and reads in the summary.
_MAE = Signature((Argument("predictions"), Argument("target")))


def _mae_check(checks: LossChecks, call: ir.Call) -> P.LossTerm:
    bound = checks.arguments(call, _MAE)
    predicted, target = predictions(checks, call, bound), checks.value(bound["target"])
    same_shape(checks, call, predicted, target, bound["target"])
    return P.LossTerm("mae", (("predictions", predicted), ("target", target)))


def mean_absolute_error(predictions, target, xp):
    return xp.abs(predictions - target).mean()


def _mae_lower(ctx: LossLowering, term: P.LossTerm) -> object:
    return ctx.backend.op("mean_absolute_error", ctx.tensor(term.value("predictions")),
                          ctx.tensor(term.value("target")))


TOY = LossKind("mae", "`mae(p, t)`: mean absolute error", _MAE, _mae_check, _mae_lower,
               lambda term, name: f"mae({name(term.arg('predictions'))}, {name(term.arg('target'))})",
               formulas=(mean_absolute_error,))

SPEC = """model toy()
input x : float[batch, 3]
input t : float[batch, 2]
stack net { dense 2 linear }
loss fit = mae(net(x), t)
optimize sgd(lr = 0.1) minimize fit
"""


@contextmanager
def registered(registry: Registry, entry: object) -> Iterator[None]:
    registry.register(entry)
    try:
        yield
    finally:
        registry.unregister(entry.name)


def test_a_loss_is_one_registration_away(tmp_path: Path) -> None:
    with pytest.raises(spec_lang.SpecError, match="unknown loss function 'mae'"):
        spec_lang.loads(SPEC)
    with registered(LOSSES, TOY):
        spec = spec_lang.loads(SPEC)
        assert "fit  = mae(net(x), t)" in summary(spec.program, "toy", None, "FAST_COMPILE")
        model = spec.compile("FAST_COMPILE")
        rng = np.random.default_rng(0)
        x, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
        w, b = model.parameters["net.0.W"], model.parameters["net.0.b"]
        expected = np.abs(x @ w + b - t).mean()
        assert model.evaluate(x=x, t=t)["fit"] == pytest.approx(expected, rel=1e-5)
        before = model.train_step(x=x, t=t)["fit"]
        assert model.evaluate(x=x, t=t)["fit"] < before
        module = tmp_path / "toy.py"
        module.write_text(emit_python(spec.program, "toy.dann"))
        generated = import_module(module)
        assert "def mean_absolute_error(predictions, target, xp):" in module.read_text()
        train, *_ = generated.compile_model(mode="FAST_COMPILE")
        train_side_by_side(spec.compile("FAST_COMPILE"), generated, train, 3, rng, rel=1e-5)
        with pytest.raises(spec_lang.SpecError, match=r"mae: predictions are float\[batch, 2\]"):
            spec_lang.loads(SPEC.replace("input t : float[batch, 2]", "input t : float[batch, 4]"))
    assert "mae" not in LOSSES


def test_a_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="a loss function named 'bce' is registered already"):
        LOSSES.register(TOY.__class__("bce", *[getattr(TOY, f) for f in ("summary", "signature", "check", "lower",
                                                                         "describe")]))


def _table_names(section: str) -> set[str]:
    """The words that begin a backticked span in the first column of the tables of a section of the reference."""
    text = REFERENCE.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    return {word for cell in cells for word in re.findall(r"`(\w+)", cell)}


@pytest.mark.parametrize(("section", "registry", "also"), [
    ("Stacks and layers", LAYERS, {"for"}),
    ("Losses", LOSSES, set()),
    ("Optimiser", OPTIMIZERS, {"weight_decay", "clip_norm"}),
    ("Schedules", SCHEDULES, set()),
])
def test_the_reference_tables_name_every_entry(section: str, registry: Registry, also: set[str]) -> None:
    assert _table_names(section) == set(registry) | also


def test_the_reference_names_every_initialiser() -> None:
    text = REFERENCE.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    public = {name for name in INITIALIZERS if INITIALIZERS[name].public}
    assert public == {name for name in re.findall(r"`(\w+)", text) if name in INITIALIZERS}
    assert public == set(re.findall(r"`(\w+)", text)) & public


def test_the_optimiser_options_in_the_reference_are_the_registered_ones() -> None:
    text = REFERENCE.split("\n## Optimiser\n", 1)[1].split("\n## ", 1)[0]
    for kind in OPTIMIZERS.entries():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{kind.name}`"))
        for option in kind.own_options:
            assert f"`{option.name} = " in row, (kind.name, option.name)


@pytest.mark.parametrize("registry", [LOSSES, OPTIMIZERS, SCHEDULES])
def test_the_builder_has_a_function_for_every_entry(registry: Registry) -> None:
    for name in registry:
        function = getattr(builder, name)
        assert function(1).node == ir.Call(name, (ir.Number(1),))


def test_the_public_builder_module_exports_the_builder() -> None:
    import spec_lang.builder as public

    assert set(public.__all__) == {name for name, value in vars(builder).items()
                                   if getattr(value, "__module__", None) == builder.__name__ and name[0] != "_"}


def test_the_builder_writes_every_public_initialiser() -> None:
    for name in INITIALIZERS:
        if INITIALIZERS[name].public and INITIALIZERS[name].signature.names:
            assert getattr(builder, name)(value=1).node.func == name

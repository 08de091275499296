"""Limits with messages, not crashes (spec_lang/limits.py): nesting, network depth, numbers and parameter memory
beyond the limits get located errors; anything within them passes every stage without a RecursionError, even
called from deep inside a program."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytensor
import pytest

import spec_lang
from spec_lang.cli.main import main
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY, MAX_DEPTH, MAX_ERRORS, MAX_LAYERS, format_memory
from spec_lang.library.optimizers import OPTIMIZERS
from spec_lang.lowering.pytensor.backend import PyTensorBackend
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.walker import initial_values, lower
from spec_lang.syntax import builder, ir
from spec_lang.syntax.grammar import lark_parser
from spec_lang.syntax.jsonio import dump_json, load_json, loads_json
from spec_lang.syntax.parser import parse
from spec_lang.syntax.printer import format_model

HEADROOM = 150  # frames a caller may already use: every stage must work this much deeper than a test runs it

MODEL = """\
model m(hp = 1)
input x : float[batch, 2]
input y : int[batch] < 2
stack net {{ dense 2 softmax }}
{extra}
loss xent = crossentropy(net(x), y)
optimize sgd(lr = 0.1)
"""


def deeper[T](frames: int, action: Callable[[], T]) -> T:
    """`action()` called `frames` Python frames deeper than here."""
    return deeper(frames - 1, action) if frames else action()


def _error(text: str, filename: str = "m.dann", **options: object) -> spec_lang.Diagnostic:
    with pytest.raises(spec_lang.SpecError) as caught:
        spec_lang.loads(text, filename, **options)
    return caught.value.diagnostics[0]


# Nesting ---------------------------------------------------------------------------------------------------------

# An expression nested n levels deep, by kind; and a model where the checker evaluates it to its leaves.
NESTINGS = {
    "signs": lambda n: "-" * n + "hp",
    "brackets and sums": lambda n: "(" * n + "hp" + " + 1)" * n,
    "a long sum": lambda n: " + ".join(["hp"] * (n + 1)),
    "lists": lambda n: "[" * n + "]" * n,
    "calls": lambda n: "constant(" * n + "0.1" + ")" * n,
}
PLACES = {
    "signs": "model m(hp = 1, v = {})",
    "brackets and sums": "model m(hp = 1, v = {})",
    "a long sum": "model m(hp = 1, v = {})",
    "lists": "model m(hp = 1, v = {})",
    "calls": "optimize sgd(lr = {})",
}


@pytest.mark.parametrize("nested", NESTINGS.values(), ids=NESTINGS)
def test_nesting_beyond_the_limit_is_a_located_error(nested: Callable[[int], str]) -> None:
    error = _error(MODEL.format(extra=f"let v = {nested(10 * MAX_DEPTH)}"))
    assert (error.code, error.message) == ("E108", f"this is nested more than {MAX_DEPTH} levels deep")
    assert error.span.line == 5


@pytest.mark.parametrize("kind", NESTINGS)
def test_nesting_within_the_limit_passes_every_stage(kind: str) -> None:
    text = MODEL.format(extra="")
    statement = next(line for line in text.splitlines() if line.startswith(PLACES[kind].split(" ", 1)[0]))
    text = text.replace(statement, PLACES[kind].format(NESTINGS[kind](MAX_DEPTH - 5)))

    def every_stage() -> None:
        model = parse(text)
        assert parse(format_model(model)) == model
        assert load_json(dump_json(model)) == model
        assert spec_lang.from_ir(model).program is not None

    deeper(HEADROOM, every_stage)


def test_nested_loops_beyond_the_limit_are_a_located_error() -> None:
    stack = "stack deep { " + "for h in [1] { " * MAX_DEPTH + "dense 2 tanh" + " }" * MAX_DEPTH + " }"
    error = _error(MODEL.format(extra=stack))
    assert (error.code, error.span.line) == ("E108", 5)


def test_a_builder_model_nested_too_deeply_is_an_error() -> None:
    m = builder.ModelBuilder("m")
    x = m.input("x", "float", ["batch", 2])
    losses = [m.loss(f"l{i}", builder.mse(x, x)) for i in range(MAX_DEPTH + 1)]
    m.optimize(builder.sgd(lr=0.1), minimize=functools.reduce(lambda a, b: a + b, losses))
    with pytest.raises(spec_lang.SpecError, match=r"E108\]: this is nested more than 100 levels deep"):
        spec_lang.from_ir(m.build())


def test_json_nested_beyond_the_limit_is_a_located_error() -> None:
    with pytest.raises(spec_lang.SpecError, match=r"m\.json:1:\d+: error\[E120\]: nested more than 200 levels deep"):
        loads_json('{"version": 1, "model": "m", "seed": ' + "[" * 5000 + "]" * 5000 + "}", "m.json")
    seed: object = 1
    for _ in range(2 * MAX_DEPTH):
        seed = {"op": "neg", "operand": seed}
    with pytest.raises(spec_lang.SpecError, match=r"error\[E120\]: /seed(/operand)+: nested more than 200 levels"):
        load_json({"version": 1, "model": "m", "seed": seed})


def test_a_long_chain_of_values_declared_out_of_order_is_an_error() -> None:
    lets = "\n".join(f"let v{i} = v{i + 1}" for i in range(3 * MAX_DEPTH)) + f"\nlet v{3 * MAX_DEPTH} = x"
    error = _error(MODEL.format(extra=lets))
    assert error.code == "E108" and "declared after them" in error.message


# Network depth ---------------------------------------------------------------------------------------------------


def _network(layers: int) -> str:
    """A network `layers` deep: a stack of layers - 1 dense layers, and a softmax."""
    stack = "{ for w in widths { dense w tanh } dense 2 softmax }"
    return (
        MODEL.format(extra="")
        .replace("{ dense 2 softmax }", stack)
        .replace("model m(hp = 1)", f"model m(hp = 1, widths = {[3] * (layers - 1)})")
    )


def test_a_network_at_the_depth_limit_is_checked_lowered_and_differentiated() -> None:
    spec = spec_lang.loads(_network(MAX_LAYERS))

    def build_gradient_and_module() -> None:
        graph = lower(spec.program, PyTensorBackend(spec.program, initial_values(spec.program)))
        pytensor.grad(graph.objective, graph.phases[0].parameters)  # PyTensor's gradient recurses once per layer
        emit_python(spec.program, "m.dann")

    deeper(HEADROOM, build_gradient_and_module)


def test_a_network_beyond_the_depth_limit_is_a_located_error() -> None:
    error = _error(_network(MAX_LAYERS + 1))
    assert (error.code, error.span.line) == ("E605", 6)
    assert error.message == f"this is {MAX_LAYERS + 1} layers deep on its longest path from an input"


def test_loops_that_unroll_forever_are_stopped() -> None:
    loops = "for a in w { " * 12 + "dense 2 tanh" + " }" * 12
    error = _error(
        _network(2)
        .replace("model m(hp = 1, widths = [3])", "model m(hp = 1, w = [1, 2, 3, 4, 5, 6])")
        .replace("for w in widths { dense w tanh }", loops)
    )  # 6^12 layers: checking must not try
    assert (error.code, error.message) == ("E605", f"this unrolls to more than {MAX_LAYERS} layers")


# Numbers ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("literal", "code"), [("1e999", "E109"), ("9" * 5000, "E109"), ("0" * 5000 + "1", None)])
def test_number_literals_beyond_a_float_are_errors(literal: str, code: str | None) -> None:
    model = MODEL.format(extra="").replace("hp = 1", f"hp = {literal}")
    if code is None:
        assert spec_lang.loads(model).program.settings["hp"] == 1
    else:
        assert _error(model).code == code


@pytest.mark.parametrize(
    "expression",
    [
        "1e300 * 1e300",
        "1" + "0" * 300 + " * 1" + "0" * 300,
        "1" + "0" * 300 + " * 1" + "0" * 300 + " / 3",
        "1" + "0" * 308 + " * 10 + 0.5",
    ],
)
def test_arithmetic_that_overflows_is_an_error(expression: str) -> None:
    error = _error(MODEL.format(extra="").replace("hp = 1", f"hp = {expression}"))
    assert (error.code, error.span.column) == ("E601", 14)
    assert error.message.endswith("is not a usable value")


def test_arithmetic_evaluates_only_its_own_operation() -> None:
    spec = spec_lang.loads(MODEL.format(extra="").replace("hp = 1", "hp = 1 + 0, k = hp - 1"))
    assert spec.program.settings["hp"] == 1  # `a / b` is not computed for `a + b`: no division by zero


def test_an_override_that_is_not_finite_is_an_error() -> None:
    error = _error(MODEL.format(extra="stack wide { for h in [hp] { dense h tanh } }"), hp=float("nan"))
    assert (error.code, error.message) == ("E601", "nan is not a usable value")


# Parameter memory ------------------------------------------------------------------------------------------------

HUGE = MODEL.replace("dense 2 softmax", "dense 1000000000 tanh; dense 2 softmax").format(extra="")


def test_parameters_beyond_the_memory_limit_are_refused_before_allocating() -> None:
    error = _error(HUGE)
    assert error.code == "E604" and (error.span.line, error.span.column) == (4, 13)
    assert error.message == "the parameters need 18.6 GiB (20,000,000,008 bytes), more than the limit of 2.0 GiB"
    assert DEFAULT_MAX_PARAMETER_MEMORY == 2 * 2**30


def test_the_memory_limit_can_be_raised() -> None:
    spec = spec_lang.loads(HUGE, max_parameter_memory=32 * 2**30)
    assert spec.program.stack("net").parameter_count == 5_000_000_002


def test_the_command_line_raises_the_memory_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.dann"
    path.write_text(HUGE, encoding="utf-8")
    assert main(["check", str(path)]) == 1 and "error[E604]" in capsys.readouterr().err
    assert main(["check", str(path), "--max-parameter-memory", "32GiB"]) == 0
    with pytest.raises(SystemExit) as caught:
        main(["check", str(path), "--max-parameter-memory", "lots"])
    assert caught.value.code == 2 and "not a size: 'lots'" in capsys.readouterr().err


def test_float64_parameters_take_twice_the_memory() -> None:
    error = _error(HUGE.replace("model m(hp = 1)", "model m(hp = 1)\nprecision float64"))
    assert error.message.startswith("the parameters need 37.2 GiB")


# 500,000,002 float32 numbers (2,000,000,008 bytes, 1.8 GiB): under the limit with plain SGD, over it with the
# arrays an optimiser keeps for each parameter it updates
UNDER = MODEL.replace("dense 2 softmax", "dense 100000000 tanh; dense 2 softmax").format(extra="")


@pytest.mark.parametrize(
    ("optimizer", "arrays"),
    [
        ("sgd(lr = 0.1)", 0),
        ("sgd(lr = 0.1, momentum = 0.9)", 1),
        ("sgd(lr = 0.1, momentum = 0.9, nesterov = true)", 1),
        ("rmsprop()", 1),
        ("adam()", 2),
    ],
)
def test_the_memory_limit_counts_the_optimisers_state(optimizer: str, arrays: int) -> None:
    """The limit used to count the parameters alone: with Adam, a model "under" 2 GiB held 6 GB."""
    text = UNDER.replace("sgd(lr = 0.1)", optimizer)
    if arrays == 0:
        spec_lang.loads(text)
        return
    error = _error(text)
    total, state = 2_000_000_008 * (1 + arrays), 2_000_000_008 * arrays
    name = optimizer.partition("(")[0]
    assert error.code == "E604" and error.message == (
        f"the parameters and the optimiser's state need {format_memory(total)} ({total:,} bytes): 1.8 GiB of "
        f"parameters and {format_memory(state)} of {name}'s state ({arrays} array{'s' if arrays > 1 else ''} the size "
        "of each parameter it updates), more than the limit of 2.0 GiB"
    )
    largest = format_memory(1_200_000_000 * (1 + arrays))  # the first layer's 300,000,000 numbers
    assert error.notes == (f"this layer's parameters and their optimiser state take {largest}",)
    enough = -(-total // 2**30)
    assert f"--max-parameter-memory {enough}GiB" in error.hint
    spec_lang.loads(text, max_parameter_memory=enough * 2**30)


def test_a_frozen_stack_has_no_optimiser_state() -> None:
    text = (
        MODEL.replace(
            "stack net {{ dense 2 softmax }}",
            "stack big(frozen = true) {{ dense 100000000 tanh }}\nstack net {{ dense 2 softmax }}",
        )
        .replace("net(x)", "net(big(x))")
        .replace("sgd(lr = 0.1)", "adam()")
        .format(extra="")
    )
    # big: 300,000,000 numbers, frozen; net: 200,000,002, with Adam's two moments each
    error = _error(text)
    assert "(3,600,000,024 bytes): 1.8 GiB of parameters and 1.4 GiB of adam's state" in error.message


@pytest.mark.parametrize(
    "optimizer",
    [
        "sgd(lr = 0.1)",
        "sgd(lr = 0.1, momentum = 0.5)",
        "sgd(lr = 0.1, momentum = 0.5, nesterov = true)",
        "adam()",
        "rmsprop()",
    ],
)
def test_each_optimisers_declared_state_is_what_its_rule_keeps(optimizer: str) -> None:
    """`OptimizerKind.state_arrays` against the state a compiled model holds: batch normalisation's running
    statistics (not trainable) and a frozen stack get none; Adam's step count is one number."""
    text = (
        MODEL.replace(
            "stack net {{ dense 2 softmax }}",
            "stack frozen_one(frozen = true) {{ dense 3 tanh }}\n"
            "stack net {{ dense 4 relu; batchnorm(); dense 2 softmax }}",
        )
        .replace("net(x)", "net(frozen_one(x))")
        .replace("sgd(lr = 0.1)", optimizer)
        .format(extra="")
    )
    spec = spec_lang.loads(text)
    model = spec.compile("FAST_COMPILE")
    updated = spec.program.optimized_parameters()
    numbers = sum(value.size for name, value in model.parameters.items() if name in updated)
    state = sum(value.size for name, value in model.optimizer_state.items() if name != "step")
    kind = OPTIMIZERS[spec.program.phases[0].optimizer]
    assert state == kind.state_arrays(spec.program.phases[0].options) * numbers


def test_names_are_what_the_text_can_say() -> None:
    assert ir.NAME.pattern == lark_parser().get_terminal("NAME").pattern.value


# Many errors -----------------------------------------------------------------------------------------------------


def test_checking_stops_after_so_many_errors() -> None:
    lets = "\n".join(f"let value_{i} = unknown_{i}" for i in range(3000))  # each unknown name is compared with all
    with pytest.raises(spec_lang.SpecError) as caught:
        spec_lang.loads(MODEL.format(extra=lets), "m.dann")
    errors = caught.value.diagnostics
    assert len(errors) == MAX_ERRORS and errors[-1].notes == (f"specc stops after {MAX_ERRORS} errors",)
    assert errors[-1].hint.endswith(" and 2992 more")  # x, y and 3000 values, 10 of them shown


def test_a_run_time_value_that_overflows_is_an_error() -> None:
    error = _error(MODEL.format(extra="").replace("sgd(lr = 0.1)", "sgd(lr = 1e308 * 10)"))
    assert (error.code, error.message) == ("E601", "this evaluates to inf, which is not a usable value")


def test_a_schedule_that_overflows_prints_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    spec_lang.loads(MODEL.format(extra="").replace("sgd(lr = 0.1)", "sgd(lr = annealed(0.1, beta = 1e308))"))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("limit", [0, -1, 2**63 + 1, 1.5, float("nan"), True, "8GiB"])
def test_a_memory_limit_that_is_not_a_size_is_refused_in_python(limit: object) -> None:
    with pytest.raises(ValueError, match="max_parameter_memory is"):
        spec_lang.load("examples/seed_dann.dann", max_parameter_memory=limit)  # type: ignore[arg-type]

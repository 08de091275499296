"""Round trips: text → IR → text → IR and IR → JSON → IR give the same model, for the examples and for
random IR models; the printer leaves the (canonical) examples unchanged. The examples include the files in
examples/lib/, which are only meant to be included (they hold templates, not complete models)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spec_lang.diagnostics import SpecError
from spec_lang.syntax import builder, ir
from spec_lang.syntax.jsonio import dump_json, load_json
from spec_lang.syntax.parser import parse
from spec_lang.syntax.printer import format_model, format_source

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DANN_FILES = sorted(EXAMPLES.rglob("*.dann"))


def example_id(path: Path) -> str:
    return path.relative_to(EXAMPLES).as_posix()


@pytest.mark.parametrize("path", DANN_FILES, ids=example_id)
def test_example_survives_print_and_parse(path: Path) -> None:
    model = parse(path.read_text(encoding="utf-8"), str(path))
    assert parse(format_model(model)) == model


@pytest.mark.parametrize("path", DANN_FILES, ids=example_id)
def test_examples_are_canonical(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert format_source(text, str(path)) == text
    assert format_source(format_source(text)) == format_source(text)


# Random models --------------------------------------------------------------------------------------


def models(names: st.SearchStrategy[str], numbers: st.SearchStrategy[int | float],
           layer_kinds: st.SearchStrategy[str], inits: st.SearchStrategy[ir.Init]) -> st.SearchStrategy[ir.Model]:
    """Small random IR models; names of parameters and of keyword arguments are unique, as JSON needs."""
    def tuples(of: st.SearchStrategy, size: int = 2, **unique) -> st.SearchStrategy[tuple]:
        return st.lists(of, max_size=size, **unique).map(tuple)

    def keywords(values: st.SearchStrategy[ir.Expr]) -> st.SearchStrategy[tuple[ir.Keyword, ...]]:
        return tuples(st.builds(ir.Keyword, names, values), unique_by=lambda k: k.name)

    leaves = st.one_of(numbers.map(ir.Number), st.booleans().map(ir.Bool), names.map(ir.Ref))
    exprs = st.recursive(leaves, lambda inner: st.one_of(
        tuples(inner, 3).map(ir.ListExpr),
        st.builds(ir.Call, names, tuples(inner), keywords(inner)),
        st.builds(ir.BinOp, st.sampled_from("+-*/"), inner, inner),
        inner.map(ir.negate),  # how every door spells `-x`: a negative literal when x is a number
    ), max_leaves=6)
    calls = st.builds(ir.Call, names, tuples(exprs), keywords(exprs))
    layers = st.recursive(
        st.builds(ir.Dense, exprs, st.sampled_from(ir.ACTIVATIONS) | names, keywords(exprs))  # or a parameter
        | st.builds(ir.LayerCall, layer_kinds, tuples(exprs), keywords(exprs)),
        lambda body: st.builds(ir.ForLayers, names, exprs, tuples(body, 3)), max_leaves=4)
    template_params = tuples(st.builds(ir.TemplateParam, names, st.none() | exprs), 3, unique_by=lambda p: p.name)
    return st.builds(
        ir.Model, names,
        params=tuples(st.builds(ir.Param, names, exprs), 3, unique_by=lambda p: p.name),
        includes=tuples(st.builds(ir.Include, PATHS)),
        inputs=tuples(st.builds(ir.Input, names, st.sampled_from(ir.DTYPES), tuples(exprs, 3), st.none() | exprs)),
        templates=tuples(st.builds(ir.Template, names, template_params, tuples(layers, 3))),
        stacks=tuples(st.builds(ir.Stack, names, tuples(layers, 3), keywords(exprs))
                      | st.builds(ir.Stack, names, st.just(()), keywords(exprs), calls)),  # made from a template
        lets=tuples(st.builds(ir.Let, names, exprs)),
        heads=tuples(st.builds(ir.Head, names, exprs)),
        losses=tuples(st.builds(ir.Loss, names, exprs)),
        optimizers=tuples(st.builds(ir.Optimize, calls, st.none() | exprs, st.none() | names,
                                    tuples(names.map(ir.Ref), 3), st.none() | exprs)),
        stages=tuples(st.builds(ir.Stage, names, tuples(names.map(ir.Ref), 3).filter(bool),
                                keywords(exprs))),
        init=st.none() | inits,
        seed=st.none() | exprs,
        precision=st.none() | st.sampled_from(ir.PRECISIONS),
    )


NAME = r"[A-Za-z_][A-Za-z0-9_]{0,5}"
# What every door can say as an include path (see ir.Include); control characters and line separators are left out.
PATHS = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
                              blacklist_characters=ir.INCLUDE_PATH_FORBIDS), min_size=1, max_size=12)
any_init = st.builds(ir.Init, st.none() | st.just(ir.Ref("zeros")), st.none() | st.just(ir.Ref("zeros")))

# What every door can say: no name `true` or `false`, no layer call named `dense` or `for`, no number that is not
# finite (the JSON door and the builder refuse them: see below). An `init` with no role is never built by any door.
door_models = models(
    names=st.from_regex(NAME, fullmatch=True).filter(ir.is_name),
    numbers=st.integers(-10**300, 10**300) | st.floats(allow_nan=False, allow_infinity=False),
    layer_kinds=st.from_regex(NAME, fullmatch=True).filter(lambda n: ir.is_name(n) and n not in ir.LAYER_WORDS),
    inits=any_init.filter(lambda i: i.weights is not None or i.biases is not None),
)
QUICK = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(door_models)
def test_random_model_survives_print_and_parse(model: ir.Model) -> None:
    assert parse(format_model(model)) == model


@QUICK
@given(door_models)
def test_random_model_survives_dump_and_load(model: ir.Model) -> None:
    assert load_json(dump_json(model)) == model


# What the text cannot say, which the other doors therefore refuse: a name `true` (the text reads a boolean), a
# layer call `dense(…)` (the text reads a dense layer), a number that is not finite.
@pytest.mark.parametrize(("data", "message"), [
    ({"lets": [{"name": "v", "value": "true"}]}, "/lets/0/value: 'true' is not a name"),
    ({"stacks": [{"name": "s", "layers": [{"layer": "dense"}]}]},
     "/stacks/0/layers/0/layer: 'dense' is not the kind of a layer written as a call"),
    ({"seed": math.inf}, "/seed: inf is not a usable number"),
], ids=["name-true", "layer-call-dense", "infinity"])
def test_the_json_door_refuses_what_the_text_cannot_say(data: dict, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        load_json({"version": 1, "model": "m", **data})


@pytest.mark.parametrize("build", [
    lambda: builder.ref("true"),
    lambda: builder.layer("dense"),
    lambda: builder.ModelBuilder("m").seed(math.inf),
], ids=["name-true", "layer-call-dense", "infinity"])
def test_the_builder_refuses_what_the_text_cannot_say(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()

"""The emitted module computes what the compiled model computes whatever a spec names its values: names that the
emitter also uses for its own temporaries (`h`, `h_2`), Python keywords and builtins, read again after a stack that is
the identity at inference (dropout). Specs are generated (hypothesis), not only fixed examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from emitted import import_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spec_lang
from spec_lang.lowering.python.emitter import emit_python

NAMES = ["h", "h_2", "h_3", "g", "class", "def", "print", "x_", "objective", "params", "dropout", "affine"]


@st.composite
def specs(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A chain of values, each a dense stack or a dropout stack (identity at inference) applied to an earlier one,
    with names drawn from `NAMES`; two heads read values of the chain."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=2, max_size=5, unique=True))
    lines, values = [], ["x"]
    for name in names:
        source = draw(st.sampled_from(values))
        stack = draw(st.sampled_from(["dense_stack", "drop_stack"]))
        lines.append(f"let {name} = {stack}({source})")
        values.append(name)
    heads = draw(st.lists(st.sampled_from(values[1:]), min_size=1, max_size=2, unique=True))
    lines += [f"head p{i} = out({value})" for i, value in enumerate(heads)]
    losses = " + ".join(f"crossentropy(p{i}, y)" for i in range(len(heads)))
    text = "\n".join(["model m()", "input x : float[batch, 4]", "input y : int[batch] < 3",
                      "stack dense_stack { dense 4 tanh }", "stack drop_stack { dropout(0.5) }",
                      "stack out { dense 3 softmax }", *lines, f"loss l = {losses}", "optimize sgd(lr = 0.1)", ""])
    return text, [f"p{i}" for i in range(len(heads))]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs())
def test_the_emitted_module_predicts_what_the_model_predicts(tmp_path: Path, case: tuple[str, list[str]]) -> None:
    text, heads = case
    spec = spec_lang.loads(text)
    target = tmp_path / f"generated_{abs(hash(text))}.py"
    target.write_text(emit_python(spec.program, "m.dann"), encoding="utf-8")
    generated = import_module(target)
    model = spec.compile("FAST_COMPILE")
    _, predict, *_ = generated.compile_model(model.parameters, mode="FAST_COMPILE")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    for head in heads:
        np.testing.assert_allclose(predict[head](x), model.predict(head, x), rtol=1e-5, err_msg=text)

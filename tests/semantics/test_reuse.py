"""Reuse: stacks made from templates (each with parameters of its own), and `include` of other files' templates,
through every door. The messages for misuse are golden cases in tests/diagnostics (template_*, include_*)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang import program as P
from spec_lang.cli.main import main
from spec_lang.reports.summary import listing
from spec_lang.syntax import ir
from spec_lang.syntax.builder import (
    Instance,
    ModelBuilder,
    TemplateHandle,
    bce,
    crossentropy,
    dense,
    for_each,
    reverse_layer,
    sgd,
)
from spec_lang.syntax.jsonio import dumps_json
from spec_lang.syntax.parser import parse
from spec_lang.syntax.printer import format_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

MODEL = """\
model m(hidden = [6, 5], hp_lambda = 0.5)
input x : float[batch, 3]
input y : int[batch] < 2
{templates}
{stacks}
loss xent = crossentropy(label(features(x)), y)
loss domain_loss = bce(domain(features(x)), 0)
optimize sgd(lr = 0.1)
"""


def _program(templates: str, stacks: str) -> P.Program:
    return spec_lang.loads(MODEL.format(templates=templates, stacks=stacks)).program


def _shapes(program: P.Program) -> dict[str, tuple[int, ...]]:
    return {p.name: p.shape for p in program.params()}


def _lambda(program: P.Program) -> P.Scalar:
    return program.stack("domain").layers[0].option("lambda")


# Templates -------------------------------------------------------------------------------------------


def test_each_stack_made_from_a_template_has_parameters_of_its_own() -> None:
    program = spec_lang.load(EXAMPLES / "blocks.dann").program
    shapes = _shapes(program)
    assert {name: shapes[name] for name in ("features.0.W", "features.1.W", "refine.0.W", "refine.1.W")} == {
        "features.0.W": (2, 16), "features.1.W": (16, 16), "refine.0.W": (16, 8), "refine.1.W": (8, 8)}
    assert [layer.activation for layer in program.stack("features").layers] == ["relu", "relu"]  # the default
    assert [layer.activation for layer in program.stack("refine").layers] == ["tanh", "tanh"]  # act = tanh
    assert program.stack("refine").lr_mult == 0.5  # stack options apply to a stack made from a template
    assert [shapes[f"label.{i}.W"] for i in range(3)] == [(8, 16), (16, 8), (8, 3)]  # for over a list argument


def test_a_stack_made_from_a_template_is_the_stack_written_out() -> None:
    templated = _program("template mlp(widths, out, act = softmax) {\n  for w in widths { dense w tanh }\n"
                         "  dense out act\n}\ntemplate adversary(lam, width = 4) { reverse(lambda = lam); "
                         "dense width tanh; dense 1 sigmoid }",
                         "stack features = mlp([7], 6, act = tanh)\nstack label = mlp(hidden, 2)\n"
                         "stack domain = adversary(hp_lambda)")
    written = _program("", "stack features { dense 7 tanh; dense 6 tanh }\n"
                           "stack label { for h in hidden { dense h tanh }; dense 2 softmax }\n"
                           "stack domain { reverse(lambda = hp_lambda); dense 4 tanh; dense 1 sigmoid }")
    assert listing(templated) == listing(written)
    assert _lambda(templated) == P.Hyper("hp_lambda")  # λ stays a run-time parameter


def test_arguments_by_position_or_keyword_and_defaults_that_use_earlier_parameters() -> None:
    program = _program("template pair(first, second = first - 4, act = tanh) { dense first act; dense second act }\n"
                       "template adversary() { reverse(lambda = hp_lambda); dense 1 sigmoid }",
                       "stack features = pair(8)\nstack label = pair(act = softmax, first = 4, second = 2)\n"
                       "stack domain = adversary()")
    shapes = _shapes(program)
    assert (shapes["features.1.W"], shapes["label.0.W"], shapes["label.1.W"]) == ((8, 4), (4, 4), (4, 2))
    assert program.stack("label").layers[-1].activation == "softmax"
    assert _lambda(program) == P.Hyper("hp_lambda")  # a template may use the model's parameters


def test_a_template_parameter_hides_a_model_parameter_with_a_warning() -> None:
    spec = spec_lang.loads(MODEL.format(
        templates="template tower(hidden) { for h in hidden { dense h tanh } }",
        stacks="stack features = tower([4])\nstack label { dense 2 softmax }\n"
               "stack domain { reverse(lambda = hp_lambda); dense 1 sigmoid }"))
    assert _shapes(spec.program)["features.0.W"] == (3, 4)  # the argument, not the model's hidden = [6, 5]
    assert [w.code for w in spec.warnings] == ["W902"]


def test_two_stacks_from_one_template_train_separately() -> None:
    model = spec_lang.loads(MODEL.format(
        templates="template block(width, act = tanh) { dense width act }",
        stacks="stack features = block(4)\nstack label = block(2, act = softmax)\n"
               "stack domain = block(1, act = sigmoid)")).compile("FAST_COMPILE")
    before = model.parameters
    assert set(before) >= {"features.0.W", "label.0.W", "domain.0.W"}
    rng = np.random.default_rng(0)
    model.train_step(x=rng.normal(size=(5, 3)), y=rng.integers(0, 2, 5))
    after = model.parameters
    assert all(not np.array_equal(before[name], after[name]) for name in ("features.0.W", "label.0.W", "domain.0.W"))


def test_a_stack_has_layers_or_a_template() -> None:
    with pytest.raises(ValueError, match="stack 's' has layers and a template"):
        ir.Stack("s", (ir.Dense(ir.Number(3), "tanh"),), template=ir.Call("block"))


# Includes --------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


LIBRARY = "model library()\ntemplate block(width) { dense width tanh }\n"
USER = MODEL.format(templates='include "{path}"', stacks="stack features = block(4)\nstack label { dense 2 softmax }\n"
                    "stack domain { reverse(lambda = hp_lambda); dense 1 sigmoid }")


def test_include_paths_are_relative_to_the_including_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "project" / "lib" / "blocks.dann", 'model blocks()\ninclude "more/base.dann"\n')
    _write(tmp_path / "project" / "lib" / "more" / "base.dann", LIBRARY)  # relative to lib/blocks.dann
    main_file = _write(tmp_path / "project" / "main.dann", USER.replace("{path}", "lib/blocks.dann"))
    monkeypatch.chdir(tmp_path)  # elsewhere than the model
    assert _shapes(spec_lang.load(main_file).program)["features.0.W"] == (3, 4)
    text = main_file.read_text(encoding="utf-8")
    assert _shapes(spec_lang.loads(text, "project/main.dann").program)["features.0.W"] == (3, 4)
    with pytest.raises(spec_lang.SpecError, match=r'E901\]: cannot include "lib/blocks.dann"'):
        spec_lang.loads(text)  # without a file name, includes are relative to the current directory


def test_a_file_included_twice_brings_its_templates_once(tmp_path: Path) -> None:
    _write(tmp_path / "base.dann", LIBRARY)
    _write(tmp_path / "a.dann", 'model a()\ninclude "base.dann"\n')
    main_file = _write(tmp_path / "main.dann", USER.replace("{path}", "a.dann") + 'include "base.dann"\n')
    assert "features.0.W" in _shapes(spec_lang.load(main_file).program)


def test_only_the_templates_of_an_included_file_are_used(tmp_path: Path) -> None:
    """Its header, parameters, inputs, stacks, losses and settings stay in that file."""
    _write(tmp_path / "full.dann", EXAMPLES.joinpath("blocks.dann").read_text(encoding="utf-8"))
    spec = spec_lang.load(_write(tmp_path / "main.dann", USER.replace("{path}", "full.dann")))
    assert [s.name for s in spec.program.stacks] == ["features", "label", "domain"]
    assert [i.name for i in spec.program.inputs] == ["x", "y"] and set(spec.program.settings) == {"hidden", "hp_lambda"}


def test_leaving_the_folder_needs_allow_outside(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "shared" / "blocks.dann", LIBRARY)
    main_file = _write(tmp_path / "models" / "main.dann", USER.replace("{path}", "../shared/blocks.dann"))
    with pytest.raises(spec_lang.SpecError, match=r'E903\]: "../shared/blocks.dann" is outside the folder'):
        spec_lang.load(main_file)
    assert "features.0.W" in _shapes(spec_lang.load(main_file, allow_outside=True).program)
    assert main(["check", str(main_file)]) == 1
    assert main(["check", str(main_file), "--allow-outside-includes"]) == 0
    assert "E903" in capsys.readouterr().err


def test_a_json_model_includes_relative_to_its_own_file(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "lib", tmp_path / "lib")
    json_file = _write(tmp_path / "main.json", dumps_json(spec_lang.load(EXAMPLES / "include_main.dann").model))
    assert json.loads(json_file.read_text())["includes"] == ["lib/blocks.dann"]
    assert listing(spec_lang.load(json_file).program) == listing(spec_lang.load(EXAMPLES / "include_main.dann").program)


@pytest.mark.parametrize("path", ["", 'a"b.dann', "a\\b.dann", "a#b.dann", "a\nb.dann"])
def test_an_include_path_is_one_the_text_can_write(path: str) -> None:
    with pytest.raises(ValueError, match="include path"):
        ir.Include(path)


# The Python door ---------------------------------------------------------------------------------------


def test_the_builder_spells_templates_and_includes_as_the_text_does() -> None:
    m = ModelBuilder("include_main", hp_lambda=0.5, lr=0.01)
    m.include("lib/blocks.dann")
    xs, xt = m.input("xs", "float", ["batch", 2]), m.input("xt", "float", ["batch", 2])
    ys = m.input("ys", "int", ["batch"], bound=2)
    mlp, adversary = TemplateHandle("mlp"), TemplateHandle("adversary")
    features = m.stack("features", mlp([8], 4, act="tanh"))
    label = m.stack("label", mlp([], 2))
    domain = m.stack("domain", adversary("hp_lambda", width=6))
    fs, ft = m.let("fs", features(xs)), m.let("ft", features(xt))
    probabilities = m.head("label_probabilities", label(fs))
    label_loss = m.loss("label_loss", crossentropy(probabilities, ys))
    domain_loss = m.loss("domain_loss", bce(domain(fs), 0) + bce(domain(ft), 1))
    m.optimize(sgd(lr="lr"), minimize=label_loss + domain_loss)
    path = EXAMPLES / "include_main.dann"
    assert m.build() == parse(path.read_text(encoding="utf-8"), str(path))


def test_the_builder_declares_templates() -> None:
    m = ModelBuilder("library")
    m.template("adversary", reverse_layer(lambda_="lam"), dense("width", "tanh"), dense(1, "sigmoid"), lam=None,
               width=8)
    m.template("mlp", for_each("w", "widths", dense("w", "tanh")), dense("out", "act"), widths=None, out=None,
               act="softmax")
    path = EXAMPLES / "lib" / "blocks.dann"
    assert m.build().templates == parse(path.read_text(encoding="utf-8"), str(path)).templates


def test_a_builder_stack_is_made_from_one_instance_or_from_layers() -> None:
    m = ModelBuilder("m")
    block = m.template("block", dense("width", "tanh"), width=None)
    assert isinstance(block(3), Instance)
    with pytest.raises(TypeError, match="one template instance or from layers"):
        m.stack("s", block(3), dense(2, "tanh"))
    m.stack("s", block(3), frozen=True)
    assert format_model(m.build()).endswith("stack s(frozen = true) = block(3)\n")

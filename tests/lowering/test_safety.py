"""Hostile names and strings: every door lets through only names the text can say, the generated Python module is
valid, inert and computes what the compiled model computes whatever the names and the file name, loading a spec
never runs it as Python, and `include` stays in the including file's folder unless allowed."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np
import pytest
from emitted import import_module, train_side_by_side

import spec_lang
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.syntax import builder
from spec_lang.syntax.jsonio import load_json

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_NAMES = ["x y", "a'b", 'a"b', "a\nb", "__import__('os').system('true')", "\u0430", "\ufb01", "", "1x", "true",
                 "x;", "é"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_builder_refuses_what_is_not_a_name(name: str) -> None:
    with pytest.raises(ValueError, match="is not a name"):
        builder.ModelBuilder("m").let(name, "x")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_the_json_door_refuses_what_is_not_a_name(name: str) -> None:
    with pytest.raises(spec_lang.SpecError, match=r"/lets/0/name: .* is not a name"):
        load_json({"version": 1, "model": "m", "lets": [{"name": name, "value": "x"}]})


@pytest.mark.parametrize("text", ["let \u0430 = x", "let a = x\u200b", "let a\u00a0= x", "let \ufb01 = x"])
def test_the_text_refuses_look_alikes_with_a_located_error(text: str) -> None:
    with pytest.raises(spec_lang.SpecError) as caught:
        spec_lang.loads(f"model m()\n{text}\n", "m.dann")
    assert caught.value.diagnostics[0].code == "E100" and caught.value.diagnostics[0].span.line == 2


# Every name is a Python builtin, a dunder or a name the generated module uses itself.
HOSTILE_SPEC = """\
model __import__(float = 0.5, len = 0.01)

input print : float[batch, 2]
input range : float[batch, 2]
input state_updates : int[batch] < 3

stack PRECISION { dense 3 tanh; dense 4 tanh }
stack np { dense 3 softmax }
stack eval { dense 2 sigmoid }

let __builtins__ = PRECISION(print)
let initial_parameters = PRECISION(range)

head exec = np(__builtins__)

loss max = crossentropy(np(__builtins__), state_updates)
loss dict = bce(eval(reverse(__builtins__, lambda = float)), 0)
          + bce(eval(reverse(initial_parameters, lambda = float)), 1)

optimize sgd(lr = len) minimize max + dict
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[spec_lang.Spec, str]:
    """The hostile spec, from a file whose name could end a docstring or a string, and its generated module."""
    path = tmp_path_factory.mktemp("hostile") / "a\"\"\"b'c\nd\\e.dann"
    path.write_text(HOSTILE_SPEC, encoding="utf-8")
    spec = spec_lang.load(path)
    return spec, emit_python(spec.program, str(path))


def _inert(node: ast.stmt) -> bool:
    """Whether a top-level statement only defines something: imports of numpy and pytensor, a literal constant, a
    table of functions by name, a function with literal defaults, a plain class of such functions, the docstring, or
    the `__main__` guard."""
    match node:
        case ast.Assign(value=ast.Dict(keys=keys, values=values)) if all(
                isinstance(k, ast.Constant) for k in keys) and all(isinstance(v, ast.Name) for v in values):
            return True
        case ast.ClassDef(bases=[], keywords=[], decorator_list=[], body=body):
            return all(_inert(item) for item in body)
        case ast.Import(names=names) | ast.ImportFrom(module=_, names=names):
            modules = [alias.name for alias in names] if isinstance(node, ast.Import) else [node.module]
            return all(module.split(".")[0] in ("numpy", "pytensor") for module in modules)
        case ast.Assign(value=value) | ast.Expr(value=value):
            try:
                ast.literal_eval(value)
            except ValueError:
                return False
            return True
        case ast.FunctionDef(args=args, decorator_list=[]):
            defaults = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
            return all(isinstance(d, ast.Constant) for d in defaults)
        case ast.If(test=test):
            return ast.unparse(test) == "__name__ == '__main__'"
    return False


def test_the_generated_module_is_valid_and_inert(hostile: tuple[spec_lang.Spec, str]) -> None:
    tree = ast.parse(hostile[1])
    assert [ast.unparse(node)[:60] for node in tree.body if not _inert(node)] == []
    assert "a\"\"\"b'c\nd\\e.dann" in ast.get_docstring(tree)  # the file name, as written, inside the docstring


def test_the_generated_module_computes_what_the_compiled_model_computes(hostile: tuple[spec_lang.Spec, str],
                                                                         tmp_path: Path) -> None:
    spec, text = hostile
    target = tmp_path / "generated.py"
    target.write_text(text, encoding="utf-8")
    generated = import_module(target)
    model = spec.compile("FAST_COMPILE")
    train, predict, params, *_ = generated.compile_model(mode="FAST_COMPILE")
    rng = np.random.default_rng(0)
    train_side_by_side(model, generated, train, 3, rng, rel=1e-6)
    batch = generated.random_batch(rng)
    np.testing.assert_allclose(predict["exec"](*[batch[n] for n in generated.HEAD_INPUTS["exec"]]),
                               model.predict("exec", **{n: batch[n] for n in model.head_inputs("exec")}), rtol=1e-5)


def test_loading_never_runs_python() -> None:
    """No module of specc calls eval, exec, compile or __import__."""
    called = {node.func.id for path in (ROOT / "spec_lang").rglob("*.py")
              for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert called.isdisjoint({"eval", "exec", "compile", "__import__"})


def test_a_spec_that_looks_like_python_is_only_text(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    code = f"__import__('pathlib').Path({str(canary)!r}).touch()"
    for text in (f"model m()\nlet v = {code}\n", f'model m()\ninclude "{code}"\n', f"{code}\n"):
        with pytest.raises(spec_lang.SpecError):
            spec_lang.loads(text, str(tmp_path / "m.dann"))
    with pytest.raises(spec_lang.SpecError):
        load_json(json.loads(json.dumps({"version": 1, "model": "m", "seed": code})))
    assert not canary.exists()


def _including(folder: Path, path: str) -> Path:
    main = folder / "main.dann"
    main.write_text(f'model m()\ninclude "{path}"\n', encoding="utf-8")
    return main


def test_an_absolute_include_path_is_outside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "lib.dann").write_text("model lib()\n", encoding="utf-8")
    (tmp_path / "spec").mkdir()
    with pytest.raises(spec_lang.SpecError, match=r"E903\]"):
        spec_lang.load(_including(tmp_path / "spec", str(tmp_path / "lib.dann")))


def test_a_symbolic_link_out_of_the_folder_is_outside_it(tmp_path: Path) -> None:
    (tmp_path / "secret.dann").write_text("model secret()\n", encoding="utf-8")
    (tmp_path / "spec").mkdir()
    os.symlink(tmp_path / "secret.dann", tmp_path / "spec" / "lib.dann")
    with pytest.raises(spec_lang.SpecError, match=r"E903\]"):
        spec_lang.load(_including(tmp_path / "spec", "lib.dann"))
    with pytest.raises(spec_lang.SpecError, match=r"E203\]"):  # allowed: read, and the model lacks its statements
        spec_lang.load(tmp_path / "spec" / "main.dann", allow_outside=True)


@pytest.mark.parametrize("path", ["lib\x00.dann", "a" * 5000 + ".dann", "loop.dann"], ids=["nul", "long", "loop"])
def test_an_include_path_the_system_refuses_is_a_located_error(tmp_path: Path, path: str) -> None:
    os.symlink("loop.dann", tmp_path / "loop.dann")  # a link to itself
    with pytest.raises(spec_lang.SpecError) as caught:
        spec_lang.load(_including(tmp_path, path))
    error = caught.value.diagnostics[0]
    assert (error.code, error.span.line) == ("E901", 2) and error.message.startswith('cannot include "')

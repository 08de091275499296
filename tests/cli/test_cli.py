"""The `specc` command line: exit codes, located errors without tracebacks, summaries, emitters and fmt."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from emitted import import_module, train_side_by_side

import spec_lang
from spec_lang.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in messages and golden files are relative to the repository


def test_check_accepts_every_example(capsys) -> None:
    for example in sorted(Path("examples").glob("*.dann")):
        code, out, err = run(capsys, "check", str(example))
        assert (code, out, err) == (0, f"{example}: ok\n", "")


def test_a_typo_is_a_located_error_with_a_hint_and_exit_1(tmp_path, capsys) -> None:
    text = Path("examples/seed_dann.dann").read_text().replace("let ft = features(xt)", "let ft = featurs(xt)")
    spec = tmp_path / "typo.dann"
    spec.write_text(text)
    code, out, err = run(capsys, "check", str(spec))
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "featurs" in l)
    assert code == 1 and out == ""
    assert f"{spec}:{line}:10: error[E201]: unknown stack or function 'featurs'" in err
    assert f"{line} | let ft = featurs(xt)\n" in err and "|          ^^^^^^^\n" in err
    assert "hint: did you mean 'features'?" in err


def test_the_console_script_prints_no_traceback(tmp_path) -> None:
    spec = tmp_path / "bad.dann"
    spec.write_text("model m()\nstack s { dense 3 }\n")
    specc = Path(sys.executable).parent / "specc"  # the console script installed beside this Python
    result = subprocess.run([str(specc), "check", str(spec)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(r"bad\.dann:2:\d+: error\[E101\]", result.stderr)


@pytest.mark.parametrize("command", [["check", "examples/seed_dann.dann"], ["fmt", "examples/seed_dann.dann"]])
def test_check_and_fmt_import_no_pytensor(command: list[str]) -> None:
    script = ("import contextlib, io, sys\n"
              "from spec_lang.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()):\n"
              f"    code = main({command!r})\n"
              "assert code == 0, code\n"
              "assert 'pytensor' not in sys.modules, 'pytensor was imported'\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr  # a fresh interpreter: nothing imported by other tests


@pytest.mark.parametrize("example", ["seed_dann", "methods/adda"])
def test_compile_prints_the_summary(example: str, capsys) -> None:
    code, out, err = run(capsys, "compile", f"examples/{example}.dann", "--mode", "fast_compile")
    assert code == 0 and err == ""
    body, timing = out.rstrip("\n").rsplit("\n", 1)
    assert re.fullmatch(r"compiled the update functions? in \d+\.\d\d s \(PyTensor mode FAST_COMPILE\)", timing)
    golden(f"{example.replace('/', '_')}.summary.txt", body + "\n")


def test_optimisations_switch_off_by_name(capsys, monkeypatch) -> None:
    chosen, original = [], spec_lang.Spec.compile

    def compile_fast(self, mode, optimizations):
        chosen.append(optimizations)
        return original(self, "FAST_COMPILE", optimizations)

    monkeypatch.setattr(spec_lang.Spec, "compile", compile_fast)
    code = run(capsys, "compile", "examples/seed_dann.dann", "--no-opt", "batch_inputs", "--no-opt", "fast_tanh")[0]
    assert code == 0
    assert not chosen[0].batch_inputs and not chosen[0].fast_tanh and chosen[0].merge_heads
    with pytest.raises(SystemExit) as exit_:
        run(capsys, "compile", "examples/seed_dann.dann", "--no-opt", "fast_tahn")
    assert exit_.value.code == 2 and "invalid choice: 'fast_tahn'" in capsys.readouterr().err


def test_set_overrides_parameters(capsys) -> None:
    code, out, _ = run(capsys, "compile", "examples/seed_l2_mlp.dann", "--set", "hidden=[32,32]", "--emit", "ir")
    assert code == 0
    assert "net.0.W : [10, 32]" in out and "net.2.W : [32, 32]" in out and "net.3.W" not in out
    code, _, err = run(capsys, "check", "examples/seed_l2_mlp.dann", "--set", "hiden=[3]")
    assert code == 1 and "no parameter 'hiden'" in err and "did you mean 'hidden'?" in err
    code, _, err = run(capsys, "check", "examples/seed_l2_mlp.dann", "--set", "hidden=[3")
    assert code == 1 and "cannot read --set hidden=[3" in err


def test_emit_ir_listing(capsys) -> None:
    code, out, _ = run(capsys, "compile", "examples/seed_dann.dann", "--emit", "ir")
    assert code == 0
    golden("seed_dann.ir.txt", out)


def test_emit_json_loads_back_to_the_same_model(tmp_path, capsys) -> None:
    target = tmp_path / "seed_dann.json"
    code, out, _ = run(capsys, "compile", "examples/seed_dann.dann", "--emit", "json", "-o", str(target))
    assert code == 0 and out == f"wrote {target}\n"
    assert spec_lang.load(target).model == spec_lang.load("examples/seed_dann.dann").model


def test_output_files_are_never_overwritten_without_force(tmp_path, capsys) -> None:
    target = tmp_path / "model.py"
    target.write_text("precious")
    code, _, err = run(capsys, "compile", "examples/seed_dann.dann", "--emit", "python", "-o", str(target))
    assert code == 1 and "already exists" in err and target.read_text() == "precious"
    code, _, _ = run(capsys, "compile", "examples/seed_dann.dann", "--emit", "python", "-o", str(target), "--force")
    assert code == 0 and target.read_text().startswith('"""Model')


@pytest.mark.parametrize("example", ["seed_dann.dann", "dann_reverse_layer.dann", "seed_l2_mlp.dann", "cdan.dann",
                                     "multi_target_dann.dann", "methods/mcd.dann", "methods/adda.dann"])
def test_emitted_python_computes_the_same_numbers(example: str, tmp_path, capsys) -> None:
    target = tmp_path / "generated.py"
    assert run(capsys, "compile", f"examples/{example}", "--emit", "python", "-o", str(target))[0] == 0
    generated = import_module(target)
    model = spec_lang.load(f"examples/{example}").compile("FAST_COMPILE")
    initial = generated.initial_parameters(generated.PARAMETERS, generated.SEED, generated.PRECISION, generated.DRAWS)
    for name, value in model.parameters.items():  # the module draws the same initial values by itself
        np.testing.assert_array_equal(initial[name], value)
    train, predict, params, *_ = generated.compile_model(mode="FAST_COMPILE")
    rng = np.random.default_rng(0)
    train_side_by_side(model, generated, train, 5, rng, rel=1e-6)
    for name, value in model.parameters.items():
        np.testing.assert_allclose(params[name].get_value(), value, rtol=1e-5, atol=1e-7)
    head = next(iter(predict))
    batch = generated.random_batch(rng)
    np.testing.assert_allclose(predict[head](*[batch[n] for n in generated.HEAD_INPUTS[head]]),
                               model.predict(head, **{n: batch[n] for n in model.head_inputs(head)}), rtol=1e-5)


def test_emitted_module_runs_as_a_script(tmp_path, capsys) -> None:
    target = tmp_path / "dann.py"
    run(capsys, "compile", "examples/seed_dann.dann", "--emit", "python", "-o", str(target))
    result = subprocess.run([sys.executable, str(target)], capture_output=True, text=True,
                            env={**os.environ, "PYTENSOR_FLAGS": "mode=FAST_COMPILE"})
    assert result.returncode == 0, result.stderr
    assert re.match(r"objective before one step: \d+\.\d+", result.stdout)


def test_fmt_check_and_write(tmp_path, capsys) -> None:
    assert run(capsys, "fmt", "--check", *map(str, sorted(Path("examples").glob("*.dann"))))[0] == 0
    messy = tmp_path / "messy.dann"
    messy.write_text("model m(a=1)  # header\ninput x:float[batch,2] input y:int[batch]<2\n"
                     "stack s{dense a tanh;dense 2 softmax}loss l=crossentropy(s(x),y) optimize sgd(lr=0.1)\n")
    before = messy.read_text()
    code, out, err = run(capsys, "fmt", "--check", str(messy))
    assert (code, out, err) == (1, "", f"would reformat {messy}\n") and messy.read_text() == before
    code, out, _ = run(capsys, "fmt", str(messy))
    assert code == 0 and messy.read_text() == before
    golden("messy.formatted.dann", out)
    assert run(capsys, "fmt", "--write", str(messy))[0] == 0 and messy.read_text() == out
    assert run(capsys, "fmt", "--check", str(messy))[0] == 0

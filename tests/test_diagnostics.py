"""Golden-file tests of the messages specc gives for bad input.

Each `tests/diagnostics/NAME.dann` (or `NAME.json`, for the JSON door) is one small case; `NAME.expected` holds
what loading it reports: the rendered error when it fails, or its rendered warnings when it loads. Paths are rendered
relative to the repository root. After changing a message, regenerate the expected files and review every diff by eye:

    SPECC_UPDATE_GOLDEN=1 pytest tests/test_diagnostics.py

`tests/diagnostics/cli/NAME.args` cases are command lines (one `specc` command a line, `{tmp}` standing for a fresh
folder): every line but the last sets the case up and must succeed; the last must exit 1, and `NAME.expected`
holds what it prints on standard error.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

import spec_lang
from spec_lang.cli.main import main
from spec_lang.syntax.parser import parse
from spec_lang.syntax.syntax_errors import NAMED_ERRORS as _NAMED_ERRORS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path("tests/diagnostics")  # relative to ROOT, as messages name the files
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"

CASES = sorted(path.name for suffix in ("dann", "json") for path in (ROOT / CORPUS).glob(f"*.{suffix}"))
COMMAND_CASES = sorted(path.name for path in (ROOT / CORPUS / "cli").glob("*.args"))


@pytest.fixture(autouse=True)
def _in_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def _outcome(name: str) -> tuple[str, tuple[spec_lang.Diagnostic, ...]]:
    """What loading a case gives, as a user sees it and as diagnostics: the error's, or the warnings of a model
    that loads. Any exception but `SpecError` propagates and fails the test."""
    try:
        spec = spec_lang.load(CORPUS / name)
    except spec_lang.SpecError as error:
        return error.render(), error.diagnostics
    return "\n".join(warning.render(spec.source) for warning in spec.warnings), spec.warnings


@pytest.mark.parametrize("name", CASES)
def test_the_report_matches_the_expected_file(name: str) -> None:
    expected = (CORPUS / name).with_suffix(".expected")
    report = _outcome(name)[0] + "\n"
    if UPDATE:
        expected.write_text(report, encoding="utf-8")
    assert expected.is_file(), f"no {expected}; write it with SPECC_UPDATE_GOLDEN=1 and review it"
    assert report == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_every_case_gives_located_diagnostics_and_no_traceback(name: str) -> None:
    diagnostics = _outcome(name)[1]
    assert diagnostics, f"{name}.dann gives no diagnostic"
    assert all(d.span is not None and d.hint for d in diagnostics), "every message needs a place and a hint"


def test_every_expected_file_has_its_case() -> None:
    stems = [Path(name).stem for name in CASES]
    assert len(set(stems)) == len(stems), "a case is both NAME.dann and NAME.json"
    assert {path.stem for path in CORPUS.glob("*.expected")} <= set(stems)


# Parameter overrides (`specc --set`, or keyword arguments to `spec_lang.load`).

MLP = """\
model mlp(hidden = [8, 6], classes = 3)
input x : float[batch, 4]
input y : int[batch] < classes
stack net {
  for h in hidden { dense h tanh }
  dense classes softmax
}
loss xent = crossentropy(net(x), y)
optimize sgd(lr = 0.1)
"""


def _override_error(**overrides: object) -> str:
    with pytest.raises(spec_lang.SpecError) as caught:
        spec_lang.loads(MLP, "mlp.dann", **overrides)
    return caught.value.render()


def test_overriding_an_unknown_parameter_names_the_closest() -> None:
    assert _override_error(hiden=[4]) == (
        "mlp.dann: error[E602]: the model has no parameter 'hiden'\n"
        "  hint: did you mean 'hidden'?")


def test_overriding_with_nothing_close_lists_the_parameters() -> None:
    assert _override_error(lr=0.5) == (
        "mlp.dann: error[E602]: the model has no parameter 'lr'\n"
        "  hint: parameters: hidden, classes")


def test_an_override_of_the_wrong_type_is_reported_where_the_parameter_is_used() -> None:
    assert _override_error(hidden=3) == (
        "mlp.dann:5:12: error[E601]: `for` needs a list, got 3\n"
        "  5 |   for h in hidden { dense h tanh }\n"
        "    |            ^^^^^^\n"
        "  hint: use a list parameter such as hidden = [8, 6]")


def test_a_bad_value_in_an_overridden_list_points_at_its_use() -> None:
    assert _override_error(hidden=[8, 0]) == (
        "mlp.dann:5:27: error[E601]: a layer width must be positive, got 0\n"
        "  5 |   for h in hidden { dense h tanh }\n"
        "    |                           ^\n"
        "  hint: sizes are at least 1")


def test_a_fractional_override_is_reported_at_each_use() -> None:
    assert _override_error(classes=2.5) == (
        "mlp.dann:3:24: error[E601]: the label bound must be a whole number, got 2.5\n"
        "  3 | input y : int[batch] < classes\n"
        "    |                        ^^^^^^^\n"
        "  hint: use e.g. 8\n"
        "mlp.dann:6:9: error[E601]: a layer width must be a whole number, got 2.5\n"
        "  6 |   dense classes softmax\n"
        "    |         ^^^^^^^\n"
        "  hint: use e.g. 8")


def test_every_named_syntax_error_recognises_its_own_examples() -> None:
    for message, _, examples in _NAMED_ERRORS.values():
        for example in examples:
            with pytest.raises(spec_lang.SpecError) as caught:
                parse(example)
            assert caught.value.diagnostics[0].message.startswith(message), example


@pytest.mark.parametrize("name", COMMAND_CASES)
def test_a_command_line_case_exits_1_with_the_expected_message(name: str, tmp_path: Path, capsys) -> None:
    *setup, command = (CORPUS / "cli" / name).read_text(encoding="utf-8").splitlines()
    for line in setup:
        assert main(shlex.split(line.replace("{tmp}", str(tmp_path)))) == 0, line
    capsys.readouterr()
    assert main(shlex.split(command.replace("{tmp}", str(tmp_path)))) == 1
    report = capsys.readouterr().err.replace(str(tmp_path), "{tmp}")
    expected = (CORPUS / "cli" / name).with_suffix(".expected")
    if UPDATE:
        expected.write_text(report, encoding="utf-8")
    assert report == expected.read_text(encoding="utf-8")
    assert "Traceback" not in report and "hint: " in report

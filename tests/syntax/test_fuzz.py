"""Fuzzing the front end with hypothesis (inputs and their classification: tests/fuzzing.py): whatever the input,
`specc check` accepts it or prints located diagnostics and exits 1; never a traceback, never a hang. The long
campaign is `bench/fuzz.py`; its figures are in docs/robustness.md."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzzing import ROOT, Input, check, make_input, prepare, run, sentence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spec_lang
from spec_lang.diagnostics import SpecError
from spec_lang.syntax.grammar import lark_parser as _parser

# Each input takes milliseconds; `check` reports one over its 5 s budget as a hang, so hypothesis's deadline is
# only a backstop.
FUZZ = settings(max_examples=300, deadline=10_000, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare(tmp_path_factory.mktemp("fuzz"))


@FUZZ
@given(st.randoms(use_true_random=False))
def test_check_accepts_or_reports_located_diagnostics(folder: Path, rng: random.Random) -> None:
    made = make_input(rng)
    outcome = run(made, folder)
    assert not outcome.failed, f"{outcome.kind}: {outcome.detail}\ninput ({made.how}): {made.data[:2000]!r}"


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_sentence_of_the_grammar_parses(rng: random.Random) -> None:
    _parser().parse(sentence(rng))  # the contextual lexer reads what the grammar derives


IMAGES = b"""model m()
input x : float[batch, 1, 28, 28]
input y : int[batch] < 10
stack net { LAYER; flatten(); dense 10 softmax }
loss xent = crossentropy(net(x), y)
optimize sgd(lr = 0.1)
"""


@pytest.mark.parametrize(("name", "data", "kind"), [
    ("empty", b"", "diagnostics"),
    ("only a comment", b"# nothing else\n", "diagnostics"),
    ("not UTF-8", b"model m()\n\xff\xfe", "diagnostics"),
    ("a NUL byte", b"model m()\x00", "diagnostics"),
    ("a byte-order mark", b"\xef\xbb\xbfmodel m()", "diagnostics"),
    ("nested brackets", b"model m(a = " + b"(" * 20_000 + b"1" + b")" * 20_000 + b")", "diagnostics"),
    ("nested lists", b"model m(a = " + b"[" * 20_000 + b"]" * 20_000 + b")", "diagnostics"),
    ("nested signs", b"model m(a = " + b"-" * 20_000 + b"x)", "diagnostics"),
    ("a long sum", b"model m(a = " + b" + ".join([b"1"] * 20_000) + b")", "diagnostics"),
    ("nested loops", b"model m()\nstack s {" + b"for h in [1] {" * 5_000 + b"}" * 5_000 + b"}", "diagnostics"),
    ("a huge number", b"model m(a = " + b"9" * 20_000 + b")", "diagnostics"),
    ("a huge stride", IMAGES.replace(b"LAYER", b"conv2d(8, 5, stride = 123456789012345678901234567890)"),
     "diagnostics"),
    ("a huge image", IMAGES.replace(b"28, 28", b"1000000007, 1000000009").replace(b"LAYER", b"maxpool(3)"),
     "diagnostics"),
])
def test_hostile_dann_files(folder: Path, name: str, data: bytes, kind: str) -> None:
    assert run(Input(".dann", data, name), folder).kind == kind


@pytest.mark.parametrize(("name", "data"), [
    ("empty", b""),
    ("nested arrays", b"[" * 20_000 + b"]" * 20_000),
    ("nested objects", b'{"a":' * 20_000 + b"1" + b"}" * 20_000),
    ("NaN", b'{"version": 1, "model": "m", "seed": NaN}'),
    ("a huge integer", b'{"version": 1, "model": "m", "seed": ' + b"9" * 20_000 + b"}"),
    ("a duplicate key", b'{"version": 1, "model": "m", "model": "n"}'),
])
def test_hostile_json_files(folder: Path, name: str, data: bytes) -> None:
    assert run(Input(".json", data, name), folder).kind == "diagnostics"


def _divide_by_zero(*args: object) -> None:
    raise ZeroDivisionError


def _sleep(*args: object) -> None:
    time.sleep(10)


@pytest.mark.parametrize(("broken", "kind", "detail"), [
    (_divide_by_zero, "crash", "ZeroDivisionError in api.py:"),
    (_sleep, "hang", "over 0.5 s"),
])
def test_crashes_and_hangs_are_caught(folder: Path, monkeypatch: pytest.MonkeyPatch, broken: Callable[..., None],
                                      kind: str, detail: str) -> None:
    monkeypatch.setattr("spec_lang.api.resolve", broken)
    path = folder / "seed_dann.dann"
    path.write_bytes((ROOT / "examples" / "seed_dann.dann").read_bytes())
    outcome = check(path, budget=0.5)
    assert (outcome.kind, outcome.detail[:len(detail)]) == (kind, detail)


@pytest.mark.parametrize("mark", [b"", b"\xef\xbb\xbf"], ids=["plain", "byte-order mark"])
def test_a_file_that_is_not_utf8_is_reported_at_its_first_bad_byte(tmp_path: Path, mark: bytes) -> None:
    path = tmp_path / "latin1.dann"
    path.write_bytes(mark + "model m()\néé \xff\n".encode().replace(b"\xc3\xbf", b"\xff"))
    with pytest.raises(SpecError) as caught:
        spec_lang.load(path)
    error = caught.value.diagnostics[0]
    assert (error.code, error.span.line, error.span.column) == ("E001", 2, 4)
    assert error.message.endswith("byte 0xff is not UTF-8 text")

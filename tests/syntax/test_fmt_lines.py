"""`specc fmt` breaks long statements (Black-like, `--line-length`, 100 by default) and keeps trailing comments,
aligned ones aligned: known layouts, the golden before/after pairs in tests/golden/fmt/, and properties over the
examples, the diagnostics corpus and sentences of the grammar (the same model, idempotent, no comment lost)."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
from fuzzing import dann_seeds, sentence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_roundtrip import door_models

from spec_lang.cli.main import main
from spec_lang.diagnostics import SpecError
from spec_lang.syntax import ir
from spec_lang.syntax.comments import align
from spec_lang.syntax.parser import parse
from spec_lang.syntax.printer import format_model, format_source

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "fmt"
CASES = sorted(p for p in GOLDEN.glob("fmt_*.dann") if not p.name.endswith(".formatted.dann"))
LINE_LENGTHS = {"fmt_narrow": 40}  # the cases formatted with another line length than the default
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"
HEADER = "model m()\n"


def fmt(body: str, line_length: int = 100) -> str:
    """The formatted text of a model with one parameter and `body`, without its header."""
    return format_source(HEADER + body, line_length=line_length).removeprefix(HEADER + "\n")


def test_a_statement_that_fits_stays_on_one_line() -> None:
    loss = "loss l = " + " + ".join(f"term{k}" for k in range(9)) + " + last_term_abcdefghi"  # 100 characters
    assert len(loss) == 100 and fmt(loss + "\n") == loss + "\n"
    assert fmt(loss + "1\n") == "loss l = term0\n" + "".join(f"       + term{k}\n" for k in range(1, 9)) + (
        "       + last_term_abcdefghi1\n"
    )


def test_half_a_long_sum_breaks_inside_its_parentheses() -> None:
    source, target = (
        "bce(domain(reverse(source_features, lambda = hp_lambda)), 0)",
        "bce(domain(target_features_of_the_batch), 1)",
    )
    text = f"loss domain_loss = 0.5 * ({source} + {target})"
    assert fmt(text) == f"loss domain_loss = 0.5 * (\n    {source}\n    + {target}\n)\n"
    # What fits on one line inside the parentheses stays on one line there.
    short = text.replace("source_features", "fs").replace("_of_the_batch", "")
    assert (
        fmt(short).splitlines()[1]
        == "    bce(domain(reverse(fs, lambda = hp_lambda)), 0) + bce(domain(target_features), 1)"
    )


def test_a_three_term_loss_puts_one_term_per_line_under_the_equals_sign() -> None:
    terms = [f"crossentropy(domain(reverse(f{k}, lambda = l{k})), {k})" for k in range(3)]
    assert fmt("loss domain_loss = " + " + ".join(terms)) == (
        f"loss domain_loss = {terms[0]}\n                 + {terms[1]}\n                 + {terms[2]}\n"
    )


def test_a_long_objective_continues_on_an_indented_line() -> None:
    call = "sgd(lr = annealed(lr0, alpha = 10, beta = 0.75), momentum = momentum)"
    assert fmt(f"optimize {call} minimize label_loss + domain_loss") == (
        f"optimize {call}\n    minimize label_loss + domain_loss\n"
    )
    assert fmt(f"optimize {call} minimize label_loss + domain_loss", line_length=50) == (
        "optimize sgd(\n"
        "    lr = annealed(lr0, alpha = 10, beta = 0.75),\n"
        "    momentum = momentum,\n"
        ")\n"
        "    minimize label_loss + domain_loss\n"
    )


def test_brackets_break_their_items_one_per_line_with_a_trailing_comma() -> None:
    header = "model m(hidden = [64, 64, 32], first_lambda = 0.5, second_lambda = 0.25, learning_rate = 0.01, x = 1)\n"
    assert format_source(header, line_length=60) == (
        "model m(\n"
        "    hidden = [64, 64, 32],\n"
        "    first_lambda = 0.5,\n"
        "    second_lambda = 0.25,\n"
        "    learning_rate = 0.01,\n"
        "    x = 1,\n"
        ")\n"
    )
    # Items that fit together on one line stay together inside the brackets.
    assert format_source(header).splitlines()[1] == (
        "    hidden = [64, 64, 32], first_lambda = 0.5, second_lambda = 0.25, learning_rate = 0.01, x = 1"
    )
    # A keyword's value that breaks at an operator continues four columns deeper.
    assert fmt("let v = f(reverse(fs, lambda = first_lambda * second_lambda), 0)", line_length=30) == (
        "let v = f(\n"
        "    reverse(\n"
        "        fs,\n"
        "        lambda = first_lambda\n"
        "            * second_lambda,\n"
        "    ),\n"
        "    0,\n"
        ")\n"
    )


def test_a_shape_breaks_without_a_trailing_comma_which_the_grammar_refuses() -> None:
    text = "input x : float[batch, channels, height, width] < 3\n"
    assert fmt(text, line_length=40) == "input x : float[\n    batch, channels, height, width\n] < 3\n"
    assert fmt(text, line_length=20) == "input x : float[\n    batch,\n    channels,\n    height,\n    width\n] < 3\n"


def test_a_list_of_numbers_fills_its_lines() -> None:
    numbers = ", ".join(str(k) for k in range(1000))
    text = format_source(f"model m(xs = [{numbers}])\n")
    lines = text.splitlines()
    assert lines[:3] == [
        "model m(",
        "    xs = [",
        "        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,",
    ]
    assert lines[-3:] == ["        995, 996, 997, 998, 999,", "    ],", ")"]
    for line, following in zip(lines[2:-3], lines[3:-2], strict=True):  # each line as full as it can be
        assert len(line) <= 100 and len(f"{line} {following.split()[0]}") > 100
    assert len(lines) == 59
    assert parse(text) == parse(f"model m(xs = [{numbers}])")


def test_a_block_that_does_not_fit_puts_its_layers_on_lines_of_their_own() -> None:
    stack = "stack s(lr_mult = 0.5) { dense 64 relu (weights = normal(std = 0.01)); dense 2 softmax }\n"
    assert fmt(stack) == stack
    assert fmt(stack, line_length=60) == (
        "stack s(lr_mult = 0.5) {\n  dense 64 relu (weights = normal(std = 0.01))\n  dense 2 softmax\n}\n"
    )
    assert fmt(stack, line_length=40).splitlines()[1:4] == [
        "  dense 64 relu (",
        "      weights = normal(std = 0.01)",
        "  )",
    ]


def test_aligned_trailing_comments_stay_aligned() -> None:
    text = (
        "input xs : float[batch, 2]          # source\n"
        "input target_xs:float[batch,2]      # target\n"
        "input ys : int[batch] < 2  # labels\n"
    )
    assert fmt(text) == (
        "input xs : float[batch, 2]         # source\n"
        "input target_xs : float[batch, 2]  # target\n"
        "input ys : int[batch] < 2  # labels\n"
    )
    # Comments that were not aligned stand two spaces after their code.
    assert fmt("let a = x   # one\nlet bb = y    # two\n") == "let a = x  # one\nlet bb = y  # two\n"


def test_align_puts_a_run_of_one_group_two_spaces_after_its_longest_code() -> None:
    lines = ["a  # 1", "bbb  # 2", "# own line", "c  # 3", "dd  # 4"]
    assert align(lines, [1, 1, 3, 3]) == ["a    # 1", "bbb  # 2", "# own line", "c   # 3", "dd  # 4"]
    assert align(lines, [1, 2, 3, 4]) == lines


def test_a_comment_after_a_term_stays_after_it_and_keeps_the_sum_broken() -> None:
    text = "loss l = a  # first\n       + b  # second\nloss k = f(a,  # in a call\n  b)\n"
    assert fmt(text) == "loss l = a  # first\n       + b  # second\n# in a call\nloss k = f(a, b)\n"


def test_comments_on_the_parameters_of_a_broken_header_stay_with_them() -> None:
    text = "model m(\n    # the reversal\n    hp_lambda = 0.5,  # λ\n    lr = 0.01,\n)\n"
    assert format_source(text) == text


def test_the_line_length_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "m.dann"
    spec.write_text(HEADER + "loss l = aaaaaaaaaa + bbbbbbbbbb\n")
    assert main(["fmt", str(spec)]) == 0
    assert capsys.readouterr().out.endswith("loss l = aaaaaaaaaa + bbbbbbbbbb\n")
    assert main(["fmt", "--line-length", "20", str(spec)]) == 0
    assert capsys.readouterr().out.endswith("loss l = aaaaaaaaaa\n       + bbbbbbbbbb\n")
    assert main(["fmt", "--check", "--line-length", "20", str(spec)]) == 1
    for bad in ("0", "-3", "x", "²"):
        with pytest.raises(SystemExit) as exited:
            main(["fmt", "--line-length", bad, str(spec)])
        assert exited.value.code == 2
        assert "argument --line-length: expected a whole number of at least 1" in capsys.readouterr().err


# Golden before/after pairs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden_case(case: Path) -> None:
    text = case.read_text(encoding="utf-8")
    length = LINE_LENGTHS.get(case.stem, 100)
    formatted = format_source(text, str(case), length)
    expected = case.with_suffix(".formatted.dann")
    if UPDATE:
        expected.write_text(formatted, encoding="utf-8")
    assert formatted == expected.read_text(encoding="utf-8")
    assert format_source(formatted, line_length=length) == formatted
    assert parse(formatted) == parse(text)
    assert _comments(formatted) == _comments(text)


# Properties ------------------------------------------------------------------------------------------------------


def _comments(text: str) -> list[str]:
    return sorted(comment.rstrip() for comment in re.findall(r"#[^\n]*", text))


def _same_after_fmt(text: str, length: int) -> str:
    """Format `text` and check the formatted text: the same model, the same comments, and canonical."""
    formatted = format_source(text, line_length=length)
    assert parse(formatted) == parse(text)
    assert _comments(formatted) == _comments(text)
    assert format_source(formatted, line_length=length) == formatted
    return formatted


def _parses(text: str) -> bool:
    try:
        parse(text)
    except SpecError:
        return False
    return True


SEEDS = {name: text for name, text in dann_seeds() if _parses(text)}


@pytest.mark.parametrize("name", SEEDS)
def test_examples_and_corpus_format_idempotently_at_any_length(name: str) -> None:
    for length in (1, 40, 100):
        _same_after_fmt(SEEDS[name], length)


def _commented(rng: random.Random, text: str) -> str:
    """The text with comments after some of its lines, aligned or not."""
    lines = text.splitlines()
    column = max(map(len, lines), default=0) + 3
    aligned = rng.random() < 0.5
    return "".join(
        (line.ljust(column) if aligned else line + " " * rng.randint(1, 6)) + f"# c{k}\n"
        if line.strip() and rng.random() < 0.6
        else line + "\n"
        for k, line in enumerate(lines)
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.sampled_from([1, 20, 40, 60, 100]))
def test_sentences_of_the_grammar_format_idempotently_with_their_comments(rng: random.Random, length: int) -> None:
    text = sentence(rng)
    if not _parses(text):
        return
    formatted = _same_after_fmt(text, length)
    _same_after_fmt(_commented(rng, formatted), length)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(door_models, st.sampled_from([1, 10, 30, 60, 100]))
def test_random_models_survive_being_broken_over_lines(model: ir.Model, length: int) -> None:
    text = format_model(model, line_length=length)
    assert parse(text) == model
    assert format_source(text, line_length=length) == text

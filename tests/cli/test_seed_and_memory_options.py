"""`--seed`, `--max-parameter-memory` and the lengths of a run (`--epochs`, `--steps`, `--batch-size`,
`--checkpoint-every`) with values that are not a seed, a size or a whole number of at least 1: a usage error (exit 2)
with a message naming the range, never a traceback; and `fit(seed=…)` in Python likewise (E802)."""

from __future__ import annotations

from pathlib import Path

import pytest

import spec_lang
from spec_lang.cli.main import main
from spec_lang.data import two_moons
from spec_lang.diagnostics.limits import MAX_MEMORY, parse_memory

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "moons_dann.dann")


def _usage_error(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(arguments)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    return err


# Lengths -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--epochs", "0"), ("--steps", "-3"), ("--batch-size", "0"), ("--checkpoint-every", "1.5"), ("--epochs", "x")],
)
def test_a_length_below_one_is_a_usage_error_before_compiling(option: str, value: str, tmp_path: Path, capsys) -> None:
    """Parsed before anything is read or compiled (it used to be refused after compiling): the data need not exist."""
    arguments = ["train", SPEC, "--source", str(tmp_path / "d.npz"), f"{option}={value}"]
    err = _usage_error(arguments, capsys)
    assert f"argument {option}: expected a whole number of at least 1, got {value!r}" in err


# Seeds -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed", ["-3", "-1", str(2**63), "9" * 5000, "1.5", "1e3", "x", "", "nan"], ids=lambda seed: seed[:20]
)
def test_a_seed_outside_0_to_2_63_is_a_usage_error(seed: str, tmp_path: Path, capsys) -> None:
    """Parsed before anything is read: the data file need not exist."""
    arguments = ["train", SPEC, "--source", str(tmp_path / "d.npz"), "--steps", "1", f"--seed={seed}"]
    err = _usage_error(arguments, capsys)
    assert "argument --seed: the seed must be a whole number from 0 to 2**63 - 1, got" in err
    assert len(err) < 2000  # a seed of 5000 digits is not printed whole


@pytest.mark.parametrize("seed", ["0", str(2**63 - 1)])
def test_seeds_from_0_to_2_63_train(seed: str, tmp_path: Path) -> None:
    assert main(["data", "moons", "-o", str(tmp_path / "d.npz"), "--samples", "20"]) == 0
    arguments = ["train", SPEC, "--source", str(tmp_path / "d.npz"), "--steps", "1", "--seed", seed]
    assert main([*arguments, "--quiet", "--mode", "fast_compile", "--checkpoint", str(tmp_path / "c.npz")]) == 0


@pytest.fixture(scope="module")
def model():
    return spec_lang.load(SPEC).compile("FAST_COMPILE")


@pytest.mark.parametrize(
    "seed",
    [-1, 2**63, -(10**5000), 1.5, "3", True, None],
    ids=["-1", "2**63", "-10**5000", "1.5", "string", "True", "None"],
)
def test_fit_refuses_a_seed_outside_0_to_2_63(seed: object, model) -> None:
    before = model.parameters
    with pytest.raises(spec_lang.SpecError) as error:
        model.fit(two_moons(20), steps=1, seed=seed)
    diagnostic = error.value.diagnostics[0]
    assert diagnostic.code == "E802" and diagnostic.message.startswith("the seed must be a whole number from 0 to 2**6")
    assert len(diagnostic.message) < 200
    assert all((model.parameters[n] == v).all() for n, v in before.items())


# Sizes -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("0", "a size is at least 1 byte, got '0'"),
        ("0.5", "a size is at least 1 byte"),
        ("0.0000001KiB", "a size is at least 1 byte"),
        ("-5GiB", "not a size: '-5GiB'"),
        ("1e308GiB", "not a size: '1e308GiB'"),
        ("1e400", "not a size: '1e400'"),
        ("nanGiB", "not a size: 'nanGiB'"),
        ("infGiB", "not a size: 'infGiB'"),
        ("inf", "not a size: 'inf'"),
        ("100000000000000000000000000000000000000000GiB", "a size is at most 2**63 bytes"),
        ("9" * 5000, "a size is at most 2**63 bytes"),
        ("8388609TiB", "a size is at most 2**63 bytes"),
        ("", "not a size: ''"),
        ("8 GiB GiB", "not a size"),
        ("8PiB", "not a size: '8PiB'"),
    ],
)
def test_a_size_that_is_not_from_1_byte_to_2_63_bytes_is_a_usage_error(size: str, message: str, capsys) -> None:
    err = _usage_error(["check", SPEC, f"--max-parameter-memory={size}"], capsys)
    assert f"argument --max-parameter-memory: {message}" in err and len(err) < 2000


@pytest.mark.parametrize(
    ("size", "exit_status"),
    [("1.5", 1), ("1B", 1), ("1", 1), ("0.3GiB", 0), ("8GiB", 0), ("8388608TiB", 0), (str(2**63), 0)],
)
def test_sizes_from_1_byte_to_2_63_bytes_are_limits(size: str, exit_status: int, capsys) -> None:
    """A limit of a byte or two refuses every model (E604), as it says; none is a usage error."""
    assert main(["check", SPEC, "--max-parameter-memory", size]) == exit_status
    err = capsys.readouterr().err
    assert ("error[E604]" in err) == (exit_status == 1) and "Traceback" not in err


def test_sizes_are_exact_and_rounded_down_to_whole_bytes() -> None:
    assert parse_memory("1.5") == parse_memory("1B") == 1
    assert parse_memory("0.1KiB") == 102 and parse_memory("1.5GB") == 1_500_000_000
    assert parse_memory("8388608TiB") == MAX_MEMORY == 2**63
    assert parse_memory("0.0000000000009094947017729282379150390625TiB") == 1  # exactly one byte: 40 decimals
    assert parse_memory("1." + "9" * 10_000) == 1  # no float, no integer too long for Python to read

"""Values a spec's inputs cannot hold: float64 data beyond a float32 model's range, and labels that are not whole
numbers of int32. Each is an E801 at load time, never a numpy warning followed by a diverged first step."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.data import check_arrays
from spec_lang.program import Program

ROOT = Path(__file__).resolve().parents[2]
LABELS = np.array([0, 1, 2])


@pytest.fixture(scope="module")
def float32_program() -> Program:
    program = spec_lang.load(ROOT / "examples" / "dann_reverse_layer.dann").program
    assert program.precision == "float32"
    return program


def _message(program: Program, arrays: dict[str, np.ndarray], names: list[str]) -> str:
    """The E801 `check_arrays` gives, with every numpy warning turned into an error: none may be printed."""
    with warnings.catch_warnings(), pytest.raises(spec_lang.SpecError) as caught:
        warnings.simplefilter("error")
        check_arrays(program, arrays, names, "train.npz")
    assert [d.code for d in caught.value.diagnostics] == ["E801"]
    return caught.value.render()


@pytest.mark.parametrize("scale", [1e300, 1e39])
def test_float64_values_beyond_float32_are_refused_at_load_time(float32_program, scale: float) -> None:
    xs = np.array([[0.5, -1.2], [1.0, 0.0], [0.0, 1.0]]) * scale
    report = _message(float32_program, {"xs": xs, "ys": LABELS}, ["xs", "ys"])
    largest = f"{1.2 * scale:.1e}"
    assert f"input 'xs' in train.npz holds values beyond the range of float32 (largest magnitude {largest})" in report
    assert "hint: scale the data, or declare `precision float64` in the spec" in report


def test_values_within_float32_are_cast_without_a_warning(float32_program) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = check_arrays(float32_program, {"xs": np.full((3, 2), 3e38), "ys": LABELS}, ["xs", "ys"], "d.npz")
    assert checked["xs"].dtype == np.float32 and np.isfinite(checked["xs"]).all()


@pytest.mark.parametrize(
    "xs, message",
    [
        (np.array([[1 + 2j, 0], [0, 0], [0, 0]]), "holds NaN, infinite or non-numeric values"),
        (np.ones((3, 2), dtype=bool), "holds NaN, infinite or non-numeric values"),
    ],
)
def test_features_that_are_not_real_numbers_are_refused(float32_program, xs: np.ndarray, message: str) -> None:
    assert message in _message(float32_program, {"xs": xs, "ys": LABELS}, ["xs", "ys"])


@pytest.mark.parametrize("labels", [np.array([0.0, np.inf, 1.0]), np.array([0.0, -np.inf, 1.0])])
def test_infinite_labels_are_not_whole_numbers(float32_program, labels: np.ndarray) -> None:
    report = _message(float32_program, {"xs": np.zeros((3, 2)), "ys": labels}, ["xs", "ys"])
    assert "input 'ys' holds integer labels, but train.npz has non-integer values" in report


def test_labels_beyond_int32_are_refused_when_no_class_count_bounds_them() -> None:
    program = spec_lang.loads(
        "model m()\ninput xs : float[batch, 2]\ninput ys : int[batch] < 2\ninput k : int[batch]\n"
        "stack net { dense 2 softmax }\nloss l = crossentropy(net(xs), ys)\noptimize sgd(lr = 0.1) minimize l\n"
    ).program
    report = _message(program, {"k": np.array([0.0, 2.0**40])}, ["k"])
    assert "input 'k' in train.npz holds whole numbers beyond int32 (from 0 to 1099511627776)" in report
    assert check_arrays(program, {"k": np.array([-3, 2**31 - 1])}, ["k"], "d.npz")["k"].tolist() == [-3, 2**31 - 1]

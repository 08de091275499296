"""Data files mapped onto a spec's inputs, their checks, and the two-moons toy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_moons as sklearn_make_moons

import spec_lang
from spec_lang.data import check_arrays, load_arrays, make_moons, two_moons

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def program():
    return spec_lang.load(ROOT / "examples" / "seed_dann.dann").program


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_make_moons_is_scikit_learns_draw_for_draw(seed: int) -> None:
    ours, theirs = make_moons(150, 0.05, seed), sklearn_make_moons(150, noise=0.05, random_state=seed)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_two_moons_is_centred_scaled_and_rotated() -> None:
    data = two_moons()
    xs, _ = sklearn_make_moons(150, noise=0.05, random_state=1)
    xt, _ = sklearn_make_moons(150, noise=0.05, random_state=2)
    np.testing.assert_allclose(data["xs"], 2 * (xs - xs.mean(axis=0)))
    np.testing.assert_allclose(data["xs"].mean(axis=0), 0, atol=1e-12)
    theta = np.deg2rad(35)
    rotated = 2 * (xt - xs.mean(axis=0)) @ np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    np.testing.assert_allclose(data["xt"], rotated)
    assert set(np.unique(data["ys"])) == set(np.unique(data["yt"])) == {0, 1}


def test_npz_and_csv_load_the_same_arrays(tmp_path) -> None:
    xs, ys = np.arange(6.0).reshape(3, 2), np.array([0, 1, 1])
    np.savez(tmp_path / "d.npz", xs=xs, ys=ys)
    (tmp_path / "d.csv").write_text("xs.0,xs.1,ys\n0,1,0\n2,3,1\n4,5,1\n")
    for name in ("d.npz", "d.csv"):
        arrays = load_arrays(tmp_path / name)
        np.testing.assert_array_equal(arrays["xs"], xs)
        np.testing.assert_array_equal(arrays["ys"], ys)


def test_checked_arrays_take_the_specs_dtypes(program) -> None:
    checked = check_arrays(program, {"xs": np.zeros((4, 2), "float32"), "ys": np.array([0, 7, 3, 1])},
                           ["xs", "ys"], "train.npz")
    assert checked["xs"].dtype == np.float64 and checked["ys"].dtype == np.int32


@pytest.mark.parametrize("arrays, message", [
    ({"ys": np.zeros(3)}, "train.npz has no array 'xs' for input xs : float[batch, 2]"),
    ({"xs": np.zeros((3, 3)), "ys": np.zeros(3)},
     "input 'xs' expects shape [n, 2], but 'xs' in train.npz has shape [3, 3]"),
    ({"xs": np.zeros(3), "ys": np.zeros(3)}, "input 'xs' expects shape [n, 2], but 'xs' in train.npz has shape [3]"),
    ({"xs": np.full((3, 2), np.nan), "ys": np.zeros(3)}, "input 'xs' in train.npz holds NaN"),
    ({"xs": np.zeros((3, 2)), "ys": np.array([0.5, 1, 2])},
     "input 'ys' holds integer labels, but train.npz has non-integer"),
    ({"xs": np.zeros((3, 2)), "ys": np.array([0, 8, 2])},
     "labels of 'ys' in train.npz range over [0, 8], outside [0, 8)"),
])
def test_bad_data_is_named_before_training(program, arrays, message) -> None:
    with pytest.raises(spec_lang.SpecError) as caught:
        check_arrays(program, arrays, ["xs", "ys"], "train.npz")
    assert message in caught.value.render()


def test_unreadable_files_are_errors(tmp_path) -> None:
    (tmp_path / "bad.csv").write_text("xs.0,ys\n1,a\n")
    for path, message in ((tmp_path / "none.npz", "no such file"), (tmp_path / "bad.csv", "is not a number")):
        with pytest.raises(spec_lang.SpecError, match=message):
            load_arrays(path)

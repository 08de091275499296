"""The digits shift of `specc data digits`: scikit-learn's digits as grey 3x28x28 source images and colour-blended
target images."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from spec_lang.cli.main import main
from spec_lang.data.digits import _weights, colour_fields, digits_shift, upscale


def test_interpolation_weights_are_convex_and_keep_constants() -> None:
    weights = _weights(8, 28)
    assert weights.shape == (28, 8) and (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_allclose(upscale(np.full((2, 8, 8), 0.7)), 0.7)


def test_upscaling_a_ramp_gives_the_ramp_at_the_new_pixel_centres() -> None:
    ramp = np.tile(np.arange(4.0), (4, 1))[None]  # columns 0, 1, 2, 3 at centres 0.5, 1.5, …
    wide = upscale(ramp, 8)[0, 0]
    np.testing.assert_allclose(wide, [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])


def test_colour_fields_are_in_range_and_vary_between_images() -> None:
    fields = colour_fields(5, np.random.default_rng(0), size=6)
    assert fields.shape == (5, 3, 6, 6) and fields.min() >= 0 and fields.max() <= 1
    assert not np.allclose(fields[0], fields[1])


def test_the_shift_splits_every_digit_into_a_grey_source_and_a_coloured_target() -> None:
    data = digits_shift(0)
    assert data["xs"].shape == (899, 3, 28, 28) and data["xt"].shape == (898, 3, 28, 28)
    assert data["xs"].dtype == data["xt"].dtype == np.float32
    assert set(np.unique(data["ys"])) == set(np.unique(data["yt"])) == set(range(10))
    assert min(np.bincount(data["ys"])) > 60 and min(np.bincount(data["yt"])) > 60  # not even/odd digits
    np.testing.assert_array_equal(data["xs"][:, 0], data["xs"][:, 2])  # grey: the channels agree
    assert np.abs(data["xt"][:, 0] - data["xt"][:, 2]).mean() > 0.1  # coloured
    assert 0 <= data["xt"].min() and data["xt"].max() <= 1
    again, other = digits_shift(0), digits_shift(1)
    assert all(np.array_equal(data[k], again[k]) for k in data)
    assert not np.array_equal(data["ys"], other["ys"])


def test_specc_data_digits_writes_the_arrays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "digits", "-o", str(tmp_path / "d.npz")]) == 0
    assert "xs [899, 3, 28, 28], ys [899], xt [898, 3, 28, 28], yt [898]" in capsys.readouterr().out
    with np.load(tmp_path / "d.npz") as written:
        assert sorted(written.files) == ["xs", "xt", "ys", "yt"]


def test_without_scikit_learn_it_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if not installed
    assert main(["data", "digits", "-o", str(tmp_path / "d.npz")]) == 1
    err = capsys.readouterr().err
    assert "error[E005]" in err and "spec-lang[digits]" in err and "Traceback" not in err
    assert not (tmp_path / "d.npz").exists()

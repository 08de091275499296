"""`--map INPUT=ARRAY` on `specc train`, `eval` and `predict`: scikit-learn style files (`X`, `y`), `.npy` files, an
array of another file (`FILE:NAME`, how a second source comes from its own file), and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spec_lang.cli.main import main
from spec_lang.data import read_npy, two_moons

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "examples" / "seed_dann.dann")
FAST = ["--mode", "fast_compile"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The moons by their input names (moons.npz), the same as scikit-learn style files (source.npz and
    target.npz, each X and y; xs.npy and ys.npy), and a checkpoint trained on the named file."""
    folder = tmp_path_factory.mktemp("map")
    moons = two_moons()
    np.savez(folder / "moons.npz", **moons)
    np.savez(folder / "source.npz", X=moons["xs"], y=moons["ys"])
    np.savez(folder / "target.npz", X=moons["xt"], y=moons["yt"])
    np.save(folder / "xs.npy", moons["xs"])
    np.save(folder / "ys.npy", moons["ys"])
    train = ["train", SPEC, "--source", str(folder / "moons.npz"), "--steps", "5", "--quiet", *FAST]
    assert main([*train, "--checkpoint", str(folder / "run.npz")]) == 0
    return folder


def _eval(work: Path, capsys, *data: str) -> dict:
    command = ["eval", SPEC, "--checkpoint", str(work / "run.npz"), "--json", *FAST, *data]
    assert main(command) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_reads_x_and_y_files_through_map(work, capsys) -> None:
    named = _eval(work, capsys, "--data", str(work / "moons.npz"))
    mapped = _eval(
        work,
        capsys,
        *("--data", str(work / "source.npz"), "--target", str(work / "target.npz")),
        *("--map", "xs=X", "--map", "ys=y", "--map", "xt=X", "--target-labels", "y"),
    )
    assert mapped == named and "target_accuracy" in mapped


def test_npy_files_and_arrays_of_other_files(work, capsys) -> None:
    named = _eval(work, capsys, "--data", str(work / "moons.npz"))
    mapped = _eval(
        work,
        capsys,
        *("--data", str(work / "target.npz"), "--target-labels", "y"),
        *("--map", f"xs={work / 'xs.npy'}", "--map", f"ys={work / 'ys.npy'}", "--map", "xt=X"),
    )
    assert mapped == named
    other = _eval(
        work,
        capsys,
        "--data",
        str(work / "source.npz"),
        "--map",
        "xs=X",
        "--map",
        "ys=y",
        "--map",
        f"xt={work / 'target.npz'}:X",
        "--map",
        f"yt={work / 'target.npz'}:y",
    )
    assert other == named


def test_train_reads_through_map(work) -> None:
    command = [
        "train",
        SPEC,
        "--source",
        str(work / "source.npz"),
        "--target",
        str(work / "target.npz"),
        "--map",
        "xs=X",
        "--map",
        "ys=y",
        "--map",
        "xt=X",
        "--target-labels",
        "y",
        "--steps",
        "5",
        "--quiet",
        *FAST,
        "--checkpoint",
        str(work / "mapped.npz"),
    ]
    assert main(command) == 0
    mapped, named = np.load(work / "mapped.npz"), np.load(work / "run.npz")
    assert mapped.files == named.files and all(np.array_equal(mapped[n], named[n]) for n in named.files)


def test_predict_maps_and_names_the_arrays_it_found(work, tmp_path, capsys) -> None:
    base = ["predict", SPEC, "--checkpoint", str(work / "run.npz"), "--head", "label_probabilities", *FAST]
    assert main([*base, "--data", str(work / "moons.npz"), "--map", "xs=xt", "-o", str(tmp_path / "a.npz")]) == 0
    assert main([*base, "--data", str(work / "target.npz"), "--map", "xs=X", "-o", str(tmp_path / "b.npz")]) == 0
    assert np.array_equal(
        np.load(tmp_path / "a.npz")["label_probabilities"], np.load(tmp_path / "b.npz")["label_probabilities"]
    )
    capsys.readouterr()
    assert main([*base, "--data", str(work / "target.npz"), "-o", str(tmp_path / "c.npz")]) == 1
    error = capsys.readouterr().err
    assert "has no array 'xs'" in error and "arrays in the file: X, y; read one with --map xs=ARRAY" in error


def test_a_malformed_map_and_a_missing_array_are_errors(work, tmp_path, capsys) -> None:
    base = ["eval", SPEC, "--checkpoint", str(work / "run.npz"), "--data", str(work / "moons.npz"), *FAST]
    assert main([*base, "--map", "xs"]) == 1
    assert "E802" in (err := capsys.readouterr().err) and "cannot read --map xs" in err
    assert main([*base, "--map", f"xt={work / 'target.npz'}:Z"]) == 1
    assert "E801" in (err := capsys.readouterr().err) and "has no array 'Z'" in err and "X, y" in err


def test_read_npy_refuses_pickles_and_lying_headers(tmp_path) -> None:
    import spec_lang

    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "good.npy", np.arange(6).reshape(2, 3))
    (tmp_path / "short.npy").write_bytes((tmp_path / "good.npy").read_bytes()[:-8])
    assert read_npy(tmp_path / "good.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    for name, message in (("objects", "Python objects"), ("short", "but it holds 40"), ("missing", "no such file")):
        with pytest.raises(spec_lang.SpecError) as caught:
            read_npy(tmp_path / f"{name}.npy")
        assert caught.value.diagnostics[0].code == "E801" and message in str(caught.value)


TWO_SOURCES = """\
model two_sources(lr = 0.1)
input xs1 : float[batch, 2]
input ys1 : int[batch] < 2
input xs2 : float[batch, 2]
input ys2 : int[batch] < 2
input xt : float[batch, 2]
stack features { dense 4 tanh }
stack label { dense 2 softmax }
stack domain { dense 1 sigmoid }
let f1 = features(xs1)
let f2 = features(xs2)
let ft = features(xt)
head label_probabilities = label(f1)
loss label_loss = crossentropy(label_probabilities, ys1) + crossentropy(label(f2), ys2)
loss domain_loss = bce(domain(reverse(f1, lambda = 0.5)), 0) + bce(domain(reverse(f2, lambda = 0.5)), 0)
                 + bce(domain(reverse(ft, lambda = 0.5)), 1)
optimize sgd(lr = lr) minimize label_loss + domain_loss
"""


def test_a_second_source_from_its_own_file_with_its_own_rows(work, tmp_path, capsys) -> None:
    spec = tmp_path / "two_sources.dann"
    spec.write_text(TWO_SOURCES)
    moons = two_moons()
    np.savez(tmp_path / "second.npz", X=moons["xt"][:50], y=moons["yt"][:50])  # 50 rows, the first source 300
    data = [
        "--source",
        str(work / "source.npz"),
        "--target",
        str(work / "target.npz"),
        "--map",
        "xs1=X",
        "--map",
        "ys1=y",
        "--map",
        f"xs2={tmp_path / 'second.npz'}:X",
        "--map",
        f"ys2={tmp_path / 'second.npz'}:y",
        "--map",
        "xt=X",
        "--target-labels",
        "y",
    ]
    train = ["train", str(spec), *data, "--steps", "3", "--quiet", *FAST, "--checkpoint", str(tmp_path / "c.npz")]
    assert main(train) == 0
    data[0] = "--data"
    assert main(["eval", str(spec), "--checkpoint", str(tmp_path / "c.npz"), "--json", *FAST, *data]) == 0
    values = json.loads(capsys.readouterr().out)
    first, second = values["source_xs1_accuracy"], values["source_xs2_accuracy"]
    assert values["source_accuracy"] == pytest.approx(
        (len(moons["xs"]) * first + 50 * second) / (len(moons["xs"]) + 50)
    )
    assert {"target_accuracy", "domain_accuracy", "proxy_a_distance"} <= set(values)

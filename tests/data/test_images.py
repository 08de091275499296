"""Image folders as data (`spec_lang.data.images`): one subfolder per class, PNG and JPEG read with Pillow, converted
to the input's channels, resized to its height and width and scaled to [0, 1]; the faults are E801 (E005 without
Pillow). The images are made here, a few pixels each."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import spec_lang
from spec_lang.data import image_folder_arrays, read_image_folder

Image = pytest.importorskip("PIL.Image")

TINY = """\
model tiny(lr = 0.1)
input xs : float[batch, 1, 4, 4]
input xt : float[batch, 1, 4, 4]
input ys : int[batch] < 3
stack features { flatten(); dense 4 tanh }
stack label { dense 3 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
head label_probabilities = label(fs)
loss label_loss = crossentropy(label_probabilities, ys)
loss domain_loss = bce(domain(reverse(fs, lambda = 0.5)), 0) + bce(domain(reverse(ft, lambda = 0.5)), 1)
optimize sgd(lr = lr) minimize label_loss + domain_loss
"""


def _folder(root: Path, classes: dict[str, list[tuple[str, tuple[int, int, int], tuple[int, int]]]]) -> Path:
    """Class folders of one-colour images: name → [(file name, RGB colour, (width, height))]."""
    for name, images in classes.items():
        (root / name).mkdir(parents=True)
        for file, colour, size in images:
            Image.new("RGB", size, colour).save(root / name / file)
    return root


@pytest.fixture
def three(tmp_path: Path) -> Path:
    """Three classes, PNG and JPEG, of different sizes; the class names sort as c < dog < zebra."""
    return _folder(
        tmp_path / "images",
        {
            "zebra": [("z1.png", (255, 255, 255), (10, 7))],
            "c": [("c1.png", (255, 0, 0), (4, 4)), ("c2.jpg", (0, 0, 0), (6, 3))],
            "dog": [("d1.jpeg", (0, 0, 255), (5, 9))],
        },
    )


def test_labels_follow_the_sorted_class_names_and_images_are_resized_floats(three: Path) -> None:
    images, labels, classes = read_image_folder(three, (3, 5, 6))
    assert classes == ["c", "dog", "zebra"]
    assert labels.tolist() == [0, 0, 1, 2] and labels.dtype == np.int32
    assert images.shape == (4, 3, 5, 6) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.allclose(images[0], np.array([1.0, 0.0, 0.0])[:, None, None])  # red PNG, resized from 4 x 4
    assert np.allclose(images[3], 1.0)  # white
    assert images[2, 2].mean() > 0.9 and images[2, 0].mean() < 0.1  # blue JPEG: only nearly exact


def test_grayscale_inputs_get_one_channel(three: Path) -> None:
    images, _, _ = read_image_folder(three, (1, 4, 4))
    assert images.shape == (4, 1, 4, 4)
    # Pillow's L = (299 R + 587 G + 114 B) / 1000: red 76/255, white 1
    assert images[0, 0, 0, 0] == pytest.approx(76 / 255) and images[3].min() == pytest.approx(1.0)


LAYOUTS = """\
model layouts(lr = 0.1)
input xs : float[batch, 1, 4, 4]
input xg : float[batch, 5, 5]
input xl : float[batch, 4, 4, 3]
input ys : int[batch] < 3
stack a { flatten(); dense 3 softmax }
stack b { flatten(); dense 3 softmax }
stack c { flatten(); dense 3 softmax }
loss l = crossentropy(a(xs), ys) + crossentropy(b(xg), ys) + crossentropy(c(xl), ys)
optimize sgd(lr = lr) minimize l
"""


def test_each_image_input_reads_the_folder_in_its_own_layout(three: Path) -> None:
    arrays = image_folder_arrays(three, spec_lang.loads(LAYOUTS, "layouts.dann").program, "yt")
    assert arrays["xs"].shape == (4, 1, 4, 4) and arrays["xg"].shape == (4, 5, 5)  # channels first; grayscale
    assert arrays["xl"].shape == (4, 4, 4, 3) and np.allclose(arrays["xl"][0, 1, 2], [1.0, 0.0, 0.0])  # last
    assert arrays["ys"].tolist() == arrays["yt"].tolist() == [0, 0, 1, 2]


def _error(folder: Path, code: str = "E801") -> str:
    with pytest.raises(spec_lang.SpecError) as caught:
        read_image_folder(folder, (3, 4, 4))
    assert [d.code for d in caught.value.diagnostics] == [code]
    return caught.value.render()


def test_a_file_that_is_not_an_image_is_named(three: Path) -> None:
    (three / "dog" / "notes.txt").write_text("not an image")
    assert "notes.txt is not a PNG or JPEG image" in _error(three)


def test_a_damaged_image_is_named(three: Path) -> None:
    (three / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert "cannot read the image" in _error(three) and "broken.png" in _error(three)


def test_an_empty_class_folder_and_a_folder_without_classes_are_errors(tmp_path: Path, three: Path) -> None:
    (three / "empty").mkdir()
    assert "the class folder" in _error(three) and "holds no images" in _error(three)
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (2, 2)).save(tmp_path / "flat" / "a.png")
    assert "has no class folders" in _error(tmp_path / "flat")


def test_without_pillow_the_error_names_the_extra(three: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)
    report = _error(three, "E005")
    assert "needs the package Pillow" in report and "spec-lang[images]" in report


def test_a_model_trains_and_is_evaluated_on_image_folders(tmp_path: Path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    source = _folder(
        tmp_path / "source", {f"k{k}": [(f"{i}.png", c, (6, 6)) for i in range(3 - k)] for k, c in enumerate(colours)}
    )
    target = _folder(tmp_path / "target", {f"k{k}": [(f"{k}.jpg", c, (8, 5))] for k, c in enumerate(colours)})
    model = spec_lang.loads(TINY, "tiny.dann").compile("FAST_COMPILE")
    history = model.fit(str(source), str(target), steps=3, batch_size=4)
    final = history.final
    assert final is not None and final["step"] == 3
    assert {"source_accuracy", "target_accuracy", "proxy_a_distance"} <= set(final)  # the folder's labels are yt
    values = model.metrics(str(source), str(target))
    assert values["target_accuracy"] in (0.0, 1 / 3, 2 / 3, 1.0)


def test_the_cli_trains_and_predicts_on_image_folders(tmp_path: Path) -> None:
    from spec_lang.cli.main import main

    source = _folder(
        tmp_path / "source", {"a": [("1.png", (255, 0, 0), (5, 5))], "b": [("1.png", (0, 0, 255), (3, 7))]}
    )
    spec = tmp_path / "tiny.dann"
    spec.write_text(TINY)
    run = ["--mode", "fast_compile", "--checkpoint", str(tmp_path / "c.npz")]
    assert main(["train", str(spec), "--source", str(source), "--steps", "2", "--quiet", *run]) == 0
    head = ["--head", "label_probabilities", "-o", str(tmp_path / "p.npz")]
    assert main(["predict", str(spec), "--data", str(source), *head, *run]) == 0
    assert np.load(tmp_path / "p.npz")["label_probabilities"].shape == (2, 3)

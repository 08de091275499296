"""Image folders as data: one subfolder per class, its PNG and JPEG files the class's examples.

The class names, sorted, are the labels 0, 1, …; each image is read with Pillow (the extra `images`:
`pip install "spec-lang[images]"`), converted to the channels of the input that reads it (1: grayscale, 3: RGB) and
resized to its height and width, then scaled to [0, 1]. An image input is `float[batch, C, H, W]` (channels first,
as `conv2d` reads them), `float[batch, H, W, C]` (channels last, when only the last axis is 1 or 3) or
`float[batch, H, W]` (grayscale). Files other than images, a class folder with no images, a folder with no class
folders: each is an E801 naming the path.

>>> import tempfile, pathlib
>>> from PIL import Image
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> for name, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
...     (folder / name).mkdir()
...     Image.new("RGB", (8, 6), colour).save(folder / name / "a.png")
>>> images, labels, classes = read_image_folder(folder, (3, 4, 4))
>>> images.shape, images.dtype, labels.tolist(), classes
((2, 3, 4, 4), dtype('float32'), [0, 1], ['cat', 'dog'])
>>> images[0, :, 0, 0].tolist(), images[1, :, 0, 0].tolist()
([1.0, 0.0, 0.0], [0.0, 0.0, 1.0])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spec_lang.diagnostics import file_error
from spec_lang.program import Program

SUFFIXES = (".png", ".jpg", ".jpeg")


def image_layout(shape: tuple[int | None, ...]) -> tuple[int, int, int, bool] | None:
    """Channels, height, width and whether channels come first, of an input shape (batch first) that an image folder
    can fill; None for any other shape."""
    dims = shape[1:]
    if None in dims:
        return None
    if len(dims) == 2:
        return 1, int(dims[0] or 0), int(dims[1] or 0), True
    if len(dims) == 3 and dims[0] in (1, 3):
        return int(dims[0] or 0), int(dims[1] or 0), int(dims[2] or 0), True
    if len(dims) == 3 and dims[2] in (1, 3):
        return int(dims[2] or 0), int(dims[0] or 0), int(dims[1] or 0), False
    return None


def read_image_folder(
    folder: str | os.PathLike, size: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The images of `folder` as float32 `[n, C, H, W]` in [0, 1] (`size` is C, H, W), their labels (int32, the
    index of the class folder among the sorted names) and the class names."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise file_error(
            None,
            "E005",
            "reading an image folder needs the package Pillow, which is not installed",
            'install it: pip install "spec-lang[images]" (or pip install pillow)',
        ) from None
    root = Path(folder)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise file_error(
            str(root), "E801", f"the image folder {root} has no class folders", "put each class's images in a folder"
        )
    channels, height, width = size
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if not p.name.startswith("."))
        if not files:
            raise file_error(str(root / name), "E801", f"the class folder {root / name} holds no images", "")
        for path in files:
            if path.suffix.lower() not in SUFFIXES or not path.is_file():
                raise file_error(
                    str(path), "E801", f"{path} is not a PNG or JPEG image", "keep only .png/.jpg/.jpeg files there"
                )
            try:
                with Image.open(path) as image:
                    converted = image.convert("L" if channels == 1 else "RGB").resize((width, height))
            except (UnidentifiedImageError, OSError, ValueError) as error:
                raise file_error(str(path), "E801", f"cannot read the image {path}: {error}", "") from None
            pixels = np.asarray(converted, dtype=np.float32) / 255.0
            images.append(pixels.reshape(height, width, channels).transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int32), classes


def image_folder_arrays(folder: str | os.PathLike, program: Program, labels_name: str) -> dict[str, np.ndarray]:
    """An image folder as named arrays for `program`: every float input of an image shape reads the images (at its
    own size and layout), every int input and `labels_name` (the target labels) read the labels."""
    arrays: dict[str, np.ndarray] = {}
    decoded: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    labels = None
    for spec in program.inputs:
        layout = image_layout(spec.type.shape) if spec.type.dtype == "float" else None
        if layout is None:
            continue
        channels, height, width, first = layout
        size = (channels, height, width)
        if size not in decoded:
            images, labels, _ = read_image_folder(folder, size)
            decoded[size] = images, labels
        images, labels = decoded[size]
        shaped = images if first else images.transpose(0, 2, 3, 1)
        arrays[spec.name] = shaped.reshape((len(images), *(int(d or 0) for d in spec.type.shape[1:])))
    if labels is None:
        raise file_error(
            str(folder),
            "E801",
            f"{folder} is an image folder, but the model has no image input",
            "an image input is float[batch, C, H, W] with C 1 or 3, float[batch, H, W, C] or float[batch, H, W]",
        )
    for spec in program.inputs:
        if spec.type.dtype == "int":
            arrays[spec.name] = labels
    arrays.setdefault(labels_name, labels)
    return arrays

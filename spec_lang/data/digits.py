"""A small digits domain shift with no download: scikit-learn's bundled handwritten digits (1,797 images of 8×8
pixels, UCI's "optdigits"), made into 3×28×28 images like MNIST, as the source, and the other half of them blended
with random colours like MNIST-M (Ganin et al. 2016, section 5.2.4) as the target.

The images are split at random (by `seed`) into two halves:

- Source (`xs`, `ys`): the first half, grey, upscaled bilinearly to 28×28 and scaled to [0, 1], the same value in
  the three channels.
- Target (`xt`, `yt`): the second half, upscaled the same way, then each blended with its own
  colour field as MNIST-M blends a digit with a photograph: `|field − digit|` per channel, where the field is a
  smooth random gradient between two random colours. `yt` is for evaluation only.

A network trained on the grey source sees inverted, coloured digits on the target: the shift DANN is meant to
close. The split and the colours are fixed by `seed` (default 0).

>>> data = digits_shift()
>>> data["xs"].shape, data["xt"].shape
((899, 3, 28, 28), (898, 3, 28, 28))
"""

from __future__ import annotations

import numpy as np

SIZE = 28  # MNIST's side


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as (images [n, 8, 8] in [0, 16], labels [n]); `ImportError` naming the extra
    when scikit-learn is missing."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError(
            "the digits data set comes with scikit-learn: pip install 'spec-lang[digits]' (or scikit-learn>=1.3)"
        ) from None
    bunch = sklearn_digits()
    return np.asarray(bunch.images, dtype="float64"), np.asarray(bunch.target, dtype="int32")


def upscale(images: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Bilinear resampling of [n, h, w] images to [n, size, size], pixel centres aligned (as `align_corners=False`).

    >>> upscale(np.array([[[0.0, 1.0], [1.0, 0.0]]]), 4)[0, 0].round(3).tolist()
    [0.0, 0.25, 0.75, 1.0]
    """
    _, height, width = images.shape
    rows = _weights(height, size)
    columns = _weights(width, size)
    return np.einsum("ih,nhw,jw->nij", rows, images, columns)


def _weights(source: int, target: int) -> np.ndarray:
    """The [target, source] matrix of linear interpolation weights between pixel centres, clamped at the edges."""
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, source - 1)
    fraction = position - low
    weights = np.zeros((target, source))
    weights[np.arange(target), low] += 1 - fraction
    weights[np.arange(target), high] += fraction
    return weights


def colour_fields(count: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """[count, 3, size, size] smooth backgrounds: a linear gradient in a random direction between two random
    colours, each in [0, 1]."""
    start, end = rng.uniform(size=(2, count, 3, 1, 1))
    angle = rng.uniform(0, 2 * np.pi, size=(count, 1, 1, 1))
    grid = np.linspace(0, 1, size)
    along = np.cos(angle) * grid[None, None, :, None] + np.sin(angle) * grid[None, None, None, :]
    along = (along - along.min(axis=(2, 3), keepdims=True)) / np.ptp(along, axis=(2, 3), keepdims=True)
    return start + (end - start) * along


def digits_shift(seed: int = 0) -> dict[str, np.ndarray]:
    """The digits shift described above: keys xs, ys (source), xt (target), yt (target labels, for evaluation
    only), images float32 [n, 3, 28, 28] in [0, 1]."""
    images, labels = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))  # the data set lists the digits 0, 1, …, 9 in turn: split at random
    source, target = np.array_split(order, 2)
    grey = upscale(images / 16.0)
    fields = colour_fields(len(target), rng)
    return {
        "xs": np.repeat(grey[source, None], 3, axis=1).astype("float32"),
        "ys": labels[source],
        "xt": np.abs(fields - grey[target, None]).astype("float32"),
        "yt": labels[target],
    }

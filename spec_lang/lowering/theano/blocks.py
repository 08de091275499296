"""Theano 1.0.5 forms of the building blocks whose PyTensor source (`lowering/pytensor/ops.py`) does not run on
Theano: same names, same arguments, same numbers (dropout's draws aside). `specc compile --emit theano` copies their
source into the module it writes, which imports Theano; specc itself never runs them (nor imports Theano).

Every other building block runs on Theano as written once `pt` reads `tt` (`target.py` lists them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the emitted module imports these; specc does not need Theano installed
    import numpy as np
    import theano
    import theano.tensor as tt


def sigmoid(x):
    return tt.nnet.sigmoid(x)


def softmax(x):
    return tt.nnet.softmax(x)


def of_labels(rows, labels):
    """Each row's entry at its label: `labels` is int[batch], or one class for every row."""
    labels = tt.as_tensor_variable(labels)
    if labels.ndim == 0:
        return rows[:, labels]
    return rows[tt.arange(rows.shape[0]), labels]


def crossentropy_from_logits(logits, labels):
    """`crossentropy(softmax(logits), labels)` as a log-softmax; `labels` is int[batch] or one class for all rows."""
    return -of_labels(tt.nnet.logsoftmax(logits), labels).mean()


def binary_crossentropy_from_logits(logits, target):
    """`binary_crossentropy(sigmoid(logits), target)` as softplus(z) - t·z."""
    return (tt.nnet.softplus(logits) - target * logits).mean()


def entropy(probabilities):
    """Mean over rows of -Σ p log p, with 0 log 0 = 0."""
    from theano.tensor.xlogx import xlogx

    return -xlogx(probabilities).sum(axis=-1).mean()


def entropy_from_logits(logits):
    """`entropy(softmax(logits))` from the log-softmax."""
    log_probabilities = tt.nnet.logsoftmax(logits)
    return -(tt.exp(log_probabilities) * log_probabilities).sum(axis=-1).mean()


def random_generator(seed, index):
    """A shared random state for one application of a random layer, seeded from the spec's seed and the
    application's index, so that every run draws the same numbers (not PyTensor's numbers: another generator)."""
    return theano.shared(np.random.RandomState([seed, index]), name=f"generator_{index}")


def dropout(x, rate, generator):
    """Inverted dropout: each element is zeroed with probability `rate` and the others are divided by 1 - rate,
    so the expected output is x. Returns the output and the generator's next state, which the update function
    must store so that the next step draws new numbers."""
    rate = tt.cast(rate, x.dtype)
    next_generator, draw = tt.raw_random.uniform(generator, size=x.shape, ndim=x.ndim, dtype=x.dtype)
    return tt.switch(draw < rate, 0, x / (1 - rate)), next_generator


def interpolate(first, second, generator):
    """Random points between two batches (WGAN-GP): per row, α · first + (1 - α) · second with α ~ U(0, 1), over the
    first min(rows of first, rows of second) rows (Theano's draws, not PyTensor's). Returns them and the generator's
    next state, which the update function must store so that the next step draws new numbers."""
    rows = tt.minimum(first.shape[0], second.shape[0])
    next_generator, alpha = tt.raw_random.uniform(generator, size=(rows,), ndim=1, dtype=first.dtype)
    alpha = alpha.dimshuffle(0, *["x"] * (first.ndim - 1))
    return alpha * first[:rows] + (1 - alpha) * second[:rows], next_generator


def normalize(x, mean, variance, scale, shift, epsilon):
    """Batch normalisation (Ioffe & Szegedy 2015) with Theano's op: (x - mean) / √(variance + ε) · scale + shift,
    with one mean, variance, scale and shift per feature or channel (axis 1)."""
    per_feature = ("x", 0, *["x"] * (x.ndim - 2))
    deviation = tt.sqrt(variance + tt.cast(epsilon, x.dtype))
    return tt.nnet.bn.batch_normalization(
        x, *(v.dimshuffle(per_feature) for v in (scale, shift, mean, deviation)), mode="high_mem"
    )


def conv2d(x, weights, biases, stride, padding):
    """Image convolution of NCHW images x with [filters, channels, k, k] weights, `stride` apart, over x padded by
    `padding` zeros on every side (a cross-correlation), plus a bias per filter. Theano without its C code runs only
    its Python `ConvOp`: unpadded, unstrided and flipping its filters. So the zeros are added here, the filters
    flipped first (flipped twice: a cross-correlation), and every `stride`-th window kept. That `ConvOp` reads three
    private SciPy functions under names SciPy 1.8 moved: they are given to it under their new ones."""
    from theano.tensor.nnet import conv

    if not conv.imported_scipy_signal:
        from scipy.signal._signaltools import _bvalfromboundary, _valfrommode
        from scipy.signal._sigtools import _convolve2d

        conv._valfrommode, conv._bvalfromboundary, conv._convolve2d = _valfrommode, _bvalfromboundary, _convolve2d
        conv.imported_scipy_signal = True
    if padding:
        rows, columns = x.shape[2] + 2 * padding, x.shape[3] + 2 * padding
        padded = tt.zeros((x.shape[0], x.shape[1], rows, columns), dtype=x.dtype)
        x = tt.set_subtensor(padded[:, :, padding:-padding, padding:-padding], x)
    convolved = tt.nnet.conv2d(x, weights[:, :, ::-1, ::-1], border_mode="valid")
    return convolved[:, :, ::stride, ::stride] + biases.dimshuffle("x", 0, "x", "x")


def windows(x, size, stride):
    """The size × size windows of NCHW images `stride` apart, as a list of size² tensors [batch, channels, rows,
    columns]: the value at offset (i, j) of every window. (Theano's `pool_2d` runs without its C code only on NumPy
    before 1.23: its Python `Pool` indexes with a list of slices. Strided slices work everywhere.)"""
    rows, columns = (x.shape[2] - size) // stride + 1, (x.shape[3] - size) // stride + 1
    return [
        x[:, :, i : i + (rows - 1) * stride + 1 : stride, j : j + (columns - 1) * stride + 1 : stride]
        for i in range(size)
        for j in range(size)
    ]


def max_pool(x, size, stride):
    """Max pooling: the largest value of each size × size window of NCHW images, windows `stride` apart. Its gradient
    goes, for each window, to the first of its largest elements in reading order (as specc's), not to every one."""
    stacked = tt.stack(windows(x, size, stride))
    first = tt.eq(tt.arange(size * size).dimshuffle(0, "x", "x", "x", "x"), stacked.argmax(axis=0))
    return tt.switch(first, stacked, 0).sum(axis=0)


def avg_pool(x, size, stride):
    """Average pooling: the mean of each size × size window of NCHW images, windows `stride` apart."""
    return tt.stack(windows(x, size, stride)).mean(axis=0)

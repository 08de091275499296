"""Max and average pooling as PyTensor Ops, each with the Op of its gradient.

Of NCHW images x, the windows of size × size, `stride` apart, without padding: (height - size) // stride + 1
rows of windows, and likewise columns; window (r, c) covers x[n, ch, r·s : r·s + size, c·s : c·s + size].

    max pooling      y[n, ch, r, c] = max of the window
    average pooling  y[n, ch, r, c] = Σ of the window / size²

The gradient of max pooling goes, for each window, to the first of its largest elements in reading order (row by
row), as in PyTorch and XLA; windows that overlap (a stride below the size) add up where they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op, OutputStorageType

from spec_lang.lowering.pytensor.kernels.conv import at_offset, images, side, windows


class _Windows(Op):
    """What the pooling Ops share: the window size and stride, checked."""

    __props__ = ("size", "stride")

    def __init__(self, size: int, stride: int):
        if size < 1 or stride < 1:
            raise ValueError(f"pooling needs size ≥ 1 and stride ≥ 1, got {size} and {stride}")
        self.size, self.stride = int(size), int(stride)


class _Pooling(_Windows):
    """y = pool(x), [batch, channels, rows of windows, columns of windows]."""

    def make_node(self, *inputs: Variable) -> Apply:
        (x,) = images(*inputs)
        grid = [side(n, self.size, self.stride) for n in x.type.shape[2:]]
        return Apply(self, [x], [pt.tensor(dtype=x.dtype, shape=(*x.type.shape[:2], *grid))])

    def infer_shape(self, node: Apply, shapes: list) -> list:
        ((n, channels, height, width),) = shapes
        return [(n, channels, side(height, self.size, self.stride), side(width, self.size, self.stride))]


class _PoolingGrad(_Windows):
    """gx = grad(x, gy): the gradient of Σ gy · pool(x) with respect to x, of x's shape."""

    def make_node(self, *inputs: Variable) -> Apply:
        x, gy = images(*inputs)
        return Apply(self, [x, gy], [x.type()])

    def infer_shape(self, node: Apply, shapes: list) -> list:
        return [shapes[0]]


class MaxPool(_Pooling):
    """y = the largest element of each window."""

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: OutputStorageType) -> None:
        (x,) = inputs
        outputs[0][0] = np.ascontiguousarray(windows(x, self.size, self.stride).max(axis=(4, 5)))

    def pullback(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], cotangents: Sequence[Variable]
    ) -> list[Any]:
        return [MaxPoolGrad(self.size, self.stride)(inputs[0], cotangents[0])]


class MaxPoolGrad(_PoolingGrad):
    """gx[n, ch, a, b] = Σ gy[n, ch, r, c] over the windows (r, c) whose first largest element is x[n, ch, a, b]."""

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: OutputStorageType) -> None:
        x, gy = inputs
        patches = windows(x, self.size, self.stride)
        largest = patches.max(axis=(4, 5))
        open_ = np.ones(largest.shape, dtype=bool)  # the windows whose largest element is still to be found
        gx = np.zeros_like(x)
        for i in range(self.size):
            for j in range(self.size):
                chosen = open_ & (patches[..., i, j] == largest)
                gx[at_offset(i, j, self.stride, gy.shape[2:])] += np.where(chosen, gy, 0)
                open_ &= ~chosen
        outputs[0][0] = gx

    def pullback(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], cotangents: Sequence[Variable]
    ) -> list[Any]:
        """Zero with respect to x (where the first largest elements do not change), not implemented for gy."""
        x, gy = inputs
        return [pt.zeros_like(x), grad_not_implemented(self, 1, gy, "the second derivative of max pooling")]


class AvgPool(_Pooling):
    """y = the mean of each window."""

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: OutputStorageType) -> None:
        (x,) = inputs
        outputs[0][0] = np.ascontiguousarray(windows(x, self.size, self.stride).mean(axis=(4, 5)), dtype=x.dtype)

    def pullback(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], cotangents: Sequence[Variable]
    ) -> list[Any]:
        return [AvgPoolGrad(self.size, self.stride)(inputs[0], cotangents[0])]


class AvgPoolGrad(_PoolingGrad):
    """gx[n, ch, a, b] = Σ gy[n, ch, r, c] / size² over the windows (r, c) that cover x[n, ch, a, b]. Linear in gy,
    whose gradient is average pooling again; x gives only the shape."""

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: OutputStorageType) -> None:
        x, gy = inputs
        gx = np.zeros_like(x)
        share = gy / np.asarray(self.size * self.size, dtype=x.dtype)
        for i in range(self.size):
            for j in range(self.size):
                gx[at_offset(i, j, self.stride, gy.shape[2:])] += share
        outputs[0][0] = gx

    def pullback(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], cotangents: Sequence[Variable]
    ) -> list[Any]:
        return [disconnected_type(), AvgPool(self.size, self.stride)(cotangents[0])]

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[False], [True]]

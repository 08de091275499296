"""Image convolution as PyTensor Ops: the forward `Conv2d` and the two Ops of its gradient.

Images are NCHW [batch, channels, height, width] and weights [filters, channels, k, k]. With `s` the stride and
`p` the zero padding on every side, the output has (height + 2p - k) // s + 1 rows, and likewise columns, and

    y[n, f, r, c] = Σ_{ch, i, j} w[f, ch, i, j] · xp[n, ch, r·s + i, c·s + j]

where xp is x padded by p zeros on every side: a cross-correlation, as in every deep-learning library. A bias is
not part of the Op (the building block adds it). `perform` is the NumPy implementation (Python and C linkers);
`numba.py` and `jax.py` in this package hold the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from numpy.lib.stride_tricks import sliding_window_view
from pytensor.gradient import disconnected_type
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op, OutputStorageType
from pytensor.scalar import upcast


def side(length: Any, size: Any, stride: int, padding: int = 0) -> Any:
    """How many windows of `size`, `stride` apart, fit along a side of `length` padded by `padding` on both ends
    (ints or symbolic scalars; None for a length not known statically)."""
    return None if length is None else (length + 2 * padding - size) // stride + 1


def windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    """The size × size windows of NCHW images, `stride` apart, as a view [batch, channels, r, c, size, size]."""
    return sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]


def at_offset(i: int, j: int, stride: int, count: tuple[int, int]) -> tuple[slice, ...]:
    """The index of element (i, j) of every window, `count` windows `stride` apart: [:, :, i::stride, j::stride]."""
    return (
        slice(None),
        slice(None),
        slice(i, i + stride * (count[0] - 1) + 1, stride),
        slice(j, j + stride * (count[1] - 1) + 1, stride),
    )


def padded(x: np.ndarray, padding: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x


def floats(*values: Any) -> list[pt.TensorVariable]:
    """Tensors of one float dtype (the widest of the values'); an integer dtype is refused."""
    tensors = [pt.as_tensor_variable(v) for v in values]
    dtype = upcast(*(t.dtype for t in tensors))
    if not dtype.startswith("float"):
        raise TypeError(f"convolution and pooling take float tensors, got {', '.join(t.dtype for t in tensors)}")
    return [pt.cast(t, dtype) for t in tensors]


def images(*values: Any) -> list[pt.TensorVariable]:
    """`floats` of four dimensions each: NCHW images, weights, their gradients."""
    tensors = floats(*values)
    if any(t.ndim != 4 for t in tensors):
        raise ValueError(f"convolution and pooling take 4-dimensional tensors, got {[t.ndim for t in tensors]}")
    return tensors


class _Convolution(Op):
    """What the three Ops share: stride and padding, checked."""

    __props__ = ("stride", "padding")

    def __init__(self, stride: int = 1, padding: int = 0):
        if stride < 1 or padding < 0:
            raise ValueError(f"a convolution needs stride ≥ 1 and padding ≥ 0, got {stride} and {padding}")
        self.stride, self.padding = int(stride), int(padding)


class Conv2d(_Convolution):
    """y = conv2d(x, w), the formula of the module docstring."""

    def make_node(self, *inputs: Variable) -> Apply:
        x, w = images(*inputs)
        k = w.type.shape[2]
        grid = [None if k is None else side(n, k, self.stride, self.padding) for n in x.type.shape[2:]]
        return Apply(self, [x, w], [pt.tensor(dtype=x.dtype, shape=(x.type.shape[0], w.type.shape[0], *grid))])

    def infer_shape(self, node: Apply, shapes: list) -> list:
        (n, _, height, width), (filters, _, k, _) = shapes
        return [(n, filters, side(height, k, self.stride, self.padding), side(width, k, self.stride, self.padding))]

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: OutputStorageType) -> None:
        x, w = inputs
        patches = windows(padded(x, self.padding), w.shape[2], self.stride)
        y = np.tensordot(patches, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
        outputs[0][0] = np.ascontiguousarray(y, dtype=x.dtype)

    def pullback(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], cotangents: Sequence[Variable]
    ) -> list[Any]:
        x, w = inputs
        (gy,) = cotangents
        return [
            Conv2dInputGrad(self.stride, self.padding)(x, w, gy),
            Conv2dWeightGrad(self.stride, self.padding)(x, w, gy),
        ]


class Conv2dInputGrad(_Convolution):
    """gx = conv2d_input_grad(x, w, gy): the gradient of Σ gy · conv2d(x, w) with respect to x,

        gx[n, ch, a, b] = Σ_{f, r, c, i, j : r·s + i - p = a, c·s + j - p = b} w[f, ch, i, j] · gy[n, f, r, c]

    x gives only the shape of gx (a stride over 1 cannot tell it from gy's)."""

    def make_node(self, *inputs: Variable) -> Apply:
        x, w, gy = images(*inputs)
        return Apply(self, [x, w, gy], [x.type()])

    def infer_shape(self, node: Apply, shapes: list) -> list:
        return [shapes[0]]

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[False], [True], [True]]

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: OutputStorageType) -> None:
        x, w, gy = inputs
        p, k = self.padding, w.shape[2]
        gx = np.zeros(padded(x, p).shape, dtype=x.dtype)
        for i in range(k):
            for j in range(k):
                part = np.tensordot(gy, w[:, :, i, j], axes=([1], [0])).transpose(0, 3, 1, 2)
                gx[at_offset(i, j, self.stride, gy.shape[2:])] += part
        outputs[0][0] = np.ascontiguousarray(gx[:, :, p : p + x.shape[2], p : p + x.shape[3]])

    def pullback(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], cotangents: Sequence[Variable]
    ) -> list[Any]:
        """gx is linear in w and in gy: Σ ggx · gx = Σ conv2d(ggx, w) · gy."""
        x, w, gy = inputs
        (ggx,) = cotangents
        return [
            disconnected_type(),
            Conv2dWeightGrad(self.stride, self.padding)(ggx, w, gy),
            Conv2d(self.stride, self.padding)(ggx, w),
        ]


class Conv2dWeightGrad(_Convolution):
    """gw = conv2d_weight_grad(x, w, gy): the gradient of Σ gy · conv2d(x, w) with respect to w,

        gw[f, ch, i, j] = Σ_{n, r, c} gy[n, f, r, c] · xp[n, ch, r·s + i, c·s + j]

    w gives only the shape of gw (a stride over 1 cannot tell the kernel size from the shapes of x and gy)."""

    def make_node(self, *inputs: Variable) -> Apply:
        x, w, gy = images(*inputs)
        return Apply(self, [x, w, gy], [w.type()])

    def infer_shape(self, node: Apply, shapes: list) -> list:
        return [shapes[1]]

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[True], [False], [True]]

    def perform(self, node: Apply, inputs: Sequence[Any], outputs: OutputStorageType) -> None:
        x, w, gy = inputs
        patches = windows(padded(x, self.padding), w.shape[2], self.stride)
        gw = np.tensordot(gy, patches, axes=([0, 2, 3], [0, 2, 3]))
        outputs[0][0] = np.ascontiguousarray(gw, dtype=x.dtype)

    def pullback(
        self, inputs: Sequence[Variable], outputs: Sequence[Variable], cotangents: Sequence[Variable]
    ) -> list[Any]:
        """gw is linear in x and in gy: Σ ggw · gw = Σ conv2d(x, ggw) · gy."""
        x, w, gy = inputs
        (ggw,) = cotangents
        return [
            Conv2dInputGrad(self.stride, self.padding)(x, ggw, gy),
            disconnected_type(),
            Conv2d(self.stride, self.padding)(x, ggw),
        ]

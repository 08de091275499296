"""The JAX implementations of the convolution and pooling Ops, registered with PyTensor's JAX dispatch.

The forward Ops are XLA's own: `lax.conv_general_dilated` (NCHW images, OIHW weights) and `lax.reduce_window`
(max, or sum / size²). Each gradient Op is the pullback of its forward formula (`jax.vjp`), which XLA compiles to
its transposed convolutions and to select-and-scatter, the gradient of max pooling that goes to the first largest
element of each window, as the other implementations do.

Imported by the package only where JAX is installed: importing it imports JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from pytensor.link.jax.dispatch import jax_funcify

from spec_lang.lowering.pytensor.kernels.conv import Conv2d, Conv2dInputGrad, Conv2dWeightGrad
from spec_lang.lowering.pytensor.kernels.pool import AvgPool, AvgPoolGrad, MaxPool, MaxPoolGrad


def _conv2d(stride: int, padding: int) -> Callable:
    def conv2d(x, w):
        return jax.lax.conv_general_dilated(
            x, w, (stride, stride), ((padding, padding), (padding, padding)), dimension_numbers=("NCHW", "OIHW", "NCHW")
        )

    return conv2d


def _max_pool(size: int, stride: int) -> Callable:
    def max_pool(x):
        lowest = np.array(-np.inf, dtype=x.dtype)  # a constant, so that JAX knows the monoid and its gradient
        return jax.lax.reduce_window(x, lowest, jax.lax.max, (1, 1, size, size), (1, 1, stride, stride), "VALID")

    return max_pool


def _avg_pool(size: int, stride: int) -> Callable:
    def avg_pool(x):
        zero = np.array(0, dtype=x.dtype)
        total = jax.lax.reduce_window(x, zero, jax.lax.add, (1, 1, size, size), (1, 1, stride, stride), "VALID")
        return total / np.array(size * size, dtype=x.dtype)

    return avg_pool


@jax_funcify.register(Conv2d)
def _funcify_conv2d(op: Conv2d, **kwargs: Any) -> Callable:
    return _conv2d(op.stride, op.padding)


@jax_funcify.register(Conv2dInputGrad)
def _funcify_conv2d_input_grad(op: Conv2dInputGrad, **kwargs: Any) -> Callable:
    forward = _conv2d(op.stride, op.padding)

    def conv2d_input_grad(x, w, gy):
        return jax.vjp(lambda x: forward(x, w), x)[1](gy)[0]

    return conv2d_input_grad


@jax_funcify.register(Conv2dWeightGrad)
def _funcify_conv2d_weight_grad(op: Conv2dWeightGrad, **kwargs: Any) -> Callable:
    forward = _conv2d(op.stride, op.padding)

    def conv2d_weight_grad(x, w, gy):
        return jax.vjp(lambda w: forward(x, w), w)[1](gy)[0]

    return conv2d_weight_grad


@jax_funcify.register(MaxPool)
def _funcify_max_pool(op: MaxPool, **kwargs: Any) -> Callable:
    return _max_pool(op.size, op.stride)


@jax_funcify.register(AvgPool)
def _funcify_avg_pool(op: AvgPool, **kwargs: Any) -> Callable:
    return _avg_pool(op.size, op.stride)


@jax_funcify.register(MaxPoolGrad)
@jax_funcify.register(AvgPoolGrad)
def _funcify_pool_grad(op: MaxPoolGrad | AvgPoolGrad, **kwargs: Any) -> Callable:
    forward = _max_pool(op.size, op.stride) if isinstance(op, MaxPoolGrad) else _avg_pool(op.size, op.stride)

    def pool_grad(x, gy):
        return jax.vjp(forward, x)[1](gy)[0]

    return pool_grad

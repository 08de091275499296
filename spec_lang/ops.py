"""The PyTensor building blocks a lowered model is made of.

The lowering calls these functions to build the graph, and `specc compile --emit python` copies their
source into the module it writes, so the generated code and the compiled model are built by the same code.
"""

import pytensor
import pytensor.tensor as pt
from pytensor.gradient import grad_scale


def affine(x, weights, biases):
    """x @ W + b."""
    return pt.dot(x, weights) + biases


def tanh(x):
    return pt.tanh(x)


def sigmoid(x):
    return pt.sigmoid(x)


def relu(x):
    return pt.maximum(x, 0)


def softmax(x):
    return pt.special.softmax(x, axis=-1)


def linear(x):
    return x


def reverse_gradient(x, lam):
    """Gradient reversal (Ganin & Lempitsky 2015): identity forward, gradient times -lam backward.

    Built on PyTensor's `grad_scale`, so it works in every backend mode; `lam` may be a shared variable
    that changes between steps without recompiling.
    """
    return grad_scale(x, -lam)


def crossentropy(probabilities, labels):
    """Mean categorical cross-entropy of row-wise probabilities against integer class labels."""
    return -pt.log(probabilities[pt.arange(labels.shape[0]), labels]).mean()


def binary_crossentropy(probabilities, target):
    """Mean binary cross-entropy; `target` is a tensor of the same shape or a constant 0/1."""
    return -(target * pt.log(probabilities) + (1 - target) * pt.log(1 - probabilities)).mean()


def mean_squared_error(predictions, target):
    return pt.sqr(predictions - target).mean()


def l2_penalty(parameters):
    """Sum of squares of every given parameter."""
    return pt.add(*[pt.sum(pt.sqr(p)) for p in parameters])


def l1_penalty(parameters):
    """Sum of absolute values of every given parameter."""
    return pt.add(*[pt.sum(pt.abs(p)) for p in parameters])


def sgd_updates(parameters, cost, learning_rate):
    """Plain SGD: p ← p - lr · ∂cost/∂p for every parameter."""
    gradients = pytensor.grad(cost, parameters)
    return [(p, p - learning_rate * g) for p, g in zip(parameters, gradients)]

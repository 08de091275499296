"""The PyTensor building blocks a lowered model is made of.

The lowering calls these functions to build the graph, and `specc compile --emit python` copies their
source into the module it writes, so the generated code and the compiled model are built by the same code.
"""

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import grad_scale


def affine(x, weights, biases):
    """x @ W + b."""
    return pt.dot(x, weights) + biases


def tanh(x):
    return pt.tanh(x)


def fast_tanh(x):
    """tanh of a float32 tensor as a rational function (Eigen's and XLA's float32 tanh: x·p(x²)/q(x²) on x
    clipped to ±7.9053, x itself below 4e-4; at most 3.5e-7 from the exact value, tanh(±inf) = ±1). Plain
    arithmetic, so it fuses with its neighbours into one loop, which runs several times faster under Numba than
    the libm call of `pt.tanh`. Its gradient is tanh's, g · (1 - y²) of the output y."""

    def number(value):
        return np.asarray(value, dtype=x.dtype)

    def polynomial(z, coefficients):  # Horner, highest power first
        result = number(coefficients[0])
        for c in coefficients[1:]:
            result = result * z + number(c)
        return result

    def graph(v):
        clipped = pt.clip(v, number(-7.90531110763549805), number(7.90531110763549805))
        z = pt.sqr(clipped)
        p = clipped * polynomial(
            z,
            [
                -2.76076847742355e-16,
                2.00018790482477e-13,
                -8.60467152213735e-11,
                5.12229709037114e-08,
                1.48572235717979e-05,
                6.37261928875436e-04,
                4.89352455891786e-03,
            ],
        )
        q = polynomial(z, [1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03])
        return pt.switch(pt.abs(v) < number(4e-4), v, p / q)

    v, y, g = x.type(), x.type(), x.type()  # the pullback takes the input, the output and its gradient
    pullback = pytensor.compile.builders.OpFromGraph([v, y, g], [g * (1 - pt.sqr(y))], inline=True)
    return pytensor.compile.builders.OpFromGraph([v], [graph(v)], inline=True, name="fast_tanh", pullback=pullback)(x)


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


def stop_gradient(x):
    """Identity forward, no gradient backward: a value a loss holds constant (a kernel's bandwidth, CDAN+E's
    weights, the norm AFN steps away from)."""
    return pytensor.gradient.disconnected_grad(x)


def join_rows(parts):
    """The rows of several [batch, …] tensors one after the other, for one pass of a stack over all of them
    (`split_rows` takes them apart again)."""
    return pt.concatenate(parts, axis=0)


def rows(x):
    """The number of rows (the batch size) of a tensor."""
    return x.shape[0]


def split_rows(x, sizes):
    """The consecutive blocks of rows of `x` with `sizes` rows each, as a tuple (views; the gradient joins)."""
    return tuple(pt.split(x, pt.stack(sizes), n_splits=len(sizes), axis=0))


def of_labels(rows, labels):
    """Each row's entry at its label: `labels` is int[batch], or one class for every row. (A gather along the class
    axis, which every backend compiles: JAX cannot index by a symbolic `arange` of the batch.)"""
    labels = pt.as_tensor_variable(labels)
    if labels.ndim == 0:
        return rows[:, labels]
    return pt.take_along_axis(rows, labels[:, None], axis=1)[:, 0]


def crossentropy(probabilities, labels):
    """Mean categorical cross-entropy of row-wise probabilities against integer class labels (int[batch], or one
    class for every row)."""
    return -pt.log(of_labels(probabilities, labels)).mean()


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


# Numerically stable losses, entropy and CDAN conditioning ------------------------------------------------
# The lowering uses the `*_from_logits` forms when the predictions come straight out of a softmax or sigmoid
# layer (it keeps that layer's pre-activation); they equal the forms above on probabilities, but stay finite,
# with finite gradients, for logits of any size.


def crossentropy_from_logits(logits, labels):
    """`crossentropy(softmax(logits), labels)` as a log-softmax; `labels` is int[batch] or one class for all rows."""
    log_probabilities = pt.special.log_softmax(logits, axis=-1)
    return -of_labels(log_probabilities, labels).mean()


def binary_crossentropy_from_logits(logits, target):
    """`binary_crossentropy(sigmoid(logits), target)` as softplus(z) - t·z."""
    return (pt.softplus(logits) - target * logits).mean()


def entropy(probabilities):
    """Mean over rows of -Σ p log p, with 0 log 0 = 0."""
    return -pt.special.xlogy(probabilities, probabilities).sum(axis=-1).mean()


def entropy_from_logits(logits):
    """`entropy(softmax(logits))` from the log-softmax."""
    log_probabilities = pt.special.log_softmax(logits, axis=-1)
    return -(pt.exp(log_probabilities) * log_probabilities).sum(axis=-1).mean()


def outer(features, predictions):
    """CDAN's multilinear conditioning (Long et al. 2018): per row, the outer product of [batch, f] features and
    [batch, c] predictions, flattened to [batch, f * c] (entry i * c + j is f_i · p_j). No gradient flows into the
    predictions: they only condition the domain classifier, as in the authors' code."""
    conditioning = pytensor.gradient.zero_grad(predictions)
    return (features[:, :, None] * conditioning[:, None, :]).reshape((features.shape[0], -1))


def random_maps(seed, features, classes, dim):
    """CDAN's fixed random matrices R_f [features, dim] and R_g [classes, dim], standard normal (float64), drawn by
    numpy from the spec's seed and the three sizes: every `outer(…, dim = …)` of those sizes (a source and a target
    batch) shares them, and every backend, the emitted module and a resumed run draw the same ones. Never trained,
    never stored: constants of the graph."""
    generator = np.random.default_rng([seed, features, classes, dim])
    return generator.standard_normal((features, dim)), generator.standard_normal((classes, dim))


def randomized_outer(features, predictions, seed, widths, dim):
    """CDAN's randomised multilinear map (Transfer-Learning-Library's `RandomizedMultiLinearMap`): per row,
    (f · R_f) ⊙ (p · R_g) / √dim, [batch, dim], for features and predictions `widths` wide, with the matrices of
    `random_maps`. No gradient flows into the predictions, as in the plain product."""
    conditioning = pytensor.gradient.zero_grad(predictions)
    feature_map, prediction_map = random_maps(seed, *widths, dim)
    scale = np.asarray(1 / np.sqrt(dim), dtype=features.dtype)
    mapped = pt.dot(features, feature_map.astype(features.dtype))
    return mapped * pt.dot(conditioning, prediction_map.astype(features.dtype)) * scale


def interpolate(first, second, generator):
    """Random points between two batches (WGAN-GP): per row, α · first + (1 - α) · second with α ~ U(0, 1), over the
    first min(rows of first, rows of second) rows. Returns them and the generator's next state, which the update
    function must store so that the next step draws new numbers."""
    rows = pt.minimum(first.shape[0], second.shape[0])
    next_generator, alpha = generator.uniform(size=(rows,), dtype=first.dtype)
    alpha = alpha.dimshuffle(0, *["x"] * (first.ndim - 1))
    return alpha * first[:rows] + (1 - alpha) * second[:rows], next_generator


def gradient_penalty(output, wrt):
    """WGAN-GP's penalty (Gulrajani et al. 2017): the mean over rows of (‖∂ Σ output / ∂ wrt_i‖ - 1)², the norm of
    each row's gradient over all its entries. A squared norm is at least 2⁻⁴⁰ (≈ 9e-13), so a zero gradient has a
    finite gradient of its own. Its gradient is a second derivative of `output`."""
    gradient = pytensor.grad(output.sum(), wrt)
    squares = pt.sqr(gradient).reshape((gradient.shape[0], -1)).sum(axis=1)
    return pt.sqr(pt.sqrt(pt.maximum(squares, 2.0**-40)) - 1).mean()


# Training: the update function's updates ---------------------------------------------------------------------


def training_updates(rule, parameters, multipliers, cost, learning_rate, clip_norm=None, **options):
    """The updates of one training step, and the optimiser's state variables by name.

    The gradients of `cost` are scaled down to global norm `clip_norm` when theirs is larger; each parameter's
    learning rate is `learning_rate` times its multiplier (its stack's `lr_mult`); the optimiser's `rule` (from
    `spec_lang.library.optimizers`) makes the updates, with `options`. Each new value is cast to its variable's type:
    Python numbers in the formulas compute in float64, and a float32 model keeps float32 variables.
    """
    # A parameter the cost does not depend on has a zero gradient (the checker warns about such stacks, W706).
    gradients = pytensor.grad(cost, parameters, disconnected_inputs="ignore")
    if clip_norm is not None:
        norm = pt.sqrt(sum(pt.sum(pt.sqr(g)) for g in gradients))
        gradients = [g * pt.minimum(1, clip_norm / norm) for g in gradients]
    rates = [learning_rate if m == 1 else learning_rate * m for m in multipliers]
    state = OptimizerState()
    updates = rule(parameters, gradients, rates, state, pt, **options)
    return [(variable, pt.cast(value, variable.dtype)) for variable, value in updates], state.variables


class OptimizerState:
    """The optimiser's state variables, made as its rule asks for them and recorded by name."""

    def __init__(self):
        self.variables = {}

    def variable(self, parameter, name):
        """Zeros shaped like a parameter, named `PARAMETER.NAME` (a velocity, a moment)."""
        variable = pytensor.shared(np.zeros_like(parameter.get_value()), name=f"{parameter.name}.{name}")
        self.variables[variable.name] = variable
        return variable

    def counter(self, name):
        """A step count starting at 0."""
        self.variables[name] = pytensor.shared(np.asarray(0, dtype="int64"), name=name)
        return self.variables[name]


# Layers: more activations, dropout, batch normalisation, images ----------------------------------------------
# Constants and scalar arguments (which may be Python numbers) take the input's float type, so a float32 model
# computes in float32. Images are NCHW: [batch, channels, height, width]. PyTensor 3 has no multi-channel
# convolution or pooling Op (Theano's `conv2d` and `pool_2d` are gone; `pytensor.tensor.signal.convolve2d`
# convolves single 2-D planes with SciPy and has no Numba implementation, so Numba runs it in object mode).
# Convolution and pooling gather the input's windows into one tensor ("im2col") and reduce it with a tensordot,
# a max or a mean: indexing and reductions, which every backend mode compiles and differentiates.


def leaky_relu(x):
    """x for x > 0, else 0.01 · x."""
    return pt.switch(x > 0, x, np.asarray(0.01, dtype=x.dtype) * x)


def elu(x):
    """x for x > 0, else exp(x) - 1 (Clevert et al. 2016); the exponential only sees x ≤ 0, so its gradient
    stays finite for large x."""
    return pt.switch(x > 0, x, pt.expm1(pt.minimum(x, 0)))


def gelu(x):
    """x · Φ(x) with Φ the standard normal CDF: 0.5 · x · (1 + erf(x / √2)) (Hendrycks & Gimpel 2016, the exact
    form)."""
    half = np.asarray(0.5, dtype=x.dtype)
    return half * x * (1 + pt.erf(x * np.sqrt(half)))


def random_generator(seed, index):
    """A shared random generator for one application of a random layer, seeded from the spec's seed and the
    application's index, so that every run draws the same numbers."""
    return pt.random.shared_rng(seed=[seed, index], name=f"generator_{index}")


def dropout(x, rate, generator):
    """Inverted dropout: each element is zeroed with probability `rate` and the others are divided by 1 - rate,
    so the expected output is x. Returns the output and the generator's next state, which the update function
    must store so that the next step draws new numbers."""
    rate = pt.cast(rate, x.dtype)
    next_generator, draw = generator.uniform(size=x.shape, dtype=x.dtype)
    return pt.switch(draw < rate, 0, x / (1 - rate)), next_generator


def batch_statistics(x):
    """The mean and the (biased) variance of each feature or channel (axis 1), over the batch and image axes."""
    axes = [0, *range(2, x.ndim)]
    return x.mean(axis=axes), x.var(axis=axes)


def normalize(x, mean, variance, scale, shift, epsilon):
    """Batch normalisation (Ioffe & Szegedy 2015): (x - mean) / √(variance + ε) · scale + shift, with one mean,
    variance, scale and shift per feature or channel (axis 1)."""
    per_feature = ("x", 0, *["x"] * (x.ndim - 2))
    factor = scale / pt.sqrt(variance + pt.cast(epsilon, x.dtype))
    return (x - mean.dimshuffle(per_feature)) * factor.dimshuffle(per_feature) + shift.dimshuffle(per_feature)


def moving_average(average, value, momentum):
    """A running statistic after one more batch: momentum · average + (1 - momentum) · value."""
    momentum = pt.cast(momentum, average.dtype)
    return momentum * average + (1 - momentum) * value


def conv2d(x, weights, biases, stride, padding):
    """Image convolution of NCHW images x with [filters, channels, k, k] weights, `stride` apart, over x padded by
    `padding` zeros on every side (a cross-correlation, as in every deep-learning library), plus a bias per filter:
    y[n, f, r, c] = b[f] + Σ_{ch, i, j} W[f, ch, i, j] · x[n, ch, r·stride + i - padding, c·stride + j - padding].
    The Op comes from specc (`spec_lang.lowering.pytensor.kernels`), which must be installed to run it."""
    from spec_lang.lowering.pytensor.kernels import Conv2d

    return Conv2d(stride, padding)(x, weights) + biases.dimshuffle("x", 0, "x", "x")


def max_pool(x, size, stride):
    """Max pooling: the largest value of each size × size window of NCHW images, windows `stride` apart. The Op
    comes from specc (`spec_lang.lowering.pytensor.kernels`), which must be installed to run it."""
    from spec_lang.lowering.pytensor.kernels import MaxPool

    return MaxPool(size, stride)(x)


def avg_pool(x, size, stride):
    """Average pooling: the mean of each size × size window of NCHW images, windows `stride` apart. The Op comes
    from specc (`spec_lang.lowering.pytensor.kernels`), which must be installed to run it."""
    from spec_lang.lowering.pytensor.kernels import AvgPool

    return AvgPool(size, stride)(x)


def flatten(x):
    """Each example as one row of features: [batch, everything else]."""
    return x.reshape((x.shape[0], -1))


def reshape(x, shape):
    """Each example reshaped to `shape`, the batch dimension kept: [batch, *shape]."""
    return x.reshape((x.shape[0], *shape))

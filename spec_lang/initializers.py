"""Initial parameter values: seeded numpy draws, one scheme per role (weights, biases).

The generated Python module carries a copy of these functions, so both start from identical values.
"""

import numpy as np


def normal(rng, shape, std):
    return rng.standard_normal(shape) * std


def uniform(rng, shape, scale):
    return rng.uniform(-scale, scale, shape)


def glorot_uniform(rng, shape):
    fan_in, fan_out = (shape[0], shape[-1]) if len(shape) > 1 else (shape[0], shape[0])
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def zeros(rng, shape):
    return np.zeros(shape)


def constant(rng, shape, value):
    return np.full(shape, value)


def initial_parameters(layers, weights, biases, seed, dtype):
    """Draw every parameter in order; `layers` is a list of (W name, b name, fan_in, units), and
    `weights`/`biases` are (scheme function, keyword arguments)."""
    rng = np.random.default_rng(seed)
    values = {}
    for weights_name, biases_name, fan_in, units in layers:
        values[weights_name] = weights[0](rng, (fan_in, units), **weights[1]).astype(dtype)
        values[biases_name] = biases[0](rng, (units,), **biases[1]).astype(dtype)
    return values

"""Initial parameter values: seeded numpy draws, each parameter with its own initialiser.

The generated Python module carries a copy of these functions, so both start from identical values.
"""

import numpy as np


def normal(rng, shape, std):
    return rng.standard_normal(shape) * std


def uniform(rng, shape, scale):
    return rng.uniform(-scale, scale, shape)


def glorot_uniform(rng, shape):
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def glorot_normal(rng, shape):
    fan_in, fan_out = fans(shape)
    return rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))


def he_uniform(rng, shape):
    """He et al. (2015), for ReLU layers: U(-√(6 / fan_in), √(6 / fan_in))."""
    limit = np.sqrt(6.0 / fans(shape)[0])
    return rng.uniform(-limit, limit, shape)


def he_normal(rng, shape):
    """He et al. (2015), for ReLU layers: N(0, 2 / fan_in)."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fans(shape)[0])


def fans(shape):
    """(fan-in, fan-out): [in, out] for dense weights, [out, in, *kernel] for convolutions."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) > 2:
        receptive = int(np.prod(shape[2:]))
        return shape[1] * receptive, shape[0] * receptive
    return shape[0], shape[0]


def zeros(rng, shape):
    return np.zeros(shape)


def constant(rng, shape, value):
    return np.full(shape, value)


def ones(rng, shape):
    return np.ones(shape)


def initial_parameters(params, seed, dtype):
    """Draw every parameter in order from one seeded generator; `params` lists (name, shape, initialiser name,
    its keyword arguments)."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape, scheme, arguments in params:
        values[name] = globals()[scheme](rng, tuple(shape), **arguments).astype(dtype)
    return values

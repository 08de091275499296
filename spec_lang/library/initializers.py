"""Initialisers: how a parameter's first value is drawn. Every draw is a seeded numpy function of a generator and a
shape; the emitted Python module carries a copy of these functions, so both start from identical values. To add an
initialiser, write its draw and register an `InitializerKind` here.

>>> sorted(name for name in INITIALIZERS if INITIALIZERS[name].public)
['constant', 'glorot_normal', 'glorot_uniform', 'he_normal', 'he_uniform', 'normal', 'uniform', 'zeros']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from spec_lang.library.registry import Argument, Registry, Signature


@dataclass(frozen=True)
class InitializerKind:
    """An initialiser: its arguments (numbers, never negative except a constant's value), its draw, a summary, and
    whether a spec may name it (`ones` starts batch normalisation's scales and variances only)."""

    name: str
    summary: str
    signature: Signature
    draw: Callable[..., np.ndarray]
    public: bool = True


INITIALIZERS = Registry[InitializerKind]("initialiser")


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


def initial_parameters(params, seed, dtype, draws):
    """Draw every parameter in order from one seeded generator; `params` lists (name, shape, initialiser name,
    its keyword arguments), `draws` maps initialiser names to their draw functions."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape, scheme, arguments in params:
        values[name] = draws[scheme](rng, tuple(shape), **arguments).astype(dtype)
    return values


def draws() -> Mapping[str, Callable[..., np.ndarray]]:
    """Every initialiser's draw, by name."""
    return {kind.name: kind.draw for kind in INITIALIZERS.entries()}


for _kind in (
    InitializerKind("normal", "`normal(std)`: N(0, std²)", Signature((Argument("std"),)), normal),
    InitializerKind("uniform", "`uniform(scale)`: U(-scale, scale)", Signature((Argument("scale"),)), uniform),
    InitializerKind(
        "glorot_uniform",
        "`glorot_uniform`: Glorot & Bengio's (Xavier's) uniform; the default weights",
        Signature(),
        glorot_uniform,
    ),
    InitializerKind(
        "glorot_normal", "`glorot_normal`: Glorot & Bengio's (Xavier's) normal", Signature(), glorot_normal
    ),
    InitializerKind("he_uniform", "`he_uniform`: He et al.'s uniform, for ReLU layers", Signature(), he_uniform),
    InitializerKind("he_normal", "`he_normal`: He et al.'s normal, for ReLU layers", Signature(), he_normal),
    InitializerKind("zeros", "`zeros`: 0; the default biases", Signature(), zeros),
    InitializerKind("constant", "`constant(value)`: one value everywhere", Signature((Argument("value"),)), constant),
    InitializerKind("ones", "1 (batch normalisation's scales and variances)", Signature(), ones, public=False),
):
    INITIALIZERS.register(_kind)

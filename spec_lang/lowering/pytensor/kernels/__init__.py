"""Convolution and pooling as PyTensor Ops, each with a NumPy `perform` (Python and C linkers), a Numba kernel
and a JAX function; the gradient of each is an Op of its own.

Importing the package registers the kernels with PyTensor's Numba dispatch and, where JAX is installed, its JAX
dispatch. The building blocks of `lowering/pytensor/ops.py` import it inside their bodies, so the module
`specc compile --emit python` writes imports it (and needs specc installed) only for a model with these layers.
"""

from importlib.util import find_spec

from spec_lang.lowering.pytensor.kernels import numba  # noqa: F401  (registers the Numba kernels)
from spec_lang.lowering.pytensor.kernels.conv import Conv2d, Conv2dInputGrad, Conv2dWeightGrad
from spec_lang.lowering.pytensor.kernels.pool import AvgPool, AvgPoolGrad, MaxPool, MaxPoolGrad

if find_spec("jax") is not None:
    from spec_lang.lowering.pytensor.kernels import jax  # noqa: F401  (registers the JAX functions)

__all__ = ["AvgPool", "AvgPoolGrad", "Conv2d", "Conv2dInputGrad", "Conv2dWeightGrad", "MaxPool", "MaxPoolGrad"]

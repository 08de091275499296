"""The layer kinds a stack may hold, one registry entry each (`kinds.LayerKind`): the feature layers in `core`, the
image and shape layers in `images`. Adding a kind there is all it takes to add a layer to the language (the grammar,
JSON and builder spell every layer but `dense` as a call).

>>> sorted(LAYERS)
['avgpool', 'batchnorm', 'conv2d', 'dense', 'dropout', 'flatten', 'maxpool', 'reshape', 'reverse']
"""

from spec_lang.library.layers import core, images  # noqa: F401  (each registers its kinds)
from spec_lang.library.layers.kinds import LAYERS, Checks, Inferred, LayerKind, Lowering

__all__ = ["LAYERS", "Checks", "Inferred", "LayerKind", "Lowering"]

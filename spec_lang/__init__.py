"""specc: a declarative model-spec compiler for domain-adversarial neural networks.

Write a model as `.dann` text, JSON or with the Python builder; specc checks it and compiles it to
PyTensor update, evaluate and predict functions.

>>> import spec_lang
>>> spec = spec_lang.load("examples/seed_dann.dann", hp_lambda=0.3)
>>> spec.program.hypers["hp_lambda"]
0.3
"""

from .diagnostics import Diagnostic, SpecError
from .model import CompiledModel
from .spec import Spec, from_ir, load, loads

__version__ = "0.1.0"
__all__ = ["CompiledModel", "Diagnostic", "Spec", "SpecError", "from_ir", "load", "loads", "__version__"]

"""specc: a declarative model-spec compiler for domain-adversarial neural networks.

Write a model as `.dann` text, JSON or with the Python builder; specc checks it and compiles it to
PyTensor update, evaluate and predict functions.

>>> import spec_lang
>>> spec = spec_lang.load("examples/seed_dann.dann", hp_lambda=0.3)
>>> spec.program.hypers["hp_lambda"]
0.3
"""

from typing import TYPE_CHECKING, Any

from spec_lang.api import Spec, from_ir, load, loads
from spec_lang.diagnostics import Diagnostic, SpecError

if TYPE_CHECKING:
    from spec_lang.model import CompiledModel

__version__ = "0.1.0"
__all__ = ["CompiledModel", "Diagnostic", "Spec", "SpecError", "from_ir", "load", "loads", "__version__"]


def __getattr__(name: str) -> Any:
    # `CompiledModel` imports PyTensor: loaded when first asked for, so checking and formatting never import it
    if name == "CompiledModel":
        from spec_lang.model import CompiledModel

        return CompiledModel
    raise AttributeError(f"module 'spec_lang' has no attribute {name!r}")

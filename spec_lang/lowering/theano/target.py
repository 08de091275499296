"""`specc compile --emit theano`: the emitter's module for Theano 1.0.5, written by the same walker and code backend
as `--emit python`. Building blocks come from `blocks.py` where Theano's API differs, else from
`lowering/pytensor/ops.py` (and the vocabularies' formulas) as written, `pt` read as `tt`; a block that has
neither is an error naming it (E007), never broken code.
"""

from __future__ import annotations

import inspect
import re

from spec_lang import program as P
from spec_lang.diagnostics import file_error
from spec_lang.library.formulas import formulas
from spec_lang.lowering.passes import Optimizations
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.lowering.python.target import Target
from spec_lang.lowering.theano import blocks

# The building blocks of `ops` that run on Theano 1.0.5 as written (once `pt` reads `tt`); those of `blocks` replace
# the others. `fast_tanh` (an `OpFromGraph` with a `pullback`) has no Theano form: the target lowers without it.
SHARED = frozenset(
    {
        "affine", "tanh", "relu", "linear", "leaky_relu", "elu", "gelu", "reverse_gradient", "stop_gradient",
        "join_rows", "rows", "split_rows", "crossentropy", "binary_crossentropy", "mean_squared_error",
        "l2_penalty", "l1_penalty", "outer", "batch_statistics", "moving_average", "flatten", "reshape",
        "random_maps", "randomized_outer", "gradient_penalty",
    }
)  # fmt: skip


def theano_source(text: str) -> str:
    """PyTensor source as Theano reads it: the `pytensor` module is `theano`, its tensor module `tt`."""
    text = re.sub(r"\bpytensor\b", "theano", text)
    return re.sub(r"\bpt\b", "tt", text).replace("PyTensor", "Theano")


def theano_block(name: str) -> str:
    """The source of a building block for Theano, or E007 when Theano has none."""
    own = getattr(blocks, name, None)
    if inspect.isfunction(own) and own.__module__ == blocks.__name__:
        return inspect.getsource(own)
    if name in SHARED or name in formulas():  # a vocabulary's formula is written for any array module
        return theano_source(inspect.getsource(formulas().get(name) or getattr(ops, name)))
    raise file_error(
        None,
        "E007",
        f"the Theano target cannot emit this model: its building block `{name}` has no Theano form",
        "emit it for PyTensor instead: `--emit python`",
    )


def _theano_input(name: str, dtype: str, ndim: int) -> str:
    return f"tt.TensorType({dtype!r}, {(False,) * ndim!r})({name!r})"


THEANO = Target(
    "Theano",
    "tt",
    (
        "# Theano 1.0.5; on Python 3.11 (numpy 1.23, scipy 1.10) without its C code: THEANO_FLAGS=cxx=,blas.ldflags=",
        "import numpy as np",
        "import theano",
        "import theano.tensor as tt",
        "from theano.gradient import grad_scale",
    ),
    "spec_lang.lowering.theano.blocks, else spec_lang.lowering.pytensor.ops",
    theano_block,
    theano_source,
    Optimizations(fast_tanh=False),
    _theano_input,
    frozenset({"windows"}),
)


def emit_theano(program: P.Program, source_name: str) -> str:
    """The text of a standalone module that builds the program's graph with Theano (raises E007 when a building
    block it needs has no Theano form)."""
    return emit_python(program, source_name, THEANO)

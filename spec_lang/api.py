"""A loaded, checked model specification: the IR, the checked program and the warnings.

>>> spec = loads("model m()\\ninput x : float[batch, 2]\\ninput y : int[batch] < 3\\n"
...              "stack net { dense 3 softmax }\\nhead p = net(x)\\nloss xent = crossentropy(p, y)\\n"
...              "optimize sgd(lr = 0.1)")
>>> spec.program.stack("net").parameter_count
9
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from spec_lang.diagnostics import Diagnostic, Source, SpecError, did_you_mean
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY, MAX_MEMORY
from spec_lang.program import Program
from spec_lang.semantics.checker import resolve
from spec_lang.syntax import ir
from spec_lang.syntax.parser import parse
from spec_lang.syntax.sources import included_templates, parse_source, read_source

if TYPE_CHECKING:
    from spec_lang.lowering.passes import Optimizations
    from spec_lang.model import CompiledModel


@dataclass(frozen=True)
class Spec:
    model: ir.Model
    program: Program
    warnings: tuple[Diagnostic, ...] = ()
    source: Source | None = None

    def compile(self, mode: str | None = None, optimizations: Optimizations | None = None) -> CompiledModel:
        """Lower to PyTensor and compile the update function. `mode` is a PyTensor mode name
        ("NUMBA", the default; "C", C code per Op; "FAST_COMPILE"; "JAX" when installed); `optimizations` switches the
        lowering's optimisations (`spec_lang.lowering.passes.Optimizations`, all on by default).

        "JAX" compiles each function at its first call for each signature of input shapes, on a GPU when JAX finds
        one (`spec_lang.runtime.jax_mode`). Raises `SpecError` E005 when jax cannot be imported, E006 when the model
        has an operation the JAX mode cannot compile."""
        from spec_lang.model import CompiledModel  # PyTensor is imported only when a model is compiled

        return CompiledModel(self.program, mode, optimizations)


def from_ir(
    model: ir.Model,
    source: Source | None = None,
    *,
    allow_outside: bool = False,
    max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY,
    strict: bool = False,
    **overrides: object,
) -> Spec:
    """Check an IR model (from any door) with parameter overrides; raises `SpecError` on errors, and with `strict` on
    warnings too (as errors). Its includes are
    read relative to the folder of `source` (the current directory without one; see `included_templates`). A model
    whose parameters and optimiser state (Adam's two moments, a momentum velocity: the arrays it keeps between steps)
    would take more than `max_parameter_memory` bytes is refused (E604); the limit itself is a whole number of bytes
    from 1 to 2**63, else `ValueError`."""
    if isinstance(max_parameter_memory, bool) or not isinstance(max_parameter_memory, int):
        raise ValueError(f"max_parameter_memory is a whole number of bytes, got {max_parameter_memory!r}")
    if not 1 <= max_parameter_memory <= MAX_MEMORY:
        raise ValueError(f"max_parameter_memory is from 1 byte to 2**63 bytes, got {max_parameter_memory}")
    if overrides:
        known = [p.name for p in model.params]
        for name in overrides:
            if name not in known:
                raise SpecError(
                    [
                        Diagnostic(
                            "error",
                            "E602",
                            f"the model has no parameter '{name}'",
                            None,
                            did_you_mean(name, known) or f"parameters: {', '.join(known) or 'none'}",
                        )
                    ],
                    source,
                )
        values: dict[str, ir.Expr] = {}
        for name, value in overrides.items():
            try:
                values[name] = value if isinstance(value, ir.Expr) else ir.literal(value)
            except TypeError:
                raise SpecError(
                    [
                        Diagnostic(
                            "error",
                            "E603",
                            f"cannot use {value!r} as the value of '{name}'",
                            None,
                            "values are numbers, true/false or lists of them, e.g. [32, 32]",
                        )
                    ],
                    source,
                ) from None
        model = model.with_params(values)
    deep = ir.too_deep(model)  # the Python builder may nest deeper than a parsed model
    if deep is not None:
        raise SpecError([deep], source)
    program, diagnostics = resolve(model, included_templates(model, source, allow_outside), max_parameter_memory)
    if program is None or (strict and diagnostics):
        raise SpecError([replace(d, severity="error") for d in diagnostics] if strict else diagnostics, source)
    return Spec(model, program, tuple(diagnostics), source)


def load(
    path: str | os.PathLike,
    *,
    allow_outside: bool = False,
    max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY,
    strict: bool = False,
    **overrides: object,
) -> Spec:
    """Load and check a `.dann` or `.json` file; keyword arguments override the header's parameters; `strict` makes
    warnings errors. Its includes may
    only name files in its own folder or below, unless `allow_outside`. Parameters with the optimiser's state may
    take at most `max_parameter_memory` bytes (2 GiB unless raised).

    >>> load("examples/seed_l2_mlp.dann", hidden=[32, 32]).program.stack("net").parameter_count
    2464
    """
    source = read_source(path)
    return from_ir(
        parse_source(source),
        source,
        allow_outside=allow_outside,
        max_parameter_memory=max_parameter_memory,
        strict=strict,
        **overrides,
    )


def loads(
    text: str,
    filename: str = "<string>",
    *,
    allow_outside: bool = False,
    max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY,
    strict: bool = False,
    **overrides: object,
) -> Spec:
    """Load and check `.dann` text; includes are read relative to the folder of `filename`; `strict` makes warnings
    errors."""
    source = Source(filename, text)
    return from_ir(
        parse(text, filename),
        source,
        allow_outside=allow_outside,
        max_parameter_memory=max_parameter_memory,
        strict=strict,
        **overrides,
    )

"""A loaded, checked model specification: the IR, the checked program and the warnings.

>>> spec = loads("model m()\\ninput x : float[batch, 2]\\ninput y : int[batch] < 3\\n"
...              "stack net { dense 3 softmax }\\nhead p = net(x)\\nloss xent = crossentropy(p, y)\\n"
...              "optimize sgd(lr = 0.1)")
>>> spec.program.stack("net").parameter_count
9
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import ir
from .check import resolve
from .diagnostics import Diagnostic, Source, SpecError, did_you_mean
from .model import CompiledModel
from .parser import parse
from .program import Program


@dataclass(frozen=True)
class Spec:
    model: ir.Model
    program: Program
    warnings: tuple[Diagnostic, ...] = ()
    source: Source | None = None

    def compile(self, mode: str | None = None) -> CompiledModel:
        """Lower to PyTensor and compile the update function. `mode` is a PyTensor mode name
        ("NUMBA", the default; "C"; "FAST_COMPILE"; "JAX" when installed)."""
        return CompiledModel(self.program, mode)


def from_ir(model: ir.Model, source: Source | None = None, **overrides: object) -> Spec:
    """Check an IR model (from any door) with parameter overrides; raises `SpecError` on errors."""
    if overrides:
        known = [p.name for p in model.params]
        for name in overrides:
            if name not in known:
                raise SpecError([Diagnostic("error", "E602", f"the model has no parameter '{name}'", None,
                                            did_you_mean(name, known) or f"parameters: {', '.join(known) or 'none'}")],
                                source)
        values: dict[str, ir.Expr] = {}
        for name, value in overrides.items():
            try:
                values[name] = value if isinstance(value, ir.Node) else ir.literal(value)
            except TypeError:
                raise SpecError([Diagnostic("error", "E603", f"cannot use {value!r} as the value of '{name}'", None,
                                            "values are numbers, true/false or lists of them, e.g. [32, 32]")],
                                source) from None
        model = model.with_params(values)
    program, diagnostics = resolve(model)
    if program is None:
        raise SpecError(diagnostics, source)
    return Spec(model, program, tuple(diagnostics), source)


def read_source(path: str | os.PathLike) -> Source:
    """Read a spec file as UTF-8; unreadable files raise `SpecError`."""
    try:
        return Source(str(path), Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise SpecError([Diagnostic("error", "E001", f"cannot read {path}: {reason}", None,
                                    "check the path")], Source(str(path), "")) from None


def parse_source(source: Source) -> ir.Model:
    """The IR of a source: JSON when the name ends in `.json`, `.dann` text otherwise."""
    if source.name.endswith(".json"):
        from .jsonio import loads_json

        return loads_json(source.text, source.name)
    return parse(source.text, source.name)


def load(path: str | os.PathLike, **overrides: object) -> Spec:
    """Load and check a `.dann` or `.json` file; keyword arguments override the header's parameters.

    >>> load("examples/seed_l2_mlp.dann", hidden=[32, 32]).program.stack("net").parameter_count
    2464
    """
    source = read_source(path)
    return from_ir(parse_source(source), source, **overrides)


def loads(text: str, filename: str = "<string>", **overrides: object) -> Spec:
    """Load and check `.dann` text."""
    source = Source(filename, text)
    return from_ir(parse(text, filename), source, **overrides)

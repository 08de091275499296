"""IR → checked `Program`: apply parameter values, unroll loops, infer shapes and dtypes, and report every
problem as a located diagnostic before anything is compiled. The checks are split by concern (`constants`, `scalars`,
`stacks`, `values`, `losses`, `objective`, `phases`, `lints`); `Checker.PHASES` runs them in order.

>>> from spec_lang.syntax.parser import parse
>>> program, diagnostics = resolve(parse(
...     "model m()\\ninput x : float[batch, 3]\\ninput y : int[batch] < 2\\n"
...     "stack s { dense 2 softmax }\\nloss l = crossentropy(s(x), y)\\noptimize sgd(lr = 0.1)"))
>>> program.stack("s").parameter_count, diagnostics
(8, [])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from spec_lang import program as P
from spec_lang.diagnostics import Diagnostic
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY, MAX_ERRORS
from spec_lang.semantics.base import TooManyErrors
from spec_lang.semantics.lints import Lints
from spec_lang.semantics.templates import instantiate
from spec_lang.syntax import ir


class Checker(Lints):
    """Every concern's checks, run phase by phase; `program()` assembles what they found."""

    def check_definitions(self) -> None:
        self.named = self.definitions()
        self.value_nodes = {n.name: n for n in self.value_declarations()}

    def check_values(self) -> None:
        for node in self.value_declarations():
            value = self.values.get(node.name) or self.attempt(self.define, node)
            if value is not None:
                (self.heads if isinstance(node, ir.Head) else self.lets)[node.name] = value

    def value_declarations(self) -> tuple[ir.Let | ir.Head, ...]:
        """The `let` values and the heads, in order."""
        return (*self.model.lets, *self.model.heads)

    PHASES: tuple[Callable[[Checker], object], ...] = (
        check_definitions,
        Lints.check_params,
        Lints.check_inputs,
        Lints.check_model_inits,
        Lints.plan_stacks,
        check_values,
        Lints.check_losses,
        Lints.check_phases,
        Lints.check_stages,
        Lints.check_seed,
        Lints.check_memory,
    )

    def run(self) -> P.Program | None:
        for phase in self.PHASES:
            phase(self)
        if any(d.severity == "error" for d in self.diagnostics):
            return None
        program = self.program()
        self.warn_unused(program)
        return program

    def program(self) -> P.Program:
        assert self.phases_found is not None and self.stages_found is not None and self.seed_found is not None
        return P.Program(
            name=self.model.name,
            precision=self.model.precision or "float32",
            seed=self.seed_found,
            weights_init=self.model_inits["weights"],
            biases_init=self.model_inits["biases"],
            hypers=self.hypers,
            inputs=self.inputs,
            stacks=tuple(self.stacks[s.name] for s in self.model.stacks if s.name in self.stacks),
            values=self.lets,
            heads=self.heads,
            losses=self.losses,
            phases=self.phases_found,
            settings=self.settings,
            adversarial=frozenset(node.name for node in self.model.losses if node.adversarial),
            stages=self.stages_found,
        )


def resolve(
    model: ir.Model, included: tuple[ir.Template, ...] = (), max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY
) -> tuple[P.Program | None, list[Diagnostic]]:
    """Check a model, with the templates of the files it includes; returns the program (None when there are errors)
    and every diagnostic found. Parameters that would take more than `max_parameter_memory` bytes are an error."""
    checker = Checker(model, max_parameter_memory)
    try:
        checker.model = instantiate(checker, model, included)
        return checker.run(), checker.diagnostics
    except TooManyErrors:  # the rest would take long to find and help little
        last = checker.diagnostics[-1]
        checker.diagnostics[-1] = replace(last, notes=(*last.notes, f"specc stops after {MAX_ERRORS} errors"))
        return None, checker.diagnostics

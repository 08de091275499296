"""Warnings about a program that checks: unused declarations, stacks no loss trains, reversals with no effect, and
(`reversal`) reversals missing from a domain loss or on the label loss's path."""

from __future__ import annotations

from spec_lang import program as P
from spec_lang.semantics.reversal import Reversals
from spec_lang.syntax import ir


class Lints(Reversals):
    def warn_unused(self, program: P.Program) -> None:
        trained = {
            a.stack
            for loss in program.losses.values()
            for v in P.tensors(loss)
            for a in P.ancestors(v, gradient=True)
            if isinstance(a, P.Applied)
        }
        trained |= {s for loss in program.losses.values() for term in P.loss_functions(loss) for s in term.stacks}
        for stack in self.model.stacks:
            if stack.name not in self.used:
                self.warn(
                    "W701",
                    f"stack '{stack.name}' is never used",
                    stack,
                    f"apply it, e.g. {stack.name}(x), or remove it",
                )
            elif stack.name in self.stacks and stack.name not in trained and not self.stacks[stack.name].frozen:
                self.warn(
                    "W706",
                    f"no loss depends on stack '{stack.name}', so training never changes it",
                    stack,
                    "use its output in a loss, or mark it `frozen = true`",
                )
        declared: tuple[ir.Input | ir.Let, ...] = (*self.model.inputs, *self.model.lets)
        for node in declared:
            if node.name not in self.used and node.name not in program.heads:
                kind = "input" if isinstance(node, ir.Input) else "value"
                self.warn("W702", f"{kind} '{node.name}' is never used", node, "use it or remove it")
        for point in P.reversal_points(program):
            if not point.losses:
                self.warn(
                    "W703",
                    "this reversal reaches no loss, so it has no effect on training",
                    point.span,
                    "use the reversed value in a domain loss",
                )
        for name, loss in program.losses.items():
            for term in P.loss_functions(loss):
                for predictions in term.values:
                    if isinstance(predictions, P.Reversed):
                        self.warn(
                            "W705",
                            f"loss '{name}' reads a reversed value directly, so no classifier learns to minimise it",
                            predictions.span,
                            "put a stack between reverse(…) and the loss",
                        )
        self.warn_reversals(program)

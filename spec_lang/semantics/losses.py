"""Losses: each `loss` statement's terms, every loss function checked by its entry in the loss registry."""

from __future__ import annotations

from spec_lang import program as P
from spec_lang.diagnostics import did_you_mean
from spec_lang.library.losses import LOSSES
from spec_lang.semantics.base import leading
from spec_lang.semantics.scalars import VALUE_FUNCTIONS
from spec_lang.semantics.values import Values
from spec_lang.syntax import ir


class Losses(Values):
    def check_losses(self) -> None:
        for node in self.model.losses:
            loss = self.attempt(self.loss, node.value)
            if loss is not None:
                if not P.loss_functions(loss):
                    self.attempt(
                        self.error,
                        "E204",
                        f"loss '{node.name}' contains no loss function",
                        node,
                        f"use one of: {', '.join(LOSSES)}",
                    )
                self.losses[node.name] = loss

    def loss(self, expr: ir.Expr) -> P.Scalar:
        return self.scalar(expr, self.settings, self.loss_function)

    def loss_function(self, expr: ir.Expr) -> P.Scalar:
        if isinstance(expr, ir.Ref) and self.named.get(expr.name, ("",))[0] == "loss":
            self.error(
                "E204",
                f"a loss cannot refer to the loss '{expr.name}'",
                expr,
                "combine losses in `optimize … minimize`",
            )
        if not isinstance(expr, ir.Call) or expr.func not in LOSSES:
            if isinstance(expr, ir.Call) and expr.func not in self.named and expr.func not in VALUE_FUNCTIONS:
                self.error(
                    "E201",
                    f"unknown loss function '{expr.func}'",
                    leading(expr, expr.func),
                    did_you_mean(expr.func, LOSSES) or f"use one of: {', '.join(LOSSES)}",
                )
            if isinstance(expr, ir.Ref):
                self.not_a_number(expr, self.settings)
            self.error(
                "E204",
                "expected a loss function, a number or a parameter",
                expr,
                f"loss functions: {', '.join(LOSSES)}",
            )
        return LOSSES[expr.func].check(self, expr)

    def is_number(self, expr: ir.Expr) -> bool:
        """Whether a loss's second argument is written as a number (a constant label or target), not a tensor."""
        return isinstance(expr, (ir.Number, ir.Neg, ir.BinOp)) or (
            isinstance(expr, ir.Ref) and expr.name in self.settings
        )

    def stack_names(self, call: ir.Call) -> tuple[str, ...]:
        """The stacks a call names by position (a penalty's), every stack of the model when it names none."""
        stacks = []
        for arg in call.args:
            if not isinstance(arg, ir.Ref) or self.named.get(arg.name, ("",))[0] != "stack":
                if isinstance(arg, ir.Ref) and arg.name not in self.named:
                    self.unknown(arg, "stack", [s.name for s in self.model.stacks])
                self.error("E204", f"{call.func} takes stack names", arg, f"e.g. {call.func}(features, label)")
            self.used.add(arg.name)
            stacks.append(arg.name)
        return tuple(stacks) or tuple(s.name for s in self.model.stacks)

"""Constants: numbers, lists and flags known when the model is checked (sizes, loop lists, parameter defaults,
options), the model's parameters, initialisers and the seed."""

from __future__ import annotations

import math
import operator
import sys

from spec_lang import program as P
from spec_lang.diagnostics import did_you_mean
from spec_lang.library.initializers import INITIALIZERS
from spec_lang.semantics.base import CheckerState, leading, show
from spec_lang.syntax import ir

ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
FLOAT_MAX = sys.float_info.max


class Constants(CheckerState):
    def constant(self, expr: ir.Expr, env: dict[str, object]) -> object:
        match expr:
            case ir.Number(value=v) | ir.Bool(value=v):
                return self.finite(v, expr)
            case ir.ListExpr(items=items):
                return [self.constant(i, env) for i in items]
            case ir.Ref(name=name):
                if name in env:
                    self.used.add(name)
                    return env[name]
                self.not_a_number(expr, env)
            case ir.Neg(operand=operand):
                return -self.number(operand, env)
            case ir.BinOp(op=op, left=left, right=right):
                a, b = self.number(left, env), self.number(right, env)
                if op == "/":
                    self.check_divisor(right, b)
                try:
                    result = ARITHMETIC[op](a, b)
                except OverflowError:  # an integer too large for a float, divided or mixed with a float
                    result = math.inf
                return self.finite(result, expr)
            case ir.Call():
                self.error("E204", f"'{expr.func}(…)' is not a constant", expr, "use a number, a list or a parameter")
        raise TypeError(expr)

    def finite(self, value: int | float, expr: ir.Expr) -> int | float:
        """A number a float can hold (not NaN, not infinite, at most about 1.8e308), or an error."""
        if isinstance(value, float) and math.isfinite(value) or isinstance(value, int) and abs(value) <= FLOAT_MAX:
            return value
        shown = f"a number beyond {FLOAT_MAX:.1e}" if isinstance(value, int) else str(value)
        self.error(
            "E601", f"{shown} is not a usable value", expr, f"use a finite number, at most about {FLOAT_MAX:.1e}"
        )

    def check_divisor(self, divisor: ir.Expr, value: float) -> None:
        if value == 0:
            self.error("E601", "division by zero", divisor, "this divisor evaluates to 0")

    def number(self, expr: ir.Expr, env: dict[str, object]) -> int | float:
        value = self.constant(expr, env)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error("E601", f"expected a number, got {show(value)}", expr, "use a number here")
        return value

    def size(self, expr: ir.Expr, env: dict[str, object], what: str) -> int:
        value = self.constant(expr, env)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error("E601", f"{what} must be a whole number, got {show(value)}", expr, "use e.g. 8")
        if value <= 0:
            self.error("E601", f"{what} must be positive, got {value}", expr, "sizes are at least 1")
        return value

    def symbol(self, expr: ir.Expr, choices: tuple[str, ...], what: str) -> str:
        """A word from a fixed set, such as an activation."""
        if not isinstance(expr, ir.Ref) or expr.name not in choices:
            word = expr.name if isinstance(expr, ir.Ref) else "this"
            self.error(
                "E206",
                f"unknown {what} '{word}'",
                expr,
                (did_you_mean(word, choices) if isinstance(expr, ir.Ref) else None)
                or f"use one of: {', '.join(choices)}",
            )
        return expr.name

    def check_params(self) -> None:
        for param in self.model.params:
            value = self.attempt(self.constant, param.default, dict(self.settings))
            if value is None:
                self.failed.add(param.name)
            else:
                self.settings[param.name] = value

    def initializers(self, exprs: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, P.Initializer]:
        """The initialiser each expression names, by role."""
        return {role: self.initializer(expr, env) for role, expr in exprs.items()}

    def initializer(self, expr: ir.Expr, env: dict[str, object]) -> P.Initializer:
        """`zeros`, `glorot_uniform`, `normal(std = 0.1)`, `constant(value = 0.1)`, …"""
        call = ir.Call(expr.name, span=expr.span) if isinstance(expr, ir.Ref) else expr
        if not isinstance(call, ir.Call):
            self.error(
                "E204", "expected an initialiser", expr, "e.g. `zeros`, `constant(value = 0.1)` or `normal(std = 0.1)`"
            )
        known = [name for name in INITIALIZERS if INITIALIZERS[name].public]
        if call.func not in known:
            self.error(
                "E206",
                f"unknown initialiser '{call.func}'",
                leading(call, call.func),
                did_you_mean(call.func, known) or f"use one of: {', '.join(known)}",
            )
        names = INITIALIZERS[call.func].signature.names
        bound = self.bind(call, call, names, (), required=names)
        args = tuple((name, float(self.number(bound[name], env))) for name in names)
        if any(v < 0 for name, v in args if name != "value"):
            self.error("E601", f"{call.func}'s {args[0][0]} must not be negative", expr, "use e.g. 0.1")
        return P.Initializer(call.func, args)

    def check_model_inits(self) -> None:
        """The model's `init`: the initialisers of weights and biases wherever a stack or layer chooses none."""
        init = self.model.init or ir.Init()
        for role, default in (("weights", P.Initializer("glorot_uniform")), ("biases", P.Initializer("zeros"))):
            expr = getattr(init, role)
            chosen = None if expr is None else self.attempt(self.initializer, expr, self.settings)
            self.model_inits[role] = chosen or default

    def check_seed(self) -> None:
        self.seed_found = self.attempt(self.seed)

    def seed(self) -> int:
        if self.model.seed is None:
            return 0
        value = self.constant(self.model.seed, self.settings)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.error(
                "E601", f"the seed must be a whole number ≥ 0, got {show(value)}", self.model.seed, "e.g. seed 1"
            )
        return value

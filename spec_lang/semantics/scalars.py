"""Run-time scalars: numbers, parameters (shared variables), schedules of the training progress and arithmetic
over them, as λ, learning rates and loss weights use them; and their values at points of training."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from spec_lang import program as P
from spec_lang.diagnostics import did_you_mean
from spec_lang.library.losses import LOSSES
from spec_lang.library.schedules import SCHEDULES, constant
from spec_lang.semantics.base import leading, show
from spec_lang.semantics.constants import FLOAT_MAX, Constants
from spec_lang.syntax import ir

FLOAT32_MAX = 3.4028234663852886e38  # the largest float32: run-time parameters are float32 unless `precision float64`
VALUE_FUNCTIONS = ("reverse", "outer", "interpolate")  # built-in functions of tensors; stacks are the others
PROGRESS_POINTS = (0.0, 0.5, 1.0)  # where the checks and the summary evaluate run-time scalars


def evaluate(scalar: P.Scalar, hypers: dict[str, float], progress: float = 0.0) -> float:
    """The value of a run-time scalar made of numbers, parameters (valued by `hypers`), schedules and arithmetic,
    at training progress `progress`; a division by zero gives infinity."""
    match scalar:
        case P.Const(value=v):
            return v
        case P.Hyper(name=name):
            return hypers[name]
        case P.Arith(op="neg", left=left):
            return -evaluate(left, hypers, progress)
        case P.Arith(op=op, left=left, right=right) if right is not None:
            a, b = evaluate(left, hypers, progress), evaluate(right, hypers, progress)
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else math.inf}[op]
        case P.Schedule(name=name, args=args):
            values = [evaluate(a, hypers, progress) for _, a in args]
            with np.errstate(all="ignore"):  # an overflow gives infinity, as the checker's messages show
                return float(SCHEDULES[name].formula(np.float64(progress), *values, xp=np))
    raise TypeError(scalar)


def progression_of(scalar: P.Scalar, hypers: dict[str, float]) -> list[tuple[str, float]]:
    """A run-time scalar's values at the progress points, each with how a message shows it: "-0.5", or
    "-0.5 at progress 1" when the value changes with progress."""
    values = [(p, evaluate(scalar, hypers, p)) for p in PROGRESS_POINTS]
    changes = len({v for _, v in values}) > 1
    return [(f"{v:g} at progress {p:g}" if changes else f"{v:g}", v) for p, v in values]


def is_constant(scalar: P.Scalar) -> bool:
    """Whether a scalar is made of numbers and parameters only, so its value is known now."""
    match scalar:
        case P.Const() | P.Hyper():
            return True
        case P.Arith(left=left, right=right):
            return is_constant(left) and (right is None or is_constant(right))
    return False


class Scalars(Constants):
    def scalar(self, expr: ir.Expr, env: dict[str, object], losses: Callable[[ir.Expr], P.Scalar] | None) -> P.Scalar:
        match expr:
            case ir.Number(value=v):
                self.constant(expr, env)
                return P.Const(float(v))
            case ir.Ref(name=name) if name in self.settings:
                value = self.settings[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    self.error(
                        "E601",
                        f"parameter '{name}' is {show(value)}, not a number",
                        expr,
                        "use a numeric parameter here",
                    )
                if self.model.precision != "float64" and abs(value) > FLOAT32_MAX:
                    self.error(
                        "E601",
                        f"parameter '{name}' is {show(value)}, beyond float32 (about 3.4e38)",
                        expr,
                        "write `precision float64`, or use a smaller value",
                    )
                self.used.add(name)
                self.hypers[name] = float(value)
                return P.Hyper(name)
            case ir.Ref(name=name) if name in env:  # a loop variable
                return P.Const(float(self.number(expr, env)))
            case ir.Neg(operand=operand):
                return P.Arith("neg", self.scalar(operand, env, losses))
            case ir.BinOp(op=op, left=left, right=right):
                a, b = self.scalar(left, env, losses), self.scalar(right, env, losses)
                if op == "/" and is_constant(b):
                    self.check_divisor(right, evaluate(b, self.hypers))
                return P.Arith(op, a, b)
            case ir.Call(func=func) if func in SCHEDULES:
                return self.schedule(expr, env)
            case ir.Call(func=func) if (
                func not in self.named
                and func not in LOSSES
                and (func not in VALUE_FUNCTIONS)
                and (losses is None or did_you_mean(func, SCHEDULES))
            ):
                self.error(
                    "E206",
                    f"unknown schedule '{func}'",
                    leading(expr, func),
                    did_you_mean(func, SCHEDULES) or f"use a number, a parameter or a schedule: {', '.join(SCHEDULES)}",
                )
        if losses is not None:
            return losses(expr)
        if isinstance(expr, ir.Ref):
            self.not_a_number(expr, env)
        self.error("E204", "expected a number or a numeric parameter", expr, "e.g. `lambda = 0.5` or a parameter")

    def schedule(self, call: ir.Call, env: dict[str, object]) -> P.Scalar:
        """A schedule of the training progress: arguments by position or name, defaults filled in, each a number
        or a parameter and not negative; `constant(v)` is v itself."""
        kind = SCHEDULES[call.func]
        bound = self.arguments(call, kind.signature)
        args: list[tuple[str, P.Scalar]] = []
        for name in kind.signature.names:
            default = kind.signature.default(name)
            if name not in bound:
                assert isinstance(default, float)
                args.append((name, P.Const(default)))
                continue
            value = self.scalar(bound[name], env, None)
            if not is_constant(value):
                self.error(
                    "E204",
                    f"{call.func}'s {name} must be a number or a parameter",
                    bound[name],
                    "schedules do not take schedules; e.g. annealed(lr0 = 0.01)",
                )
            number = evaluate(value, self.hypers)
            if name in kind.fractions and number <= 0:
                self.error(
                    "E601",
                    f"{call.func}'s {name} must be above 0, got {number:g}",
                    bound[name],
                    f"{name} is a fraction of training, e.g. {name} = {kind.signature.default(name):g}",
                )
            if number < 0:
                self.error(
                    "E601",
                    f"{call.func}'s {name} must be at least 0, got {number:g}",
                    bound[name],
                    "schedule arguments are values, rates and fractions of training: never negative",
                )
            args.append((name, value))
        # `constant(v)` is v itself, shown and lowered as the number or parameter it is
        return args[0][1] if kind.formula is constant else P.Schedule(call.func, tuple(args))

    def progression(self, scalar: P.Scalar, expr: ir.Expr) -> list[tuple[str, float]]:
        """A run-time scalar's values at the progress points (see `progression_of`); one that is not finite (a
        schedule or arithmetic that overflows) is an error."""
        values = progression_of(scalar, self.hypers)
        infinite = next((shown for shown, value in values if not math.isfinite(value)), None)
        if infinite is not None:
            self.error(
                "E601",
                f"this evaluates to {infinite}, which is not a usable value",
                expr,
                f"use finite numbers, at most about {FLOAT_MAX:.1e}",
            )
        return values

    def reversal_lambda(self, expr: ir.Expr, env: dict[str, object]) -> P.Scalar:
        lam = self.scalar(expr, env, None)
        negative = next((shown for shown, value in self.progression(lam, expr) if value < 0), None)
        if negative is not None:
            self.error(
                "E501",
                f"the reversal's lambda is {negative}; it must be at least 0",
                expr,
                "reverse already flips the gradient's sign; a negative lambda would undo the reversal",
            )
        return lam

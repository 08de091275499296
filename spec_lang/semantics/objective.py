"""The objective and the optimiser: `optimize OPTIMISER(options) minimize …`, and the memory its parameters need."""

from __future__ import annotations

from spec_lang import program as P
from spec_lang.diagnostics import did_you_mean
from spec_lang.diagnostics.limits import format_memory
from spec_lang.library.optimizers import OPTIMIZERS, Option
from spec_lang.semantics.base import Abort, leading, show, with_article
from spec_lang.semantics.losses import Losses
from spec_lang.syntax import ir

OPTION_RANGES = {
    "fraction": ("at least 0 and below 1", lambda v: 0 <= v < 1),
    "positive": ("positive", lambda v: v > 0),
    "non-negative": ("at least 0", lambda v: v >= 0),
}


class Objective(Losses):
    def optimizer(self, opt: ir.Optimize) -> tuple[str, P.Scalar, dict[str, object]]:
        """An optimize statement's optimiser: its name, its learning rate (a run-time scalar, positive during
        training and never negative) and its other options, every one with its value."""
        call = opt.optimizer
        if call.func not in OPTIMIZERS:
            self.error(
                "E206",
                f"unknown optimiser '{call.func}'",
                leading(call, call.func),
                did_you_mean(call.func, OPTIMIZERS) or f"use one of: {', '.join(OPTIMIZERS)}",
            )
        kind = OPTIMIZERS[call.func]
        names = tuple(option.name for option in kind.options)
        bound = self.bind(call, call, (), ("lr", *names), required=() if kind.default_lr is not None else ("lr",))
        if "lr" not in bound:
            assert kind.default_lr is not None
            lr: P.Scalar = P.Const(kind.default_lr)
        else:
            lr = self.scalar(bound["lr"], self.settings, None)
            values = self.progression(lr, bound["lr"])
            bad = next((shown for shown, rate in values if rate < 0), None)
            if bad is not None or all(rate <= 0 for _, rate in values):
                self.error(
                    "E601",
                    f"the learning rate must be positive, got {bad or values[0][0]}",
                    bound["lr"],
                    "use e.g. lr = 0.01",
                )
        options = {
            option.name: self.optimizer_option(call.func, option, bound.get(option.name)) for option in kind.options
        }
        if options.get("nesterov") and not options["momentum"]:
            self.error("E601", "nesterov needs momentum above 0", bound["nesterov"], "add e.g. momentum = 0.9")
        return call.func, lr, options

    def optimizer_option(self, optimizer: str, option: Option, expr: ir.Expr | None) -> object:
        """An optimiser option's value (a number, a parameter or true/false), or its default when not given."""
        name, kind, example = option.name, option.kind, option.example
        if expr is None:
            return option.default
        if kind == "flag":
            flag = self.constant(expr, self.settings)
            if not isinstance(flag, bool):
                self.error("E601", f"{name} is true or false, got {show(flag)}", expr, f"write {name} = {example}")
            return flag
        value = float(self.number(expr, self.settings))
        need, fits = OPTION_RANGES[kind]
        if not fits(value):
            self.error("E601", f"{optimizer}'s {name} must be {need}, got {value:g}", expr, f"e.g. {name} = {example}")
        return value

    def objective(self, opt: ir.Optimize) -> P.Scalar:
        """An optimize statement's objective: its `minimize`, or the sum of all losses."""
        losses = self.losses
        if not self.model.losses:
            self.error(
                "E203",
                "the model has no `loss` statement",
                opt,
                "add e.g. `loss xent = crossentropy(net(x), y)`",
            )
        if not losses:
            raise Abort  # every loss has an error, already reported
        if opt.objective is None:
            total: P.Scalar = P.LossRef(next(iter(losses)))
            for name in list(losses)[1:]:
                total = P.Arith("+", total, P.LossRef(name))
            return total

        def loss_ref(expr: ir.Expr) -> P.Scalar:
            if isinstance(expr, ir.Ref) and expr.name in losses:
                return P.LossRef(expr.name)
            if isinstance(expr, ir.Ref):
                kind = self.named.get(expr.name, ("",))[0]
                if kind == "loss":
                    raise Abort  # the loss's own error is already reported
                if kind:
                    self.error(
                        "E204",
                        f"'{expr.name}' is {with_article(kind)}, not a loss",
                        expr,
                        "`minimize` combines the names of `loss` statements",
                    )
                self.unknown(expr, "loss", [l.name for l in self.model.losses])
            self.error(
                "E204",
                "the objective combines loss names, numbers and parameters",
                expr,
                "declare the term as a `loss` and use its name",
            )

        objective = self.scalar(opt.objective, self.settings, loss_ref)
        if not loss_names(objective):
            self.error("E204", "the objective names no loss", opt.objective, f"e.g. minimize {' + '.join(losses)}")
        return objective

    def warn_unminimized(self, objectives: list[P.Scalar]) -> None:
        """W704 for each loss that no objective names."""
        named = set().union(*map(loss_names, objectives))
        for name in self.losses:
            if name not in named:
                node = next(l for l in self.model.losses if l.name == name)
                self.warn(
                    "W704",
                    f"loss '{name}' is not part of the objective",
                    node,
                    "add it to `minimize`, or remove it (it is still reported by evaluate)",
                )

    def check_memory(self) -> None:
        self.attempt(self.memory)

    def memory(self) -> None:
        """Refuse parameters that, with the optimiser's state, would take more memory than `max_parameter_memory`,
        before any is allocated; the error points at the layer with the most.

        Counted: every parameter (running statistics included) and, for each parameter the optimiser updates
        (trainable, in a stack that is not frozen), the arrays of its shape the optimiser keeps between steps
        (`OptimizerKind.state_arrays`: Adam's two moments, a momentum velocity): what the model holds, and what a
        checkpoint stores. Not counted: what a step computes and drops, its gradients (one more array per updated
        parameter) and its activations (which grow with the batch)."""
        size = 8 if self.model.precision == "float64" else 4
        phases = self.phases_found or ()
        arrays_of = {  # the arrays of each stack's parameter shapes the phases that update it keep
            name: sum(OPTIMIZERS[p.optimizer].state_arrays(p.options) for p in phases if name in p.stacks)
            for name in self.stacks
        }
        layers = [
            (
                sum(p.size for p in layer.params) * size,
                sum(p.size for p in layer.params if p.trainable) * size * arrays_of[name],
                planned.node,
            )
            for name, stack in self.stacks.items()
            for layer, planned in zip(stack.layers, self.stack_plans[name], strict=False)
        ]
        parameters, state = sum(layer[0] for layer in layers), sum(layer[1] for layer in layers)
        total = parameters + state
        if total <= self.max_parameter_memory:
            return
        largest = max(layers, key=lambda layer: layer[0] + layer[1])
        exact = f" ({total:,} bytes)" if total < 10**16 else ""
        enough = -(-total // 2**30)  # GiB, rounded up
        if state:
            what = "the parameters and the optimiser's state need"
            arrays = max(arrays_of.values())
            owner = f"{phases[0].optimizer}'s" if len(phases) == 1 else "the optimisers'"
            parts = (
                f": {format_memory(parameters)} of parameters and {format_memory(state)} of {owner} state "
                f"({arrays} {'array' if arrays == 1 else 'arrays'} the size of each parameter it updates)"
            )
            note = f"this layer's parameters and their optimiser state take {format_memory(largest[0] + largest[1])}"
        else:
            what, parts, note = "the parameters need", "", f"this layer's parameters take {format_memory(largest[0])}"
        self.error(
            "E604",
            f"{what} {format_memory(total)}{exact}{parts}, more than the limit of "
            f"{format_memory(self.max_parameter_memory)}",
            largest[2],
            f"make the layers smaller, or raise the limit: `specc check --max-parameter-memory "
            f"{enough}GiB`, or in Python `spec_lang.load(…, max_parameter_memory={enough} * 2**30)`",
            (note,),
        )


def loss_names(scalar: P.Scalar) -> set[str]:
    if isinstance(scalar, P.Arith):
        return loss_names(scalar.left) | (loss_names(scalar.right) if scalar.right else set())
    return {scalar.name} if isinstance(scalar, P.LossRef) else set()

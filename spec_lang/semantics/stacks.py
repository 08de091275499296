"""Stacks: their layers unrolled and their options checked when declared, their shapes and parameters inferred
when first applied."""

from __future__ import annotations

from spec_lang import program as P
from spec_lang.diagnostics import Diagnostic, did_you_mean
from spec_lang.diagnostics.limits import MAX_LAYERS
from spec_lang.library.layers import LAYERS
from spec_lang.semantics.base import Abort, Planned, StackOptions, leading, show, trailing
from spec_lang.semantics.scalars import Scalars
from spec_lang.syntax import ir

INIT_ROLES = ("weights", "biases")  # the parameter roles a spec initialises: in `init`, a stack's or a layer's options
STACK_OPTIONS = ("lr_mult", "frozen", *INIT_ROLES)
# Other roles start the same way whatever the spec says: a scale at 1, a shift at 0, running statistics at mean 0
# and variance 1.
FIXED_STARTS = {
    "scale": P.Initializer("ones"),
    "shift": P.Initializer("zeros"),
    "mean": P.Initializer("zeros"),
    "variance": P.Initializer("ones"),
}


class Stacks(Scalars):
    def plan_stacks(self) -> None:
        for stack in self.model.stacks:
            if stack.name in self.failed:
                continue  # made from a template, with an error already reported
            plan = self.attempt(self.unroll, stack.layers, dict(self.settings))
            if plan is not None:
                if not plan:
                    self.attempt(
                        self.error, "E601", f"stack '{stack.name}' has no layers", stack, "add e.g. `dense 8 tanh`"
                    )
                    continue
                checked = self.attempt(self.stack_options, stack)
                if checked is not None:
                    self.stack_plans[stack.name] = plan
                    self.options[stack.name], self.stack_inits[stack.name] = checked

    def unroll(self, layers: tuple[ir.Layer, ...], env: dict[str, object]) -> list[Planned]:
        plan: list[Planned] = []
        for layer in layers:
            match layer:
                case ir.Dense(units=units, activation=activation, options=options):
                    word = ir.Ref(activation, span=layer.activation_span or trailing(layer, activation))
                    if options and activation in LAYERS:  # `dense 3`, then a layer call on the next line
                        self.error(
                            "E101",
                            f"a dense layer needs a width and an activation (found '{activation}')",
                            word,
                            f"write e.g. `dense 8 tanh`; activations: {', '.join(ir.ACTIVATIONS)}",
                        )
                    dense = LAYERS["dense"]
                    inits = self.bind(layer, ir.Call("dense", (), options), (), dense.initialised, required=())
                    plan.append(
                        Planned(
                            dense,
                            dense.resolve(self, {"units": units, "activation": word}, env),
                            layer,
                            self.initializers(inits, env),
                        )
                    )
                case ir.LayerCall(kind=kind) if kind in LAYERS and kind != "dense":
                    spec = LAYERS[kind]
                    stray = next(
                        (kw for kw in layer.kwargs if kw.name in INIT_ROLES and kw.name not in spec.initialised), None
                    )
                    if stray is not None:
                        self.error(
                            "E207",
                            f"{kind} has no {stray.name} to initialise",
                            stray,
                            "layers with weights and biases: "
                            + ", ".join(k.name for k in LAYERS.entries() if k.initialised),
                        )
                    bound = self.bind(
                        layer,
                        ir.Call(kind, layer.args, layer.kwargs),
                        spec.positional,
                        spec.keywords + spec.initialised,
                        required=spec.required,
                    )
                    inits = {role: bound.pop(role) for role in spec.initialised if role in bound}
                    plan.append(Planned(spec, spec.resolve(self, bound, env), layer, self.initializers(inits, env)))
                case ir.LayerCall(kind=kind):
                    calls = sorted(k for k in LAYERS if k != "dense")
                    self.error(
                        "E206",
                        f"unknown layer '{kind}'",
                        leading(layer, kind),
                        did_you_mean(kind, [*calls, "dense"])
                        or f"layers are `dense N activation` and {', '.join(f'{k}(…)' for k in calls)}",
                    )
                case ir.ForLayers(var=var, iterable=iterable, body=body):
                    items = self.constant(iterable, env)
                    if not isinstance(items, list):
                        self.error(
                            "E601",
                            f"`for` needs a list, got {show(items)}",
                            iterable,
                            "use a list parameter such as hidden = [8, 6]",
                        )
                    for item in items:
                        plan += self.unroll(body, {**env, var: item})
                        if len(plan) > MAX_LAYERS:  # before unrolling nested loops takes forever
                            self.error(
                                "E605",
                                f"this unrolls to more than {MAX_LAYERS} layers",
                                layer,
                                f"specc compiles networks up to {MAX_LAYERS} layers deep: PyTensor's "
                                "gradient recurses once per layer",
                            )
        return plan

    def stack_options(self, stack: ir.Stack) -> tuple[StackOptions, dict[str, P.Initializer]]:
        """`lr_mult = m` (a number ≥ 0) and `frozen = true|false`; then the initialisers of the stack's weights
        and biases, by role."""
        bound = self.bind(stack, ir.Call(f"stack {stack.name}", (), stack.options), (), STACK_OPTIONS, required=())
        options: StackOptions = {}
        if "lr_mult" in bound:
            lr_mult = float(self.number(bound["lr_mult"], self.settings))
            if lr_mult < 0:
                self.error(
                    "E601",
                    f"lr_mult must be at least 0, got {lr_mult:g}",
                    bound["lr_mult"],
                    "use e.g. lr_mult = 0.1 to train this stack ten times slower, or frozen = true",
                )
            options["lr_mult"] = lr_mult
        if "frozen" in bound:
            frozen = self.constant(bound["frozen"], self.settings)
            if not isinstance(frozen, bool):
                self.error(
                    "E601", f"frozen is true or false, got {show(frozen)}", bound["frozen"], "write frozen = true"
                )
            options["frozen"] = frozen
        return options, self.initializers({role: bound[role] for role in INIT_ROLES if role in bound}, self.settings)

    def build_stack(self, name: str, shape: tuple[int | None, ...], call: ir.Call) -> P.StackDef:
        """Shapes and parameters of every layer, from the shape of the stack's first input."""
        layers: list[P.LayerInstance] = []
        where = f"'{name}' is applied at line {call.span.line}" if call.span else f"'{name}' is applied here"
        for index, planned in enumerate(self.stack_plans[name]):
            try:
                inferred = planned.kind.infer(self, planned.options, shape, planned.node)
            except Abort:
                last = self.diagnostics[-1]
                self.diagnostics[-1] = Diagnostic(
                    last.severity, last.code, last.message, last.span, last.hint, last.notes + (where,)
                )
                raise
            inits = {**FIXED_STARTS, **self.model_inits, **self.stack_inits[name], **planned.inits}
            params = tuple(
                P.ParamSpec(f"{name}.{index}.{suffix}", p_shape, role, inits[role], trainable)
                for suffix, p_shape, role, trainable in inferred.params
            )
            layers.append(
                P.LayerInstance(
                    planned.kind.name,
                    tuple(planned.options.items()),
                    params,
                    shape,
                    inferred.out_shape,
                    inferred.activation,
                    planned.kind.reverses_gradient,
                )
            )
            shape = inferred.out_shape
        node = next(s for s in self.model.stacks if s.name == name)
        return P.StackDef(name, tuple(layers), node.span, **self.options[name])

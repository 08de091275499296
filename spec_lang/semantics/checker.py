"""IR → checked `Program`: apply parameter values, unroll loops, infer shapes and dtypes, and report every
problem as a located diagnostic before anything is compiled.

>>> from spec_lang.syntax.parser import parse
>>> program, diagnostics = resolve(parse(
...     "model m()\\ninput x : float[batch, 3]\\ninput y : int[batch] < 2\\n"
...     "stack s { dense 2 softmax }\\nloss l = crossentropy(s(x), y)\\noptimize sgd(lr = 0.1)"))
>>> program.stack("s").parameter_count, diagnostics
(8, [])
"""

from __future__ import annotations

import math
import operator
import sys
from dataclasses import dataclass, field, replace
from typing import Callable, NoReturn

from spec_lang.syntax import ir
from spec_lang import program as P
from spec_lang.diagnostics import Diagnostic, Span, did_you_mean
from spec_lang.library.layers import LAYERS, LayerKind
from spec_lang.diagnostics.limits import DEFAULT_MAX_PARAMETER_MEMORY, MAX_DEPTH, MAX_ERRORS, MAX_LAYERS, format_memory
from spec_lang.semantics.templates import instantiate

ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
FLOAT_MAX = sys.float_info.max
LOSS_FUNCTIONS = ("crossentropy", "bce", "mse", "entropy", "l2", "l1")
VALUE_FUNCTIONS = ("reverse", "outer")  # built-in functions of tensors; stacks are the others
INITIALIZERS = {"normal": ("std",), "uniform": ("scale",), "glorot_uniform": (), "glorot_normal": (), "he_uniform": (),
                "he_normal": (), "zeros": (), "constant": ("value",)}
# Schedules of the training progress: each argument with its default (None: required). `constant(v)` is v.
SCHEDULES = {"constant": (("value", None),),
             "dann_lambda": (("max", 1.0), ("gamma", 10.0)),
             "warmup": (("max", None), ("until", 0.1)),
             "annealed": (("lr0", None), ("alpha", 10.0), ("beta", 0.75)),
             "step_decay": (("lr0", None), ("factor", 0.1), ("every", 0.3)),
             "cosine": (("lr0", None), ("final", 0.0))}
SCHEDULE_FRACTIONS = ("until", "every")  # schedule arguments that are fractions of training: above 0
# Optimisers: the options of each besides `lr` (a run-time scalar) and `weight_decay`, `clip_norm` (every one's).
OPTIMIZERS = {"sgd": ("momentum", "nesterov"), "adam": ("beta1", "beta2", "epsilon"), "rmsprop": ("rho", "epsilon")}
DEFAULT_LEARNING_RATES = {"adam": 0.001, "rmsprop": 0.001}  # sgd has none: its lr is required
# Every optimiser option but lr, fixed when the model is compiled: (default, kind of value, an example).
OPTIMIZER_OPTIONS = {"momentum": (0.0, "fraction", "0.9"), "nesterov": (False, "flag", "true"),
                     "beta1": (0.9, "fraction", "0.9"), "beta2": (0.999, "fraction", "0.999"),
                     "rho": (0.9, "fraction", "0.9"), "epsilon": (1e-8, "positive", "1e-8"),
                     "weight_decay": (0.0, "non-negative", "1e-4"), "clip_norm": (None, "positive", "1.0")}
OPTION_RANGES = {"fraction": ("at least 0 and below 1", lambda v: 0 <= v < 1),
                 "positive": ("positive", lambda v: v > 0), "non-negative": ("at least 0", lambda v: v >= 0)}
FLOAT32_MAX = 3.4028234663852886e38  # the largest float32: run-time parameters are float32 unless `precision float64`
INIT_ROLES = ("weights", "biases")  # the parameter roles a spec initialises: in `init`, a stack's or a layer's options
STACK_OPTIONS = ("lr_mult", "frozen", *INIT_ROLES)
# Other roles start the same way whatever the spec says: a scale at 1, a shift at 0, running statistics at mean 0
# and variance 1.
FIXED_STARTS = {"scale": P.Initializer("ones"), "shift": P.Initializer("zeros"), "mean": P.Initializer("zeros"),
                "variance": P.Initializer("ones")}
# What to do about an unknown name when there is nothing close to suggest, by the kind of name expected.
HOW_TO_DEFINE = {"parameter": "declare it in the model's header, e.g. `model m(width = 8)`",
                 "name": "declare it with `input`, `let` or `head`",
                 "stack": "declare it with `stack NAME { … }`", "loss": "declare it with `loss NAME = …`"}


class _TooManyErrors(Exception):
    """Stops checking altogether once `MAX_ERRORS` errors are recorded."""


class _Abort(Exception):
    """Stops checking one declaration after its error was recorded; the checker moves to the next."""


@dataclass(frozen=True)
class _Planned:
    """A layer of a declared stack with its options checked; shapes come when the stack is first applied."""

    kind: LayerKind
    options: dict[str, object]
    node: ir.Node
    inits: dict[str, P.Initializer]  # the initialisers the layer's options choose, by role


@dataclass
class _Checker:
    model: ir.Model
    max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY  # bytes
    diagnostics: list[Diagnostic] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)
    hypers: dict[str, float] = field(default_factory=dict)
    stacks: dict[str, P.StackDef] = field(default_factory=dict)
    stack_inputs: dict[str, tuple[tuple[int | None, ...], Span | None]] = field(default_factory=dict)
    stack_plans: dict[str, list[_Planned]] = field(default_factory=dict)
    options: dict[str, dict[str, object]] = field(default_factory=dict)  # each stack's checked options
    stack_inits: dict[str, dict[str, P.Initializer]] = field(default_factory=dict)  # initialisers stacks choose
    model_inits: dict[str, P.Initializer] = field(default_factory=dict)  # the model's `init`, with defaults
    values: dict[str, P.Value] = field(default_factory=dict)
    resolving: list[str] = field(default_factory=list)
    depths: dict[int, int] = field(default_factory=dict)  # by id: the layers on each value's longest path from an input
    used: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)  # parameters, values and stacks whose error is already reported

    # diagnostics
    def error(self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None,
              notes: tuple[str, ...] = ()) -> NoReturn:
        self.diagnostics.append(Diagnostic("error", code, message, _where(node), hint, notes))
        if sum(d.severity == "error" for d in self.diagnostics) >= MAX_ERRORS:
            raise _TooManyErrors
        raise _Abort

    def warn(self, code: str, message: str, node: ir.Node | Span | None, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic("warning", code, message, _where(node), hint))

    def attempt(self, action: Callable[[], object]) -> object | None:
        try:
            return action()
        except _Abort:
            return None

    # names
    def definitions(self) -> dict[str, tuple[str, ir.Node]]:
        found: dict[str, tuple[str, ir.Node]] = {}
        m = self.model
        groups = [("parameter", m.params), ("input", m.inputs), ("stack", m.stacks), ("value", m.lets),
                  ("head", m.heads), ("loss", m.losses)]
        for kind, nodes in groups:
            for node in nodes:
                if node.name in found:
                    other_kind, other = found[node.name]
                    line = f" at line {other.span.line}" if other.span else ""
                    self.attempt(lambda: self.error("E202", f"'{node.name}' is defined twice", node,
                                                    f"rename one of them; the {other_kind} '{node.name}' "
                                                    f"is defined{line}"))
                else:
                    found[node.name] = (kind, node)
        return found

    def unknown(self, ref: ir.Ref, expected: str, candidates: list[str]) -> NoReturn:
        candidates = list(dict.fromkeys(candidates))
        self.error("E201", f"unknown {expected} '{ref.name}'", ref,
                   did_you_mean(ref.name, candidates)
                   or (f"define it, or use one of: {_some(candidates)}" if candidates else HOW_TO_DEFINE[expected]))

    def not_a_number(self, ref: ir.Ref, env: dict[str, object]) -> NoReturn:
        """A name used where a number is expected that is not a usable parameter (or loop variable)."""
        kind = self.named.get(ref.name, ("",))[0]
        if kind == "parameter":
            if ref.name in self.failed:
                raise _Abort  # its default has an error, already reported
            self.error("E205", f"parameter '{ref.name}' is used before it is declared", ref,
                       "a parameter's default may only use the parameters declared before it")
        if kind:
            self.error("E204", f"'{ref.name}' is {_a(kind)}, not a number", ref,
                       "use a number or a model parameter here")
        self.unknown(ref, "parameter", list(env))

    # constants: sizes, loop lists, parameter defaults
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
        self.error("E601", f"{shown} is not a usable value", expr,
                   f"use a finite number, at most about {FLOAT_MAX:.1e}")

    def check_divisor(self, divisor: ir.Expr, value: float) -> None:
        if value == 0:
            self.error("E601", "division by zero", divisor, "this divisor evaluates to 0")

    def number(self, expr: ir.Expr, env: dict[str, object]) -> int | float:
        value = self.constant(expr, env)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.error("E601", f"expected a number, got {_show(value)}", expr, "use a number here")
        return value

    def size(self, expr: ir.Expr, env: dict[str, object], what: str) -> int:
        value = self.constant(expr, env)
        if isinstance(value, bool) or not isinstance(value, int):
            self.error("E601", f"{what} must be a whole number, got {_show(value)}", expr, "use e.g. 8")
        if value <= 0:
            self.error("E601", f"{what} must be positive, got {value}", expr, "sizes are at least 1")
        return value

    # parameters and inputs
    def check_params(self) -> None:
        for param in self.model.params:
            value = self.attempt(lambda: self.constant(param.default, dict(self.settings)))
            if value is None:
                self.failed.add(param.name)
            else:
                self.settings[param.name] = value

    def check_inputs(self) -> tuple[P.InputValue, ...]:
        inputs = []
        for node in self.model.inputs:
            made = self.attempt(lambda: self.make_input(node))
            if made is not None:
                inputs.append(made)
                self.values[node.name] = made
        return tuple(inputs)

    def make_input(self, node: ir.Input) -> P.InputValue:
        if node.dtype not in ir.DTYPES:
            self.error("E206", f"unknown dtype '{node.dtype}'", node,
                       did_you_mean(node.dtype, ir.DTYPES) or "use float or int")
        if not node.shape:
            self.error("E301", f"input '{node.name}' has no dimensions", node, "write e.g. float[batch, 2]")
        first, *rest = node.shape  # only the leading (batch) dimension may be symbolic
        symbolic = isinstance(first, ir.Ref) and first.name not in self.settings
        shape = (None if symbolic else self.size(first, self.settings, "a dimension"),
                 *(self.size(d, self.settings, "a dimension") for d in rest))
        bound = None
        if node.bound is not None:
            if node.dtype != "int":
                self.error("E401", "only integer inputs take a label bound `< N`", node.bound,
                           "declare labels as e.g. `int[batch] < 10`")
            bound = self.size(node.bound, self.settings, "the label bound")
        return P.InputValue(node.name, P.TensorType(node.dtype, shape), bound)

    # stacks: unrolled when declared, sized when first applied
    def plan_stacks(self) -> None:
        for stack in self.model.stacks:
            if stack.name in self.failed:
                continue  # made from a template, with an error already reported
            plan = self.attempt(lambda: self.unroll(stack.layers, dict(self.settings)))
            if plan is not None:
                if not plan:
                    self.attempt(lambda: self.error("E601", f"stack '{stack.name}' has no layers", stack,
                                                    "add e.g. `dense 8 tanh`"))
                    continue
                checked = self.attempt(lambda: self.stack_options(stack))
                if checked is not None:
                    self.stack_plans[stack.name] = plan
                    self.options[stack.name], self.stack_inits[stack.name] = checked

    def unroll(self, layers: tuple[ir.Layer, ...], env: dict[str, object]) -> list[_Planned]:
        plan: list[_Planned] = []
        for layer in layers:
            match layer:
                case ir.Dense(units=units, activation=activation, options=options):
                    word = ir.Ref(activation, span=_trailing(layer, activation))
                    dense = LAYERS["dense"]
                    inits = self.bind(layer, ir.Call("dense", (), options), (), dense.initialised, required=())
                    plan.append(_Planned(dense, dense.resolve(self, {"units": units, "activation": word}, env), layer,
                                         self.initializers(inits, env)))
                case ir.LayerCall(kind=kind) if kind in LAYERS and kind != "dense":
                    spec = LAYERS[kind]
                    stray = next((kw for kw in layer.kwargs
                                  if kw.name in INIT_ROLES and kw.name not in spec.initialised), None)
                    if stray is not None:
                        self.error("E207", f"{kind} has no {stray.name} to initialise", stray,
                                   "layers with weights and biases: "
                                   + ", ".join(k for k, v in LAYERS.items() if v.initialised))
                    bound = self.bind(layer, ir.Call(kind, layer.args, layer.kwargs), spec.positional,
                                      spec.keywords + spec.initialised, required=spec.required)
                    inits = {role: bound.pop(role) for role in spec.initialised if role in bound}
                    plan.append(_Planned(spec, spec.resolve(self, bound, env), layer, self.initializers(inits, env)))
                case ir.LayerCall(kind=kind):
                    calls = sorted(k for k in LAYERS if k != "dense")
                    self.error("E206", f"unknown layer '{kind}'", _leading(layer, kind),
                               did_you_mean(kind, [*calls, "dense"])
                               or f"layers are `dense N activation` and {', '.join(f'{k}(…)' for k in calls)}")
                case ir.ForLayers(var=var, iterable=iterable, body=body):
                    items = self.constant(iterable, env)
                    if not isinstance(items, list):
                        self.error("E601", f"`for` needs a list, got {_show(items)}", iterable,
                                   "use a list parameter such as hidden = [8, 6]")
                    for item in items:
                        plan += self.unroll(body, {**env, var: item})
                        if len(plan) > MAX_LAYERS:  # before unrolling nested loops takes forever
                            self.error("E605", f"this unrolls to more than {MAX_LAYERS} layers", layer,
                                       f"specc compiles networks up to {MAX_LAYERS} layers deep: PyTensor's "
                                       "gradient recurses once per layer")
        return plan

    def symbol(self, expr: ir.Expr, choices: tuple[str, ...], what: str) -> str:
        """A word from a fixed set, such as an activation."""
        if not isinstance(expr, ir.Ref) or expr.name not in choices:
            word = expr.name if isinstance(expr, ir.Ref) else "this"
            self.error("E206", f"unknown {what} '{word}'", expr,
                       (did_you_mean(word, choices) if isinstance(expr, ir.Ref) else None)
                       or f"use one of: {', '.join(choices)}")
        return expr.name

    def apply_stack(self, name: str, arg_expr: ir.Expr, call: ir.Call) -> P.Applied:
        arg = self.value(arg_expr)
        plan = self.stack_plans.get(name)
        if plan is None:
            raise _Abort  # the stack's own error is already reported
        if arg.type.dtype != "float":
            self.error("E401", f"stack '{name}' needs a float input, got {arg.type}", arg_expr,
                       "stacks take float features; integer inputs are labels")
        shape = arg.type.shape
        if name not in self.stack_inputs:
            self.stack_inputs[name] = (shape, call.span)
            self.stacks[name] = self.build_stack(name, shape, call)
        if name not in self.stacks:
            raise _Abort  # its layers did not fit its first input, already reported
        first_shape, first_span = self.stack_inputs[name]
        if shape != first_shape:
            where = f" at line {first_span.line}" if first_span else ""
            self.error("E301", f"stack '{name}' takes inputs of shape {P.TensorType('float', first_shape)}, "
                               f"but this one is {arg.type}", arg_expr,
                       "a stack shares its weights across applications, so every input needs the same shape",
                       (f"'{name}' was first applied to {P.TensorType('float', first_shape)}{where}",))
        if plan[0].kind.name == "reverse":
            self.check_reversal(arg, call, (f"the first layer of stack '{name}' is reverse(…)",))
        stack = self.stacks[name]
        activation = next((l.activation for l in reversed(stack.layers) if l.activation), arg.activation)
        return self.layered(P.Applied(name, arg, P.TensorType("float", stack.layers[-1].out_shape), activation,
                                      call.span), call)

    def build_stack(self, name: str, shape: tuple[int | None, ...], call: ir.Call) -> P.StackDef:
        """Shapes and parameters of every layer, from the shape of the stack's first input."""
        layers: list[P.LayerInstance] = []
        where = f"'{name}' is applied at line {call.span.line}" if call.span else f"'{name}' is applied here"
        for index, planned in enumerate(self.stack_plans[name]):
            try:
                inferred = planned.kind.infer(self, planned.options, shape, planned.node)
            except _Abort:
                last = self.diagnostics[-1]
                self.diagnostics[-1] = Diagnostic(last.severity, last.code, last.message, last.span, last.hint,
                                                  last.notes + (where,))
                raise
            inits = {**FIXED_STARTS, **self.model_inits, **self.stack_inits[name], **planned.inits}
            params = tuple(P.ParamSpec(f"{name}.{index}.{suffix}", p_shape, role, inits[role], trainable)
                           for suffix, p_shape, role, trainable in inferred.params)
            layers.append(P.LayerInstance(planned.kind.name, tuple(planned.options.items()), params, shape,
                                          inferred.out_shape, inferred.activation))
            shape = inferred.out_shape
        node = next(s for s in self.model.stacks if s.name == name)
        return P.StackDef(name, tuple(layers), node.span, **self.options[name])

    def stack_options(self, stack: ir.Stack) -> tuple[dict[str, object], dict[str, P.Initializer]]:
        """`lr_mult = m` (a number ≥ 0) and `frozen = true|false`; then the initialisers of the stack's weights
        and biases, by role."""
        bound = self.bind(stack, ir.Call(f"stack {stack.name}", (), stack.options), (), STACK_OPTIONS, required=())
        options: dict[str, object] = {}
        if "lr_mult" in bound:
            options["lr_mult"] = float(self.number(bound["lr_mult"], self.settings))
            if options["lr_mult"] < 0:
                self.error("E601", f"lr_mult must be at least 0, got {options['lr_mult']:g}", bound["lr_mult"],
                           "use e.g. lr_mult = 0.1 to train this stack ten times slower, or frozen = true")
        if "frozen" in bound:
            frozen = self.constant(bound["frozen"], self.settings)
            if not isinstance(frozen, bool):
                self.error("E601", f"frozen is true or false, got {_show(frozen)}", bound["frozen"],
                           "write frozen = true")
            options["frozen"] = frozen
        return options, self.initializers({role: bound[role] for role in INIT_ROLES if role in bound}, self.settings)

    # run-time scalars
    def scalar(self, expr: ir.Expr, env: dict[str, object], losses: Callable[[ir.Expr], P.Scalar] | None) -> P.Scalar:
        match expr:
            case ir.Number(value=v):
                self.constant(expr, env)
                return P.Const(float(v))
            case ir.Ref(name=name) if name in self.settings:
                value = self.settings[name]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    self.error("E601", f"parameter '{name}' is {_show(value)}, not a number", expr,
                               "use a numeric parameter here")
                if self.model.precision != "float64" and abs(value) > FLOAT32_MAX:
                    self.error("E601", f"parameter '{name}' is {_show(value)}, beyond float32 (about 3.4e38)", expr,
                               "write `precision float64`, or use a smaller value")
                self.used.add(name)
                self.hypers[name] = float(value)
                return P.Hyper(name)
            case ir.Ref(name=name) if name in env:  # a loop variable
                return P.Const(float(self.number(expr, env)))
            case ir.Neg(operand=operand):
                return P.Arith("neg", self.scalar(operand, env, losses))
            case ir.BinOp(op=op, left=left, right=right):
                result = P.Arith(op, self.scalar(left, env, losses), self.scalar(right, env, losses))
                if op == "/" and _is_constant(result.right):
                    self.check_divisor(right, P.evaluate(result.right, self.hypers))
                return result
            case ir.Call(func=func) if func in SCHEDULES:
                return self.schedule(expr, env)
            case ir.Call(func=func) if func not in self.named and func not in LOSS_FUNCTIONS and (
                    func not in VALUE_FUNCTIONS) and (
                    losses is None or did_you_mean(func, SCHEDULES)):
                self.error("E206", f"unknown schedule '{func}'", _leading(expr, func),
                           did_you_mean(func, SCHEDULES)
                           or f"use a number, a parameter or a schedule: {', '.join(SCHEDULES)}")
        if losses is not None:
            return losses(expr)
        if isinstance(expr, ir.Ref):
            self.not_a_number(expr, env)
        self.error("E204", "expected a number or a numeric parameter", expr, "e.g. `lambda = 0.5` or a parameter")

    def check_reversal(self, arg: P.Value, where: ir.Node, notes: tuple[str, ...] = ()) -> None:
        """Reject the reversals that cannot work: of a value that is already reversed, or of one with no parameters
        upstream (an input), whose gradient reaches nothing trainable."""
        if _ends_reversed(arg, self.stacks):
            self.error("E501", "this value is reversed twice, which cancels the reversal", where,
                       "reverse once, just before the domain classifier", notes)
        if not _has_parameters(arg):
            self.error("E501", "nothing before this reversal has parameters, so reversing has no effect", where,
                       "reverse the output of the shared feature extractor, e.g. reverse(features(x), …)", notes)

    def schedule(self, call: ir.Call, env: dict[str, object]) -> P.Scalar:
        """A schedule of the training progress: arguments by position or name, defaults filled in, each a number
        or a parameter and not negative; `constant(v)` is v itself."""
        signature = SCHEDULES[call.func]
        names = tuple(name for name, _ in signature)
        bound = self.bind(call, call, names, (), required=tuple(n for n, default in signature if default is None))
        args: list[tuple[str, P.Scalar]] = []
        for name, default in signature:
            if name not in bound:
                args.append((name, P.Const(default)))
                continue
            value = self.scalar(bound[name], env, None)
            if not _is_constant(value):
                self.error("E204", f"{call.func}'s {name} must be a number or a parameter", bound[name],
                           "schedules do not take schedules; e.g. annealed(lr0 = 0.01)")
            number = P.evaluate(value, self.hypers)
            if name in SCHEDULE_FRACTIONS and number <= 0:
                self.error("E601", f"{call.func}'s {name} must be above 0, got {number:g}", bound[name],
                           f"{name} is a fraction of training, e.g. {name} = {default:g}")
            if number < 0:
                self.error("E601", f"{call.func}'s {name} must be at least 0, got {number:g}", bound[name],
                           "schedule arguments are values, rates and fractions of training: never negative")
            args.append((name, value))
        return args[0][1] if call.func == "constant" else P.Schedule(call.func, tuple(args))

    def progression(self, scalar: P.Scalar, expr: ir.Expr) -> list[tuple[str, float]]:
        """A run-time scalar's values at the progress points (see `_progression`); one that is not finite (a
        schedule or arithmetic that overflows) is an error."""
        values = _progression(scalar, self.hypers)
        infinite = next((shown for shown, value in values if not math.isfinite(value)), None)
        if infinite is not None:
            self.error("E601", f"this evaluates to {infinite}, which is not a usable value", expr,
                       f"use finite numbers, at most about {FLOAT_MAX:.1e}")
        return values

    def reversal_lambda(self, expr: ir.Expr, env: dict[str, object]) -> P.Scalar:
        lam = self.scalar(expr, env, None)
        negative = next((shown for shown, value in self.progression(lam, expr) if value < 0), None)
        if negative is not None:
            self.error("E501", f"the reversal's lambda is {negative}; it must be at least 0", expr,
                       "reverse already flips the gradient's sign; a negative lambda would undo the reversal")
        return lam

    # tensor values
    def value(self, expr: ir.Expr) -> P.Value:
        match expr:
            case ir.Ref(name=name):
                self.used.add(name)
                if name in self.values:
                    return self.values[name]
                definition = self.named.get(name)
                if definition is None:
                    self.unknown(expr, "name", [*self.values, *self.value_nodes])
                kind, node = definition
                if kind in ("value", "head"):
                    return self.define(node)
                if kind == "stack":
                    self.error("E204", f"'{name}' is a stack, not a value", expr, f"apply it: {name}(x)")
                if kind == "input":
                    raise _Abort  # its declaration had an error
                self.error("E204", f"'{name}' is a {kind}, not a tensor", expr,
                           "tensors are inputs, `let` values and heads")
            case ir.Call(func="reverse"):
                bound = self.bind(expr, expr, ("value",), ("lambda",), required=("value", "lambda"))
                arg = self.value(bound["value"])
                if arg.type.dtype != "float":
                    self.error("E401", f"reverse needs a float tensor, got {arg.type}", bound["value"],
                               "gradient reversal applies to features, not to labels")
                self.check_reversal(arg, expr)
                lam = self.reversal_lambda(bound["lambda"], self.settings)
                return self.layered(P.Reversed(arg, lam, arg.type, arg.activation, expr.span), expr)
            case ir.Call(func="outer"):
                return self.outer(expr)
            case ir.Call(func=func) if func in self.stack_plans or self.named.get(func, ("",))[0] == "stack":
                self.used.add(func)
                bound = self.bind(expr, expr, ("value",), (), required=("value",))
                return self.apply_stack(func, bound["value"], expr)
            case ir.Call(func=func) if func in LOSS_FUNCTIONS:
                self.error("E204", f"{func}(…) is a loss, not a tensor", expr, "use it in a `loss` statement")
            case ir.Call(func=func):
                self.error("E201", f"unknown stack or function '{func}'", _leading(expr, func),
                           did_you_mean(func, [*self.stack_plans, *VALUE_FUNCTIONS]) or "define it with `stack`")
        self.error("E204", "expected a tensor (an input, a value, or a stack applied to one)", expr,
                   "arithmetic on tensors is not part of the language; use stacks and losses")

    def outer(self, expr: ir.Call) -> P.Outer:
        """`outer(features, predictions)`: two [batch, n] float tensors computed from the same batch."""
        bound = self.bind(expr, expr, ("features", "predictions"), (), required=("features", "predictions"))
        features, predictions = self.value(bound["features"]), self.value(bound["predictions"])
        for value, arg in ((features, bound["features"]), (predictions, bound["predictions"])):
            if value.type.dtype != "float":
                self.error("E401", f"outer needs float tensors, got {value.type}", arg,
                           "outer conditions features on predictions, e.g. outer(fs, label(fs))")
            if len(value.type.shape) != 2:
                self.error("E301", f"outer needs [batch, n] tensors, got {value.type}", arg,
                           "flatten image features first, or apply a stack that ends in a dense layer")
        sources = [sorted(i.name for i in P.inputs_of(v)) for v in (features, predictions)]
        if sources[0] != sources[1]:
            self.error("E301", f"outer pairs the rows of one batch, but the features are computed from "
                               f"{', '.join(sources[0])} and the predictions from {', '.join(sources[1])}", expr,
                       "condition each batch's features on that batch's predictions, e.g. outer(ft, label(ft))")
        width = features.type.shape[1] * predictions.type.shape[1]
        return self.layered(P.Outer(features, predictions, P.TensorType("float", (features.type.shape[0], width)),
                                    span=expr.span), expr)

    def layered(self, value: P.Value, where: ir.Node) -> P.Value:
        """A new value, with the number of layers on its longest path from an input recorded; past `MAX_LAYERS`, an
        error (compiling it would exhaust Python's recursion limit)."""
        added = len(self.stacks[value.stack].layers) if isinstance(value, P.Applied) else 1
        depth = max(self.depths.get(id(parent), 0) for parent in P.parents(value)) + added
        if depth > MAX_LAYERS:
            self.error("E605", f"this is {depth} layers deep on its longest path from an input", where,
                       f"specc compiles networks up to {MAX_LAYERS} layers deep: PyTensor's gradient recurses once "
                       "per layer")
        self.depths[id(value)] = depth
        return value

    def define(self, node: ir.Let | ir.Head) -> P.Value:
        if node.name in self.failed:
            raise _Abort  # its error is already reported
        if node.name in self.resolving:
            cycle = " → ".join(self.resolving[self.resolving.index(node.name):] + [node.name])
            self.error("E205", f"'{node.name}' is defined in terms of itself ({cycle})", node,
                       "a value may only use inputs and values that do not depend on it")
        if len(self.resolving) >= MAX_DEPTH:  # checking each value that one uses recurses
            self.error("E108", f"'{node.name}' is reached through more than {MAX_DEPTH} values that each use "
                               "one declared after them", node, "declare each value after the values it uses")
        self.resolving.append(node.name)
        try:
            result = self.value(node.value)
        except _Abort:
            self.failed.add(node.name)
            raise
        finally:
            self.resolving.pop()
        self.values[node.name] = result
        return result

    # losses
    def loss(self, expr: ir.Expr) -> P.Scalar:
        return self.scalar(expr, self.settings, self.loss_function)

    def loss_function(self, expr: ir.Expr) -> P.Scalar:
        if isinstance(expr, ir.Ref) and self.named.get(expr.name, ("",))[0] == "loss":
            self.error("E204", f"a loss cannot refer to the loss '{expr.name}'", expr,
                       "combine losses in `optimize … minimize`")
        if not isinstance(expr, ir.Call) or expr.func not in LOSS_FUNCTIONS:
            if isinstance(expr, ir.Call) and expr.func not in self.named and expr.func not in VALUE_FUNCTIONS:
                self.error("E201", f"unknown loss function '{expr.func}'", _leading(expr, expr.func),
                           did_you_mean(expr.func, LOSS_FUNCTIONS) or f"use one of: {', '.join(LOSS_FUNCTIONS)}")
            if isinstance(expr, ir.Ref):
                self.not_a_number(expr, self.settings)
            self.error("E204", "expected a loss function, a number or a parameter", expr,
                       f"loss functions: {', '.join(LOSS_FUNCTIONS)}")
        if expr.func in ("l1", "l2"):
            return self.penalty(expr)
        if expr.func == "entropy":
            return self.entropy(expr)
        bound = self.bind(expr, expr, ("predictions", "target"), (), required=("predictions", "target"))
        predictions = self.value(bound["predictions"])
        target_expr = bound["target"]
        if predictions.type.dtype != "float":
            self.error("E401", f"{expr.func} needs float predictions, got {predictions.type}", bound["predictions"],
                       "pass the output of a stack")
        if expr.func == "crossentropy":
            return self.crossentropy(expr, predictions, target_expr)
        if expr.func == "bce":
            self.need_activation(predictions, "sigmoid", bound["predictions"], "bce")
            if self.is_number(target_expr):
                target_value = self.number(target_expr, self.settings)
                if target_value not in (0, 1):
                    self.error("E601", f"a constant bce target must be 0 or 1, got {_show(target_value)}",
                               target_expr, "use 0 for the source domain and 1 for the target domain")
                return P.BinaryCrossEntropy(predictions, float(target_value))
            target = self.value(target_expr)
            self.same_shape(predictions, target, target_expr, "bce")
            return P.BinaryCrossEntropy(predictions, target)
        target = self.value(target_expr)
        if target.type.dtype != "float":
            self.error("E401", f"mse needs a float target, got {target.type}", target_expr,
                       "declare the target as float")
        self.same_shape(predictions, target, target_expr, "mse")
        return P.MeanSquaredError(predictions, target)

    def is_number(self, expr: ir.Expr) -> bool:
        """Whether a loss's second argument is written as a number (a constant label or target), not a tensor."""
        return (isinstance(expr, (ir.Number, ir.Neg, ir.BinOp))
                or (isinstance(expr, ir.Ref) and expr.name in self.settings))

    def crossentropy(self, expr: ir.Call, predictions: P.Value, labels_expr: ir.Expr) -> P.CrossEntropy:
        self.need_activation(predictions, "softmax", expr.args[0] if expr.args else expr, "crossentropy")
        classes = predictions.type.shape[-1]
        if self.is_number(labels_expr):
            label = self.number(labels_expr, self.settings)
            if not isinstance(label, int) or label < 0:
                self.error("E601", f"a constant class label is a whole number ≥ 0, got {_show(label)}", labels_expr,
                           "give the class of every row, e.g. 0 for the source domain")
            if label >= classes:
                self.error("E302", f"class {label} is out of range: the predictions have {classes} classes "
                                   f"(0 to {classes - 1})", labels_expr,
                           f"use a class below {classes}, or make the last layer `dense {label + 1} softmax`")
            return P.CrossEntropy(predictions, label)
        labels = self.value(labels_expr)
        if labels.type.dtype != "int" or len(labels.type.shape) != 1:
            self.error("E401", f"crossentropy needs integer class labels int[batch], got {labels.type}",
                       labels_expr, "declare the labels as e.g. `input y : int[batch] < 10`, or give one class "
                                    "for every row, e.g. 0")
        if isinstance(labels, P.InputValue) and labels.bound is not None and labels.bound != classes:
            self.error("E302", f"the predictions have {classes} classes, but '{labels.name}' holds labels "
                               f"below {labels.bound}", expr,
                       f"make the last layer `dense {labels.bound} softmax`, or change the bound of '{labels.name}'")
        return P.CrossEntropy(predictions, labels)

    def entropy(self, expr: ir.Call) -> P.Entropy:
        """`entropy(p)`: one argument, probabilities from a softmax layer."""
        bound = self.bind(expr, expr, ("predictions",), (), required=("predictions",))
        predictions = self.value(bound["predictions"])
        self.need_activation(predictions, "softmax", bound["predictions"], "entropy")
        return P.Entropy(predictions)

    def need_activation(self, value: P.Value, activation: str, where: ir.Expr | ir.Node, func: str) -> None:
        if value.activation != activation:
            got = value.activation or "no activation"
            self.error("E401", f"{func} expects probabilities from a {activation} layer, got {got}", where,
                       f"end the stack with `dense N {activation}`")

    def same_shape(self, predictions: P.Value, target: P.Value, where: ir.Expr, func: str) -> None:
        a, b = predictions.type.shape, target.type.shape
        if len(a) != len(b) or a[-1] != b[-1]:
            self.error("E301", f"{func}: predictions are {predictions.type} but the target is {target.type}",
                       where, "the target needs the predictions' shape")

    def penalty(self, expr: ir.Call) -> P.Penalty:
        stacks = []
        for arg in expr.args:
            if not isinstance(arg, ir.Ref) or self.named.get(arg.name, ("",))[0] != "stack":
                if isinstance(arg, ir.Ref) and arg.name not in self.named:
                    self.unknown(arg, "stack", [s.name for s in self.model.stacks])
                self.error("E204", f"{expr.func} takes stack names", arg, f"e.g. {expr.func}(features, label)")
            self.used.add(arg.name)
            stacks.append(arg.name)
        bound = self.bind(expr, ir.Call(expr.func, (), expr.kwargs), (), ("biases",), required=())
        biases = bound.get("biases", ir.Bool(True))
        if not isinstance(biases, ir.Bool):
            self.error("E601", "`biases` is true or false", biases, "biases = false penalises weights only")
        return P.Penalty(expr.func, tuple(stacks) or tuple(s.name for s in self.model.stacks), biases.value)

    # calls
    def bind(self, node: ir.Node, call: ir.Call, positional: tuple[str, ...], keywords: tuple[str, ...],
             required: tuple[str, ...]) -> dict[str, ir.Expr]:
        """Match a call's arguments to parameter names: too many, unknown, duplicate and missing ones are errors."""
        if len(call.args) > len(positional):
            signature = ", ".join([*positional, *(f"{k} = …" for k in keywords)])
            self.error("E207", f"{call.func} takes {_count(len(positional), 'positional argument')}, "
                               f"got {len(call.args)}",
                       call.args[len(positional)], f"write {call.func}({signature})")
        bound: dict[str, ir.Expr] = dict(zip(positional, call.args))
        for kw in call.kwargs:
            if kw.name not in positional + keywords:
                self.error("E207", f"{call.func} has no argument '{kw.name}'", kw,
                           did_you_mean(kw.name, positional + keywords)
                           or f"{call.func} takes: {', '.join(positional + keywords) or 'nothing'}")
            if kw.name in bound:
                self.error("E207", f"argument '{kw.name}' is given twice", kw, "give each argument once")
            bound[kw.name] = kw.value
        missing = [name for name in required if name not in bound]
        if missing:
            self.error("E207", f"{call.func} is missing its argument '{missing[0]}'", node,
                       f"write {call.func}({', '.join(f'{n} = …' if n in keywords else n for n in required)})")
        return bound

    def initializers(self, exprs: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, P.Initializer]:
        """The initialiser each expression names, by role."""
        return {role: self.initializer(expr, env) for role, expr in exprs.items()}

    def initializer(self, expr: ir.Expr, env: dict[str, object]) -> P.Initializer:
        """`zeros`, `glorot_uniform`, `normal(std = 0.1)`, `constant(value = 0.1)`, …"""
        call = ir.Call(expr.name, span=expr.span) if isinstance(expr, ir.Ref) else expr
        if not isinstance(call, ir.Call):
            self.error("E204", "expected an initialiser", expr,
                       "e.g. `zeros`, `constant(value = 0.1)` or `normal(std = 0.1)`")
        if call.func not in INITIALIZERS:
            self.error("E206", f"unknown initialiser '{call.func}'", _leading(call, call.func),
                       did_you_mean(call.func, INITIALIZERS) or f"use one of: {', '.join(INITIALIZERS)}")
        names = INITIALIZERS[call.func]
        bound = self.bind(call, call, names, (), required=names)
        args = tuple((name, float(self.number(bound[name], env))) for name in names)
        if any(v < 0 for name, v in args if name != "value"):
            self.error("E601", f"{call.func}'s {args[0][0]} must not be negative", expr, "use e.g. 0.1")
        return P.Initializer(call.func, args)

    def optimizer(self) -> tuple[str, P.Scalar, dict[str, object]]:
        """The optimiser's name, its learning rate (a run-time scalar, positive during training and never negative)
        and its other options, every one with its value."""
        opt = self.model.optimize
        if opt is None:
            self.error("E203", "the model has no `optimize` statement", self.model.span,
                       "add e.g. `optimize sgd(lr = 0.01) minimize my_loss`")
        call = opt.optimizer
        if call.func not in OPTIMIZERS:
            self.error("E206", f"unknown optimiser '{call.func}'", _leading(call, call.func),
                       did_you_mean(call.func, OPTIMIZERS) or f"use one of: {', '.join(OPTIMIZERS)}")
        names = (*OPTIMIZERS[call.func], "weight_decay", "clip_norm")
        bound = self.bind(call, call, (), ("lr", *names),
                          required=() if call.func in DEFAULT_LEARNING_RATES else ("lr",))
        if "lr" not in bound:
            lr: P.Scalar = P.Const(DEFAULT_LEARNING_RATES[call.func])
        else:
            lr = self.scalar(bound["lr"], self.settings, None)
            values = self.progression(lr, bound["lr"])
            bad = next((shown for shown, rate in values if rate < 0), None)
            if bad is not None or all(rate <= 0 for _, rate in values):
                self.error("E601", f"the learning rate must be positive, got {bad or values[0][0]}", bound["lr"],
                           "use e.g. lr = 0.01")
        options = {name: self.optimizer_option(call.func, name, bound.get(name)) for name in names}
        if options.get("nesterov") and not options["momentum"]:
            self.error("E601", "nesterov needs momentum above 0", bound["nesterov"], "add e.g. momentum = 0.9")
        return call.func, lr, options

    def optimizer_option(self, optimizer: str, name: str, expr: ir.Expr | None) -> object:
        """An optimiser option's value (a number, a parameter or true/false), or its default when not given."""
        default, kind, example = OPTIMIZER_OPTIONS[name]
        if expr is None:
            return default
        if kind == "flag":
            flag = self.constant(expr, self.settings)
            if not isinstance(flag, bool):
                self.error("E601", f"{name} is true or false, got {_show(flag)}", expr, f"write {name} = {example}")
            return flag
        value = float(self.number(expr, self.settings))
        need, fits = OPTION_RANGES[kind]
        if not fits(value):
            self.error("E601", f"{optimizer}'s {name} must be {need}, got {value:g}", expr, f"e.g. {name} = {example}")
        return value

    def objective(self, losses: dict[str, P.Scalar]) -> P.Scalar:
        opt = self.model.optimize
        if not self.model.losses:
            self.error("E203", "the model has no `loss` statement", opt or self.model.span,
                       "add e.g. `loss xent = crossentropy(net(x), y)`")
        if not losses:
            raise _Abort  # every loss has an error, already reported
        if opt is None or opt.objective is None:
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
                    raise _Abort  # the loss's own error is already reported
                if kind:
                    self.error("E204", f"'{expr.name}' is {_a(kind)}, not a loss", expr,
                               "`minimize` combines the names of `loss` statements")
                self.unknown(expr, "loss", [l.name for l in self.model.losses])
            self.error("E204", "the objective combines loss names, numbers and parameters", expr,
                       "declare the term as a `loss` and use its name")

        objective = self.scalar(opt.objective, self.settings, loss_ref)
        if not _loss_names(objective):
            self.error("E204", "the objective names no loss", opt.objective, f"e.g. minimize {' + '.join(losses)}")
        for name in losses:
            if name not in _loss_names(objective):
                node = next(l for l in self.model.losses if l.name == name)
                self.warn("W704", f"loss '{name}' is not part of the objective", node,
                          "add it to `minimize`, or remove it (it is still reported by evaluate)")
        return objective

    def seed(self) -> int:
        if self.model.seed is None:
            return 0
        value = self.constant(self.model.seed, self.settings)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.error("E601", f"the seed must be a whole number ≥ 0, got {_show(value)}", self.model.seed,
                       "e.g. seed 1")
        return value

    def run(self) -> P.Program | None:
        self.named = self.definitions()
        self.value_nodes = {n.name: n for n in (*self.model.lets, *self.model.heads)}
        self.check_params()
        inputs = self.check_inputs()
        init = self.model.init or ir.Init()
        for role, default in (("weights", P.Initializer("glorot_uniform")), ("biases", P.Initializer("zeros"))):
            expr = getattr(init, role)
            chosen = None if expr is None else self.attempt(lambda: self.initializer(expr, self.settings))
            self.model_inits[role] = chosen or default
        self.plan_stacks()
        values: dict[str, P.Value] = {}
        heads: dict[str, P.Value] = {}
        for node in (*self.model.lets, *self.model.heads):
            value = self.attempt(lambda: self.values.get(node.name) or self.define(node))
            if value is not None:
                (heads if isinstance(node, ir.Head) else values)[node.name] = value
        losses: dict[str, P.Scalar] = {}
        for node in self.model.losses:
            loss = self.attempt(lambda: self.loss(node.value))
            if loss is not None:
                if not P.loss_functions(loss):
                    self.attempt(lambda: self.error("E204", f"loss '{node.name}' contains no loss function", node,
                                                    f"use one of: {', '.join(LOSS_FUNCTIONS)}"))
                losses[node.name] = loss
        optimizer = self.attempt(self.optimizer)
        objective = self.attempt(lambda: self.objective(losses))
        seed = self.attempt(self.seed)
        self.attempt(self.check_memory)
        if any(d.severity == "error" for d in self.diagnostics):
            return None
        program = P.Program(
            name=self.model.name, precision=self.model.precision or "float32", seed=seed,
            weights_init=self.model_inits["weights"], biases_init=self.model_inits["biases"], hypers=self.hypers,
            inputs=inputs,
            stacks=tuple(self.stacks[s.name] for s in self.model.stacks if s.name in self.stacks),
            values=values, heads=heads, losses=losses, objective=objective, optimizer=optimizer[0],
            learning_rate=optimizer[1], settings=self.settings, optimizer_options=optimizer[2])
        self.warn_unused(program)
        return program

    def check_memory(self) -> None:
        """Refuse parameters that would take more memory than `max_parameter_memory`, before any is allocated; the
        error points at the layer with the most."""
        size = 8 if self.model.precision == "float64" else 4
        layers = [(sum(p.size for p in layer.params) * size, planned.node) for name, stack in self.stacks.items()
                  for layer, planned in zip(stack.layers, self.stack_plans[name])]
        total = sum(bytes_ for bytes_, _ in layers)
        if total > self.max_parameter_memory:
            largest, node = max(layers, key=lambda layer: layer[0])
            exact = f" ({total:,} bytes)" if total < 10**16 else ""
            enough = -(-total // 2**30)  # GiB, rounded up
            self.error("E604", f"the parameters need {format_memory(total)}{exact}, more than the limit of "
                               f"{format_memory(self.max_parameter_memory)}", node,
                       f"make the layers smaller, or raise the limit: `specc check --max-parameter-memory "
                       f"{enough}GiB`, or in Python `spec_lang.load(…, max_parameter_memory={enough} * 2**30)`",
                       (f"this layer's parameters take {format_memory(largest)}",))

    def warn_unused(self, program: P.Program) -> None:
        trained = {a.stack for loss in program.losses.values() for v in P.tensors(loss)
                    for a in P.ancestors(v, gradient=True) if isinstance(a, P.Applied)}
        trained |= {s for loss in program.losses.values() for term in P.loss_functions(loss)
                    if isinstance(term, P.Penalty) for s in term.stacks}
        for stack in self.model.stacks:
            if stack.name not in self.used:
                self.warn("W701", f"stack '{stack.name}' is never used", stack,
                          f"apply it, e.g. {stack.name}(x), or remove it")
            elif stack.name in self.stacks and stack.name not in trained and not self.stacks[stack.name].frozen:
                self.warn("W706", f"no loss depends on stack '{stack.name}', so training never changes it", stack,
                          "use its output in a loss, or mark it `frozen = true`")
        for node in (*self.model.inputs, *self.model.lets):
            if node.name not in self.used and node.name not in program.heads:
                kind = "input" if isinstance(node, ir.Input) else "value"
                self.warn("W702", f"{kind} '{node.name}' is never used", node, "use it or remove it")
        for point in P.reversal_points(program):
            if not point.losses:
                self.warn("W703", "this reversal reaches no loss, so it has no effect on training",
                          point.span, "use the reversed value in a domain loss")
        for name, loss in program.losses.items():
            for term in P.loss_functions(loss):
                if not isinstance(term, P.Penalty) and isinstance(term.predictions, P.Reversed):
                    self.warn("W705", f"loss '{name}' reads a reversed value directly, so no classifier "
                                      "learns to minimise it", term.predictions.span,
                              "put a stack between reverse(…) and the loss")


def _where(node: ir.Node | Span | None) -> Span | None:
    return node if isinstance(node, Span) or node is None else node.span


def _leading(node: ir.Node, word: str) -> Span | None:
    """The span of the word a node's text begins with, e.g. a call's function name."""
    if node.span is None:
        return None
    return node.span.head(len(word))


def _trailing(node: ir.Node, word: str) -> Span | None:
    """The span of the word a node's text ends with, e.g. a dense layer's activation."""
    if node.span is None:
        return None
    return node.span.tail(len(word))


def _some(names: list[str], shown: int = 10) -> str:
    """Names for a hint: the first `shown` of them, and how many more there are."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _progression(scalar: P.Scalar, hypers: dict[str, float]) -> list[tuple[str, float]]:
    """A run-time scalar's values at the progress points, each with how a message shows it: "-0.5", or
    "-0.5 at progress 1" when the value changes with progress."""
    values = [(p, P.evaluate(scalar, hypers, p)) for p in P.PROGRESS_POINTS]
    changes = len({v for _, v in values}) > 1
    return [(f"{v:g} at progress {p:g}" if changes else f"{v:g}", v) for p, v in values]


def _is_constant(scalar: P.Scalar) -> bool:
    """Whether a scalar is made of numbers and parameters only, so its value is known now."""
    match scalar:
        case P.Const() | P.Hyper():
            return True
        case P.Arith(left=left, right=right):
            return _is_constant(left) and (right is None or _is_constant(right))
    return False


def _loss_names(scalar: P.Scalar) -> set[str]:
    if isinstance(scalar, P.Arith):
        return _loss_names(scalar.left) | (_loss_names(scalar.right) if scalar.right else set())
    return {scalar.name} if isinstance(scalar, P.LossRef) else set()


def _ends_reversed(value: P.Value, stacks: dict[str, P.StackDef]) -> bool:
    """Whether a value's last step is a gradient reversal: reverse(…), or a stack whose last layer is reverse(…)."""
    if isinstance(value, P.Applied):
        return stacks[value.stack].layers[-1].kind == "reverse"
    if isinstance(value, P.Outer):  # outer is linear in its features: outer(reverse(f), p) is reversed
        return _ends_reversed(value.features, stacks)
    return isinstance(value, P.Reversed)


def _has_parameters(value: P.Value) -> bool:
    return any(isinstance(a, P.Applied) for a in P.ancestors(value, gradient=True))


def resolve(model: ir.Model, included: tuple[ir.Template, ...] = (),
            max_parameter_memory: int = DEFAULT_MAX_PARAMETER_MEMORY) -> tuple[P.Program | None, list[Diagnostic]]:
    """Check a model, with the templates of the files it includes; returns the program (None when there are errors)
    and every diagnostic found. Parameters that would take more than `max_parameter_memory` bytes are an error."""
    checker = _Checker(model, max_parameter_memory)
    try:
        checker.model = instantiate(checker, model, included)
        return checker.run(), checker.diagnostics
    except _TooManyErrors:  # the rest would take long to find and help little
        last = checker.diagnostics[-1]
        checker.diagnostics[-1] = replace(last, notes=(*last.notes, f"specc stops after {MAX_ERRORS} errors"))
        return None, checker.diagnostics

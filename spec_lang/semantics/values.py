"""Tensor values: inputs, `let` values and heads, stacks applied to values, gradient reversal, CDAN's `outer` and
the random `interpolate`;
their shapes and dtypes, the depth of the network, and the reversals that cannot work."""

from __future__ import annotations

from typing import TypeVar

from spec_lang import program as P
from spec_lang.diagnostics import did_you_mean
from spec_lang.diagnostics.limits import MAX_DEPTH, MAX_LAYERS
from spec_lang.library.layers import LAYERS
from spec_lang.library.losses import LOSSES
from spec_lang.program.types import Interpolated
from spec_lang.semantics.base import Abort, leading
from spec_lang.semantics.scalars import VALUE_FUNCTIONS
from spec_lang.semantics.stacks import Stacks
from spec_lang.syntax import ir

V = TypeVar("V", bound=P.Value)


class Values(Stacks):
    def check_inputs(self) -> None:
        for node in self.model.inputs:
            made = self.attempt(self.make_input, node)
            if made is not None:
                self.inputs += (made,)
                self.values[node.name] = made

    def make_input(self, node: ir.Input) -> P.InputValue:
        if node.dtype not in ir.DTYPES:
            self.error(
                "E206", f"unknown dtype '{node.dtype}'", node, did_you_mean(node.dtype, ir.DTYPES) or "use float or int"
            )
        if not node.shape:
            self.error("E301", f"input '{node.name}' has no dimensions", node, "write e.g. float[batch, 2]")
        first, *rest = node.shape  # only the leading (batch) dimension may be symbolic
        symbolic = isinstance(first, ir.Ref) and first.name not in self.settings
        shape = (
            None if symbolic else self.size(first, self.settings, "a dimension"),
            *(self.size(d, self.settings, "a dimension") for d in rest),
        )
        bound = None
        if node.bound is not None:
            if node.dtype != "int":
                self.error(
                    "E401",
                    "only integer inputs take a label bound `< N`",
                    node.bound,
                    "declare labels as e.g. `int[batch] < 10`",
                )
            bound = self.size(node.bound, self.settings, "the label bound")
        return P.InputValue(node.name, P.TensorType(node.dtype, shape), bound)

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
                if isinstance(node, ir.Let | ir.Head):  # kind "value" or "head"
                    return self.define(node)
                if kind == "stack":
                    self.error("E204", f"'{name}' is a stack, not a value", expr, f"apply it: {name}(x)")
                if kind == "input":
                    raise Abort  # its declaration had an error
                self.error(
                    "E204", f"'{name}' is a {kind}, not a tensor", expr, "tensors are inputs, `let` values and heads"
                )
            case ir.Call(func="reverse"):
                bound = self.bind(expr, expr, ("value",), ("lambda",), required=("value", "lambda"))
                arg = self.value(bound["value"])
                if arg.type.dtype != "float":
                    self.error(
                        "E401",
                        f"reverse needs a float tensor, got {arg.type}",
                        bound["value"],
                        "gradient reversal applies to features, not to labels",
                    )
                self.check_reversal(arg, expr)
                lam = self.reversal_lambda(bound["lambda"], self.settings)
                return self.layered(P.Reversed(arg, lam, arg.type, arg.activation, expr.span), expr)
            case ir.Call(func="outer"):
                return self.outer(expr)
            case ir.Call(func="interpolate"):
                return self.interpolate(expr)
            case ir.Call(func=func) if func in self.stack_plans or self.named.get(func, ("",))[0] == "stack":
                self.used.add(func)
                bound = self.bind(expr, expr, ("value",), (), required=("value",))
                return self.apply_stack(func, bound["value"], expr)
            case ir.Call(func=func) if func in LOSSES:
                self.error("E204", f"{func}(…) is a loss, not a tensor", expr, "use it in a `loss` statement")
            case ir.Call(func=func):
                self.error(
                    "E201",
                    f"unknown stack or function '{func}'",
                    leading(expr, func),
                    did_you_mean(func, [*self.stack_plans, *VALUE_FUNCTIONS]) or "define it with `stack`",
                )
        self.error(
            "E204",
            "expected a tensor (an input, a value, or a stack applied to one)",
            expr,
            "arithmetic on tensors is not part of the language; use stacks and losses",
        )

    def apply_stack(self, name: str, arg_expr: ir.Expr, call: ir.Call) -> P.Applied:
        arg = self.value(arg_expr)
        plan = self.stack_plans.get(name)
        if plan is None:
            raise Abort  # the stack's own error is already reported
        if arg.type.dtype != "float":
            self.error(
                "E401",
                f"stack '{name}' needs a float input, got {arg.type}",
                arg_expr,
                "stacks take float features; integer inputs are labels",
            )
        shape = arg.type.shape
        if name not in self.stack_inputs:
            self.stack_inputs[name] = (shape, call.span)
            self.stacks[name] = self.build_stack(name, shape, call)
        if name not in self.stacks:
            raise Abort  # its layers did not fit its first input, already reported
        first_shape, first_span = self.stack_inputs[name]
        if shape != first_shape:
            where = f" at line {first_span.line}" if first_span else ""
            self.error(
                "E301",
                f"stack '{name}' takes inputs of shape {P.TensorType('float', first_shape)}, "
                f"but this one is {arg.type}",
                arg_expr,
                "a stack shares its weights across applications, so every input needs the same shape",
                (f"'{name}' was first applied to {P.TensorType('float', first_shape)}{where}",),
            )
        if plan[0].kind.reverses_gradient:
            self.check_reversal(arg, call, (f"the first layer of stack '{name}' is reverse(…)",))
        stack = self.stacks[name]
        activation = next((l.activation for l in reversed(stack.layers) if l.activation), arg.activation)
        return self.layered(
            P.Applied(name, arg, P.TensorType("float", stack.layers[-1].out_shape), activation, call.span), call
        )

    def check_reversal(self, arg: P.Value, where: ir.Node, notes: tuple[str, ...] = ()) -> None:
        """Reject the reversals that cannot work: of a value that is already reversed, or of one with no parameters
        upstream (an input), whose gradient reaches nothing trainable."""
        if ends_reversed(arg, self.stacks):
            self.error(
                "E501",
                "this value is reversed twice, which cancels the reversal",
                where,
                "reverse once, just before the domain classifier",
                notes,
            )
        if not has_parameters(arg):
            self.error(
                "E501",
                "nothing before this reversal has parameters, so reversing has no effect",
                where,
                "reverse the output of the shared feature extractor, e.g. reverse(features(x), …)",
                notes,
            )

    def outer(self, expr: ir.Call) -> P.Outer:
        """`outer(features, predictions, dim = D)`: two [batch, n] float tensors computed from the same batch; with
        `dim`, CDAN's randomised multilinear map to D columns."""
        bound = self.bind(expr, expr, ("features", "predictions"), ("dim",), required=("features", "predictions"))
        features, predictions = self.float_arguments(
            "outer",
            bound,
            ("features", "predictions"),
            "outer conditions features on predictions, e.g. outer(fs, label(fs))",
        )
        for value, arg in ((features, bound["features"]), (predictions, bound["predictions"])):
            if len(value.type.shape) != 2:
                self.error(
                    "E301",
                    f"outer needs [batch, n] tensors, got {value.type}",
                    arg,
                    "flatten image features first, or apply a stack that ends in a dense layer",
                )
        sources = [sorted(i.name for i in P.inputs_of(v)) for v in (features, predictions)]
        if sources[0] != sources[1]:
            self.error(
                "E301",
                f"outer pairs the rows of one batch, but the features are computed from "
                f"{', '.join(sources[0])} and the predictions from {', '.join(sources[1])}",
                expr,
                "condition each batch's features on that batch's predictions, e.g. outer(ft, label(ft))",
            )
        columns, classes = features.type.shape[1], predictions.type.shape[1]
        assert columns is not None and classes is not None  # only the batch dimension is symbolic
        dim = self.size(bound["dim"], self.settings, "outer's `dim`") if "dim" in bound else None
        width = columns * classes if dim is None else dim
        shape = (features.type.shape[0], width)
        return self.layered(P.Outer(features, predictions, P.TensorType("float", shape), span=expr.span, dim=dim), expr)

    def interpolate(self, expr: ir.Call) -> Interpolated:
        """`interpolate(first, second)`: two float tensors of the same shape but for the batch."""
        bound = self.bind(expr, expr, ("first", "second"), (), required=("first", "second"))
        first, second = self.float_arguments(
            "interpolate",
            bound,
            ("first", "second"),
            "interpolate mixes two batches of features, e.g. interpolate(fs, ft)",
        )
        if first.type.shape[1:] != second.type.shape[1:]:
            self.error(
                "E301",
                f"interpolate mixes rows of the same shape, got {first.type} and {second.type}",
                bound["second"],
                "pass one stack's outputs on two batches, e.g. interpolate(features(xs), features(xt))",
            )
        return self.layered(
            Interpolated(first, second, P.TensorType("float", (None, *first.type.shape[1:])), span=expr.span), expr
        )

    def float_arguments(
        self, function: str, bound: dict[str, ir.Expr], names: tuple[str, ...], hint: str
    ) -> list[P.Value]:
        """The values of `function`'s arguments `names`, each of which must be a float tensor (E401)."""
        values = [self.value(bound[name]) for name in names]
        for value, name in zip(values, names, strict=True):
            if value.type.dtype != "float":
                self.error("E401", f"{function} needs float tensors, got {value.type}", bound[name], hint)
        return values

    def layered(self, value: V, where: ir.Node) -> V:
        """A new value, with the number of layers on its longest path from an input recorded; past `MAX_LAYERS`, an
        error (compiling it would exhaust Python's recursion limit)."""
        added = len(self.stacks[value.stack].layers) if isinstance(value, P.Applied) else 1
        depth = max(self.depths.get(id(parent), 0) for parent in P.parents(value)) + added
        if depth > MAX_LAYERS:
            self.error(
                "E605",
                f"this is {depth} layers deep on its longest path from an input",
                where,
                f"specc compiles networks up to {MAX_LAYERS} layers deep: PyTensor's gradient recurses once per layer",
            )
        self.depths[id(value)] = depth
        return value

    def define(self, node: ir.Let | ir.Head) -> P.Value:
        if node.name in self.failed:
            raise Abort  # its error is already reported
        if node.name in self.resolving:
            cycle = " → ".join(self.resolving[self.resolving.index(node.name) :] + [node.name])
            self.error(
                "E205",
                f"'{node.name}' is defined in terms of itself ({cycle})",
                node,
                "a value may only use inputs and values that do not depend on it",
            )
        if len(self.resolving) >= MAX_DEPTH:  # checking each value that one uses recurses
            self.error(
                "E108",
                f"'{node.name}' is reached through more than {MAX_DEPTH} values that each use one declared after them",
                node,
                "declare each value after the values it uses",
            )
        self.resolving.append(node.name)
        try:
            result = self.value(node.value)
        except Abort:
            self.failed.add(node.name)
            raise
        finally:
            self.resolving.pop()
        self.values[node.name] = result
        return result


def ends_reversed(value: P.Value, stacks: dict[str, P.StackDef]) -> bool:
    """Whether a value's last step is a gradient reversal: reverse(…), or a stack whose last layer is reverse(…)."""
    if isinstance(value, P.Applied):
        return LAYERS[stacks[value.stack].layers[-1].kind].reverses_gradient
    if isinstance(value, P.Outer):  # outer is linear in its features: outer(reverse(f), p) is reversed
        return ends_reversed(value.features, stacks)
    return isinstance(value, P.Reversed)


def has_parameters(value: P.Value) -> bool:
    return any(isinstance(a, P.Applied) for a in P.ancestors(value, gradient=True))

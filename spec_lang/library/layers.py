"""The layer kinds a stack may hold. Each kind says which arguments it takes, how its options are checked,
how shapes flow through it and which parameters it owns, and how it is lowered; adding a kind here is all it
takes to add a layer to the language (the grammar, JSON and builder spell every layer but `dense` as a call).

>>> sorted(LAYERS)
['avgpool', 'batchnorm', 'conv2d', 'dense', 'dropout', 'flatten', 'maxpool', 'reshape', 'reverse']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from spec_lang.syntax import ir
from spec_lang import program as P
from spec_lang.library.registry import Registry

Shape = tuple[int | None, ...]


class Checks(Protocol):
    """What a layer kind may ask of the checker; each method reports a located error and aborts on bad input."""

    def size(self, expr: ir.Expr, env: dict[str, object], what: str) -> int: ...
    def number(self, expr: ir.Expr, env: dict[str, object]) -> int | float: ...
    def symbol(self, expr: ir.Expr, choices: tuple[str, ...], what: str) -> str: ...
    def reversal_lambda(self, expr: ir.Expr, env: dict[str, object]) -> P.Scalar: ...
    def error(self, code: str, message: str, node: Any, hint: str | None = None,
              notes: tuple[str, ...] = ()) -> Any: ...


@dataclass
class Lowering:
    """What a layer's lowering may use: the backend, scalar lowering (for λ and rates), whether the graph is the
    training graph, and a place to put updates of state variables (running statistics, random generators).

    A layer that ends in an activation applies it with `activate`, which keeps the activation's input: the
    walker gives a softmax or sigmoid output's logits to the losses, which use their numerically stable forms."""

    backend: Any
    scalar: Callable[[P.Scalar], Any]
    training: bool
    state_updates: list[tuple[Any, Any]] = field(default_factory=list)
    activated: tuple[Any, Any] | None = None  # (output, input) of the latest `activate`
    generators: int = 0  # random generators made so far for this graph

    def generator(self) -> Any:
        """A new shared random generator for one application of a random layer (dropout); the layer stores the
        generator's next state with `update`, so each step draws new numbers."""
        self.generators += 1
        return self.backend.generator(self.generators - 1)

    def current(self, variable: Any) -> Any:
        """A state variable's value after the update this graph already makes to it (a stack applied twice
        updates its running statistics twice, in order), or the variable itself. (PyTensor variables compare
        by identity, the code backend's by their text.)"""
        return next((new for old, new in self.state_updates if old == variable), variable)

    def update(self, variable: Any, value: Any) -> None:
        """Store `value` in a state variable after the training step, in place of an earlier update of it."""
        self.state_updates[:] = [(old, new) for old, new in self.state_updates if old != variable]
        self.state_updates.append((variable, value))

    def activate(self, activation: str, z: Any) -> Any:
        """The activation op `activation` applied to the pre-activation `z`."""
        output = self.backend.op(activation, z)
        self.activated = (output, z)
        return output

    def logits(self, h: Any) -> Any | None:
        """The pre-activation of `h` when `h` is the output of the latest `activate`, else None."""
        return self.activated[1] if self.activated is not None and self.activated[0] is h else None


@dataclass(frozen=True)
class Inferred:
    out_shape: Shape
    params: tuple[tuple[str, tuple[int, ...], str, bool], ...] = ()  # (suffix, shape, role, trainable)
    activation: str | None = None


@dataclass(frozen=True)
class LayerKind:
    name: str
    summary: str  # one line, for hints and the language reference
    positional: tuple[str, ...]
    keywords: tuple[str, ...]
    required: tuple[str, ...]
    resolve: Callable[[Checks, dict[str, ir.Expr], dict[str, object]], dict[str, object]]
    infer: Callable[[Checks, dict[str, object], Shape, ir.Node], Inferred]
    lower: Callable[[Lowering, Any, dict[str, Any], dict[str, object]], Any]
    initialised: tuple[str, ...] = ()  # parameter roles whose initialiser the layer's options may choose
    # output row i depends on input row i only: in every graph, or in the inference graph only (batch normalisation
    # by running statistics; dropout is the identity there). The batching pass runs such layers over joined inputs.
    row_wise: bool = True
    row_wise_in_inference: bool = True
    reverses_gradient: bool = False  # identity forward, gradient times -λ backward (the reversal analysis reads it)


def features(checks: Checks, in_shape: Shape, node: ir.Node, kind: str) -> int:
    """The feature width of a [batch, features] input, or a located error."""
    if len(in_shape) != 2 or in_shape[1] is None:
        checks.error("E301", f"{kind} needs a [batch, features] input, got [{_dims(in_shape)}]", node,
                     "flatten image features first, e.g. `flatten()`")
    return in_shape[1]


def _dims(shape: Shape) -> str:
    return ", ".join("batch" if d is None else str(d) for d in shape)


def _dense_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {"units": checks.size(args["units"], env, "a layer width"),
            "activation": checks.symbol(args["activation"], ir.ACTIVATIONS, "activation")}


def _dense_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    width, units = features(checks, in_shape, node, "dense"), options["units"]
    return Inferred((in_shape[0], units), (("W", (width, units), "weights", True), ("b", (units,), "biases", True)),
                    options["activation"])


def _dense_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    z = ctx.backend.op("affine", h, params["weights"], params["biases"])
    return ctx.activate(options["activation"], z)


def _reverse_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {"lambda": checks.reversal_lambda(args["lambda"], env)}


def _reverse_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    return ctx.backend.op("reverse_gradient", h, ctx.scalar(options["lambda"]))


def _unchanged(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    """The shapes of a layer whose output has its input's shape and no parameters."""
    return Inferred(in_shape)


def _rate(checks: Checks, expr: ir.Expr, env: dict[str, object], what: str, hint: str) -> float:
    """A number in [0, 1), such as a dropout rate or a momentum, or a located error."""
    value = checks.number(expr, env)
    if not 0 <= value < 1:
        checks.error("E601", f"{what} must be at least 0 and below 1, got {value:g}", expr, hint)
    return float(value)


def _whole(checks: Checks, expr: ir.Expr, env: dict[str, object], what: str) -> int:
    """A whole number ≥ 0, such as a padding, or a located error."""
    value = checks.number(expr, env)
    if not isinstance(value, int) or value < 0:
        checks.error("E601", f"{what} must be a whole number ≥ 0, got {value:g}", expr, "use e.g. 1, or 0 for none")
    return value


def _image(checks: Checks, in_shape: Shape, node: ir.Node, kind: str) -> tuple[int, int, int]:
    """(channels, height, width) of an image input [batch, channels, height, width], or a located error."""
    if len(in_shape) != 4:
        side = math.isqrt(in_shape[1]) if len(in_shape) == 2 else 0
        if len(in_shape) == 3:
            hint = f"give it a channel dimension first, e.g. `reshape([1, {in_shape[1]}, {in_shape[2]}])`"
        elif side * side == in_shape[1]:
            hint = f"reshape the features into images first, e.g. `reshape([1, {side}, {side}])`"
        else:
            hint = "declare the input as images, e.g. `input x : float[batch, 1, 28, 28]`"
        checks.error("E301", f"{kind} needs an image input [batch, channels, height, width], got [{_dims(in_shape)}]",
                     node, hint)
    return in_shape[1], in_shape[2], in_shape[3]


def _grid(checks: Checks, node: ir.Node, kind: str, image: tuple[int, int, int], size: int, stride: int,
          padding: int | None) -> tuple[int, int]:
    """The rows and columns of size × size windows `stride` apart over an image (padded on every side by
    `padding`; None for a layer that does not pad), or a located error: a window larger than the image, or
    windows that do not fit it a whole number of times."""
    _, height, width = image
    sides = (height + 2 * (padding or 0), width + 2 * (padding or 0))
    window = "kernel" if padding is not None else "window"
    shown = f"{height}×{width} input" + (f" padded by {padding}" if padding else "")
    if size > min(sides):
        more = math.ceil((size - min(sides)) / 2) + (padding or 0)
        checks.error("E301", f"{kind}'s {size}×{size} {window} is larger than its {shown}", node,
                     f"use a {window} of at most {min(sides)}"
                     + (f", or pad the input: padding = {more}" if padding is not None else ""))
    for side in sides:
        if (side - size) % stride:
            checks.error("E301", f"{kind}'s {size}×{size} {window}s {stride} apart do not fit its {shown} a whole "
                                 f"number of times: ({side} - {size}) / {stride} + 1 = {(side - size) / stride + 1:g}",
                         node, _grid_fix(kind, sides, size, stride, padding))
    return (sides[0] - size) // stride + 1, (sides[1] - size) // stride + 1


def _grid_fix(kind: str, sides: tuple[int, int], size: int, stride: int, padding: int | None) -> str:
    """What to change so that windows fit the (padded) sides: more padding (a convolution), a window one larger
    or smaller at the same stride, a pool whose windows tile the sides, or stride 1, which always fits."""
    def fits(window: int, extra: int = 0) -> bool:
        return 1 < window <= min(sides) + extra and all((side + extra - window) % stride == 0 for side in sides)

    near = 64  # how far the search for a fix goes: sizes may be huge, and a fix far off is no likely intent
    more = next((p for p in range(1, min(stride, near)) if fits(size, 2 * p)), None) if padding is not None else None
    window = next((w for w in (size + 1, size - 1) if fits(w)), None)
    tiling = next((w for w in sorted(range(max(2, size - near), min(min(sides), size + near) + 1),
                                     key=lambda w: abs(w - size)) if all(side % w == 0 for side in sides)), None)
    if more:
        return f"use padding = {padding + more}, or stride = 1"
    if window and padding is not None:
        return f"use a {window}×{window} kernel, or stride = 1"
    if window:
        return f"use {kind}({window}, stride = {stride}), or stride = 1"
    if tiling and padding is None:
        return f"use {kind}({tiling}), whose windows tile the input, or stride = 1"
    return "use stride = 1"


def _dropout_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {"rate": _rate(checks, args["rate"], env, "the dropout rate",
                          "the rate is the probability of zeroing each value, e.g. dropout(0.5)")}


def _dropout_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    if not ctx.training:
        return h
    generator = ctx.generator()
    output, next_generator = ctx.backend.op("dropout", h, ctx.backend.const(options["rate"]), generator, outputs=2)
    ctx.update(generator, next_generator)
    return output


def _batchnorm_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    momentum = _rate(checks, args.get("momentum", ir.Number(0.9)), env, "the momentum",
                     "the running statistics keep this share of their value at each step, e.g. momentum = 0.9")
    epsilon_expr = args.get("epsilon", ir.Number(1e-5))
    epsilon = checks.number(epsilon_expr, env)
    if epsilon <= 0:
        checks.error("E601", f"epsilon must be positive, got {epsilon:g}", epsilon_expr,
                     "epsilon keeps the division finite, e.g. epsilon = 1e-5")
    return {"momentum": momentum, "epsilon": float(epsilon)}


def _batchnorm_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    if len(in_shape) not in (2, 4):
        checks.error("E301", "batchnorm needs a [batch, features] or an image [batch, channels, height, width] "
                             f"input, got [{_dims(in_shape)}]", node,
                     "flatten the input first (`flatten()`), or reshape it into images (`reshape([c, h, w])`)")
    width = (in_shape[1],)
    return Inferred(in_shape, (("scale", width, "scale", True), ("shift", width, "shift", True),
                               ("mean", width, "mean", False), ("variance", width, "variance", False)), "linear")


def _batchnorm_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    """Training: normalise by the batch's statistics and move the running ones towards them; inference: normalise
    by the running statistics."""
    running = params["mean"], params["variance"]
    if not ctx.training:
        statistics = running
    else:
        momentum = ctx.backend.const(options["momentum"])
        statistics = ctx.backend.op("batch_statistics", h, outputs=2)
        for variable, batch in zip(running, statistics):
            ctx.update(variable, ctx.backend.op("moving_average", ctx.current(variable), batch, momentum))
    return ctx.backend.op("normalize", h, *statistics, params["scale"], params["shift"],
                          ctx.backend.const(options["epsilon"]))


def _conv2d_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    written = args.get("activation", ir.Ref("linear"))
    activation = checks.symbol(written, ir.ACTIVATIONS, "activation")
    if activation == "softmax":
        checks.error("E601", "conv2d cannot end in softmax: a softmax turns one row of features into probabilities",
                     written, "flatten() the feature maps, then classify with e.g. `dense 10 softmax`")
    return {"filters": checks.size(args["filters"], env, "the number of filters"),
            "kernel": checks.size(args["kernel"], env, "the kernel size"),
            "stride": checks.size(args.get("stride", ir.Number(1)), env, "the stride"),
            "padding": _whole(checks, args.get("padding", ir.Number(0)), env, "the padding"),
            "activation": activation}


def _conv2d_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    image = _image(checks, in_shape, node, "conv2d")
    filters, kernel = options["filters"], options["kernel"]
    rows, columns = _grid(checks, node, "conv2d", image, kernel, options["stride"], options["padding"])
    return Inferred((in_shape[0], filters, rows, columns),
                    (("W", (filters, image[0], kernel, kernel), "weights", True), ("b", (filters,), "biases", True)),
                    options["activation"])


def _conv2d_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    if options["padding"]:
        h = ctx.backend.op("pad_images", h, options["padding"])
    patches = ctx.backend.op("windows", h, options["kernel"], options["stride"])
    return ctx.activate(options["activation"], ctx.backend.op("convolve", patches, params["weights"],
                                                              params["biases"]))


def _pool_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    size = checks.size(args["size"], env, "the pooling size")
    return {"size": size, "stride": checks.size(args["stride"], env, "the stride") if "stride" in args else size}


def _pool(name: str, op: str, summary: str) -> LayerKind:
    """A pooling layer kind: `op` of each size × size window of an image, windows `stride` apart."""
    def infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
        image = _image(checks, in_shape, node, name)
        rows, columns = _grid(checks, node, name, image, options["size"], options["stride"], None)
        return Inferred((in_shape[0], image[0], rows, columns))

    def lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
        return ctx.backend.op(op, ctx.backend.op("windows", h, options["size"], options["stride"]))

    return LayerKind(name, summary, ("size",), ("stride",), ("size",), _pool_resolve, infer, lower)


def _flatten_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    if len(in_shape) < 2:
        checks.error("E301", f"flatten needs an input with dimensions besides the batch, got [{_dims(in_shape)}]",
                     node, "there is nothing to flatten; remove `flatten()`")
    return Inferred((in_shape[0], math.prod(in_shape[1:])))


def _flatten_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    return ctx.backend.op("flatten", h)


def _reshape_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    shape = args["shape"]
    if not isinstance(shape, ir.ListExpr) or not shape.items:
        checks.error("E601", "reshape takes the sizes of an example as a list", shape,
                     "leave out the batch dimension, e.g. reshape([1, 28, 28])")
    return {"shape": tuple(checks.size(item, env, "a dimension") for item in shape.items)}


def _reshape_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    shape, count = options["shape"], math.prod(in_shape[1:])
    if math.prod(shape) != count:
        rest = math.prod(shape[1:])
        fix = f"reshape([{', '.join(map(str, (count // rest, *shape[1:])))}])" if count % rest == 0 else \
            f"reshape([{count}])"
        checks.error("E301", f"reshape([{', '.join(map(str, shape))}]) holds {math.prod(shape)} numbers per example, "
                             f"but its input [{_dims(in_shape)}] has {count}", node,
                     f"the sizes must multiply to {count}, e.g. {fix}")
    return Inferred((in_shape[0], *shape))


def _reshape_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    return ctx.backend.op("reshape", h, options["shape"])


LAYERS = Registry[LayerKind]("layer")
for _kind in (
    LayerKind("dense", "`dense N ACTIVATION`: act(x @ W + b)", ("units", "activation"), (), ("units", "activation"),
              _dense_resolve, _dense_infer, _dense_lower, ("weights", "biases")),
    LayerKind("reverse", "`reverse(lambda = λ)`: gradient reversal, identity forward", (), ("lambda",), ("lambda",),
              _reverse_resolve, _unchanged, _reverse_lower, reverses_gradient=True),
    LayerKind("dropout", "`dropout(rate)`: zero each value with probability rate while training", ("rate",), (),
              ("rate",), _dropout_resolve, _unchanged, _dropout_lower, row_wise=False),
    LayerKind("batchnorm", "`batchnorm(momentum = 0.9, epsilon = 1e-5)`: batch normalisation per feature or channel",
              (), ("momentum", "epsilon"), (), _batchnorm_resolve, _batchnorm_infer, _batchnorm_lower, row_wise=False),
    LayerKind("conv2d", "`conv2d(filters, kernel, stride = 1, padding = 0, activation = linear)`: image convolution",
              ("filters", "kernel"), ("stride", "padding", "activation"), ("filters", "kernel"),
              _conv2d_resolve, _conv2d_infer, _conv2d_lower, ("weights", "biases")),
    _pool("maxpool", "window_max", "`maxpool(size, stride = size)`: the largest value of each window"),
    _pool("avgpool", "window_mean", "`avgpool(size, stride = size)`: the mean of each window"),
    LayerKind("flatten", "`flatten()`: each example as one row of features", (), (), (),
              lambda checks, args, env: {}, _flatten_infer, _flatten_lower),
    LayerKind("reshape", "`reshape([sizes])`: each example to the given shape", ("shape",), (), ("shape",),
              _reshape_resolve, _reshape_infer, _reshape_lower),
):
    LAYERS.register(_kind)

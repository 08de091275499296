"""The layers of images [batch, channels, height, width] and of shapes: convolution, pooling, `flatten`, `reshape`."""

from __future__ import annotations

import math
from typing import Any, cast

from spec_lang.library.layers.kinds import (
    LAYERS,
    Checks,
    Inferred,
    LayerKind,
    Lowering,
    Shape,
    dims,
    example_sizes,
    whole,
)
from spec_lang.syntax import ir


def _image(checks: Checks, in_shape: Shape, node: ir.Node, kind: str) -> tuple[int, int, int]:
    """(channels, height, width) of an image input [batch, channels, height, width], or a located error."""
    if len(in_shape) != 4:
        side = math.isqrt(example_sizes(in_shape)[0]) if len(in_shape) == 2 else 0
        if len(in_shape) == 3:
            hint = f"give it a channel dimension first, e.g. `reshape([1, {in_shape[1]}, {in_shape[2]}])`"
        elif side * side == in_shape[1]:
            hint = f"reshape the features into images first, e.g. `reshape([1, {side}, {side}])`"
        else:
            hint = "declare the input as images, e.g. `input x : float[batch, 1, 28, 28]`"
        checks.error(
            "E301", f"{kind} needs an image input [batch, channels, height, width], got [{dims(in_shape)}]", node, hint
        )
    channels, height, width = example_sizes(in_shape)
    return channels, height, width


def _grid(
    checks: Checks, node: ir.Node, kind: str, image: tuple[int, int, int], size: int, stride: int, padding: int | None
) -> tuple[int, int]:
    """The rows and columns of size × size windows `stride` apart over an image (padded on every side by
    `padding`; None for a layer that does not pad), or a located error: a window larger than the image, or
    windows that do not fit it a whole number of times."""
    _, height, width = image
    sides = (height + 2 * (padding or 0), width + 2 * (padding or 0))
    window = "kernel" if padding is not None else "window"
    shown = f"{height}×{width} input" + (f" padded by {padding}" if padding else "")
    if size > min(sides):
        more = math.ceil((size - min(sides)) / 2) + (padding or 0)
        checks.error(
            "E301",
            f"{kind}'s {size}×{size} {window} is larger than its {shown}",
            node,
            f"use a {window} of at most {min(sides)}"
            + (f", or pad the input: padding = {more}" if padding is not None else ""),
        )
    for side in sides:
        if (side - size) % stride:
            checks.error(
                "E301",
                f"{kind}'s {size}×{size} {window}s {stride} apart do not fit its {shown} a whole "
                f"number of times: ({side} - {size}) / {stride} + 1 = {(side - size) / stride + 1:g}",
                node,
                _grid_fix(kind, sides, size, stride, padding),
            )
    return (sides[0] - size) // stride + 1, (sides[1] - size) // stride + 1


def _grid_fix(kind: str, sides: tuple[int, int], size: int, stride: int, padding: int | None) -> str:
    """What to change so that windows fit the (padded) sides: more padding (a convolution), a window one larger
    or smaller at the same stride, a pool whose windows tile the sides, or stride 1, which always fits."""

    def fits(window: int, extra: int = 0) -> bool:
        return 1 < window <= min(sides) + extra and all((side + extra - window) % stride == 0 for side in sides)

    near = 64  # how far the search for a fix goes: sizes may be huge, and a fix far off is no likely intent
    more = next((p for p in range(1, min(stride, near)) if fits(size, 2 * p)), None) if padding is not None else None
    window = next((w for w in (size + 1, size - 1) if fits(w)), None)
    tiling = next(
        (
            w
            for w in sorted(range(max(2, size - near), min(min(sides), size + near) + 1), key=lambda w: abs(w - size))
            if all(side % w == 0 for side in sides)
        ),
        None,
    )
    if more and padding is not None:
        return f"use padding = {padding + more}, or stride = 1"
    if window and padding is not None:
        return f"use a {window}×{window} kernel, or stride = 1"
    if window:
        return f"use {kind}({window}, stride = {stride}), or stride = 1"
    if tiling and padding is None:
        return f"use {kind}({tiling}), whose windows tile the input, or stride = 1"
    return "use stride = 1"


def _conv2d_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    written = args.get("activation", ir.Ref("linear"))
    activation = checks.symbol(written, ir.ACTIVATIONS, "activation")
    if activation == "softmax":
        checks.error(
            "E601",
            "conv2d cannot end in softmax: a softmax turns one row of features into probabilities",
            written,
            "flatten() the feature maps, then classify with e.g. `dense 10 softmax`",
        )
    return {
        "filters": checks.size(args["filters"], env, "the number of filters"),
        "kernel": checks.size(args["kernel"], env, "the kernel size"),
        "stride": checks.size(args.get("stride", ir.Number(1)), env, "the stride"),
        "padding": whole(checks, args.get("padding", ir.Number(0)), env, "the padding"),
        "activation": activation,
    }


def _conv2d_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    image = _image(checks, in_shape, node, "conv2d")
    filters, kernel = cast(int, options["filters"]), cast(int, options["kernel"])
    stride, padding = cast(int, options["stride"]), cast(int, options["padding"])
    rows, columns = _grid(checks, node, "conv2d", image, kernel, stride, padding)
    return Inferred(
        (in_shape[0], filters, rows, columns),
        (("W", (filters, image[0], kernel, kernel), "weights", True), ("b", (filters,), "biases", True)),
        cast(str, options["activation"]),
    )


def _conv2d_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    z = ctx.backend.op("conv2d", h, params["weights"], params["biases"], options["stride"], options["padding"])
    return ctx.activate(cast(str, options["activation"]), z)


def _pool_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    size = checks.size(args["size"], env, "the pooling size")
    return {"size": size, "stride": checks.size(args["stride"], env, "the stride") if "stride" in args else size}


def _pool(name: str, op: str, summary: str) -> LayerKind:
    """A pooling layer kind: `op` of each size × size window of an image, windows `stride` apart."""

    def infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
        image = _image(checks, in_shape, node, name)
        size, stride = cast(int, options["size"]), cast(int, options["stride"])
        rows, columns = _grid(checks, node, name, image, size, stride, None)
        return Inferred((in_shape[0], image[0], rows, columns))

    def lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
        return ctx.backend.op(op, h, options["size"], options["stride"])

    return LayerKind(name, summary, ("size",), ("stride",), ("size",), _pool_resolve, infer, lower)


def _flatten_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    if len(in_shape) < 2:
        checks.error(
            "E301",
            f"flatten needs an input with dimensions besides the batch, got [{dims(in_shape)}]",
            node,
            "there is nothing to flatten; remove `flatten()`",
        )
    return Inferred((in_shape[0], math.prod(example_sizes(in_shape))))


def _flatten_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    return ctx.backend.op("flatten", h)


def _reshape_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    shape = args["shape"]
    if not isinstance(shape, ir.ListExpr) or not shape.items:
        checks.error(
            "E601",
            "reshape takes the sizes of an example as a list",
            shape,
            "leave out the batch dimension, e.g. reshape([1, 28, 28])",
        )
    return {"shape": tuple(checks.size(item, env, "a dimension") for item in shape.items)}


def _reshape_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    shape, count = cast(tuple[int, ...], options["shape"]), math.prod(example_sizes(in_shape))
    if math.prod(shape) != count:
        rest = math.prod(shape[1:])
        fix = (
            f"reshape([{', '.join(map(str, (count // rest, *shape[1:])))}])"
            if count % rest == 0
            else f"reshape([{count}])"
        )
        checks.error(
            "E301",
            f"reshape([{', '.join(map(str, shape))}]) holds {math.prod(shape)} numbers per example, "
            f"but its input [{dims(in_shape)}] has {count}",
            node,
            f"the sizes must multiply to {count}, e.g. {fix}",
        )
    return Inferred((in_shape[0], *shape))


def _reshape_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    return ctx.backend.op("reshape", h, options["shape"])


LAYERS.register(
    LayerKind(
        "conv2d",
        "`conv2d(filters, kernel, stride = 1, padding = 0, activation = linear)`: image convolution",
        ("filters", "kernel"),
        ("stride", "padding", "activation"),
        ("filters", "kernel"),
        _conv2d_resolve,
        _conv2d_infer,
        _conv2d_lower,
        ("weights", "biases"),
    )
)

LAYERS.register(_pool("maxpool", "max_pool", "`maxpool(size, stride = size)`: the largest value of each window"))

LAYERS.register(_pool("avgpool", "avg_pool", "`avgpool(size, stride = size)`: the mean of each window"))

LAYERS.register(
    LayerKind(
        "flatten",
        "`flatten()`: each example as one row of features",
        (),
        (),
        (),
        lambda checks, args, env: {},
        _flatten_infer,
        _flatten_lower,
    )
)

LAYERS.register(
    LayerKind(
        "reshape",
        "`reshape([sizes])`: each example to the given shape",
        ("shape",),
        (),
        ("shape",),
        _reshape_resolve,
        _reshape_infer,
        _reshape_lower,
    )
)

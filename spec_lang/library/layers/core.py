"""The layers of feature vectors: `dense`, gradient reversal as a layer, `dropout` and batch normalisation."""

from __future__ import annotations

from typing import Any, cast

from spec_lang import program as P
from spec_lang.library.layers.kinds import (
    LAYERS,
    Checks,
    Inferred,
    LayerKind,
    Lowering,
    Shape,
    dims,
    example_sizes,
    features,
    rate,
    unchanged,
)
from spec_lang.syntax import ir


def _dense_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {
        "units": checks.size(args["units"], env, "a layer width"),
        "activation": checks.symbol(args["activation"], ir.ACTIVATIONS, "activation"),
    }


def _dense_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    width, units = features(checks, in_shape, node, "dense"), cast(int, options["units"])
    return Inferred(
        (in_shape[0], units),
        (("W", (width, units), "weights", True), ("b", (units,), "biases", True)),
        cast(str, options["activation"]),
    )


def _dense_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    z = ctx.backend.op("affine", h, params["weights"], params["biases"])
    return ctx.activate(cast(str, options["activation"]), z)


def _reverse_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {"lambda": checks.reversal_lambda(args["lambda"], env)}


def _reverse_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    return ctx.backend.op("reverse_gradient", h, ctx.scalar(cast(P.Scalar, options["lambda"])))


def _dropout_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    return {
        "rate": rate(
            checks,
            args["rate"],
            env,
            "the dropout rate",
            "the rate is the probability of zeroing each value, e.g. dropout(0.5)",
        )
    }


def _dropout_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    if not ctx.training:
        return h
    generator = ctx.generator()
    output, next_generator = ctx.backend.op("dropout", h, ctx.backend.const(options["rate"]), generator, outputs=2)
    ctx.update(generator, next_generator)
    return output


def _batchnorm_resolve(checks: Checks, args: dict[str, ir.Expr], env: dict[str, object]) -> dict[str, object]:
    momentum = rate(
        checks,
        args.get("momentum", ir.Number(0.9)),
        env,
        "the momentum",
        "the running statistics keep this share of their value at each step, e.g. momentum = 0.9",
    )
    epsilon_expr = args.get("epsilon", ir.Number(1e-5))
    epsilon = checks.number(epsilon_expr, env)
    if epsilon <= 0:
        checks.error(
            "E601",
            f"epsilon must be positive, got {epsilon:g}",
            epsilon_expr,
            "epsilon keeps the division finite, e.g. epsilon = 1e-5",
        )
    return {"momentum": momentum, "epsilon": float(epsilon)}


def _batchnorm_infer(checks: Checks, options: dict[str, object], in_shape: Shape, node: ir.Node) -> Inferred:
    if len(in_shape) not in (2, 4):
        checks.error(
            "E301",
            "batchnorm needs a [batch, features] or an image [batch, channels, height, width] "
            f"input, got [{dims(in_shape)}]",
            node,
            "flatten the input first (`flatten()`), or reshape it into images (`reshape([c, h, w])`)",
        )
    width = (example_sizes(in_shape)[0],)
    return Inferred(
        in_shape,
        (
            ("scale", width, "scale", True),
            ("shift", width, "shift", True),
            ("mean", width, "mean", False),
            ("variance", width, "variance", False),
        ),
        "linear",
    )


def _batchnorm_lower(ctx: Lowering, h: Any, params: dict[str, Any], options: dict[str, object]) -> Any:
    """Training: normalise by the batch's statistics and move the running ones towards them; inference: normalise
    by the running statistics."""
    running = params["mean"], params["variance"]
    if not ctx.training:
        statistics = running
    else:
        momentum = ctx.backend.const(options["momentum"])
        statistics = ctx.backend.op("batch_statistics", h, outputs=2)
        for variable, batch in zip(running, statistics, strict=False):
            ctx.update(variable, ctx.backend.op("moving_average", ctx.current(variable), batch, momentum))
    return ctx.backend.op(
        "normalize", h, *statistics, params["scale"], params["shift"], ctx.backend.const(options["epsilon"])
    )


LAYERS.register(
    LayerKind(
        "dense",
        "`dense N ACTIVATION`: act(x @ W + b)",
        ("units", "activation"),
        (),
        ("units", "activation"),
        _dense_resolve,
        _dense_infer,
        _dense_lower,
        ("weights", "biases"),
    )
)

LAYERS.register(
    LayerKind(
        "reverse",
        "`reverse(lambda = λ)`: gradient reversal, identity forward",
        (),
        ("lambda",),
        ("lambda",),
        _reverse_resolve,
        unchanged,
        _reverse_lower,
        reverses_gradient=True,
    )
)

LAYERS.register(
    LayerKind(
        "dropout",
        "`dropout(rate)`: zero each value with probability rate while training",
        ("rate",),
        (),
        ("rate",),
        _dropout_resolve,
        unchanged,
        _dropout_lower,
        row_wise=False,
    )
)

LAYERS.register(
    LayerKind(
        "batchnorm",
        "`batchnorm(momentum = 0.9, epsilon = 1e-5)`: batch normalisation per feature or channel",
        (),
        ("momentum", "epsilon"),
        (),
        _batchnorm_resolve,
        _batchnorm_infer,
        _batchnorm_lower,
        row_wise=False,
    )
)

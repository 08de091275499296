"""Human-readable views of a checked program: the `specc compile` summary and the `--emit ir` listing."""

from __future__ import annotations

import math
from collections.abc import Sequence

from spec_lang import program as P
from spec_lang.library.losses import LOSSES
from spec_lang.semantics.reversal import term_roles
from spec_lang.semantics.scalars import PROGRESS_POINTS, evaluate

TLL = "the mean over all domain rows (Transfer-Learning-Library's convention)"


def value_namer(program: P.Program):
    """Three functions that write the program's values as the summary, the listing and `specc graph` show them:
    `describe(value)` (its name, or its expression), `expression(value)` and `scalar(s)` (λ, weights, schedules,
    loss terms)."""
    names = {id(v): n for n, v in (*program.values.items(), *program.heads.items())}

    def describe(value: P.Value) -> str:
        """A value's name if it has one, else the expression that computes it."""
        return names.get(id(value)) or expression(value)

    def expression(value: P.Value) -> str:
        return P.expression(value, names, scalar)

    def scalar(s: P.Scalar, context: int = 0) -> str:
        match s:
            case P.Const(value=v):
                return f"{v:g}"
            case P.Hyper(name=name):
                return f"{name} ({program.hypers[name]:g})"
            case P.Schedule(name=name, args=args):
                return f"{name}({', '.join(f'{k} = {scalar(v)}' for k, v in args)})"
            case P.LossRef(name=name):
                return name
            case P.Arith(op="neg", left=left):
                return "-" + scalar(left, 3)
            case P.Arith(op=op, left=left, right=right) if right is not None:
                level = 1 if op in "+-" else 2
                text = f"{scalar(left, level)} {op} {scalar(right, level + 1)}"
                return f"({text})" if level < context else text
            case P.LossTerm(kind=kind):
                return LOSSES[kind].describe(s, describe)
        raise TypeError(s)

    return describe, expression, scalar


def type_text(program: P.Program, tensor: P.TensorType) -> str:
    """A tensor type as the compiled model holds it, e.g. `float32[batch, 2]`."""
    dtype = program.precision if tensor.dtype == "float" else "int32"
    return f"{dtype}[{', '.join('batch' if d is None else str(d) for d in tensor.shape)}]"


def layer_text(layer: P.LayerInstance, scalar) -> str:
    """A layer in one phrase: `dense 2→3 tanh`, or `kind(option = value, …)`."""
    if layer.kind == "dense":
        return f"dense {layer.in_shape[-1]}→{layer.option('units')} {layer.option('activation')}"
    options = [f"{'λ' if k == 'lambda' else k} = {_option(v, scalar)}" for k, v in layer.options]
    return f"{layer.kind}({', '.join(options)})"


def _option(value: object, scalar) -> str:
    if isinstance(value, (P.Const, P.Hyper, P.Arith, P.Schedule)):
        return scalar(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):  # sizes, such as reshape's shape, written as in the language
        return f"[{', '.join(map(str, value))}]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def stack_options_text(stack: P.StackDef) -> str:
    """How the optimiser treats a stack, when not as usual: " (lr_mult = 0.1)", " (frozen = true)"."""
    options = []
    if stack.lr_mult != 1:
        options.append(f"lr_mult = {stack.lr_mult:g}")
    if stack.frozen:
        options.append("frozen = true")
    return f" ({', '.join(options)})" if options else ""


def optimizer_text(phase: P.Phase, scalar) -> str:
    """A phase's optimiser with every option's value, e.g. `sgd(lr = 0.01, momentum = 0.9, …)`; clip_norm when
    set."""
    options = [("lr", phase.learning_rate), *((k, v) for k, v in phase.options.items() if v is not None)]
    return f"{phase.optimizer}({', '.join(f'{k} = {_option(v, scalar)}' for k, v in options)})"


def phase_lines(program: P.Program, scalar) -> list[str]:
    """The optimiser and objective of each phase: `sgd(…) minimize …` for a model's one phase; with several,
    `NAME: sgd(…) updates STACKS [repeat N] minimize …` for each, and the stages when there are any."""
    if len(program.phases) == 1:
        phase = program.phases[0]
        return [f"{optimizer_text(phase, scalar)} minimize {scalar(phase.objective)}"]
    lines = [
        line
        for p in program.phases
        for line in (
            f"{p.name} (updates {', '.join(p.stacks)}{f'; {p.repeat} steps' if p.repeat > 1 else ''}): "
            f"minimize {scalar(p.objective)}",
            f"  with {optimizer_text(p, scalar)}",
        )
    ]
    for stage in program.stages:
        length = f"{stage.epochs} epoch{'s' if stage.epochs != 1 else ''}" if stage.epochs else "to the end"
        copies = "".join(f", first copying {a} into {b}" for a, b in stage.copies)
        lines.append(f"stage {stage.name} ({length}{copies}) runs {', '.join(stage.phases)}")
    return lines


def _schedules(program: P.Program) -> list[P.Schedule]:
    """Every schedule in the program, once: those of reversal points, losses, the objectives, the learning rates."""
    scalars = [
        *(point.lam for point in P.reversal_points(program)),
        *program.losses.values(),
        *(scalar for phase in program.phases for scalar in (phase.objective, phase.learning_rate)),
    ]
    return list(dict.fromkeys(s for scalar in scalars for s in P.schedules(scalar)))


def _table(rows: Sequence[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]


def summary(program: P.Program, source_name: str, compile_seconds: float | None, mode: str) -> str:
    """What `specc compile` prints: inputs, stacks with parameter counts, heads, reversal points, losses,
    optimiser, the values of schedules and compile time."""
    describe, expression, scalar = value_namer(program)
    out = [f"model {program.name}  ({source_name})  precision {program.precision}, seed {program.seed}"]
    out += ["", "inputs"]
    out += _table([(i.name, type_text(program, i.type) + (f" < {i.bound}" if i.bound else "")) for i in program.inputs])
    out += ["", "stacks"]
    rows = [
        (
            s.name,
            ", ".join(layer_text(l, scalar) for l in s.layers),
            f"{s.parameter_count:,} parameters{stack_options_text(s)}",
        )
        for s in program.stacks
    ]
    rows.append(("total", "", f"{sum(s.parameter_count for s in program.stacks):,} parameters"))
    out += _table(rows)
    out += ["", "heads"]
    out += _table(
        [(n, "= " + expression(v), type_text(program, v.type)) for n, v in program.heads.items()] or [("(none)",)]
    )
    out += ["", "reversal points"]
    points = P.reversal_points(program)
    for point in points:
        where = f" (line {point.span.line})" if point.span else ""
        if isinstance(point.value, P.Reversed):
            place = f"reverse({describe(point.value.arg)})"
        else:
            place = f"{describe(point.value)}, layer {point.layer} of {point.value.stack}"
        out.append(f"  {place}{where}: λ = {scalar(point.lam)}")
        out.append(
            f"    reversed gradients of {', '.join(point.losses) or 'no loss'} "
            f"reach {', '.join(point.stacks) or 'no stack'}"
        )
    if not points:
        out.append("  (none)")
    out += ["", "losses"]
    marks = {n: "(adversarial)" for n in program.adversarial}
    out += _table([(n, "= " + scalar(s), marks.get(n, "")) for n, s in program.losses.items()])
    averaging = domain_averaging(program)
    if averaging:
        out += ["", "domain losses (how each averages its rows)"]
        out += [f"  {name}: {text}" for name, text in averaging.items()]
    several = len(program.phases) > 1
    out += ["", "phases (in order on each batch)" if several else "optimiser"]
    out += [f"  {line}" for line in phase_lines(program, scalar)]
    schedules = _schedules(program)
    if schedules:
        progress = ", ".join(f"{p:g}" for p in PROGRESS_POINTS)
        out += ["", f"schedules (values at training progress {progress})"]
        out += _table(
            [(scalar(s), *(f"{evaluate(s, program.hypers, p):.4g}" for p in PROGRESS_POINTS)) for s in schedules]
        )
    if compile_seconds is not None:
        functions = "update functions" if len(program.phases) > 1 else "update function"
        out += ["", f"compiled the {functions} in {compile_seconds:.2f} s (PyTensor mode {mode})"]
    return "\n".join(out) + "\n"


def domain_averaging(program: P.Program) -> dict[str, str]:
    """How each loss with domain terms averages the domain classifier's rows: a sum of one mean per batch (the
    DANN paper's and the seed's `bce(…, 0) + bce(…, 1)`), or one mean over all the rows (`bce_domains`)."""
    found: dict[str, str] = {}
    for name, loss in program.losses.items():
        terms = {id(t): t for n, t, role in term_roles(program) if n == name and role.role == "domain"}
        if not terms:
            continue
        weights = _weights(loss, program.hypers)
        per_batch = [weights.get(i) for i, t in terms.items() if t.kind != "bce_domains"]
        pooled = [weights.get(i) for i, t in terms.items() if t.kind == "bce_domains"]
        parts = [f"{_times(w)}{TLL}" for w in pooled]
        if per_batch:
            parts.append(_batch_means(per_batch))
        found[name] = "; ".join(parts)
    return found


def _batch_means(weights: list[float | None]) -> str:
    """A sum of one mean per batch, with the weights the loss gives each, as the summary describes it."""
    n = len(weights)
    if n == 1:
        return f"{_times(weights[0])}the mean over one batch's rows"
    if len(set(weights)) > 1 or weights[0] is None:
        shown = ", ".join("varying" if w is None else f"{w:g}" for w in weights)
        return f"a weighted sum of {n} batch means (weights {shown})"
    w = weights[0]
    total = "a sum" if w == 1 else f"{w:g} × a sum"
    paper = ", as the DANN paper and the seed" if w == 1 else ""
    times = "" if w * n == 1 else "twice " if w * n == 2 else f"{w * n:g} times "
    return f"{total} of {n} means, one per batch{paper}: with batches of equal size, {times}{TLL}"


def _times(weight: float | None) -> str:
    return "" if weight == 1 else "a varying multiple of " if weight is None else f"{weight:g} × "


def _weights(s: P.Scalar, hypers: dict[str, float], factor: float | None = 1.0) -> dict[int, float | None]:
    """Each loss function's factor in a scalar expression, by `id`; None where it follows the training progress."""
    match s:
        case P.LossTerm():
            return {id(s): factor}
        case P.Arith(op="neg", left=left):
            return _weights(left, hypers, None if factor is None else -factor)
        case P.Arith(op="+" | "-" as op, left=left, right=right) if right is not None:
            sign = None if factor is None else (factor if op == "+" else -factor)
            return {**_weights(left, hypers, factor), **_weights(right, hypers, sign)}
        case P.Arith(op="*" | "/" as op, left=left, right=right) if right is not None:
            inner, outer = (right, left) if op == "*" and not P.loss_functions(left) else (left, right)
            number = _constant(outer, hypers)
            if factor is None or number is None:
                return _weights(inner, hypers, None)
            return _weights(inner, hypers, factor * number if op == "*" else factor / number if number else math.inf)
    return {}


def _constant(s: P.Scalar, hypers: dict[str, float]) -> float | None:
    """The value of a scalar that stays the same through training; None for one that varies or reads losses."""
    if P.schedules(s) or P.loss_functions(s):
        return None
    try:
        return evaluate(s, hypers)
    except TypeError:  # a reference to another loss
        return None


def listing(program: P.Program) -> str:
    """The checked program as a flat listing (`specc compile --emit ir`): one line per value, every layer
    with its parameter names and shapes, every loss and the objective."""
    describe, expression, scalar = value_namer(program)
    out = [
        f"program {program.name} precision={program.precision} seed={program.seed}",
        f"  init weights={_init(program.weights_init)} biases={_init(program.biases_init)}",
    ]
    out += [f"  hyper {n} = {v:g}" for n, v in program.hypers.items()]
    out += [
        f"  input {i.name} : {type_text(program, i.type)}" + (f" < {i.bound}" if i.bound else "")
        for i in program.inputs
    ]
    for stack in program.stacks:
        out.append(f"  stack {stack.name}{stack_options_text(stack)}")
        for layer in stack.layers:
            params = "  ".join(
                f"{p.name} : {list(p.shape)}{'' if p.trainable else ' (state)'}{_own_init(program, p)}"
                for p in layer.params
            )
            shape = type_text(program, P.TensorType("float", layer.out_shape))
            out.append(f"    {layer_text(layer, scalar)} → {shape}" + (f"  {params}" if params else ""))
    for kind, group in (("let", program.values), ("head", program.heads)):
        out += [f"  {kind} {n} = {expression(v)} : {type_text(program, v.type)}" for n, v in group.items()]
    out += [
        f"  {'adversarial ' if n in program.adversarial else ''}loss {n} = {scalar(s)}"
        for n, s in program.losses.items()
    ]
    out += [
        f"  {phase.name + ': ' if len(program.phases) > 1 else ''}minimize {scalar(phase.objective)} with "
        f"{optimizer_text(phase, scalar)}"
        for phase in program.phases
    ]
    return "\n".join(out) + "\n"


def _own_init(program: P.Program, param: P.ParamSpec) -> str:
    """` init=he_normal()` for a weight or bias whose stack or layer chose another initialiser than the model's."""
    default = {"weights": program.weights_init, "biases": program.biases_init}.get(param.role, param.init)
    return "" if param.init == default else f" init={_init(param.init)}"


def _init(init: P.Initializer) -> str:
    return f"{init.scheme}({', '.join(f'{k}={v:g}' for k, v in init.args)})"

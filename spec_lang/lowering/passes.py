"""Optimisations of the lowering, each of which can be switched off (to measure its effect, or to rule it out).

- `batch_inputs`: a stack applied to several inputs (the feature extractor over xs and xt) runs once, over their
  rows joined into one tensor, and the result is split back (one matmul chain instead of one per input).
- `merge_heads`: likewise for a stack applied to several computed values (the domain head over reversed fs and
  ft); when those values are the consecutive parts of one batched pass, that pass's output is used as it is.
- `fused_losses`: losses of softmax and sigmoid outputs are computed from their logits (finite for any logits).
- `fast_tanh`: in float32, tanh is a rational function (`ops.fast_tanh`, at most 3.5e-7 from the exact value)
  that fuses with the surrounding arithmetic into one loop; the libm tanh that Numba calls otherwise costs about
  45 ns a value, more than all the matrix products of a 256-wide layer. float64 keeps the exact tanh.
- `compile_cache`: the compiled update function is kept on disk, keyed by the program and the options, so that
  a later `compile` of the same spec, in any process, skips building, differentiating and rewriting the graph.

Batching only ever joins applications whose layers treat rows independently (dense, reverse, convolution,
pooling, flatten, reshape; batch normalisation and dropout only in the inference graph, where they are row-wise:
running statistics, identity), so every value is the same as without it: batch statistics stay per input, and
dropout draws stay per application. It applies to the training graph; predictions never join inputs.

>>> Optimizations.parse(["batch_inputs"])
Optimizations(batch_inputs=False, merge_heads=True, fused_losses=True, fast_tanh=True, compile_cache=True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from spec_lang import program as P
from spec_lang.library.layers import LAYERS


@dataclass(frozen=True)
class Optimizations:
    """Which optimisations the lowering applies; all on by default."""

    batch_inputs: bool = True
    merge_heads: bool = True
    fused_losses: bool = True
    fast_tanh: bool = True
    compile_cache: bool = True

    @classmethod
    def none(cls) -> Optimizations:
        """Every optimisation off: the graph as the program is written."""
        return cls(**{f.name: False for f in fields(cls)})

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(cls, off: Iterable[str]) -> Optimizations:
        """All on but the named ones (`all` switches every one off); an unknown name raises ValueError."""
        off = list(off)
        if "all" in off:
            return cls.none()
        unknown = [n for n in off if n not in cls.names()]
        if unknown:
            raise ValueError(f"unknown optimisation {', '.join(unknown)}; known: {', '.join(cls.names())}, all")
        return replace(cls(), **{n: False for n in off})


MAX_BATCHED = 16  # distinct arguments in one batched pass, at most


@dataclass(frozen=True, eq=False)
class Group:
    """Applications of one stack that run as one pass: `args` are their distinct arguments, in order; each member
    takes the rows of the argument at `position[id(member)]`."""

    stack: str
    args: tuple[P.Value, ...]
    position: dict[int, int]


def row_wise(stack: P.StackDef, training: bool) -> bool:
    """Whether every layer of the stack treats the rows of its input independently in this graph."""
    kinds = [LAYERS[layer.kind] for layer in stack.layers]
    return all(kind.row_wise if training else kind.row_wise_in_inference for kind in kinds)


def batch_groups(
    program: P.Program, roots: list[P.Value], training: bool, optimizations: Optimizations
) -> dict[int, Group]:
    """The groups of applications to run as one pass, by the id of each member, among the values that `roots`
    are computed from. Applications of a stack to the same argument share one place in their group; an
    application whose argument is computed from another one of the group is left out of it (it must wait)."""
    order: dict[int, P.Value] = {}

    def visit(value: P.Value) -> None:  # arguments before the values computed from them, iteratively
        pending: list[tuple[P.Value, bool]] = [(value, False)]
        while pending:
            node, expanded = pending.pop()
            if id(node) in order:
                continue
            if expanded:
                order[id(node)] = node
            else:
                pending.append((node, True))
                pending.extend((parent, False) for parent in reversed(P.parents(node)))

    for root in roots:
        visit(root)
    by_stack: dict[str, list[P.Applied]] = {}
    for node in order.values():
        if isinstance(node, P.Applied) and row_wise(program.stack(node.stack), training):
            by_stack.setdefault(node.stack, []).append(node)
    groups: dict[int, Group] = {}
    for stack, applications in by_stack.items():
        args: list[P.Value] = []
        members: list[P.Applied] = []
        for application in applications:
            if any(a is application.arg for a in args):
                members.append(application)
                continue
            upstream = {id(a) for a in P.ancestors(application.arg)}
            if any(id(m) in upstream for m in members):
                continue  # computed from an application of the group: cannot run in the same pass
            args.append(application.arg)
            members.append(application)
        inputs_only = all(isinstance(a, P.InputValue) for a in args)
        if not (optimizations.batch_inputs if inputs_only else optimizations.merge_heads):
            continue
        for start in range(0, len(args), MAX_BATCHED):  # bounded passes: a join of N parts compiles in N² time
            part = args[start : start + MAX_BATCHED]
            if len(part) < 2:
                continue
            places = {id(m): next((i for i, a in enumerate(part) if a is m.arg), None) for m in members}
            group = Group(stack, tuple(part), {m: i for m, i in places.items() if i is not None})
            groups.update({m: group for m in group.position})
    return groups

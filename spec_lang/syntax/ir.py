"""The IR: what a model says, as frozen dataclasses, before parameters are applied.

Every door (`.dann` text, JSON, the Python builder) produces this IR; the printer turns it back into
text. Source spans ride along for diagnostics but take no part in equality, so the same model reached
through different doors compares equal.

>>> Model("m", inputs=(Input("x", "float", (Ref("batch"), Number(2))),)).inputs[0].name
'x'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

from spec_lang.diagnostics import Diagnostic, Span
from spec_lang.diagnostics.limits import MAX_DEPTH


@dataclass(frozen=True)
class Node:
    span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


# Expressions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number(Node):
    value: int | float


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class ListExpr(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Ref(Node):
    """A name: a model parameter, loop variable, input, value, stack, loss or a built-in symbol."""

    name: str


@dataclass(frozen=True)
class Keyword(Node):
    name: str
    value: Expr


@dataclass(frozen=True)
class Call(Node):
    """`func(args, key = value)`: a stack applied to a value, a loss, `reverse`, an initialiser, an optimiser."""

    func: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # one of + - * /
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Neg(Node):
    operand: Expr


PRECISIONS = ("float32", "float64")
ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "elu", "gelu", "softmax", "linear")
DTYPES = ("float", "int")
# A name, as the grammar's NAME; but `true` and `false` read as booleans, so they are no names, and a layer written
# as a call cannot be `dense` or `for`, which begin a dense layer and a loop. The JSON door and the builder refuse
# what the text cannot say, so that every model prints as text that reads back as the same model.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
BOOLEAN_WORDS = ("true", "false")
LAYER_WORDS = ("dense", "for")


def is_name(text: object) -> bool:
    """Whether the text can say this where a name goes.

    >>> is_name("hp_lambda"), is_name("x y"), is_name("true"), is_name("\u0430")
    (True, False, False, False)
    """
    return isinstance(text, str) and NAME.fullmatch(text) is not None and text not in BOOLEAN_WORDS


Expr = Number | Bool | ListExpr | Ref | Call | BinOp | Neg

# Layers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dense(Node):
    """`dense UNITS ACTIVATION (options)`: a fully connected layer with weights W and biases b; the options
    choose their initialisers, e.g. `dense 64 relu (weights = he_normal)`."""

    units: Expr
    activation: str
    options: tuple[Keyword, ...] = ()
    activation_span: Span | None = field(default=None, compare=False, repr=False, kw_only=True)


@dataclass(frozen=True)
class LayerCall(Node):
    """A layer written as a call, e.g. `reverse(lambda = 0.5)`."""

    kind: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[Keyword, ...] = ()


@dataclass(frozen=True)
class ForLayers(Node):
    """`for VAR in LIST { layers }`: the body repeated for each element, unrolled when the graph is built."""

    var: str
    iterable: Expr
    body: tuple[Layer, ...]


Layer = Dense | LayerCall | ForLayers

# Declarations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param(Node):
    """A model parameter in the header, with its default; overridable when the model is loaded."""

    name: str
    default: Expr


@dataclass(frozen=True)
class Input(Node):
    """`input NAME : DTYPE[dims] < BOUND`; BOUND (integer inputs only) says labels lie in [0, BOUND)."""

    name: str
    dtype: str
    shape: tuple[Expr, ...]
    bound: Expr | None = None


@dataclass(frozen=True)
class Stack(Node):
    """A named sequence of layers; it owns its parameters, shared by every application. Options such as
    `lr_mult = 0.1` or `frozen = true` say how the optimiser treats its parameters. A stack made from a
    template (`stack enc = block(64)`) has no layers of its own but the call of the template."""

    name: str
    layers: tuple[Layer, ...]
    options: tuple[Keyword, ...] = ()
    template: Call | None = None

    def __post_init__(self) -> None:
        if self.template is not None and self.layers:
            raise ValueError(f"stack '{self.name}' has layers and a template; it takes one or the other")


@dataclass(frozen=True)
class TemplateParam(Node):
    """A parameter of a template; every stack made from the template gives it, unless it has a default."""

    name: str
    default: Expr | None = None


@dataclass(frozen=True)
class Template(Node):
    """`template NAME(params) { layers }`: layers with parameters. A stack made from it (`stack enc = block(64)`)
    gets these layers with the arguments in place of the parameters, and parameters (weights) of its own."""

    name: str
    params: tuple[TemplateParam, ...]
    layers: tuple[Layer, ...]


# An include path is written in double quotes, without escapes; `#` would start a comment.
INCLUDE_PATH_FORBIDS = '"\\#\r\n'


@dataclass(frozen=True)
class Include(Node):
    """`include "lib/blocks.dann"`: the templates of another file; the path is relative to this file's folder."""

    path: str

    def __post_init__(self) -> None:
        if not self.path or any(c in INCLUDE_PATH_FORBIDS for c in self.path):
            raise ValueError(f"include path {self.path!r} is empty or holds a quote, a backslash, # or a line break")


@dataclass(frozen=True)
class Let(Node):
    name: str
    value: Expr


@dataclass(frozen=True)
class Head(Node):
    """A named output; each head gets a compiled predict function."""

    name: str
    value: Expr


@dataclass(frozen=True)
class Loss(Node):
    """`loss NAME = value`; `adversarial loss …` marks a term that trains a domain classifier or a critic against
    the shared features, checked for gradient reversal like a domain loss (W707)."""

    name: str
    value: Expr
    adversarial: bool = False


@dataclass(frozen=True)
class Optimize(Node):
    """`optimize [NAME =] sgd(lr = …) [updates STACK, …] [repeat N] [minimize OBJECTIVE]`: one optimiser step per
    batch (a phase). Without `minimize` the objective is the sum of all losses; without `updates` it updates every
    stack that is not frozen; `repeat N` takes N steps on each batch. A model with several names each one."""

    optimizer: Call
    objective: Expr | None = None
    name: str | None = None
    updates: tuple[Ref, ...] = ()
    repeat: Expr | None = None


@dataclass(frozen=True)
class Stage(Node):
    """`stage NAME(epochs = N) runs PHASE, …`: a part of the run, in which each batch runs these phases in order;
    stages follow one another in declaration order, the last one without `epochs` taking the rest of the run."""

    name: str
    runs: tuple[Ref, ...]
    options: tuple[Keyword, ...] = ()


@dataclass(frozen=True)
class Init(Node):
    """`init weights = normal(std = 1.0), biases = zeros`: the initialiser of each parameter role."""

    weights: Expr | None = None
    biases: Expr | None = None


@dataclass(frozen=True)
class Model(Node):
    name: str
    params: tuple[Param, ...] = ()
    inputs: tuple[Input, ...] = ()
    stacks: tuple[Stack, ...] = ()
    lets: tuple[Let, ...] = ()
    heads: tuple[Head, ...] = ()
    losses: tuple[Loss, ...] = ()
    optimizers: tuple[Optimize, ...] = ()
    stages: tuple[Stage, ...] = ()
    init: Init | None = None
    seed: Expr | None = None
    precision: str | None = None
    includes: tuple[Include, ...] = ()
    templates: tuple[Template, ...] = ()

    def with_params(self, values: dict[str, Expr]) -> Model:
        """This model with the defaults of the named parameters replaced (names must exist)."""
        params = tuple(replace(p, default=values[p.name]) if p.name in values else p for p in self.params)
        return replace(self, params=params)


def _parts(node: Node) -> dict[str, Any]:
    return {f.name: getattr(node, f.name) for f in fields(node) if f.compare}  # spans take no part


def children(node: Any) -> tuple:
    """What a node holds but its span (its fields' values), or the items of a tuple; nothing for anything else.

    >>> children(BinOp("+", Ref("a"), Number(1)))
    ('+', Ref(name='a'), Number(value=1))
    """
    if isinstance(node, tuple):
        return node
    return tuple(_parts(node).values()) if isinstance(node, Node) else ()


def rebuild[T](node: T, change: Callable[[Any], Any]) -> T:
    """A node with `change` applied to each of its fields but the span, or a tuple with it applied to each item;
    anything else as it is. The building block of walks over the IR (see `with_spans`)."""
    if isinstance(node, tuple):
        return cast(T, tuple(change(item) for item in node))
    if isinstance(node, Node):
        return replace(node, **{name: change(value) for name, value in _parts(node).items()})
    return node


def with_spans[T](node: T, change: Callable[[Span], Span]) -> T:
    """A node and everything in it with each span passed through `change`, e.g. to say which file it is from.

    >>> ref = with_spans(Neg(Ref("a", span=Span(1, 2, 1, 3))), lambda s: s.head(0))
    >>> ref.operand.span
    Span(line=1, column=2, end_line=1, end_column=2)
    """
    rebuilt = rebuild(node, lambda child: with_spans(child, change))
    if not isinstance(rebuilt, Node):
        return rebuilt
    spans = {f.name: getattr(rebuilt, f.name) for f in fields(rebuilt) if not f.compare}  # `span`, `activation_span`
    return replace(rebuilt, **{name: change(span) for name, span in spans.items() if span is not None})


def too_deep(node: Any) -> Diagnostic | None:
    """The error for the first node (in reading order) nested more than `MAX_DEPTH` nodes deep, if there is one;
    found without recursion, so it is safe for any depth.

    >>> expr = Ref("a")
    >>> for _ in range(MAX_DEPTH - 2):  # a `let`, 98 negations and a name: 100 levels
    ...     expr = Neg(expr)
    >>> too_deep(Let("v", expr)) is None
    True
    >>> too_deep(Let("v", Neg(expr))).message
    'this is nested more than 100 levels deep'
    """
    pending: list[tuple[Any, int]] = [(node, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, Node):
            depth += 1
            if depth > MAX_DEPTH:
                return Diagnostic(
                    "error",
                    "E108",
                    f"this is nested more than {MAX_DEPTH} levels deep",
                    item.span,
                    "give parts of it names of their own (a parameter, a `let`, or a `loss` for a "
                    "term of the objective); each bracket, operator, call and `for` is a level, and "
                    "so is each term of a sum",
                )
            if isinstance(item, (Number, Bool, Ref)):  # leaves, e.g. each number of a list of a million
                continue
        pending.extend((child, depth) for child in reversed(children(item)))
    return None


def negate(expr: Expr, span: Span | None = None) -> Expr:
    """`-expr`; the negation of a number literal is a negative literal, in every door alike.

    >>> negate(Number(2))
    Number(value=-2)
    """
    if isinstance(expr, Number):
        return Number(-expr.value, span=span or expr.span)
    return Neg(expr, span=span)


def literal(value: object) -> Expr:
    """The expression for a Python literal: int, float, bool or a (nested) list of them.

    >>> literal([8, 6])
    ListExpr(items=(Number(value=8), Number(value=6)))
    """
    if isinstance(value, bool):
        return Bool(value)
    if isinstance(value, (int, float)):
        return Number(value)
    if isinstance(value, (list, tuple)):
        return ListExpr(tuple(literal(v) for v in value))
    raise TypeError(f"not a literal: {value!r}")

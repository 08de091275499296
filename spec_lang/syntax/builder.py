"""The Python door: declare a model with handles and operators; `build()` returns the same IR as the text.

Wherever an expression is expected, a Python number, bool or list is a literal and a `str` is a name.
Declaring an input, stack, value, head or loss returns a handle on its name; a stack handle applied to a
value is a call. Handles combine with `+ - * /` and unary `-`, with Python numbers on either side. A
keyword argument that is a Python keyword takes a trailing underscore (PEP 8): `lambda_=` is `lambda =`.

>>> from spec_lang.syntax.printer import format_model
>>> m = ModelBuilder("tiny", lr=0.1)
>>> x = m.input("x", "float", ["batch", 2])
>>> y = m.input("y", "int", ["batch"], bound=3)
>>> net = m.stack("net", dense(4, "tanh"), reverse_layer(lambda_=0.5), dense(3, "softmax"))
>>> p = m.head("p", net(x))
>>> xent = m.loss("xent", crossentropy(p, y))
>>> reg = m.loss("reg", 0.01 * l2(net, biases=False))
>>> m.optimize(sgd(lr=m.param("lr")), minimize=xent + reg)
>>> print(format_model(m.build()), end="")
model tiny(lr = 0.1)
<BLANKLINE>
input x : float[batch, 2]
input y : int[batch] < 3
<BLANKLINE>
stack net { dense 4 tanh; reverse(lambda = 0.5); dense 3 softmax }
<BLANKLINE>
head p = net(x)
<BLANKLINE>
loss xent = crossentropy(p, y)
loss reg = 0.01 * l2(net, biases = false)
<BLANKLINE>
optimize sgd(lr = lr) minimize xent + reg
>>> import spec_lang
>>> spec_lang.from_ir(m.build()).program.stack("net").parameter_count
27
"""

from __future__ import annotations

import keyword
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union, cast

from spec_lang.diagnostics import did_you_mean
from spec_lang.syntax import ir

Operand = Union["Expression", str, int, float, bool, list, tuple]


def _node(value: Operand) -> ir.Expr:
    """The IR of an operand: a handle's node, a name for a `str`, a literal otherwise; `ValueError` for a `str` that
    is not a name and a number that is not finite."""
    if isinstance(value, Expression):
        return value.node
    if isinstance(value, str):
        return ir.Ref(_name(value))
    if isinstance(value, (list, tuple)):
        return ir.ListExpr(tuple(map(_node, value)))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) <= sys.float_info.max:
        shown = value if isinstance(value, float) else "an integer beyond 1.8e+308"
        raise ValueError(f"{shown} is not a usable number: numbers are finite, at most about 1.8e+308")
    return ir.literal(value)


def _name(name: str) -> str:
    """`name`, if the text can say it where a name goes; `ValueError` otherwise (e.g. `x y`, `2x`, `true`): the
    printer and the generated Python write names as they are."""
    if not ir.is_name(name):
        raise ValueError(
            f"{name!r} is not a name: a name is ASCII letters, digits and _, not led by a digit, and not true or false"
        )
    return name


def _optional(value: Operand | None) -> ir.Expr | None:
    return None if value is None else _node(value)


def _keywords(kwargs: dict[str, Operand]) -> tuple[ir.Keyword, ...]:
    return tuple(ir.Keyword(_name(_keyword_name(name)), _node(value)) for name, value in kwargs.items())


def _keyword_name(name: str) -> str:
    """`lambda_` → `lambda`: a trailing underscore is dropped where it only avoids a Python keyword."""
    return name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name


def _operator(op: str, reflected: bool = False) -> Callable[[Expression, Operand], Expression]:
    def apply(self: Expression, other: Operand) -> Expression:
        left, right = (other, self) if reflected else (self, other)
        return Expression(ir.BinOp(op, _node(left), _node(right)))

    return apply


@dataclass(frozen=True)
class Expression:
    """A handle on an IR expression; `+ - * /` and unary `-` build larger ones.

    >>> from spec_lang.syntax.printer import format_expr
    >>> format_expr((1 - ref("a") * 2 / -ref("b")).node)
    '1 - a * 2 / -b'
    """

    node: ir.Expr

    __add__, __radd__ = _operator("+"), _operator("+", reflected=True)
    __sub__, __rsub__ = _operator("-"), _operator("-", reflected=True)
    __mul__, __rmul__ = _operator("*"), _operator("*", reflected=True)
    __truediv__, __rtruediv__ = _operator("/"), _operator("/", reflected=True)

    def __neg__(self) -> Expression:
        return Expression(ir.negate(self.node))


@dataclass(frozen=True)
class StackHandle(Expression):
    """A declared stack: `stack(value)` applies it; as an expression it is the stack's name (`l2(stack)`)."""

    node: ir.Ref

    def __call__(self, value: Operand) -> Expression:
        return Expression(ir.Call(self.node.name, (_node(value),)))


@dataclass(frozen=True)
class Instance:
    """A template applied to arguments, e.g. `block(64, act="tanh")`: what a stack is made from."""

    call: ir.Call


@dataclass(frozen=True)
class TemplateHandle:
    """A template by name; calling it gives the `Instance` that a stack is made from. `ModelBuilder.template`
    returns one; for a template of an included file, name it: `TemplateHandle("block")`."""

    name: str

    def __call__(self, *args: Operand, **kwargs: Operand) -> Instance:
        return Instance(ir.Call(_name(self.name), tuple(map(_node, args)), _keywords(kwargs)))


def ref(name: str) -> Expression:
    """A name: a parameter, a loop variable, an input, a value, a stack or a built-in such as `zeros`."""
    return Expression(ir.Ref(_name(name)))


def call(func: str, *args: Operand, **kwargs: Operand) -> Expression:
    """`func(args, key = value)`, keyword arguments in the order given.

    >>> call("normal", std=1.0).node
    Call(func='normal', args=(), kwargs=(Keyword(name='std', value=Number(value=1.0)),))
    """
    return Expression(ir.Call(_name(func), tuple(map(_node, args)), _keywords(kwargs)))


def _function(name: str) -> Callable[..., Expression]:
    def apply(*args: Operand, **kwargs: Operand) -> Expression:
        return call(name, *args, **kwargs)

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"`{name}(…)`: `call({name!r}, *args, **kwargs)`."
    return apply


# losses, gradient reversal and CDAN conditioning, initialisers and optimisers, as in the text
crossentropy, bce, mse, entropy, l1, l2 = map(_function, ("crossentropy", "bce", "mse", "entropy", "l1", "l2"))
bce_domains = _function("bce_domains")
mmd, jmmd, coral = map(_function, ("mmd", "jmmd", "coral"))  # discrepancy losses
bsp, mcc, afn = map(_function, ("bsp", "mcc", "afn"))  # feature regularisers
classifier_discrepancy, mdd, bce_weighted_by_entropy = map(
    _function, ("classifier_discrepancy", "mdd", "bce_weighted_by_entropy")
)  # disparity losses
reverse, outer, interpolate = map(_function, ("reverse", "outer", "interpolate"))
wasserstein, gradient_penalty = map(_function, ("wasserstein", "gradient_penalty"))  # critic losses (WDGRL)
normal, uniform, constant = map(_function, ("normal", "uniform", "constant"))
sgd, adam, rmsprop = map(_function, ("sgd", "adam", "rmsprop"))
# schedules of the training progress (`constant` above is also the constant schedule)
dann_lambda, warmup, annealed, step_decay, cosine = map(
    _function, ("dann_lambda", "warmup", "annealed", "step_decay", "cosine")
)


def dense(units: Operand, activation: str, **options: Operand) -> ir.Dense:
    """`dense UNITS ACTIVATION (options)`, e.g. `dense(64, "relu", weights="he_normal")`."""
    return ir.Dense(_node(units), _name(activation), _keywords(options))


def layer(kind: str, *args: Operand, **kwargs: Operand) -> ir.LayerCall:
    """A layer written as a call, `kind(args, key = value)`."""
    if kind in ir.LAYER_WORDS:
        raise ValueError(f"a layer call cannot be named {kind!r}: write dense(units, activation) or for_each(…)")
    return ir.LayerCall(_name(kind), tuple(map(_node, args)), _keywords(kwargs))


def reverse_layer(*args: Operand, **kwargs: Operand) -> ir.LayerCall:
    """`reverse(lambda = …)` as a layer: `reverse_layer(lambda_=0.5)`."""
    return layer("reverse", *args, **kwargs)


def for_each(var: str, iterable: Operand, *body: ir.Layer) -> ir.ForLayers:
    """`for VAR in ITERABLE { body }`: `for_each("h", "hidden", dense("h", "tanh"))`."""
    return ir.ForLayers(_name(var), _node(iterable), body)


class ModelBuilder:
    """A model under construction; keyword arguments are its parameters and their defaults, in order.

    Statements that the text allows once (`init`, `seed`, `precision`) raise `ValueError` when given twice, as the
    parser does.
    """

    def __init__(self, name: str, /, **params: Operand):
        self.name = _name(name)
        self._params = tuple(ir.Param(_name(n), _node(v)) for n, v in params.items())
        self._includes: list[ir.Include] = []
        self._inputs: list[ir.Input] = []
        self._templates: list[ir.Template] = []
        self._stacks: list[ir.Stack] = []
        self._lets: list[ir.Let] = []
        self._heads: list[ir.Head] = []
        self._losses: list[ir.Loss] = []
        self._optimizers: list[ir.Optimize] = []
        self._stages: list[ir.Stage] = []
        self._once: dict[str, Any] = {}  # keyword arguments of `ir.Model`, each set by its method

    def param(self, name: str) -> Expression:
        """A handle on a declared parameter; `ValueError` for an undeclared one."""
        known = [p.name for p in self._params]
        if name not in known:
            hint = did_you_mean(name, known) or f"parameters: {', '.join(known) or 'none'}"
            raise ValueError(f"the model has no parameter '{name}'; {hint}")
        return ref(name)

    def input(self, name: str, dtype: str, shape: list[Operand], bound: Operand | None = None) -> Expression:
        """`input NAME : DTYPE[shape] < BOUND`; a `str` size is a name, e.g. `["batch", 2]`."""
        self._inputs.append(ir.Input(_name(name), _name(dtype), tuple(map(_node, shape)), _optional(bound)))
        return ref(name)

    def include(self, path: str) -> None:
        """`include "PATH"`: the templates of another file (name them with `TemplateHandle`); the path is relative to
        the model file's folder, or to the current directory for a model that is not read from a file."""
        self._includes.append(ir.Include(path))

    def template(self, name: str, /, *layers: ir.Layer, **params: Operand | None) -> TemplateHandle:
        """`template NAME(params) { layers }`; keyword arguments are its parameters and their defaults, in order,
        `None` for a parameter without one. Each stack made from the handle's instances has weights of its own.

        >>> from spec_lang.syntax.printer import format_model
        >>> m = ModelBuilder("m", hidden=[8, 8])
        >>> m.include("lib/blocks.dann")
        >>> block = m.template("block", dense("width", "act"), dense("width", "act"), width=None, act="relu")
        >>> enc = m.stack("enc", block(64, act="tanh"), lr_mult=0.1)
        >>> deep = m.stack("deep", TemplateHandle("mlp")("hidden"))
        >>> print(format_model(m.build()), end="")
        model m(hidden = [8, 8])
        <BLANKLINE>
        include "lib/blocks.dann"
        <BLANKLINE>
        template block(width, act = relu) { dense width act; dense width act }
        <BLANKLINE>
        stack enc(lr_mult = 0.1) = block(64, act = tanh)
        stack deep = mlp(hidden)
        """
        template_params = tuple(
            ir.TemplateParam(_name(_keyword_name(n)), _optional(default)) for n, default in params.items()
        )
        self._templates.append(ir.Template(_name(name), template_params, layers))
        return TemplateHandle(name)

    def stack(self, name: str, *layers: ir.Layer | Instance, **options: Operand) -> StackHandle:
        """`stack NAME(options) { layers }`, or `stack NAME(options) = TEMPLATE(args)` when given one template
        `Instance` instead of layers; the handle applies the stack when called."""
        match layers:
            case (Instance(call=instance),):
                self._stacks.append(ir.Stack(_name(name), (), _keywords(options), instance))
            case _ if any(isinstance(layer, Instance) for layer in layers):
                raise TypeError(f"stack '{name}' is made from one template instance or from layers, not both")
            case _:
                plain = cast(tuple[ir.Layer, ...], layers)  # no `Instance` among them: the case above
                self._stacks.append(ir.Stack(_name(name), plain, _keywords(options)))
        return StackHandle(ir.Ref(name))

    def let(self, name: str, value: Operand) -> Expression:
        """`let NAME = value`."""
        self._lets.append(ir.Let(_name(name), _node(value)))
        return ref(name)

    def head(self, name: str, value: Operand) -> Expression:
        """`head NAME = value`."""
        self._heads.append(ir.Head(_name(name), _node(value)))
        return ref(name)

    def loss(self, name: str, value: Operand, *, adversarial: bool = False) -> Expression:
        """`loss NAME = value` (`adversarial loss …` with `adversarial=True`); the handle can take part in the
        objective."""
        self._losses.append(ir.Loss(_name(name), _node(value), adversarial))
        return ref(name)

    def init(self, weights: Operand | None = None, biases: Operand | None = None) -> None:
        """`init weights = …, biases = …`, e.g. `init(weights=normal(std=1.0), biases="zeros")`."""
        self._set("init", ir.Init(_optional(weights), _optional(biases)))

    def seed(self, value: Operand) -> None:
        """`seed VALUE`."""
        self._set("seed", _node(value))

    def precision(self, word: str) -> None:
        """`precision float32` or `precision float64`; `ValueError` for another word."""
        if word not in ir.PRECISIONS:
            hint = did_you_mean(word, ir.PRECISIONS) or "use float32 or float64"
            raise ValueError(f"unknown precision '{word}'; {hint}")
        self._set("precision", word)

    def optimize(
        self,
        optimizer: Expression,
        minimize: Operand | None = None,
        *,
        name: str | None = None,
        updates: Sequence[str] = (),
        repeat: Operand | None = None,
    ) -> None:
        """`optimize [NAME =] sgd(lr = …) [updates STACKS] [repeat N] minimize OBJECTIVE`; without `minimize`, the
        sum of all losses; without `updates`, every stack that is not frozen. Several run in order on each batch.

        >>> m = ModelBuilder("m")
        >>> m.optimize(call("adam", lr=0.001), "critic_loss", name="critic_step", updates=["critic"], repeat=5)
        >>> from spec_lang.syntax.printer import format_model
        >>> print(format_model(m.build()).splitlines()[-1])
        optimize critic_step = adam(lr = 0.001) updates critic repeat 5 minimize critic_loss
        """
        if not isinstance(optimizer.node, ir.Call):
            raise TypeError("the optimiser is a call, e.g. sgd(lr=0.01)")
        step = ir.Optimize(
            optimizer.node,
            _optional(minimize),
            None if name is None else _name(name),
            tuple(ir.Ref(_name(stack)) for stack in updates),
            _optional(repeat),
        )
        self._optimizers.append(step)

    def stage(self, name: str, runs: Sequence[str], **options: Operand) -> None:
        """`stage NAME(OPTIONS) runs PHASES`, e.g. `m.stage("pretraining", ["source_step"], epochs=10)`."""
        keywords = tuple(ir.Keyword(_name(k), _node(v)) for k, v in options.items())
        self._stages.append(ir.Stage(_name(name), tuple(ir.Ref(_name(r)) for r in runs), keywords))

    def _set(self, statement: str, value: object) -> None:
        if statement in self._once:
            raise ValueError(f"`{statement}` is given twice")
        self._once[statement] = value

    def build(self) -> ir.Model:
        """The IR of the model declared so far."""
        return ir.Model(
            self.name,
            self._params,
            tuple(self._inputs),
            tuple(self._stacks),
            tuple(self._lets),
            tuple(self._heads),
            tuple(self._losses),
            **self._once,
            optimizers=tuple(self._optimizers),
            stages=tuple(self._stages),
            includes=tuple(self._includes),
            templates=tuple(self._templates),
        )

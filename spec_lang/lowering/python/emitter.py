"""`specc compile --emit python`: a standalone, readable Python module that builds the same PyTensor graph (or, for
`--emit theano`, the same graph with Theano: `target.py` says what differs).

The module carries copies of the building blocks (`lowering/pytensor/ops.py`, the vocabularies' formulas and update
rules) and initialisers it uses, `build` and `build_inference` functions (the training and the inference graph)
written by walking the checked program with the same walker as the compiler, and `compile_model`, which returns the
update function, one predict function per head and the shared variables.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
from collections.abc import Callable
from typing import Any, overload

from spec_lang import program as P
from spec_lang.library import initializers
from spec_lang.library.formulas import formulas
from spec_lang.library.initializers import INITIALIZERS
from spec_lang.library.optimizers import OPTIMIZERS, descend
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.target import PYTENSOR, Target, is_block
from spec_lang.lowering.walker import initializer_table, input_dtype, lower

# Names the generated module defines or uses itself; a user's name that collides gets a trailing underscore.
_RESERVED = (
    {
        "np",
        "pt",
        "pytensor",
        "tt",
        "theano",
        "grad_scale",
        "params",
        "hyper",
        "progress",
        "build",
        "compile_model",
        "inputs",
        "heads",
        "losses",
        "objective",
        "learning_rate",
        "state_updates",
        "build_inference",
        "SEED",
        "PRECISION",
        "random_batch",
    }
    | {n for n in dir(ops) if not n.startswith("_")}
    | set(formulas())
    | set(dir(builtins))
)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


class CodeBackend:
    """A lowering backend that returns Python source: each step becomes one line of `build`."""

    def __init__(self, program: P.Program, target: Target = PYTENSOR):
        self.program = program
        self.target = target
        self.lines: list[str] = []
        self.used_ops: list[str] = []
        self.taken: set[str] = set()
        self.anonymous: set[str] = set()

    def fresh(self, hint: str | None) -> str:
        """A new variable name: the hint made a safe identifier, numbered when taken; without a hint, `h…`, which
        `bind` may rename and `needed` may drop. A name a hint asked for is never either (even if it is `h`: a
        spec's value may be named so, and other code reads it by that name)."""
        base = hint if hint and hint.isidentifier() and not keyword.iskeyword(hint) else "h"
        if base in _RESERVED:
            base += "_"
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        if hint is None:
            self.anonymous.add(name)
        return name

    def assign(self, hint: str | None, expr: str) -> str:
        name = self.fresh(hint)
        self.lines.append(f"{name} = {expr}")
        return name

    def input(self, name: str, dtype: str, ndim: int) -> str:
        return self.assign(name, self.target.declare_input(name, input_dtype(self.program, dtype), ndim))

    def parameter(self, name: str) -> str:
        return f"params[{name!r}]"

    def hyper(self, name: str) -> str:
        return f"hyper[{name!r}]"

    def progress(self) -> str:
        return "progress"

    def const(self, value: float) -> str:
        return repr(float(value))

    def label(self, value: int) -> str:
        return repr(int(value))

    def arith(self, op: str, left: str, right: str | None) -> str:
        return f"-{left}" if op == "neg" else f"({left} {op} {right})"

    def generator(self, index: int) -> str:
        return self.op("random_generator", "SEED", index, hint="generator")

    def seed(self) -> str:
        return "SEED"

    @overload
    def op(self, name: str, *args: object, hint: str | None = None) -> str: ...
    @overload
    def op(self, name: str, *args: object, hint: str | None = None, outputs: int) -> tuple[str, ...]: ...
    def op(self, name: str, *args, hint: str | None = None, outputs: int = 1) -> str | tuple[str, ...]:
        """A call of an ops function; sizes fixed when the graph is built (ints, tuples) are written as literals.
        An op with several outputs is unpacked into as many names."""
        if name not in self.used_ops:
            self.used_ops.append(name)
        rendered = [
            a if isinstance(a, str) else "[" + ", ".join(a) + "]" if isinstance(a, list) else repr(a) for a in args
        ]
        if name in formulas():  # a vocabulary's own formula, for numpy and tensors alike: on the target's here
            rendered.append(f"xp={self.target.tensor}")
        call = f"{name}({', '.join(rendered)})"
        if outputs == 1:
            return self.assign(hint, call)
        names = tuple(self.fresh(hint) for _ in range(outputs))
        self.lines.append(f"{', '.join(names)} = {call}")
        return names

    def bind(self, name: str, value: str) -> str:
        """Name a value; an unnamed value computed on the line just before takes the name instead."""
        if value in self.anonymous and self.lines[-1].startswith(f"{value} = "):
            expression = self.lines.pop()[len(value) + 3 :]
            self.taken.discard(value)
            self.anonymous.discard(value)
            return self.assign(name, expression)
        return self.assign(name, value)

    def needed(self, outputs: list[str]) -> tuple[list[str], list[str]]:
        """The lines of `build` and the ops they call, leaving out unnamed values that nothing reads: the
        probabilities of a layer whose loss is computed from its logits."""
        read = {word for text in outputs for word in _IDENTIFIER.findall(text)}
        lines: list[str] = []
        for line in reversed(self.lines):
            name, expression = line.split(" = ", 1)
            if name not in self.anonymous or name in read:
                read.update(_IDENTIFIER.findall(expression))
                lines.insert(0, line)
        return lines, [op for op in self.used_ops if op in read]


def emit_python(program: P.Program, source_name: str, target: Target = PYTENSOR) -> str:
    """The generated module's text, for `target` (PyTensor, or Theano)."""
    backend, inference = CodeBackend(program, target), CodeBackend(program, target)
    graph = lower(program, backend, optimizations=target.optimizations)
    inference_graph = lower(program, inference, training=False, optimizations=target.optimizations)
    outputs = [
        *(v for phase in graph.phases for v in (phase.objective, phase.learning_rate)),
        *graph.inputs.values(),
        *graph.heads.values(),
        *graph.losses.values(),
        *(v for update in graph.state_updates for v in update),
    ]
    lines, used_ops = backend.needed(outputs)
    inference_lines, inference_ops = inference.needed(
        [
            *(phase.objective for phase in inference_graph.phases),
            *inference_graph.inputs.values(),
            *inference_graph.heads.values(),
            *inference_graph.losses.values(),
        ]
    )
    rules: dict[str, Callable[..., Any]] = {p.optimizer: OPTIMIZERS[p.optimizer].rule for p in program.phases}
    shared_code: list[Callable[..., Any]] = [*rules.values(), descend, ops.training_updates]
    helpers = [
        *(target.block(name) for name in _with_helpers([*used_ops, *inference_ops], target)),
        *(target.translate(inspect.getsource(shared)) for shared in shared_code),
        target.translate(inspect.getsource(ops.OptimizerState)),
    ]
    phases = [
        (p.name, rules[p.optimizer].__name__, program.optimized_parameters(p), p.options, p.repeat)
        for p in program.phases
    ]
    stages = [(stage.name, stage.epochs, list(stage.phases)) for stage in program.plan]
    params = initializer_table(program)
    schemes = list(dict.fromkeys(scheme for _, _, scheme, _ in params))
    init_fns: list[Callable[..., Any]] = [
        *(INITIALIZERS[scheme].draw for scheme in schemes),
        initializers.initial_parameters,
    ]
    if any(name.startswith(("glorot_", "he_")) for name in schemes):  # they read fan-in and fan-out
        init_fns.insert(0, initializers.fans)
    train_inputs = _needed(program, list(program.losses.values()))
    inputs = {i.name: (input_dtype(program, i.type.dtype), i.type.shape, i.bound) for i in program.inputs}
    head_inputs = {name: _input_names(program, [value]) for name, value in program.heads.items()}

    def dict_literal(items: dict[str, str]) -> str:
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in items.items()) + "}"

    out = [
        f'"""Model {_quoted(program.name)}, generated by specc from {_quoted(source_name)}. Edit freely.',
        "",
        f"Builds the model's graph with {target.name}; run it to compile the update function and take one step",
        "on random data: python THIS_FILE.py",
        '"""',
        "",
        *target.imports,
        "",
        f"PRECISION = {program.precision!r}",
        f"SEED = {program.seed!r}",
        f"HYPERPARAMETERS = {dict(program.hypers)!r}",
        "# (name, shape, initialiser, its keyword arguments) of every parameter and state variable, in order",
        "PARAMETERS = [",
        *[f"    {p!r}," for p in params],
        "]",
        "# each phase (an `optimize` statement): its name, its update rule (in UPDATE_RULES), the parameters it",
        "# updates with their learning-rate multipliers (frozen stacks left out), the optimiser's options, its steps",
        "PHASES = [",
        *[f"    {phase!r}," for phase in phases],
        "]",
        "# each stage of training: its name, its epochs (None: to the end) and the phases it runs, in order",
        f"STAGES = {stages!r}",
        "# name: (dtype, shape with None for the batch, label bound)",
        f"INPUTS = {inputs!r}",
        f"TRAIN_INPUTS = {train_inputs!r}",
        f"HEAD_INPUTS = {head_inputs!r}",
        "",
        "",
    ]
    out += [f"# Building blocks (from {target.origin})", ""]
    out += [source + "\n" for source in helpers]
    out += ["UPDATE_RULES = {" + ", ".join(f"{r.__name__!r}: {r.__name__}" for r in rules.values()) + "}", "", ""]
    out += ["# Initialisers (from spec_lang.library.initializers)", ""]
    out += [inspect.getsource(function) + "\n" for function in init_fns]
    out += ["DRAWS = {" + ", ".join(f"{s!r}: {s}" for s in schemes) + "}", "", ""]
    out += [
        "",
        "def build(params, hyper, progress):",
        '    """The training graph: inputs, heads, named losses, each phase\'s objective and learning rate, and the',
        "    new values of state variables (running statistics) after a step. Schedules follow `progress`, the",
        '    training progress in [0, 1]."""',
    ]
    out += ["    " + line for line in lines]
    out += [
        f"    objectives = {dict_literal({p.phase.name: p.objective for p in graph.phases})}",
        f"    learning_rates = {dict_literal({p.phase.name: p.learning_rate for p in graph.phases})}",
        f"    inputs = {dict_literal(graph.inputs)}",
        f"    heads = {dict_literal(graph.heads)}",
        f"    losses = {dict_literal(graph.losses)}",
        f"    state_updates = [{', '.join(f'({a}, {b})' for a, b in graph.state_updates)}]",
        "    return inputs, heads, losses, objectives, learning_rates, state_updates",
        "",
        "",
    ]
    out += [
        "def build_inference(params, hyper, progress):",
        '    """The inference graph, which prediction uses (dropout off, batch normalisation by running',
        '    statistics): inputs, heads, named losses and each phase\'s objective."""',
    ]
    if inference_lines == lines:
        out += [
            "    # this model has no dropout or batch normalisation: its inference graph is its training graph",
            "    inputs, heads, losses, objectives, *_ = build(params, hyper, progress)",
        ]
    else:
        out += ["    " + line for line in inference_lines]
        out += [
            f"    objectives = {dict_literal({p.phase.name: p.objective for p in inference_graph.phases})}",
            f"    inputs = {dict_literal(inference_graph.inputs)}",
            f"    heads = {dict_literal(inference_graph.heads)}",
            f"    losses = {dict_literal(inference_graph.losses)}",
        ]
    out += ["    return inputs, heads, losses, objectives", "", ""]
    out += [target.translate(_COMPILE_MODEL)]
    return "\n".join(out)


def _with_helpers(names: list[str], target: Target) -> list[str]:
    """The building blocks the graph calls and, after each, those they call in turn on `target`, each once."""
    found = list(dict.fromkeys(names))
    for name in found:  # grows while it is walked
        called = (
            word
            for word in _IDENTIFIER.findall(target.block(name))
            if word != name and (is_block(word) or word in target.helpers)
        )
        found += [word for word in dict.fromkeys(called) if word not in found]
    return found


def _quoted(text: str) -> str:
    r"""A string as a literal that is safe inside the module's docstring: every `"` escaped, so none can end it.

    >>> print(_quoted('say "hi"'))
    'say \"hi\"'
    """
    return repr(text).replace('"', '\\"')


def _needed(program: P.Program, losses: list[P.Scalar]) -> list[str]:
    return _input_names(program, [t for loss in losses for t in P.tensors(loss)])


def _input_names(program: P.Program, values: list[P.Value]) -> list[str]:
    """The names of the inputs the values are computed from, in declaration order."""
    used = {i.name for v in values for i in P.inputs_of(v)}
    return [i.name for i in program.inputs if i.name in used]


_COMPILE_MODEL = '''def compile_model(initial=None, mode=None):
    """Compile the training step (returns each phase's objective and every loss, before the step) and a predict
    function per head.

    `initial` maps parameter names to starting values; by default they are drawn as the spec says. Returns the
    training step `train(*arrays, stage=0)` (arrays in the order of TRAIN_INPUTS; it runs the phases of that stage
    of STAGES, each its number of steps), the predict functions by head, and the shared variables: parameters and
    hyperparameters by name, the training progress (set it between steps, from 0 to 1) and the optimiser's state
    by name.
    """
    values = initial if initial is not None else initial_parameters(PARAMETERS, SEED, PRECISION, DRAWS)
    params = {name: pytensor.shared(np.asarray(values[name], dtype=PRECISION), name=name) for name, *_ in PARAMETERS}
    hyper = {name: pytensor.shared(np.asarray(value, dtype=PRECISION), name=name)
             for name, value in HYPERPARAMETERS.items()}
    progress = pytensor.shared(np.asarray(0.0, dtype=PRECISION), name="progress")
    inputs, heads, losses, objectives, learning_rates, state_updates = build(params, hyper, progress)
    steps, optimizer_state = {}, {}
    for name, rule, optimized, options, _ in PHASES:
        updates, state = training_updates(UPDATE_RULES[rule], [params[p] for p in optimized], list(optimized.values()),
                                          objectives[name], learning_rates[name], **options)
        optimizer_state.update({(name + "/" if len(PHASES) > 1 else "") + key: v for key, v in state.items()})
        steps[name] = pytensor.function([inputs[n] for n in TRAIN_INPUTS], [*objectives.values(), *losses.values()],
                                        updates=updates + state_updates, mode=mode, on_unused_input="ignore")
    repeats = {name: repeat for name, *_, repeat in PHASES}

    def train(*arrays, stage=0):
        before = None
        for name in STAGES[stage][2]:
            for _ in range(repeats[name]):
                values = steps[name](*arrays)
                before = values if before is None else before
        return before

    inputs, heads, *_ = build_inference(params, hyper, progress)
    predict = {name: pytensor.function([inputs[n] for n in HEAD_INPUTS[name]], head, mode=mode)
               for name, head in heads.items()}
    return train, predict, params, hyper, progress, optimizer_state


def random_batch(rng, size=16):
    """Random data for every input: normal features, uniform labels below their bound."""
    batch = {}
    for name, (dtype, shape, bound) in INPUTS.items():
        full = tuple(size if d is None else d for d in shape)
        batch[name] = rng.integers(0, bound or 2, full).astype(dtype) if dtype.startswith("int") else \
            rng.standard_normal(full).astype(dtype)
    return batch


if __name__ == "__main__":
    train, *_ = compile_model()
    batch = random_batch(np.random.default_rng(0))
    objective, *terms = train(*[batch[name] for name in TRAIN_INPUTS])
    print("objective before one step:", float(objective))
'''

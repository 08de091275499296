"""Training phases and stages: each `optimize` statement is a phase (an optimiser step per batch, `repeat` times,
on its objective, updating its stacks, the others held fixed); `stage` statements split the run into parts, each
running some phases in order.

>>> from spec_lang.syntax.parser import parse
>>> from spec_lang.semantics.checker import resolve
>>> program, diagnostics = resolve(parse('''model m()
... input x : float[batch, 2]
... input y : int[batch] < 2
... stack f { dense 4 relu }
... stack c { dense 2 softmax }
... loss l = crossentropy(c(f(x)), y)
... optimize all = sgd(lr = 0.1) minimize l
... optimize head = sgd(lr = 0.1) updates c repeat 2 minimize l
... stage warmup(epochs = 1) runs all
... stage rest runs head'''))
>>> [(p.name, p.stacks, p.repeat) for p in program.phases], [(s.name, s.epochs) for s in program.stages]
([('all', ('f', 'c'), 1), ('head', ('c',), 2)], [('warmup', 1), ('rest', None)])
"""

from __future__ import annotations

from typing import cast

from spec_lang import program as P
from spec_lang.semantics.base import Abort
from spec_lang.semantics.objective import Objective, loss_names
from spec_lang.syntax import ir

# The name of the one phase of a model whose single `optimize` statement has no name.
UNNAMED = "optimize"


class Phases(Objective):
    def check_phases(self) -> None:
        """Every optimize statement as a phase; `phases_found` stays None when one has an error."""
        steps = self.model.optimizers
        if not steps:
            self.attempt(
                self.error,
                "E203",
                "the model has no `optimize` statement",
                self.model.span,
                "add e.g. `optimize sgd(lr = 0.01) minimize my_loss`",
            )
            return
        if len(steps) > 1:
            for step in steps:
                if step.name is None:
                    self.attempt(
                        self.error,
                        "E606",
                        "a model with several optimize statements names each one",
                        step.optimizer,
                        f"e.g. `optimize step_{steps.index(step) + 1} = {step.optimizer.func}(…)`",
                    )
        found = [self.attempt(self.phase, step) for step in steps]
        phases = tuple(p for p in found if p is not None)
        if len(phases) < len(steps) or any(d.severity == "error" for d in self.diagnostics):
            return
        self.warn_unminimized([p.objective for p in phases])
        self.phases_found = phases
        self.attempt(self.every_stack_updated, phases)

    def phase(self, step: ir.Optimize) -> P.Phase:
        optimizer, learning_rate, options = self.optimizer(step)
        objective = self.objective(step)
        repeat = 1
        if step.repeat is not None:
            value = self.number(step.repeat, self.settings)
            if isinstance(value, bool) or value != int(value) or value < 1:
                self.error(
                    "E601", f"repeat takes a whole number of steps ≥ 1, got {value:g}", step.repeat, "e.g. repeat 5"
                )
            repeat = int(value)
        return P.Phase(
            step.name or UNNAMED,
            optimizer,
            learning_rate,
            options,
            objective,
            self.updated_stacks(step, objective),
            repeat,
            span=step.span,
        )

    def trained_by(self, objective: P.Scalar) -> set[str]:
        """The stacks whose parameters the objective's gradient reaches."""
        stacks: set[str] = set()
        for name in loss_names(objective):
            loss = self.losses[name]
            stacks |= {
                a.stack for v in P.tensors(loss) for a in P.ancestors(v, gradient=True) if isinstance(a, P.Applied)
            }
            stacks |= {s for term in P.loss_functions(loss) for s in term.stacks}
        return stacks

    def updated_stacks(self, step: ir.Optimize, objective: P.Scalar) -> tuple[str, ...]:
        """The stacks a phase updates, in declaration order: those it names, or every stack that is not frozen."""
        if not step.updates:
            return tuple(name for name, stack in self.stacks.items() if not stack.frozen)
        trained = self.trained_by(objective)
        named: list[str] = []
        phase = f"optimize statement '{step.name}'" if step.name else "the optimize statement"
        for ref in step.updates:
            if ref.name not in self.stacks:
                if ref.name in self.failed or self.named.get(ref.name, ("",))[0] == "stack":
                    raise Abort  # the stack's own error is already reported
                self.unknown(ref, "stack", list(self.stacks))
            if ref.name in named:
                self.error("E606", f"stack '{ref.name}' is named twice", ref, "name each stack once in `updates`")
            if self.stacks[ref.name].frozen:
                self.error(
                    "E606",
                    f"{phase} updates stack '{ref.name}', which is frozen",
                    ref,
                    f"remove it from `updates`, or drop `frozen = true` from stack '{ref.name}'",
                )
            if ref.name not in trained:
                self.error(
                    "E606",
                    f"the objective of {phase} does not depend on stack '{ref.name}', so its step never changes it",
                    ref,
                    "remove the stack from `updates`, or minimise a loss that depends on it",
                )
            named.append(ref.name)
        return tuple(name for name in self.stacks if name in named)

    def every_stack_updated(self, phases: tuple[P.Phase, ...]) -> None:
        """E606 for a stack that some loss trains but no phase updates (with several phases): it would keep its
        initial weights."""
        updated = {s for p in phases for s in p.stacks}
        trained = set().union(*(self.trained_by(P.LossRef(name)) for name in self.losses))
        for node in self.model.stacks:
            stack = self.stacks.get(node.name)
            if stack is not None and not stack.frozen and node.name in trained and node.name not in updated:
                self.error(
                    "E606",
                    f"no optimize statement updates stack '{node.name}', so it keeps its initial weights",
                    node,
                    "add it to an optimize statement's `updates`, or mark it `frozen = true`",
                )

    def check_stages(self) -> None:
        if self.phases_found is not None:
            self.stages_found = self.attempt(self.stages, self.phases_found)

    def stages(self, phases: tuple[P.Phase, ...]) -> tuple[P.Stage, ...]:
        """The declared stages, in order; every phase must run in one, and only the last may leave out `epochs`."""
        nodes = self.model.stages
        found: list[P.Stage] = []
        for index, node in enumerate(nodes):
            bound = self.bind(
                node, ir.Call(f"stage {node.name}", (), node.options), (), ("epochs", "copy"), required=()
            )
            epochs = None
            if "epochs" in bound:
                value = self.number(bound["epochs"], self.settings)
                if isinstance(value, bool) or value != int(value) or value < 1:
                    self.error(
                        "E601",
                        f"a stage lasts a whole number of epochs ≥ 1, got {value:g}",
                        bound["epochs"],
                        "e.g. epochs = 10",
                    )
                epochs = int(value)
            elif index < len(nodes) - 1:
                self.error(
                    "E607",
                    f"stage '{node.name}' has no `epochs`, but only the last stage runs to the end of training",
                    node,
                    f"give it a length, e.g. `stage {node.name}(epochs = 10) runs …`",
                )
            runs: list[str] = []
            for ref in node.runs:
                if ref.name not in {p.name for p in phases}:
                    self.unknown(ref, "phase", [p.name for p in phases])
                if ref.name in runs:
                    self.error(
                        "E607",
                        f"stage '{node.name}' runs '{ref.name}' twice",
                        ref,
                        "name each phase once; use `repeat` for more steps",
                    )
                runs.append(ref.name)
            if not runs:
                self.error("E607", f"stage '{node.name}' runs no phase", node, "e.g. `runs source_step`")
            copies = self.copies(bound["copy"], index) if "copy" in bound else ()
            found.append(P.Stage(node.name, tuple(runs), epochs, copies))
        if nodes:
            run = {name for stage in found for name in stage.phases}
            for phase in phases:
                if phase.name not in run:
                    self.error(
                        "E607",
                        f"no stage runs optimize statement '{phase.name}'",
                        phase.span,
                        "add it to a stage's `runs`, or remove it",
                    )
        return tuple(found)

    def copies(self, expr: ir.Expr, index: int) -> tuple[tuple[str, str], ...]:
        """`copy = [FROM, TO]` (or a list of such pairs): stacks of the same layers, FROM's parameters copied into TO
        when training enters the stage; not on the first stage, which training never enters from another."""
        hint = "e.g. copy = [source_encoder, target_encoder]"
        pairs = (
            expr.items
            if isinstance(expr, ir.ListExpr) and all(isinstance(i, ir.ListExpr) for i in expr.items)
            else (expr,)
        )
        if index == 0:
            self.error(
                "E607",
                "the first stage cannot copy stacks: training starts in it",
                expr,
                "copy when a later stage starts",
            )
        found: list[tuple[str, str]] = []
        for pair in pairs:
            if not (
                isinstance(pair, ir.ListExpr)
                and len(pair.items) == 2
                and all(isinstance(i, ir.Ref) for i in pair.items)
            ):
                self.error("E607", "copy takes two stacks: the one to copy from and the one to copy into", pair, hint)
            source, target = (cast(ir.Ref, item) for item in pair.items)
            for ref in (source, target):
                if ref.name not in self.stacks:
                    if ref.name in self.failed or self.named.get(ref.name, ("",))[0] == "stack":
                        raise Abort
                    self.unknown(ref, "stack", list(self.stacks))
            shapes = [[p.shape for p in self.stacks[r.name].params] for r in (source, target)]
            if source.name == target.name or shapes[0] != shapes[1]:
                self.error(
                    "E607",
                    f"stack '{target.name}' cannot take the parameters of stack '{source.name}': "
                    + ("it is the same stack" if source.name == target.name else "their layers differ"),
                    pair,
                    "copy between two stacks made the same way, e.g. from one template",
                )
            found.append((source.name, target.name))
        return tuple(found)

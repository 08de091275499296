"""Warnings about what gradient reversal does to training, on a program that checks.

* W707: a domain term (a loss comparing predictions with a constant domain, `bce(domain(fs), 0)`) whose gradient
  reaches a stack the label loss also trains without passing a reversal point: the shared features learn to help
  the domain classifier, the opposite of domain-adversarial training (the classic DANN bug). A loss marked
  `adversarial loss …` is checked alike, whatever its functions: each value it reads is the adversary's output
  (a critic's, a domain classifier's), but for the label classifier's own outputs (values of a stack the label
  loss classifies with) and the domain roles its terms have anyway. A marked loss that reaches no stack the label
  loss trains is not an error: nothing is said.
* W708: a reversal on the path of the label loss: the features learn to make the labels harder to predict.

A reversal whose λ is the constant 0 holds the gradient back (a source-only twin of a DANN): neither warns.
"""

from __future__ import annotations

from collections.abc import Iterator

from spec_lang import program as P
from spec_lang.library.losses import LOSSES, TermRole
from spec_lang.program.graph import HELD, PLAIN, REVERSED, gradient_reach
from spec_lang.semantics.objective import loss_names
from spec_lang.semantics.phases import Phases
from spec_lang.syntax import ir


def term_roles(program: P.Program) -> Iterator[tuple[str, P.LossTerm, TermRole]]:
    """Every loss term's training roles (label or domain, `spec_lang.library.losses.TermRole`), with its loss."""
    for name, loss in program.losses.items():
        for term in P.loss_functions(loss):
            for role in LOSSES[term.kind].role(term):
                yield name, term, role


def adversaries(program: P.Program) -> Iterator[tuple[str, P.LossTerm, P.Value]]:
    """Every (loss, term, predictions) whose gradient should be reversed before the shared features: the domain
    roles of the terms, and in a loss marked adversarial each tensor value its terms read but inputs and the label
    classifier's outputs (see the module's description)."""
    classifiers: set[str] = set()
    for name, term, role in term_roles(program):
        if role.role == "domain":
            yield name, term, role.predictions
        elif name not in program.adversarial and isinstance(role.predictions, P.Applied):
            classifiers.add(role.predictions.stack)  # a label loss's classifier
    for name, loss in program.losses.items():
        for term in P.loss_functions(loss) if name in program.adversarial else ():
            if any(role.role == "domain" for role in LOSSES[term.kind].role(term)):
                continue  # its domain roles are above
            for value in dict.fromkeys(term.values):
                if isinstance(value, P.Applied) and value.stack in classifiers:
                    continue
                if not isinstance(value, P.InputValue):
                    yield name, term, value


def updated(program: P.Program, loss: str | None = None) -> set[str]:
    """The stacks the phases update whose objectives name `loss` (any loss by default); with one phase, every stack
    (a loss outside the objective is W704's)."""
    phases = [p for p in program.phases if loss is None or loss in loss_names(p.objective)]
    if len(program.phases) == 1:
        return {s.name for s in program.stacks}
    return {s for p in phases for s in p.stacks}


class Reversals(Phases):
    def warn_reversals(self, program: P.Program) -> None:
        """W707 and W708 (see the module's description)."""
        label_reach = {
            name: gradient_reach(program, role.predictions)
            for name, _, role in term_roles(program)
            if role.role == "label" and name not in program.adversarial
        }
        shared = {r.stack for name, reach in label_reach.items() for r in reach if r.way != HELD} & updated(program)
        for name, term, predictions in adversaries(program):
            reached = {r.stack for r in gradient_reach(program, predictions) if r.way == PLAIN}
            plain = sorted(reached & shared & updated(program, name))
            if plain:
                stacks = ", ".join(f"'{s}'" for s in plain)
                fix = self._fixed(program, term, predictions, set(plain))
                what = "adversarial" if name in program.adversarial else "domain"
                self.warn(
                    "W707",
                    f"the gradient of {what} loss '{name}' reaches {stacks}, which the label loss trains too, "
                    "without a reversal: the shared features learn to help the domain classifier",
                    (None if isinstance(predictions, P.InputValue) else predictions.span) or self._loss_node(name),
                    f"reverse the features the domain classifier reads: {fix}",
                )
        warned: set[int] = set()
        for name, reach in label_reach.items():
            for r in sorted(reach, key=lambda r: r.stack):
                if r.way == REVERSED and r.reversal is not None and id(r.reversal) not in warned:
                    warned.add(id(r.reversal))
                    point = "this reversal"
                    if isinstance(r.reversal, P.Applied):
                        point = f"the reverse layer of stack '{r.reversal.stack}' applied here"
                    self.warn(
                        "W708",
                        f"the gradient of label loss '{name}' passes {point}, so stack '{r.stack}' learns to "
                        "make the labels harder to predict",
                        r.reversal.span or self._loss_node(name),
                        "reverse only what the domain classifier reads, e.g. crossentropy(label(fs), ys) + "
                        "bce(domain(reverse(fs, lambda = 1)), 0)",
                    )

    def _loss_node(self, name: str) -> ir.Loss | None:
        return next((node for node in self.model.losses if node.name == name), None)

    @staticmethod
    def _fixed(program: P.Program, term: P.LossTerm, predictions: P.Value, stacks: set[str]) -> str:
        """The term with a reversal where `predictions` read the first value that one of `stacks` computes (or
        that reaches one): `bce(domain(reverse(fs, lambda = 1)), 0)`."""
        names = {id(v): n for n, v in (*program.values.items(), *program.heads.items())}
        node = predictions
        while isinstance(node, P.Applied) and node.stack not in stacks:
            node = node.arg
        fixed = {**names, id(node): f"reverse({names.get(id(node)) or P.expression(node, names)}, lambda = 1)"}
        return LOSSES[term.kind].describe(
            term,
            lambda v: P.expression(v, fixed) if v is predictions else names.get(id(v)) or P.expression(v, names),
        )

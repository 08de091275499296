"""Warnings about what gradient reversal does to training, on a program that checks.

* W707: a domain term (a loss comparing predictions with a constant domain, `bce(domain(fs), 0)`) whose gradient
  reaches a stack the label loss also trains without passing a reversal point: the shared features learn to help
  the domain classifier, the opposite of domain-adversarial training (the classic DANN bug).
* W708: a reversal on the path of the label loss: the features learn to make the labels harder to predict.

A reversal whose λ is the constant 0 holds the gradient back (a source-only twin of a DANN): neither warns.
"""

from __future__ import annotations

from collections.abc import Iterator

from spec_lang import program as P
from spec_lang.library.losses import LOSSES, TermRole
from spec_lang.program.graph import HELD, PLAIN, REVERSED, gradient_reach
from spec_lang.semantics.objective import Objective
from spec_lang.syntax import ir


def term_roles(program: P.Program) -> Iterator[tuple[str, P.LossTerm, TermRole]]:
    """Every loss term's training roles (label or domain, `spec_lang.library.losses.TermRole`), with its loss."""
    for name, loss in program.losses.items():
        for term in P.loss_functions(loss):
            for role in LOSSES[term.kind].role(term):
                yield name, term, role


class Reversals(Objective):
    def warn_reversals(self, program: P.Program) -> None:
        """W707 and W708 (see the module's description)."""
        roles = list(term_roles(program))
        label_reach = {
            name: gradient_reach(program, role.predictions) for name, _, role in roles if role.role == "label"
        }
        shared = {r.stack for reach in label_reach.values() for r in reach if r.way != HELD}
        for name, term, role in roles:
            if role.role != "domain":
                continue
            plain = sorted({r.stack for r in gradient_reach(program, role.predictions) if r.way == PLAIN} & shared)
            if plain:
                stacks = ", ".join(f"'{s}'" for s in plain)
                fix = self._fixed(program, term, role.predictions, set(plain))
                self.warn(
                    "W707",
                    f"the gradient of domain loss '{name}' reaches {stacks}, which the label loss trains too, "
                    "without a reversal: the shared features learn to help the domain classifier",
                    (None if isinstance(role.predictions, P.InputValue) else role.predictions.span)
                    or self._loss_node(name),
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

"""Roles of a program's heads and inputs in training, inferred from the checked program:

* the **label classifier** is what a `crossentropy` loss compares with a label input (`ys`): a head computing it
  (`label_probabilities`), else the one head applying the same classifier stack to the same input through other
  stacks (ADDA's target encoder), else the predictions inside the loss; `label_head=` names a head instead. Two
  losses comparing different predictions with labels are resolved by the one head computing one of them (MCD's
  first classifier); without one, or with several, the choice is ambiguous: an error asks for `label_head`.
* the **domain classifier** is what the losses behind a gradient-reversal point compare with a constant domain
  (`bce(domain(reverse(fs)), 0)`, `bce(…(ft)…, 1)`, `crossentropy(…, 2)`): each such term gives a domain class
  for one input; `domain_head=` names a head to use instead, fed each domain's inputs.
* **source inputs** are the label input, the label classifier's input and the inputs of the same domain; the
  **target inputs** are the other inputs the training step takes (`xt`). Source inputs are read from the source
  data, target inputs from the target data (from the source data when no target is given).
* **several labelled sources**: crossentropy losses comparing the same classifier, applied to different inputs
  (`label(features(xs1))` with `ys1`, `label(features(xs2))` with `ys2`), with their labels make one source each.
  The inputs are split into **groups**, each read from one data set with its own row count: one per source (its
  labels, its classifier input, the other inputs of its domain) and one per target domain (the target inputs of
  one domain class). See `spec_lang.training.sampler` for how groups of different sizes are paired.
* **target labels** (evaluation only, never trained on) are the array `target_labels` of the target data, by
  default `yt` when it has one; they are compared with the label classifier applied to the target input of the
  label classifier's input type (`target_input=` picks one when there are several).

>>> import spec_lang
>>> model = spec_lang.load("examples/seed_dann.dann").compile("FAST_COMPILE")
>>> roles = infer_roles(model)
>>> roles.label_head, roles.label_input, roles.source_inputs, roles.target_inputs
('label_probabilities', 'ys', ('xs', 'ys'), ('xt',))
"""

from __future__ import annotations

from dataclasses import dataclass

from spec_lang import program as P
from spec_lang.diagnostics import did_you_mean, file_error
from spec_lang.library.losses import TermRole
from spec_lang.semantics.reversal import term_roles
from spec_lang.training.protocol import Model


def value_key(value: P.Value, names: bool = True) -> tuple:
    """What a value computes, as nested tuples; reversal is the identity forward. With `names` False, the inputs are
    anonymous, so a stack chain applied to xs and to xt gives the same key."""
    match value:
        case P.InputValue():
            return ("input", value.name if names else None)
        case P.Reversed():
            return value_key(value.arg, names)
        case P.Outer():
            return ("outer", value.dim, value_key(value.features, names), value_key(value.predictions, names))
        case P.Interpolated():
            return ("interpolate", value_key(value.first, names), value_key(value.second, names))
    return ("stack", value.stack, value_key(value.arg, names))


@dataclass(frozen=True)
class DomainTerm:
    """One term of a domain loss: the classifier's predictions for one input, and that input's domain class."""

    input: str
    target: float | int
    kind: str  # the loss kind: "bce", "crossentropy"
    value: P.Value


@dataclass(frozen=True)
class Group:
    """Inputs read from one data set, with one row count: a labelled source's (`labels`, the label input, and
    `classified`, the label classifier's input) or a target domain's (`classified`: the input its target labels
    belong to, when one is known)."""

    inputs: tuple[str, ...]
    labels: str | None
    classified: str | None


@dataclass(frozen=True)
class Roles:
    """What the training loop and the metrics read from a program (see the module's description)."""

    label_input: str | None
    label_head: str | None
    label_value: P.Value | None
    classifier_input: str | None
    domain_head: str | None
    domain_terms: tuple[DomainTerm, ...]
    source_inputs: tuple[str, ...]
    target_inputs: tuple[str, ...]
    target_input: str | None
    target_input_choices: tuple[str, ...] = ()
    sources: tuple[Group, ...] = ()
    targets: tuple[Group, ...] = ()


def infer_roles(
    model: Model, label_head: str | None = None, domain_head: str | None = None, target_input: str | None = None
) -> Roles:
    """The label classifier, the domain classifier, the source and target inputs of a compiled model."""
    program = model.program
    heads = program.heads
    for name, what in ((label_head, "--label-head"), (domain_head, "--domain-head")):
        if name is not None and name not in heads:
            raise file_error(
                None,
                "E802",
                f"{what} {name}: the model has no head '{name}'",
                did_you_mean(name, heads) or f"heads: {', '.join(heads) or 'none'}",
            )
    terms = [(term.kind, role) for _, term, role in term_roles(program)]
    label_input, label_value, chosen_head = _label_classifier(heads, terms, label_head)
    classifier_input = None
    if label_value is not None:
        inputs = [i.name for i in P.inputs_of(label_value)]
        classifier_input = inputs[0] if len(set(inputs)) == 1 else None
    domain_terms = _domain_terms(program, terms)
    domain_head = _domain_head(heads, domain_terms, domain_head)
    pairs = _labelled(terms, label_input, label_value, classifier_input)
    sources, targets = _groups(list(model.train_inputs), pairs, domain_terms)
    source = tuple(n for g in sources for n in g.inputs)
    target = tuple(n for g in targets for n in g.inputs)
    types = {i.name: i.type for i in program.inputs}
    choices = tuple(n for n in target if classifier_input and types[n] == types[classifier_input])
    if target_input is not None:
        if target_input not in types:
            raise file_error(
                None,
                "E802",
                f"--target-input {target_input}: the model has no input '{target_input}'",
                did_you_mean(target_input, types) or f"target inputs: {', '.join(target) or 'none'}",
            )
    elif len(choices) == 1:
        target_input = choices[0]
    targets = tuple(_classified(g, types, classifier_input, target_input) for g in targets)
    return Roles(
        label_input,
        chosen_head,
        label_value,
        classifier_input,
        domain_head,
        tuple(domain_terms),
        source,
        target,
        target_input,
        choices,
        sources,
        targets,
    )


def _label_classifier(
    heads: dict[str, P.Value], terms: list[tuple[str, TermRole]], label_head: str | None
) -> tuple[str | None, P.Value | None, str | None]:
    """The label input, the label classifier's value and its head: the head named, else what the label terms
    (crossentropy against a label input) compare with it (a head computing the same when there is one)."""
    label_terms = [
        (r.target.name, r.predictions) for _, r in terms if r.role == "label" and isinstance(r.target, P.InputValue)
    ]
    if label_head is not None:
        label_value = heads[label_head]
        exact = [y for y, v in label_terms if value_key(v) == value_key(label_value)]
        similar = [y for y, v in label_terms if value_key(v, False) == value_key(label_value, False)]
        inputs = list(dict.fromkeys(exact or similar or [y for y, _ in label_terms]))
        if len(inputs) > 1:
            raise file_error(
                None,
                "E802",
                f"cannot tell which labels head '{label_head}' predicts: {', '.join(inputs)}",
                "compare the head with its labels in a crossentropy loss",
            )
        return (inputs[0] if inputs else None), label_value, label_head
    if not label_terms:
        return None, None, None
    distinct = list({(y, value_key(v)): (y, v) for y, v in label_terms}.values())
    if len(distinct) > 1 and not _several_sources(distinct):
        declared = [(y, name) for y, v in distinct for name in _computing(heads, v)]
        if len(declared) == 1:  # MCD: two classifiers trained on the labels, one of them a head
            label_input, head = declared[0]
            return label_input, heads[head], head
        described = "; ".join(f"'{y}' with {P.expression(v)}" for y, v in distinct)
        raise file_error(
            None,
            "E802",
            f"cannot tell which head is the label classifier: crossentropy losses compare {described}",
            "name it with --label-head NAME (label_head= in Python)",
        )
    label_input, label_value = distinct[0]
    chosen = next(iter(_computing(heads, label_value)), None) or _same_classifier(heads, label_value)
    return label_input, (label_value if chosen is None else heads[chosen]), chosen


def _computing(heads: dict[str, P.Value], value: P.Value) -> list[str]:
    """The heads that compute `value`."""
    return [name for name, head in heads.items() if value_key(head) == value_key(value)]


def _same_classifier(heads: dict[str, P.Value], value: P.Value) -> str | None:
    """The one head that applies the classifier stack of `value` to the same inputs through other stacks (ADDA:
    `label(target_encoder(xs))` for the label loss's `label(source_encoder(xs))`), else None."""
    if not isinstance(value, P.Applied):
        return None
    inputs = {i.name for i in P.inputs_of(value)}
    alike = [
        name
        for name, head in heads.items()
        if isinstance(head, P.Applied) and head.stack == value.stack and {i.name for i in P.inputs_of(head)} == inputs
    ]
    return alike[0] if len(alike) == 1 else None


def _domain_terms(program: P.Program, terms: list[tuple[str, TermRole]]) -> list[DomainTerm]:
    """The domain terms (a constant domain as target) comparing the predictions for one input, behind a gradient
    reversal, with their domain."""
    found = []
    for kind, r in terms:
        if r.role != "domain" or not isinstance(r.target, float | int):
            continue
        inputs = {i.name for i in P.inputs_of(r.predictions)}
        if len(inputs) == 1 and _reversed(program, r.predictions):
            kind = "bce" if r.predictions.activation == "sigmoid" else kind  # bce_domains: bce for each input
            found.append(DomainTerm(inputs.pop(), r.target, kind, r.predictions))
    return found


def _reversed(program: P.Program, value: P.Value) -> bool:
    return any(
        isinstance(a, P.Reversed)
        or (isinstance(a, P.Applied) and any(layer.reverses_gradient for layer in program.stack(a.stack).layers))
        for a in P.ancestors(value)
    )


def _domain_head(heads: dict[str, P.Value], terms: list[DomainTerm], domain_head: str | None) -> str | None:
    """The head named as the domain classifier (checked), else a head computing what the domain terms compare."""
    if domain_head is None:
        keys = {value_key(t.value, False) for t in terms}
        return next((n for n, v in heads.items() if value_key(v, False) in keys), None)
    if not terms:
        raise file_error(
            None,
            "E802",
            f"--domain-head {domain_head}: the model has no domain loss (a bce or crossentropy "
            "against a constant domain behind a gradient reversal)",
            "leave --domain-head out",
        )
    if len({i.name for i in P.inputs_of(heads[domain_head])}) != 1:
        raise file_error(
            None,
            "E802",
            f"--domain-head {domain_head}: the head reads several inputs",
            "name a head of one input, e.g. domain(fs)",
        )
    return domain_head


def _several_sources(terms: list[tuple[str, P.Value]]) -> bool:
    """Whether label terms are several labelled sources: the same classifier (up to its input), each applied to
    one input of its own and compared with labels of its own."""
    inputs = [{i.name for i in P.inputs_of(v)} for _, v in terms]
    return (
        len({value_key(v, False) for _, v in terms}) == 1
        and all(len(i) == 1 for i in inputs)
        and len({min(i) for i in inputs}) == len(terms) == len({y for y, _ in terms})
    )


def _labelled(
    terms: list[tuple[str, TermRole]], label_input: str | None, label_value: P.Value | None, classifier: str | None
) -> list[tuple[str | None, str | None]]:
    """The labelled sources as (label input, classifier input) pairs: the label classifier's first, then every
    other label term applying the same classifier to an input of its own with labels of its own."""
    if label_input is None and classifier is None:
        return []
    pairs: list[tuple[str | None, str | None]] = [(label_input, classifier)]
    if label_value is None or classifier is None:
        return pairs
    for _, r in terms:
        if r.role != "label" or not isinstance(r.target, P.InputValue):
            continue
        inputs = {i.name for i in P.inputs_of(r.predictions)}
        pair = (r.target.name, min(inputs) if len(inputs) == 1 else None)
        same = value_key(r.predictions, False) == value_key(label_value, False)
        if same and pair[1] is not None and all(pair[0] != y and pair[1] != x for y, x in pairs):
            pairs.append(pair)
    return pairs


def _groups(
    train: list[str], pairs: list[tuple[str | None, str | None]], terms: list[DomainTerm]
) -> tuple[tuple[Group, ...], tuple[Group, ...]]:
    """The source groups (per labelled source: its labels, its classifier's input and the other inputs of its
    domain) and the target groups (the other inputs the training step takes, one group per domain class)."""
    if not pairs:
        return (Group(tuple(train), None, None),), ()
    domains = {t.input: t.target for t in terms}
    claimed = {n for pair in pairs for n in pair if n is not None}
    sources = []
    for y, x in pairs:
        home = domains[x] if x in domains else object()  # object(): no domain
        mates = [n for n in train if n not in claimed and domains.get(n) == home]
        claimed.update(mates)
        sources.append(Group(tuple(n for n in train if n in (y, x) or n in mates), y, x))
    rest = [n for n in train if n not in claimed]
    classes = list(dict.fromkeys(domains.get(n) for n in rest))
    targets = tuple(Group(tuple(n for n in rest if domains.get(n) == c), None, None) for c in classes)
    return tuple(sources), targets


def _classified(group: Group, types: dict, classifier: str | None, chosen: str | None) -> Group:
    """A target group with the input its target labels belong to: `chosen` (--target-input) when it is one of
    the group's, else its one input of the label classifier's input type."""
    if chosen in group.inputs:
        return Group(group.inputs, None, chosen)
    matching = [n for n in group.inputs if classifier is not None and types[n] == types[classifier]]
    return Group(group.inputs, None, matching[0] if len(matching) == 1 else None)

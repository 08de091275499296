"""Reversal semantics (W707, W708, W703): a domain loss must reach the features the label loss trains through a
reversal point, the label loss must not pass one, and a `reverse` layer applied in a head is no reversal point of
its own. A reversal with the constant λ = 0 holds the gradient back (a source-only twin): no warning."""

from __future__ import annotations

from pathlib import Path

import pytest

import spec_lang
from spec_lang import program as P
from spec_lang.program.graph import HELD, PLAIN, REVERSED, gradient_reach
from spec_lang.reports.summary import summary

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HEADER = """model m(lam = 0.5)
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 2
stack features { dense 4 tanh }
stack label { dense 2 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
"""


REVERSAL_CODES = {"W703", "W705", "W707", "W708"}


def _codes(body: str, header: str = HEADER, **overrides: object) -> list[str]:
    """The reversal warnings of a model (unused values aside)."""
    spec = spec_lang.loads(header + body + "optimize sgd(lr = 0.1)\n", **overrides)
    return [w.code for w in spec.warnings if w.code in REVERSAL_CODES]


LABEL = "loss xent = crossentropy(label(fs), ys)\n"


@pytest.mark.parametrize(
    ("domain", "codes"),
    [
        ("bce(domain(fs), 0) + bce(domain(ft), 1)", ["W707", "W707"]),  # the classic DANN bug
        ("bce(domain(reverse(fs, lambda = lam)), 0) + bce(domain(ft), 1)", ["W707"]),
        ("bce_domains(domain(fs), domain(ft))", ["W707", "W707"]),
        ("bce(domain(reverse(fs, lambda = lam)), 0) + bce(domain(reverse(ft, lambda = lam)), 1)", []),
        ("bce_domains(domain(reverse(fs, lambda = lam)), domain(reverse(ft, lambda = lam)))", []),
        ("bce(domain(reverse(fs, lambda = 0)), 0) + bce(domain(reverse(ft, lambda = 0)), 1)", []),  # held back
        ("bce(domain(reverse(fs, lambda = dann_lambda())), 0) + bce(domain(reverse(ft, lambda = 1)), 1)", []),
    ],
)
def test_a_domain_loss_reaches_the_shared_features_through_a_reversal(domain: str, codes: list[str]) -> None:
    assert _codes(LABEL + f"loss dom = {domain}\n") == codes


def test_the_warning_is_located_at_the_domain_classifier_with_the_fix_as_hint() -> None:
    spec = spec_lang.loads(HEADER + LABEL + "loss dom = bce(domain(ft), 1)\noptimize sgd(lr = 0.1)\n")
    (warning,) = [w for w in spec.warnings if w.code in REVERSAL_CODES]
    assert (warning.code, warning.severity, warning.span.line, warning.span.column) == ("W707", "warning", 11, 16)
    assert warning.hint == "reverse the features the domain classifier reads: bce(domain(reverse(ft, lambda = 1)), 1)"


def test_a_lambda_parameter_set_to_zero_still_counts_as_adversarial() -> None:
    body = LABEL + "loss dom = bce(domain(reverse(fs, lambda = lam)), 0)\n"
    assert _codes(body, lam=0) == []
    program = spec_lang.loads(HEADER + body + "optimize sgd(lr = 0.1)\n", lam=0).program
    reach = gradient_reach(program, P.loss_functions(program.losses["dom"])[0].value("predictions"))
    assert {(r.stack, r.way) for r in reach} == {("domain", PLAIN), ("features", REVERSED)}


def test_no_warning_without_a_label_loss_or_when_the_shared_stack_is_frozen() -> None:
    assert _codes("loss dom = bce(domain(fs), 0) + bce(domain(ft), 1)\n") == []
    frozen = HEADER.replace("stack features {", "stack features(frozen = true) {")
    assert _codes(LABEL + "loss dom = bce(domain(fs), 0)\n", frozen) == []


def test_a_reversal_on_the_label_path_warns_at_the_reversal() -> None:
    spec = spec_lang.loads(
        HEADER + "loss xent = crossentropy(label(reverse(fs, lambda = lam)), ys)\noptimize sgd(lr = 0.1)\n"
    )
    (warning,) = [w for w in spec.warnings if w.code in REVERSAL_CODES]
    assert warning.code == "W708" and (warning.span.line, warning.span.column) == (10, 32)
    held = "loss xent = crossentropy(label(reverse(fs, lambda = 0)), ys)\n"  # held back: no gradient, no warning
    assert _codes(held) == []


def test_a_reverse_layer_counts_for_the_layers_before_it() -> None:
    header = HEADER.replace("stack domain { dense", "stack domain { reverse(lambda = lam); dense")
    assert _codes(LABEL + "loss dom = bce(domain(fs), 0) + bce(domain(ft), 1)\n", header) == []
    program = spec_lang.loads(header + LABEL + "loss dom = bce(domain(fs), 0)\noptimize sgd(lr = 0.1)\n").program
    reach = gradient_reach(program, P.loss_functions(program.losses["dom"])[0].value("predictions"))
    assert {(r.stack, r.way) for r in reach} == {("domain", PLAIN), ("features", REVERSED)}
    label_first = HEADER.replace("stack label {", "stack label { reverse(lambda = 1);")
    assert _codes(LABEL + "loss dom = bce(domain(reverse(fs, lambda = 1)), 0)\n", label_first) == ["W708"]


def test_held_back_gradients_are_recorded_as_held() -> None:
    program = spec_lang.load(EXAMPLES / "moons_nn.dann").program
    term = P.loss_functions(program.losses["domain_loss"])[0]
    reach = gradient_reach(program, term.value("predictions"))
    assert {(r.stack, r.way) for r in reach} == {("domain_classifier", PLAIN), ("features", HELD)}


def test_a_head_on_a_stack_that_starts_with_reverse_is_no_phantom_reversal_point() -> None:
    header = HEADER.replace("stack domain { dense", "stack domain { reverse(lambda = lam); dense")
    text = header + LABEL + "head d = domain(fs)\nloss dom = bce(domain(fs), 0) + bce(domain(ft), 1)\n"
    spec = spec_lang.loads(text + "optimize sgd(lr = 0.1)\n")
    assert spec.warnings == ()  # no W703 for the head
    points = P.reversal_points(spec.program)
    assert [p.losses for p in points] == [("dom",), ("dom",)]
    assert summary(spec.program, "m", None, "FAST_COMPILE").count("layer 0 of domain") == 2
    # a head alone: the layer reaches no loss, said once however many heads apply it
    alone = header + LABEL + "head d = domain(fs)\nhead e = domain(ft)\n"
    assert _codes("", alone).count("W703") == 1


def test_strict_makes_warnings_errors() -> None:
    domain = "loss dom = bce(domain(fs), 0) + bce(domain(reverse(ft, lambda = 1)), 1)\n"
    text = HEADER + LABEL + domain + "optimize sgd(lr = 0.1)\n"
    assert [w.code for w in spec_lang.loads(text).warnings] == ["W707"]
    with pytest.raises(spec_lang.SpecError) as raised:
        spec_lang.loads(text, strict=True)
    assert [(d.severity, d.code) for d in raised.value.diagnostics] == [("error", "W707")]


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.dann")))
def test_no_example_has_the_reversal_bugs(example: str) -> None:
    assert not {"W703", "W707", "W708"} & {w.code for w in spec_lang.load(EXAMPLES / example).warnings}


def test_the_hint_of_bce_domains_reverses_only_the_unreversed_batch() -> None:
    spec = spec_lang.loads(
        HEADER
        + LABEL
        + "loss dom = bce_domains(domain(fs), domain(reverse(ft, lambda = lam)))\noptimize sgd(lr = 0.1)\n"
    )
    (warning,) = [w for w in spec.warnings if w.code in REVERSAL_CODES]
    assert warning.code == "W707" and warning.span.column == 24
    assert warning.hint.endswith(": bce_domains(domain(reverse(fs, lambda = 1)), domain(reverse(ft)))")


ADVERSARIAL = HEADER + (
    "input fake : float[batch, 1]\nstack critic { dense 1 linear }\nstack adversary { dense 2 softmax }\n"
)


@pytest.mark.parametrize(
    ("loss", "codes"),
    [
        ("adversarial loss c = mse(critic(ft), fake)", ["W707"]),  # a least-squares critic, unreversed
        ("adversarial loss c = mse(critic(reverse(ft, lambda = lam)), fake)", []),
        ("adversarial loss c = mse(critic(reverse(ft, lambda = 0)), fake)", []),  # held back
        ("loss c = mse(critic(ft), fake)", []),  # unmarked: an mse is no domain term
        ("adversarial loss c = mse(critic(fs), critic(ft))", ["W707", "W707"]),
        ("adversarial loss c = mse(critic(xs), fake)", []),  # reaches no stack the label loss trains: nothing
        # MDD: the label classifier's own outputs are no adversary's; the adversary's must be reversed
        (
            "adversarial loss c = mdd(label(fs), adversary(reverse(fs, lambda = 1)), "
            "label(ft), adversary(reverse(ft, lambda = 1)))",
            [],
        ),
        ("adversarial loss c = mdd(label(fs), adversary(fs), label(ft), adversary(reverse(ft, lambda = 1)))", ["W707"]),
        ("adversarial loss c = classifier_discrepancy(adversary(ft), adversary(reverse(fs, lambda = lam)))", ["W707"]),
        # a term with domain roles keeps them: the label classifier's probabilities are not an adversary's
        ("adversarial loss c = bce_weighted_by_entropy(domain(ft), 1, label(ft))", ["W707"]),
        ("adversarial loss c = bce_weighted_by_entropy(domain(reverse(ft, lambda = lam)), 1, label(ft))", []),
        # a marked loss against the labels is no label loss: its reversal is not W708
        ("adversarial loss c = crossentropy(adversary(reverse(fs, lambda = lam)), ys)", []),
        ("loss c = crossentropy(adversary(reverse(fs, lambda = lam)), ys)", ["W708"]),
    ],
)
def test_a_loss_marked_adversarial_is_checked_like_a_domain_loss(loss: str, codes: list[str]) -> None:
    assert _codes(LABEL + loss + "\n", ADVERSARIAL) == codes


def test_the_warning_on_a_marked_loss_names_it_adversarial_and_reverses_the_critic_input() -> None:
    spec = spec_lang.loads(ADVERSARIAL + LABEL + "adversarial loss c = mse(critic(ft), fake)\noptimize sgd(lr = 0.1)\n")
    (warning,) = [w for w in spec.warnings if w.code in REVERSAL_CODES]
    assert warning.message.startswith("the gradient of adversarial loss 'c' reaches 'features'")
    assert (warning.span.line, warning.span.column) == (14, 26)
    assert warning.hint.endswith(" reads: mse(critic(reverse(ft, lambda = 1)), fake)")
    assert spec.program.adversarial == frozenset({"c"})

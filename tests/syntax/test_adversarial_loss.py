"""`adversarial loss …`: the mark on a loss that trains a domain classifier or a critic, the same in every door
(text, JSON, the builder), printed back by the canonical printer, kept in the checked program and its fingerprint;
`adversarial` stays a name wherever a statement does not begin."""

from __future__ import annotations

import json

import pytest

import spec_lang
from spec_lang.diagnostics import SpecError
from spec_lang.program.fingerprint import fingerprint
from spec_lang.syntax import ir
from spec_lang.syntax.builder import ModelBuilder, call, crossentropy, dense, reverse
from spec_lang.syntax.jsonio import dump_json, dumps_json, load_json
from spec_lang.syntax.parser import parse
from spec_lang.syntax.printer import format_model, format_source

TEXT = """model m()

input xs : float[batch, 2]
input ys : int[batch] < 2
input fake : float[batch, 1]

stack features { dense 4 tanh }
stack label { dense 2 softmax }
stack critic { dense 1 linear }

let fs = features(xs)

loss xent = crossentropy(label(fs), ys)
# the critic's loss, used adversarially
adversarial loss critic_loss = mse(critic(reverse(fs, lambda = 1)), fake)  # least squares

optimize sgd(lr = 0.1)
"""


def test_the_text_door_reads_the_mark_and_the_printer_writes_it_back() -> None:
    model = parse(TEXT)
    assert [(loss.name, loss.adversarial) for loss in model.losses] == [("xent", False), ("critic_loss", True)]
    assert format_source(TEXT) == TEXT  # canonical already: comments and the mark kept
    assert parse(format_model(model)) == model
    assert model.losses[1] != ir.Loss("critic_loss", model.losses[1].value)  # the mark takes part in equality


def test_the_mark_only_begins_a_loss_statement() -> None:
    for wrong in ("adversarial let v = 1", "adversarial head h = 1", "loss adversarial l = 1"):
        with pytest.raises(SpecError):
            parse(f"model m()\n{wrong}\n")


def test_adversarial_stays_a_name_elsewhere() -> None:
    text = (
        "model adversarial(adversarial = 2)\ninput xs : float[batch, adversarial]\n"
        "stack adversarial_net { dense 2 tanh }\n"
        "let adversarial_v = xs\nloss adversarial = mse(adversarial_net(xs), xs)\n"
        "adversarial loss a = adversarial * mse(adversarial_net(xs), xs)\n"
    )
    model = parse(text)
    assert model.name == "adversarial" and model.params[0].name == "adversarial"
    assert [(loss.name, loss.adversarial) for loss in model.losses] == [("adversarial", False), ("a", True)]
    assert model.losses[1].value == ir.BinOp("*", ir.Ref("adversarial"), model.losses[0].value)
    assert parse(format_model(model)) == model


def test_the_json_door_reads_and_writes_the_mark_only_when_set() -> None:
    model = parse(TEXT)
    data = dump_json(model)
    assert data["losses"][0] == {"name": "xent", "value": data["losses"][0]["value"]}  # no key when unmarked
    assert data["losses"][1]["adversarial"] is True
    assert load_json(data) == model
    assert load_json(json.loads(dumps_json(model))) == model
    data["losses"][1]["adversarial"] = False
    assert not load_json(data).losses[1].adversarial
    data["losses"][1]["adversarial"] = "yes"
    with pytest.raises(SpecError) as raised:
        load_json(data)
    assert "/losses/1/adversarial" in str(raised.value)


def test_the_builder_marks_a_loss() -> None:
    m = ModelBuilder("m")
    xs = m.input("xs", "float", ["batch", 2])
    ys = m.input("ys", "int", ["batch"], bound=2)
    fake = m.input("fake", "float", ["batch", 1])
    features = m.stack("features", dense(4, "tanh"))
    label = m.stack("label", dense(2, "softmax"))
    critic = m.stack("critic", dense(1, "linear"))
    fs = m.let("fs", features(xs))
    m.loss("xent", crossentropy(label(fs), ys))
    m.loss("critic_loss", call("mse", critic(reverse(fs, lambda_=1)), fake), adversarial=True)
    m.optimize(call("sgd", lr=0.1))
    assert m.build() == parse(TEXT)


def test_the_checked_program_keeps_the_mark_and_its_fingerprint_changes_with_it() -> None:
    marked = spec_lang.loads(TEXT).program
    unmarked = spec_lang.loads(TEXT.replace("adversarial loss", "loss")).program
    assert marked.adversarial == frozenset({"critic_loss"}) and unmarked.adversarial == frozenset()
    assert fingerprint(marked) != fingerprint(unmarked)

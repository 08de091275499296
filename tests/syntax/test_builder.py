"""The Python door: builder spellings of the examples give the IR of the parsed files, and expression
handles obey Python's operator rules with numbers on either side."""

from __future__ import annotations

from pathlib import Path

import pytest

from spec_lang.syntax import ir
from spec_lang.syntax.builder import (
    ModelBuilder,
    bce,
    call,
    crossentropy,
    dense,
    for_each,
    l2,
    normal,
    ref,
    reverse,
    reverse_layer,
    sgd,
)
from spec_lang.syntax.parser import parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _parse(name: str) -> ir.Model:
    path = EXAMPLES / name
    return parse(path.read_text(encoding="utf-8"), str(path))


def _expr(text: str) -> ir.Expr:
    """The IR of an expression written in `.dann` text."""
    return parse(f"model m()\nlet v = {text}\n").lets[0].value


def test_seed_l2_mlp() -> None:
    m = ModelBuilder("seed_l2_mlp", hidden=[8, 6, 4, 8, 16], classes=32, reg_lambda=0.1, lr=0.01)
    m.init(weights=normal(std=1.0), biases="zeros")
    m.seed(1)
    m.precision("float64")
    x = m.input("x", "float", ["batch", 10])
    z = m.input("z", "int", ["batch"], bound=m.param("classes"))
    net = m.stack("net", for_each("h", m.param("hidden"), dense(ref("h"), "tanh")), dense("classes", "softmax"))
    probabilities = m.head("probabilities", net(x))
    xent = m.loss("xent", crossentropy(probabilities, z))
    reg = m.loss("reg", m.param("reg_lambda") * l2(net))
    m.optimize(sgd(lr=m.param("lr")), minimize=xent + reg)
    assert m.build() == _parse("seed_l2_mlp.dann")


def test_seed_dann() -> None:
    m = ModelBuilder("seed_dann", hp_lambda=0.5, hp_mu=0.01)
    m.init(weights=normal(std=1.0), biases="zeros")
    m.seed(1)
    m.precision("float64")
    xs = m.input("xs", "float", ["batch", 2])
    xt = m.input("xt", "float", ["batch", 2])
    ys = m.input("ys", "int", ["batch"], bound=8)
    features = m.stack("features", dense(3, "tanh"), dense(4, "tanh"))
    label = m.stack("label", dense(7, "tanh"), dense(8, "softmax"))
    domain = m.stack("domain", dense(5, "tanh"), dense(6, "sigmoid"))
    fs = m.let("fs", features(xs))
    ft = m.let("ft", features(xt))
    m.head("label_probabilities", label(fs))
    m.head("domain_probabilities", domain(fs))
    lam = m.param("hp_lambda")
    label_loss = m.loss("label_loss", crossentropy(label(fs), ys))
    domain_loss = m.loss("domain_loss", bce(domain(reverse(fs, lambda_=lam)), 0)
                         + bce(domain(reverse(ft, lambda_=lam)), 1))
    m.optimize(sgd(lr=m.param("hp_mu")), minimize=label_loss + domain_loss)
    assert m.build() == _parse("seed_dann.dann")


def test_reverse_layer_and_penalty_keywords() -> None:
    m = ModelBuilder("m", hp_lambda=0.5)
    domain = m.stack("domain", reverse_layer(lambda_=m.param("hp_lambda")), dense(5, "tanh"))
    m.loss("weight_decay", 0.001 * l2(domain, biases=False))
    assert m.build() == parse("model m(hp_lambda = 0.5)\nstack domain { reverse(lambda = hp_lambda); dense 5 tanh }\n"
                              "loss weight_decay = 0.001 * l2(domain, biases = false)\n")


a, b = ref("a"), ref("b")


@pytest.mark.parametrize(("built", "text"), [
    (a + 1, "a + 1"), (1 + a, "1 + a"),
    (a - 1, "a - 1"), (1 - a, "1 - a"),
    (a * 2.5, "a * 2.5"), (2.5 * a, "2.5 * a"),
    (a / 2, "a / 2"), (2 / a, "2 / a"),
    (-a, "-a"), (-(a + b), "-(a + b)"),
    (a - (b - 1), "a - (b - 1)"), (a - b - 1, "a - b - 1"),
    (1 + a * b / 2 - -b, "1 + a * b / 2 - -b"),
    (call("f", a, [1, b], flag=True) * 3, "f(a, [1, b], flag = true) * 3"),
])
def test_operators_build_the_text_expression(built, text: str) -> None:
    assert built.node == _expr(text)


def test_keyword_arguments_keep_their_order() -> None:
    assert call("f", z=1, a=2).node == _expr("f(z = 1, a = 2)")


def test_statements_given_once() -> None:
    m = ModelBuilder("m")
    m.seed(1)
    with pytest.raises(ValueError, match="`seed` is given twice"):
        m.seed(2)


def test_unknown_parameter_and_precision() -> None:
    m = ModelBuilder("m", hp_lambda=0.5)
    with pytest.raises(ValueError, match="did you mean 'hp_lambda'"):
        m.param("hp_lamda")
    with pytest.raises(ValueError, match="unknown precision 'float46'; did you mean 'float64'"):
        m.precision("float46")


def test_the_optimiser_is_a_call() -> None:
    with pytest.raises(TypeError, match="the optimiser is a call"):
        ModelBuilder("m").optimize(ref("sgd"))

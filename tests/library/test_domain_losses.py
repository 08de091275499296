"""`bce_domains(ps, pt)`: the domain loss averaged over all the rows of both batches (Transfer-Learning-Library's
convention), against the seed's and the DANN paper's sum of one mean per batch, `bce(ps, 0) + bce(pt, 1)`."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
from emitted import import_module, train_side_by_side
from gradients import check_gradient

import spec_lang
from spec_lang.library.losses import mean_over_domain_rows
from spec_lang.lowering.pytensor import ops
from spec_lang.lowering.python.emitter import emit_python
from spec_lang.reports.summary import domain_averaging
from spec_lang.training.roles import infer_roles

MODE = "FAST_COMPILE"
SPEC = """model m()
precision float64
input xs : float[batch, 2]
input xt : float[batch, 2]
input ys : int[batch] < 2
stack features { dense 3 tanh }
stack label { dense 2 softmax }
stack domain { dense 1 sigmoid }
let fs = features(xs)
let ft = features(xt)
head label_probabilities = label(fs)
head domain_probabilities = domain(fs)
loss label_loss = crossentropy(label_probabilities, ys)
loss domain_loss = DOMAIN
optimize sgd(lr = 0.1)
"""
POOLED = "bce_domains(domain(reverse(fs, lambda = 1)), domain(reverse(ft, lambda = 1)))"
SUMMED = "bce(domain(reverse(fs, lambda = 1)), 0) + bce(domain(reverse(ft, lambda = 1)), 1)"


def _model(domain: str) -> spec_lang.CompiledModel:
    return spec_lang.loads(SPEC.replace("DOMAIN", domain)).compile(MODE)


def _bce(p: np.ndarray, t: float) -> np.ndarray:
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


@pytest.mark.parametrize("rows", [(3, 5), (4, 4)])
def test_bce_domains_is_the_mean_over_all_domain_rows(rows: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(size=(rows[0], 2)), rng.normal(size=(rows[1], 2))
    batch = {"xs": xs, "xt": xt, "ys": np.zeros(rows[0], dtype="int32")}
    pooled = _model(POOLED)
    ps, pt_ = pooled.predict("domain_probabilities", xs), pooled.predict("domain_probabilities", xt)
    expected = np.concatenate([_bce(ps, 0.0), _bce(pt_, 1.0)]).mean()  # one mean over the joined rows
    assert pooled.evaluate(**batch)["domain_loss"] == pytest.approx(expected, rel=1e-12)
    summed = _model(SUMMED)  # the same start (same seed, same parameters)
    assert summed.evaluate(**batch)["domain_loss"] == pytest.approx(
        _bce(ps, 0.0).mean() + _bce(pt_, 1.0).mean(), rel=1e-12
    )
    if rows[0] == rows[1]:  # with batches of equal size, the sum of two means is twice the pooled mean
        assert summed.evaluate(**batch)["domain_loss"] == pytest.approx(2 * expected, rel=1e-12)


def test_the_formula_known_answer_and_gradient() -> None:
    source, target = np.array([[0.2], [0.4]]), np.array([[0.9], [0.5], [0.6], [0.1]])
    value = mean_over_domain_rows(1.0, 4.0, source, target, np)  # 2 rows of mean 1, 4 rows of mean 4
    assert value == pytest.approx((2 * 1.0 + 4 * 4.0) / 6)
    rng = np.random.default_rng(1)

    def pooled(zs, zt):
        means = ops.binary_crossentropy_from_logits(zs, 0.0), ops.binary_crossentropy_from_logits(zt, 1.0)
        return mean_over_domain_rows(*means, zs, zt, pt)

    check_gradient(pooled, [rng.normal(size=(3, 2)), rng.normal(size=(5, 2))], rng)


def test_the_emitted_module_computes_bce_domains_like_the_compiled_model(tmp_path) -> None:
    spec = spec_lang.loads(SPEC.replace("DOMAIN", POOLED))
    module = emit_python(spec.program, "m.dann")
    assert "mean_over_domain_rows(" in module and "binary_crossentropy_from_logits(" in module
    target = tmp_path / "m.py"
    target.write_text(module)
    generated = import_module(target)
    train = generated.compile_model(mode=MODE)[0]
    train_side_by_side(spec.compile(MODE), generated, train, 3, np.random.default_rng(0), rel=1e-10)


def test_training_reads_both_domains_from_bce_domains() -> None:
    roles = infer_roles(_model(POOLED))
    assert [(t.input, t.target, t.kind) for t in roles.domain_terms] == [("xs", 0.0, "bce"), ("xt", 1.0, "bce")]
    assert roles.source_inputs == ("xs", "ys") and roles.target_inputs == ("xt",)
    assert roles.domain_head == "domain_probabilities"


def test_the_summary_says_how_each_domain_loss_averages() -> None:
    def averaging(domain: str) -> str:
        return domain_averaging(spec_lang.loads(SPEC.replace("DOMAIN", domain)).program)["domain_loss"]

    tll = "the mean over all domain rows (Transfer-Learning-Library's convention)"
    assert averaging(POOLED) == tll
    assert averaging(SUMMED) == (
        f"a sum of 2 means, one per batch, as the DANN paper and the seed: with batches of equal size, twice {tll}"
    )
    assert averaging(f"0.5 * ({SUMMED})").endswith(f"with batches of equal size, {tll}")


@pytest.mark.parametrize(
    ("domain", "code", "message"),
    [
        ("bce_domains(label(fs), domain(ft))", "E401", "bce_domains expects probabilities from a sigmoid layer"),
        ("bce_domains(domain(fs), wide(ft))", "E301", "bce_domains: the source predictions are float[batch, 1]"),
        ("bce_domains(domain(fs))", "E207", ""),
    ],
)
def test_bce_domains_checks_its_arguments(domain: str, code: str, message: str) -> None:
    text = SPEC.replace("DOMAIN", domain).replace("stack domain", "stack wide { dense 2 sigmoid }\nstack domain")
    with pytest.raises(spec_lang.SpecError) as raised:
        spec_lang.loads(text)
    assert raised.value.diagnostics[0].code == code and message in raised.value.diagnostics[0].message

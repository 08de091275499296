"""The validators of `spec_lang.library.validators`, each on a constructed case whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spec_lang.library.validators import (
    VALIDATORS,
    Evidence,
    ValidatorKind,
    deep_embedded_risk,
    importance_weighted_risk,
    importance_weights,
    record_key,
    soft_neighbourhood_density,
)


def score(name: str, **arrays: np.ndarray) -> float:
    return VALIDATORS[name].score(Evidence(**arrays))


def test_every_entry_is_described_and_keyed():
    for kind in VALIDATORS.entries():
        assert kind.summary and kind.citation and kind.needs
        assert record_key(kind.name) == ("target_accuracy" if kind.oracle else f"val_{kind.name}")
    assert [k.name for k in VALIDATORS.entries() if k.oracle] == ["target_accuracy"]
    with pytest.raises(ValueError, match="unknown evidence"):
        ValidatorKind("x", "", "", True, ("target_features", "nonsense"), lambda e: 0.0)


def test_better_follows_the_direction_and_never_prefers_nan():
    assert VALIDATORS["snd"].better(2.0, 1.0) and not VALIDATORS["snd"].better(1.0, 2.0)
    assert VALIDATORS["entropy"].better(1.0, 2.0) and not VALIDATORS["entropy"].better(2.0, 1.0)
    assert VALIDATORS["iwv"].better(5.0, math.nan) and not VALIDATORS["iwv"].better(math.nan, 5.0)


def test_accuracies_on_held_out_source_reverse_model_and_oracle():
    p = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    y = np.array([0, 1, 1, 1])
    assert score("source_accuracy", source_probabilities=p, source_labels=y) == 0.75
    assert score("reverse_validation", reverse_probabilities=p[::-1], source_labels=y) == 0.25
    assert score("target_accuracy", target_probabilities=p, target_labels=1 - y) == 0.25


def test_entropy_is_zero_on_one_hot_and_log_k_on_uniform():
    assert score("entropy", target_probabilities=np.eye(4)[[0, 3, 1, 1, 2]]) == 0.0
    assert score("entropy", target_probabilities=np.full((6, 5), 0.2)) == pytest.approx(math.log(5))


def test_information_maximisation_known_values():
    assert score("info_max", target_probabilities=np.eye(3)[[0, 1, 2, 0, 1, 2]]) == pytest.approx(math.log(3))
    assert score("info_max", target_probabilities=np.full((4, 3), 1 / 3)) == pytest.approx(0.0, abs=1e-12)
    assert score("info_max", target_probabilities=np.eye(3)[[1, 1, 1]]) == pytest.approx(0.0, abs=1e-9)
    # two rows [0.5, 0.5] and [1, 0]: H(mean [0.75, 0.25]) - (log 2 + 0) / 2
    p = np.array([[0.5, 0.5], [1.0, 0.0]])
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) - math.log(2) / 2
    assert score("info_max", target_probabilities=p) == pytest.approx(expected)


def test_snd_two_tight_clusters_closed_form_and_above_uniform_noise():
    c = 10  # two orthogonal clusters of c identical rows: each row sees c - 1 rows at 1/τ, c at 0, itself at -1/τ
    clusters = np.eye(2)[[0] * c + [1] * c]
    logits = np.array([20.0] * (c - 1) + [0.0] * c + [-20.0])
    q = np.exp(logits - logits.max())
    q /= q.sum()
    expected = -float(np.sum(q * np.log(q)))
    assert score("snd", target_probabilities=clusters) == pytest.approx(expected, rel=1e-9)
    noise = np.random.default_rng(0).dirichlet(np.ones(2), size=2 * c)
    assert soft_neighbourhood_density(noise) < expected
    assert expected == pytest.approx(math.log(c - 1), abs=1e-6)  # the c - 1 neighbours take all the mass


def test_snd_in_blocks_equals_the_whole_matrix(monkeypatch):
    p = np.random.default_rng(1).dirichlet(np.ones(3), size=7)
    whole = soft_neighbourhood_density(p)
    monkeypatch.setattr("spec_lang.library.validators.SND_CHUNK", 3)
    assert soft_neighbourhood_density(p) == pytest.approx(whole, rel=1e-12)


def test_iwv_with_known_density_ratio_estimates_the_target_risk():
    # source N(0, 1), target N(1, 1): w(x) = exp(x - 1/2); loss x²: E_t[x²] = 2, while E_s[x²] = 1
    x = np.random.default_rng(2).normal(0, 1, 20000)
    assert importance_weighted_risk(x**2, np.exp(x - 0.5)) == pytest.approx(2.0, abs=0.2)
    assert importance_weighted_risk(x**2, np.ones_like(x)) == pytest.approx(1.0, abs=0.05)


def test_logistic_regression_weights_recover_the_density_ratio():
    rng = np.random.default_rng(3)
    source, target = rng.normal(0, 1, (5000, 1)), rng.normal(1, 1, (5000, 1))
    w = importance_weights(source, target)
    central = np.abs(source[:, 0]) < 1.5
    assert np.allclose(w[central], np.exp(source[central, 0] - 0.5), rtol=0.1)


def test_iwv_and_dev_through_the_registry_use_the_fitted_weights():
    rng = np.random.default_rng(4)
    features = rng.normal(0, 1, (400, 2))
    p = rng.dirichlet(np.ones(3), size=400)
    y = rng.integers(0, 3, 400)
    evidence = Evidence(
        source_probabilities=p, source_labels=y, source_features=features, target_features=features + [0.5, 0]
    )
    losses = -np.log(p[np.arange(400), y])
    weights = importance_weights(features, features + [0.5, 0])
    assert VALIDATORS["iwv"].score(evidence) == pytest.approx(float(np.mean(weights * losses)))
    assert VALIDATORS["dev"].score(evidence) == pytest.approx(deep_embedded_risk(losses, weights))


def test_dev_is_exact_for_a_constant_loss_and_reduces_variance():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 300)
    w = np.exp(x - 0.5)
    assert deep_embedded_risk(np.full(300, 0.7), w) == pytest.approx(0.7)  # IWV: 0.7 · mean(w), not 0.7
    assert importance_weighted_risk(np.full(300, 0.7), w) != pytest.approx(0.7, abs=1e-3)
    iwv, dev = [], []
    for _ in range(200):  # loss 1 + x²/4 under target N(1, 1): 1 + 2/4 = 1.5
        x = rng.normal(0, 1, 200)
        w, loss = np.exp(x - 0.5), 1 + x**2 / 4
        iwv.append(importance_weighted_risk(loss, w))
        dev.append(deep_embedded_risk(loss, w))
    assert np.std(dev) < 0.6 * np.std(iwv)
    assert abs(np.mean(dev) - 1.5) < 0.1 and abs(np.mean(iwv) - 1.5) < 0.1
    assert deep_embedded_risk(np.array([1.0, 3.0]), np.ones(2)) == 2.0  # weights that do not vary: η = 0


def test_missing_evidence_is_named():
    evidence = Evidence(target_probabilities=np.zeros((0, 2)))
    assert evidence.missing(VALIDATORS["snd"].needs) == ["target_probabilities"]
    assert evidence.missing(VALIDATORS["iwv"].needs) == list(VALIDATORS["iwv"].needs)

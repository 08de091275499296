"""Validators: scores that choose a checkpoint or a hyperparameter setting without target labels (unsupervised domain
adaptation). Each entry names what it reads (`Evidence`: the label classifier's probabilities on held-out labelled
source rows and on the target rows, the features of both, a reverse model's probabilities) and scores it with NumPy;
`spec_lang.training.validation` gathers the evidence from a model, `fit` records each score per epoch under
`record_key(name)` (`val_NAME`). To add a validator, write its score and register a `ValidatorKind` here.

Target accuracy is in the registry only as the *oracle* (`oracle=True`): it reads the target labels, which an
unsupervised run does not have, so it is never chosen unless named, and its record key is the record's own
`target_accuracy`.

>>> sorted(VALIDATORS)
['dev', 'entropy', 'info_max', 'iwv', 'reverse_validation', 'snd', 'source_accuracy', 'target_accuracy']
>>> one_hot = np.eye(3)[[0, 1, 2, 1]]
>>> VALIDATORS["entropy"].score(Evidence(target_probabilities=one_hot))
0.0
>>> record_key("snd"), record_key("target_accuracy")
('val_snd', 'target_accuracy')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from spec_lang.library.registry import Registry

EPSILON = 1e-12  # probabilities are clipped to [EPSILON, 1] before a logarithm
SND_TEMPERATURE = 0.05  # Saito et al.'s τ
SND_CHUNK = 1024  # rows of the similarity matrix computed at once
WEIGHT_L2 = 1.0  # the L2 penalty of the importance weights' logistic regression (on standardised features)
WEIGHT_STEPS = 50  # its Newton steps, at most


@dataclass
class Evidence:
    """What validators read; every array is optional, and a validator's `needs` names the ones it reads.

    * `source_probabilities` [n, k], `source_labels` [n]: the label classifier on held-out labelled source rows;
    * `target_probabilities` [m, k]: the label classifier on the target rows; `target_labels` [m] (the oracle only);
    * `source_features` [n, d], `target_features` [m, d]: what the label classifier's last stack reads, on the same
      held-out source rows and target rows (the importance weights' domain classifier is fitted on them);
    * `reverse_probabilities` [n, k]: a reverse model's label classifier (trained on the target's pseudo-labels, see
      `spec_lang.training.validation`) on the held-out source rows.
    """

    source_probabilities: np.ndarray | None = None
    source_labels: np.ndarray | None = None
    target_probabilities: np.ndarray | None = None
    target_labels: np.ndarray | None = None
    source_features: np.ndarray | None = None
    target_features: np.ndarray | None = None
    reverse_probabilities: np.ndarray | None = None

    def missing(self, needs: tuple[str, ...]) -> list[str]:
        """The arrays of `needs` that are absent or have no rows."""
        return [n for n in needs if getattr(self, n) is None or len(getattr(self, n)) == 0]

    @cached_property
    def importance_weights(self) -> np.ndarray:
        """w(x) = p_t(x) / p_s(x) for each held-out source row, from a logistic regression of the domain on the
        features (`importance_weights`); fitted once and shared by IWV and DEV."""
        assert self.source_features is not None and self.target_features is not None
        return importance_weights(self.source_features, self.target_features)

    @cached_property
    def source_losses(self) -> np.ndarray:
        """The crossentropy of each held-out source row: -log p(y | x)."""
        assert self.source_probabilities is not None and self.source_labels is not None
        return row_losses(self.source_probabilities, self.source_labels)


EVIDENCE = tuple(f.name for f in fields(Evidence))


@dataclass(frozen=True)
class ValidatorKind:
    """A validator: its name, a one-line summary, the paper it comes from, whether a higher score is better, the
    `Evidence` arrays it reads, its score, and whether it is the oracle (reads target labels)."""

    name: str
    summary: str
    citation: str
    higher_is_better: bool
    needs: tuple[str, ...]
    score: Callable[[Evidence], float]
    oracle: bool = False

    def __post_init__(self) -> None:
        unknown = [n for n in self.needs if n not in EVIDENCE]
        if unknown:
            raise ValueError(f"validator {self.name!r} needs unknown evidence: {', '.join(unknown)}")

    def better(self, score: float, than: float) -> bool:
        """Whether `score` beats `than` (a NaN never beats, and anything beats a NaN)."""
        if np.isnan(score):
            return False
        return bool(np.isnan(than) or (score > than if self.higher_is_better else score < than))


VALIDATORS = Registry[ValidatorKind]("validator")


def record_key(name: str) -> str:
    """The key of a validator's score in `fit`'s per-epoch records: `val_NAME`, the oracle's `target_accuracy`."""
    return "target_accuracy" if VALIDATORS[name].oracle else f"val_{name}"


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """How often the most probable class is the label; NaN when a probability is not finite.

    >>> accuracy(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1]))
    0.6666666666666666
    """
    if not np.isfinite(probabilities).all():  # a diverged model's: no class is the most probable
        return float("nan")
    return float(np.mean(np.argmax(probabilities, axis=1) == labels))


def row_losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each row's crossentropy, -log p(label)."""
    picked = probabilities[np.arange(len(labels)), np.asarray(labels, dtype=int)]
    return -np.log(np.clip(picked, EPSILON, 1.0))


def entropies(probabilities: np.ndarray) -> np.ndarray:
    """Each row's entropy, -Σ p log p (natural logarithm)."""
    p = np.clip(probabilities, EPSILON, 1.0)
    return -np.sum(probabilities * np.log(p), axis=-1)


def mean_entropy(probabilities: np.ndarray) -> float:
    """The mean entropy of the predictions: 0 when each is one-hot, log k when each is uniform over k classes."""
    return float(np.mean(entropies(probabilities)))


def information_maximisation(probabilities: np.ndarray) -> float:
    """H(mean prediction) - mean H(prediction): high when each prediction is confident and the classes are used
    evenly (log k at best); 0 when every prediction is the same.

    >>> round(information_maximisation(np.eye(2)), 6) == round(float(np.log(2)), 6)
    True
    """
    return float(entropies(np.mean(probabilities, axis=0)) - mean_entropy(probabilities))


def soft_neighbourhood_density(probabilities: np.ndarray, temperature: float = SND_TEMPERATURE) -> float:
    """Saito et al.'s SND: the rows L2-normalised, their cosine similarities divided by the temperature (each row's
    own similarity set to -1 / τ), a softmax over each row, and the mean entropy of those rows. High when the
    predictions form dense clusters. Computed in blocks of rows, so memory stays O(block × rows)."""
    p = np.asarray(probabilities, dtype=float)
    normalised = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), EPSILON)
    total = 0.0
    for start in range(0, len(p), SND_CHUNK):
        block = normalised[start : start + SND_CHUNK] @ normalised.T / temperature
        rows = np.arange(len(block))
        block[rows, rows + start] = -1.0 / temperature
        block = np.exp(block - block.max(axis=1, keepdims=True))
        total += float(np.sum(entropies(block / block.sum(axis=1, keepdims=True))))
    return total / len(p)


def importance_weights(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """w(x) = p_t(x) / p_s(x) at each source row, from a domain classifier: an L2-regularised logistic regression of
    "target" on the standardised features, fitted by Newton's method on the source and target rows; then
    w = (n_s / n_t) · P(target | x) / P(source | x).

    >>> rng = np.random.default_rng(0)
    >>> w = importance_weights(rng.normal(0, 1, (4000, 1)), rng.normal(1, 1, (4000, 1)))
    >>> round(float(np.mean(w)), 1)  # E_s[w] = 1
    1.0
    """
    x = np.concatenate([source, target]).reshape(len(source) + len(target), -1).astype(float)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), EPSILON)
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    y = np.concatenate([np.zeros(len(source)), np.ones(len(target))])
    penalty = np.full(x.shape[1], WEIGHT_L2)
    penalty[-1] = 0.0  # the intercept is not penalised
    beta = np.zeros(x.shape[1])
    for _ in range(WEIGHT_STEPS):
        p = 1 / (1 + np.exp(-(x @ beta)))
        gradient = x.T @ (p - y) + penalty * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + EPSILON * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return len(source) / len(target) * np.exp(x[: len(source)] @ beta)


def importance_weighted_risk(losses: np.ndarray, weights: np.ndarray) -> float:
    """Sugiyama et al.'s IWV: the mean of w(x) · loss over held-out source rows, an unbiased estimate of the target
    risk when w is the density ratio p_t / p_s."""
    return float(np.mean(weights * losses))


def deep_embedded_risk(losses: np.ndarray, weights: np.ndarray) -> float:
    """You et al.'s DEV: IWV with w as a control variate (E_s[w] = 1). With L = w · loss,
    η = -Cov(L, w) / Var(w), the risk is mean(L) + η · mean(w) - η; η = 0 when the weights do not vary."""
    weighted = weights * losses
    variance = float(np.var(weights, ddof=1)) if len(weights) > 1 else 0.0
    if variance <= 0:
        return float(np.mean(weighted))
    eta = -float(np.cov(weighted, weights)[0, 1]) / variance
    return float(np.mean(weighted) + eta * np.mean(weights) - eta)


def _source_accuracy(e: Evidence) -> float:
    assert e.source_probabilities is not None and e.source_labels is not None
    return accuracy(e.source_probabilities, e.source_labels)


def _reverse_accuracy(e: Evidence) -> float:
    assert e.reverse_probabilities is not None and e.source_labels is not None
    return accuracy(e.reverse_probabilities, e.source_labels)


def _target_accuracy(e: Evidence) -> float:
    assert e.target_probabilities is not None and e.target_labels is not None
    return accuracy(e.target_probabilities, e.target_labels)


def _target(e: Evidence) -> np.ndarray:
    assert e.target_probabilities is not None
    return e.target_probabilities


_HELD_OUT = ("source_probabilities", "source_labels")
_WEIGHTED = (*_HELD_OUT, "source_features", "target_features")

for _kind in (
    ValidatorKind(
        "source_accuracy",
        "the label classifier's accuracy on held-out labelled source rows",
        "the usual baseline; see Ganin et al., JMLR 2016, §5.1.2",
        True,
        _HELD_OUT,
        _source_accuracy,
    ),
    ValidatorKind(
        "reverse_validation",
        "a fresh model trained on the target's pseudo-labels (target as source, source as target), its accuracy on "
        "held-out source rows",
        "Zhong et al., ECML PKDD 2010; Ganin et al., JMLR 2016, §5.1.2",
        True,
        ("reverse_probabilities", "source_labels"),
        _reverse_accuracy,
    ),
    ValidatorKind(
        "iwv",
        "importance-weighted validation: mean w(x) · crossentropy on held-out source rows, w = p_t / p_s",
        "Sugiyama, Krauledat & Müller, JMLR 2007",
        False,
        _WEIGHTED,
        lambda e: importance_weighted_risk(e.source_losses, e.importance_weights),
    ),
    ValidatorKind(
        "dev",
        "deep embedded validation: IWV with the weights as a control variate, η = -Cov(w·loss, w) / Var(w)",
        "You, Wang, Long & Wang, ICML 2019",
        False,
        _WEIGHTED,
        lambda e: deep_embedded_risk(e.source_losses, e.importance_weights),
    ),
    ValidatorKind(
        "snd",
        "soft neighbourhood density: entropy of the softmax (τ = 0.05) of the target predictions' similarities",
        "Saito, Kim, Teterwak, Sclaroff, Darrell & Saenko, ICCV 2021",
        True,
        ("target_probabilities",),
        lambda e: soft_neighbourhood_density(_target(e)),
    ),
    ValidatorKind(
        "entropy",
        "the mean entropy of the target predictions (lower: more confident)",
        "Grandvalet & Bengio, NeurIPS 2004; Morerio, Cavazza & Murino, ICLR 2018",
        False,
        ("target_probabilities",),
        lambda e: mean_entropy(_target(e)),
    ),
    ValidatorKind(
        "info_max",
        "information maximisation on the target: entropy of the mean prediction minus the mean entropy",
        "Gomes, Krause & Perona, NeurIPS 2010; Liang, Hu & Feng (SHOT), ICML 2020",
        True,
        ("target_probabilities",),
        lambda e: information_maximisation(_target(e)),
    ),
    ValidatorKind(
        "target_accuracy",
        "the oracle: accuracy on the target rows against target labels (never chosen unless named)",
        "not a validator: unsupervised adaptation has no target labels",
        True,
        ("target_probabilities", "target_labels"),
        _target_accuracy,
        oracle=True,
    ),
):
    VALIDATORS.register(_kind)

"""Several labelled sources and several targets: the roles (one group of inputs per source and per target domain),
data sets with their own row counts (the shorter cycled by the sampler), each source's and target's accuracy, and
the proxy A-distance for two domains and for k-way domain heads (the mean of the one-vs-one distances)."""

from __future__ import annotations

import numpy as np
import pytest

import spec_lang
from spec_lang.training import infer_roles
from spec_lang.training.evaluation import domain_accuracy, proxy_a_distance
from spec_lang.training.sampler import Sampler

TWO_SOURCES = """\
model two_sources(lr = 0.1)
input xs1 : float[batch, 2]
input ys1 : int[batch] < 2
input xs2 : float[batch, 2]
input ys2 : int[batch] < 2
input xt : float[batch, 2]
stack features { dense 8 tanh }
stack label { dense 2 softmax }
stack domain { dense 3 softmax }
let f1 = features(xs1)
let f2 = features(xs2)
let ft = features(xt)
head label_probabilities = label(f1)
head domain_probabilities = domain(f1)
loss label_loss = crossentropy(label(f1), ys1) + crossentropy(label(f2), ys2)
loss domain_loss = crossentropy(domain(reverse(f1, lambda = 0.5)), 0)
                 + crossentropy(domain(reverse(f2, lambda = 0.5)), 1)
                 + crossentropy(domain(reverse(ft, lambda = 0.5)), 2)
optimize sgd(lr = lr) minimize label_loss + domain_loss
"""


@pytest.fixture(scope="module")
def model():
    return spec_lang.loads(TWO_SOURCES, "two_sources.dann").compile("FAST_COMPILE")


def _data(rows: int, names: tuple[str, str], seed: int) -> dict[str, np.ndarray]:
    generator = np.random.default_rng(seed)
    x, y = generator.normal(size=(rows, 2)), generator.integers(0, 2, rows)
    return {names[0]: x, names[1]: y}


def test_each_labelled_source_is_a_group_of_its_own(model) -> None:
    roles = infer_roles(model)
    assert [(g.inputs, g.labels, g.classified) for g in roles.sources] == [
        (("xs1", "ys1"), "ys1", "xs1"),
        (("xs2", "ys2"), "ys2", "xs2"),
    ]
    assert [(g.inputs, g.classified) for g in roles.targets] == [(("xt",), "xt")]
    assert (roles.label_input, roles.label_head, roles.source_inputs, roles.target_inputs) == (
        "ys1",
        "label_probabilities",
        ("xs1", "ys1", "xs2", "ys2"),
        ("xt",),
    )


def test_several_targets_are_a_group_each() -> None:
    roles = infer_roles(spec_lang.load("examples/multi_target_dann.dann").compile("FAST_COMPILE"))
    assert [g.inputs for g in roles.sources] == [("xs", "ys")]
    assert [g.inputs for g in roles.targets] == [("xt1",), ("xt2",)]


def test_two_sources_of_different_sizes_train_and_report_each_accuracy(model) -> None:
    first, second = _data(10, ("xs1", "ys1"), 0), _data(7, ("xs2", "ys2"), 1)
    target = {"xt": np.random.default_rng(2).normal(size=(5, 2)), "yt": np.array([0, 1, 0, 1, 1])}
    history = model.fit([first, second], target, epochs=2, batch_size=4, seed=0)
    final = history.final
    assert final is not None and final["step"] == 6  # an epoch is a pass over the longer source: 3 batches of 4
    a1, a2 = final["source_xs1_accuracy"], final["source_xs2_accuracy"]
    predictions = model.predict("label_probabilities", first["xs1"]).argmax(axis=1)
    assert a1 == pytest.approx(np.mean(predictions == first["ys1"]))
    assert final["source_accuracy"] == pytest.approx((10 * a1 + 7 * a2) / 17)  # over all source rows
    target_predictions = model.predict("label_probabilities", target["xt"]).argmax(axis=1)
    assert final["target_accuracy"] == pytest.approx(np.mean(target_predictions == target["yt"]))
    assert "target_xt_accuracy" not in final  # one target: its accuracy is target_accuracy
    # one data set holding both sources (and the target) reads the same
    assert model.metrics({**first, **second, **target}) == model.metrics([first, second], target)


def test_the_number_of_source_data_sets_must_match_the_sources(model) -> None:
    data = _data(4, ("xs1", "ys1"), 0)
    with pytest.raises(spec_lang.SpecError) as caught:
        model.metrics([data, data, data])
    assert caught.value.diagnostics[0].code == "E802"
    assert "3 source data sets were given, but the model has 2 sources (xs1, ys1; xs2, ys2)" in str(caught.value)


def test_the_sampler_cycles_the_shorter_groups_in_shuffled_passes() -> None:
    sampler = Sampler([5, 3, 2], batch_size=2, seed=0)
    batches = []
    for _ in range(3):  # one epoch: 2 + 2 + 1 rows of the first group
        batches.append(sampler.batch())
        sampler.advance()
    assert sampler.epoch_done and sampler.epoch == 1
    first, second, third = (np.concatenate([b[g] for b in batches]) for g in range(3))
    assert sorted(first) == [0, 1, 2, 3, 4]  # one pass
    assert sorted(second[:3]) == [0, 1, 2] and len(set(second[3:])) == 2  # a pass, then part of a second one
    assert sorted(third[:2]) == sorted(third[2:4]) == [0, 1] and third[4] in (0, 1)  # two passes and a bit
    assert all(len(b[0]) == len(b[1]) == len(b[2]) for b in batches)  # every group gives as many rows


def test_a_restored_sampler_takes_the_same_batches() -> None:
    run = Sampler([5, 3, 2, 4], batch_size=2, seed=7)
    for _ in range(4):
        run.batch()
        run.advance()
    meta, arrays = run.state()
    resumed = Sampler([5, 3, 2, 4], batch_size=2, seed=7)
    resumed.restore(meta, arrays)
    assert resumed.problem(4, meta, arrays) is None
    for _ in range(5):
        expected, got = run.batch(), resumed.batch()
        assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
        run.advance()
        resumed.advance()


def test_two_groups_sample_as_one_source_and_one_target_always_did() -> None:
    sampler = Sampler([5, 3], batch_size=5, seed=0)
    source, target = sampler.batch()
    generator = np.random.Generator(np.random.PCG64(0))
    expected_source = generator.permutation(5)
    expected_target = np.concatenate([generator.permutation(3), generator.permutation(3)])[:5]
    assert np.array_equal(source, expected_source) and np.array_equal(target, expected_target)


# Known answers of the proxy A-distance. Two domains: 2 (1 - 2ε).
TWO = [(np.array([[0.9, 0.1], [0.4, 0.6]]), 0), (np.array([[0.2, 0.8], [0.3, 0.7], [0.6, 0.4]]), 1)]
# Three domains, two rows each. One-vs-one (i, j): a row of i is wrong when p_j > p_i, a row of j when p_i >= p_j.
# (0, 1): row 2 of domain 0 and row 2 of domain 1 wrong: ε = 2/4, PAD 0; (0, 2): row 2 of domain 0: ε = 1/4, PAD 1;
# (1, 2): none: PAD 2. The mean: 1.
THREE = [
    (np.array([[0.5, 0.3, 0.2], [0.2, 0.5, 0.3]]), 0),
    (np.array([[0.1, 0.8, 0.1], [0.6, 0.3, 0.1]]), 1),
    (np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]), 2),
]


def test_proxy_a_distance_of_two_domains_is_two_times_one_minus_twice_the_error() -> None:
    assert domain_accuracy(TWO) == pytest.approx(3 / 5)
    assert proxy_a_distance(TWO) == pytest.approx(2 * (1 - 2 * 2 / 5))


def test_proxy_a_distance_of_a_three_way_head_is_the_mean_of_the_pairwise_distances() -> None:
    assert proxy_a_distance(THREE) == pytest.approx(1.0)
    assert domain_accuracy(THREE) == pytest.approx(4 / 6)  # the 3-way accuracy, for comparison


def test_a_three_way_head_at_chance_is_zero_not_negative() -> None:
    uniform = [(np.full((4, 3), 1 / 3), d) for d in range(3)]
    assert proxy_a_distance(uniform) == pytest.approx(0.0)  # 2 (1 - 2 (1 - 1/3)) = -2/3 from the 3-way accuracy
    assert np.isnan(proxy_a_distance([(np.ones((2, 3)) / 3, 0)]))  # one domain: no distance


def test_the_multi_target_models_distance_is_computed_one_vs_one() -> None:
    model = spec_lang.load("examples/multi_target_dann.dann").compile("FAST_COMPILE")
    generator = np.random.default_rng(0)
    data = {"xs": generator.normal(size=(6, 4)), "ys": generator.integers(0, 5, 6)}
    targets = [{"xt1": generator.normal(size=(4, 4)) + 1}, {"xt2": generator.normal(size=(9, 4)) - 1}]
    values = model.metrics(data, targets)
    outputs = [
        (model.predict("domain_probabilities", x), d)
        for d, x in enumerate((data["xs"], targets[0]["xt1"], targets[1]["xt2"]))
    ]
    assert values["proxy_a_distance"] == pytest.approx(proxy_a_distance(outputs))
    assert values["domain_accuracy"] == pytest.approx(domain_accuracy(outputs))
    assert -2.0 <= values["proxy_a_distance"] <= 2.0

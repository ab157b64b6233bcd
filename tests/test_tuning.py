"""The tuning protocol's rules (kswgd.engine.tuning) against hand-built pilot records whose
right answer is known, invariants of the held-out split and of the configuration subset, and
one end-to-end check with real KSWGD fits on the 1-D Gaussian."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from kswgd import registry
from kswgd.core.data import TrainingData
from kswgd.core.health import health as particle_health
from kswgd.core.health import training_index
from kswgd.core.metrics import w2
from kswgd.engine.target import rng_for
from kswgd.engine.tuning import (
    Pilot,
    _key,
    chains,
    configurations,
    select,
    selection_class,
    space_selection_class,
    split_training,
    validation_repetitions,
    validation_score,
    worse_than_start,
)
from kswgd.helpers import pairs_from_chains
from kswgd.params import ConfigError
from kswgd.sampler import run_sampler

N = 100  # particles of the hand-built pilots


def pilots(config: dict, scores, initial=2.0, **kw) -> list[Pilot]:
    """Healthy pilots of one configuration on repetitions −1, −2, … with these final scores."""
    return [Pilot(config, -(i + 1), s, initial, N, **kw) for i, s in enumerate(scores)]


# -- information classes ----------------------------------------------------------------------

@pytest.mark.parametrize("uses, expected", [
    (("trajectories",), "held-out"), (("samples",), "held-out"), (("score",), "ksd"),
    (("log_density",), "ksd"), (("score", "log_density"), "ksd"),
    (("samples", "score"), "held-out")])
def test_selection_class_follows_the_declared_uses(uses, expected):
    assert selection_class(uses) == expected
    assert selection_class(uses, "oracle") == "oracle"


def test_no_data_method_is_ever_scored_against_draws_of_pi():
    """Every registered sampler (and the data variants of KSWGD and SVGD) that learns from
    data is judged on held-out data, and the held-out score refuses draws of π."""
    samplers = [cls() for cls in registry.samplers().values()]
    samplers += [registry.get_sampler("kswgd", estimator="dirichlet"),
                 registry.get_sampler("svgd", score="kde")]
    data_methods = [s for s in samplers if {"samples", "trajectories"} & set(s.uses)]
    assert len(data_methods) >= 4
    for s in data_methods:
        assert selection_class(s.uses) == "held-out", s.name
    held = TrainingData(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="own information"):
        validation_score("held-out", np.ones((5, 1)), held_out=held, reference=np.zeros((5, 1)))
    with pytest.raises(ValueError, match="own information"):
        validation_score("held-out", np.ones((5, 1)), reference=np.zeros((5, 1)))


def test_selection_class_refuses_unknown_mode_and_undeclared_information():
    with pytest.raises(ConfigError, match="valid: declared, oracle"):
        selection_class(("score",), "best")
    with pytest.raises(ConfigError, match="selection = 'oracle'"):
        selection_class(("spectrum",))


def test_a_space_mixing_information_classes_is_refused():
    exact, kde = (registry.get_sampler("svgd", score=s).uses for s in ("exact", "kde"))
    with pytest.raises(ConfigError, match="held-out, ksd"):
        space_selection_class([exact, kde])
    assert space_selection_class([exact, exact]) == "ksd"


def test_validation_scores_are_the_declared_metrics():
    rng = np.random.default_rng(0)
    x, held = rng.standard_normal((200, 1)), TrainingData(rng.standard_normal((300, 1)))
    assert validation_score("held-out", x, held_out=held) == w2(x, held.x)
    assert validation_score("oracle", x, reference=held.x) == w2(x, held.x)
    # KSD² of N(0, 1) draws is ≈ 0 (unbiased, sd ~ 1/n); shifted by 2 it is O(1)
    exact = validation_score("ksd", x, score=lambda z: -z)
    shifted = validation_score("ksd", x + 2.0, score=lambda z: -z)
    assert abs(exact) < 0.02 < 0.2 < shifted


# -- held-out split ---------------------------------------------------------------------------

def _chains(n_chains: int, length: int, seed: int = 0) -> TrainingData:
    traj = np.cumsum(np.random.default_rng(seed).standard_normal((length, n_chains, 2)), axis=0)
    return pairs_from_chains(traj, n_chains * (length - 1), 0.1, n_chains=n_chains)


def _rows(a: np.ndarray) -> Counter:
    return Counter(map(tuple, a))


def test_held_out_split_never_splits_a_chain_and_is_disjoint_from_the_fit():
    data, per = _chains(10, 31), 30
    fit, held = split_training(data, 0.2, np.random.default_rng(1))
    assert _rows(fit.x) + _rows(held.x) == _rows(data.x)          # a partition of the pairs
    assert not set(_rows(fit.x)) & set(_rows(held.x))
    held_rows = set(_rows(held.x))
    for c in range(10):
        inside = [tuple(r) in held_rows for r in data.x[c * per:(c + 1) * per]]
        assert all(inside) or not any(inside), f"chain {c} split"
    assert len(held.x) == 2 * per                                  # round(10 · 0.2) chains
    assert held.info["held_out_fraction"] == 0.2 and held.lag == fit.lag == 0.1
    assert [len(c) for c in chains(held)] == [per, per]             # still two whole chains
    assert [len(c) for c in chains(fit)] == [per] * 8


def test_held_out_split_of_one_chain_holds_out_its_end():
    data = _chains(1, 101)
    fit, held = split_training(data, 0.2, np.random.default_rng(0))
    assert np.array_equal(fit.x, data.x[:80]) and np.array_equal(held.x, data.x[80:])
    assert np.array_equal(fit.y[-1], held.x[0])                   # the one cut
    assert held.info["held_out_rule"] == "end of each chain"


def test_held_out_split_of_independent_pairs_is_a_seeded_subset():
    data = registry.get_dataset("gaussian", d=1).train(500, np.random.default_rng(0))
    a = split_training(data, 0.2, np.random.default_rng(5))[1]
    b = split_training(data, 0.2, np.random.default_rng(5))[1]
    c = split_training(data, 0.2, np.random.default_rng(6))[1]
    assert len(a.x) == 100 and np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_held_out_split_refuses_a_fraction_outside_zero_one(fraction):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        split_training(_chains(2, 10), fraction, np.random.default_rng(0))


# -- configurations ---------------------------------------------------------------------------

def test_a_space_within_budget_is_taken_whole_in_grid_order():
    space = {"step": [0.1, 0.3], "rank": [5, 10, 20]}
    out = configurations(space, 10, 0)
    assert out == [{"rank": r, "step": h} for r in (5, 10, 20) for h in (0.1, 0.3)]


def test_configuration_subset_is_deterministic_and_budget_sized_for_any_space():
    small = {"step": [0.01, 0.03, 0.1, 0.3], "rank": [5, 10, 20], "dictionary": ["rbf", "poly"]}
    large = {**small, "n_features": [100, 200, 400, 800, 1600]}
    for space, size in ((small, 24), (large, 120)):
        out = configurations(space, 8, [7, 1])
        grid = configurations(space, size, 0)
        assert len(out) == 8 and all(c in grid for c in out)
        assert len({tuple(sorted(c.items())) for c in out}) == 8
        assert out == configurations(space, 8, [7, 1])
        assert out != configurations(space, 8, [7, 2])


def test_configuration_subset_includes_every_point_equally_often():
    """Inclusion probability of each grid point is budget/|space| = 3/10: over 3 000 seeds each
    count is Binomial(3000, 0.3), mean 900, sd 25; allow 5 sd."""
    space = {"a": list(range(10))}
    counts = Counter(c["a"] for s in range(3000) for c in configurations(space, 3, s))
    assert set(counts) == set(range(10))
    assert all(abs(v - 900) < 125 for v in counts.values()), counts


@pytest.mark.parametrize("space, budget, match", [
    ({"rank": []}, 3, "non-empty list"), ({"rank": 5}, 3, "non-empty list"),
    ({"rank": "5"}, 3, "non-empty list"), ({"rank": [5]}, 0, "positive integer"),
    ({"rank": [5]}, 2.5, "positive integer")])
def test_configurations_refuse_a_bad_space_or_budget(space, budget, match):
    with pytest.raises(ConfigError, match=match):
        configurations(space, budget, 0)


def test_validation_repetitions_are_negative_and_at_least_two():
    assert validation_repetitions(3) == [-1, -2, -3]
    with pytest.raises(ConfigError, match="at least 2"):
        validation_repetitions(1)


# -- selection --------------------------------------------------------------------------------

def test_unstable_best_loses_to_a_stable_configuration_within_noise():
    """A: mean 0.8, sd 0.608, se 0.351, so the noise line is 1.151; B (mean 0.9, sd 0.05) is
    inside it and steadier; C (mean 1.55) is outside."""
    a, b, c = {"rank": 5}, {"rank": 10}, {"rank": 20}
    choice = select(pilots(a, [0.5, 1.5, 0.4]) + pilots(b, [0.9, 0.95, 0.85])
                    + pilots(c, [1.5, 1.6, 1.55]))
    assert choice.config == b
    assert choice.threshold == pytest.approx(0.8)
    assert choice.candidates == [a, b]    # B − A = (0.4, −0.55, 0.45): mean 0.1 < se 0.325


def test_among_candidates_the_better_worst_draw_wins_not_the_smaller_spread():
    """B is steady (0.58, 0.62) but never better than A's worse draw: paired, B − A =
    (−0.02, 0.22) has mean 0.10 < se 0.12, so both are candidates; the smaller spread would pick
    B (sd 0.028 against 0.141), the worst draw picks A (0.60 < 0.62)."""
    a, b = {"step": 0.2}, {"step": 0.8}
    choice = select(pilots(a, [0.60, 0.40]) + pilots(b, [0.58, 0.62]))
    assert choice.candidates == [a, b] and choice.config == a


def test_a_configuration_worse_on_every_shared_draw_is_not_within_noise():
    """The draws differ a lot (0.5 against 1.0) for both, so the unpaired line m_a + se_a = 1.0
    would admit B (mean 0.775, the smaller spread) and the spread rule would choose it; paired,
    B − A = (0.03, 0.02): mean 0.025 > se 0.005, so B is out and A is chosen."""
    a, b = {"rank": 5}, {"rank": 10}
    choice = select(pilots(a, [0.5, 1.0]) + pilots(b, [0.53, 1.02]))
    assert choice.config == a and choice.candidates == [a]
    stats = {_key(st.config): st for st in choice.stats}
    assert stats[_key(b)].mean <= stats[_key(a)].mean + stats[_key(a)].se   # unpaired: inside
    assert stats[_key(b)].spread < stats[_key(a)].spread
    # identical scores (two names of one fit, e.g. a rank the whitening caps) stay candidates
    assert select(pilots(a, [0.5, 1.0]) + pilots(b, [0.5, 1.0])).candidates == [a, b]


def test_a_steadier_configuration_outside_noise_does_not_win():
    a, b = {"rank": 5}, {"rank": 10}
    assert select(pilots(a, [0.5, 0.52, 0.48]) + pilots(b, [0.8, 0.8, 0.8])).config == a


def test_equal_scores_go_to_the_larger_step_as_in_the_step_rule():
    """A step-only space is today's step rule: equal pilots, the larger step wins."""
    cfgs = [{"step": h} for h in (0.1, 0.3, 0.03)]
    recs = [p for c in cfgs for p in pilots(c, [0.4, 0.6])]
    assert select(recs).config == {"step": 0.3}


def test_a_configuration_healthy_on_one_draw_only_is_excluded():
    good, flaky, single = {"rank": 10}, {"rank": 20}, {"rank": 40}
    recs = (pilots(good, [0.9, 1.0]) + [Pilot(flaky, -1, 0.2, 2.0, N),
            Pilot(flaky, -2, None, 2.0, N, failure="diverged")] + pilots(single, [0.1]))
    choice = select(recs)
    assert choice.config == good
    assert "rep -2: failed (diverged)" in choice.excluded["rank=20.0"]
    assert "1 data draw" in choice.excluded["rank=40.0"]


@pytest.mark.parametrize("kw, why", [
    ({"away": 0.5}, "stranded"), ({"distinct": 10.0}, "collapsed")])
def test_stranded_or_collapsed_pilots_exclude_their_configuration(kw, why):
    good, bad = {"rank": 10}, {"rank": 20}
    recs = pilots(good, [0.9, 1.0]) + [Pilot(bad, -1, 0.2, 2.0, N),
                                       Pilot(bad, -2, 0.2, 2.0, N, **kw)]
    choice = select(recs)
    assert choice.config == good and why in choice.excluded["rank=20.0"]


def test_a_worse_than_start_pilot_is_excluded():
    good, bad = {"rank": 10}, {"rank": 20}
    recs = pilots(good, [0.9, 1.0], initial=1.5) + [Pilot(bad, -1, 0.5, 1.5, N),
                                                     Pilot(bad, -2, 1.6, 1.5, N)]
    choice = select(recs)
    assert choice.config == good
    assert "worse than start (1.6 > 1.5)" in choice.excluded["rank=20.0"]
    assert worse_than_start(1.6, 1.5) and not worse_than_start(1.5, 1.5)


def test_when_nothing_counts_the_least_unhealthy_that_ran_is_chosen_and_says_so():
    # rank 1 ran on both draws but ended worse than its start: a fallback, flagged as such
    recs = pilots({"rank": 1}, [3.0, 3.0]) + [Pilot({"rank": 2}, -1, None, 2.0, N,
                                                     failure="raised")]
    choice = select(recs)
    assert choice.config == {"rank": 1} and choice.margin.startswith("fallback")
    assert "2 of 2 pilots unhealthy" in choice.margin
    assert set(choice.excluded) == {"rank=1.0", "rank=2.0"}
    # between two unhealthy ones: fewer unhealthy pilots first, then the smaller mean
    recs = (pilots({"rank": 1}, [3.0, 3.0]) + [Pilot({"rank": 3}, -1, 9.0, 2.0, N),
                                               Pilot({"rank": 3}, -2, 1.0, 2.0, N)])
    assert select(recs).config == {"rank": 3}
    recs = pilots({"rank": 1}, [3.0, 3.0]) + pilots({"rank": 4}, [2.5, 2.5])
    assert select(recs).config == {"rank": 4}


def test_when_every_configuration_failed_there_is_no_choice_and_every_reason_is_given():
    recs = [Pilot({"rank": 1}, -1, None, 2.0, N, failure="diverged"),
            Pilot({"rank": 1}, -2, 1.0, 2.0, N),
            Pilot({"rank": 2}, -1, None, 2.0, N, failure="raised")]
    choice = select(recs)
    assert choice.config is None and set(choice.excluded) == {"rank=1.0", "rank=2.0"}


def test_pilots_on_test_repetitions_are_refused():
    with pytest.raises(ValueError, match="validation repetitions are negative"):
        select([Pilot({"rank": 1}, 0, 1.0, 2.0, N), Pilot({"rank": 1}, -1, 1.0, 2.0, N)])


# -- step margin ------------------------------------------------------------------------------

def _steps(results: dict[float, list[float] | None], **other) -> list[Pilot]:
    """Pilots of one configuration at several steps; None = diverged on both draws."""
    out = []
    for h, scores in results.items():
        if scores is None:
            out += [Pilot({**other, "step": h}, -r, None, 2.0, N, failure="diverged")
                    for r in (1, 2)]
        else:
            out += pilots({**other, "step": h}, scores)
    return out


def test_step_margin_keeps_a_step_whose_larger_neighbour_counts():
    recs = _steps({0.01: [1.0, 1.0], 0.03: [0.5, 0.5], 0.1: [0.9, 0.9]}, rank=10)
    choice = select(recs, margin=True)
    assert choice.config == {"rank": 10, "step": 0.03} and choice.margin.startswith("confirmed")


def test_step_margin_steps_down_when_the_larger_step_diverged():
    recs = _steps({0.01: [1.0, 1.0], 0.03: [0.5, 0.5], 0.1: None}, rank=10)
    choice = select(recs, margin=True)
    assert choice.validated == {"rank": 10, "step": 0.03}
    assert choice.config == {"rank": 10, "step": 0.01} and "stepped down" in choice.margin
    assert select(recs).config == {"rank": 10, "step": 0.03}        # no margin asked


def test_step_margin_steps_down_from_the_largest_or_unpiloted_neighbour():
    recs = _steps({1: [1.0, 1.0], 3: [0.5, 0.5]}, rank=10)        # integer steps in the space
    choice = select(recs, margin=True)
    assert choice.config == {"rank": 10, "step": 1.0} and "no larger step" in choice.margin
    choice = select(recs, margin=True, steps=[1.0, 3.0, 10.0])
    assert choice.config == {"rank": 10, "step": 1.0} and "not piloted" in choice.margin


def test_step_margin_at_the_smallest_step_keeps_it_unconfirmed():
    recs = _steps({0.01: [0.5, 0.5], 0.03: None}, rank=10)
    choice = select(recs, margin=True)
    assert choice.config == {"rank": 10, "step": 0.01} and choice.margin.startswith("unconfirmed")


# -- end to end -------------------------------------------------------------------------------

def test_held_out_selection_ranks_a_good_rank_above_a_bad_one_on_the_1d_gaussian():
    """Real KSWGD fits on 80 % of each validation draw, scored by W2 to the held-out 20 %.
    Rank 1 keeps only φ_1 ∝ x, so the transport moves the mean but not the spread of the
    initial N(2, 0.3²) (exact-spectrum limit: W2 = 1 − 0.3 = 0.7); rank 8 also fits the
    spread. Measured held-out W2 on these seeds: rank 1 0.52 and 1.82 (and collapsed on one
    draw), rank 8 below 0.5."""
    ds = registry.get_dataset("gaussian", d=1)
    reference = ds.draw(2000, rng_for(1, "tuning-test", "reference"))
    recs, oracle = [], {}
    for rank in (1, 8):
        for rep in validation_repetitions(2):
            train = ds.train(1000, rng_for(1, "tuning-test", rep, "train"))
            fit, held = split_training(train, 0.2, rng_for(1, "tuning-test", rep, "split"))
            x0 = ds.initial(200, rng_for(1, "tuning-test", rep, "init"))
            sampler = registry.get_sampler("kswgd", rank=rank, n_features=40, step=0.05)
            rng = rng_for(1, "tuning-test", rep, "method")
            sampler.setup(ds, fit, rng)
            x = run_sampler(sampler, x0.copy(), 200, rng)
            tree, spacing = training_index(fit.x)
            h = particle_health(x, tree, spacing)
            recs.append(Pilot({"rank": rank}, rep, validation_score("held-out", x, held_out=held),
                              validation_score("held-out", x0, held_out=held), len(x),
                              h["health.away"], h["health.distinct"]))
            oracle.setdefault(rank, []).append(w2(x, reference))
    choice = select(recs)
    assert choice.config == {"rank": 8}, choice.stats
    bad, good = choice.stats
    assert good.excluded is None and good.mean < 0.5
    assert np.mean(bad.scores) > 0.7      # rank 1 also collapsed on rep −2 (34 of 200 distinct)
    assert np.mean(oracle[8]) < np.mean(oracle[1])                # the oracle agrees

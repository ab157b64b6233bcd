"""The paper's metric definitions (paper_mmd, paper_sw, coverage) against slow reference
implementations written here, analytic cases, and their place in the registry (never ranking)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kswgd.core import metrics
from kswgd.params import ConfigError
from kswgd.registry import get_dataset


def _pooled_median_loop(x, y) -> float:
    z = np.concatenate([x, y])
    return float(np.median([math.dist(a, b) for a, b in itertools.combinations(z, 2)]))


def _v_statistic_loop(x, y, s) -> float:
    """MMD_b² as the textbook double sums over all pairs (diagonals included)."""
    def k(a, b):
        return math.exp(-math.dist(a, b) ** 2 / (2 * s * s))

    kxx = sum(k(a, b) for a in x for b in x) / len(x) ** 2
    kyy = sum(k(a, b) for a in y for b in y) / len(y) ** 2
    kxy = sum(k(a, b) for a in x for b in y) / (len(x) * len(y))
    return kxx + kyy - 2 * kxy


def test_paper_mmd_is_the_square_root_of_the_v_statistic_with_the_pooled_median():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((23, 3)), 0.5 + rng.standard_normal((31, 3))
    s = _pooled_median_loop(x, y)
    assert metrics.pooled_median_bandwidth(x, y) == pytest.approx(s, rel=1e-12)
    want = math.sqrt(_v_statistic_loop(x, y, s))
    assert metrics.paper_mmd(x, y) == pytest.approx(want, rel=1e-9)
    assert metrics.paper_mmd(x, y, bandwidth=0.7) == pytest.approx(
        math.sqrt(_v_statistic_loop(x, y, 0.7)), rel=1e-9)


def test_paper_mmd_flaws_zero_only_for_identical_sets_and_a_cloud_dependent_bandwidth():
    rng = np.random.default_rng(1)
    x, y, y2 = (rng.standard_normal((40, 2)) for _ in range(3))
    assert metrics.paper_mmd(x, x) == 0.0
    # Biased: two independent samples of the same law score clearly above 0 ...
    assert metrics.paper_mmd(x, y) > 0.1
    # ... and the kernel itself moves with the evaluated cloud.
    assert metrics.pooled_median_bandwidth(3 * x, y) > 1.5 * metrics.pooled_median_bandwidth(x, y)
    assert metrics.pooled_median_bandwidth(x, y) != metrics.pooled_median_bandwidth(y2, y)


def test_paper_sw_is_exact_w2_in_one_dimension():
    # In d = 1 every direction is ±1, so the sliced distance is W2 of the sorted samples.
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((50, 1)), 2 * rng.random((50, 1))
    want = math.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert metrics.paper_sw(x, y) == pytest.approx(want, rel=1e-12)


def test_paper_sw_averages_128_fixed_directions():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((30, 3)) * [1.0, 2.0, 0.5]
    theta = metrics._projections(3, 128, metrics.PAPER_SW_SEED)
    assert theta.shape == (3, 128) and np.allclose(np.linalg.norm(theta, axis=0), 1.0)
    w2sq = [np.mean((np.sort(x @ t) - np.sort(y @ t)) ** 2) for t in theta.T]
    assert metrics.paper_sw(x, y) == pytest.approx(math.sqrt(np.mean(w2sq)), rel=1e-12)


def test_paper_sw_does_not_depend_on_the_context_seed():
    ds = get_dataset("gaussian")
    ref = ds.draw(200, np.random.default_rng(4))
    x = ds.draw(100, np.random.default_rng(5)) + 0.2
    values = {metrics.evaluate(["paper_sw"], x, metrics.MetricContext(ref, ds, seed=k))["paper_sw"]
              for k in (0, 1, 7)}
    assert len(values) == 1


def test_coverage_counts_particles_within_0_4_of_a_well_and_rewards_over_concentration():
    rng = np.random.default_rng(6)
    centres = np.array([[1.0, 1.0], [-1.0, -1.0]])
    x = rng.uniform(-2, 2, (500, 2))
    near = sum(min(math.dist(p, c) for c in centres) <= 0.4 for p in x)
    assert metrics.coverage(x, centres) == pytest.approx(100.0 * near / len(x), abs=1e-12)
    piled = np.repeat(centres, 50, axis=0) + 0.01 * rng.standard_normal((100, 2))
    assert metrics.coverage(piled, centres) == 100.0  # above π's own value: the flaw
    with pytest.raises(ConfigError, match="centres"):
        metrics.coverage(x, np.zeros((2, 3)))


def test_coverage_of_exact_quadruple_well_draws_is_the_well_mass():
    from kswgd.datasets.quadruple_well import exact_well_mass

    ds = get_dataset("quadruple_well")
    x = ds.draw(4000, np.random.default_rng(7))
    sd = 100 * math.sqrt(0.38 * 0.62 / 4000)
    assert metrics.coverage(x, ds.well_centres) == pytest.approx(100 * exact_well_mass(),
                                                                 abs=4 * sd)


def test_paper_metrics_are_registered_but_never_default_or_ranking():
    paper = {n for n, r in metrics.METRICS.items() if r.paper}
    assert paper == {"paper_mmd", "paper_sw", "coverage"}
    assert not any(metrics.METRICS[n].default for n in paper)
    assert next(n for n, r in metrics.METRICS.items() if r.default) == "w2"  # the ranking one
    qw, gauss = get_dataset("quadruple_well"), get_dataset("gaussian")
    ctx_qw = metrics.MetricContext(qw.draw(300, np.random.default_rng(9)), qw)
    ctx_g = metrics.MetricContext(gauss.draw(300, np.random.default_rng(9)), gauss)
    assert "coverage" in metrics.expand("all", qw)[0]
    assert "coverage" not in metrics.expand("all", gauss)[0]
    assert not paper & set(metrics.expand("default", qw)[0])
    with pytest.raises(ConfigError, match="well_centres"):
        metrics.evaluate(["coverage"], ctx_g.reference, ctx_g)
    assert "well_centres" in metrics.expand("w2,coverage", gauss)[1]["coverage"]
    assert metrics.unavailable("coverage", qw) is None
    assert "score" in metrics.unavailable("ksd", get_dataset("circle"))
    x = qw.initial(200, np.random.default_rng(8))
    vals = metrics.evaluate(sorted(paper), x, ctx_qw)
    floors = metrics.noise_floor(sorted(paper), ctx_qw, 200, n_seeds=2)
    assert vals["coverage"] == 0.0  # the initial law avoids the wells' discs
    assert vals["paper_mmd"] > floors["paper_mmd"][0] > 0  # biased: floor above 0
    assert vals["paper_sw"] > floors["paper_sw"][0] > 0
    assert 25 < floors["coverage"][0] < 50
    info = metrics.metric_info("coverage", ctx_qw)
    assert info["higher_is_better"] and info["radius"] == 0.4
    assert metrics.METRICS["coverage"].higher_is_better

"""rff dictionary, the non-reversible edmd path, and kde-pairs on OU (λ_k = k)."""

import warnings

import numpy as np
import pytest

from kswgd.core.bandwidths import kde_bandwidth
from kswgd.core.dictionaries import RFF, Poly
from kswgd.core.estimators import ESTIMATORS, edmd, estimate
from kswgd.core.kde import kde_score
from kswgd.dataset import TrainingData


def test_rff_edmd_recovers_ou_spectrum():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20000, 1))
    y = np.exp(-0.1) * x + np.sqrt(1 - np.exp(-0.2)) * rng.standard_normal(x.shape)
    # In 1-D the 200 features are nearly dependent (whitening keeps ≈ 9 directions at σ = 1):
    # λ̂ = 0.99, 1.77, 2.13 measured. Only the first mode is accurate; rff is a weak dictionary
    # here, which the ablations should show.
    spec = edmd(TrainingData(x, y, lag=0.1), RFF(200), rank=3, rng=np.random.default_rng(2))
    assert spec.eigenvalues[0] == pytest.approx(1.0, rel=0.05)
    assert spec.info["kept_dim"] < 50


def test_nonreversible_edmd_warns_and_agrees_with_reversible_on_ou():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20000, 1))
    y = np.exp(-0.1) * x + np.sqrt(1 - np.exp(-0.2)) * rng.standard_normal(x.shape)
    data = TrainingData(x, y, lag=0.1)
    rev = edmd(data, Poly(6), rank=3)
    with pytest.warns(UserWarning, match="non-reversible"):
        nonrev = edmd(data, Poly(6), rank=3, reversible=False)
    np.testing.assert_allclose(nonrev.eigenvalues, rev.eigenvalues, rtol=0.08)
    np.testing.assert_allclose(nonrev.eigenvalues, [1, 2, 3], rtol=0.1)
    phi = nonrev.phi(x)
    np.testing.assert_allclose((phi**2).mean(axis=0), 1.0, rtol=1e-6)


def test_kde_score_close_to_exact_in_the_bulk():
    x = np.random.default_rng(4).standard_normal((5000, 1))
    b = kde_bandwidth(x)
    assert 0.15 < b < 0.25   # Silverman, not the median rule (≈ 1.0 here)
    grid = np.linspace(-1.5, 1.5, 31)[:, None]
    np.testing.assert_allclose(kde_score(grid, x, b), -grid, atol=0.25)


def test_kde_pairs_is_seeded_records_and_finds_first_mode():
    assert "kde-pairs" in ESTIMATORS
    data = TrainingData(np.random.default_rng(5).standard_normal((5000, 1)))
    kw = {"rank": 3, "repeats": 10, "lag": 0.05}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = estimate("kde-pairs", data, Poly(5), rng=np.random.default_rng(6), **kw)
    b = estimate("kde-pairs", data, Poly(5), rng=np.random.default_rng(6), **kw)
    np.testing.assert_array_equal(a.eigenvalues, b.eigenvalues)
    assert a.info["estimator"] == "kde-pairs" and a.info["kde_bandwidth_rule"] == "score"
    assert a.eigenvalues[0] == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_a_keyword_an_estimator_does_not_take_is_a_config_error_naming_those_it_takes(name):
    from kswgd.params import ConfigError

    data = TrainingData(np.zeros((3, 1)), np.zeros((3, 1)), lag=0.1)   # never fitted
    with pytest.raises(ConfigError) as err:
        estimate(name, data, Poly(2), rank=2, max_localization=0.5)     # misspelt
    msg = str(err.value)
    assert "\n" not in msg and "'max_localization'" in msg and "rank" in msg
    assert ("max_localisation" in msg) == (name != "oracle")


def test_bandwidth_rules_are_the_documented_formulas():
    # each rule against its formula written out here (s̄ = mean coordinate std), and the
    # dictionaries, kde-pairs and SVGD use these rules (one home)
    from kswgd.baselines.svgd import SVGD
    from kswgd.core import bandwidths as bw
    from kswgd.core.dictionaries import RBF
    from kswgd.registry import get_dataset

    x = np.random.default_rng(7).standard_normal((900, 3)) * [1.0, 2.0, 3.0]
    n, d, sbar = 900, 3, 2.0   # s̄ ≈ (1 + 2 + 3)/3
    assert np.mean(x.std(axis=0)) == pytest.approx(sbar, rel=0.05)
    s = bw.mean_std(x)
    assert bw.kde_bandwidth(x, "silverman") == pytest.approx(s * (4 / (5 * n)) ** (1 / 7), 1e-14)
    assert bw.kde_bandwidth(x, "score") == pytest.approx(s * (4 / (5 * n)) ** (1 / 9), 1e-14)
    assert bw.scott_bandwidth(x) == pytest.approx(s * n ** (-1 / 7), rel=1e-14)
    assert bw.diffusion_bandwidth(x) == pytest.approx(s * n ** (-1 / 9), rel=1e-14)
    assert bw.diffusion_bandwidth(x, 2) == pytest.approx(s * n ** (-1 / 8), rel=1e-14)
    # Silverman's rule on F landmarks is kde_bandwidth's with n = F (equal to rounding)
    assert bw.landmark_bandwidth(x, 50) == pytest.approx(
        bw.kde_bandwidth(x[:50], "silverman") * bw.mean_std(x) / bw.mean_std(x[:50]), rel=1e-13)
    assert RBF(50).fit(x, np.random.default_rng(0)).sigma_ == bw.landmark_bandwidth(x, 50)
    ds = get_dataset("gaussian", d=d)
    train = TrainingData(x)
    svgd = SVGD(score="kde")
    svgd.setup(ds, train, np.random.default_rng(0))
    assert svgd.fit_info()["kde_bandwidth"] == bw.scott_bandwidth(x)
    del d


def test_kswgd_on_samples_only_fits_the_kde_pairs_estimator_exactly():
    # one rule for every dataset: a pair estimator given samples fits on the KDE Langevin pairs,
    # so KSWGD(estimator='edmd') on samples is the kde-pairs estimator, bit for bit (same seed)
    from kswgd.core.dictionaries import make_dictionary
    from kswgd.registry import get_dataset, get_sampler

    ds = get_dataset("chessboard")
    train = ds.train(800, np.random.default_rng(7))
    assert not train.has_pairs
    sampler = get_sampler("kswgd", rank=4, n_features=60)
    assert sampler.data_kind == "any" and set(sampler.uses) == {"trajectories", "samples"}
    spec = sampler.fit_spectrum(ds, train, np.random.default_rng(8))
    p = sampler.params
    dic = make_dictionary("rbf", n_features=60, bandwidth_rule=p["bandwidth_rule"])
    ref = estimate("kde-pairs", train, dic, rank=4, rng=np.random.default_rng(8),
                   tol=p["tol"], max_localisation=p["max_localisation"])
    np.testing.assert_array_equal(spec.eigenvalues, ref.eigenvalues)
    assert spec.info["pairs"] == "kde-pairs"
    assert spec.info["pairs_kde_bandwidth"] == ref.info["kde_bandwidth"]
    # with pairs the same sampler fits on them (no synthetic pairs)
    pairs = get_dataset("gaussian", d=2).train(800, np.random.default_rng(9))
    assert "pairs" not in sampler.fit_spectrum(get_dataset("gaussian", d=2), pairs,
                                               np.random.default_rng(8)).info


def test_rbf_median_rule_is_factor_times_the_median_distance():
    from scipy.spatial.distance import pdist

    from kswgd.core.dictionaries import RBF

    x = np.random.default_rng(10).standard_normal((700, 3)) * [1.0, 2.0, 0.5]
    med = float(np.median(pdist(x)))
    for factor in (1.0, 0.5):
        dic = RBF(50, bandwidth_rule="median", bandwidth_factor=factor).fit(
            x, np.random.default_rng(0))
        assert dic.sigma_ == pytest.approx(factor * med, rel=1e-14)
        assert dic.info()["bandwidth_rule"] == f"{factor:g} x median distance"
    # the rule is equivariant: scaling the data scales σ (Silverman's too; a given σ does not)
    dic = RBF(50, bandwidth_rule="median").fit(3 * x, np.random.default_rng(0))
    assert dic.sigma_ == pytest.approx(3 * med, rel=1e-14)

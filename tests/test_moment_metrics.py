"""mean_error, cov_error and mode_weight_error against analytic cases, the declared exact
moments and modes against draws, and the metrics through `kswgd score`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli_errors import kswgd_cli

from kswgd.core import metrics as M
from kswgd.params import ConfigError
from kswgd.registry import get_dataset


def test_mean_error_is_the_norm_of_the_mean_shift():
    z = np.random.default_rng(0).standard_normal((50, 3))
    c = np.array([0.3, -1.2, 2.0])
    x = np.vstack([c + z, c - z])  # mean exactly c
    assert M.mean_error(x, np.zeros(3)) == pytest.approx(np.linalg.norm(c), rel=1e-12)
    assert M.mean_error(x, c) == pytest.approx(0.0, abs=1e-12)


def test_mean_error_of_exact_draws_has_expected_square_d_over_n():
    # E‖x̄ − 0‖² = d/n for n standard normal draws in d = 50; 400 seeds: the mean of the
    # squares has relative sd sqrt(2/d)/sqrt(400) ≈ 1 %, so a 5 % band is 5 sd
    d, n = 50, 100
    sq = [M.mean_error(np.random.default_rng([1, k]).standard_normal((n, d)), np.zeros(d)) ** 2
          for k in range(400)]
    assert np.mean(sq) == pytest.approx(d / n, rel=0.05)


def test_cov_error_of_a_whitened_cloud_scaled_by_1_5_is_1_25():
    z = np.random.default_rng(2).standard_normal((400, 4))
    z -= z.mean(axis=0)
    white = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # cov exactly I
    # Ĉ = 2.25 I against Σ = I: ‖1.25 I‖_F / ‖I‖_F = 1.25
    assert M.cov_error(1.5 * white, np.eye(4)) == pytest.approx(1.25, rel=1e-10)
    assert M.cov_error(white, np.eye(4)) == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ConfigError, match="zero"):
        M.cov_error(white, np.zeros((4, 4)))


def test_mode_weight_error_is_the_tv_of_the_nearest_mode_shares():
    modes = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    w = np.array([0.5, 0.25, 0.25])
    x = np.repeat(modes, [6, 3, 1], axis=0) + 0.1  # shares 0.6, 0.3, 0.1
    assert M.mode_weight_error(x, modes, w) == pytest.approx(0.5 * (0.1 + 0.05 + 0.15),
                                                             abs=1e-15)
    assert M.mode_weight_error(np.repeat(modes[:1], 4, axis=0), modes, w) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="summing to 1"):
        M.mode_weight_error(x, modes, np.ones(3))


@pytest.mark.parametrize("layout", ["ring", "grid"])
def test_gmm_declared_moments_and_modes_match_its_draws(layout):
    ds = get_dataset("gmm", layout=layout, d=3)
    x = ds.draw(100_000, np.random.default_rng(3))
    # standard error of a mean coordinate: sqrt(var / n) ≤ sqrt(8.1 / 1e5) ≈ 0.009; band 5 se
    assert np.abs(x.mean(axis=0) - ds.exact_mean).max() < 0.045
    # relative Frobenius error of a sample covariance ~ sqrt(2 / n) ≈ 0.0045 per entry scale
    assert M.cov_error(x, ds.exact_covariance) < 0.02
    assert ds.modes.shape == (len(ds.mode_weights), 3)
    assert ds.mode_weights.sum() == pytest.approx(1.0)
    # leakage of a component beyond its nearest-mean cell is < 1e-3 at the defaults; TV of
    # the shares of 1e5 draws adds sampling noise of about sqrt(K / n) / 2 ≤ 0.008
    assert M.mode_weight_error(x, ds.modes, ds.mode_weights) < 0.02


def test_moment_metrics_say_where_the_target_moments_come_from():
    g, c = get_dataset("gaussian"), get_dataset("circle")
    ctx_g = M.MetricContext(g.draw(100, np.random.default_rng(4)), g)
    ctx_c = M.MetricContext(c.draw(100, np.random.default_rng(4)), c)
    assert M.metric_info("mean_error", ctx_g)["target"] == "exact mean"
    assert M.metric_info("cov_error", ctx_c)["target"] == "covariance of the 100 reference draws"
    np.testing.assert_array_equal(ctx_c.target_mean, ctx_c.reference.mean(axis=0))


def test_score_cli_moment_and_mode_metrics_on_exact_and_collapsed_gmm_draws(tmp_path):
    kswgd_cli("sample", "gmm", "--n", "400", "--out", "x.npy", cwd=tmp_path, status=0)
    ds = get_dataset("gmm")
    np.save(tmp_path / "one.npy", np.repeat(ds.modes[:1], 400, axis=0) + 0.01)
    args = ["--dataset", "gmm", "--n-reference", "300", "--metrics",
            "mean_error,cov_error,mode_weight_error", "--json"]
    exact = json.loads(kswgd_cli("score", "x.npy", *args, cwd=tmp_path, status=0).stdout)
    one = json.loads(kswgd_cli("score", "one.npy", *args, cwd=tmp_path, status=0).stdout)
    assert one["mode_weight_error"]["value"] == pytest.approx(1 - 1 / 8, abs=1e-12)
    for name in exact:  # exact draws sit in the floor's band; one collapsed mode far above it
        r = exact[name]
        assert abs(r["value"] - r["floor"]) <= 5 * max(r["floor_std"], 1e-3), (name, r)
        assert one[name]["value"] > r["floor"] + 10 * r["floor_std"], name

"""Metrics (docs/design.md): exact answers, numpy twins of the Numba kernels, unbiasedness, noise
floors, order invariance and the error paths. All seeded; tolerances stated per test."""

from __future__ import annotations

import numpy as np
import ot
import pytest
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist

from kswgd.core import metrics as M
from kswgd.params import ConfigError
from kswgd.registry import get_dataset


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


# Two Gaussians in d = 2: N(0, I) and N(m, S).
MEAN = np.array([1.0, -0.5])
COV = np.array([[2.0, 0.6], [0.6, 0.5]])


def _gauss_pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    x = rng.standard_normal((n, 2))
    y = MEAN + rng.standard_normal((n, 2)) @ np.linalg.cholesky(COV).T
    return x, y


def _w2_closed_form() -> float:
    """W2² = ‖m‖² + tr(I + S − 2 S^{1/2}) for N(0, I) vs N(m, S)."""
    return float(np.sqrt(MEAN @ MEAN + np.trace(np.eye(2) + COV - 2 * np.real(sqrtm(COV)))))


def _sw2_closed_form(n_projections: int, seed: int) -> float:
    """SW2 over the same directions θ: 1-D Gaussians, W2² = (θ·m)² + (1 − sqrt(θᵀSθ))²."""
    p = M._projections(2, n_projections, seed)
    mean_proj = MEAN @ p
    std_proj = np.sqrt(np.einsum("il,ij,jl->l", p, COV, p))
    return float(np.sqrt(np.mean(mean_proj**2 + (1.0 - std_proj) ** 2)))


# ------------------------------------------------------------------------- W2 and sliced W2


def test_w2_closed_form_matches_pot_bures():
    pot = ot.gaussian.bures_wasserstein_distance(np.zeros(2), MEAN, np.eye(2), COV)
    assert _w2_closed_form() == pytest.approx(float(pot), rel=1e-10)


def test_w2_and_sw2_converge_to_gaussian_closed_form_within_noise_floor():
    """|W(μ_n, ν_n) − W(μ, ν)| ≤ W(μ_n, μ) + W(ν_n, ν) (triangle inequality); the floor, W between
    two independent n-samples of one law, is of the size of that bound."""
    exact_w2, exact_sw2 = _w2_closed_form(), _sw2_closed_form(M.SW2_PROJECTIONS, 0)
    errs_w2, errs_sw2 = [], []
    for n in (200, 800, 2000):
        x, y = _gauss_pair(n, seed=n)
        x2 = _rng(n, 1).standard_normal((n, 2))
        floor_w2, floor_sw2 = M.w2(x, x2), M.sw2(x, x2)
        errs_w2.append(abs(M.w2(x, y) - exact_w2))
        errs_sw2.append(abs(M.sw2(x, y) - exact_sw2))
        assert errs_w2[-1] <= floor_w2, (n, errs_w2[-1], floor_w2)
        assert errs_sw2[-1] <= floor_sw2, (n, errs_sw2[-1], floor_sw2)
    assert errs_w2[-1] < errs_w2[0] and errs_sw2[-1] < errs_sw2[0]
    assert errs_w2[-1] < 0.05 and errs_sw2[-1] < 0.05


def test_w2_of_a_sample_with_itself_is_zero():
    x, _ = _gauss_pair(300, seed=1)
    assert M.w2(x, x) == pytest.approx(0.0, abs=1e-12)
    assert M.w2(x, x[::-1]) == pytest.approx(0.0, abs=1e-12)
    assert M.sw2(x, x[::-1]) == pytest.approx(0.0, abs=1e-12)


def test_w2_raises_when_emd_stops_before_optimality():
    x, y = _gauss_pair(200, seed=2)
    with pytest.raises(M.ConvergenceError, match="numItermax"):
        M.w2(x, y, _num_iter_max=10)


def test_w2_subsample_is_seeded_and_order_free():
    x, y = _gauss_pair(400, seed=3)
    a = M.w2(x, y, max_points=150, seed=7)
    perm = _rng(3, 1).permutation(400)
    assert M.w2(x[perm], y[::-1], max_points=150, seed=7) == a
    assert M.w2(x, y, max_points=150, seed=8) != a


@pytest.mark.parametrize("sizes", [(120, 120), (37, 91), (300, 128)])
def test_sw2_equals_pot_sliced_wasserstein(sizes):
    rng = _rng(5, *sizes)
    x, y = rng.standard_normal((sizes[0], 3)), 0.3 + rng.standard_normal((sizes[1], 3))
    expect = M.sw2_pot(x, y, n_projections=40, seed=2)
    assert M.sw2(x, y, n_projections=40, seed=2) == pytest.approx(expect, rel=1e-10)
    assert M.sw2(x, y, n_projections=40, seed=2, chunk=300) == pytest.approx(expect, rel=1e-10)


def test_sw2_chunking_and_seed():
    x, y = _gauss_pair(500, seed=4)
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (POT seeds the global RNG)
    full = M.sw2(x, y, n_projections=60, seed=5)
    assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002
    assert M.sw2(x, y, n_projections=60, seed=5, chunk=500 * 7) == pytest.approx(full, rel=1e-12)
    assert M.sw2(x, y, n_projections=60, seed=6) != full


# --------------------------------------------------------------------------------- MMD²


def _mmd2_numpy(x, y, bandwidths) -> float:
    k = lambda a, b: sum(np.exp(-cdist(a, b, "sqeuclidean") / (2 * s * s)) for s in bandwidths)
    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )


@pytest.mark.parametrize("bandwidth", [0.8, [0.3, 1.0, 2.5]])
def test_mmd2_matches_numpy_double_sum(bandwidth):
    rng = _rng(10)
    x, y = rng.standard_normal((157, 3)), 0.4 + rng.standard_normal((91, 3))
    expect = _mmd2_numpy(x, y, np.atleast_1d(bandwidth))
    assert M.mmd2(x, y, bandwidth=bandwidth) == pytest.approx(expect, abs=1e-12)


def test_mmd2_multiscale_is_sum_of_single_scales():
    x, y = _gauss_pair(120, seed=11)
    scales = [0.5, 1.0, 2.0]
    total = sum(M.mmd2(x, y, bandwidth=s) for s in scales)
    assert M.mmd2(x, y, bandwidth=scales) == pytest.approx(total, abs=1e-12)


def test_mmd2_unbiased_for_equal_laws_positive_for_shift():
    """Mean over 40 seeds within 4 standard errors of 0 for equal laws; clearly > 0 shifted."""
    same, shifted = [], []
    for seed in range(40):
        rng = _rng(12, seed)
        x, y = rng.standard_normal((150, 2)), rng.standard_normal((120, 2))
        same.append(M.mmd2(x, y, bandwidth=1.0))
        shifted.append(M.mmd2(x + np.array([0.5, 0.0]), y, bandwidth=1.0))
    same, shifted = np.array(same), np.array(shifted)
    assert abs(same.mean()) < 4 * same.std(ddof=1) / np.sqrt(len(same))
    assert shifted.mean() > 10 * shifted.std(ddof=1) / np.sqrt(len(shifted))


def test_mmd_bandwidth_is_median_distance_of_reference():
    r = _rng(13).standard_normal((200, 2))
    expect = float(np.median(cdist(r, r)[np.triu_indices(200, 1)]))
    assert M.mmd_bandwidth(r) == pytest.approx(expect, rel=1e-12)
    big = _rng(14).standard_normal((3000, 2))
    assert M.mmd_bandwidth(big) == M.mmd_bandwidth(big[::-1])  # order-free subsample


# ------------------------------------------------------------------------ energy and KSD


def test_energy_matches_numpy_double_sum():
    rng = _rng(20)
    x, y = rng.standard_normal((140, 2)), rng.standard_normal((77, 2)) + 0.3
    n, m = len(x), len(y)
    expect = (2 * cdist(x, y).mean() - cdist(x, x).sum() / (n * (n - 1))
              - cdist(y, y).sum() / (m * (m - 1)))
    assert M.energy(x, y) == pytest.approx(expect, abs=1e-12)


def _ksd_numpy(x, s, c, beta) -> float:
    """Twin of the Numba kernel: full matrix of the IMQ Stein kernel, diagonal removed."""
    n, d = x.shape
    r = x[:, None, :] - x[None, :, :]
    r2 = np.sum(r * r, axis=2)
    q = c * c + r2
    sr = np.einsum("jd,ijd->ij", s, r) - np.einsum("id,ijd->ij", s, r)
    u = (s @ s.T) * q**beta + 2 * beta * q ** (beta - 1) * sr - 2 * beta * d * q ** (beta - 1)
    u -= 4 * beta * (beta - 1) * q ** (beta - 2) * r2
    return float((u.sum() - np.trace(u)) / (n * (n - 1))), float(u.sum() / (n * n))


def test_ksd_matches_numpy_twin():
    x = _rng(21).standard_normal((60, 3)) + 0.2
    score = lambda z: -z
    expect_u, expect_v = _ksd_numpy(x, score(x), 1.3, -0.5)
    assert M.ksd(x, score, c=1.3) == pytest.approx(expect_u, abs=1e-12)
    assert M.ksd(x, score, c=1.3, statistic="v") == pytest.approx(expect_v, abs=1e-12)


def test_ksd_v_statistic_is_never_negative_where_the_u_statistic_is():
    """A set better spread than iid draws (the N(0, 1) quantiles, like interacting particles)
    has KSD²_u < 0, so the smallest U would win for its noise; KSD²_V = ‖mean Stein feature‖²
    is ≥ 0 and still orders the sets: quantiles < iid draws < a shrunk set < a shifted one."""
    from scipy.stats import norm
    score = lambda z: -z
    q = norm.ppf((np.arange(200) + 0.5) / 200)[:, None]
    assert M.ksd(q, score) < 0 <= M.ksd(q, score, statistic="v")
    iid = _rng(24).standard_normal((200, 1))
    v = [M.ksd(z, score, statistic="v") for z in (q, iid, 0.8 * q, q + 0.5)]
    assert all(a < b for a, b in zip(v, v[1:], strict=False))
    with pytest.raises(ConfigError, match="statistic"):
        M.ksd(q, score, statistic="w")


def test_ksd_near_zero_for_exact_draws_and_grows_with_shift():
    score = lambda z: -z
    exact = [M.ksd(_rng(22, s).standard_normal((300, 2)), score) for s in range(10)]
    assert abs(np.mean(exact)) < 4 * np.std(exact, ddof=1) / np.sqrt(10)
    x = _rng(23).standard_normal((300, 2))
    vals = [M.ksd(x + np.array([h, 0.0]), score) for h in (0.0, 0.3, 0.6, 1.2)]
    assert vals[0] < 0.01 and all(a < b for a, b in zip(vals, vals[1:], strict=False))


# ---------------------------------------------------------- context, registry, noise floors


def _ctx(ds, n_reference: int, seed: int = 0, **kw) -> M.MetricContext:
    """A context on n_reference draws of ds (seeded by [seed, 0])."""
    return M.MetricContext(ds.draw(n_reference, _rng([seed, 0])), dataset=ds, seed=seed, **kw)


def _available(ctx) -> list[str]:
    return M.expand("all", ctx.dataset, has_train=ctx.train_x is not None)[0]


@pytest.fixture(scope="module")
def gauss_ctx():
    ds = get_dataset("gaussian")
    return _ctx(ds, 600, seed=0, train_x=ds.draw(800, _rng(30)))


def test_every_metric_is_invariant_to_point_order(gauss_ctx):
    x = 0.2 + _rng(31).standard_normal((250, 2))
    perm = _rng(32).permutation(len(x))
    names = _available(gauss_ctx)
    a, b = M.evaluate(names, x, gauss_ctx), M.evaluate(names, x[perm], gauss_ctx)
    for name in names:
        assert b[name] == pytest.approx(a[name], rel=1e-9, abs=1e-12), name


def test_noise_floor_is_seeded_and_cached(gauss_ctx):
    names = ["w2", "mmd2", "copy"]
    floor = M.noise_floor(names, gauss_ctx, 200)
    assert set(floor) == set(names)
    assert all(len(v) == 2 and v[1] >= 0 for v in floor.values())
    assert M.noise_floor(names, gauss_ctx, 200) == floor
    fresh_ctx = M.MetricContext(gauss_ctx.reference, dataset=gauss_ctx.dataset,
                                train_x=gauss_ctx.train_x, seed=0)
    assert M.noise_floor(names, fresh_ctx, 200) == floor
    assert floor["copy"][0] == pytest.approx(1.0, abs=0.1)
    assert floor["w2"][0] > 0


def test_copy_detects_copied_training_points(gauss_ctx):
    copied = gauss_ctx.train_x[:200] + 1e-3
    assert M.evaluate(["copy"], copied, gauss_ctx)["copy"] < 0.1


def test_task_metrics_pass_through():
    ds = get_dataset("quadruple_well")
    ctx = _ctx(ds, 300, seed=1)
    x = ds.draw(400, _rng(40))
    for name, fn in ds.task_metrics().items():
        assert name in _available(ctx)
        assert M.evaluate([name], x, ctx)[name] == fn(x)


def test_unknown_metric_and_bad_particles_raise_config_error(gauss_ctx):
    x = _rng(50).standard_normal((20, 2))
    with pytest.raises(ConfigError, match="unknown metric 'w3'.*valid: .*w2"):
        M.evaluate(["w3"], x, gauss_ctx)
    with pytest.raises(ConfigError, match="dimension"):
        M.evaluate(["w2"], np.ones((20, 3)), gauss_ctx)
    with pytest.raises(ConfigError, match="N, d"):
        M.evaluate(["w2"], np.ones((2, 3, 4)), gauss_ctx)
    bad = x.copy()
    bad[4, 0] = np.inf
    with pytest.raises(ConfigError, match="NaN or inf"):
        M.evaluate(["mmd2"], bad, gauss_ctx)


def test_ksd_needs_a_score():
    ctx = M.MetricContext(_rng(60).standard_normal((100, 2)))
    assert "ksd" not in _available(ctx)
    with pytest.raises(ConfigError, match="score"):
        M.evaluate(["ksd"], _rng(61).standard_normal((50, 2)), ctx)


def test_metric_info_records_parameters(gauss_ctx):
    assert M.metric_info("sw2", gauss_ctx)["n_projections"] == M.SW2_PROJECTIONS
    info = M.metric_info("w2", gauss_ctx, n=10_000)
    assert info["subsampled"] and info["max_points"] == M.W2_MAX_POINTS
    assert M.metric_info("mmd2", gauss_ctx)["bandwidth"] == gauss_ctx.bandwidth

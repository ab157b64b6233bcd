"""Baseline samplers: SVGD (both compute paths), ULA and MALA against exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from kswgd.baselines.svgd import kde_score
from kswgd.core.stein import median_bandwidth, svgd_direction
from kswgd.dataset import Dataset, Manifold
from kswgd.params import ConfigError
from kswgd.registry import get_dataset, get_sampler
from kswgd.sampler import run_sampler


def svgd_direction_tensor(x: np.ndarray, s: np.ndarray, bw2: float) -> np.ndarray:
    """Plain twin with the full (N, N, d) tensor: φ_i = mean_j [k_ji s_j + ∇_{x_j} k(x_j, x_i)]."""
    diff = x[None, :, :] - x[:, None, :]  # diff[i, j] = x_j − x_i
    k = np.exp(-np.sum(diff**2, axis=2) / (2 * bw2))  # k[i, j] = k(x_j, x_i)
    grad_j = -diff / bw2 * k[:, :, None]  # ∇_{x_j} k(x_j, x_i) = −(x_j − x_i)/b² k
    return np.mean(k[:, :, None] * s[None, :, :] + grad_j, axis=1)


@pytest.mark.parametrize(("d", "backend"), [(2, "numba"), (2, "auto"), (20, "numpy"), (20, "auto")])
@pytest.mark.parametrize("widen", [1.0, 10.0])
def test_svgd_direction_matches_tensor_twin(d, backend, widen):
    """widen = 10: at d = 20 the median heuristic makes k_ij ≈ 0 for i ≠ j; widen b² too."""
    n = 150
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d)) * 1.5 + 0.3
    s = rng.standard_normal((n, d))
    bw2 = widen * median_bandwidth(x)
    got = svgd_direction(x, s, bw2, backend)
    want = svgd_direction_tensor(x, s, bw2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    if widen > 1:  # the other particles contribute: the comparison is not vacuous
        assert np.abs(want - s / n).max() > 0.1


def test_svgd_numpy_path_blocks_rows():
    """Several row blocks (≈ 1M entries each, so 499 rows at N = 2100) are stitched correctly."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2100, 3))
    s = -x
    got = svgd_direction(x, s, 0.3, "numpy")
    np.testing.assert_allclose(got, svgd_direction(x, s, 0.3, "numba"), rtol=0, atol=1e-10)


def test_median_bandwidth_subsample_close_to_all_pairs():
    x = np.random.default_rng(2).standard_normal((3000, 2))
    full = median_bandwidth(x, subsample=0)
    sub = median_bandwidth(x, subsample=1000)
    # b² = median(‖x_i − x_j‖²)/(2 log(N+1)); for N(0, I_2), ‖x_i − x_j‖² ~ 4·Exp → median 4 ln 2
    assert full == pytest.approx(4 * np.log(2) / (2 * np.log(3001)), rel=0.03)
    assert sub == pytest.approx(full, rel=0.03)


@pytest.mark.parametrize(("optimizer", "step"), [("sgd", 0.5), ("adagrad", 0.05), ("adam", 0.05)])
def test_svgd_converges_to_standard_gaussian(optimizer, step):
    ds = get_dataset("gaussian", d=2)
    rng = np.random.default_rng(3)
    x0 = ds.initial(300, rng)  # N(2, 0.3²): far from the target
    sampler = get_sampler("svgd", step=step, optimizer=optimizer)
    sampler.setup(ds, None, rng)
    x = run_sampler(sampler, x0, 400, rng)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.05)
    # SVGD with the median heuristic slightly under-disperses at finite N (≈ 0.95 here)
    np.testing.assert_allclose(x.var(axis=0), 1.0, atol=0.1)
    assert sampler.diagnostics()["phi_rms"] < 0.05


def test_svgd_without_score_raises():
    ds = get_dataset("gaussian", d=2)
    ds.score = None  # instance attribute shadows the method
    with pytest.raises(ConfigError, match="score"):
        get_sampler("svgd").setup(ds, None, np.random.default_rng(0))


def test_kde_score_matches_direct_formula_and_smoothed_gaussian():
    rng = np.random.default_rng(8)
    data = rng.standard_normal((20_000, 2))
    x = rng.uniform(-1.5, 1.5, (150, 2))  # several row blocks (64 rows each at M = 20 000)
    sigma = 0.5
    got = kde_score(x, data, sigma)
    diff = data[None, :, :] - x[:, None, :]
    w = np.exp(-np.sum(diff**2, axis=2) / (2 * sigma**2))
    direct = np.einsum("nm,nmd->nd", w, diff) / w.sum(axis=1)[:, None] / sigma**2
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-10)
    # the KDE of N(0, I) draws is ≈ N(0, (1 + σ²) I), whose score is −x / (1 + σ²)
    err = got + x / (1 + sigma**2)
    assert np.sqrt(np.mean(err**2)) < 0.05 and np.abs(err).max() < 0.12  # seen: 0.025, 0.056


def test_svgd_with_kde_score_learns_from_samples():
    ds = get_dataset("gaussian", d=2)
    rng = np.random.default_rng(9)
    sampler = get_sampler("svgd", step=0.5, score="kde")
    assert sampler.uses == ("samples",) and sampler.data_kind == "samples"
    train = ds.train(1000, rng, kind="samples")
    sampler.setup(ds, train, rng)
    x = run_sampler(sampler, ds.initial(200, rng), 300, rng)  # seen: |Δmean| ≤ 0.022, Δvar ≥ −0.074
    sigma = sampler.fit_info()["kde_bandwidth"]
    assert 0.2 < sigma < 0.4  # Scott's rule: 1000^(−1/6) ≈ 0.32
    # the target is now the KDE: mean of the data, variance of the data + σ²
    np.testing.assert_allclose(x.mean(axis=0), train.x.mean(axis=0), atol=0.05)
    np.testing.assert_allclose(x.var(axis=0), train.x.var(axis=0) + sigma**2, atol=0.12)


class _UniformCircle(Dataset):
    """Uniform law on the unit circle in R² (score 0), enough for the manifold tests."""

    name = ""  # not registered

    dim = 2
    manifold = Manifold(
        "circle",
        project=lambda x: x / np.linalg.norm(x, axis=1, keepdims=True),
        tangent=lambda x, v: v - np.sum(v * x, axis=1, keepdims=True) * x,
        intrinsic_dim=1,
    )

    def score(self, x):
        return np.zeros_like(x)

    def log_density(self, x):
        return np.full(len(x), -np.log(2 * np.pi))


def test_ula_on_circle_stays_on_manifold_and_spreads():
    ds = _UniformCircle()
    rng = np.random.default_rng(10)
    sampler = get_sampler("ula", step=0.05)
    sampler.setup(ds, None, rng)
    x0 = np.tile([1.0, 0.0], (5000, 1))  # all particles at angle 0
    x = run_sampler(sampler, x0, 200, rng)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-12)
    # Brownian motion on the circle: E cos θ_t = e^{−t/2} ≈ 0.007 at t = 10 (SE ≈ 0.01)
    assert abs(x[:, 0].mean()) < 0.05 and abs(x[:, 1].mean()) < 0.05


def test_mala_refuses_manifold_datasets():
    with pytest.raises(ConfigError, match="Euclidean"):
        get_sampler("mala").setup(_UniformCircle(), None, np.random.default_rng(0))


def _run(name: str, n: int, steps: int, seed: int, **params) -> tuple[np.ndarray, object]:
    ds = get_dataset("gaussian", d=1)
    rng = np.random.default_rng(seed)
    sampler = get_sampler(name, **params)
    sampler.setup(ds, None, rng)
    return run_sampler(sampler, ds.initial(n, rng), steps, rng), sampler


def test_ula_variance_has_known_step_bias():
    """x ← (1 − h) x + √(2h) ξ has stationary variance 2h / (1 − (1 − h)²) = 1 / (1 − h/2)."""
    h = 0.5
    x, _ = _run("ula", 40_000, 60, seed=4, step=h)
    assert x.mean() == pytest.approx(0.0, abs=0.02)
    assert x.var() == pytest.approx(1.0 / (1.0 - h / 2), abs=0.03)  # 4/3, SE ≈ 0.009


def test_mala_is_unbiased_and_accepts_some():
    x, sampler = _run("mala", 40_000, 80, seed=5, step=0.5)
    assert x.mean() == pytest.approx(0.0, abs=0.02)
    assert x.var() == pytest.approx(1.0, abs=0.03)  # ULA at the same h would give 4/3
    diag = sampler.diagnostics()
    assert 0.0 < diag["acceptance"] < 1.0
    assert 0.5 < diag["acceptance_mean"] < 1.0


@pytest.mark.parametrize("name", ["svgd", "ula", "mala"])
def test_same_seed_gives_identical_particles(name):
    a, _ = _run(name, 200, 10, seed=6, step=0.1)
    b, _ = _run(name, 200, 10, seed=6, step=0.1)
    c, _ = _run(name, 200, 10, seed=7, step=0.1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_samplers_are_registered_with_their_access():
    assert get_sampler("svgd").uses == ("score",)
    assert get_sampler("ula").uses == ("score",)
    assert get_sampler("mala").uses == ("score", "log_density")
    with pytest.raises(ConfigError):
        get_sampler("svgd", optimizer="rmsprop")

"""Law checks for the dataset plug-ins (docs/design.md): each test compares draws with an exact or
independent answer, with a tolerance set from the Monte Carlo standard error (4–5 sd)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from kswgd.params import ConfigError
from kswgd.registry import datasets, get_dataset


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed))


def _binom_tol(p: float, n: int, k: float = 4.5) -> float:
    return k * np.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------- quadruple well


def test_quadruple_well_rejection_bound_holds():
    from kswgd.datasets import quadruple_well as qw

    x = np.linspace(-6, 6, 200_001)
    assert np.max(qw._log_f1(x) + 0.5 * x * x) <= qw._LOG_BOUND + 1e-12


def test_quadruple_well_exact_mass_matches_independent_quadrature():
    from kswgd.datasets.quadruple_well import exact_well_mass

    f = lambda y, x: np.exp(-((x * x - 1) ** 2) - (y * y - 1) ** 2)
    disc, _ = integrate.dblquad(f, 0.6, 1.4, lambda x: 1 - np.sqrt(max(0.0, 0.16 - (x - 1) ** 2)),
                                lambda x: 1 + np.sqrt(max(0.0, 0.16 - (x - 1) ** 2)))
    z1, _ = integrate.quad(lambda t: np.exp(-((t * t - 1) ** 2)), -np.inf, np.inf)
    assert exact_well_mass() == pytest.approx(4 * disc / z1**2, abs=1e-6)
    assert exact_well_mass() == pytest.approx(0.3808, abs=2e-4)


def test_quadruple_well_reference_mass_within_mc_error():
    ds = get_dataset("quadruple_well")
    n = 100_000
    x = ds.draw(n, _rng(1))
    err = ds.task_metrics()["well_mass_error"](x)
    from kswgd.datasets.quadruple_well import exact_well_mass

    assert err < _binom_tol(exact_well_mass(), n)
    # second moment against quadrature of the 1-D factor
    z1, _ = integrate.quad(lambda t: np.exp(-((t * t - 1) ** 2)), -np.inf, np.inf)
    m2, _ = integrate.quad(lambda t: t * t * np.exp(-((t * t - 1) ** 2)), -np.inf, np.inf)
    sd = np.std(x**2) / np.sqrt(n)
    assert np.all(np.abs((x**2).mean(0) - m2 / z1) < 5 * sd)


def test_quadruple_well_trajectory_pairs_follow_the_drift_and_visit_all_wells():
    ds = get_dataset("quadruple_well")
    td = ds.train(9999, _rng(2))
    assert td.x.shape == td.y.shape == (9999, 2) and td.lag == pytest.approx(0.01)
    np.testing.assert_array_equal(td.x[1:], td.y[:-1])  # one chain: consecutive saved points
    # E[y − x | x] ≈ −∇V(x) τ and Var ≈ 2τ per coordinate (small-lag Euler checks)
    incr = td.y - td.x
    resid = incr + 0.01 * ds.grad_potential(td.x)
    assert np.abs(resid.mean(0)).max() < 5 * np.sqrt(0.02 / 9999) + 2e-3
    assert resid.var(0) == pytest.approx([0.02, 0.02], rel=0.1)
    quadrant = (td.x[:, 0] > 0) * 2 + (td.x[:, 1] > 0)
    assert np.all(np.bincount(quadrant, minlength=4) > 500)


def test_quadruple_well_initial_law_avoids_wells():
    ds = get_dataset("quadruple_well")
    x = ds.initial(2627, _rng(3))
    assert x.shape == (2627, 2) and np.abs(x).max() <= 2.0
    assert ds.task_metrics()["well_mass_error"](x) == pytest.approx(0.3808, abs=1e-3)
    # the uniform square minus 4 discs keeps area 16 − 4π·0.16: check one disc is empty and the
    # rest is uniform (share in x > 0 is one half)
    assert abs(np.mean(x[:, 0] > 0) - 0.5) < _binom_tol(0.5, 2627)


# ---------------------------------------------------------------- gaussian (OU)


def test_gaussian_ou_pairs_have_exact_transition_moments():
    ds = get_dataset("gaussian", d=2, lag=0.3)
    n = 50_000
    td = ds.train(n, _rng(5))
    a = np.exp(-0.3)
    resid = td.y - a * td.x  # exactly N(0, (1 − e^{−2τ}) I), independent of x
    var = 1 - a * a
    assert np.abs(resid.mean(0)).max() < 4.5 * np.sqrt(var / n)
    assert np.abs(resid.var(0) / var - 1).max() < 4.5 * np.sqrt(2 / n)
    assert np.abs(np.mean(resid * td.x, axis=0)).max() < 4.5 * np.sqrt(var / n)
    assert np.abs(np.mean(td.x * td.y, axis=0) - a).max() < 4.5 * np.sqrt((1 + a * a) / n)


# ---------------------------------------------------------------- manifolds


def test_circle_draws_are_uniform_and_pairs_have_exact_transition():
    ds = get_dataset("circle")
    n = 40_000
    x = ds.draw(n, _rng(10))
    th = ds.angle(x)
    tol = 4.5 * np.sqrt(0.5 / n)
    for k in (1, 2, 3):
        assert abs(np.cos(k * th).mean()) < tol and abs(np.sin(k * th).mean()) < tol
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0)
    td = ds.train(n, _rng(11))
    c = np.sum(td.x * td.y, axis=1)  # cos(θ_y − θ_x), E = e^{−τ} for λ_1 = 1
    assert abs(c.mean() - np.exp(-0.05)) < 4.5 * c.std() / np.sqrt(n)
    assert list(ds.eigenvalues(5)) == [1, 1, 4, 4, 9]


def test_semicircle_uniform_on_arc_and_reflected_pairs():
    ds = get_dataset("semicircle")
    n = 40_000
    th = ds.angle(ds.draw(n, _rng(12)))
    assert th.max() <= np.pi + 1e-12
    assert abs(np.cos(th).mean()) < 4.5 * np.sqrt(0.5 / n)
    assert abs(np.sin(th).mean() - 2 / np.pi) < 4.5 * np.sqrt((0.5 - 4 / np.pi**2) / n)
    td = ds.train(n, _rng(13), kind="trajectories")
    # Neumann eigenfunction cos θ (λ = 1): E[cos θ_x cos θ_y] = e^{−τ} E[cos² θ] = e^{−τ}/2
    prod = td.x[:, 0] * td.y[:, 0]
    assert abs(prod.mean() - 0.5 * np.exp(-0.05)) < 4.5 * prod.std() / np.sqrt(n)
    assert np.all(td.y[:, 1] >= -1e-12)


def test_sphere_draws_are_uniform_and_pairs_contract_at_rate_two():
    ds = get_dataset("sphere")
    n = 40_000
    x = ds.draw(n, _rng(14))
    assert np.abs(x.mean(0)).max() < 4.5 * np.sqrt(1 / 3 / n)
    assert np.abs(np.cov(x.T) - np.eye(3) / 3).max() < 4.5 * np.sqrt(4 / 45 / n)
    td = ds.train(20_000, _rng(15))
    assert np.allclose(np.linalg.norm(td.y, axis=1), 1.0)
    dot = np.sum(td.x * td.y, axis=1)  # E[x·y] = e^{−2τ} (l = 1 modes), O(δ) scheme error
    assert abs(dot.mean() - np.exp(-0.1)) < 4.5 * dot.std() / np.sqrt(20_000) + 2e-3
    assert list(ds.eigenvalues(9)) == [2, 2, 2, 6, 6, 6, 6, 6, 12]


def _torus_phi_chi2(drift: bool) -> float:
    from scipy import stats

    from kswgd.datasets.torus import torus_angle_sde

    ds = get_dataset("torus")
    rng = _rng(16)
    n = 10_000
    th0 = rng.uniform(-0.3, 0.3, n)
    ph0 = rng.uniform(np.pi / 2 - 0.3, np.pi / 2 + 0.3, n)
    _, ph = torus_angle_sde(th0, ph0, 3.0, 300, rng, 2.0, 0.8, drift=drift)
    edges = np.linspace(0, 2 * np.pi, 25)
    counts, _ = np.histogram(ph, edges)
    return stats.chisquare(counts, ds.phi_bin_probs(edges) * n).pvalue


def test_torus_sde_long_run_phi_matches_surface_marginal_and_drift_free_fails():
    assert _torus_phi_chi2(drift=True) > 1e-3
    assert _torus_phi_chi2(drift=False) < 1e-12  # the public code's SDE is rejected


def test_torus_reference_marginals_and_manifold_maps():
    ds = get_dataset("torus")
    x = ds.draw(20_000, _rng(17))
    th, ph = ds.angles(x)
    # E[cos φ] under ∝ R + r cos φ is r / (2R) = 0.2
    assert abs(np.cos(ph).mean() - 0.2) < 4.5 * np.sqrt(0.5 / 20_000)
    assert abs(np.cos(th).mean()) < 4.5 * np.sqrt(0.5 / 20_000)
    man = ds.manifold
    assert man.distance(x).max() < 1e-12
    moved = x + 0.05 * _rng(18).standard_normal(x.shape)
    assert man.distance(man.project(moved)).max() < 1e-12
    v = man.tangent(x, _rng(19).standard_normal(x.shape))
    th, ph = ds.angles(x)
    normal = np.column_stack([np.cos(ph) * np.cos(th), np.cos(ph) * np.sin(th), np.sin(ph)])
    assert np.abs(np.sum(v * normal, axis=1)).max() < 1e-12


# ---------------------------------------------------------------- metastable 1-D / 2-D


def test_double_well_reference_matches_quadrature():
    ds = get_dataset("double_well")
    n = 50_000
    x = ds.draw(n, _rng(20))[:, 0]
    z, _ = integrate.quad(lambda t: np.exp(-2 * (t * t - 1) ** 2), -np.inf, np.inf)
    m2, _ = integrate.quad(lambda t: t * t * np.exp(-2 * (t * t - 1) ** 2), -np.inf, np.inf)
    assert abs((x**2).mean() - m2 / z) < 4.5 * (x**2).std() / np.sqrt(n)
    assert abs(np.mean(x > 0) - 0.5) < _binom_tol(0.5, n)
    assert np.exp(ds.log_density(np.zeros((1, 1))))[0] == pytest.approx(np.exp(-2) / z)


def test_prinz_reference_basin_masses_match_quadrature():
    ds = get_dataset("prinz")
    n = 50_000
    x = ds.draw(n, _rng(21))
    lab = np.searchsorted(ds.barriers, x[:, 0])
    share = np.bincount(lab, minlength=4) / n
    tol = [_binom_tol(p, n) for p in ds.basin_masses]
    assert np.all(np.abs(share - ds.basin_masses) < tol)
    assert ds.barriers == pytest.approx([-0.5016, 0.0, 0.5020], abs=2e-3)
    e = 1e-6
    pts = np.array([[-0.3], [0.1], [0.6]])
    fd = (ds.potential(pts + e) - ds.potential(pts - e)) / (2 * e)
    assert np.allclose(ds.grad_potential(pts)[:, 0], fd, rtol=1e-6)


def test_muller_brown_rejection_reference_matches_grid_quadrature():
    ds = get_dataset("muller_brown")
    n = 10_000
    x = ds.draw(n, _rng(22))
    share = np.bincount(ds._labels(x), minlength=3) / n
    assert np.all(np.abs(share - ds.basin_masses) < [_binom_tol(p, n) for p in ds.basin_masses])
    assert ds.minima[0] == pytest.approx([-0.558, 1.442], abs=1e-3)
    e = 1e-6
    g = np.array([[e, 0.0], [0.0, e]])
    fd = np.column_stack([(ds.potential(x[:5] + g[i]) - ds.potential(x[:5] - g[i])) / (2 * e)
                          for i in range(2)])
    assert np.allclose(ds.grad_potential(x[:5]), fd, rtol=1e-5, atol=1e-5)


def test_langevin_chains_use_beta_scaled_drift():
    """One Euler step per pair: y − x + β∇V(x) τ is exactly N(0, 2τ I) (docs/design.md)."""
    ds = get_dataset("muller_brown", n_chains=50, burn_in=10, lag=5e-4, n_sub=1)
    td = ds.train(5000, _rng(23))
    resid = (td.y - td.x + ds.beta * ds.grad_potential(td.x) * td.lag) / np.sqrt(2 * td.lag)
    assert np.abs(resid.mean(0)).max() < 4.5 / np.sqrt(5000)
    assert np.abs(resid.var(0) - 1).max() < 4.5 * np.sqrt(2 / 5000)


# ---------------------------------------------------------------- mixtures, board, digits


@pytest.mark.parametrize("layout,k", [("ring", 8), ("grid", 25)])
def test_gmm_draws_score_and_density(layout, k):
    ds = get_dataset("gmm", layout=layout, d=4)
    n = 40_000
    x = ds.draw(n, _rng(24))
    from kswgd.core.metrics.formulas import mode_weight_error

    assert mode_weight_error(x, ds.modes, ds.mode_weights) < 4.5 * np.sqrt(k / n)
    assert np.abs(x[:, 2:].std(0) - 0.3).max() < 0.01
    e = 1e-6
    pts = x[:4]
    fd = np.column_stack([(ds.log_density(pts + e * np.eye(4)[j])
                           - ds.log_density(pts - e * np.eye(4)[j])) / (2 * e) for j in range(4)])
    assert np.allclose(ds.score(pts), fd, rtol=1e-5, atol=1e-5)
    # normalisation: importance-sampling estimate of ∫ π = 1 with the mixture itself
    if layout == "ring":
        g = np.linspace(-5, 5, 401)
        xx, yy = np.meshgrid(g, g)
        d2 = get_dataset("gmm", layout=layout, d=2)
        dens = np.exp(d2.log_density(np.column_stack([xx.ravel(), yy.ravel()])))
        assert dens.sum() * (g[1] - g[0]) ** 2 == pytest.approx(1.0, abs=1e-6)


def test_chessboard_is_uniform_on_black_cells():
    ds = get_dataset("chessboard")
    n = 40_000
    x = ds.draw(n, _rng(25))
    m = ds.task_metrics()
    assert m["off_board"](x) == 0.0
    assert m["cell_tv"](x) < 4.5 * np.sqrt(8 / n)
    assert abs(x.mean()) < 0.05 and np.abs(x).max() <= 2.0


def test_digits_round_trip_and_held_out_reference():
    ds = get_dataset("digits", latent_dim=16)
    z = ds.train(1300, _rng(26)).x
    assert z.shape == (1300, 16)
    # round trip: encode(decode(z)) = z exactly (orthonormal axes)
    assert np.allclose(ds.encode(ds.decode(z)), z, atol=1e-10)
    # decode(encode(x)) reconstructs the images up to the discarded PCA variance
    rec = ds.decode(ds.encode(ds.heldout_images))
    rel = np.linalg.norm(rec - ds.heldout_images) / np.linalg.norm(ds.heldout_images - ds.mean)
    assert rel < 0.5
    full = get_dataset("digits", latent_dim=64)
    assert np.allclose(full.decode(full.encode(full.heldout_images)), full.heldout_images)
    # reference rows are codes of held-out images, disjoint from the training codes
    ref = ds.draw(497, _rng(27))
    assert np.sort(ref, axis=0) == pytest.approx(np.sort(ds.heldout_codes, axis=0))
    gap = ((ref[:, None, :] - ds.train_codes[None]) ** 2).sum(-1).min()
    assert gap > 0
    assert len(ds.train_images) + len(ds.heldout_images) == 1797
    assert ds.task_metrics()["nearest_train_distance"](ds.train(497, _rng(28)).x) > 0.05


# ---------------------------------------------------------------- Allen–Cahn


def _ac_numpy_step(u, noise, dt, delta, eps, h):
    """Plain-numpy twin of kswgd.core._kernels.allen_cahn_em_1d."""
    for s in range(noise.shape[0]):
        lap = np.roll(u, 1, 1) - 2 * u + np.roll(u, -1, 1)
        u = u + dt * (delta * lap / h**2 + (u - u**3) / eps**2) + noise[s]
    return u


def test_allen_cahn_kernels_match_numpy_twin():
    from kswgd.core import _kernels

    rng = _rng(29)
    u = rng.standard_normal((3, 16))
    noise = 0.1 * rng.standard_normal((5, 3, 16))
    want = _ac_numpy_step(u.copy(), noise, 0.01, 1e-3, 0.5, 1 / 16)
    assert np.allclose(_kernels.allen_cahn_em_1d(u.copy(), noise, 0.01, 1e-3, 0.5, 1 / 16), want)
    u2 = rng.standard_normal((2, 4, 4))
    n2 = 0.1 * rng.standard_normal((3, 2, 4, 4))
    v = u2.copy()
    for s in range(3):
        lap = sum(np.roll(v, k, a) for k in (1, -1) for a in (1, 2)) - 4 * v
        v = v + 0.01 * (1e-3 * lap * 16 + (v - v**3) / 0.25) + n2[s]
    assert np.allclose(_kernels.allen_cahn_em_2d(u2.copy(), n2, 0.01, 1e-3, 0.5, 0.25), v)


def test_allen_cahn_train_reproduces_reference_phase_fraction():
    from kswgd.datasets.allen_cahn import phase_imbalance

    ds = get_dataset("allen_cahn", grid=32)
    ref = ds.draw(1000, _rng(30))
    tr = ds.train(1000, _rng(31))
    late = ds.draw_fields(1000, _rng(32), burn_in=40.0)
    a, b, c = (phase_imbalance(v).mean() for v in (ref, tr.x, late))
    # runs are correlated within a run: a conservative 0.05 (≈ 4 sd of 100 independent runs)
    assert abs(a - b) < 0.05 and abs(a - c) < 0.05
    assert 0.05 < a < 0.6  # phase separated, not frozen in one phase
    assert np.abs(ref).mean() > 0.5  # sites sit near the wells ±1


def test_allen_cahn_latent_decodes_to_fields():
    ds = get_dataset("allen_cahn", grid=32, latent_dim=8, pca_fit_size=200)
    z = ds.draw(50, _rng(33))
    assert z.shape == (50, 8)
    assert np.allclose(ds.encode(ds.decode(z)), z, atol=1e-10)
    assert ds.decode(z).shape == (50, 32)


# ---------------------------------------------------------------- every dataset

ALL = ["quadruple_well", "circle", "semicircle", "sphere", "torus", "double_well", "prinz",
       "muller_brown", "gmm", "chessboard", "digits", "gaussian"]


@pytest.mark.parametrize("name", ALL + ["allen_cahn"])
def test_same_seed_same_bytes_and_different_seed_differs(name):
    ds = get_dataset(name, **({"grid": 16} if name == "allen_cahn" else {}))
    a = ds.draw(50, _rng(7))
    b = ds.draw(50, _rng(7))
    c = ds.draw(50, _rng(8))
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    assert a.dtype == np.float64 and a.shape == (50, ds.dim)
    ta = ds.train(40, _rng(7))
    tb = ds.train(40, _rng(7))
    assert ta.x.tobytes() == tb.x.tobytes() and ta.x.shape == (40, ds.dim)
    if ta.has_pairs:
        assert ta.y.tobytes() == tb.y.tobytes() and ta.lag > 0
    assert ds.initial(20, _rng(7)).shape == (20, ds.dim)
    for f in ds.task_metrics().values():
        assert np.isfinite(f(a))


@pytest.mark.parametrize("name", ALL)
def test_reference_scores_better_than_initial_on_task_metrics(name):
    ds = get_dataset(name)
    ref = ds.draw(2000, _rng(40))
    init = ds.initial(2000, _rng(41))
    for key, f in ds.task_metrics().items():
        if key == "manifold_distance":
            assert f(ref) < 1e-12
        elif key == "missing_modes":
            assert f(ref) == 0.0
        else:
            assert f(ref) < f(init), key


def test_bad_dataset_name_and_parameter_raise_config_error():
    with pytest.raises(ConfigError, match="quadruple_well"):
        get_dataset("quadruple_wel")
    with pytest.raises(ConfigError, match="n_chains"):
        get_dataset("quadruple_well", n_chain=3)
    with pytest.raises(ConfigError, match="ring"):
        get_dataset("gmm", layout="spiral")
    with pytest.raises(ConfigError, match="samples"):
        get_dataset("gmm").train(10, _rng(0), kind="trajectories")
    assert set(ALL + ["allen_cahn"]) <= set(datasets())

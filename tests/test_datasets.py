"""Law checks for the dataset plug-ins (DESIGN.md §5): each test compares draws with an exact or
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


# ---------------------------------------------------------------- every dataset


@pytest.mark.parametrize("name", ["quadruple_well"])
def test_same_seed_same_bytes_and_different_seed_differs(name):
    ds = get_dataset(name)
    a = ds.draw(50, _rng(7))
    b = ds.draw(50, _rng(7))
    c = ds.draw(50, _rng(8))
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    assert a.dtype == np.float64 and a.shape == (50, ds.dim)
    ta = ds.train(40, _rng(7))
    tb = ds.train(40, _rng(7))
    assert ta.x.tobytes() == tb.x.tobytes()


def test_bad_dataset_name_and_parameter_raise_config_error():
    with pytest.raises(ConfigError, match="quadruple_well"):
        get_dataset("quadruple_wel")
    with pytest.raises(ConfigError, match="n_chains"):
        get_dataset("quadruple_well", n_chain=3)
    assert "quadruple_well" in datasets()

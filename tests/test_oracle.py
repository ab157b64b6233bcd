"""The oracle estimator (exact spectra), the LAWGD plug-in, and the constant-dissipation claim
of docs/design.md ('The transport') under exact eigenpairs."""

import numpy as np
import pytest

from kswgd.core.estimators import estimate
from kswgd.registry import get_dataset, get_sampler


@pytest.mark.parametrize("name,kw", [("gaussian", {"d": 1}), ("gaussian", {"d": 3}),
                                     ("circle", {}), ("semicircle", {}), ("sphere", {})])
def test_oracle_matches_dataset_eigenvalues_and_is_normalised(name, kw):
    ds = get_dataset(name, **kw)
    spec = estimate("oracle", None, None, dataset=ds, rank=8)
    np.testing.assert_allclose(spec.eigenvalues, ds.eigenvalues(8), rtol=1e-9)
    x = ds.draw(40000, np.random.default_rng(0))
    phi = spec.phi(x)[:, :3]   # high Hermite modes have heavy-tailed squares: check the first 3
    np.testing.assert_allclose(phi.T @ phi / len(x), np.eye(3), atol=0.12)
    assert spec.info["estimator"] == "oracle" and spec.info["rank"] == 8


@pytest.mark.parametrize("name,kw", [("gaussian", {"d": 2}), ("circle", {}), ("sphere", {}),
                                     ("prinz", {})])
def test_oracle_gradients_match_finite_differences(name, kw):
    ds = get_dataset(name, **kw)
    spec = estimate("oracle", None, None, dataset=ds, rank=6)
    x = ds.draw(20, np.random.default_rng(1))
    g = spec.grad_phi(x)
    eps = 1e-6
    for a in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[a] = eps
        fd = (spec.phi(x + e) - spec.phi(x - e)) / (2 * eps)
        np.testing.assert_allclose(g[:, :, a], fd, rtol=1e-5, atol=1e-4)


def test_oracle_prinz_matches_finite_difference_generator():
    from kswgd.tools.verify import fd_generator_spectrum

    ds = get_dataset("prinz")
    spec = estimate("oracle", None, None, dataset=ds, rank=5)
    ref = fd_generator_spectrum(ds.log_density, -1.6, 1.6, 8000, 5)
    np.testing.assert_allclose(spec.eigenvalues, ref, rtol=1e-4)


def test_lawgd_transport_contracts_shifted_gaussian():
    ds = get_dataset("gaussian", d=2)
    # explicit Euler with the exact quadratic modes is unstable at h = 0.5 in 2-D (x y mode)
    s = get_sampler("lawgd", step=0.2, rank=5)
    s.setup(ds, None, np.random.default_rng(0))
    assert s.uses == ("log_density",) and s.data_kind is None
    x = 2.0 + 0.3 * np.random.default_rng(2).standard_normal((2000, 2))
    for _ in range(60):
        x = s.step(x, None)
    assert np.all(np.abs(x.mean(axis=0)) < 0.05)
    assert np.all(np.abs(x.std(axis=0) - 1) < 0.05)


def test_dissipation_rate_is_one_under_exact_eigenpairs():
    # docs/design.md: exact eigenpairs ⇒ each c_k decays at rate ≈ 1, so −log(S_{n+1}/S_n)/(2h) ≈ 1
    # while S_n is well above its finite-sample floor ≈ r/N. The rate 1 is a linear-response
    # statement (ρ = dμ/dπ ≈ 1): from N(0.2, 1) it holds within 6 %; from N(0.3, 1) the first
    # steps run at 1.14, from N(1, 0.8²) at 1.86 (measured), so the shift is kept small.
    ds = get_dataset("gaussian", d=1)
    r, n, h = 5, 20000, 0.01
    s = get_sampler("lawgd", step=h, rank=r)
    s.setup(ds, None, np.random.default_rng(0))
    x = 0.2 + np.random.default_rng(3).standard_normal((n, 1))
    rates, floor = [], 10 * r / n
    for _ in range(200):
        x = s.step(x, None)
        diag = s.diagnostics()
        if diag["residual"] > floor and np.isfinite(diag["dissipation_rate"]):
            rates.append(diag["dissipation_rate"])
    assert len(rates) > 50
    np.testing.assert_allclose(rates, 1.0, atol=0.10)

"""Kernel EDMD (the paper's estimator): spectra against analytic answers, the L²(π̂)
normalisation, and its transport against a plain-numpy (N, n, d) tensor version."""

import numpy as np
import pytest

from kswgd.core.bandwidths import median_distance
from kswgd.core.estimators import kernel_edmd
from kswgd.registry import get_dataset


def _ou_pairs(m, d, lag, seed):
    """m exact OU transitions x → y at ``lag`` from x ~ N(0, I_d) (the gaussian dataset's)."""
    return get_dataset("gaussian", d=d, lag=lag).train(m, np.random.default_rng(seed))


def _numpy_velocity(x, centres, eps, a, lam, normalize):
    """v_i = Σ_k (c_k/λ_k) ∇φ_k(x_i) from the full (N, n, d) kernel gradient tensor."""
    diff = centres[None, :, :] - x[:, None, :]                       # (N, n, d)
    k = np.exp(-np.sum(diff**2, axis=2) / (2 * eps**2))              # (N, n)
    dk = k[:, :, None] * diff / eps**2                               # ∇_x k(x, z_j)
    if normalize == "none":
        psi, dpsi = k, dk
    else:
        kz = np.exp(-np.sum((centres[:, None] - centres[None]) ** 2, axis=2) / (2 * eps**2))
        qz = kz.mean(axis=1)
        q = k.mean(axis=1)
        dq = dk.mean(axis=1)                                         # (N, d)
        psi = k / np.sqrt(q[:, None] * qz[None, :])
        dpsi = (dk / np.sqrt(q)[:, None, None]
                - 0.5 * k[:, :, None] * dq[:, None, :] / q[:, None, None] ** 1.5)
        dpsi /= np.sqrt(qz)[None, :, None]
    phi = a[0] + psi @ a[1:]                                         # (N, r)
    grad = np.einsum("njd,jk->nkd", dpsi, a[1:])
    c = phi.mean(axis=0)
    return np.einsum("nkd,k->nd", grad, c / lam), c


@pytest.mark.parametrize("normalize", ["none", "diffusion-map"])
def test_kernel_edmd_transport_equals_numpy_tensor_reference(normalize):
    data = _ou_pairs(400, 2, 0.1, 0)
    spec = kernel_edmd(data, rank=4, normalize=normalize)
    x = 0.7 + np.random.default_rng(1).standard_normal((97, 2))
    v, c = spec.transport_velocity(x)
    dic = spec.dictionary
    v_ref, c_ref = _numpy_velocity(x, dic.centres_, dic.sigma_, spec.coefficients,
                                   spec.eigenvalues, normalize)
    np.testing.assert_allclose(c, c_ref, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(v, v_ref, rtol=1e-8, atol=1e-10)


def test_kernel_edmd_recovers_ou_spectrum_and_records_its_bandwidth_rule():
    data = _ou_pairs(2000, 2, 0.1, 0)
    spec = kernel_edmd(data, rank=3)
    np.testing.assert_allclose(spec.eigenvalues[:2], [1, 1], rtol=0.1)
    info = spec.info
    assert info["estimator"] == "kernel-edmd" and info["kernel"] == "gaussian"
    assert info["bandwidth_rule"] == "1 x median distance"
    assert info["bandwidth"] == pytest.approx(median_distance(data.x))
    assert np.isfinite(info["condition_number"])


@pytest.mark.parametrize("ridge", [0.0, 1e-3])
def test_kernel_edmd_eigenfunctions_have_mean_square_one_on_the_data(ridge):
    # The two-sided C0 is the mean over both ends of the pairs: mean φ² = 1 there, ⟨φ, 1⟩ = 0,
    # whatever the ridge (the solve itself normalises against C0 + γG).
    data = _ou_pairs(600, 1, 0.1, 3)
    spec = kernel_edmd(data, rank=3, ridge=ridge)
    phi = spec.phi(np.vstack([data.x, data.y]))
    np.testing.assert_allclose((phi**2).mean(axis=0), 1.0, rtol=1e-8)
    np.testing.assert_allclose(phi.mean(axis=0), 0.0, atol=1e-4)


def test_kernel_edmd_on_the_circle_finds_k_squared_twice():
    ds = get_dataset("circle")
    data = ds.train(1500, np.random.default_rng(4), kind="trajectories")
    spec = kernel_edmd(data, rank=4, manifold=ds.manifold)
    # statistical error at 1 500 pairs: about 10 % on λ = 4 (seen 3.47 at 1 000 pairs)
    np.testing.assert_allclose(spec.eigenvalues, [1, 1, 4, 4], rtol=0.15)


def test_kswgd_kernel_edmd_on_torus_stays_on_the_manifold_and_spreads():
    from kswgd.baselines.kswgd import KSWGD

    ds = get_dataset("torus")
    data = ds.train(300, np.random.default_rng(5), kind="trajectories")
    s = KSWGD(estimator="kernel-edmd", rank=6, step=0.5)
    assert s.uses == ("trajectories", "samples") and s.data_kind == "any"
    s.setup(ds, data, np.random.default_rng(0))
    x = ds.initial(200, np.random.default_rng(6))
    spread0 = x.std(axis=0).sum()
    for _ in range(20):
        x = s.step(x, None)
    assert ds.manifold.distance(x).max() < 1e-10
    assert x.std(axis=0).sum() > 1.5 * spread0
    assert s.fit_info()["localised_modes"] >= 0

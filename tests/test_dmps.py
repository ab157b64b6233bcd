"""Diffusion maps (α = ½) and the DMPS sampler against the exact OU spectrum λ_k = k.

At n = 3 000 in 1-D the error of λ̂_k is dominated by sampling noise (isolated tail points mix
with the modes; docs/design.md), on top of the O(s²) bias of the graph generator; both shrink as n
grows with the bandwidth rule s = σ̄ n^{−1/(m+6)}.
"""

import numpy as np
import pytest

from kswgd.core.bandwidths import diffusion_bandwidth
from kswgd.core.estimators import ESTIMATORS, estimate
from kswgd.dataset import TrainingData
from kswgd.registry import get_dataset, get_sampler


def _ou_samples(n, seed, d=1):
    return TrainingData(np.random.default_rng(seed).standard_normal((n, d)))


@pytest.fixture(scope="module")
def ou_dmap():
    return estimate("diffusion-map", _ou_samples(3000, 1), None, rank=5, bandwidth=0.3)


def test_diffusion_map_is_registered():
    assert "diffusion-map" in ESTIMATORS


def test_diffusion_map_recovers_ou_spectrum_at_3000_samples(ou_dmap):
    # docs/design.md: s = 0.3 on 3 000 OU samples gives ≈ 1.04, 1.96, 2.73 (λ_3 is 9 % low).
    np.testing.assert_allclose(ou_dmap.eigenvalues[:3], [1, 2, 3], rtol=0.10)
    info = ou_dmap.info
    assert info["estimator"] == "diffusion-map" and info["bandwidth"] == 0.3
    assert info["rank"] == 5 and info["dropped_modes"] == 0 and info["fit_seconds"] > 0


def test_diffusion_map_eigenvectors_normalised_and_nystrom_exact_on_samples(ou_dmap):
    # With self-loops the Nyström extension reproduces the eigenvectors on the samples exactly;
    # without (the default) it differs there by O(1/(n s)): mean φ² 1.00..1.07 (λ_5) measured.
    exact = estimate("diffusion-map", _ou_samples(3000, 1), None, rank=5, bandwidth=0.3,
                     self_loops=True)
    np.testing.assert_allclose((exact.phi(exact.points)**2).mean(axis=0), 1.0, rtol=1e-6)
    x = ou_dmap.points
    phi = ou_dmap.phi(x)
    np.testing.assert_allclose((phi**2).mean(axis=0), 1.0, rtol=0.1)
    # φ_1 ≈ ±x (Hermite He_1) on the bulk of the data
    bulk = np.abs(x[:, 0]) < 2
    corr = np.corrcoef(phi[bulk, 0], x[bulk, 0])[0, 1]
    assert abs(corr) > 0.99


def test_nystrom_gradient_matches_finite_differences(ou_dmap):
    x = np.linspace(-2.5, 2.5, 23)[:, None]
    eps = 1e-5
    fd = (ou_dmap.phi(x + eps) - ou_dmap.phi(x - eps)) / (2 * eps)
    np.testing.assert_allclose(ou_dmap.grad_phi(x)[:, :, 0], fd, rtol=1e-5, atol=1e-6)
    w = np.arange(1.0, 6.0)
    np.testing.assert_allclose(ou_dmap.weighted_gradient(x, w)[:, 0], fd @ w, rtol=1e-5,
                               atol=1e-5)


def test_nystrom_gradient_2d_and_far_points_are_finite():
    spec = estimate("diffusion-map", _ou_samples(1500, 2, d=2), None, rank=4)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((15, 2))
    eps = 1e-5
    g = spec.grad_phi(x)
    for a in range(2):
        e = np.zeros(2)
        e[a] = eps
        fd = (spec.phi(x + e) - spec.phi(x - e)) / (2 * eps)
        np.testing.assert_allclose(g[:, :, a], fd, rtol=1e-5, atol=1e-6)
    far = np.array([[40.0, -30.0], [1e3, 0.0]])
    v, c = spec.transport_velocity(far)
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(c))


def test_transport_velocity_matches_weighted_gradient(ou_dmap):
    x = 1.5 + 0.4 * np.random.default_rng(4).standard_normal((300, 1))
    v, c = ou_dmap.transport_velocity(x)
    np.testing.assert_allclose(c, ou_dmap.phi(x).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(v, ou_dmap.weighted_gradient(x, c / ou_dmap.eigenvalues),
                               rtol=1e-10)


def test_bandwidth_rule_documented_value():
    x = np.random.default_rng(0).standard_normal((3000, 1))
    assert diffusion_bandwidth(x) == pytest.approx(3000 ** (-1 / 7), rel=0.03)


def test_partial_solvers_agree():
    data = _ou_samples(1200, 7)
    a = estimate("diffusion-map", data, None, rank=4, solver="eigsh")
    b = estimate("diffusion-map", data, None, rank=4, solver="subset")
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-8)


def test_dmps_transport_contracts_shifted_cloud_to_standard_normal():
    ds = get_dataset("gaussian", d=1)
    sampler = get_sampler("dmps", step=0.5, rank=5, bandwidth=0.3)
    sampler.setup(ds, ds.train(3000, np.random.default_rng(1), kind="samples"),
                  np.random.default_rng(0))
    assert sampler.uses == ("samples",) and sampler.data_kind == "samples"
    x = 2.0 + 0.3 * np.random.default_rng(2).standard_normal((1000, 1))
    for _ in range(40):
        x = sampler.step(x, None)
    assert abs(x.mean()) < 0.1 and abs(x.std() - 1) < 0.1
    assert sampler.diagnostics()["residual"] < 1e-2
    assert sampler.fit_info()["estimator"] == "diffusion-map"


def _rowshift_kernel_numpy(x, z, s):
    d2 = ((x[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    return np.exp(-(d2 - d2.min(axis=1, keepdims=True)) / (2 * s**2))


def test_gauss_exponent_kernels_match_numpy():
    from kswgd.core import _kernels

    rng = np.random.default_rng(7)
    for d in (1, 2, 3):
        x, z = rng.standard_normal((13, d)), rng.standard_normal((29, d))
        d2 = ((x[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
        sq = _kernels.sq_distances(x, np.ascontiguousarray(z.T), np.empty((13, 29)))
        np.testing.assert_allclose(sq, d2, rtol=1e-12)
        m = sq.min(axis=1)
        e = sq.copy()
        assert _kernels.shift_scale_rows(e, m, -0.5 / 0.7**2, -707.0) == 0
        np.testing.assert_allclose(np.exp(e), _rowshift_kernel_numpy(x, z, 0.7), rtol=1e-12)
        assert np.all(e <= 0) and np.all(e.max(axis=1) == 0)
        # the floor: entries below it are counted, floored, then zeroed after the exp
        e = sq.copy()
        n_low = int((-2.0 * d2 < -3.0).sum())
        assert _kernels.shift_scale_rows(e, np.zeros(13), -2.0, -3.0) == n_low > 0
        np.testing.assert_allclose(e, np.maximum(-2.0 * d2, -3.0), rtol=1e-12)
        k = np.exp(e)
        _kernels.zero_where_floored(e, k, -3.0)
        np.testing.assert_allclose(k, np.where(-2.0 * d2 <= -3.0, 0.0, np.exp(-2.0 * d2)),
                                   rtol=1e-12)


def test_gauss_features_blocks_threads_strides_and_underflow():
    """The wrappers in row blocks of 4, into a strided view, on 1 and 2 threads (identical bits),
    and with far pairs: exactly 0 where exp underflows, as numpy gives."""
    import numba

    from kswgd.core import _kernels

    rng = np.random.default_rng(8)
    x, z = rng.standard_normal((53, 2)), rng.standard_normal((29, 2))
    x[:5] += 40.0                                   # far from every centre: exp(−800) = 0
    d2 = ((x[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    old = (_kernels._SCRATCH_ENTRIES, _kernels._THREADED_ENTRIES, numba.get_num_threads())
    try:
        _kernels._SCRATCH_ENTRIES, _kernels._THREADED_ENTRIES = 4 * 29, 1
        outs = []
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            wide = np.zeros((53, 31))
            _kernels.gauss_features(x, z, 0.7, out=wide[:, 2:])
            assert np.all(wide[:, :2] == 0)
            outs.append((wide[:, 2:].copy(), _kernels.gauss_features_rowshift(x, z, 0.7)))
        for plain, shifted in outs:
            np.testing.assert_allclose(plain, np.exp(-d2 / (2 * 0.7**2)), rtol=1e-12, atol=0)
            assert np.all(plain[:5] == 0)
            np.testing.assert_allclose(shifted, _rowshift_kernel_numpy(x, z, 0.7), rtol=1e-12)
        assert all(np.array_equal(a, b) for a, b in zip(outs[0], outs[1], strict=True))
    finally:
        _kernels._SCRATCH_ENTRIES, _kernels._THREADED_ENTRIES = old[:2]
        numba.set_num_threads(old[2])


def _old_transport_numpy(spec, x):
    """The unfolded formulation: every first moment T_k as an (N, r + 1, d) tensor."""
    z, wts, s = spec.points, spec.weights, spec.bandwidth
    k = _rowshift_kernel_numpy(x, z, s)
    big_s = k @ wts                                              # (N, r + 1)
    big_t = np.einsum("ij,jm,ja->ima", k, wts, z)                # (N, r + 1, d)
    phi = big_s[:, 1:] / big_s[:, :1]
    grad = (big_t[:, 1:] - phi[:, :, None] * big_t[:, :1]) / (s**2 * big_s[:, :1, None])
    c = phi.mean(axis=0)
    return np.einsum("nkd,k->nd", grad, c / spec.eigenvalues), c, grad


@pytest.mark.parametrize("held", [True, False])
def test_folded_transport_matches_unfolded_numpy(held):
    import copy
    import pickle

    spec = copy.copy(estimate("diffusion-map", _ou_samples(600, 5, d=2), None, rank=6))
    spec.__dict__.pop("_cache", None)
    if not held:                                  # row blocks of 3 rows, kernel computed twice
        spec.hold_entries, spec.block_entries = 0, 3 * 600
    x = 0.3 + 1.2 * np.random.default_rng(6).standard_normal((50, 2))
    v_ref, c_ref, grad_ref = _old_transport_numpy(spec, x)
    v, c = spec.transport_velocity(x)
    np.testing.assert_allclose(c, c_ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(v, v_ref, rtol=1e-9, atol=1e-12 * np.abs(v_ref).max())
    w = np.linspace(-1.0, 2.0, spec.rank)
    np.testing.assert_allclose(spec.weighted_gradient(x, w), np.einsum("nkd,k->nd", grad_ref, w),
                               rtol=1e-9, atol=1e-12 * np.abs(v_ref).max())
    back = pickle.loads(pickle.dumps(spec))        # the kernel buffer is not pickled
    assert "_cache" not in back.__dict__
    np.testing.assert_allclose(back.transport_velocity(x)[0], v, rtol=1e-12)

"""The spectral core against analytic answers: OU/Hermite spectra, the transport's sign, and the
Numba transport against a plain-numpy version written here."""

import math

import numpy as np
import pytest

from kswgd.core.dictionaries import RBF, RFF, KernelSections, Poly
from kswgd.core.estimators import dirichlet, edmd
from kswgd.core.linalg import whitened_eigh
from kswgd.core.spectrum import Spectrum
from kswgd.dataset import TrainingData
from kswgd.registry import get_dataset


@pytest.fixture(scope="module")
def ou_pairs():
    # The statistical error of λ̂_3 is large (He_3 has heavy moments): over 6 seeds its std was
    # 0.11 at M = 100 000 and 0.05 at M = 200 000 (lag 0.5), hence this size.
    ds = get_dataset("gaussian", d=1, lag=0.5)
    return ds.train(200_000, np.random.default_rng(0))


class ExactOU1(Spectrum):
    """The exact pair λ_1 = 1, φ_1(x) = x of N(0, 1)."""

    def phi(self, x):
        return x[:, :1]

    def weighted_gradient(self, x, w):
        return np.full_like(x, w[0])


def test_transport_contracts_ou_mean_by_one_minus_h():
    # docs/design.md sign check: each particle moves by −h·mean(x); the mean contracts by (1 − h).
    spec = ExactOU1(np.array([1.0]))
    x = 2.0 + 0.3 * np.random.default_rng(1).standard_normal((500, 1))
    h = 0.2
    v, c = spec.transport_velocity(x)
    x_new = x - h * v
    np.testing.assert_allclose(x_new - x, -h * x.mean(), rtol=1e-12)
    assert x_new.mean() == pytest.approx((1 - h) * x.mean(), rel=1e-12)


def test_kswgd_sampler_step_moves_towards_target(ou_pairs):
    # The sampler wiring keeps the sign: the mean of particles started at +2 decreases.
    from kswgd.baselines.kswgd import KSWGD

    ds = get_dataset("gaussian", d=1, lag=0.5)
    s = KSWGD(step=0.5, rank=5, dictionary="poly", degree=6)
    s.setup(ds, ou_pairs, np.random.default_rng(0))
    x = 2.0 + 0.3 * np.random.default_rng(2).standard_normal((1000, 1))
    for _ in range(30):
        x = s.step(x, None)
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05


@pytest.mark.parametrize("estimator", [edmd, dirichlet])
def test_poly_recovers_hermite_spectrum_within_5pc(ou_pairs, estimator):
    spec = estimator(ou_pairs, Poly(degree=4), rank=3, rng=np.random.default_rng(0))
    np.testing.assert_allclose(spec.eigenvalues, [1, 2, 3], rtol=0.05)


@pytest.mark.parametrize("estimator", [edmd, dirichlet])
def test_rbf_recovers_hermite_spectrum_within_10pc(ou_pairs, estimator):
    dic = RBF(n_features=60, bandwidth=0.7, landmarks="kmeans++")
    spec = estimator(ou_pairs, dic, rank=3, rng=np.random.default_rng(0))
    np.testing.assert_allclose(spec.eigenvalues, [1, 2, 3], rtol=0.10)


def test_eigenfunctions_are_normalised_and_match_hermite():
    # Eigenvector mixing decays like M^{-1/2} with a large constant (high Hermite moments), so
    # this check uses a larger sample than the eigenvalue tests.
    data = TrainingData(np.random.default_rng(6).standard_normal((200_000, 1)))
    spec = dirichlet(data, Poly(degree=4), rank=3, rng=np.random.default_rng(0))
    phi = spec.phi(data.x)
    np.testing.assert_allclose((phi**2).mean(axis=0), 1.0, rtol=1e-8)
    x = np.linspace(-2, 2, 41)[:, None]
    u = x[:, 0]
    hermite = [u, (u**2 - 1) / math.sqrt(2), (u**3 - 3 * u) / math.sqrt(6)]
    for k in range(3):
        got = spec.phi(x)[:, k]
        sign = np.sign(got @ hermite[k])
        np.testing.assert_allclose(sign * got, hermite[k], atol=0.1)


def test_whitening_removes_spurious_modes_of_overlapping_bumps(ou_pairs):
    # 61 heavily overlapping bumps make C0 nearly singular; the whitened solve must not return
    # spurious near-zero eigenvalues (docs/design.md), and must drop directions below tol.
    dic = RBF(n_features=60, bandwidth=0.35)
    spec = edmd(ou_pairs, dic, rank=3, rng=np.random.default_rng(0))
    assert spec.info["kept_dim"] < dic.n_features
    assert spec.eigenvalues.min() > 0.8


def test_whitened_eigh_matches_generalised_eigh_when_well_conditioned():
    rng = np.random.default_rng(3)
    b = rng.standard_normal((6, 6))
    c0 = b @ b.T + 6 * np.eye(6)
    a = rng.standard_normal((6, 6))
    a = a + a.T
    import scipy.linalg

    ref = scipy.linalg.eigh(a, c0, eigvals_only=True)
    theta, xi, rec = whitened_eigh(a, c0)
    np.testing.assert_allclose(theta, ref, rtol=1e-10)
    np.testing.assert_allclose(xi.T @ c0 @ xi, np.eye(6), atol=1e-10)
    assert rec["kept_dim"] == 6


def _numpy_transport(x, centres, sigma, xi, lam):
    """Plain-numpy transport with the full (N, F, d) Jacobian: the reference."""
    diff = x[:, None, :] - centres[None, :, :]                       # (N, F, d)
    bumps = np.exp(-np.sum(diff**2, axis=2) / (2 * sigma**2))        # (N, F)
    psi = np.hstack([np.ones((len(x), 1)), bumps])
    jac = np.concatenate([np.zeros((len(x), 1, x.shape[1])),
                          -diff / sigma**2 * bumps[:, :, None]], axis=1)  # (N, F, d)
    phi = psi @ xi
    c = phi.mean(axis=0)
    grad_phi = np.einsum("nfd,fk->nkd", jac, xi)
    return np.einsum("nkd,k->nd", grad_phi, c / lam), c


@pytest.mark.parametrize("d", [1, 2, 3])
def test_numba_transport_equals_numpy_reference(d):
    rng = np.random.default_rng(d)
    x_train = rng.standard_normal((3000, d))
    y_train = np.exp(-0.1) * x_train + np.sqrt(1 - np.exp(-0.2)) * rng.standard_normal((3000, d))
    spec = edmd(TrainingData(x_train, y_train, lag=0.1), RBF(50, 0.8), rank=4,
                rng=np.random.default_rng(0))
    x = 0.5 + rng.standard_normal((257, d))
    v, c = spec.transport_velocity(x)
    dic = spec.dictionary
    v_ref, c_ref = _numpy_transport(x, dic.centres_, dic.sigma_, spec.coefficients,
                                    spec.eigenvalues)
    np.testing.assert_allclose(c, c_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(v, v_ref, rtol=1e-8, atol=1e-10)


DICTIONARY_CASES = {
    "poly-hermite": lambda: Poly(degree=4, basis="hermite"),
    "poly-monomial": lambda: Poly(degree=4, basis="monomial"),
    "rbf": lambda: RBF(20, 0.6),
    "rff": lambda: RFF(30),
    "kernel": lambda: KernelSections(0.7),
    "kernel-diffusion-map": lambda: KernelSections(0.7, normalize="diffusion-map"),
}


@pytest.mark.parametrize("name", DICTIONARY_CASES)
def test_dictionary_partials_and_grad_dot_match_finite_differences(name):
    rng = np.random.default_rng(4)
    dic = DICTIONARY_CASES[name]().fit(rng.standard_normal((300, 2)), rng)
    x = rng.standard_normal((40, 2))
    assert np.all(dic(x)[:, 0] == 1.0)  # the constant function is column 0
    eps = 1e-6
    for a in range(2):
        e = np.zeros(2)
        e[a] = eps
        fd = (dic(x + e) - dic(x - e)) / (2 * eps)
        np.testing.assert_allclose(dic.partial(x, a), fd, rtol=1e-5, atol=1e-6)
    beta = rng.standard_normal(dic.n_features)
    np.testing.assert_allclose(dic.grad_dot(x, beta),
                               np.einsum("nfd,f->nd", dic.jacobian(x), beta),
                               rtol=1e-10, atol=1e-12)
    # the transport c = Ξᵀ mean ψ, v = Jψᵀ Ξ (c/λ), at two sizes (the rbf reuses its buffer)
    xi = rng.standard_normal((dic.n_features, 3))
    lam = np.array([1.0, 2.0, 3.0])
    for pts in (x, x[:17], rng.standard_normal((60, 2))):
        v, c = dic.transport(pts, xi, lam)
        c_ref = dic(pts).mean(axis=0) @ xi
        np.testing.assert_allclose(c, c_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(v, np.einsum("nfd,f->nd", dic.jacobian(pts), xi @ (c_ref / lam)),
                                   rtol=1e-9, atol=1e-12)


def test_poly_has_every_monomial_up_to_the_degree():
    dic = Poly(degree=4).fit(np.random.default_rng(0).standard_normal((50, 2)))
    assert dic.n_features == math.comb(4 + 2, 2)


def test_reversal_augmented_edmd_has_no_mode_above_one():
    # With C0 = (Ψ_XᵀΨ_X + Ψ_YᵀΨ_Y)/(2M), C0 − A is a Gram matrix, so μ̂ ≤ 1 for every mode and
    # the slowest non-constant mode is not spurious; the one-sided C0 = Ψ_XᵀΨ_X/M fails here
    # (2-D OU, 4 000 pairs, degree-6 polynomials: μ̂ up to 2.4, a spurious λ̂ ≈ 0.4).
    data = get_dataset("gaussian", d=2, lag=0.1).train(4000, np.random.default_rng(0))
    good = edmd(data, Poly(degree=6), rank=3, c0_mode="both")
    bad = edmd(data, Poly(degree=6), rank=3, c0_mode="x")
    np.testing.assert_allclose(good.eigenvalues[:2], [1, 1], rtol=0.1)
    assert good.info["dropped_modes"] == 0
    assert bad.eigenvalues[0] < 0.6 or bad.info["dropped_modes"] > 0


def test_reversible_moments_equal_the_plain_second_moments():
    from kswgd.core.linalg import gram, reversible_moments, second_moments

    rng = np.random.default_rng(8)
    a = rng.standard_normal((300, 7))
    np.testing.assert_allclose(gram(a), a.T @ a, rtol=1e-12, atol=1e-12)
    data = get_dataset("gaussian", d=2, lag=0.2).train(2500, rng)
    dic = RBF(30, 0.8).fit(data.x, rng)
    c0, c1, cyy = second_moments(dic, data.x, data.y, block=1000)
    c0b, sym = reversible_moments(dic, data.x, data.y, block=700)
    np.testing.assert_allclose(c0b, 0.5 * (c0 + cyy), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sym, 0.5 * (c1 + c1.T), rtol=1e-10, atol=1e-13)

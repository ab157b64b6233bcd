"""Spectral estimators of the Langevin generator (docs/design.md, 'The estimators').

Each estimator returns a :class:`~kswgd.core.spectrum.Spectrum` with r eigenpairs (constant mode
skipped), eigenfunctions normalised in L²(π̂) (mean over the data of φ_k² = 1), and a record of
the fit in ``spectrum.info``. All explicit-dictionary estimators end in the symmetric
generalised eigenproblem A ξ = θ C0 ξ, solved in the whitened basis of C0 (``whitened_eigh``).

    edmd       pairs (x_m, y_m) at lag τ: C0 = Ψ_Xᵀ Ψ_X / M, C1 = Ψ_Xᵀ Ψ_Y / M,
               A = (C1 + C1ᵀ)/2 → μ̂, λ̂ = −log(μ̂)/τ (or (1 − μ̂)/τ).
    dirichlet  static samples: A = D = mean_m Jψ(x_m) Jψ(x_m)ᵀ (tangential on a manifold) → λ̂.

Further estimators register themselves in ``ESTIMATORS`` with the same signature.
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg

from kswgd.core.bandwidths import diffusion_bandwidth, kde_bandwidth, median_distance
from kswgd.core.data import Manifold, TrainingData, as_points
from kswgd.core.dictionaries import Dictionary
from kswgd.core.kde import kde_score
from kswgd.core.linalg import (
    MAX_LOCALISATION,
    dictionary_phi,
    dirichlet_matrix,
    localisation,
    normalise_on_data,
    reversible_moments,
    second_moments,
    select_modes,
    top_eigenpairs,
    whitened_eigh,
    whitener,
)
from kswgd.core.spectrum import DictionarySpectrum, NystromSpectrum, Spectrum
from kswgd.params import ConfigError, choice_error


def _fit_features(dictionary: Dictionary, x: np.ndarray, rng) -> None:
    dictionary.fit(x, rng if rng is not None else np.random.default_rng(0))


def edmd(
    train: TrainingData,
    dictionary: Dictionary,
    *,
    rank: int = 10,
    rng: np.random.Generator | None = None,
    tol: float = 1e-10,
    ridge: float = 0.0,
    reversible: bool = True,
    c0_mode: str = "both",
    conversion: str = "log",
    block: int = 20000,
    max_localisation: float = MAX_LOCALISATION,
    max_eigenvalue: float = 0.0,
) -> DictionarySpectrum:
    """EDMD on trajectory pairs at lag τ (docs/design.md, estimator ``edmd``).

    Reversible (default): eigenpairs of A = (C1 + C1ᵀ)/2 relative to C0; μ̂ ∈ (0, 1) maps to
    λ̂ = −log(μ̂)/τ (``conversion='log'``) or (1 − μ̂)/τ (``'linear'``); others are dropped and
    counted. ``c0_mode='both'`` (default) uses both ends of every pair,
    C0 = (Ψ_XᵀΨ_X + Ψ_YᵀΨ_Y)/(2M): the reversal-augmented estimator, for which
    C0 − A = (Ψ_X − Ψ_Y)ᵀ(Ψ_X − Ψ_Y)/(2M) ⪰ 0, so μ̂ ≤ 1 always and 1 − μ̂ is an empirical
    Dirichlet form. ``c0_mode='x'`` is the one-sided C0 = Ψ_XᵀΨ_X/M, which lets finite-sample
    noise push μ̂ above 1 and creates spurious slow modes (seen: μ̂ = 2.4 with a degree-6
    polynomial dictionary on 2-D OU, 4 000 pairs). Non-reversible: eig of the whitened C1, real
    parts, with a warning (C0 from x only); a complex-conjugate pair counts once
    (``info['complex_pairs']``). Eigenfunctions are normalised to mean φ² = 1 on the data
    whatever the ridge; modes are chosen by :func:`select_modes` (localised modes dropped,
    ``max_localisation``; rank by threshold with ``max_eigenvalue``).
    """
    if not train.has_pairs:
        raise ConfigError("edmd needs trajectory pairs; use 'dirichlet' or 'kde-pairs' for samples")
    t0 = time.perf_counter()
    x, y = as_points(train.x), as_points(train.y)
    _fit_features(dictionary, x, rng)
    lam, xi, rec = _edmd_solve(dictionary, x, y, float(train.lag), rank=rank, tol=tol,
                               ridge=ridge, reversible=reversible, c0_mode=c0_mode,
                               conversion=conversion, block=block,
                               max_localisation=max_localisation, max_eigenvalue=max_eigenvalue)
    info = {"estimator": "edmd", **rec, "rank_requested": rank, "ridge": ridge,
            **dictionary.info(), "fit_seconds": time.perf_counter() - t0}
    return DictionarySpectrum(lam, info, dictionary=dictionary, coefficients=xi)


def _edmd_solve(dictionary: Dictionary, x: np.ndarray, y: np.ndarray, tau: float, *,
                rank: int, tol: float, ridge, reversible: bool = True, c0_mode: str = "both",
                conversion: str = "log", block: int = 20000,
                max_localisation: float = MAX_LOCALISATION, max_eigenvalue: float = 0.0):
    """The EDMD eigenproblem on a fitted dictionary (see :func:`edmd`); ``ridge`` a scalar γ
    (γI) or a matrix. Returns λ̂ (r,), Ξ (F, r) normalised to mean φ² = 1 on the data, record."""
    if conversion not in ("log", "linear"):
        raise choice_error("eigenvalue conversion", conversion, ["log", "linear"])
    if c0_mode not in ("both", "x"):
        raise choice_error("EDMD c0_mode", c0_mode, ["both", "x"])
    complex_pairs = 0
    if reversible and c0_mode == "both":
        c0, sym = reversible_moments(dictionary, x, y, block)
    else:
        c0, c1, _ = second_moments(dictionary, x, y, block)
        sym = 0.5 * (c1 + c1.T)
    if reversible:
        mu, xi, rec = whitened_eigh(sym, c0, tol, ridge)
    else:
        warnings.warn("non-reversible EDMD: using real parts of a non-symmetric eigenproblem",
                      stacklevel=3)
        wmat, rec = whitener(c0, tol, ridge)
        vals, vecs = scipy.linalg.eig(wmat.T @ c1 @ wmat)
        # a complex-conjugate pair is one oscillating mode: keep the member with Im μ̂ > 0 (its
        # real part), so that the pair is neither counted nor weighted twice in the transport
        scale = np.finfo(float).eps * 1e3 * max(1.0, float(np.abs(vals).max()))
        second = vals.imag < -scale
        complex_pairs = int(second.sum())
        mu, xi = vals.real[~second], wmat @ vecs.real[:, ~second]
    xi = normalise_on_data(xi, c0)
    invalid = (mu <= 0) | (mu >= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = -np.log(mu) / tau if conversion == "log" else (1 - mu) / tau
    # the constant mode has μ̂ ≈ 1 (λ̂ ≈ 0), possibly just above 1: identify it before dropping
    lam = np.where(mu > 0, lam, np.inf)
    lam, xi, dropped, localised = select_modes(
        lam, xi, rank, invalid, phi_on_data=dictionary_phi(dictionary, x, xi, block),
        max_localisation=max_localisation, max_eigenvalue=max_eigenvalue)
    rec = {"reversible": reversible, "c0_mode": c0_mode if reversible else "x", "lag": tau,
           "conversion": conversion, "n_train": len(x), "rank": len(lam),
           "dropped_modes": dropped, "localised_modes": localised,
           "max_localisation": max_localisation, "max_eigenvalue": max_eigenvalue,
           "complex_pairs": complex_pairs, "tol": tol, **rec}
    return lam, xi, rec


def dirichlet(
    train: TrainingData,
    dictionary: Dictionary,
    *,
    rank: int = 10,
    rng: np.random.Generator | None = None,
    tol: float = 1e-10,
    ridge: float = 0.0,
    manifold: Manifold | None = None,
    max_localisation: float = MAX_LOCALISATION,
    max_eigenvalue: float = 0.0,
) -> DictionarySpectrum:
    """Generator Galerkin from static samples (docs/design.md, estimator ``dirichlet``).

    Solves D ξ = λ C0 ξ with D_ij = mean_m ∇ψ_i·∇ψ_j and C0 = mean_m ψ ψᵀ: the Dirichlet form
    ⟨f, L g⟩_π = E_π[∇f·∇g] restricted to span ψ. Needs neither trajectories nor the score.
    """
    t0 = time.perf_counter()
    x = as_points(train.x)
    _fit_features(dictionary, x, rng)
    c0, _, _ = second_moments(dictionary, x)
    dmat = dirichlet_matrix(dictionary, x, manifold)
    lam, xi, rec = whitened_eigh(dmat, c0, tol, ridge)
    # with a ridge the solve gives ξᵀ(C0 + γI)ξ = 1 and θ = ξᵀDξ; renormalise in L²(π̂) and
    # take the Rayleigh quotient λ̂ = ξᵀDξ / ξᵀC0ξ (both unchanged at γ = 0)
    xi = normalise_on_data(xi, c0)
    lam = np.einsum("fk,fg,gk->k", xi, dmat, xi)
    invalid = lam <= 0
    lam, xi, dropped, localised = select_modes(
        lam, xi, rank, invalid, phi_on_data=dictionary_phi(dictionary, x, xi),
        max_localisation=max_localisation, max_eigenvalue=max_eigenvalue)
    info = {"estimator": "dirichlet", "n_train": len(x), "rank": len(lam),
            "rank_requested": rank, "dropped_modes": dropped, "localised_modes": localised,
            "max_localisation": max_localisation, "max_eigenvalue": max_eigenvalue,
            "tol": tol, "ridge": ridge,
            "manifold": manifold.name if manifold is not None else None,
            **dictionary.info(), **rec, "fit_seconds": time.perf_counter() - t0}
    return DictionarySpectrum(lam, info, dictionary=dictionary, coefficients=xi)


def sphere_exp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Exponential map of the unit sphere: exp_x(v) = cos(‖v‖) x + sin(‖v‖) v/‖v‖ (v ⟂ x).

    Moves along the great circle through x by arc length ‖v‖, so a tangent Gaussian step of
    covariance 2τ P_x gives an angle increment of variance exactly 2τ on the circle; the
    retraction (x + v)/‖x + v‖ gives atan‖v‖ instead, whose variance 2τ − 8τ² + O(τ³) biases
    kde-pairs' λ̂ low by ≈ 4τ.
    """
    nv = np.linalg.norm(v, axis=1, keepdims=True)
    safe = np.where(nv > 0, nv, 1.0)
    return np.cos(nv) * x + np.sin(nv) * v / safe


def _is_unit_sphere(manifold: Manifold | None, x: np.ndarray) -> bool:
    if manifold is None or manifold.name not in ("circle", "sphere"):
        return False
    return bool(np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-8))


def kde_langevin_pairs(
    train: TrainingData,
    rng: np.random.Generator,
    *,
    lag: float = 0.05,
    kde_bandwidth_value: float = 0.0,
    kde_rule: str = "score",
    repeats: int = 1,
    leave_one_out: bool = True,
    step: str = "auto",
    manifold: Manifold | None = None,
) -> tuple[TrainingData, dict]:
    """Synthetic one-step Langevin pairs y = x + τ ŝ(x) + √(2τ) ξ from static samples (the data
    step of :func:`kde_pairs`, which documents the parameters), and the record of how they were
    made (KDE bandwidth and rule, step, repeats, sample count, manifold)."""
    from kswgd.core.data import move

    x = as_points(train.x)
    if step not in ("auto", "retract", "geodesic"):
        raise choice_error("kde-pairs step", step, ["auto", "retract", "geodesic"])
    unit_sphere = _is_unit_sphere(manifold, x)
    if step == "geodesic" and not unit_sphere:
        raise ConfigError("the geodesic kde-pairs step needs samples on the unit circle/sphere")
    if step == "auto":
        step = "geodesic" if unit_sphere else "retract"
    if manifold is None:
        step = "flat"
    b = kde_bandwidth_value if kde_bandwidth_value > 0 else kde_bandwidth(x, kde_rule)
    score = kde_score(x, x, b, leave_one_out=leave_one_out)
    xs = np.repeat(x, repeats, axis=0) if repeats > 1 else x
    sc = np.repeat(score, repeats, axis=0) if repeats > 1 else score
    dx = lag * sc + np.sqrt(2 * lag) * rng.standard_normal(xs.shape)
    if step == "geodesic":
        y = sphere_exp(xs, manifold.tangent(xs, dx))
    else:
        y = move(xs, dx, manifold)
    rec = {"kde_bandwidth": b, "kde_bandwidth_rule": "given" if kde_bandwidth_value > 0
           else kde_rule, "leave_one_out": leave_one_out, "step": step, "repeats": repeats,
           "n_train": len(x), "manifold": manifold.name if manifold is not None else None}
    return TrainingData(xs, y, lag=lag), rec


def kde_pairs(
    train: TrainingData,
    dictionary: Dictionary,
    *,
    rank: int = 10,
    rng: np.random.Generator | None = None,
    lag: float = 0.05,
    kde_bandwidth_value: float = 0.0,
    kde_rule: str = "score",
    repeats: int = 1,
    leave_one_out: bool = True,
    step: str = "auto",
    manifold: Manifold | None = None,
    tol: float = 1e-10,
    ridge: float = 0.0,
    conversion: str = "log",
    max_localisation: float = MAX_LOCALISATION,
    max_eigenvalue: float = 0.0,
) -> DictionarySpectrum:
    """Synthetic Langevin pairs from static samples, then ``edmd`` (docs/design.md, ``kde-pairs``).

        y = x + τ ŝ(x) + √(2τ) ξ,   ξ ~ N(0, I) from ``rng`` (seeded),

    ŝ the Gaussian-KDE score of the samples with bandwidth ``kde_bandwidth_value`` (0: the rule
    ``kde_rule`` of :func:`kde_bandwidth`, by default the gradient-optimal n^{−1/(d+6)}),
    leave-one-out at the sample points by default (see
    :func:`kde_score`), each sample used ``repeats`` times. On a manifold the increment is
    projected on the tangent space, then ``step='retract'`` maps x + P_x dx back to M, and
    ``'geodesic'`` follows the great circle (:func:`sphere_exp`, unit spheres only); ``'auto'``
    takes the geodesic step on the unit circle/sphere and the retraction elsewhere.

    Error budget (tests/test_verify.py): an O(τ) bias of the one-step Euler pair (and of the
    retraction, ≈ 4τ relative on the circle, removed by the geodesic step), plus the KDE score's
    error, which does not average out over ``repeats`` (each sample keeps its score).
    ``tol``, ``ridge``, ``conversion``, ``max_localisation`` and ``max_eigenvalue`` go to
    :func:`edmd`.
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(0) if rng is None else rng
    pairs, rec = kde_langevin_pairs(train, rng, lag=lag, kde_bandwidth_value=kde_bandwidth_value,
                                    kde_rule=kde_rule, repeats=repeats,
                                    leave_one_out=leave_one_out, step=step, manifold=manifold)
    spec = edmd(pairs, dictionary, rank=rank, rng=rng, tol=tol, ridge=ridge,
                conversion=conversion, max_localisation=max_localisation,
                max_eigenvalue=max_eigenvalue)
    spec.info.update(estimator="kde-pairs", **rec, fit_seconds=time.perf_counter() - t0)
    return spec


def circle_dmap_limit(k: np.ndarray | int, s: float) -> np.ndarray:
    """Large-n limit of the α = ½ diffusion-map λ̂_k on the uniform unit circle at bandwidth s.

    On the circle ‖x − y‖² = 2 − 2cos(θ − θ'), so P is a convolution with
    exp((cos u − 1)/s²); its eigenvalues are μ_k = I_k(1/s²)/I_0(1/s²) and
    λ̂_k = 2(1 − μ_k)/s² = k²(1 − k²s²/4 + O(s⁴)) (to compare with the exact k²).
    """
    import scipy.special

    z = 1.0 / s**2
    mu = scipy.special.ive(np.asarray(k), z) / scipy.special.ive(0, z)
    return 2.0 * (1.0 - mu) / s**2


def diffusion_map(
    train: TrainingData,
    dictionary: Dictionary | None = None,
    *,
    rank: int = 10,
    rng: np.random.Generator | None = None,
    bandwidth: float = 0.0,
    solver: str = "auto",
    extra_modes: int = 5,
    max_localisation: float = MAX_LOCALISATION,
    max_eigenvalue: float = 0.0,
    self_loops: bool = False,
    manifold: Manifold | None = None,
) -> NystromSpectrum:
    """Diffusion maps with α = ½ (DMPS, Li & Marzouk; docs/design.md, ``diffusion-map``).

    K_ij = exp(−‖x_i − x_j‖²/(2s²)) for i ≠ j, K_ii = 0 (``self_loops=False``, default) or 1,
    q = K 1, K̃ = Q^{−1/2} K Q^{−1/2}, d = K̃ 1,
    P = D^{−1} K̃ (the α = ½ Markov matrix: its limit (P − I)·2/s² is the Langevin generator of
    π). Its symmetric conjugate D^{−1/2} K̃ D^{−1/2} = U diag(μ) Uᵀ gives the right eigenvectors
    φ = D^{−1/2} u, rescaled so that mean_j φ(x_j)² = 1, and λ̂ = 2(1 − μ̂)/s². Off-sample:
    the Nyström extension of :class:`~kswgd.core.spectrum.NystromSpectrum`. ``bandwidth`` = 0 uses
    :func:`diffusion_bandwidth` (intrinsic dimension on a manifold). The dictionary is unused.
    Modes with μ̂ ≤ 0 or μ̂ ≥ 1 (besides the constant) are dropped and counted.

    Tail points: a sample far from the others (a Gaussian tail point at n of a few thousand) is
    almost disconnected from the graph. With its self-loop it keeps P_ii ≈ 1 (K̃_ii = 1/q_i is
    then the largest entry of its row) and carries its own eigenvector with μ̂ ≈ 1, a spurious
    λ̂ ≈ 0 (docs/design.md; seen on 2-D OU at n = 4 000: λ̂ = 0.07, 0.16, 0.19 before the genuine
    1, 1). Without self-loops the walk must leave the point, which removes most of them (same
    data: 1.03, 1.06, 1.93, 2.03, 2.17); the change to P is O(1/(n s^m)), and on the circle and
    S² it moves λ̂ by < 1.5 %. The Nyström extension below keeps the self term, so on a sample
    it differs from the eigenvector by that same O(1/(n s^m)) (exact with ``self_loops=True``).
    What remains is measured by the localisation
    ℓ_k = (sum of the 5 largest φ_k(x_j)²) / Σ_j φ_k(x_j)², and modes with ℓ_k >
    ``max_localisation`` (default 0.7; ≥ 1 disables the filter) are dropped and counted in
    ``info['localised_modes']``. Genuine modes are spread over the data: measured ℓ ≈ 0.005 on
    the circle and S², ≤ 0.41 for λ_1..λ_8 on 1-D and 2-D OU over three seeds (the Hermite
    modes are largest at the extreme samples), while the spurious ones sit at ℓ ≥ 0.78. A mode
    that mixes a tail point with a genuine one (ℓ between) is kept: the filter only removes what
    is clearly not a mode. The filter is the one rule of every estimator (:func:`select_modes`).
    A sample with no neighbour within reach of the kernel (its row of K is 0) has no edge: it
    is left out of the graph and counted in ``info['isolated_samples']``.

    Bias: the α = ½ graph generator is O(s²) off (with the default rule s ∝ n^{−1/(m+6)}). On
    the unit circle it is exact: P is a convolution, μ_k = I_k(1/s²)/I_0(1/s²) (modified
    Bessel), so λ̂_k → 2(1 − I_k(1/s²)/I_0(1/s²))/s² = k²(1 − k²s²/4 + O(s⁴)) as n → ∞
    (:func:`circle_dmap_limit`); at n = 3 000, s = 0.225 that is 7.95 for λ = 9 (−12 %).
    """
    t0 = time.perf_counter()
    from kswgd.core import _kernels

    x = as_points(train.x)
    n = len(x)
    s = float(bandwidth) if bandwidth > 0 else diffusion_bandwidth(
        x, manifold.intrinsic_dim if manifold is not None else None)
    kmat = _kernels.gauss_features(x, x, s)              # (n, n), in place from here on
    if not self_loops:
        np.fill_diagonal(kmat, 0.0)
    q = kmat.sum(axis=1)
    isolated = q <= np.finfo(float).tiny / np.finfo(float).eps   # no neighbour within reach
    if isolated.any():                # such a sample has no edge: leave it out of the graph
        x = x[~isolated]
        kmat = np.ascontiguousarray(kmat[np.ix_(~isolated, ~isolated)])
        n = len(x)
        q = kmat.sum(axis=1)
        if n < 3 or np.any(q <= 0):
            raise ConfigError(f"diffusion map: the bandwidth {s:.3g} leaves the samples "
                              "without neighbours; use a larger bandwidth")
    w = 1.0 / np.sqrt(q)                                 # q^{-1/2}
    kmat *= w[:, None]
    kmat *= w[None, :]                                   # K̃
    dvec = kmat.sum(axis=1)
    dh = 1.0 / np.sqrt(dvec)
    kmat *= dh[:, None]
    kmat *= dh[None, :]                                  # symmetric conjugate of P
    k = min(rank + 1 + extra_modes, n - 1)
    mu, u, used = top_eigenpairs(kmat, k, rng, solver)
    phi = u * dh[:, None]
    phi /= np.sqrt(np.mean(phi**2, axis=0))
    loc = localisation(phi)
    localised = loc > max_localisation
    localised[np.argmax(mu)] = False                     # the constant mode is never removed
    while (k < n - 1 and np.count_nonzero(~localised & (mu > 0) & (mu < 1)) < rank + 1
           and localised.any()):
        k = min(k + int(localised.sum()) + extra_modes, n - 1)  # replace what was filtered
        mu, u, used = top_eigenpairs(kmat, k, rng, solver)
        phi = u * dh[:, None]
        phi /= np.sqrt(np.mean(phi**2, axis=0))
        loc = localisation(phi)
        localised = loc > max_localisation
        localised[np.argmax(mu)] = False
    del kmat
    lam = 2.0 * (1.0 - mu) / s**2
    invalid = (mu <= 0) | (mu >= 1)
    lam, phi, dropped, n_localised = select_modes(
        lam, phi, rank, invalid, phi_on_data=lambda cols: phi[:, cols],
        max_localisation=max_localisation, max_eigenvalue=max_eigenvalue)
    mu_kept = 1.0 - 0.5 * s**2 * lam
    weights = np.hstack([w[:, None], w[:, None] * phi / mu_kept])
    info = {"estimator": "diffusion-map", "alpha": 0.5, "bandwidth": s,
            "bandwidth_rule": "given" if bandwidth > 0 else "sigma*n^(-1/(m+6))",
            "solver": used, "n_train": n, "F": n, "rank": len(lam), "rank_requested": rank,
            "kept_dim": n, "condition_number": float(dvec.max() / dvec.min()),
            "dropped_modes": dropped, "localised_modes": n_localised,
            "max_localisation": max_localisation, "max_eigenvalue": max_eigenvalue,
            "isolated_samples": int(isolated.sum()), "self_loops": self_loops,
            "dictionary": None,
            "manifold": manifold.name if manifold is not None else None,
            "fit_seconds": time.perf_counter() - t0}
    return NystromSpectrum(lam, info, points=x.copy(), weights=weights, bandwidth=s)


def kernel_edmd(
    train: TrainingData,
    dictionary: Dictionary | None = None,
    *,
    rank: int = 10,
    rng: np.random.Generator | None = None,
    kernel: str = "gaussian",
    bandwidth: float = 0.0,
    bandwidth_factor: float = 1.0,
    ridge: float = 3e-5,
    normalize: str = "none",
    tol: float = 1e-10,
    conversion: str = "log",
    max_localisation: float = MAX_LOCALISATION,
    max_eigenvalue: float = 0.0,
    manifold: Manifold | None = None,
) -> DictionarySpectrum:
    """Kernel EDMD in sample space (the KSWGD paper's estimator; estimator ``kernel-edmd``).

    The dictionary is the constant plus the kernel sections at the n training points,
    ψ_j = k(·, x_j) with k(x, z) = exp(−‖x − z‖²/(2ε²)) (``kernel='gaussian'``), so that

        Ψ_X = [1, K_XX],   Ψ_Y = [1, K_YX],   K_XX = (k(x_m, x_j)),   K_YX = (k(y_m, x_j)),

    and the reversible EDMD of :func:`edmd` on the pairs: C0 = (Ψ_XᵀΨ_X + Ψ_YᵀΨ_Y)/(2n),
    A = (Ψ_XᵀΨ_Y + Ψ_YᵀΨ_X)/(2n), A a = μ (C0 + γ G) a with the RKHS ridge γ ‖f‖²_H = γ aᵀ G a,
    G = diag(0, K_XX) (the constant is not penalised), solved in the whitened basis; λ̂ =
    −log(μ̂)/τ; eigenfunctions normalised to mean φ² = 1 on the data and extended off-sample by
    the Nyström formula φ_k(x) = a_0k + Σ_j k(x, x_j) a_jk, with the analytic gradient
    ∇φ_k(x) = Σ_j a_jk k(x, x_j)(x_j − x)/ε². A transport step is one N × n kernel matrix and two
    mat-vecs (O(N n d), the rbf transport with centres = the training points).

    Bandwidth: ``bandwidth`` > 0 is ε itself; 0 selects the median rule ε = ``bandwidth_factor``
    × median_{i≠j} ‖x_i − x_j‖ (recorded with the factor). The defaults (factor 1, γ = 3e-5)
    were chosen on the paper's torus (800 pairs): narrower kernels or smaller ridges overfit the
    800 pairs and bias λ̂ low (factor 0.25: −40 %), larger ridges bias it high (γ = 1e-3:
    +50 %); at the defaults λ_1..λ_4 were within 7–16 % over three seeds. The ridge shifts each
    λ̂_k up by about γ‖φ_k‖²_H/τ, a fixed amount as n grows (torus pair: ‖φ‖²_H ≈ 12, +2.8 %;
    docs/design.md, 'Torus kernel-EDMD bias').
    ``normalize='diffusion-map'`` is the paper's variant: the α = ½ density-normalised kernel
    k(x, z)/√(q(x) q(z)), q the kernel mean over the data (see
    :class:`~kswgd.core.dictionaries.KernelSections`). On a manifold the kernel acts in the ambient
    coordinates and the sampler projects the velocity on the tangent
    space and retracts. Cost of the fit O(n³) (n × n Gram products and eigensolves): meant for
    n of a few thousand (800 on the paper's torus).
    """
    from kswgd.core.dictionaries import KernelSections

    if kernel != "gaussian":
        raise choice_error("kernel-edmd kernel", kernel, ["gaussian"])
    if not train.has_pairs:
        raise ConfigError("kernel-edmd needs trajectory pairs; use 'kde-pairs' or 'dirichlet' "
                          "for samples")
    t0 = time.perf_counter()
    x, y = as_points(train.x), as_points(train.y)
    med = median_distance(x)
    eps = float(bandwidth) if bandwidth > 0 else bandwidth_factor * med
    dic = KernelSections(eps, normalize=normalize).fit(x)
    n = len(x)
    gmat = np.zeros((n + 1, n + 1))
    gmat[1:, 1:] = dic(x)[:, 1:] if normalize != "none" else _gram_kernel(x, eps)
    lam, xi, rec = _edmd_solve(dic, x, y, float(train.lag), rank=rank, tol=tol,
                               ridge=ridge * gmat, conversion=conversion,
                               max_localisation=max_localisation, max_eigenvalue=max_eigenvalue)
    info = {"estimator": "kernel-edmd", **rec, "rank_requested": rank, "ridge": ridge,
            "ridge_norm": "rkhs", **dic.info(), "bandwidth_rule":
            "given" if bandwidth > 0 else f"{bandwidth_factor:g} x median distance",
            "median_distance": med,
            "manifold": manifold.name if manifold is not None else None,
            "fit_seconds": time.perf_counter() - t0}
    return DictionarySpectrum(lam, info, dictionary=dic, coefficients=xi)


def _gram_kernel(x: np.ndarray, eps: float) -> np.ndarray:
    from kswgd.core import _kernels

    return _kernels.gauss_features(x, x, eps)


def oracle(
    train: TrainingData | None = None,
    dictionary: Dictionary | None = None,
    *,
    rank: int = 10,
    dataset=None,
    degree: int = 8,
    n_basis: int = 0,
    grid: int = 0,
    tol: float = 1e-10,
) -> Spectrum:
    """The exact spectrum the dataset declares (LAWGD; docs/design.md, estimator ``oracle``).

    Reads ``dataset.exact_spectrum(rank, degree=, n_basis=, grid=, tol=)``: closed-form modes
    where known (Hermite, Fourier), else a quadrature Galerkin (the sphere's polynomials of
    degree ≤ ``degree``; a known log-density in d ≤ 2: ``n_basis`` cosines per axis on a
    ``grid``-point midpoint rule, see :mod:`kswgd.core.exact`). Training data are not used.
    """
    if dataset is None:
        raise ConfigError("the oracle estimator needs the dataset (pass dataset=...)")
    t0 = time.perf_counter()
    spec = dataset.exact_spectrum(rank, degree=degree, n_basis=n_basis, grid=grid, tol=tol)
    if spec is None:
        raise ConfigError(f"no oracle spectrum for dataset {dataset.name!r} (it declares no "
                          "exact spectrum: needs a known one, or a log-density in d <= 2 "
                          "without a manifold)")
    spec.info = {"estimator": "oracle", "system": dataset.name, **spec.info}
    spec.info.setdefault("dropped_modes", 0)
    spec.info.update(rank=spec.rank, rank_requested=rank, fit_seconds=time.perf_counter() - t0)
    return spec


ESTIMATORS: dict[str, Callable] = {"edmd": edmd, "dirichlet": dirichlet,
                                  "diffusion-map": diffusion_map,
                                  "oracle": oracle,
                                  "kde-pairs": kde_pairs,
                                  "kernel-edmd": kernel_edmd}


def estimate(name: str, train: TrainingData | None, dictionary: Dictionary | None, **params):
    """Fit the estimator ``name`` (a key of ESTIMATORS) to the training data.

    A keyword the estimator does not take is a one-line ConfigError naming the ones it does."""
    if name not in ESTIMATORS:
        raise choice_error("estimator", name, ESTIMATORS)
    fn = ESTIMATORS[name]
    sig = inspect.signature(fn)
    try:
        sig.bind(train, dictionary, **params)
    except TypeError:
        unknown = sorted(set(params) - set(sig.parameters))
        if not unknown:
            raise
        known = list(sig.parameters)[2:]
        raise ConfigError(f"estimator {name!r} takes no parameter {', '.join(map(repr, unknown))}"
                          f"; it takes: {', '.join(known)}") from None
    return fn(train, dictionary, **params)

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

import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.sparse.linalg

from kswgd.core.data import Manifold, TrainingData
from kswgd.core.dictionaries import Dictionary, _as_points
from kswgd.core.spectrum import DictionarySpectrum, NystromSpectrum
from kswgd.params import ConfigError, choice_error


def whitened_eigh(a: np.ndarray, c0: np.ndarray, tol: float = 1e-10, ridge: float = 0.0):
    """Solve A ξ = θ (C0 + γI) ξ in the whitened basis of C0 (docs/design.md, 'Whitening').

    C0 + γI = U diag(w) Uᵀ; keep w > tol · max(w); W = U_keep diag(w_keep^{−1/2});
    θ, v = eigh(Wᵀ A W); ξ = W v (so that ξᵀ C0 ξ = I). Returns θ (ascending), Ξ (F, k) and a
    dict with the kept dimension and the condition number of C0 + γI.
    """
    wmat, rec = whitener(c0, tol, ridge)
    theta, v = scipy.linalg.eigh(wmat.T @ a @ wmat)
    return theta, wmat @ v, rec


def whitener(c0: np.ndarray, tol: float = 1e-10, ridge: float = 0.0):
    """W = U_keep diag(w_keep^{−1/2}) for C0 + γI = U diag(w) Uᵀ, keeping w > tol · max(w).

    ``ridge`` is a scalar γ (γI) or a matrix added to C0 as is. The recorded condition number
    is max(w)/min(w) over the kept directions (what the solve works with; ≤ 1/tol)."""
    w, u = scipy.linalg.eigh(c0 + (ridge * np.eye(len(c0)) if np.isscalar(ridge) else ridge))
    keep = w > tol * w.max()
    # over the kept directions only: max/min of the kept w, at most 1/tol (finite)
    cond = float(w[keep].max() / w[keep].min())
    return u[:, keep] / np.sqrt(w[keep]), {"kept_dim": int(keep.sum()), "condition_number": cond}


def localisation(phi: np.ndarray, top: int = 5) -> np.ndarray:
    """ℓ_k = Σ of the ``top`` largest φ_k(x_j)² over Σ_j φ_k(x_j)², per column of phi (n, k).

    ≈ top/n for a mode spread evenly over the samples, 1 for a mode carried by ≤ ``top`` points.
    """
    p2 = phi**2
    big = np.partition(p2, len(p2) - top, axis=0)[-top:] if len(p2) > top else p2
    return big.sum(axis=0) / p2.sum(axis=0)


MAX_LOCALISATION = 0.7


def _select(lam: np.ndarray, xi: np.ndarray, rank: int, invalid: np.ndarray, *,
            phi_on_data: Callable[[np.ndarray], np.ndarray] | None = None,
            max_localisation: float = MAX_LOCALISATION, max_eigenvalue: float = 0.0):
    """The one mode-selection rule of every estimator.

    Drops the constant mode (λ̂ closest to 0) and invalid modes (counted in ``dropped``); walks
    the others by increasing λ̂ and drops localised ones, ℓ_k > ``max_localisation`` with ℓ of
    :func:`localisation` evaluated on the training data by ``phi_on_data(columns)`` (counted
    in ``localised``; ``max_localisation`` ≥ 1 disables the filter); keeps the first ``rank``.
    ``max_eigenvalue`` > 0 ranks by threshold instead: every mode with λ̂ ≤ ``max_eigenvalue``,
    at most ``rank`` of them when ``rank`` > 0 (for a Koopman matrix at lag τ, μ̂ ≥ μ_min is
    λ̂ ≤ −log(μ_min)/τ). Returns λ̂ (r,), the kept columns of ``xi``, dropped, localised.
    """
    const = int(np.argmin(np.abs(np.where(np.isfinite(lam), lam, np.inf))))
    ok = ~invalid
    ok[const] = False
    dropped = int(invalid.sum() - invalid[const])
    order = np.flatnonzero(ok)[np.argsort(lam[ok], kind="stable")]
    if max_eigenvalue > 0:
        order = order[lam[order] <= max_eigenvalue]
    cap = rank if rank > 0 else len(order)
    keep: list[int] = []
    n_localised = 0
    pos = 0
    filtering = phi_on_data is not None and max_localisation < 1
    while len(keep) < cap and pos < len(order):
        batch = order[pos : pos + cap - len(keep)]
        pos += len(batch)
        if filtering:
            bad = localisation(phi_on_data(batch)) > max_localisation
            n_localised += int(bad.sum())
            batch = batch[~bad]
        keep.extend(int(j) for j in batch)
    if not keep and n_localised:
        raise ConfigError(f"all {n_localised} valid modes are localised on a few samples "
                          f"(localisation > {max_localisation}); use more training data, a "
                          "wider bandwidth, or max_localisation=1 to keep them")
    if not keep:
        raise ConfigError("the estimator found no non-constant mode with a valid eigenvalue")
    idx = np.array(keep)
    return lam[idx], xi[:, idx], dropped, n_localised


def _dictionary_phi(dictionary: Dictionary, x: np.ndarray, xi: np.ndarray,
                    block: int = 20000) -> Callable[[np.ndarray], np.ndarray]:
    """phi_on_data for :func:`_select`: columns ↦ Ψ(x) Ξ[:, columns], in row blocks."""
    def phi(cols: np.ndarray) -> np.ndarray:
        return np.vstack([dictionary(x[i : i + block]) @ xi[:, cols]
                          for i in range(0, len(x), block)])
    return phi


def _normalise(xi: np.ndarray, c0: np.ndarray) -> np.ndarray:
    """Rescale each ξ_k so that ξ_kᵀ C0 ξ_k = mean over the data of φ_k² = 1 (a ridge in the
    solve makes ξᵀ(C0 + γI)ξ = 1 instead, which is not the L²(π̂) normalisation). A direction
    with no mass on the data (ξᵀC0ξ ≤ 0 by rounding: the ridge alone) is left unscaled."""
    sq = np.einsum("fk,fg,gk->k", xi, c0, xi)
    return xi / np.sqrt(np.where(sq > 0, sq, 1.0))


def second_moments(dictionary: Dictionary, x: np.ndarray, y: np.ndarray | None = None,
                   block: int = 20000) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """C0 = mean_m ψ(x_m) ψ(x_m)ᵀ and, with y, C1 = mean_m ψ(x_m) ψ(y_m)ᵀ and
    Cyy = mean_m ψ(y_m) ψ(y_m)ᵀ, accumulated in row blocks."""
    f = dictionary.n_features
    c0 = np.zeros((f, f))
    c1 = None if y is None else np.zeros((f, f))
    cyy = None if y is None else np.zeros((f, f))
    for i in range(0, len(x), block):
        px = dictionary(x[i : i + block])
        c0 += gram(px)
        if y is not None:
            py = dictionary(y[i : i + block])
            c1 += px.T @ py
            cyy += gram(py)
    m = len(x)
    return c0 / m, (None if c1 is None else c1 / m), (None if cyy is None else cyy / m)


def gram(a: np.ndarray) -> np.ndarray:
    """aᵀa for an (M, F) array through BLAS syrk (half the flops of a GEMM), symmetrised."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    upper = scipy.linalg.blas.dsyrk(1.0, a.T, trans=0)  # a.T is Fortran-ordered: no copy
    return np.triu(upper) + np.triu(upper, 1).T


def reversible_moments(dictionary: Dictionary, x: np.ndarray, y: np.ndarray,
                       block: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """C0 = (Ψ_XᵀΨ_X + Ψ_YᵀΨ_Y)/(2M) and A = (Ψ_XᵀΨ_Y + Ψ_YᵀΨ_X)/(2M) from two Gram matrices:
    with S = Ψ_X + Ψ_Y and Δ = Ψ_X − Ψ_Y, SᵀS = 2M (C0 + A) and ΔᵀΔ = 2M (C0 − A).
    Costs two syrk (one GEMM's flops) instead of three GEMMs, and C0 − A = ΔᵀΔ/(2M) ⪰ 0."""
    f = dictionary.n_features
    ss = np.zeros((f, f))
    dd = np.zeros((f, f))
    for i in range(0, len(x), block):
        px, py = dictionary(x[i : i + block]), dictionary(y[i : i + block])
        ss += gram(px + py)
        dd += gram(px - py)
    m4 = 4.0 * len(x)
    return (ss + dd) / m4, (ss - dd) / m4


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
    **_ignored,
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
    whatever the ridge; modes are chosen by :func:`_select` (localised modes dropped,
    ``max_localisation``; rank by threshold with ``max_eigenvalue``).
    """
    if not train.has_pairs:
        raise ConfigError("edmd needs trajectory pairs; use 'dirichlet' or 'kde-pairs' for samples")
    t0 = time.perf_counter()
    x, y = _as_points(train.x), _as_points(train.y)
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
    xi = _normalise(xi, c0)
    invalid = (mu <= 0) | (mu >= 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = -np.log(mu) / tau if conversion == "log" else (1 - mu) / tau
    # the constant mode has μ̂ ≈ 1 (λ̂ ≈ 0), possibly just above 1: identify it before dropping
    lam = np.where(mu > 0, lam, np.inf)
    lam, xi, dropped, localised = _select(
        lam, xi, rank, invalid, phi_on_data=_dictionary_phi(dictionary, x, xi, block),
        max_localisation=max_localisation, max_eigenvalue=max_eigenvalue)
    rec = {"reversible": reversible, "c0_mode": c0_mode if reversible else "x", "lag": tau,
           "conversion": conversion, "n_train": len(x), "rank": len(lam),
           "dropped_modes": dropped, "localised_modes": localised,
           "max_localisation": max_localisation, "max_eigenvalue": max_eigenvalue,
           "complex_pairs": complex_pairs, "tol": tol, **rec}
    return lam, xi, rec


def dirichlet_matrix(dictionary: Dictionary, x: np.ndarray,
                     manifold: Manifold | None = None, block: int | None = None) -> np.ndarray:
    """D = mean_m Jψ(x_m) Jψ(x_m)ᵀ, (F, F); on a manifold with tangential gradients P_x ∇ψ_j."""
    m, d = x.shape
    f = dictionary.n_features
    out = np.zeros((f, f))
    if manifold is None:
        block = block or 20000
        for i in range(0, m, block):
            for a in range(d):
                g = dictionary.partial(x[i : i + block], a)
                out += g.T @ g
        return out / m
    block = block or max(1, 2_000_000 // (f * d))
    for i in range(0, m, block):
        xb = x[i : i + block]
        jac = dictionary.jacobian(xb)                        # (n, F, d), bounded by the block
        n = len(xb)
        flat = manifold.tangent(np.repeat(xb, f, axis=0), jac.reshape(n * f, d))
        g = flat.reshape(n, f, d).transpose(0, 2, 1).reshape(n * d, f)
        out += g.T @ g
    return out / m


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
    **_ignored,
) -> DictionarySpectrum:
    """Generator Galerkin from static samples (docs/design.md, estimator ``dirichlet``).

    Solves D ξ = λ C0 ξ with D_ij = mean_m ∇ψ_i·∇ψ_j and C0 = mean_m ψ ψᵀ: the Dirichlet form
    ⟨f, L g⟩_π = E_π[∇f·∇g] restricted to span ψ. Needs neither trajectories nor the score.
    """
    t0 = time.perf_counter()
    x = _as_points(train.x)
    _fit_features(dictionary, x, rng)
    c0, _, _ = second_moments(dictionary, x)
    dmat = dirichlet_matrix(dictionary, x, manifold)
    lam, xi, rec = whitened_eigh(dmat, c0, tol, ridge)
    # with a ridge the solve gives ξᵀ(C0 + γI)ξ = 1 and θ = ξᵀDξ; renormalise in L²(π̂) and
    # take the Rayleigh quotient λ̂ = ξᵀDξ / ξᵀC0ξ (both unchanged at γ = 0)
    xi = _normalise(xi, c0)
    lam = np.einsum("fk,fg,gk->k", xi, dmat, xi)
    invalid = lam <= 0
    lam, xi, dropped, localised = _select(
        lam, xi, rank, invalid, phi_on_data=_dictionary_phi(dictionary, x, xi),
        max_localisation=max_localisation, max_eigenvalue=max_eigenvalue)
    info = {"estimator": "dirichlet", "n_train": len(x), "rank": len(lam),
            "rank_requested": rank, "dropped_modes": dropped, "localised_modes": localised,
            "max_localisation": max_localisation, "max_eigenvalue": max_eigenvalue,
            "tol": tol, "ridge": ridge,
            "manifold": manifold.name if manifold is not None else None,
            **dictionary.info(), **rec, "fit_seconds": time.perf_counter() - t0}
    return DictionarySpectrum(lam, info, dictionary=dictionary, coefficients=xi)


def kde_bandwidth(x: np.ndarray, rule: str = "silverman") -> float:
    """A Gaussian-KDE bandwidth b = s̄ · (4 / ((d + 2) n))^{1/(d + q)} (s̄ = mean coordinate std).

    ``rule='silverman'`` (q = 4): Silverman's normal-reference rule, AMISE-optimal for the
    density. ``rule='score'`` (q = 6): the n^{−1/(d+6)} rate that is AMISE-optimal for the
    density's gradient (Chacón, Duong & Wand 2011), hence for a score ŝ = ∇p̂/p̂; it is wider
    (2-D OU, n = 10 000: 0.32 against 0.22), which tames the score's noise at sparse points.
    Neither is the median rule b² = median ‖x_i − x_j‖², which is so wide that the KDE score is
    little more than a pull to the mean (docs/design.md, 'The score')."""
    if rule not in ("silverman", "score"):
        raise choice_error("KDE bandwidth rule", rule, ["silverman", "score"])
    x = _as_points(x)
    n, d = x.shape
    q = 4 if rule == "silverman" else 6
    return float(np.mean(x.std(axis=0)) * (4.0 / ((d + 2) * n)) ** (1.0 / (d + q)))


def kde_score(points: np.ndarray, samples: np.ndarray, bandwidth: float,
              block_entries: int = 4_000_000, leave_one_out: bool = False) -> np.ndarray:
    """Score of the Gaussian KDE p̂(x) ∝ Σ_j exp(−‖x − x_j‖²/(2b²)):

        ŝ(x) = Σ_j k(x, x_j)(x_j − x) / (b² Σ_j k(x, x_j))

    in row blocks (rows rescaled so that far points do not underflow). With
    ``leave_one_out`` (``points`` must be ``samples``), the score at x_i omits j = i:
    ŝ₋ᵢ(x_i) = Σ_{j≠i} k_ij (x_j − x_i) / (b² Σ_{j≠i} k_ij). The self term adds 1 to the
    denominator and nothing to the numerator, so the plain score shrinks towards 0 where x_i has
    few neighbours (the tails). For an isolated x_i (every k_ij, j ≠ i, underflows) the row is
    rescaled by exp(min_j‖x_i − x_j‖²/(2b²)) first, which leaves the ratio unchanged: the score
    points to the nearest samples instead of falling back to 0. Returns (N, d).
    """
    from kswgd.core import _kernels

    points, samples = _as_points(points), _as_points(samples)
    if leave_one_out and points.shape != samples.shape:
        raise ConfigError("a leave-one-out KDE score needs points == samples")
    out = np.empty_like(points)
    step = max(1, block_entries // len(samples))
    for i in range(0, len(points), step):
        if leave_one_out:
            pb = points[i : i + step]
            kb = _kernels.gauss_features(pb, samples, bandwidth)
            kb[np.arange(len(pb)), np.arange(i, i + len(pb))] = 0.0
            tot = kb.sum(axis=1)
            bad = np.flatnonzero(tot <= np.finfo(float).tiny)   # isolated: all k_ij underflow
            for r in bad:                   # the leave-one-out kernel, rescaled so its largest
                d2 = np.sum((samples - pb[r]) ** 2, axis=1)          # entry is 1 (no underflow)
                d2[i + r] = np.inf
                kb[r] = np.exp(-(d2 - d2.min()) / (2 * bandwidth**2))
                tot[r] = kb[r].sum()
        else:
            kb = _kernels.gauss_features_rowshift(points[i : i + step], samples, bandwidth)
            tot = kb.sum(axis=1)
        out[i : i + step] = (kb @ samples / tot[:, None] - points[i : i + step])
    return out / bandwidth**2


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
    **params,
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
    Remaining parameters go to :func:`edmd`.
    """
    from kswgd.core.data import move

    t0 = time.perf_counter()
    rng = np.random.default_rng(0) if rng is None else rng
    x = _as_points(train.x)
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
    pairs = TrainingData(xs, y, lag=lag)
    spec = edmd(pairs, dictionary, rank=rank, rng=rng, **params)
    spec.info.update(estimator="kde-pairs", kde_bandwidth=b,
                     kde_bandwidth_rule="given" if kde_bandwidth_value > 0 else kde_rule,
                     leave_one_out=leave_one_out, step=step,
                     repeats=repeats, n_train=len(x),
                     manifold=manifold.name if manifold is not None else None,
                     fit_seconds=time.perf_counter() - t0)
    return spec


def diffusion_bandwidth(x: np.ndarray, intrinsic_dim: int | None = None) -> float:
    """The default diffusion-map bandwidth s = σ̄ · n^{−1/(m + 6)}.

    σ̄ = mean coordinate std of the samples, n = their number, m = the intrinsic dimension
    (d in R^d). n^{−1/(m+6)} balances the O(s²) bias of the α = ½ graph generator against its
    O(n^{−1/2} s^{−(m/2+1)}) variance. On OU with n = 3 000 it gives s = 0.32 (docs/design.md:
    s = 0.3 → λ̂ = 1.04, 1.96, 2.73; s = 0.1 adds spurious near-zero modes).
    """
    x = _as_points(x)
    m = x.shape[1] if intrinsic_dim is None else int(intrinsic_dim)
    return float(np.mean(x.std(axis=0)) * len(x) ** (-1.0 / (m + 6)))


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


def top_eigenpairs(s: np.ndarray, k: int, rng: np.random.Generator | None = None,
                   solver: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """The k largest eigenpairs of a symmetric n × n matrix by a partial eigensolver.

    solver="eigsh" (ARPACK Lanczos, seeded start vector), "subset" (LAPACK eigh with
    subset_by_index) or "auto" (subset for n ≤ 600, else eigsh: at n = 1 500 the LAPACK subset
    solver took 10 s against 1 s for eigsh on the 2-core machine). Returns μ descending,
    eigenvectors (n, k) and the solver used.
    """
    n = len(s)
    k = min(k, n - 1)
    if solver == "auto":
        solver = "subset" if n <= 600 else "eigsh"
    if solver == "subset":
        mu, u = scipy.linalg.eigh(s, subset_by_index=[n - k, n - 1])
    elif solver == "eigsh":
        rng = np.random.default_rng(0) if rng is None else rng
        ncv = min(n, max(2 * k + 1, 40))       # a wider Krylov space converges faster here
        mu, u = scipy.sparse.linalg.eigsh(s, k=k, which="LA", v0=rng.standard_normal(n), ncv=ncv)
    else:
        raise choice_error("eigensolver", solver, ["auto", "eigsh", "subset"])
    order = np.argsort(-mu)
    return mu[order], u[:, order], solver


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
    **_ignored,
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
    is clearly not a mode. The filter is the one rule of every estimator (:func:`_select`).
    A sample with no neighbour within reach of the kernel (its row of K is 0) has no edge: it
    is left out of the graph and counted in ``info['isolated_samples']``.

    Bias: the α = ½ graph generator is O(s²) off (with the default rule s ∝ n^{−1/(m+6)}). On
    the unit circle it is exact: P is a convolution, μ_k = I_k(1/s²)/I_0(1/s²) (modified
    Bessel), so λ̂_k → 2(1 − I_k(1/s²)/I_0(1/s²))/s² = k²(1 − k²s²/4 + O(s⁴)) as n → ∞
    (:func:`circle_dmap_limit`); at n = 3 000, s = 0.225 that is 7.95 for λ = 9 (−12 %).
    """
    t0 = time.perf_counter()
    from kswgd.core import _kernels

    x = _as_points(train.x)
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
    lam, phi, dropped, n_localised = _select(
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


def median_distance(x: np.ndarray, max_points: int = 4000) -> float:
    """The median heuristic: median_{i≠j} ‖x_i − x_j‖ over the samples (all ordered pairs; the
    first ``max_points`` samples when there are more, a deterministic subset)."""
    from scipy.spatial.distance import pdist

    x = _as_points(x)[:max_points]
    return float(np.median(pdist(x)))


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
    **_ignored,
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
    +50 %); at the defaults λ_1..λ_4 were within 7–16 % over three seeds.
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
    x, y = _as_points(train.x), _as_points(train.y)
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
    **_ignored,
):
    """Exact spectrum of the dataset's generator (LAWGD; docs/design.md, estimator ``oracle``).

    Dispatch on ``dataset``: ``gaussian`` → tensor Hermite functions; ``circle``/``semicircle``
    → Fourier modes; ``sphere`` → Galerkin on polynomials of degree ≤ ``degree`` with an exact
    sphere quadrature (λ = l(l+1) to rounding); otherwise a known log-density with d ≤ 2 →
    Dirichlet-form Galerkin D ξ = λ C0 ξ on ``n_basis`` cosines per axis (0: 160 in 1-D, 28 in
    2-D) with a ``grid``-point midpoint rule per axis (0: 4 000 in 1-D, 160 in 2-D) over a box
    holding π's mass. Training data are not used.
    """
    from kswgd.core import oracle as orc

    if dataset is None:
        raise ConfigError("the oracle estimator needs the dataset (pass dataset=...)")
    t0 = time.perf_counter()
    name, d = dataset.name, dataset.dim
    info: dict = {"estimator": "oracle", "system": name}
    if name == "gaussian":
        spec = orc.hermite_spectrum(d, rank)
        info.update(method="hermite", F=None, kept_dim=None, condition_number=1.0)
    elif name in ("circle", "semicircle"):
        spec = orc.fourier_spectrum(rank, semicircle=name == "semicircle")
        info.update(method="fourier", F=None, kept_dim=None, condition_number=1.0)
    else:
        if name == "sphere":
            if (degree + 1) ** 2 - 1 < rank:
                raise ConfigError(f"oracle on the sphere: degree {degree} gives fewer than "
                                  f"{rank} modes")
            dic, c0, dmat = orc.sphere_galerkin(degree, dataset.manifold)
            info.update(method="sphere-galerkin", degree=degree)
        elif dataset.manifold is None and d <= 2 and dataset.log_density is not None:
            per_axis = n_basis or (160 if d == 1 else 28)
            n_grid = grid or (4000 if d == 1 else 160)
            lo, hi = orc.mass_box(dataset)
            dic, c0, dmat = orc.grid_galerkin(dataset.log_density, lo, hi, per_axis, n_grid)
            info.update(method="grid-galerkin", n_basis=per_axis, grid=n_grid,
                        box=[lo.tolist(), hi.tolist()])
        else:
            raise ConfigError(f"no oracle spectrum for dataset {name!r} (needs a known spectrum, "
                              "or a log-density in d <= 2 without a manifold)")
        lam, xi, rec = whitened_eigh(dmat, c0, tol)
        lam, xi, dropped, _ = _select(lam, xi, rank, lam <= 0)
        spec = DictionarySpectrum(lam, {}, dictionary=dic, coefficients=xi)
        info.update(**dic.info(), **rec, dropped_modes=dropped)
    info.setdefault("dropped_modes", 0)
    info.update(rank=spec.rank, rank_requested=rank, fit_seconds=time.perf_counter() - t0)
    spec.info = info
    return spec


ESTIMATORS: dict[str, Callable] = {"edmd": edmd, "dirichlet": dirichlet,
                                  "diffusion-map": diffusion_map,
                                  "oracle": oracle,
                                  "kde-pairs": kde_pairs,
                                  "kernel-edmd": kernel_edmd}


def estimate(name: str, train: TrainingData, dictionary: Dictionary | None, **params):
    """Fit the estimator ``name`` (a key of ESTIMATORS) to the training data."""
    if name not in ESTIMATORS:
        raise choice_error("estimator", name, ESTIMATORS)
    return ESTIMATORS[name](train, dictionary, **params)

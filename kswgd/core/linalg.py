"""The linear algebra under the estimators (docs/design.md, 'Whitening' and 'Mode selection').

Pure algebra on matrices and fitted dictionaries, no estimator logic:

    whitening      C0 + γI = U diag(w) Uᵀ, W = U_keep diag(w_keep^{−1/2}) (w > tol · max w)
    whitened eigh  A ξ = θ C0 ξ  ⇔  (Wᵀ A W) v = θ v,  ξ = W v  (so ξᵀ C0 ξ = I)
    moments        C0 = mean ψ(x) ψ(x)ᵀ, C1 = mean ψ(x) ψ(y)ᵀ, D = mean Jψ Jψᵀ (Dirichlet form)
    selection      the one mode-selection rule of every estimator (constant mode, invalid and
                   localised modes dropped; ℓ_k = top-5 share of Σ_j φ_k(x_j)²)
    top eigenpairs the k largest eigenpairs of a symmetric matrix (partial eigensolvers)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.sparse.linalg

from kswgd.core.data import Manifold
from kswgd.core.dictionaries import Dictionary
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


def select_modes(lam: np.ndarray, xi: np.ndarray, rank: int, invalid: np.ndarray, *,
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


def dictionary_phi(dictionary: Dictionary, x: np.ndarray, xi: np.ndarray,
                    block: int = 20000) -> Callable[[np.ndarray], np.ndarray]:
    """phi_on_data for :func:`select_modes`: columns ↦ Ψ(x) Ξ[:, columns], in row blocks."""
    def phi(cols: np.ndarray) -> np.ndarray:
        return np.vstack([dictionary(x[i : i + block]) @ xi[:, cols]
                          for i in range(0, len(x), block)])
    return phi


def normalise_on_data(xi: np.ndarray, c0: np.ndarray) -> np.ndarray:
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

"""Exact (or quadrature-exact) eigenpairs of L = −(Δ − ∇V·∇): the constructions a dataset
uses to declare its spectrum (``Dataset.exact_spectrum``, ``Dataset.eigenvalues``), which the
``oracle`` estimator (hence oracle LAWGD) and ``kswgd spectra`` read (docs/design.md, 'The
objects'). Not an estimator: nothing here looks at data.

- N(0, I_d): tensor Hermite functions φ_α(x) = Π_a He_{α_a}(x_a)/√(α_a!), λ_α = |α|.
- Uniform on the circle: √2 cos kθ, √2 sin kθ, λ = k² (the semicircle with reflecting ends:
  √2 cos kθ only). θ = atan2(y, x) extends them to R² \\ {0}, constant along rays.
- Uniform on S²: Galerkin on polynomials of total degree ≤ L restricted to the sphere, with a
  product quadrature (Gauss–Legendre in z × uniform in azimuth) that integrates every product
  exactly. Restrictions of degree-≤ L polynomials are exactly the spherical harmonics l ≤ L, so
  λ = l(l + 1) is exact to rounding.
- A known log-density, d ≤ 2, no manifold (the default of ``Dataset.exact_spectrum``):
  Galerkin of the Dirichlet form D ξ = λ C0 ξ on a tensor cosine basis, with a midpoint
  quadrature against π on a grid over a box that holds π's mass.
- 1-D eigenvalues only: a conservative finite-difference solve (:func:`fd_generator_spectrum`).

Eigenfunctions are normalised in L²(π) (exactly, not over the data).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from kswgd.core.data import Manifold, as_points
from kswgd.core.dictionaries import Cosine, Dictionary, Poly
from kswgd.core.linalg import select_modes, whitened_eigh
from kswgd.core.spectrum import DictionarySpectrum, Spectrum
from kswgd.params import ConfigError

# the record of a closed-form spectrum: no dictionary, no whitening
_ANALYTIC = {"F": None, "kept_dim": None, "condition_number": 1.0}


@dataclass
class HermiteSpectrum(Spectrum):
    """Exact OU spectrum of N(0, I_d): rows of ``alphas`` (r, d) are the multi-indices α."""

    alphas: np.ndarray | None = None

    def _tables(self, x):
        x = as_points(x)
        p = int(self.alphas.max())
        h = np.empty((p + 1,) + x.shape)      # normalised h_n = He_n/√n!
        h[0] = 1.0
        if p >= 1:
            h[1] = x
        for n in range(1, p):
            h[n + 1] = (x * h[n] - math.sqrt(n) * h[n - 1]) / math.sqrt(n + 1)
        dh = np.zeros_like(h)
        for n in range(1, p + 1):
            dh[n] = math.sqrt(n) * h[n - 1]    # h_n' = √n h_{n−1}
        cols = np.arange(x.shape[1])
        return h[self.alphas, :, cols], dh[self.alphas, :, cols]   # (r, d, N)

    def phi(self, x):
        h, _ = self._tables(x)
        return np.prod(h, axis=1).T

    def grad_phi(self, x):
        h, dh = self._tables(x)
        d = h.shape[1]
        out = np.empty((h.shape[2], h.shape[0], d))
        for a in range(d):
            f = h.copy()
            f[:, a] = dh[:, a]
            out[:, :, a] = np.prod(f, axis=1).T
        return out

    def weighted_gradient(self, x, w):
        return np.einsum("nkd,k->nd", self.grad_phi(x), w)


def hermite_spectrum(d: int, rank: int) -> HermiteSpectrum:
    """The first ``rank`` non-constant Hermite modes of N(0, I_d), by increasing |α|."""
    alphas: list[tuple[int, ...]] = []
    total = 1
    while len(alphas) < rank:
        alphas += sorted((a for a in itertools.product(range(total + 1), repeat=d)
                          if sum(a) == total), reverse=True)
        total += 1
    al = np.array(alphas[:rank], dtype=np.int64)
    return HermiteSpectrum(al.sum(axis=1).astype(float), {"method": "hermite", **_ANALYTIC},
                           alphas=al)


@dataclass
class FourierSpectrum(Spectrum):
    """Circle (or reflecting semicircle) modes √2 cos kθ / √2 sin kθ, λ = k²; θ = atan2(y, x)."""

    freqs: np.ndarray | None = None     # (r,) k ≥ 1
    is_sin: np.ndarray | None = None    # (r,) bool

    def _angle(self, x):
        x = as_points(x)
        return np.arctan2(x[:, 1], x[:, 0]), np.sum(x * x, axis=1)

    def phi(self, x):
        th, _ = self._angle(x)
        arg = th[:, None] * self.freqs
        return math.sqrt(2) * np.where(self.is_sin, np.sin(arg), np.cos(arg))

    def grad_phi(self, x):
        x = as_points(x)
        th, r2 = self._angle(x)
        arg = th[:, None] * self.freqs
        dphi = math.sqrt(2) * self.freqs * np.where(self.is_sin, np.cos(arg), -np.sin(arg))
        grad_th = np.column_stack([-x[:, 1], x[:, 0]]) / r2[:, None]     # ∇θ = (−y, x)/r²
        return dphi[:, :, None] * grad_th[:, None, :]

    def weighted_gradient(self, x, w):
        return np.einsum("nkd,k->nd", self.grad_phi(x), w)


def fourier_spectrum(rank: int, semicircle: bool = False) -> FourierSpectrum:
    """λ = k² with cos and sin (circle) or cos only (semicircle), k = 1, 2, …"""
    ks, sins = [], []
    k = 1
    while len(ks) < rank:
        for s in ((False,) if semicircle else (False, True)):
            ks.append(k)
            sins.append(s)
        k += 1
    ks_arr = np.array(ks[:rank], dtype=float)
    return FourierSpectrum(ks_arr**2, {"method": "fourier", **_ANALYTIC}, freqs=ks_arr,
                           is_sin=np.array(sins[:rank]))


def quadrature_galerkin(dictionary: Dictionary, nodes: np.ndarray, weights: np.ndarray,
                        manifold: Manifold | None = None):
    """C0 = Σ_m w_m ψ(x_m) ψ(x_m)ᵀ and D = Σ_m w_m Jψ(x_m) Jψ(x_m)ᵀ (tangential on a manifold),
    for quadrature nodes x_m with weights w_m summing to 1."""
    nodes = as_points(nodes)
    sw = np.sqrt(weights)[:, None]
    psi = dictionary(nodes) * sw
    c0 = psi.T @ psi
    f, (m, d) = dictionary.n_features, nodes.shape
    dmat = np.zeros((f, f))
    if manifold is None:
        for a in range(d):
            g = dictionary.partial(nodes, a) * sw
            dmat += g.T @ g
        return c0, dmat
    jac = dictionary.jacobian(nodes)                                   # (m, F, d), small grids
    tan = manifold.tangent(np.repeat(nodes, f, axis=0), jac.reshape(m * f, d)).reshape(m, f, d)
    tan *= sw[:, :, None]
    for a in range(d):
        dmat += tan[:, :, a].T @ tan[:, :, a]
    return c0, dmat


def sphere_quadrature(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes on S² and weights (sum 1) exact for polynomials of degree ≤ ``degree``."""
    nz = degree // 2 + 1
    nphi = degree + 1
    z, wz = np.polynomial.legendre.leggauss(nz)
    az = 2 * np.pi * np.arange(nphi) / nphi
    zz, aa = np.meshgrid(z, az, indexing="ij")
    rho = np.sqrt(1 - zz**2)
    nodes = np.column_stack([(rho * np.cos(aa)).ravel(), (rho * np.sin(aa)).ravel(), zz.ravel()])
    w = np.repeat(wz / 2, nphi) / nphi
    return nodes, w


def sphere_galerkin(degree: int, manifold: Manifold):
    """Poly dictionary of total degree ≤ L (raw coordinates), nodes/weights exact for the
    Galerkin matrices (products of degree ≤ 2L + 2)."""
    dic = Poly(degree=degree, basis="monomial", standardize=False).fit(np.zeros((1, 3)))
    nodes, w = sphere_quadrature(2 * degree + 2)
    return dic, *quadrature_galerkin(dic, nodes, w, manifold)


def grid_galerkin(log_density, lower: np.ndarray, upper: np.ndarray, per_axis: int,
                  grid: int):
    """Cosine dictionary on the box and midpoint-rule Galerkin matrices against π ∝ e^{log π}."""
    d = len(lower)
    axes = [lower[a] + (np.arange(grid) + 0.5) * (upper[a] - lower[a]) / grid for a in range(d)]
    mesh = np.meshgrid(*axes, indexing="ij")
    nodes = np.stack([g.ravel() for g in mesh], axis=1)
    logp = log_density(nodes)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    dic = Cosine(n_features=per_axis, lower=lower, upper=upper).fit(nodes)
    return dic, *quadrature_galerkin(dic, nodes, w)


def mass_box(log_density, d: int, margin: float = 0.15, drop: float = 10.0,
             per_axis: int | None = None):
    """A box holding π's mass, found from the log-density alone (no draws): starting from
    [−1, 1]^d, the box is doubled until log π on its boundary grid is below max − ``drop``
    (10 nats: for a Gaussian, 4.5 σ), then shrunk to the grid cells with log π ≥ max − drop and
    widened by ``margin`` × range on each side. d ≤ 2.
    """
    k = per_axis or (2001 if d == 1 else 201)
    half = 1.0
    while True:
        axis = np.linspace(-half, half, k)
        nodes = np.stack([g.ravel() for g in np.meshgrid(*[axis] * d, indexing="ij")], axis=1)
        logp = np.asarray(log_density(nodes), dtype=float)
        top = np.max(logp)
        edge = np.any(np.abs(nodes) == half, axis=1)
        if np.max(logp[edge]) < top - drop:
            break
        half *= 2.0
        if half > 1e4:
            raise ConfigError("mass_box: the log-density does not decay within |x| ≤ 1e4")
    keep = nodes[logp >= top - drop]
    cell = 2.0 * half / (k - 1)
    lo, hi = keep.min(axis=0) - cell, keep.max(axis=0) + cell
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def galerkin_spectrum(dictionary: Dictionary, c0: np.ndarray, dmat: np.ndarray, rank: int,
                      tol: float, info: dict) -> DictionarySpectrum:
    """The first ``rank`` eigenpairs of the Galerkin problem D ξ = λ C0 ξ (whitened, constant
    mode and λ ≤ 0 dropped); ``info`` (the construction's record) is completed with the
    dictionary, the whitening record and ``dropped_modes``."""
    lam, xi, rec = whitened_eigh(dmat, c0, tol)
    lam, xi, dropped, _ = select_modes(lam, xi, rank, lam <= 0)
    return DictionarySpectrum(lam, {**info, **dictionary.info(), **rec, "dropped_modes": dropped},
                              dictionary=dictionary, coefficients=xi)


def sphere_spectrum(rank: int, degree: int, manifold: Manifold,
                    tol: float = 1e-10) -> DictionarySpectrum:
    """Eigenpairs of −Δ on S² from the exact polynomial Galerkin of :func:`sphere_galerkin`."""
    if (degree + 1) ** 2 - 1 < rank:
        raise ConfigError(f"oracle on the sphere: degree {degree} gives fewer than {rank} modes")
    dic, c0, dmat = sphere_galerkin(degree, manifold)
    return galerkin_spectrum(dic, c0, dmat, rank, tol,
                             {"method": "sphere-galerkin", "degree": degree})


def grid_galerkin_spectrum(log_density, d: int, rank: int, n_basis: int = 0, grid: int = 0,
                           tol: float = 1e-10) -> DictionarySpectrum:
    """Eigenpairs of L for π ∝ e^{log π} in d ≤ 2 from :func:`grid_galerkin` on
    :func:`mass_box`: ``n_basis`` cosines per axis (0: 160 in 1-D, 28 in 2-D), a ``grid``-point
    midpoint rule per axis (0: 4 000 in 1-D, 160 in 2-D)."""
    per_axis = n_basis or (160 if d == 1 else 28)
    n_grid = grid or (4000 if d == 1 else 160)
    lo, hi = mass_box(log_density, d)
    dic, c0, dmat = grid_galerkin(log_density, lo, hi, per_axis, n_grid)
    return galerkin_spectrum(dic, c0, dmat, rank, tol,
                             {"method": "grid-galerkin", "n_basis": per_axis, "grid": n_grid,
                              "box": [lo.tolist(), hi.tolist()]})


def fd_generator_spectrum(log_density, lower: float, upper: float, n: int, rank: int):
    """λ_1..λ_rank of L f = −π⁻¹ (π f')' on [lower, upper] with reflecting ends.

    Conservative finite differences on n + 1 nodes x_i (spacing h), π at nodes and midpoints:
    (L f)_i = −[π_{i+½}(f_{i+1} − f_i) − π_{i−½}(f_i − f_{i−1})] / (h² π_i), symmetrised by
    π_i^{1/2} into a tridiagonal matrix (error O(h²)). The zero mode is excluded.
    """
    x = np.linspace(lower, upper, n + 1)
    h = x[1] - x[0]
    shift = float(np.max(log_density(x[:, None])))
    p = np.exp(log_density(x[:, None]) - shift)
    pm = np.exp(log_density((0.5 * (x[:-1] + x[1:]))[:, None]) - shift)
    diag = np.zeros(n + 1)
    diag[:-1] += pm
    diag[1:] += pm
    diag /= h * h * p
    off = -pm / (h * h * np.sqrt(p[:-1] * p[1:]))
    lam = scipy.linalg.eigh_tridiagonal(diag, off, select="i", select_range=(0, rank),
                                        eigvals_only=True)
    return lam[1:]

"""A fitted spectrum of the Langevin generator L = −(Δ − ∇V·∇) (docs/design.md, 'The objects').

A spectrum holds r eigenvalues λ_1 ≤ … ≤ λ_r (the constant mode excluded) and evaluates the
eigenfunctions φ_k and their gradients at new points. Its ``transport_velocity`` is the
particle velocity of docs/design.md, 'The transport':

    c_k = (1/N) Σ_j φ_k(x_j),    v_i = Σ_k (c_k / λ_k) ∇φ_k(x_i)

so that a step is x_i ← x_i − h v_i. Spectra are picklable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kswgd.dictionaries import Dictionary


@dataclass
class Spectrum:
    """Base class. Subclasses implement ``phi`` and ``weighted_gradient``."""

    eigenvalues: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return len(self.eigenvalues)

    def phi(self, x: np.ndarray) -> np.ndarray:
        """φ_k(x_i), shape (N, r)."""
        raise NotImplementedError

    def weighted_gradient(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Σ_k w_k ∇φ_k(x_i), shape (N, d)."""
        raise NotImplementedError

    def grad_phi(self, x: np.ndarray) -> np.ndarray:
        """∇φ_k(x_i) as an (N, r, d) tensor: for tests and plots only, never in a hot loop."""
        eye = np.eye(self.rank)
        return np.stack([self.weighted_gradient(x, eye[k]) for k in range(self.rank)], axis=1)

    def transport_velocity(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Velocity v (N, d) and coefficients c (r,) of the transport (module docstring)."""
        c = self.phi(x).mean(axis=0)
        return self.weighted_gradient(x, c / self.eigenvalues), c


@dataclass
class DictionarySpectrum(Spectrum):
    """φ_k = ψᵀ ξ_k for an explicit dictionary ψ and coefficient matrix Ξ = [ξ_1 … ξ_r] (F, r).

    A transport step costs O(N F d): c = Ξᵀ mean_j ψ(x_j), β = Ξ (c/λ), v_i = Jψ(x_i)ᵀ β,
    reusing the one N × F feature matrix.
    """

    dictionary: Dictionary | None = None
    coefficients: np.ndarray | None = None

    def phi(self, x):
        return self.dictionary(x) @ self.coefficients

    def weighted_gradient(self, x, w):
        return self.dictionary.grad_dot(x, self.coefficients @ w)

    def transport_velocity(self, x):
        psi = self.dictionary(x)
        c = psi.mean(axis=0) @ self.coefficients
        beta = self.coefficients @ (c / self.eigenvalues)
        return self.dictionary.grad_dot(x, beta, psi=psi), c


@dataclass
class NystromSpectrum(Spectrum):
    """Diffusion-map eigenvectors on samples z_1..z_n, extended off-sample by Nyström.

    With the Gaussian kernel k(x, z) = exp(−‖x − z‖²/(2s²)), the α = ½ weights w_j = q_j^{−1/2}
    (q_j = Σ_l k(z_j, z_l)) and the Markov eigenpairs (μ_k, φ_k(z_j)), the extension is

        φ_k(x) = S_k(x) / (μ_k S_0(x)),   S_0(x) = Σ_j k(x, z_j) w_j,
                                          S_k(x) = Σ_j k(x, z_j) w_j φ_k(z_j)

    (q(x)^{−1/2} cancels), which equals φ_k(z_j) on the samples. Its analytic gradient, with
    T_m(x) = Σ_j k(x, z_j) W_jm z_j and ∇k(x, z) = (z − x) k / s², is

        ∇φ_k(x) = (T_k(x) − φ_k(x) T_0(x)) / (s² S_0(x))

    where column k of W carries w_j φ_k(z_j)/μ_k. Each row of k is rescaled so that its largest
    entry is 1 (ratios are unchanged, far particles do not underflow). A transport step costs
    O(N n (d + r)) and holds at most a (block × n) kernel matrix, never an (N, n, d) tensor.
    """

    points: np.ndarray | None = None       # (n, d) samples z_j
    weights: np.ndarray | None = None      # (n, r + 1): [w_j, w_j φ_k(z_j)/μ_k]
    bandwidth: float = 1.0
    block_entries: int = 4_000_000

    def _sums(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """S (N, r + 1) and T (N, r + 1, d): kernel sums and first moments, in row blocks."""
        from kswgd import _kernels

        x = np.ascontiguousarray(x, dtype=np.float64)
        n, d = self.points.shape
        m = self.weights.shape[1]
        rhs = np.hstack([self.weights] + [self.weights * self.points[:, a : a + 1]
                                          for a in range(d)])          # (n, m (d + 1))
        s_out = np.empty((len(x), m))
        t_out = np.empty((len(x), m, d))
        step = max(1, self.block_entries // max(n, 1))
        for i in range(0, len(x), step):
            kb = _kernels.gauss_features_rowshift(x[i : i + step], self.points, self.bandwidth)
            prod = kb @ rhs
            s_out[i : i + step] = prod[:, :m]
            t_out[i : i + step] = prod[:, m:].reshape(-1, d, m).transpose(0, 2, 1)
        return s_out, t_out

    def _phi_grad(self, x):
        s, t = self._sums(x)
        phi = s[:, 1:] / s[:, :1]
        grad = (t[:, 1:, :] - phi[:, :, None] * t[:, :1, :]) / (
            self.bandwidth**2 * s[:, :1, None])
        return phi, grad

    def phi(self, x):
        s, _ = self._sums(x)
        return s[:, 1:] / s[:, :1]

    def grad_phi(self, x):
        return self._phi_grad(x)[1]

    def weighted_gradient(self, x, w):
        return np.einsum("nkd,k->nd", self._phi_grad(x)[1], w)

    def transport_velocity(self, x):
        phi, grad = self._phi_grad(x)
        c = phi.mean(axis=0)
        return np.einsum("nkd,k->nd", grad, c / self.eigenvalues), c

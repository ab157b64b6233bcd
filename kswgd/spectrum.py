"""A fitted spectrum of the Langevin generator L = −(Δ − ∇V·∇) (DESIGN.md §1–§3).

A spectrum holds r eigenvalues λ_1 ≤ … ≤ λ_r (the constant mode excluded) and evaluates the
eigenfunctions φ_k and their gradients at new points. Its ``transport_velocity`` is the
particle velocity of DESIGN.md §2:

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

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

from kswgd.core.dictionaries import Dictionary


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
        return self.dictionary.transport(x, self.coefficients, self.eigenvalues)


@dataclass
class NystromSpectrum(Spectrum):
    """Diffusion-map eigenvectors on samples z_1..z_n, extended off-sample by Nyström.

    With the Gaussian kernel k(x, z) = exp(−‖x − z‖²/(2s²)), the α = ½ weights w_j = q_j^{−1/2}
    (q_j = Σ_l k(z_j, z_l)) and the Markov eigenpairs (μ_k, φ_k(z_j)), the extension is

        φ_k(x) = S_k(x) / S_0(x),   S_m(x) = Σ_j k(x, z_j) W_jm,
        W_j0 = w_j,   W_jk = w_j φ_k(z_j) / μ_k   (``weights``, shape (n, r + 1))

    which equals φ_k(z_j) on the samples. The density normalisation of the α = ½ kernel,
    q(x)^{−1/2}, multiplies S_k and S_0 alike and cancels; the remaining normalisation 1/S_0(x)
    depends on x and its derivative is kept exactly. With ∇_x k(x, z) = (z − x) k / s²,

        ∇S_m(x) = (T_m(x) − x S_m(x)) / s²,   T_m(x) = Σ_j k(x, z_j) W_jm z_j,

    and the quotient rule gives (the x S terms cancel)

        ∇φ_k = (∇S_k − φ_k ∇S_0) / S_0 = (T_k − φ_k T_0) / (s² S_0).

    A weighted sum of gradients folds the weights a_k into the coefficients before any kernel
    sum: with u_j = Σ_k W_jk a_k (u = W_{:,1:} a),

        Σ_k a_k ∇φ_k(x) = (T_u(x) − (S_u(x) / S_0(x)) T_0(x)) / (s² S_0(x)),
        S_u = Σ_j k(x, z_j) u_j = Σ_k a_k S_k,   T_u = Σ_j k(x, z_j) u_j z_j,

    so the transport velocity (a_k = c_k / λ_k, c = mean over the particles of φ) needs the
    kernel matrix K_ij = k(x_i, z_j) once, one product K [W, w z] with r + 1 + d columns
    (S and T_0; then c and a), and one product K (u z) with d columns (T_u): O(N n (r + 2d))
    instead of the O(N n (r + 1)(d + 1)) of the r + 1 first moments T_k.

    Each row of K is rescaled so that its largest entry is 1 (ratios are unchanged, far
    particles do not underflow). K is held whole when N·n ≤ ``hold_entries`` (its buffer is
    reused from step to step); above that, in row blocks of ``block_entries`` entries, computed
    twice (the second product needs c, hence every row of the first). Never an (N, n, d) tensor.
    """

    points: np.ndarray | None = None       # (n, d) samples z_j
    weights: np.ndarray | None = None      # (n, r + 1): [w_j, w_j φ_k(z_j)/μ_k]
    bandwidth: float = 1.0
    block_entries: int = 4_000_000
    hold_entries: int = 40_000_000          # 320 MB of float64

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_cache", None)             # the kernel buffer and derived arrays
        return state

    def _derived(self) -> dict:
        cache = self.__dict__.get("_cache")
        if cache is None:
            z = np.ascontiguousarray(self.points, dtype=np.float64)
            w = np.ascontiguousarray(self.weights, dtype=np.float64)
            cache = self.__dict__["_cache"] = {
                "first": np.hstack([w, w[:, :1] * z]),     # [W, w z]: (n, r + 1 + d)
                "buffer": None,
            }
        return cache

    def _kernel(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Row-shifted K_ij = exp(−(‖x_i − z_j‖² − min_l ‖x_i − z_l‖²)/(2s²)) into ``out``."""
        from kswgd.core import _kernels

        return _kernels.gauss_features_rowshift(x, self.points, self.bandwidth, out=out)

    def _blocks(self, x: np.ndarray):
        """(row slice, kernel block) over x in row blocks of about ``block_entries`` entries,
        each block computed into one reused buffer."""
        n_rows, n = len(x), len(self.points)
        step = max(1, self.block_entries // max(n, 1))
        buf = np.empty((min(step, n_rows), n))
        for i in range(0, n_rows, step):
            rows = slice(i, min(i + step, n_rows))
            yield rows, self._kernel(x[rows], buf[: rows.stop - i])

    def _two_products(self, x: np.ndarray, second) -> tuple[np.ndarray, np.ndarray]:
        """P = K [W, w z] and Q = K second(P), with ``second`` mapping P to an (n, q) matrix."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        cache = self._derived()
        first = cache["first"]
        n_rows, n = len(x), len(self.points)
        if n_rows * n <= self.hold_entries:
            buf = cache["buffer"]
            if buf is None or buf.size < n_rows * n:
                buf = cache["buffer"] = np.empty(n_rows * n)
            kmat = self._kernel(x, buf[: n_rows * n].reshape(n_rows, n))
            p = kmat @ first
            return p, kmat @ second(p)
        p = np.empty((n_rows, first.shape[1]))
        for rows, kb in self._blocks(x):
            np.matmul(kb, first, out=p[rows])
        rhs = second(p)
        q = np.empty((n_rows, rhs.shape[1]))
        for rows, kb in self._blocks(x):
            np.matmul(kb, rhs, out=q[rows])
        return p, q

    def _folded(self, x: np.ndarray, coef) -> tuple[np.ndarray, np.ndarray]:
        """Σ_k a_k ∇φ_k(x) (class docstring) and φ(x), with a = coef(φ(x)) (an (r,) array)."""
        r1 = self.weights.shape[1]
        d = self.points.shape[1]
        held = {}

        def second(p):
            phi = p[:, 1:r1] / p[:, :1]
            a = np.asarray(coef(phi), dtype=np.float64)
            held["phi"], held["a"] = phi, a
            return (self.weights[:, 1:] @ a)[:, None] * self.points        # u z: (n, d)

        p, t_u = self._two_products(x, second)
        s0 = p[:, :1]
        t0 = p[:, r1 : r1 + d]
        s_u = p[:, 1:r1] @ held["a"]
        v = (t_u - (s_u / s0[:, 0])[:, None] * t0) / (self.bandwidth**2 * s0)
        return v, held["phi"]

    def phi(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty((len(x), self.weights.shape[1] - 1))
        for rows, kb in self._blocks(x):
            s = kb @ self.weights
            out[rows] = s[:, 1:] / s[:, :1]
        return out

    def weighted_gradient(self, x, w):
        w = np.asarray(w, dtype=np.float64)
        return self._folded(x, lambda phi: w)[0]

    def transport_velocity(self, x):
        v, phi = self._folded(x, lambda phi: phi.mean(axis=0) / self.eigenvalues)
        return v, phi.mean(axis=0)


# Diagnostics of the transport (docs/design.md, 'The transport')


def spectral_residual(c: np.ndarray) -> float:
    """S = Σ_k c_k², with c_k = mean_j φ_k(x_j) ≈ ⟨ρ − 1, φ_k⟩_π (zero at μ = π)."""
    return float(np.dot(c, c))


def dissipation_rate(s_prev: float, s_next: float, step: float) -> float:
    """−log(S_{n+1}/S_n) / (2h): ≈ 1 under exact eigenpairs (the constant-dissipation claim)."""
    if s_prev <= 0 or s_next <= 0:
        return float("nan")
    return float(-np.log(s_next / s_prev) / (2.0 * step))

"""Uniform (surface-measure) law on the torus T ⊂ R³ with radii R = 2, r = 0.8.

Embedding: (θ, φ) ↦ ((R + r cos φ) cos θ, (R + r cos φ) sin θ, r sin φ). Surface density in
angles ∝ R + r cos φ: θ ~ U(0, 2π) and φ by exact rejection from U(0, 2π) with acceptance
(R + r cos φ)/(R + r).

Brownian motion (generator Δ_T) in angles, from the metric g = diag((R + r cos φ)², r²):
    dθ = √2/(R + r cos φ) dW₁,   dφ = −sin φ/(r (R + r cos φ)) dt + (√2/r) dW₂.
The φ drift is what keeps the surface measure invariant (without it φ becomes uniform).
Pairs: x ~ π, y after lag τ by ``n_sub`` Euler–Maruyama steps (the paper uses one step of 0.05).
Initial particles (the paper's): uniform in angles on θ ∈ ±0.3, φ ∈ π/2 ± 0.3.
Spectrum (``eigenvalues``): :func:`torus_spectrum`, Fourier modes in θ times a periodic 1-D
Sturm–Liouville problem in φ solved by Fourier–Galerkin.
Task metrics: ``manifold_distance``, ``phi_tv`` and ``theta_tv`` (TV of the angle histograms
against the exact marginals ∝ R + r cos φ and uniform).
"""

from __future__ import annotations

import numpy as np

from kswgd.dataset import Dataset, Manifold, TrainingData
from kswgd.helpers import histogram_tv, kind_or_default
from kswgd.params import Interval


def torus_spectrum(R: float, r: float, count: int, n_modes: int = 64) -> np.ndarray:
    """λ_1..λ_count of L = −Δ_T (Laplace–Beltrami; uniform area law), constant mode excluded.

    With a(φ) = R + r cos φ and area element a r dθ dφ, separating f = e^{imθ} g(φ) gives the
    periodic Sturm–Liouville problem

        −(a g')' + (m² r² / a) g = λ r² a g,    g 2π-periodic,  m = 0, 1, 2, …

    each eigenvalue of m ≥ 1 counted twice (cos mθ, sin mθ). Solved by Fourier–Galerkin,
    g = Σ_{|k| ≤ K} c_k e^{ikφ} (K = ``n_modes``): stiffness
    S_jk = j k â_{j−k} + m² r² (1/a)^_{j−k},
    mass M_jk = r² â_{j−k} (Toeplitz in the Fourier coefficients of a and 1/a, taken by an FFT
    on 8K points, exact for a and spectrally accurate for the analytic 1/a). Converges
    geometrically in K; m runs until its lowest eigenvalue exceeds the count-th found.
    """
    import scipy.linalg

    k = np.arange(-n_modes, n_modes + 1)
    grid = 2 * np.pi * np.arange(8 * n_modes) / (8 * n_modes)
    a = R + r * np.cos(grid)
    a_hat = np.fft.fft(a) / len(grid)
    inv_hat = np.fft.fft(1.0 / a) / len(grid)
    diff = (k[:, None] - k[None, :]) % len(grid)
    ta, tinv = a_hat[diff], inv_hat[diff]                # Toeplitz, Hermitian
    stiff0 = (k[:, None] * k[None, :]) * ta
    mass = r * r * ta
    vals: list[float] = []
    m = 0
    while True:
        lam = scipy.linalg.eigh(stiff0 + m * m * r * r * tinv, mass, eigvals_only=True)
        lam = np.sort(lam.real)[: count + 1]
        if len(vals) >= count + 1 and lam[0] > sorted(vals)[count]:
            break
        vals += list(lam) * (1 if m == 0 else 2)
        m += 1
    vals = np.sort(np.asarray(vals))
    return vals[1 : count + 1]                           # drop the constant mode (λ = 0)


def torus_angle_sde(
    theta: np.ndarray, phi: np.ndarray, tau: float, n_sub: int, rng: np.random.Generator,
    R: float, r: float, drift: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Euler–Maruyama for the torus Brownian motion in angles over time τ (n_sub steps).

    dθ = √2/(R + r cos φ) dW₁, dφ = −sin φ/(r (R + r cos φ)) dt + (√2/r) dW₂.
    ``drift=False`` drops the φ drift (the public code's mistake; kept for the test that
    shows its invariant law is wrong). Angles are returned modulo 2π.
    """
    delta = tau / n_sub
    th, ph = np.array(theta, dtype=float), np.array(phi, dtype=float)
    sq = np.sqrt(2 * delta)
    for _ in range(n_sub):
        w = rng.standard_normal((2,) + th.shape)
        a = R + r * np.cos(ph)
        th_new = th + sq / a * w[0]
        ph = ph + sq / r * w[1] - (np.sin(ph) / (r * a) * delta if drift else 0.0)
        th = th_new
    return np.mod(th, 2 * np.pi), np.mod(ph, 2 * np.pi)


class Torus(Dataset):
    name = "torus"
    description = "uniform surface measure on the torus R=2, r=0.8 in R³; angle-SDE pairs"
    parameters = {"R": 2.0, "r": 0.8, "lag": 0.05, "n_sub": 10, "init_half_width": 0.3,
                  "n_bins": 36}
    constraints = {
        "R": Interval(float, 0, None, closed="neither"),
        "r": Interval(float, 0, None, closed="neither"),
        "lag": Interval(float, 0, None, closed="neither"),
        "n_sub": Interval(int, 1, None),
        "init_half_width": Interval(float, 0, None, closed="neither"),
        "n_bins": Interval(int, 1, None),
    }
    data_kinds = ("trajectories", "samples")
    default_sizes = {"n_train": 800, "n_reference": 2000, "n_particles": 2000}

    @property
    def dim(self) -> int:
        return 3

    def embed(self, theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        R, r = self.params["R"], self.params["r"]
        a = R + r * np.cos(phi)
        return np.column_stack([a * np.cos(theta), a * np.sin(theta), r * np.sin(phi)])

    def angles(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(θ, φ) in [0, 2π)² of the nearest torus point."""
        theta = np.arctan2(x[:, 1], x[:, 0])
        phi = np.arctan2(x[:, 2], np.hypot(x[:, 0], x[:, 1]) - self.params["R"])
        return np.mod(theta, 2 * np.pi), np.mod(phi, 2 * np.pi)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Nearest point of T (well defined off the z-axis and the core circle)."""
        return self.embed(*self.angles(x))

    def tangent(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """P_x v = v − (v·n) n, n = (cos φ cos θ, cos φ sin θ, sin φ) at the projected angles."""
        th, ph = self.angles(x)
        n = np.column_stack([np.cos(ph) * np.cos(th), np.cos(ph) * np.sin(th), np.sin(ph)])
        return v - np.sum(v * n, axis=1, keepdims=True) * n

    def _draw_angles(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        R, r = self.params["R"], self.params["r"]
        phi = np.empty(0)
        while phi.size < n:
            m = 2 * (n - phi.size) + 16
            cand = rng.uniform(0.0, 2 * np.pi, m)
            acc = rng.random(m) * (R + r) < R + r * np.cos(cand)
            phi = np.concatenate([phi, cand[acc]])
        return rng.uniform(0.0, 2 * np.pi, n), phi[:n]

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.embed(*self._draw_angles(n, rng))

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        kind = kind_or_default(kind, self.data_kinds, self.name)
        th, ph = self._draw_angles(n, rng)
        if kind == "samples":
            return TrainingData(self.embed(th, ph))
        p = self.params
        th_y, ph_y = torus_angle_sde(th, ph, p["lag"], p["n_sub"], rng, p["R"], p["r"])
        return TrainingData(self.embed(th, ph), self.embed(th_y, ph_y), lag=p["lag"],
                            info={"n_sub": p["n_sub"]})

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform in angles on θ ∈ ±w, φ ∈ π/2 ± w."""
        w = self.params["init_half_width"]
        return self.embed(rng.uniform(-w, w, n), rng.uniform(np.pi / 2 - w, np.pi / 2 + w, n))

    def eigenvalues(self, r: int) -> np.ndarray:
        """Exact λ_1..λ_r of −Δ_T (see :func:`torus_spectrum`)."""
        return torus_spectrum(self.params["R"], self.params["r"], int(r))

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """Uniform w.r.t. area 4π² R r: −log(4π² R r)."""
        return np.full(x.shape[0], -np.log(4 * np.pi**2 * self.params["R"] * self.params["r"]))

    @property
    def manifold(self) -> Manifold:
        return Manifold("torus", self.project, self.tangent, 2)

    def phi_bin_probs(self, edges: np.ndarray) -> np.ndarray:
        """Exact φ-marginal mass of each bin: ∫ (R + r cos φ) dφ / (2π R)."""
        R, r = self.params["R"], self.params["r"]
        cdf = R * edges + r * np.sin(edges)
        return np.diff(cdf) / (2 * np.pi * R)

    def task_metrics(self):
        nb = self.params["n_bins"]
        edges = np.linspace(0.0, 2 * np.pi, nb + 1)
        p_phi = self.phi_bin_probs(edges)
        p_theta = np.full(nb, 1.0 / nb)

        def manifold_distance(particles: np.ndarray) -> float:
            return float(self.manifold.distance(particles).mean())

        def phi_tv(particles: np.ndarray) -> float:
            """TV between the φ-histogram and the exact marginal ∝ R + r cos φ."""
            return histogram_tv(self.angles(particles)[1], edges, p_phi)

        def theta_tv(particles: np.ndarray) -> float:
            """TV between the θ-histogram and the uniform marginal."""
            return histogram_tv(self.angles(particles)[0], edges, p_theta)

        return {"manifold_distance": manifold_distance, "phi_tv": phi_tv, "theta_tv": theta_tv}

"""Hamiltonian Monte Carlo (Duane, Kennedy, Pendleton & Roweth 1987; Neal 2011, "MCMC using
Hamiltonian dynamics", Handbook of MCMC ch. 5), one independent chain per particle.

Each step, for every particle at once: draw a momentum p₀ ~ N(0, I), integrate Hamilton's
equations for H(x, p) = −log π(x) + ‖p‖²/2 with L = ``n_leapfrog`` leapfrog steps of size
h = ``step`` (s = ∇ log π, the dataset's score),

    p ← p + (h/2) s(x),   x ← x + h p,   p ← p + (h/2) s(x)      (L times; inner half-kicks merged)

and accept the end point (x_L, p_L) with probability min(1, exp(H(x₀, p₀) − H(x_L, p_L))),
else keep x₀. π is exactly invariant for any h and L (the leapfrog map is volume preserving and
reversible under p → −p). With L = 1 this is MALA with step h²/2. Euclidean targets only.

Cost: L + 1 score evaluations per particle per step (the score at x₀ is recomputed, not cached
from the previous step) and two log-density evaluations.
"""

from __future__ import annotations

import numpy as np

from kswgd.params import Interval
from kswgd.sampler import Sampler


class HMC(Sampler):
    """HMC with the dataset's exact score and log-density; ``step`` = h, ``n_leapfrog`` = L.

    diagnostics(): ``acceptance`` (fraction accepted at the last step), ``acceptance_mean``
    (over all steps so far) and ``energy_error`` (mean |ΔH| over the particles at the last step,
    O(h²) at a fixed path length L h).
    """

    name = "hmc"
    description = "Hamiltonian Monte Carlo, leapfrog + Metropolis (exact score and log-density)"
    parameters = {"step": 0.1, "n_leapfrog": 10}
    constraints = {"step": Interval(float, 0, None, closed="neither"),
                   "n_leapfrog": Interval(int, 1, None)}
    uses = ("score", "log_density")
    data_kind = None

    def setup(self, dataset, train, rng):
        super().setup(dataset, train, rng)
        self.require(dataset, "score", "log_density", euclidean=True)
        self._score, self._logp = dataset.score, dataset.log_density
        self._accepted: list[float] = []
        self._energy_error = np.nan

    def leapfrog(self, x: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L leapfrog steps of size h from (x, p), all particles at once; returns (x_L, p_L)."""
        h, n = self.params["step"], self.params["n_leapfrog"]
        p = p + 0.5 * h * self._score(x)
        for i in range(n):
            x = x + h * p
            p = p + (h if i < n - 1 else 0.5 * h) * self._score(x)
        return x, p

    def step(self, x, rng):
        p0 = rng.standard_normal(x.shape)
        with np.errstate(over="ignore", invalid="ignore"):  # a blown-up trajectory is rejected
            y, p = self.leapfrog(x, p0)
            h0 = -self._logp(x) + 0.5 * np.sum(p0 * p0, axis=1)
            h1 = -self._logp(y) + 0.5 * np.sum(p * p, axis=1)
            log_alpha = np.where(np.isfinite(h1), h0 - h1, -np.inf)
        accept = np.log(rng.random(x.shape[0])) < log_alpha
        self._accepted.append(float(np.mean(accept)))
        self._energy_error = float(np.mean(np.abs(log_alpha)))
        return np.where(accept[:, None], y, x)

    def diagnostics(self):
        acc = self._accepted
        if not acc:
            return {"acceptance": np.nan, "acceptance_mean": np.nan, "energy_error": np.nan}
        return {"acceptance": acc[-1], "acceptance_mean": float(np.mean(acc)),
                "energy_error": self._energy_error}

    def grad_evals_per_step(self) -> int:
        """L + 1: the score at the start point and after each of the L position updates."""
        return self.params["n_leapfrog"] + 1

"""Standard normal N(0, I_d): the Ornstein–Uhlenbeck target, with a fully known spectrum.

V(x) = |x|²/2, score −x. Trajectory pairs use the exact OU transition at lag τ:
y = e^{−τ} x + sqrt(1 − e^{−2τ}) ξ, with x ~ π. Spectrum of L: sums of d non-negative integers
(λ = 1 with multiplicity d, then 2, ...). Initial particles: N(shift·1, scale² I).
"""

from __future__ import annotations

import numpy as np

from kswgd.core import exact
from kswgd.dataset import Dataset, TrainingData
from kswgd.helpers import kind_or_default
from kswgd.params import Interval


class Gaussian(Dataset):
    name = "gaussian"
    description = "standard normal in d dimensions; exact OU pairs"
    parameters = {"d": 2, "lag": 0.1, "init_shift": 2.0, "init_scale": 0.3}
    constraints = {
        "d": Interval(int, 1, None),
        "lag": Interval(float, 0, None, closed="neither"),
        "init_shift": Interval(float, None, None),
        "init_scale": Interval(float, 0, None, closed="neither"),
    }
    data_kinds = ("trajectories", "samples")
    default_sizes = {"n_train": 5000, "n_reference": 2000, "n_particles": 500}

    @property
    def dim(self) -> int:
        return self.params["d"]

    @property
    def exact_mean(self) -> np.ndarray:
        return np.zeros(self.dim)

    @property
    def exact_covariance(self) -> np.ndarray:
        return np.eye(self.dim)

    def draw(self, n, rng):
        return rng.standard_normal((n, self.dim))

    def train(self, n, rng, kind=None):
        kind = kind_or_default(kind, self.data_kinds, self.name)
        x = self.draw(n, rng)
        if kind == "samples":
            return TrainingData(x)
        tau = self.params["lag"]
        y = np.exp(-tau) * x + np.sqrt(-np.expm1(-2 * tau)) * rng.standard_normal(x.shape)
        return TrainingData(x, y, lag=tau)

    def initial(self, n, rng):
        p = self.params
        return p["init_shift"] + p["init_scale"] * rng.standard_normal((n, self.dim))

    def potential(self, x):
        return 0.5 * np.sum(x * x, axis=1)

    def score(self, x):
        return -x

    def log_density(self, x):
        return -0.5 * np.sum(x * x, axis=1) - 0.5 * self.dim * np.log(2 * np.pi)

    def exact_spectrum(self, rank, *, degree=8, n_basis=0, grid=0, tol=1e-10):
        """Tensor Hermite modes, λ_α = |α| = α_1 + ... + α_d (value s has multiplicity
        C(s + d − 1, d − 1)); closed form, the resolution arguments are not used."""
        return exact.hermite_spectrum(self.dim, rank)

    def eigenvalues(self, r):
        """λ of :meth:`exact_spectrum`."""
        return self.exact_spectrum(r).eigenvalues

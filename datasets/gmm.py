"""Gaussian mixtures: a ``ring`` of 8 or a ``grid`` of 25 equal-weight components N(μ_k, s² I_d).

The means lie in the first two coordinates (ring: radius ``radius`` at angles 2πk/8; grid:
{−2, −1, 0, 1, 2}² · ``spacing``), zero in the other d − 2. Exact draws, score and normalised
log density: log π(x) = logsumexp_k [−|x − μ_k|²/(2 s²)] − log K − (d/2) log(2π s²).
Static samples only. Initial particles: N(0, init_scale² I_d).
Declares its modes and weights (1/K each), so the registered metric ``mode_weight_error`` (TV
between the particles' shares of the nearest-mean cells and the weights; for exact draws the
leakage between cells is < 1e-3 at the defaults) applies. Task metric: ``missing_modes`` (share
of components with no particle within 3 s of the mean).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from kswgd.dataset import Dataset, TrainingData
from kswgd.helpers import kind_or_default
from kswgd.params import Choice, Interval


class GMM(Dataset):
    name = "gmm"
    description = "Gaussian mixture: ring of 8 or grid of 25 in d dimensions; exact"
    parameters = {"layout": "ring", "d": 2, "sigma": 0.3, "radius": 3.0, "spacing": 2.0,
                  "init_scale": 1.0}
    constraints = {
        "layout": Choice("ring", "grid"),
        "d": Interval(int, 2, None),
        "sigma": Interval(float, 0, None, closed="neither"),
        "radius": Interval(float, 0, None, closed="neither"),
        "spacing": Interval(float, 0, None, closed="neither"),
        "init_scale": Interval(float, 0, None, closed="neither"),
    }
    data_kinds = ("samples",)

    @property
    def dim(self) -> int:
        return self.params["d"]

    @property
    def means(self) -> np.ndarray:
        """Component means μ_k, (K, d)."""
        p = self.params
        if p["layout"] == "ring":
            a = 2 * np.pi * np.arange(8) / 8
            xy = p["radius"] * np.column_stack([np.cos(a), np.sin(a)])
        else:
            g = p["spacing"] * np.arange(-2, 3, dtype=float)
            xy = np.array([(u, v) for u in g for v in g])
        return np.hstack([xy, np.zeros((xy.shape[0], p["d"] - 2))])

    @property
    def modes(self) -> np.ndarray:
        """The components' means, each of weight 1/K (``mode_weights``)."""
        return self.means

    @property
    def mode_weights(self) -> np.ndarray:
        return np.full(self.means.shape[0], 1.0 / self.means.shape[0])

    @property
    def exact_mean(self) -> np.ndarray:
        """E x = (1/K) Σ_k μ_k."""
        return self.means.mean(axis=0)

    @property
    def exact_covariance(self) -> np.ndarray:
        """Cov x = s² I + (1/K) Σ_k (μ_k − m)(μ_k − m)ᵀ, m = E x."""
        c = self.means - self.exact_mean
        return self.params["sigma"] ** 2 * np.eye(self.dim) + c.T @ c / len(c)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        mu = self.means
        k = rng.integers(0, mu.shape[0], n)
        return mu[k] + self.params["sigma"] * rng.standard_normal((n, self.dim))

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        kind_or_default(kind, self.data_kinds, self.name)
        return TrainingData(self.draw(n, rng))

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.params["init_scale"] * rng.standard_normal((n, self.dim))

    def _logits(self, x: np.ndarray) -> np.ndarray:
        d2 = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        return -d2 / (2 * self.params["sigma"] ** 2)

    def log_density(self, x: np.ndarray) -> np.ndarray:
        s2 = self.params["sigma"] ** 2
        k = self.means.shape[0]
        norm = np.log(k) + 0.5 * self.dim * np.log(2 * np.pi * s2)
        return logsumexp(self._logits(x), axis=1) - norm

    def potential(self, x: np.ndarray) -> np.ndarray:
        """V = −log π (normalised)."""
        return -self.log_density(x)

    def score(self, x: np.ndarray) -> np.ndarray:
        """∇ log π = Σ_k r_k(x) (μ_k − x)/s², r = softmax of the component log-likelihoods."""
        lg = self._logits(x)
        r = np.exp(lg - logsumexp(lg, axis=1, keepdims=True))
        return (r @ self.means - x) / self.params["sigma"] ** 2

    def task_metrics(self):
        mu = self.means
        rad2 = (3 * self.params["sigma"]) ** 2

        def missing_modes(particles: np.ndarray) -> float:
            """Share of components with no particle within 3 s of their mean."""
            d2 = ((particles[:, None, :] - mu[None]) ** 2).sum(-1)
            return float(np.mean(d2.min(axis=0) > rad2))

        return {"missing_modes": missing_modes}

"""Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996), docs/design.md, 'Baselines'.

Proposal y = x + h s(x) + √(2h) ξ (one ULA step), accepted with probability

    α = min(1, π(y) q(x | y) / (π(x) q(y | x))),   log q(y | x) = −‖y − x − h s(x)‖² / (4h),

per particle, so π is exactly invariant (no step-size bias). Euclidean targets only.
"""

from __future__ import annotations

import numpy as np

from kswgd.params import Interval
from kswgd.sampler import Sampler


class MALA(Sampler):
    """MALA with the dataset's exact score and log-density; ``step`` = h.

    diagnostics(): ``acceptance`` (fraction accepted at the last step) and ``acceptance_mean``
    (over all steps so far).
    """

    name = "mala"
    description = "Metropolis-adjusted Langevin algorithm (exact score and log-density)"
    parameters = {"step": 0.01}
    constraints = {
        "step": Interval(float, 0, None, closed="neither"),
    }
    uses = ("score", "log_density")
    data_kind = None

    def setup(self, dataset, train, rng):
        super().setup(dataset, train, rng)
        self.require(dataset, "score", "log_density", euclidean=True)
        self._score, self._logp = dataset.score, dataset.log_density
        self._accepted: list[float] = []

    def step(self, x, rng):
        h = self.params["step"]
        sx = self._score(x)
        mean_x = x + h * sx
        y = mean_x + np.sqrt(2.0 * h) * rng.standard_normal(x.shape)
        mean_y = y + h * self._score(y)
        log_q_fwd = -np.sum((y - mean_x) ** 2, axis=1) / (4.0 * h)
        log_q_bwd = -np.sum((x - mean_y) ** 2, axis=1) / (4.0 * h)
        log_alpha = self._logp(y) - self._logp(x) + log_q_bwd - log_q_fwd
        accept = np.log(rng.random(x.shape[0])) < log_alpha
        self._accepted.append(float(np.mean(accept)))
        return np.where(accept[:, None], y, x)

    def diagnostics(self):
        acc = self._accepted
        if not acc:
            return {"acceptance": np.nan, "acceptance_mean": np.nan}
        return {"acceptance": acc[-1], "acceptance_mean": float(np.mean(acc))}

    def grad_evals_per_step(self) -> int:
        """Two: the score at x and at the proposal y (s(x) is not cached between steps)."""
        return 2

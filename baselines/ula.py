"""Unadjusted Langevin algorithm (Euler–Maruyama for dX = s(X) dt + √2 dW), docs/design.md.

    x ← x + h s(x) + √(2h) ξ,   ξ ~ N(0, I)

On a manifold the whole increment is projected onto the tangent space and the result retracted
(``kswgd.dataset.move``). ULA is biased at finite h: on N(0, 1) its stationary variance is
1 / (1 − h/2).
"""

from __future__ import annotations

import numpy as np

from kswgd.dataset import move
from kswgd.params import ConfigError, Interval
from kswgd.sampler import Sampler


class ULA(Sampler):
    """Unadjusted Langevin algorithm with the dataset's exact score; ``step`` = h."""

    name = "ula"
    description = "unadjusted Langevin algorithm (exact score)"
    parameters = {"step": 0.01}
    constraints = {
        "step": Interval(float, 0, None, closed="neither"),
    }
    uses = ("score",)
    data_kind = None

    def setup(self, dataset, train, rng):
        super().setup(dataset, train, rng)
        if dataset.score is None:
            raise ConfigError(f"ula needs the score of dataset {dataset.name!r}, which has none")
        self._score = dataset.score

    def step(self, x, rng):
        h = self.params["step"]
        dx = h * self._score(x) + np.sqrt(2.0 * h) * rng.standard_normal(x.shape)
        return move(x, dx, self.manifold)

    def grad_evals_per_step(self) -> int:
        """One score evaluation per particle per step."""
        return 1

"""asv benchmarks of the metrics (issue 5 targets on 2 cores, d = 2):

- ``mmd2`` on 10 000 × 10 000 points: < 2 s;
- ``w2`` (exact, ot.emd2) at 5 000 × 5 000 points: < 15 s;
- ``sw2`` with 500 projections at 100 000 × 100 000 points: < 5 s;
- ``score_samples`` (what ``kswgd score`` runs) of 5 000 points against the quadruple-well
  reference, default metrics + task metrics + copy, noise floor over 3 seeds: < 30 s
  (also "all": adds mmd2_ms and the Sinkhorn divergence).

Every ``time_*`` runs once per repeat (``number = 1``); ``setup`` makes the data and calls the
metric once on a small input, so the Numba JIT (or its cache load) is never timed.
"""

import numpy as np

from ._compat import kswgd_module, needs_api


def _gauss(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return shift + np.random.default_rng(seed).standard_normal((n, 2))


class _Once:
    number = 1
    repeat = 3
    rounds = 1
    warmup_time = 0
    timeout = 300


class MMD2(_Once):
    """Unbiased MMD² (fused Numba pair sums), 10 000 × 10 000 points, d = 2."""

    @needs_api
    def setup(self):
        metrics = kswgd_module("kswgd.core.metrics", "kswgd.metrics")

        self.mmd2 = metrics.mmd2
        self.x, self.y = _gauss(10_000, 0, 0.1), _gauss(10_000, 1)
        self.mmd2(self.x[:50], self.y[:50], bandwidth=1.0)  # JIT warm-up

    def time_mmd2_10k(self):
        self.mmd2(self.x, self.y, bandwidth=1.0)


class W2(_Once):
    """Exact W2 by ot.emd2 (numItermax 1e7, optimality checked), 5 000 × 5 000 points, d = 2."""

    repeat = 2

    @needs_api
    def setup(self):
        metrics = kswgd_module("kswgd.core.metrics", "kswgd.metrics")

        self.w2 = metrics.w2
        self.x, self.y = _gauss(5000, 0, 0.1), _gauss(5000, 1)

    def time_w2_5k(self):
        self.w2(self.x, self.y)


class SW2(_Once):
    """Sliced W2, 500 projections, 100 000 × 100 000 points, d = 2."""

    @needs_api
    def setup(self):
        metrics = kswgd_module("kswgd.core.metrics", "kswgd.metrics")

        self.sw2 = metrics.sw2
        self.x, self.y = _gauss(100_000, 0, 0.1), _gauss(100_000, 1)

    def time_sw2_100k(self):
        self.sw2(self.x, self.y, n_projections=500)


class ScoreQuadrupleWell(_Once):
    """``kswgd score`` of 5 000 points against the quadruple-well reference (library call)."""

    repeat = 2
    timeout = 600

    @needs_api
    def setup(self):
        metrics = kswgd_module("kswgd.core.metrics", "kswgd.metrics")
        from kswgd.registry import get_dataset
        score_samples = kswgd_module("kswgd.tools.scoring", "kswgd.scoring").score_samples

        self.score_samples = score_samples
        ds = get_dataset("quadruple_well")
        rng = np.random.default_rng(0)
        self.x = ds.draw(5000, rng) + 0.05
        self.train = ds.train(2000, rng, kind="samples").x
        metrics.ksd(self.x[:50], ds.score)  # JIT warm-up of every pair kernel
        metrics.mmd2(self.x[:50], self.x[50:100], bandwidth=1.0)
        metrics.energy(self.x[:50], self.x[50:100])

    def time_score_5k_default(self):
        self.score_samples(self.x, "quadruple_well", metric_names="default", train_x=self.train)

    def time_score_5k_all(self):
        self.score_samples(self.x, "quadruple_well", metric_names="all", train_x=self.train)

"""Oracle LAWGD: Laplacian-adjusted Wasserstein gradient descent (Chewi et al. 2020) with the
exact spectrum of the dataset's generator (docs/design.md, 'Baselines').

"Oracle" here means that the spectrum is not learnt: the ``oracle`` estimator reads the one
the dataset declares (``Dataset.exact_spectrum``, built by ``kswgd.core.exact``: Hermite /
Fourier modes or spherical harmonics where known, else a quadrature Galerkin against the known
density on a grid, d ≤ 2); particles follow the shared rank-r transport

    c_k = mean_j φ_k(x_j),   x_i ← x_i − h Σ_k (c_k / λ_k) ∇φ_k(x_i).

It uses the log-density (or the analytic spectrum), no training data.
"""

from __future__ import annotations

from kswgd.core.estimators import estimate
from kswgd.params import Interval
from kswgd.sampler import SpectralSampler


class LAWGD(SpectralSampler):
    """LAWGD with the exact spectrum of the target's Langevin generator (declared by the
    dataset, read through the ``oracle`` estimator)."""

    name = "lawgd"
    description = "oracle LAWGD: exact (or grid-Galerkin) generator spectrum + transport"
    parameters = {
        "step": 0.1,
        "rank": 20,
        "degree": 8,      # sphere: polynomial degree of the exact Galerkin
        "n_basis": 0,     # grid Galerkin: cosines per axis (0 = 160 in 1-D, 28 in 2-D)
        "grid": 0,        # grid Galerkin: midpoint nodes per axis (0 = 4000 in 1-D, 160 in 2-D)
    }
    constraints = {
        "step": Interval(float, 0, None, closed="neither"),
        "rank": Interval(int, 1, None),
        "degree": Interval(int, 1, None),
        "n_basis": Interval(int, 0, None),
        "grid": Interval(int, 0, None),
    }
    uses = ("log_density",)
    data_kind = None

    def fit_spectrum(self, dataset, train, rng):
        p = self.params
        return estimate("oracle", train, None, dataset=dataset, rank=p["rank"],
                        degree=p["degree"], n_basis=p["n_basis"], grid=p["grid"])

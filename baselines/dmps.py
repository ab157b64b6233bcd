"""DMPS: diffusion-map particle system (Li & Marzouk), docs/design.md, 'Baselines'.

The spectrum of the Langevin generator is estimated from static samples of π by diffusion maps
with α = ½ normalisation (estimator ``diffusion-map``: Gaussian kernel exp(−‖x − y‖²/(2s²)),
λ̂ = 2(1 − μ̂)/s², Nyström extension with its analytic gradient), then particles follow the
shared rank-r transport

    c_k = mean_j φ_k(x_j),   x_i ← x_i − h Σ_k (c_k / λ_k) ∇φ_k(x_i).

``bandwidth`` = 0 selects the rule s = σ̄ · n^{−1/(m+6)} (kswgd.core.bandwidths.diffusion_bandwidth).
"""

from __future__ import annotations

from kswgd.core.estimators import estimate
from kswgd.params import Choice, Interval
from kswgd.sampler import SpectralSampler


class DMPS(SpectralSampler):
    """Diffusion-map particle system: α = ½ diffusion-map spectrum + spectral transport."""

    name = "dmps"
    description = "diffusion-map particle system (alpha = 1/2 diffusion maps + transport)"
    parameters = {
        "step": 0.1,
        "rank": 20,
        "bandwidth": 0.0,     # kernel s; 0 = the rule s = σ̄ n^(-1/(m+6))
        "solver": "auto",     # partial eigensolver: auto | eigsh | subset
    }
    constraints = {
        "step": Interval(float, 0, None, closed="neither"),
        "rank": Interval(int, 1, None),
        "bandwidth": Interval(float, 0, None),
        "solver": Choice("auto", "eigsh", "subset"),
    }
    uses = ("samples",)
    data_kind = "samples"

    def fit_spectrum(self, dataset, train, rng):
        p = self.params
        return estimate("diffusion-map", train, None, rank=p["rank"], rng=rng,
                        bandwidth=p["bandwidth"], solver=p["solver"], manifold=dataset.manifold)

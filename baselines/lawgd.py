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
from kswgd.dataset import Dataset
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

    def cannot_run(self, dataset) -> str | None:
        """The oracle needs a spectrum the dataset can build: a closed form (``eigenvalues``),
        its own ``exact_spectrum``, or the default grid Galerkin of a known log-density in
        d ≤ 2 off a manifold; otherwise the pair is skipped (not every pilot failing)."""
        if dataset.eigenvalues(1) is not None:
            return None
        if type(dataset).exact_spectrum is not Dataset.exact_spectrum:
            return None
        if dataset.manifold is None and dataset.dim <= 2 and dataset.log_density is not None:
            return None
        return (f"lawgd needs the generator's exact spectrum: dataset {dataset.name!r} has no "
                f"closed form, and the grid Galerkin of its log-density needs d <= 2 off a "
                f"manifold (d = {dataset.dim})")

    def fit_spectrum(self, dataset, train, rng):
        p = self.params
        return estimate("oracle", train, None, dataset=dataset, rank=p["rank"],
                        degree=p["degree"], n_basis=p["n_basis"], grid=p["grid"])

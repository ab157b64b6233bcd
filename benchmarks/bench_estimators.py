"""asv benchmarks: the fit of each spectral estimator at two training sizes (OU, d = 2).

``setup`` draws the seeded training data and warms the Numba kernels on a tiny fit, so only the
fit itself is timed (``number = 1``).
"""

import numpy as np

from ._compat import kswgd_module, needs_api


def estimate(*args, **kwargs):
    fit = kswgd_module("kswgd.core.estimators", "kswgd.estimators").estimate

    return fit(*args, **kwargs)


def _data(n: int, kind: str):
    from kswgd.registry import get_dataset

    return get_dataset("gaussian", d=2, lag=0.1).train(n, np.random.default_rng(0), kind=kind)


class _Fit:
    number = 1
    repeat = 3
    warmup_time = 0
    param_names = ["n"]

    def _warm(self, estimator, kind, **kw):
        estimate(estimator, _data(200, kind), self._dic(), rank=5, **kw)


class EdmdFit(_Fit):
    """edmd, rbf dictionary with 400 random-landmark bumps, on n pairs."""

    params = [10_000, 50_000]

    def _dic(self):
        RBF = kswgd_module("kswgd.core.dictionaries", "kswgd.dictionaries").RBF

        return RBF(400, 0.4)

    @needs_api
    def setup(self, n):
        self.train = _data(n, "trajectories")
        self._warm("edmd", "trajectories")

    def time_edmd_rbf400(self, n):
        estimate("edmd", self.train, self._dic(), rank=10, rng=np.random.default_rng(1))


class DirichletFit(_Fit):
    """dirichlet, poly dictionary of degree 6, on n samples."""

    params = [10_000, 50_000]

    def _dic(self):
        Poly = kswgd_module("kswgd.core.dictionaries", "kswgd.dictionaries").Poly

        return Poly(6)

    @needs_api
    def setup(self, n):
        self.train = _data(n, "samples")
        self._warm("dirichlet", "samples")

    def time_dirichlet_poly6(self, n):
        estimate("dirichlet", self.train, self._dic(), rank=10)


class KdePairsFit(_Fit):
    """kde-pairs, rff dictionary with 300 features, on n samples (O(n²) KDE score)."""

    params = [2_000, 5_000]

    def _dic(self):
        RFF = kswgd_module("kswgd.core.dictionaries", "kswgd.dictionaries").RFF

        return RFF(300)

    @needs_api
    def setup(self, n):
        self.train = _data(n, "samples")
        self._warm("kde-pairs", "samples")

    def time_kde_pairs_rff300(self, n):
        estimate("kde-pairs", self.train, self._dic(), rank=10, rng=np.random.default_rng(1))


class DiffusionMapFit(_Fit):
    """diffusion-map on n samples (n × n kernel, partial eigensolver)."""

    params = [2_000, 5_000]

    def _dic(self):
        return None

    @needs_api
    def setup(self, n):
        self.train = _data(n, "samples")
        self._warm("diffusion-map", "samples")

    def time_diffusion_map(self, n):
        estimate("diffusion-map", self.train, None, rank=10, rng=np.random.default_rng(1))


class OracleFit(_Fit):
    """oracle: analytic Hermite (d = 2 OU) and the grid Galerkin (1-D Prinz, 2-D quadruple well)."""

    params = ["gaussian", "prinz", "quadruple_well"]
    param_names = ["system"]

    @needs_api
    def setup(self, system):
        from kswgd.registry import get_dataset

        self.ds = get_dataset(system)

    def time_oracle(self, system):
        estimate("oracle", None, None, dataset=self.ds, rank=10)

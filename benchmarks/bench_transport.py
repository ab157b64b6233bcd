"""asv benchmarks of the spectral transport: the time of one KSWGD / DMPS step at the paper's
quadruple-well size, and ``track_*`` sample-quality numbers so that a change of accuracy shows
up across commits next to a change of speed (asv treats track values as lower-is-better)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # see docs/performance.md, 'OMP_WAIT_POLICY'

import numpy as np  # noqa: E402

from kswgd.metrics import w2  # noqa: E402
from kswgd.registry import get_dataset, get_sampler  # noqa: E402

N_PARTICLES = 2627  # the paper's quadruple-well particle count


def _fitted(method: str, n_train: int, **params):
    ds = get_dataset("quadruple_well")
    sampler = get_sampler(method, **params)
    kind = "samples" if method == "dmps" else "trajectories"
    train = ds.train(n_train, np.random.default_rng(0), kind=kind)
    sampler.setup(ds, train, np.random.default_rng(1))
    x = ds.initial(N_PARTICLES, np.random.default_rng(2))
    sampler.step(x, None)  # warm-up: JIT compile or cache load
    return sampler, x


class KSWGDStep:
    """One KSWGD transport step: N = 2 627 particles, rbf dictionary with F bumps, rank 30."""

    params = [400, 1000]
    param_names = ["n_features"]
    number = 1
    repeat = 10
    timeout = 300

    def setup(self, n_features):
        self.sampler, self.x = _fitted("kswgd", 9999, step=0.1, rank=30,
                                       n_features=n_features)

    def time_kswgd_step(self, n_features):
        self.sampler.step(self.x, None)


class DMPSStep:
    """One DMPS transport step (Nyström extension over n samples), N = 2 627, rank 30."""

    params = [2000, 5000]
    param_names = ["n_samples"]
    number = 1
    repeat = 5
    timeout = 300

    def setup(self, n_samples):
        self.sampler, self.x = _fitted("dmps", n_samples, step=0.1, rank=30)

    def time_dmps_step(self, n_samples):
        self.sampler.step(self.x, None)


class Quality:
    """Final W2 divided by the noise floor (fresh draws of π, same size) for fixed configs."""

    number = 1
    repeat = 1
    timeout = 600

    def track_kswgd_ou_w2_over_floor(self):
        # 1-D OU, exact pairs, cubic dictionary (He_1..He_3 in its span): ≈ 1 when right
        ds = get_dataset("gaussian", d=1, lag=0.5)
        s = get_sampler("kswgd", step=0.5, rank=3, dictionary="poly", degree=3)
        s.setup(ds, ds.train(50_000, np.random.default_rng(0)), np.random.default_rng(1))
        x = 2.0 + 0.3 * np.random.default_rng(2).standard_normal((1000, 1))
        for _ in range(30):
            x = s.step(x, None)
        ref = ds.draw(2000, np.random.default_rng(3))
        return w2(x, ref) / w2(ds.draw(1000, np.random.default_rng(4)), ref)

    def track_kswgd_quadruple_well_w2_over_floor(self):
        # the paper's system at a reduced budget: rank 30, 400 bumps, 300 steps of h = 0.1
        ds = get_dataset("quadruple_well")
        s = get_sampler("kswgd", step=0.1, rank=30, n_features=400, bandwidth=0.35)
        s.setup(ds, ds.train(9999, np.random.default_rng(0)), np.random.default_rng(1))
        x = ds.initial(N_PARTICLES, np.random.default_rng(2))
        for _ in range(300):
            x = s.step(x, None)
        ref = ds.draw(2000, np.random.default_rng(3))
        return w2(x, ref) / w2(ds.draw(len(x), np.random.default_rng(4)), ref)

    track_kswgd_ou_w2_over_floor.unit = "W2 / floor"
    track_kswgd_quadruple_well_w2_over_floor.unit = "W2 / floor"

"""asv benchmarks: one step of the baseline samplers (SVGD at d = 2, ULA).

Each ``time_*`` times a single step (``number = 1``); ``setup`` builds the particles and runs
one step first, so the Numba JIT (or its cache load) is never timed.
"""

import numpy as np

from ._compat import needs_api


def _ready(name: str, n: int, d: int, **params):
    from kswgd.registry import get_dataset, get_sampler

    ds = get_dataset("gaussian", d=d)
    rng = np.random.default_rng(0)
    sampler = get_sampler(name, **params)
    sampler.setup(ds, None, rng)
    x = ds.initial(n, rng)
    sampler.step(x, rng)  # warm-up: JIT compile or cache load
    return sampler, x, rng


class SVGDStep:
    """One SVGD step (median bandwidth over all pairs + fused Numba direction), d = 2."""

    params = [1000, 5000]
    param_names = ["n"]
    number = 1
    timeout = 120

    @needs_api
    def setup(self, n):
        self.sampler, self.x, self.rng = _ready("svgd", n, 2, step=0.1)

    def time_svgd_step(self, n):
        self.sampler.step(self.x, self.rng)


class ULAStep:
    """One ULA step on N(0, I_2), N = 5 000 particles."""

    number = 1

    @needs_api
    def setup(self):
        self.sampler, self.x, self.rng = _ready("ula", 5000, 2, step=0.1)

    def time_ula_step(self):
        self.sampler.step(self.x, self.rng)

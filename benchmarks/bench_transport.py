"""asv benchmarks of the spectral transport: the time of one KSWGD / DMPS step at the paper's
quadruple-well size, and ``track_*`` sample-quality figures so that a change of accuracy shows up
across commits next to a change of speed.

asv treats every ``track_*`` value as lower-is-better, and every figure here is one: a final W2
over its noise floor (1 is as good as fresh exact draws of π) or a relative eigenvalue error. A
worse sampler or estimator therefore shows up in ``asv compare`` / ``asv continuous`` as an
increase, flagged like a slow-down.
"""

import numpy as np

from ._compat import kswgd_module, needs_api

N_PARTICLES = 2627  # the paper's quadruple-well particle count


def _fitted(method: str, n_train: int, n_particles: int = N_PARTICLES, **params):
    from kswgd.registry import get_dataset, get_sampler

    ds = get_dataset("quadruple_well")
    sampler = get_sampler(method, **params)
    kind = "samples" if method == "dmps" else "trajectories"
    train = ds.train(n_train, np.random.default_rng(0), kind=kind)
    sampler.setup(ds, train, np.random.default_rng(1))
    x = ds.initial(n_particles, np.random.default_rng(2))
    sampler.step(x, None)  # warm-up: JIT compile or cache load
    return ds, sampler, x


class KSWGDStep:
    """One KSWGD transport step: N = 2 627 particles, rbf dictionary with F bumps, rank 30."""

    params = [400, 1000]
    param_names = ["n_features"]
    number = 1
    repeat = 5
    timeout = 300

    @needs_api
    def setup(self, n_features):
        _, self.sampler, self.x = _fitted("kswgd", 3000, step=0.1, rank=30,
                                          n_features=n_features)

    def time_kswgd_step(self, n_features):
        self.sampler.step(self.x, None)


class DMPSStep:
    """One DMPS transport step (Nyström extension over n samples), N = 2 627, rank 30."""

    params = [2000, 9999]
    param_names = ["n_samples"]
    number = 1
    repeat = 3
    timeout = 300

    @needs_api
    def setup(self, n_samples):
        _, self.sampler, self.x = _fitted("dmps", n_samples, step=0.1, rank=30)

    def time_dmps_step(self, n_samples):
        self.sampler.step(self.x, None)


def _w2_over_floor(ds, x, seed: int = 3) -> float:
    w2 = kswgd_module("kswgd.core.metrics", "kswgd.metrics").w2

    ref = ds.draw(2000, np.random.default_rng(seed))
    return w2(x, ref) / w2(ds.draw(len(x), np.random.default_rng(seed + 1)), ref)


def _run(sampler, x, n_steps: int):
    for _ in range(n_steps):
        x = sampler.step(x, None)
    return x


class Quality:
    """Sample and spectrum quality of fixed, seeded, small configurations (lower is better)."""

    number = 1
    repeat = 1
    timeout = 600

    @needs_api
    def track_kswgd_ou_w2_over_floor(self):
        # 1-D OU, exact pairs, cubic dictionary (He_1..He_3 in its span): ≈ 1 when right
        from kswgd.registry import get_dataset, get_sampler

        ds = get_dataset("gaussian", d=1, lag=0.5)
        s = get_sampler("kswgd", step=0.5, rank=3, dictionary="poly", degree=3)
        s.setup(ds, ds.train(50_000, np.random.default_rng(0)), np.random.default_rng(1))
        x = 2.0 + 0.3 * np.random.default_rng(2).standard_normal((1000, 1))
        return _w2_over_floor(ds, _run(s, x, 30))

    @needs_api
    def track_kswgd_quadruple_well_w2_over_floor(self):
        # the paper's system at a small budget: rank 30, 400 bumps, 200 steps of h = 0.1
        ds, s, x = _fitted("kswgd", 5000, 1000, step=0.1, rank=30, n_features=400,
                           bandwidth=0.35)
        return _w2_over_floor(ds, _run(s, x, 200))

    @needs_api
    def track_dmps_quadruple_well_w2_over_floor(self):
        # diffusion maps on 2 000 samples, rank 20, 200 steps of h = 0.1
        ds, s, x = _fitted("dmps", 2000, 1000, step=0.1, rank=20)
        return _w2_over_floor(ds, _run(s, x, 200))

    @needs_api
    def track_svgd_quadruple_well_w2_over_floor(self):
        # exact score, median-heuristic kernel, 500 particles, 200 steps of h = 0.01
        from kswgd.registry import get_dataset, get_sampler

        ds = get_dataset("quadruple_well")
        s = get_sampler("svgd", step=0.01)
        s.setup(ds, None, np.random.default_rng(1))
        x = ds.initial(500, np.random.default_rng(2))
        return _w2_over_floor(ds, _run(s, x, 200))

    @needs_api
    def track_spectral_error_ou_edmd(self):
        # max relative error of λ_1..λ_5 = 1, 1, 2, 2, 2 of 2-D OU: edmd, rbf 300, 20 000 pairs
        dictionaries = kswgd_module("kswgd.core.dictionaries", "kswgd.dictionaries")
        make_dictionary = dictionaries.make_dictionary
        estimate = kswgd_module("kswgd.core.estimators", "kswgd.estimators").estimate
        from kswgd.registry import get_dataset

        ds = get_dataset("gaussian", d=2, lag=0.1)
        train = ds.train(20_000, np.random.default_rng(0), kind="trajectories")
        spec = estimate("edmd", train, make_dictionary("rbf", n_features=300), rank=5,
                        rng=np.random.default_rng(1))
        exact = np.array([1.0, 1.0, 2.0, 2.0, 2.0])
        return float(np.max(np.abs(spec.eigenvalues[:5] - exact) / exact))

    @needs_api
    def track_spectral_error_ou_diffusion_map(self):
        # the same for diffusion maps on 3 000 samples (default bandwidth rule)
        estimate = kswgd_module("kswgd.core.estimators", "kswgd.estimators").estimate
        from kswgd.registry import get_dataset

        ds = get_dataset("gaussian", d=2)
        train = ds.train(3000, np.random.default_rng(0), kind="samples")
        spec = estimate("diffusion-map", train, None, rank=5, rng=np.random.default_rng(1))
        exact = np.array([1.0, 1.0, 2.0, 2.0, 2.0])
        return float(np.max(np.abs(spec.eigenvalues[:5] - exact) / exact))

    for _name in list(locals()):
        if _name.startswith("track_"):
            locals()[_name].unit = ("relative error" if "spectral" in _name else "W2 / floor")
    del _name

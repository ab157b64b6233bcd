"""KSWGD, Koopman Spectral Wasserstein Gradient Descent (Xu et al., arXiv 2512.18837).

The method this project is built around, a plug-in like its baselines: it fits the spectrum of
the Langevin generator from trajectory pairs (or static samples) and moves the particles with
the rank-r spectral transport of :class:`kswgd.sampler.SpectralSampler`.
"""

from __future__ import annotations

import numpy as np

from kswgd.core.dictionaries import DICTIONARIES, LANDMARKS, RBF_RULES, make_dictionary
from kswgd.core.estimators import estimate, kde_langevin_pairs
from kswgd.core.spectrum import spectral_residual
from kswgd.dataset import move
from kswgd.params import Choice, Interval
from kswgd.sampler import SpectralSampler


def repulsion(x: np.ndarray, particles: np.ndarray) -> np.ndarray:
    """The kernel repulsion at x (n, d) from the particles p (N, d):

        R(x) = (1/N) Σ_j k(x, p_j) (x − p_j) / ℓ²,   k(x, p) = exp(−‖x − p‖² / (2ℓ²)),

    ℓ² = med² / (2 log(N + 1)), med the median distance between the particles (SVGD's median
    heuristic, in this kernel's convention). R = −(1/N) Σ_j ∇_x k(x, p_j) points away from
    crowded places: the repulsive half of an SVGD step.
    """
    from scipy.spatial.distance import cdist, pdist

    med = float(np.median(pdist(particles))) if len(particles) > 1 else 0.0
    ell2 = med**2 / (2.0 * np.log(len(particles) + 1.0)) if med > 0 else 1.0
    kmat = np.exp(-cdist(x, particles, "sqeuclidean") / (2.0 * ell2))
    return (kmat.sum(axis=1)[:, None] * x - kmat @ particles) / (len(particles) * ell2)
PAIR_ESTIMATORS = ("edmd", "kernel-edmd")


class KSWGD(SpectralSampler):
    """Koopman Spectral Wasserstein Gradient Descent (Xu et al., arXiv 2512.18837).

    Fits the Langevin generator's spectrum, then moves particles with the rank-r transport.
    Estimators: ``edmd`` (trajectory pairs, reversible whitened EDMD on a dictionary),
    ``kernel-edmd`` (trajectory pairs, the paper's kernel EDMD in sample space: Gaussian kernel
    sections at the training points, median bandwidth × ``bandwidth_factor``, RKHS ridge,
    ``normalize='diffusion-map'`` for the paper's variant), ``dirichlet`` and ``kde-pairs``
    (static samples). Every estimator drops localised modes (``max_localisation``; ≥ 1 turns
    the filter off) and ranks by ``rank`` or, with ``max_eigenvalue`` > 0, by the threshold
    λ̂ ≤ ``max_eigenvalue`` (``rank`` then caps the count; 0 = no cap).

    ``repulsion`` γ ≥ 0 (default 0: off) adds an SVGD-style kernel repulsion between the
    particles to the spectral drift (:meth:`velocity`).

    One default for every dataset (docs/design.md, 'KSWGD default'): ``edmd`` on 400 random rbf
    bumps of width σ = median pairwise distance, rank 20, whitening cut at tol = 1e-6; on a
    dataset with samples only, the pair estimators fit on synthetic Langevin pairs from the KDE
    score (exactly estimator ``kde-pairs``), so the data decide, never the dataset's name. Why:
    on validation seeds it had the best geometric-mean W2 / data floor over all 13 datasets
    (1.44, against 1.98 for the earlier Silverman-width, tol 1e-10 default) and the fewest
    health flags, and it removed the 1-D collapse (prinz 1.32 against 3.04).
    """

    name = "kswgd"
    description = "Koopman spectral WGD: EDMD spectrum of the Langevin generator + transport"
    parameters = {
        "step": 0.1,
        "rank": 20,
        "estimator": "edmd",
        "dictionary": "rbf",
        "n_features": 400,
        "bandwidth": 0.0,      # rbf σ / kernel ε; 0 = the documented rule of each
        "bandwidth_rule": "median",  # rbf σ when bandwidth = 0: median | silverman
        "degree": 6,           # poly total degree
        "landmarks": "random",  # rbf landmark rule: random | kmeans | farthest | kmeans++
        "tol": 1e-6,           # whitening: drop directions with w ≤ tol · max w
        "ridge": 0.0,          # kernel-edmd: 0 = its default RKHS ridge
        "bandwidth_factor": 0.0,  # kernel-edmd ε / median-rule rbf σ = factor × median distance;
                                  # 0 = the default factor 1
        "normalize": "none",   # kernel-edmd: none | diffusion-map (the paper's variant)
        "max_localisation": 0.7,
        "max_eigenvalue": 0.0,
        "repulsion": 0.0,      # γ of the opt-in particle repulsion; 0 = off
    }
    constraints = {
        "step": Interval(float, 0, None, closed="neither"),
        "rank": Interval(int, 0, None),
        "estimator": Choice("edmd", "kernel-edmd", "dirichlet", "kde-pairs"),
        "dictionary": Choice(*DICTIONARIES),
        "n_features": Interval(int, 1, None),
        "bandwidth": Interval(float, 0, None),
        "bandwidth_rule": Choice(*RBF_RULES),
        "degree": Interval(int, 1, None),
        "landmarks": Choice(*LANDMARKS),
        "tol": Interval(float, 0, None, closed="neither"),
        "ridge": Interval(float, 0, None),
        "bandwidth_factor": Interval(float, 0, None),
        "normalize": Choice("none", "diffusion-map"),
        "max_localisation": Interval(float, 0, None, closed="neither"),
        "max_eigenvalue": Interval(float, 0, None),
        "repulsion": Interval(float, 0, None),
    }
    uses = ("trajectories", "samples")
    data_kind = "any"

    def __init__(self, **params):
        super().__init__(**params)
        if self.params["estimator"] not in PAIR_ESTIMATORS:
            self.uses = ("samples",)
            self.data_kind = "samples"

    def fit_spectrum(self, dataset, train, rng):
        p = self.params
        made = None
        if p["estimator"] in PAIR_ESTIMATORS and not train.has_pairs:
            # samples only: synthetic Langevin pairs from the KDE score (estimator kde-pairs),
            # then the same pair estimator; the data decides, never the dataset's name
            train, made = kde_langevin_pairs(train, rng, manifold=dataset.manifold)
        spec = self._fit(dataset, train, rng)
        if made is not None:
            spec.info.update(pairs="kde-pairs", **{f"pairs_{k}": v for k, v in made.items()})
        return spec

    def _fit(self, dataset, train, rng):
        p = self.params
        common = {"rank": p["rank"], "rng": rng, "tol": p["tol"],
                  "max_localisation": p["max_localisation"],
                  "max_eigenvalue": p["max_eigenvalue"]}
        if p["estimator"] != "edmd":      # edmd works in the ambient coordinates only
            common["manifold"] = dataset.manifold
        if p["estimator"] == "kernel-edmd":
            extra = {k: p[k] for k in ("ridge", "bandwidth_factor", "bandwidth") if p[k] > 0}
            return estimate("kernel-edmd", train, None, normalize=p["normalize"], **extra,
                            **common)
        dictionary = make_dictionary(
            p["dictionary"], n_features=p["n_features"], bandwidth=p["bandwidth"],
            degree=p["degree"], landmarks=p["landmarks"], bandwidth_rule=p["bandwidth_rule"],
            bandwidth_factor=p["bandwidth_factor"] or 1.0,
        )
        return estimate(p["estimator"], train, dictionary, ridge=p["ridge"], **common)

    def velocity(self, x: np.ndarray, particles: np.ndarray | None = None) -> np.ndarray:
        """The step direction per unit step at x (n, d) for the cloud ``particles`` (N, d;
        default x itself): a step is x ← move(x, h · velocity(x)), with

            velocity(x) = −Σ_k (c_k / λ_k) ∇φ_k(x) + γ R(x),   c_k = (1/N) Σ_j φ_k(p_j),

        R the particle repulsion (:func:`repulsion`, only when ``repulsion`` γ > 0). Off the
        training data the fitted ∇φ_k, hence the spectral part, tends to zero."""
        x = np.asarray(x, dtype=np.float64)
        p = x if particles is None else np.asarray(particles, dtype=np.float64)
        c = self.spectrum.phi(p).mean(axis=0)
        v = -self.spectrum.weighted_gradient(x, c / self.spectrum.eigenvalues)
        if self.params["repulsion"] > 0:
            v = v + self.params["repulsion"] * repulsion(x, p)
        return v

    def step(self, x, rng):
        gamma = self.params["repulsion"]
        if gamma == 0:
            return super().step(x, rng)
        v, c = self.spectrum.transport_velocity(x)
        self._residuals.append(spectral_residual(c))
        return move(x, self.params["step"] * (gamma * repulsion(x, x) - v), self.manifold)

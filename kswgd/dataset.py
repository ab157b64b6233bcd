"""The dataset interface (docs/design.md, 'Datasets'): what every plug-in in ``datasets/`` provides.

A dataset is a target law π with its data. A plug-in module in ``datasets/`` defines one or
more subclasses of :class:`Dataset`; the registry (``kswgd.registry``) finds them by ``name``.
docs/plugins.md has a complete example and every member; tests/test_contract.py checks them.

Required: ``name``, ``description``, the property ``dim``, ``draw`` (independent draws of π,
used for the held-out reference set and for the noise floors), ``train`` (training data: static
samples and/or trajectory pairs; an unknown ``kind`` raises ConfigError) and ``initial`` (the
initial particle law). Optional, ``None`` when unknown: ``score``, ``log_density``,
``potential``, ``eigenvalues`` and ``manifold``. Task metrics are returned by ``task_metrics``.

The spectrum of L is declared in one place, ``exact_spectrum`` (eigenvalues and eigenfunctions,
built from ``kswgd.core.exact``), which the ``oracle`` estimator reads; ``eigenvalues`` gives
the values alone where they are known (``kswgd spectra`` compares estimators with them), and a
dataset whose ``exact_spectrum`` is in closed form returns its eigenvalues from there.

Random numbers always come from the ``numpy.random.Generator`` passed in, so the runner owns
every seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kswgd.core import exact
from kswgd.core.data import Manifold, TrainingData, move
from kswgd.core.spectrum import Spectrum
from kswgd.params import resolve_params

__all__ = ["Dataset", "Manifold", "TrainingData", "move"]


class Dataset:
    """Base class of a dataset plug-in. Subclasses set the class attributes and methods below.

    Class attributes
    ----------------
    name : registry name (``kswgd list`` shows it).
    description : one line, shown by ``kswgd list``.
    parameters : dict of defaults; every accepted parameter must appear here.
    constraints : the valid values of each parameter (kswgd.params: Interval, Choice, ...),
        checked with every value given before anything runs.
    data_kinds : subset of ("trajectories", "samples") that ``train`` can produce.
    default_sizes : n_train, n_reference, n_particles shown by ``kswgd datasets``.
    reference_note : how ``draw`` produces draws of π ("exact" or a description).
    well_centres : (K, d) centres of the metastable wells, or None; the paper's ``coverage``
        metric counts particles near them.
    exact_mean, exact_covariance : E_π x (d,) and Σ_π (d, d) when known exactly, else None
        (``mean_error`` and ``cov_error`` then use the reference set's moments).
    modes, mode_weights : (K, d) mode locations and their exact weights (summing to 1), or
        None; ``mode_weight_error`` compares the particles' nearest-mode shares with them.
    """

    name: str = ""
    description: str = ""
    parameters: dict = {}
    constraints: dict = {}
    data_kinds: tuple[str, ...] = ("samples",)
    reference_note: str = "exact independent draws"
    default_sizes: dict = {"n_train": 2000, "n_reference": 2000, "n_particles": 500}
    well_centres: np.ndarray | None = None
    exact_mean: np.ndarray | None = None
    exact_covariance: np.ndarray | None = None
    modes: np.ndarray | None = None
    mode_weights: np.ndarray | None = None

    # Optional knowledge; subclasses override with methods (``None`` means unknown).
    score: Callable[[np.ndarray], np.ndarray] | None = None
    log_density: Callable[[np.ndarray], np.ndarray] | None = None
    potential: Callable[[np.ndarray], np.ndarray] | None = None

    def __init__(self, **params):
        self.params = resolve_params(self.parameters, params, f"dataset {self.name!r}",
                                     self.constraints)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    @property
    def dim(self) -> int:
        """Ambient dimension d of the particles (required: subclasses must define it)."""
        raise NotImplementedError

    @property
    def manifold(self) -> Manifold | None:
        """The embedded manifold π lives on, or None (Euclidean)."""
        return None

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n independent draws of π, shape (n, d)."""
        raise NotImplementedError

    def train(self, n: int, rng: np.random.Generator, kind: str | None = None) -> TrainingData:
        """Training data of size n. ``kind`` picks "trajectories" or "samples" (None: the first
        of ``data_kinds``); an unknown kind raises ConfigError (``helpers.kind_or_default``)."""
        raise NotImplementedError

    def initial(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of the initial particle law, shape (n, d)."""
        raise NotImplementedError

    def exact_spectrum(self, rank: int, *, degree: int = 8, n_basis: int = 0, grid: int = 0,
                       tol: float = 1e-10) -> Spectrum | None:
        """The first ``rank`` eigenpairs of L = −(Δ − ∇V·∇) (constant mode excluded, φ_k
        normalised in L²(π)), or None when the dataset cannot construct them.

        Default: for a known log-density in d ≤ 2 without a manifold, the Galerkin of the
        Dirichlet form on ``n_basis`` cosines per axis with a ``grid``-point midpoint rule per
        axis (:func:`kswgd.core.exact.grid_galerkin_spectrum`); None otherwise. ``degree``
        is the resolution of a polynomial Galerkin (the sphere's), ``tol`` the whitening
        threshold of a Galerkin; a closed-form spectrum has no use for either.
        """
        if self.manifold is not None or self.dim > 2 or self.log_density is None:
            return None
        return exact.grid_galerkin_spectrum(self.log_density, self.dim, rank, n_basis, grid, tol)

    def eigenvalues(self, r: int) -> np.ndarray | None:
        """λ_1..λ_r of L = −(Δ − ∇V·∇) (constant mode excluded) where known in closed form or
        by a converged numerical solve that the dataset documents; None if unknown."""
        return None

    def task_metrics(self) -> dict[str, Callable[[np.ndarray], float]]:
        """Named task metrics f(particles) -> float (lower is better)."""
        return {}

    def known(self) -> list[str]:
        """What is known of π: subset of score, log_density, spectrum, manifold."""
        out = [k for k in ("score", "log_density") if getattr(self, k) is not None]
        if self.eigenvalues(1) is not None:
            out.append("spectrum")
        if self.manifold is not None:
            out.append("manifold")
        return out

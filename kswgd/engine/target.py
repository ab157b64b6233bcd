"""One target law's data, and the one seed recipe every command uses.

A :class:`Target` is the dataset instance, the reference set, the metric contexts, the training
data and initial particles of each repetition, and the health index of one target law at one
reference size and root seed. The runner, ``kswgd score`` and ``kswgd report`` all build it the
same way, so every command sees the same reference set and training data (``kswgd score --run``
reproduces a stored run's numbers exactly).

Seeds derive from the suite's root seed with ``numpy.random.SeedSequence``, keyed by the
target law (reference set), target law + repetition (training data and initial particles: the
same for every method) and target law + method + repetition (the sampler's own randomness).
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.spatial import cKDTree

from kswgd import registry
from kswgd.core.health import training_index
from kswgd.core.metrics.context import MetricContext
from kswgd.dataset import TrainingData
from kswgd.engine import store
from kswgd.engine.spec import RunSpec, law_key
from kswgd.params import ConfigError


def _key(*parts) -> list[int]:
    """Stable integer spawn key from names and numbers (independent of PYTHONHASHSEED)."""
    return [int(hashlib.sha256(str(p).encode()).hexdigest()[:8], 16) for p in parts]


def rng_for(root_seed: int, *parts) -> np.random.Generator:
    """Generator seeded by SeedSequence(root_seed, spawn_key=key(parts))."""
    return np.random.default_rng(np.random.SeedSequence(root_seed, spawn_key=_key(*parts)))


class Target:
    """The dataset instance, reference set, metric contexts, training data and health index of
    one target law (dataset and parameters) at one reference size and root seed. Built from
    plain values, so a worker or ``kswgd score`` can rebuild it; cached per process by
    :func:`target_for`.

    Reference set: ``dataset.draw(n_reference, rng_for(root_seed, law_key, "reference"))``;
    metric seed: ``_key(root_seed, law_key, "metrics")[0]``. Every stream is keyed by the law,
    so none coincides with ``kswgd sample``'s unkeyed ``SeedSequence(seed)`` draws.
    """

    def __init__(self, dataset: str, params: dict, n_reference: int, root_seed: int):
        self.dataset = registry.get_dataset(dataset, **params)
        if int(n_reference) < 2:
            raise ConfigError(f"the reference set needs at least 2 points, got {n_reference}")
        self.key, self.seed = law_key(dataset, self.dataset.params), int(root_seed)
        ref = self.dataset.draw(int(n_reference), rng_for(self.seed, self.key, "reference"))
        self.metric_seed = _key(self.seed, self.key, "metrics")[0]
        self.ctx = MetricContext(ref, dataset=self.dataset, seed=self.metric_seed)
        self.reference_hash = store.array_hash(ref)
        self.extent = float(np.max(np.abs(ref))) + 1.0
        self._pilot_ref: np.ndarray | None = None
        self._train: dict[tuple[int, int], TrainingData] = {}
        self._health: dict[tuple[int, int], tuple[cKDTree, float]] = {}

    def context(self, pilot: bool, train_x: np.ndarray | None = None) -> MetricContext:
        """The metric context: the held-out reference, or for step-size pilots an independent
        pilot reference of the same size (same MMD bandwidth), so tuning never sees the
        reference the leaderboard is scored on. ``train_x`` serves the ``copy`` metric."""
        if not pilot and train_x is None:
            return self.ctx
        ref = self.ctx.reference
        if pilot:
            if self._pilot_ref is None:
                self._pilot_ref = self.dataset.draw(len(ref), rng_for(self.seed, self.key,
                                                                      "pilot-ref"))
            ref = self._pilot_ref
        return MetricContext(ref, dataset=self.dataset, seed=self.metric_seed,
                             bandwidth=self.ctx.bandwidth, train_x=train_x)

    def training(self, rep: int, n: int) -> TrainingData:
        """The repetition's training data in the dataset's primary kind, identical for every
        method (seeded by target law and repetition)."""
        if (rep, n) not in self._train:
            self._train[(rep, n)] = self.dataset.train(
                n, rng_for(self.seed, self.key, rep, "train"), kind=self.dataset.data_kinds[0])
        return self._train[(rep, n)]

    def data_for(self, kind: str | None, rep: int, n: int,
                 data: TrainingData | None = None) -> TrainingData | None:
        """What a sampler of ``data_kind`` gets: nothing, the pairs, or the x of the same
        pairs for a samples-only method; of the repetition's training data or of ``data``
        (a pilot's fit part)."""
        if kind is None:
            return None
        data = self.training(rep, n) if data is None else data
        if kind == "samples" and data.has_pairs:
            return TrainingData(data.x, info=dict(data.info))
        if kind == "trajectories" and not data.has_pairs:
            raise ConfigError(f"dataset {self.dataset.name!r} has no trajectories")
        return data

    def initial(self, rep: int, n: int) -> np.ndarray:
        return self.dataset.initial(n, rng_for(self.seed, self.key, rep, "init"))

    def health_index(self, rep: int, n: int) -> tuple[cKDTree, float]:
        """k-d tree and median nearest-neighbour spacing of the repetition's training points
        (:func:`kswgd.core.health.training_index`)."""
        if (rep, n) not in self._health:
            self._health[(rep, n)] = training_index(self.training(rep, n).x)
        return self._health[(rep, n)]


_TARGETS: dict[tuple, Target] = {}


def target_for(spec: RunSpec) -> Target:
    """The (cached) target of a spec's target law; keeps the two most recent."""
    key = (spec.dataset_key, spec.n_reference, spec.root_seed)
    if key not in _TARGETS:
        while len(_TARGETS) >= 2:
            _TARGETS.pop(next(iter(_TARGETS)))
        _TARGETS[key] = Target(spec.dataset, spec.dataset_kw, spec.n_reference, spec.root_seed)
    return _TARGETS[key]

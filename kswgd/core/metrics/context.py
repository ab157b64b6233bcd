"""Evaluating the registered metrics for one dataset: the context, evaluation, noise floors.

A :class:`MetricContext` is everything a metric may need about one dataset (reference set,
bandwidth, training points, seed), computed once. :func:`evaluate` computes named metrics of
particles; :func:`noise_floor` the same metrics for fresh independent draws of π of the same size
("close to π" means "comparable to the floor"); :func:`metric_info` the parameters a value
depends on. Which reference set and seed a run or ``kswgd score`` uses is decided by
:class:`kswgd.engine.target.Target`, never here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kswgd.core.metrics import METRICS, unavailable
from kswgd.core.metrics.formulas import (
    _KEY_FLOOR,
    SW2_PROJECTIONS,
    W2_MAX_POINTS,
    as_points,
    mmd_bandwidth,
)
from kswgd.params import ConfigError, choice_error


@dataclass
class MetricContext:
    """Everything a metric may need about one dataset, computed once.

    reference : (n_ref, d) held-out draws of π (never used for fitting).
    dataset   : the :class:`kswgd.dataset.Dataset` (score, draws, task metrics), or None.
    train_x   : (M, d) training points, for ``copy``; or None.
    bandwidth : MMD bandwidth; None means :func:`mmd_bandwidth` of the reference (cached here).
    seed      : seed of the metrics' own randomness (subsamples, projections, fresh draws).
    """

    reference: np.ndarray
    dataset: Any = None
    train_x: np.ndarray | None = None
    bandwidth: float | None = None
    seed: int = 0
    w2_max_points: int = W2_MAX_POINTS
    sw2_projections: int = SW2_PROJECTIONS
    _task: dict = field(default_factory=dict, init=False, repr=False)
    _floors: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        dim = self.dataset.dim if self.dataset is not None else None
        self.reference = as_points(self.reference, "reference", dim=dim)
        if self.train_x is not None:
            self.train_x = as_points(self.train_x, "training set", dim=self.dim)
        if self.bandwidth is None:
            self.bandwidth = mmd_bandwidth(self.reference, seed=self.seed)
        if self.dataset is not None:
            self._task = dict(self.dataset.task_metrics())

    @property
    def dim(self) -> int:
        return int(self.reference.shape[1])

    @property
    def task_metrics(self) -> dict[str, Callable[[np.ndarray], float]]:
        return self._task

    @property
    def target_mean(self) -> np.ndarray:
        """E_π x: the dataset's ``exact_mean`` when declared, else the reference set's mean."""
        exact = getattr(self.dataset, "exact_mean", None)
        return self.reference.mean(axis=0) if exact is None else np.asarray(exact, float)

    @property
    def target_covariance(self) -> np.ndarray:
        """Σ_π: the dataset's ``exact_covariance`` when declared, else the reference set's
        covariance (ddof = 1)."""
        exact = getattr(self.dataset, "exact_covariance", None)
        if exact is None:
            return np.atleast_2d(np.cov(self.reference, rowvar=False, ddof=1))
        return np.asarray(exact, float)

    def fresh(self, n: int, key: int) -> np.ndarray:
        """n fresh draws of π, independent of the reference (seeded by seed and key)."""
        if self.dataset is None:
            raise ConfigError("fresh draws of π need a dataset in the MetricContext")
        rng = np.random.default_rng([self.seed, _KEY_FLOOR, int(key), int(n)])
        return as_points(self.dataset.draw(int(n), rng), "dataset draws", dim=self.dim)


def _lookup(name: str, ctx: MetricContext) -> Callable[[np.ndarray], float]:
    if name in METRICS:
        why = unavailable(name, ctx.dataset, has_train=ctx.train_x is not None)
        if why is not None:
            raise ConfigError(why)
        fn = METRICS[name].fn
        return lambda x: fn(x, ctx)
    if name in ctx.task_metrics:
        return ctx.task_metrics[name]
    raise choice_error("metric", name, list(METRICS) + list(ctx.task_metrics))


def evaluate(names: Sequence[str], x, ctx: MetricContext) -> dict[str, float]:
    """Each named metric of the particles x (n, d) against ``ctx``: {name: value}.

    Names are registered metrics or the dataset's task metrics; unknown names, metrics the
    context cannot serve, a wrong shape or dimension and NaN/inf entries raise ConfigError
    before anything is computed.
    """
    x = as_points(x, "particles", dim=ctx.dim)
    fns = {n: _lookup(n, ctx) for n in names}
    return {n: float(fn(x)) for n, fn in fns.items()}


def noise_floor(
    names: Sequence[str], ctx: MetricContext, n: int, n_seeds: int = 3, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Noise floor: each metric for fresh independent draws ``ctx.dataset.draw(n, rng)`` of π
    (same size n as the particles) against the same reference, over ``n_seeds`` seeds:
    {name: (mean, std)} (std with ddof = 0). Results are cached in ``ctx`` by (name, n, seeds).
    """
    if ctx.dataset is None:
        raise ConfigError("a noise floor needs a dataset in the MetricContext (fresh draws of π)")
    fns = {name: _lookup(name, ctx) for name in names}
    todo = [m for m in names if (m, n, n_seeds, seed) not in ctx._floors]
    if todo:
        values: dict[str, list[float]] = {m: [] for m in todo}
        for k in range(n_seeds):
            draws = ctx.fresh(n, key=1000 * (seed + 1) + k)
            for m in todo:
                values[m].append(float(fns[m](draws)))
        for m in todo:
            v = np.asarray(values[m])
            ctx._floors[(m, n, n_seeds, seed)] = (float(v.mean()), float(v.std()))
    return {m: ctx._floors[(m, n, n_seeds, seed)] for m in names}


def metric_info(name: str, ctx: MetricContext, n: int | None = None) -> dict[str, Any]:
    """The parameters a metric value depends on, to be stored beside it (n = particle count):
    the seed and reference size, plus the record's own (:attr:`Metric.info`)."""
    info: dict[str, Any] = {"seed": ctx.seed, "n_reference": int(ctx.reference.shape[0])}
    if name in METRICS:
        info.update(METRICS[name].info(ctx, n))
    else:
        info["task_metric"] = name in ctx.task_metrics
    return info

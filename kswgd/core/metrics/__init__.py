"""What each metric is: one frozen :class:`Metric` record per metric, registered in :data:`METRICS`
(docs/design.md, 'Metrics and floors').

A record holds everything the rest of the package knows about a metric: its function
``f(x, ctx) -> float`` (``ctx`` a :class:`~kswgd.core.metrics.context.MetricContext`), the label
and meaning the leaderboard prints, whether it is a signed (unbiased) estimate, its direction,
whether it is computed by default, whether it is one of the paper's definitions, what it needs of
the dataset, and the parameters its value depends on (stored beside it). The planner, the runner,
``kswgd score``, the leaderboard, the plots and the report all read these records; adding a
metric is one :func:`register` call. :func:`expand` is the one place where "default" and "all"
become names.

This module is light (no numpy, SciPy or POT at import): the records' functions import the
formulas (:mod:`kswgd.core.metrics.formulas`) when first called. The formulas, the context, the
evaluation and the noise floors are also reachable as attributes of this module
(``kswgd.core.metrics.w2``, ``.MetricContext``, ``.evaluate``), loaded on first access.

Metrics
-------
w2        exact W2 (POT network simplex on the squared Euclidean cost), not squared.
sw2       sliced W2, fixed seeded projections.
mmd2      unbiased MMD² with a Gaussian kernel, bandwidth from the reference (median rule).
mmd2_ms   the same with the sum of kernels at bandwidths s·(0.5, 1, 2).
energy    energy distance (U-statistic), the MMD² of the distance kernel.
ksd       unbiased KSD² with the IMQ kernel; needs the dataset's score.
sinkhorn  debiased Sinkhorn divergence (POT), optional and slow.
copy      mean nearest-training-point distance of the particles / same for fresh draws of π.
mean_error, cov_error  errors of the first two moments (exact moments when the dataset
          declares them, else the reference set's).
mode_weight_error      TV between the particles' mode shares and the declared mode weights.
paper_mmd, paper_sw, coverage  the paper's definitions, beside ours, never ranked.
plus the dataset's own task metrics (``Dataset.task_metrics()``), e.g. ``well_mass_error``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kswgd.params import ConfigError, choice_error


def _no_info(ctx, n: int | None) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Metric:
    """Everything known about one metric.

    fn      : f(x, ctx) -> float, x the (n, d) particles, ctx a MetricContext.
    meaning : one line for the leaderboard's legend.
    label   : column title in tables (e.g. "MMD²"); empty: the name.
    signed  : an unbiased U-statistic: ≈ 0 with either sign for exact draws of π, so it is
              compared by difference, never by ratio or on a log axis.
    higher_is_better : the direction (False for every metric but the paper's coverage).
    default : computed when a suite or ``kswgd score`` asks for "default".
    paper   : one of the paper's definitions (reported beside ours, never ranked).
    needs   : what it needs of the dataset, keys of :data:`NEEDS`.
    info    : (ctx, n) -> the parameters its value depends on, stored beside it.
    """

    name: str
    fn: Callable[[Any, Any], float]
    meaning: str
    label: str = ""
    signed: bool = False
    higher_is_better: bool = False
    default: bool = False
    paper: bool = False
    needs: frozenset[str] = frozenset()
    info: Callable[[Any, int | None], dict[str, Any]] = _no_info


#: Registry: metric name -> record, in the order "all" lists them (the first default ranks).
METRICS: dict[str, Metric] = {}

#: What a metric may need: key -> (test on (dataset, has training points), what is missing).
NEEDS: dict[str, tuple[Callable[[Any, bool], bool], str]] = {
    "score": (lambda ds, train: getattr(ds, "score", None) is not None,
              "a dataset with a known score"),
    "train_x": (lambda ds, train: train and ds is not None, "the training points"),
    "well_centres": (lambda ds, train: getattr(ds, "well_centres", None) is not None,
                     "a dataset that declares well_centres (e.g. quadruple_well)"),
    "modes": (lambda ds, train: getattr(ds, "modes", None) is not None,
              "a dataset that declares modes and mode_weights (e.g. gmm)"),
}


def register(metric: Metric) -> Metric:
    """Add a record to :data:`METRICS` (a name already taken is a ConfigError)."""
    if metric.name in METRICS:
        raise ConfigError(f"metric {metric.name!r} is already registered")
    unknown = set(metric.needs) - set(NEEDS)
    if unknown:
        raise choice_error(f"need of metric {metric.name!r}", sorted(unknown)[0], NEEDS)
    METRICS[metric.name] = metric
    return metric


def label(name: str) -> str:
    """The table label of a metric (its name for a task metric)."""
    return (METRICS[name].label if name in METRICS else "") or name


def signed(name: str) -> bool:
    """Whether a metric is an unbiased estimate that may be negative (False for task metrics)."""
    return name in METRICS and METRICS[name].signed


def unavailable(name: str, dataset, has_train: bool = True) -> str | None:
    """Why the registered metric ``name`` cannot be computed for ``dataset`` (one line), or
    None. The one rule used by metric contexts, ``kswgd score`` and the runner's plan."""
    for need in sorted(METRICS[name].needs):
        test, what = NEEDS[need]
        if not test(dataset, has_train):
            return f"metric {name!r} needs {what}"
    return None


def expand(names: Sequence[str] | str | None, dataset, *, has_train: bool = True,
           others: Iterable[str] = ()) -> tuple[list[str], dict[str, str]]:
    """The metric names a request stands for, and those that cannot be computed here with the
    reason: (names, {name: reason}).

    ``names`` is a list or a comma-separated string; None means "default". "default" gives the
    default records this dataset supports, "all" every supported record; both are followed by
    the dataset's task metrics. An explicit name that cannot be computed here (see
    :func:`unavailable`), or a task metric of another dataset (``others``), is returned among
    the skipped; a name known nowhere is a ConfigError.
    """
    if names is None:
        names = "default"
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    task = list(dataset.task_metrics()) if dataset is not None else []
    known = set(METRICS) | set(task) | set(others)
    out: list[str] = []
    skipped: dict[str, str] = {}
    for name in names:
        if name in ("default", "all"):
            pool = [m for m, r in METRICS.items() if r.default or name == "all"]
            out += [m for m in pool if unavailable(m, dataset, has_train) is None] + task
        elif name in METRICS:
            why = unavailable(name, dataset, has_train)
            if why:
                skipped[name] = why
            else:
                out.append(name)
        elif name in task:
            out.append(name)
        elif name in known:
            skipped[name] = f"{name} is not a task metric of dataset {dataset.name!r}"
        else:
            raise choice_error("metric", name, sorted(known | {"default", "all"}))
    return list(dict.fromkeys(out)), skipped


# ---------------------------------------------------------------------------------------------
# The records
# ---------------------------------------------------------------------------------------------


def _f():
    """The formulas module (imported on first use: it loads NumPy, SciPy, POT and Numba)."""
    return importlib.import_module("kswgd.core.metrics.formulas")


def _w2(x, ctx) -> float:
    return _f().w2(x, ctx.reference, max_points=ctx.w2_max_points, seed=ctx.seed)


def _w2_info(ctx, n):
    cap = ctx.w2_max_points
    return {"max_points": cap, "numItermax": _f().NUM_ITER_MAX,
            "subsampled": bool(n is not None and n > cap) or len(ctx.reference) > cap}


def _sinkhorn(x, ctx) -> float:
    f = _f()
    return f.sinkhorn(x, ctx.reference, reg=f.SINKHORN_REG * ctx.bandwidth**2, seed=ctx.seed)


def _sinkhorn_info(ctx, n):
    f = _f()
    cap = f.SINKHORN_MAX_POINTS
    return {"max_points": cap, "reg": f.SINKHORN_REG * ctx.bandwidth**2,
            "subsampled": bool(n is not None and n > cap) or len(ctx.reference) > cap}


def _ms_bandwidths(ctx) -> list[float]:
    return [ctx.bandwidth * s for s in _f().MMD_SCALES]


def _ksd(x, ctx) -> float:
    return _f().ksd(x, ctx.dataset.score, c=ctx.bandwidth)


def _copy(x, ctx) -> float:
    return _f().copy_ratio(x, ctx.train_x, ctx.fresh(len(x), _f()._KEY_COPY))


def _moment_info(ctx, what: str) -> dict[str, Any]:
    exact = getattr(ctx.dataset, f"exact_{what}", None) is not None
    return {"target": f"exact {what}" if exact
            else f"{what} of the {len(ctx.reference)} reference draws"}


register(Metric(
    "w2", _w2, "exact 2-Wasserstein distance to the held-out reference (not squared)",
    label="W2", default=True, info=_w2_info))
register(Metric(
    "sw2", lambda x, ctx: _f().sw2(x, ctx.reference, n_projections=ctx.sw2_projections,
                                   seed=ctx.seed),
    "sliced 2-Wasserstein distance to the reference", label="SW2", default=True,
    info=lambda ctx, n: {"n_projections": ctx.sw2_projections}))
register(Metric(
    "mmd2", lambda x, ctx: _f().mmd2(x, ctx.reference, bandwidth=ctx.bandwidth),
    "unbiased MMD² (Gaussian kernel, median-rule bandwidth); can be negative",
    label="MMD²", signed=True, default=True, info=lambda ctx, n: {"bandwidth": ctx.bandwidth}))
register(Metric(
    "mmd2_ms", lambda x, ctx: _f().mmd2(x, ctx.reference, bandwidth=_ms_bandwidths(ctx)),
    "unbiased MMD² with three bandwidths; can be negative",
    signed=True, info=lambda ctx, n: {"bandwidth": _ms_bandwidths(ctx)}))
register(Metric(
    "energy", lambda x, ctx: _f().energy(x, ctx.reference),
    "energy distance (U-statistic); can be negative", signed=True, default=True))
register(Metric(
    "ksd", _ksd, "unbiased KSD² with the IMQ kernel and the exact score; can be negative",
    label="KSD²", signed=True, default=True, needs=frozenset({"score"}),
    info=lambda ctx, n: {"kernel": "imq", "c": ctx.bandwidth, "beta": _f().KSD_BETA,
                         "quantity": "KSD^2 U-statistic"}))
register(Metric("sinkhorn", _sinkhorn, "debiased Sinkhorn divergence", info=_sinkhorn_info))
register(Metric(
    "copy", _copy, "particles' mean distance to the nearest training point over the same for "
    "fresh draws of π (< 1: copying the data)", default=True, needs=frozenset({"train_x"}),
    info=lambda ctx, n: {"n_train": None if ctx.train_x is None else int(len(ctx.train_x))}))
register(Metric(
    "mean_error", lambda x, ctx: _f().mean_error(x, ctx.target_mean),
    "‖mean of the particles − E_π x‖ (E_π x exact when the dataset declares it, else the "
    "reference set's mean)", info=lambda ctx, n: _moment_info(ctx, "mean")))
register(Metric(
    "cov_error", lambda x, ctx: _f().cov_error(x, ctx.target_covariance),
    "relative Frobenius error of the particles' covariance (Σ_π exact when the dataset "
    "declares it, else the reference set's)", info=lambda ctx, n: _moment_info(ctx, "covariance")))
register(Metric(
    "mode_weight_error",
    lambda x, ctx: _f().mode_weight_error(x, ctx.dataset.modes, ctx.dataset.mode_weights),
    "total variation between the particles' nearest-mode shares and the exact mode weights",
    needs=frozenset({"modes"}), info=lambda ctx, n: {"modes": int(len(ctx.dataset.modes))}))
register(Metric(
    "paper_mmd", lambda x, ctx: _f().paper_mmd(x, ctx.reference, seed=ctx.seed),
    "the paper's MMD: biased V-statistic, bandwidth from the evaluated pooled cloud, square "
    "root", paper=True,
    info=lambda ctx, n: {"estimator": "biased V-statistic, square root",
                         "bandwidth": "median of the pooled evaluated cloud"}))
register(Metric(
    "paper_sw", lambda x, ctx: _f().paper_sw(x, ctx.reference),
    "the paper's sliced W2 (128 directions from a fixed seed)", paper=True,
    info=lambda ctx, n: {"n_projections": _f().PAPER_SW_PROJECTIONS,
                         "projection_seed": _f().PAPER_SW_SEED}))
register(Metric(
    "coverage", lambda x, ctx: _f().coverage(x, ctx.dataset.well_centres),
    "the paper's percentage of particles within 0.4 of a well centre (higher is better in the "
    "paper's reading)", higher_is_better=True, paper=True, needs=frozenset({"well_centres"}),
    info=lambda ctx, n: {"radius": _f().COVERAGE_RADIUS, "unit": "percent",
                         "higher_is_better": True}))


# ---------------------------------------------------------------------------------------------
# The formulas and the context, loaded on first access
# ---------------------------------------------------------------------------------------------


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    for part in ("context", "formulas"):
        module = importlib.import_module(f"kswgd.core.metrics.{part}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'kswgd.core.metrics' has no attribute {name!r}")

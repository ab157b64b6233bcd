"""Execute one spec (pure): one :class:`~kswgd.engine.spec.RunSpec` in, one result out.

:func:`execute` returns a :class:`RunResult` (rows, particles, manifest) and writes nothing; it
depends on nothing but the spec, so a worker process can run it. :func:`compute_floors` is the
same kind of function for the noise and data floors. :func:`run_task` is what an executor's
worker calls: it pins the thread counts, checks the code fingerprint and runs one of the two.

Time: ``fit_seconds`` for ``setup``, then the sampler's cumulative step time at each
checkpoint; metric evaluation and health checks are excluded from both. A run that raises
(anything plug-in code raises: SystemExit, a KeyboardInterrupt that is no Ctrl-C, any
BaseException), produces NaN/inf or diverges, a metric that fails, and a run whose time limit
passes before one of its steps, are results with status "failed" and the reason. Only
:class:`Interrupted` (a real Ctrl-C or SIGTERM, raised by the driver's signal handler) stops
the sweep.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kswgd import registry
from kswgd.core.bandwidths import median_distance
from kswgd.core.data import TrainingData
from kswgd.core.health import AWAY_FACTOR, DISTINCT_RESOLUTION, health, training_index
from kswgd.core.metrics import evaluate, metric_info, noise_floor
from kswgd.engine import store
from kswgd.engine.executors import report_step
from kswgd.engine.memory import PeakMemory
from kswgd.engine.provenance import environment, git_commit, platform_fingerprint
from kswgd.engine.spec import RunSpec, code_fingerprint
from kswgd.engine.target import rng_for, target_for
from kswgd.engine.tuning import DATA_USES, split_training, validation_score
from kswgd.sampler import Checkpoint, run_sampler

#: A run is declared diverged when a particle leaves this multiple of the reference's extent.
DIVERGENCE_FACTOR = 1e3


class Interrupted(KeyboardInterrupt):
    """A genuine stop request to this process (Ctrl-C, SIGTERM), raised by the driver's signal
    handler: it ends the sweep, unlike a KeyboardInterrupt raised by plug-in code."""


class TimeLimitExceeded(Exception):
    """A run's time limit passed (raised before the step that would have started late)."""


def over_time(limit: float, step: int | None) -> str:
    """The reason stored for a run stopped by its time limit at ``step`` (0: during setup)."""
    where = ("computing the floors" if step is None else "during setup" if step == 0
             else f"at step {step}")
    return f"exceeded the time limit of {limit:g} s {where}"


class _Clocked:
    """The sampler as :func:`run_sampler` sees it: before each step k it reports k
    (:func:`report_step`, read by a driver that stops the worker) and raises
    :class:`TimeLimitExceeded` once ``deadline`` (time.monotonic) has passed."""

    def __init__(self, sampler, limit: float | None, deadline: float | None):
        self.sampler, self.limit, self.deadline, self.k = sampler, limit, deadline, 0

    def __getattr__(self, attr: str):
        """Everything else (``name``, ``diagnostics``, ...) is the wrapped sampler's."""
        return getattr(self.sampler, attr)

    def step(self, x, rng):
        self.k += 1
        report_step(self.k)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeLimitExceeded(over_time(self.limit, self.k))
        return self.sampler.step(x, rng)


@dataclass
class RunResult:
    """What executing a spec returns: tidy rows, particles to keep ({file stem: array}), and
    the manifest. Nothing is written by :func:`execute`."""

    spec: RunSpec
    rows: pd.DataFrame
    particles: dict[str, np.ndarray]
    manifest: dict

    @property
    def status(self) -> str:
        return self.manifest["status"]


def _manifest(spec: RunSpec, status: str, reason: str | None) -> dict:
    return {"run_id": spec.run_id, "spec": spec.to_dict(), "code": spec.code,
            "git_commit": git_commit(), "environment": environment(),
            "platform": platform_fingerprint(), "status": status, "reason": reason,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _frame(spec: RunSpec, rows: list[dict], status: str, reason: str | None,
           platform: str | None = None) -> pd.DataFrame:
    """The run's rows with its spec columns and ``platform`` (the hash of the manifest's
    platform fingerprint); one row with iteration −1 when no checkpoint was reached (a failure
    before the first metric, or a skipped run)."""
    if not rows:
        rows = [{"iteration": -1, "seconds": np.nan, "fit_seconds": np.nan}]
    skipped = "; ".join(f"{m}: {why}" for m, why in spec.skipped_metrics) or None
    cols = {**spec.columns(), "status": status, "reason": reason, "skipped_metrics": skipped,
            "platform": platform}
    frame = pd.DataFrame(rows)
    for name in spec.metrics:
        if name not in frame:
            frame[name] = np.nan
    front = pd.DataFrame([cols] * len(frame))
    return pd.concat([front, frame.reset_index(drop=True)], axis=1)


def skipped_result(spec: RunSpec, reason: str) -> RunResult:
    """The stored result of a run that cannot happen (a sampler that cannot run on a dataset,
    a method whose every pilot failed): status "skipped" or "failed" is in ``reason``'s kind."""
    manifest = _manifest(spec, "skipped", reason)
    return RunResult(spec, _frame(spec, [], "skipped", reason, manifest["platform"]["hash"]),
                     {}, manifest)


def failed_result(spec: RunSpec, reason: str) -> RunResult:
    manifest = _manifest(spec, "failed", reason)
    return RunResult(spec, _frame(spec, [], "failed", reason, manifest["platform"]["hash"]),
                     {}, manifest)


def execute(spec: RunSpec, log: Callable[[str], None] = lambda s: None,
            time_limit: float | None = None) -> RunResult:
    """Run one spec and return its result; never raises on a failing sampler or metric, or on
    anything plug-in code raises or exits with: the failure is the result's status and reason.
    Only :class:`Interrupted` passes. ``time_limit`` (seconds from the call) is checked before
    every step. Writes nothing."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    report_step(0)
    manifest = _manifest(spec, "ok", None)
    rows: list[dict] = []
    keep: dict[str, np.ndarray] = {}
    state = {"fit_seconds": np.nan}
    rep = spec.repetition
    sampler = None
    memory = PeakMemory()  # the fit's and the steps' peak traced memory (kswgd.engine.memory)
    try:
        target = target_for(spec)
        sampler = registry.get_sampler(spec.method, **spec.method_kw)
        manifest.update(dataset_key=spec.dataset_key, reference_hash=target.reference_hash)
        x = target.initial(rep, spec.n_particles)
        if spec.selection:      # a pilot: judged by its information class only
            fit, judge = pilot_judge(spec, target, x)
            train = target.data_for(spec.data_kind, rep, spec.n_train, fit)
            tree, spacing = training_index(fit.x)
        else:
            judge = None
            train = target.data_for(spec.data_kind, rep, spec.n_train)
            tree, spacing = target.health_index(rep, spec.n_train)
        manifest["data_hash"] = store.array_hash(train.x, train.y) if train else None
        train_x = target.training(rep, spec.n_train).x if "copy" in spec.metrics else None
        ctx = target.context(spec.pilot, train_x)
        manifest["metric_info"] = {m: metric_info(m, ctx, spec.n_particles)
                                   for m in spec.metrics}
        learns = any(u in DATA_USES for u in spec.uses)   # else "away" is not measured
        manifest["health"] = {"spacing": spacing, "away_factor": AWAY_FACTOR, "away": learns,
                              "distinct_resolution": DISTINCT_RESOLUTION}

        def record(cp: Checkpoint) -> None:
            row = {"iteration": cp.iteration, "seconds": cp.seconds,
                   "fit_seconds": state["fit_seconds"]}
            row.update(evaluate(spec.metrics, cp.x, ctx))
            if judge is not None:
                row["validation"] = judge(cp.x)
            row.update({f"diag.{k}": float(v) for k, v in sampler.diagnostics().items()})
            row["diag.grad_evals"] = float(cp.iteration * sampler.grad_evals_per_step())
            row.update(health(cp.x, tree, spacing, learns_from_data=learns))
            row["health.max_step"] = cp.max_step
            row["peak_mb"] = memory.peak_mb()
            rows.append(row)
            if spec.keep_particles == "checkpoints":
                keep[f"particles_{cp.iteration}"] = np.array(cp.x)

        rng = rng_for(spec.root_seed, spec.dataset_key, spec.method, rep, "method")
        record = memory.track(record)  # measuring from here; metrics and health excluded
        t0 = time.perf_counter()
        sampler.setup(target.dataset, train, rng)
        state["fit_seconds"] = time.perf_counter() - t0
        record(Checkpoint(0, x, 0.0, np.nan))
        x = run_sampler(_Clocked(sampler, time_limit, deadline), x, spec.n_steps, rng, record,
                        at=set(spec.checkpoints), bound=DIVERGENCE_FACTOR * target.extent)
        keep["particles"] = np.array(x, dtype=np.float64)
    except Interrupted:
        raise
    except BaseException as err:  # noqa: BLE001 - a failing run is a result, not a crash
        manifest["status"] = "failed"
        manifest["reason"] = failure_reason(err)
        manifest["traceback"] = traceback.format_exc(limit=6)
        log(f"    failed: {manifest['reason']}")
    manifest["fit_seconds"] = state["fit_seconds"]
    manifest["peak_mb"] = memory.stop()
    manifest["sample_seconds"] = rows[-1]["seconds"] if rows else None
    try:
        manifest["fit_info"] = (sampler.fit_info()
                                if sampler is not None and manifest["status"] == "ok" else {})
    except Exception:  # noqa: BLE001 - fit info is optional
        manifest["fit_info"] = {}
    frame = _frame(spec, rows, manifest["status"], manifest["reason"],
                   manifest["platform"]["hash"])
    return RunResult(spec, frame, keep, manifest)


def pilot_judge(spec: RunSpec, target, x0: np.ndarray
                ) -> tuple[TrainingData, Callable[[np.ndarray], float]]:
    """A pilot's fit data and the function that scores its particles, by its information
    class (:func:`kswgd.engine.tuning.validation_score`): held-out, the W2 distance to the
    held-out part of its training data (split with its own seed; the fit sees the rest);
    ksd, the KSD² with the dataset's score at the IMQ scale of the initial particles' median
    pairwise distance; oracle, the W2 distance to the independent pilot reference of exact
    draws of π. Only the judge's own information is handed to it."""
    full = target.training(spec.repetition, spec.n_train)
    if spec.selection == "held-out":
        fit, held = split_training(full, spec.held_out, rng_for(
            spec.root_seed, spec.dataset_key, spec.repetition, "held-out"))
        return fit, lambda x: validation_score("held-out", x, held_out=held)
    if spec.selection == "ksd":
        scale = median_distance(x0)
        return full, lambda x: validation_score("ksd", x, score=target.dataset.score,
                                                ksd_scale=scale)
    ref = target.context(True).reference
    return full, lambda x: validation_score("oracle", x, reference=ref)


def failure_reason(err: BaseException) -> str:
    """``Type: message`` of what a run raised; a time limit is its message alone, and an exit
    from plug-in code says so (SystemExit carries a status, not a message)."""
    if isinstance(err, TimeLimitExceeded):
        return str(err)
    if isinstance(err, SystemExit):
        return f"SystemExit: plug-in code exited (status {err.code!r})"
    if isinstance(err, KeyboardInterrupt):
        return "KeyboardInterrupt raised by plug-in code (no Ctrl-C arrived)"
    return f"{type(err).__name__}: {err}"


def floor_record(spec: RunSpec, status: str = "ok", reason: str | None = None) -> dict:
    """The floor record of a spec's target law and budget, without values yet (a failed
    floor's whole record)."""
    return {**{k: v for k, v in spec.columns().items()
               if k == "dataset" or k.startswith("dataset.")},
            "n_particles": spec.n_particles, "n_reference": spec.n_reference,
            "n_train": spec.n_train, "floor_seeds": spec.floor_seeds,
            "root_seed": spec.root_seed, "metrics": list(spec.metrics),
            "code": spec.code, "status": status, "reason": reason}


def compute_floors(spec: RunSpec) -> dict:
    """The floors a spec's runs are compared with (pure; the driver stores the record):

    noise: each metric for fresh exact draws of π of size N against the reference, over
           ``floor_seeds`` seeds (mean, std);
    data:  each metric for the training points themselves, those of repetitions
           0..floor_seeds−1, each subsampled without replacement to min(N, M) points
           (what learning from that data can at best reach at this particle count).
    A failing floor is a record with status "failed" and the reason.
    """
    rec = floor_record(spec)
    try:
        target = target_for(spec)
        names = [m for m in spec.metrics if m != "copy"]
        train0 = target.training(0, spec.n_train).x if "copy" in spec.metrics else None
        ctx = target.context(False, train0)
        rec["noise"] = {m: list(v) for m, v in noise_floor(
            spec.metrics, ctx, spec.n_particles, n_seeds=spec.floor_seeds,
            seed=target.metric_seed).items()}
        values: dict[str, list[float]] = {m: [] for m in names}
        for k in range(spec.floor_seeds):
            x = target.training(k, spec.n_train).x
            n = min(spec.n_particles, len(x))
            pick = rng_for(spec.root_seed, spec.dataset_key, k, "data-floor").choice(
                len(x), n, replace=False)
            for m, v in evaluate(names, x[np.sort(pick)], target.ctx).items():
                values[m].append(v)
        rec["data"] = {m: [float(np.mean(v)), float(np.std(v))] for m, v in values.items()}
    except Interrupted:
        raise
    except BaseException as err:  # noqa: BLE001 - a failing floor is a result too
        rec.update(status="failed", reason=failure_reason(err))
    return rec


def pin_threads(threads: int) -> dict:
    """Set the calling thread's Numba thread count and the process's BLAS pools to
    ``threads``; returns what is in force (the manifest's ``threads`` record)."""
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    numba.set_num_threads(threads)
    threadpool_limits(threads)
    return {"per_run": threads, "numba": numba.get_num_threads(),
            "numba_layer": numba.threading_layer() if _layer_known() else None,
            "blas": sorted({p["num_threads"] for p in threadpool_info()})}


def _layer_known() -> bool:
    """Numba names its threading layer only after the first parallel kernel ran."""
    import numba

    try:
        numba.threading_layer()
        return True
    except ValueError:
        return False


def code_mismatch(spec) -> str | None:
    """Why this process may not compute ``spec`` (its code fingerprint differs from the one
    the driver planned with: another kswgd version or edited plug-ins), or None."""
    here = code_fingerprint(spec.dataset, spec.method)
    if here == spec.code:
        return None
    return (f"worker code fingerprint {here} differs from the driver's {spec.code} "
            f"(install the same kswgd version and plug-ins on every worker)")


def run_task(kind: str, spec, threads: int, backend: dict, time_limit: float | None = None):
    """Compute one task where it is called (a worker or the driver) and return it, writing
    nothing: ``kind`` "run" gives a RunResult, "floor" a floor record (dict). A run's
    ``time_limit`` is checked between its steps (see :func:`execute`)."""
    record = pin_threads(threads)
    why = code_mismatch(spec)
    if kind == "floor":
        return floor_record(spec, "failed", why) if why else compute_floors(spec)
    res = failed_result(spec, why) if why else execute(spec, time_limit=time_limit)
    res.manifest["threads"] = record
    res.manifest["backend"] = {**backend, "host": socket.gethostname(), "pid": os.getpid()}
    return res

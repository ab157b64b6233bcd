"""The runner: plans a suite into run specs, executes them, and stores every result.

Three stages, kept apart so that runs can later be farmed out to workers:

1. **Plan** (:func:`plan_suite`): every dataset, method, parameter and metric name is checked,
   each sampler's declared needs are matched against each dataset
   (:func:`kswgd.registry.incompatibility`) and each metric's against each dataset
   (:func:`kswgd.metrics.metric_unavailable`), and the immutable
   :class:`~kswgd.spec.RunSpec` of every run is built. Nothing is computed or written.
2. **Execute** (:func:`execute`): one spec in, one :class:`RunResult` out (rows, particles,
   manifest). Pure: it writes nothing and depends on nothing but the spec, so a worker process
   can run it. The floors (:func:`compute_floors`) are the same kind of function.
3. **Drive** (:func:`run_suite`): the only writer. It runs the floors, the step-size pilots, the
   step choice (:func:`choose_step`) and the repetitions in order, skips runs whose manifest
   exists, and stores each result atomically with its manifest last.

Seeds derive from the suite's root seed with ``numpy.random.SeedSequence``, keyed by the
target law (reference set), target law + repetition (training data and initial particles: the
same for every method) and target law + method + repetition (the sampler's own randomness).
The same spec and code give the same numbers (docs/design.md, 'Seeds').

Time: ``fit_seconds`` for ``setup``, then the sampler's cumulative step time at each
checkpoint; metric evaluation and health checks are excluded from both.

A run that raises, produces NaN/inf or diverges, a metric that fails, a floor that fails and a
method whose every pilot fails are all stored as failed results with their reason; a sampler or
metric that cannot run on a dataset is stored as skipped with the reason. The sweep goes on.
"""

from __future__ import annotations

import hashlib
import heapq
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from kswgd import registry, store
from kswgd.dataset import TrainingData
from kswgd.health import AWAY_FACTOR, DISTINCT_RESOLUTION, health, training_index
from kswgd.metrics import (
    DEFAULT_METRICS,
    METRICS,
    MetricContext,
    evaluate,
    metric_info,
    metric_unavailable,
    noise_floor,
)
from kswgd.params import ConfigError, choice_error
from kswgd.provenance import environment, git_commit, platform_fingerprint
from kswgd.sampler import Checkpoint, run_sampler
from kswgd.spec import (
    KEEP_PARTICLES,
    PILOT_REPETITION,
    RunSpec,
    code_fingerprint,
)
from kswgd.suite import DatasetEntry, Suite

#: A run is declared diverged when a particle leaves this multiple of the reference's extent.
DIVERGENCE_FACTOR = 1e3
#: The step-size rule extends its grid at most this many times in all (both sides together).
MAX_GRID_EXTENSIONS = 2


def _key(*parts) -> list[int]:
    """Stable integer spawn key from names and numbers (independent of PYTHONHASHSEED)."""
    return [int(hashlib.sha256(str(p).encode()).hexdigest()[:8], 16) for p in parts]


def rng_for(root_seed: int, *parts) -> np.random.Generator:
    """Generator seeded by SeedSequence(root_seed, spawn_key=key(parts))."""
    return np.random.default_rng(np.random.SeedSequence(root_seed, spawn_key=_key(*parts)))


def checkpoints(n_steps: int, n_checkpoints: int) -> list[int]:
    """Iterations at which metrics are evaluated: 0, evenly spaced ones, and n_steps."""
    pts = np.linspace(0, n_steps, max(n_checkpoints, 1) + 1).round().astype(int)
    return sorted(set(pts.tolist()))


# ---------------------------------------------------------------------------------------------
# Sessions: what every run of one target law shares (derived from a spec alone)
# ---------------------------------------------------------------------------------------------


class Session:
    """The dataset instance, reference set, metric contexts, training data and health index of
    one target law at one reference size and root seed. Built from a spec, so a worker can
    rebuild it; cached per process by :func:`session_for`."""

    def __init__(self, spec: RunSpec):
        self.dataset = registry.get_dataset(spec.dataset, **spec.dataset_kw)
        self.key, self.seed = spec.dataset_key, spec.root_seed
        ref = self.dataset.draw(spec.n_reference, rng_for(self.seed, self.key, "reference"))
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

    def data_for(self, kind: str | None, rep: int, n: int) -> TrainingData | None:
        """What a sampler of ``data_kind`` gets: nothing, the pairs, or the x of the same
        pairs for a samples-only method."""
        if kind is None:
            return None
        data = self.training(rep, n)
        if kind == "samples" and data.has_pairs:
            return TrainingData(data.x, info=dict(data.info))
        if kind == "trajectories" and not data.has_pairs:
            raise ConfigError(f"dataset {self.dataset.name!r} has no trajectories")
        return data

    def initial(self, rep: int, n: int) -> np.ndarray:
        return self.dataset.initial(n, rng_for(self.seed, self.key, rep, "init"))

    def health_index(self, rep: int, n: int) -> tuple[cKDTree, float]:
        """k-d tree and median nearest-neighbour spacing of the repetition's training points
        (:func:`kswgd.health.training_index`)."""
        if (rep, n) not in self._health:
            self._health[(rep, n)] = training_index(self.training(rep, n).x)
        return self._health[(rep, n)]


_SESSIONS: dict[tuple, Session] = {}


def session_for(spec: RunSpec) -> Session:
    """The (cached) session of a spec's target law; keeps the two most recent."""
    key = (spec.dataset_key, spec.n_reference, spec.root_seed)
    if key not in _SESSIONS:
        while len(_SESSIONS) >= 2:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        _SESSIONS[key] = Session(spec)
    return _SESSIONS[key]


# ---------------------------------------------------------------------------------------------
# Execute one spec (pure)
# ---------------------------------------------------------------------------------------------


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


def execute(spec: RunSpec, log: Callable[[str], None] = lambda s: None) -> RunResult:
    """Run one spec and return its result; never raises on a failing sampler or metric: the
    failure is the result's status and reason. Writes nothing."""
    session = session_for(spec)
    sampler = registry.get_sampler(spec.method, **spec.method_kw)
    manifest = _manifest(spec, "ok", None)
    manifest.update(dataset_key=spec.dataset_key, reference_hash=session.reference_hash)
    rows: list[dict] = []
    keep: dict[str, np.ndarray] = {}
    state = {"fit_seconds": np.nan}
    rep = spec.repetition
    x = None
    try:
        train = session.data_for(spec.data_kind, rep, spec.n_train)
        manifest["data_hash"] = store.array_hash(train.x, train.y) if train else None
        tree, spacing = session.health_index(rep, spec.n_train)
        train_x = session.training(rep, spec.n_train).x if "copy" in spec.metrics else None
        ctx = session.context(spec.pilot, train_x)
        manifest["metric_info"] = {m: metric_info(m, ctx, spec.n_particles)
                                   for m in spec.metrics}
        manifest["health"] = {"spacing": spacing, "away_factor": AWAY_FACTOR,
                              "distinct_resolution": DISTINCT_RESOLUTION}

        def record(cp: Checkpoint) -> None:
            row = {"iteration": cp.iteration, "seconds": cp.seconds,
                   "fit_seconds": state["fit_seconds"]}
            row.update(evaluate(spec.metrics, cp.x, ctx))
            row.update({f"diag.{k}": float(v) for k, v in sampler.diagnostics().items()})
            row.update(health(cp.x, tree, spacing))
            row["health.max_step"] = cp.max_step
            rows.append(row)
            if spec.keep_particles == "checkpoints":
                keep[f"particles_{cp.iteration}"] = np.array(cp.x)

        x = session.initial(rep, spec.n_particles)
        rng = rng_for(spec.root_seed, spec.dataset_key, spec.method, rep, "method")
        t0 = time.perf_counter()
        sampler.setup(session.dataset, train, rng)
        state["fit_seconds"] = time.perf_counter() - t0
        record(Checkpoint(0, x, 0.0, np.nan))
        x = run_sampler(sampler, x, spec.n_steps, rng, record, at=set(spec.checkpoints),
                        bound=DIVERGENCE_FACTOR * session.extent)
        keep["particles"] = np.array(x, dtype=np.float64)
    except Exception as err:  # a failing run is a result, not a crash of the sweep
        manifest["status"] = "failed"
        manifest["reason"] = f"{type(err).__name__}: {err}"
        manifest["traceback"] = traceback.format_exc(limit=6)
        log(f"    failed: {manifest['reason']}")
    manifest["fit_seconds"] = state["fit_seconds"]
    manifest["sample_seconds"] = rows[-1]["seconds"] if rows else None
    try:
        manifest["fit_info"] = sampler.fit_info() if manifest["status"] == "ok" else {}
    except Exception:  # noqa: BLE001 - fit info is optional
        manifest["fit_info"] = {}
    frame = _frame(spec, rows, manifest["status"], manifest["reason"],
                   manifest["platform"]["hash"])
    return RunResult(spec, frame, keep, manifest)


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
        session = session_for(spec)
        names = [m for m in spec.metrics if m != "copy"]
        train0 = session.training(0, spec.n_train).x if "copy" in spec.metrics else None
        ctx = session.context(False, train0)
        rec["noise"] = {m: list(v) for m, v in noise_floor(
            spec.metrics, ctx, spec.n_particles, n_seeds=spec.floor_seeds,
            seed=session.metric_seed).items()}
        values: dict[str, list[float]] = {m: [] for m in names}
        for k in range(spec.floor_seeds):
            x = session.training(k, spec.n_train).x
            n = min(spec.n_particles, len(x))
            pick = rng_for(spec.root_seed, spec.dataset_key, k, "data-floor").choice(
                len(x), n, replace=False)
            for m, v in evaluate(names, x[np.sort(pick)], session.ctx).items():
                values[m].append(v)
        rec["data"] = {m: [float(np.mean(v)), float(np.std(v))] for m, v in values.items()}
    except Exception as err:  # a failing floor is a result too
        rec.update(status="failed", reason=f"{type(err).__name__}: {err}")
    return rec


# ---------------------------------------------------------------------------------------------
# Plan
# ---------------------------------------------------------------------------------------------


@dataclass
class MethodPlan:
    """One (dataset entry, method entry) of a suite: its repetition-0 template spec, the step
    grid when the step-size rule applies, or why the pair is skipped."""

    base: RunSpec
    repetitions: int
    grid: tuple[float, ...] = ()
    skip: str | None = None
    pilot_checkpoints: tuple[int, ...] = ()   # a pilot's checkpoints; () = the base's budget

    def runs(self) -> list[RunSpec]:
        return [self.base.with_repetition(r) for r in range(self.repetitions)]

    def pilot(self, step: float) -> RunSpec:
        """The pilot run of ``step``: the base spec at that step, on the pilot repetition, for
        the suite's ``pilot_steps`` iterations (all of ``n_steps`` unless it says fewer)."""
        spec = self.base.with_step(step, "pilot").with_repetition(PILOT_REPETITION)
        if self.pilot_checkpoints and self.pilot_checkpoints != spec.checkpoints:
            spec = replace(spec, n_steps=self.pilot_checkpoints[-1],
                           checkpoints=self.pilot_checkpoints)
        return spec


@dataclass
class Plan:
    """The planned sweep: method plans in order, and the floor specs (one per target law and
    budget)."""

    suite: Suite
    methods: list[MethodPlan] = field(default_factory=list)

    @property
    def n_planned(self) -> int:
        """Runs known before anything runs: repetitions and the grid pilots of runnable
        methods (a skipped method's pilots never run)."""
        return sum(m.repetitions + (0 if m.skip else len(m.grid)) for m in self.methods)


def _params_for(entry: DatasetEntry, name: str, params: dict, label: str) -> dict:
    """Suite params, overridden per dataset by method_params[label] (or [name])."""
    return {**params, **entry.method_params.get(label, entry.method_params.get(name, {}))}


def _resolve_metrics(entry: DatasetEntry, dataset, others: set[str]) -> tuple[list, dict]:
    """The metrics of a dataset entry and those skipped with their reason. "default" gives
    the default metrics this dataset supports, "all" every one; an explicit name that cannot
    be computed here is skipped with the reason; a name known nowhere is a ConfigError."""
    task = list(dataset.task_metrics())
    known = set(METRICS) | set(task) | others
    out, skipped = [], {}
    for name in entry.budget["metrics"]:
        if name in ("default", "all"):
            pool = (list(DEFAULT_METRICS) if name == "default" else list(METRICS)) + task
            out += [m for m in pool if metric_unavailable(m, dataset) is None]
            continue
        if name not in known | {"default", "all"}:
            raise choice_error(f"metric for dataset {entry.name!r}", name, known)
        why = (metric_unavailable(name, dataset) if name in METRICS
               else None if name in task
               else f"{name} is not a task metric of dataset {dataset.name!r}")
        if why:
            skipped[name] = why
        else:
            out.append(name)
    return list(dict.fromkeys(out)), skipped


def plan_suite(suite: Suite, datasets: list[str] | None = None,
               methods: list[str] | None = None) -> Plan:
    """Check a suite (and the --dataset/--method filters) and build every run spec.

    Raises ConfigError, before anything runs, on an unknown dataset, method, parameter or
    metric name and on a filter that matches nothing in the suite."""
    suite.check_filters(datasets, methods)
    entries = [e for e in suite.datasets if not datasets or e.name in datasets]
    todo = [m for m in suite.methods if not methods or m[0] in methods or m[2] in methods]
    instances = [registry.get_dataset(e.name, **e.params) for e in suite.datasets]
    task_names = {t for ds in instances for t in ds.task_metrics()}
    plan = Plan(suite)
    for entry in entries:
        dataset = instances[suite.datasets.index(entry)]
        b = entry.budget
        metrics, skipped = _resolve_metrics(entry, dataset, task_names)
        if b["keep_particles"] not in KEEP_PARTICLES:
            raise choice_error("keep_particles", b["keep_particles"], KEEP_PARTICLES)
        pilot_steps = int(b["pilot_steps"]) or int(b["n_steps"])
        if not 1 <= pilot_steps <= int(b["n_steps"]):
            raise ConfigError(f"suite '{suite.name}', dataset '{entry.name}': pilot_steps must "
                              f"be between 1 and n_steps = {b['n_steps']} (0 = n_steps), got "
                              f"{b['pilot_steps']}")
        for name, params, label in todo:
            if not entry.runs_method(name, label):
                continue
            raw = _params_for(entry, name, params, label)
            sampler = registry.get_sampler(name, **raw)
            tuned = "step" not in raw and bool(b["step_grid"])
            base = RunSpec.make(
                suite=suite.name, dataset=entry.name, dataset_params=dict(dataset.params),
                method=name, method_params=dict(sampler.params), label=label,
                uses=tuple(sampler.uses), data_kind=sampler.data_kind,
                n_particles=int(b["n_particles"]), n_steps=int(b["n_steps"]),
                n_train=int(b["n_train"]), n_reference=int(b["n_reference"]),
                checkpoints=checkpoints(b["n_steps"], b["n_checkpoints"]), metrics=metrics,
                skipped_metrics=skipped, floor_seeds=int(b["floor_seeds"]), repetition=0,
                pilot=False, root_seed=int(b["root_seed"]), keep_particles=b["keep_particles"],
                code=code_fingerprint(entry.name, name), step_rule="" if tuned else "fixed")
            plan.methods.append(MethodPlan(
                base, int(b["repetitions"]),
                tuple(sorted(float(h) for h in b["step_grid"])) if tuned else (),
                registry.incompatibility(sampler, dataset),
                tuple(checkpoints(pilot_steps, b["n_checkpoints"])) if tuned else ()))
    return plan


def validate_suite(suite: Suite, entries=None, methods=None) -> Plan:
    """Check every dataset, method, parameter and metric name of a suite without running it,
    so that a typo fails at once rather than an hour into a sweep (ConfigError)."""
    return plan_suite(suite, [e.name for e in entries] if entries else None,
                      [m[2] for m in methods] if methods else None)


# ---------------------------------------------------------------------------------------------
# Drive (the only writer)
# ---------------------------------------------------------------------------------------------


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: ``finished`` of ``planned`` runs are stored."""

    def __init__(self, finished: int, planned: int):
        super().__init__(f"interrupted: {finished} of {planned} runs finished; "
                         "run the same command to resume")
        self.finished, self.planned = finished, planned


class LogProgress:
    """The progress interface (``started``, ``finished``, ``skipped``, ``grow``, ``close``) as
    log lines: what :func:`run_suite` reports through when it is given no progress display."""

    def __init__(self, log: Callable[[str], None]):
        self.log = log

    def started(self, desc: str) -> None:
        pass

    def finished(self, desc: str, status: str, seconds: float) -> None:
        self.log(f"  {desc}: {status} in {seconds:.1f} s")

    def skipped(self, desc: str) -> None:
        self.log(f"  {desc}: done before")

    def grow(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(eq=False)
class Task:
    """One unit of work for an executor: a run (``kind`` "run") or a floor ("floor"), what to
    do once its result is stored (``then``), its queue priority and how often it was sent."""

    kind: str
    spec: RunSpec
    then: Callable[[], None] | None
    priority: tuple
    attempts: int = 0
    t0: float = 0.0

    @property
    def desc(self) -> str:
        return describe(self.spec)


def describe(spec: RunSpec) -> str:
    """One-line name of a run: dataset, label, pilot step or repetition, run id."""
    step = spec.method_kw.get("step", np.nan)
    tag = f"pilot h={step:g}" if spec.pilot else f"rep {spec.repetition}"
    return f"{spec.dataset:16s} {spec.label:10s} {tag} ({spec.run_id})"


class StepSearch:
    """The step-size rule of one method plan as a state machine, so its pilots can run in
    parallel: the grid's pilots are independent; once all have reported, :meth:`next_step`
    gives the grid extension to try (one at a time, each depending on the previous scores) or
    None when the choice is made. The rule is described at :func:`choose_step_pilots`."""

    def __init__(self, mp: MethodPlan):
        self.mp = mp
        self.scores: dict[float, float] = {}
        self.reasons: dict[float, str] = {}
        self.waiting = len(mp.grid)
        self.extensions = 0
        grid = sorted(mp.grid)
        self.single = len(grid) == 1
        self.up = grid[-1] / grid[-2] if len(grid) > 1 else 3.0
        self.down = grid[1] / grid[0] if len(grid) > 1 else 3.0

    def record(self, step: float, value: float | None, why: str | None) -> None:
        if value is None:
            self.reasons[step] = why
        else:
            self.scores[step] = value
        self.waiting -= 1

    def next_step(self) -> float | None:
        """The next pilot step beyond the edge of the steps tried, or None (done)."""
        if self.waiting or self.extensions >= MAX_GRID_EXTENSIONS:
            return None
        best = choose_step(self.scores)
        tried = sorted(set(self.scores) | set(self.reasons))
        if best is None:                     # every pilot failed: try a smaller step
            if not tried:
                return None
            step = float(f"{tried[0] / self.down:.6g}")
        elif len(tried) < 2 and not self.single:
            return None
        elif best == tried[-1]:
            step = float(f"{tried[-1] * self.up:.6g}")
        elif best == tried[0]:
            step = float(f"{tried[0] / self.down:.6g}")
        else:
            return None
        self.extensions += 1
        self.waiting += 1
        return step


def choose_step(scores: dict[float, float]) -> float | None:
    """The step with the smallest pilot score (ties: the larger step); None if no score."""
    if not scores:
        return None
    best = min(scores.values())
    return max(h for h, v in scores.items() if v == best)


def choose_step_pilots(mp: MethodPlan, score):
    """Run the pilots of the step-size rule one after another: every step of the grid, then,
    while the best step is the largest (smallest) step tried, one more step beyond it at the
    grid's outer ratio (the ratio of its two outermost steps on that side, 3 for a one-step
    grid), at most MAX_GRID_EXTENSIONS times in all; while every pilot has failed, one more
    step below the smallest. ``score(spec)`` gives (value, None) or
    (None, reason). Returns ({step: score}, {step: failure reason}). The driver runs the same
    rule (:class:`StepSearch`) with the grid's pilots in parallel."""
    search = StepSearch(mp)
    for h in mp.grid:
        search.record(h, *score(mp.pilot(h)))
    while (h := search.next_step()) is not None:
        search.record(h, *score(mp.pilot(h)))
    return search.scores, search.reasons


class Driver:
    """Runs a plan into a results folder, the only writer. Tasks form a dependency graph:
    floors and untuned methods' repetitions are ready at once; a tuned method's grid pilots
    are ready at once, its grid extensions follow its scores, and its repetitions are queued
    when its step is chosen. At most ``executor.slots`` tasks are in flight; the queue serves
    pilots first (they gate repetitions), then floors and repetitions, each in plan order.
    A task whose worker was lost is resubmitted once (:data:`kswgd.parallel.ATTEMPTS`), alone
    (nothing else in flight, so a second loss is its own), then stored as a failed run with the
    reason."""

    def __init__(self, out: Path, plan: Plan, log: Callable[[str], None], executor=None,
                 progress=None):
        from kswgd.parallel import SerialExecutor

        self.out, self.plan, self.log = Path(out), plan, log
        self.executor = executor if executor is not None else SerialExecutor()
        self.progress = progress if progress is not None else LogProgress(log)
        self.finished: set[str] = set()
        self.extra = 0  # pilots added by grid extensions
        self.ids: dict[int, list[str]] = {}  # method plan index -> repetition ids
        self._queue: list[tuple[tuple, int, Task]] = []
        self._inflight: dict[Future, Task] = {}
        self._seq = 0

    # -- the graph -------------------------------------------------------------------------
    def start(self) -> None:
        """Queue every task known before anything runs."""
        seen: set[Path] = set()
        for i, mp in enumerate(self.plan.methods):
            path = store.floor_path(self.out, mp.base)
            if path not in seen:
                seen.add(path)
                if not path.exists():
                    self._push(Task("floor", mp.base, None, (1, i)))
            self.ids[i] = []
            if mp.skip:
                self.log(f"  {mp.base.dataset:16s} {mp.base.label:10s} skipped: {mp.skip}")
                for spec in mp.runs():
                    self.ids[i].append(self.stored(skipped_result(spec, mp.skip)))
            elif mp.grid:
                search = StepSearch(mp)
                for h in mp.grid:
                    self.pilot(i, search, h)
            else:
                for spec in mp.runs():
                    self.ids[i].append(self.need(spec, (1, i)))

    def pilot(self, i: int, search: StepSearch, step: float) -> None:
        spec = search.mp.pilot(step)
        self.need(spec, (0, i), lambda: self.pilot_done(i, search, step, spec))

    def pilot_done(self, i: int, search: StepSearch, step: float, spec: RunSpec) -> None:
        search.record(step, *self.pilot_score(spec))
        if search.waiting:
            return
        nxt = search.next_step()
        if nxt is not None:
            self.extra += 1
            self.progress.grow(1)  # one run more than planned
            self.pilot(i, search, nxt)
        else:
            self.tuned(i, search)

    def tuned(self, i: int, search: StepSearch) -> None:
        """Record the step choice and queue the repetitions (or store them as failed)."""
        mp = search.mp
        chosen = choose_step(search.scores)
        tried = sorted(set(search.scores) | set(search.reasons))
        metric = mp.base.metrics[0] if mp.base.metrics else "-"
        store.write_json(step_record_path(self.out, mp),
                         {"dataset": mp.base.dataset, "method": mp.base.method,
                          "label": mp.base.label, "params": mp.base.method_kw,
                          "metric": metric, "grid": list(mp.grid), "tried": tried,
                          "pilot_scores": search.scores, "pilot_failures": search.reasons,
                          "chosen": chosen})
        self.log(f"  {mp.base.dataset:16s} {mp.base.label:10s} step "
                 f"{'none' if chosen is None else f'{chosen:g}'} (pilot {metric}: "
                 + ", ".join(f"{h:g}→{v:.3g}" for h, v in sorted(search.scores.items())) + ")")
        if chosen is None:
            reason = "every pilot step failed (" + "; ".join(
                f"h={h:g}: {why}" for h, why in search.reasons.items()) + ")"
            bad = mp.base.with_step(np.nan, "every pilot failed")
            for rep in range(mp.repetitions):
                self.ids[i].append(self.stored(failed_result(bad.with_repetition(rep), reason)))
            return
        rule = "rule: pilots over " + ", ".join(f"{h:g}" for h in tried)
        for rep in range(mp.repetitions):
            self.ids[i].append(self.need(mp.base.with_step(chosen, rule).with_repetition(rep),
                                         (1, i)))

    def need(self, spec: RunSpec, priority: tuple, then: Callable[[], None] | None = None) -> str:
        """Make sure a run is stored: queue it unless finished before (then ``then`` at once)."""
        rid = spec.run_id
        if store.is_finished(self.out, rid):
            self.progress.skipped(describe(spec))
            self.finished.add(rid)
            if then is not None:
                then()
        else:
            self._push(Task("run", spec, then, priority))
        return rid

    def stored(self, res: RunResult) -> str:
        """Store a result made by the driver itself (skipped or failed without running)."""
        rid = res.spec.run_id
        if store.is_finished(self.out, rid):
            self.progress.skipped(describe(res.spec))
        else:
            self.store(res)
            self.progress.finished(describe(res.spec), res.status, 0.0)
        self.finished.add(rid)
        return rid

    def store(self, res: RunResult) -> None:
        store.save_result(self.out, res.spec.run_id, res.rows, res.particles, res.manifest)

    def pilot_score(self, spec: RunSpec) -> tuple[float | None, str | None]:
        """(final value of the first metric, None) of a stored pilot, or (None, reason)."""
        rid = spec.run_id
        man = store.load_manifest(self.out, rid)
        if man["status"] != "ok" or not spec.metrics:
            return None, man["reason"] or "no metric"
        rows = store.load_run_rows(self.out, rid)
        value = float(rows.sort_values("iteration")[spec.metrics[0]].iloc[-1])
        return (value, None) if np.isfinite(value) else (None, "non-finite pilot score")

    # -- the loop --------------------------------------------------------------------------
    def _push(self, task: Task) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (task.priority, self._seq, task))

    def _submit(self, task: Task) -> None:
        from kswgd.parallel import run_task

        task.attempts += 1
        task.t0 = time.perf_counter()
        if task.kind == "run" and task.attempts == 1:
            self.progress.started(task.desc)
        fut = self.executor.submit(run_task, task.kind, task.spec, self.executor.threads,
                                   self.executor.describe())
        self._inflight[fut] = task

    def _complete(self, task: Task, fut: Future) -> None:
        from kswgd.parallel import ATTEMPTS

        try:
            result = fut.result()
        except Exception as err:  # noqa: BLE001 - a lost worker, not a failing run
            why = f"{type(err).__name__}: {err}".strip(": ")
            if task.attempts < ATTEMPTS:
                self.log(f"  {task.desc}: worker lost ({why}); submitted again")
                self._push(replace(task, priority=(-1,) + task.priority))
                return
            why = f"worker lost {task.attempts} times ({why})"
            result = (failed_result(task.spec, why) if task.kind == "run"
                      else floor_record(task.spec, "failed", why))
        if task.kind == "floor":
            store.write_json(store.floor_path(self.out, task.spec), result)
            if result["status"] != "ok":
                self.log(f"  {task.spec.dataset:16s} floors failed: {result['reason']}")
        else:
            self.store(result)
            self.finished.add(task.spec.run_id)
            if result.status == "failed":
                self.log(f"  {task.desc}: failed: {result.manifest['reason']}")
            self.progress.finished(task.desc, result.status, time.perf_counter() - task.t0)
        if task.then is not None:
            task.then()

    def run(self) -> list[str]:
        """Run the graph to the end; returns the repetitions' run ids in plan order."""
        self.start()
        while self._queue or self._inflight:
            while self._queue and len(self._inflight) < self.executor.slots:
                # A resubmitted task runs alone, so that a worker it kills again takes no
                # other task with it (a process pool loses every task in flight).
                alone = self._queue[0][2].attempts or any(
                    t.attempts > 1 for t in self._inflight.values())
                if alone and self._inflight:
                    break
                self._submit(heapq.heappop(self._queue)[2])
            done, _ = wait(list(self._inflight), return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: self._inflight[f].priority):
                self._complete(self._inflight.pop(fut), fut)
        return [rid for i in sorted(self.ids) for rid in self.ids[i]]


def clean_partial(out: Path) -> int:
    """Remove the temporary files a killed process left behind (names ``.*.tmp``); returns how
    many. One driver per results folder: another live driver's temporary files would go too."""
    n = 0
    for path in Path(out).rglob(".*.tmp"):
        path.unlink(missing_ok=True)
        n += 1
    return n


def run_suite(suite: Suite, out: Path, *, log: Callable[[str], None] | None = None,
              datasets: list[str] | None = None, methods: list[str] | None = None,
              executor=None, progress: Callable[[int], object] | None = None) -> list[str]:
    """Run every planned run of the suite not already finished in ``out``.

    ``executor`` (:mod:`kswgd.parallel`; default: serial in this process, one thread per run)
    computes the tasks; only this process writes. ``progress(total)`` makes the progress
    display (``started/finished/skipped/grow/close``, e.g. :class:`kswgd.progress.Progress`);
    without it each run is one ``log`` line. Returns the run ids of the suite's repetitions
    (finished before or now; pilots excluded). Bad names and an unwritable ``out`` raise
    ConfigError before anything runs; Ctrl-C stops the workers and raises
    :class:`SweepInterrupted` with the count of finished runs.
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    plan = plan_suite(suite, datasets, methods)
    out = store.check_out(out, create=True)
    clean_partial(out)
    driver = Driver(out, plan, log, executor)
    if progress is not None:
        driver.progress = progress(plan.n_planned)
    try:
        return driver.run()
    except KeyboardInterrupt:
        driver.executor.close(wait=False)
        raise SweepInterrupted(_count_finished(out, plan, driver.finished),
                               plan.n_planned + driver.extra) from None
    finally:
        driver.progress.close()
        if executor is None:
            driver.executor.close()


def _count_finished(out: Path, plan: Plan, reached: set[str]) -> int:
    """How many of the plan's runs are stored: those this sweep reached, and those of earlier
    sweeps (repetitions of a tuned method once its step choice is on disk)."""
    known = set(reached)
    for mp in plan.methods:
        known.update(s.run_id for s in mp.runs())
        known.update(mp.pilot(h).run_id for h in mp.grid)
        path = step_record_path(out, mp)
        if mp.grid and path.exists():
            rec = store.read_json(path)
            known.update(mp.pilot(float(h)).run_id for h in rec["tried"])
            if rec["chosen"] is not None:
                known.update(mp.base.with_step(rec["chosen"], "").with_repetition(r).run_id
                             for r in range(mp.repetitions))
    return sum(store.is_finished(out, rid) for rid in known)


def step_record_path(out: Path, mp: MethodPlan) -> Path:
    """Where the step-size rule's record of a method plan is stored."""
    return Path(out) / "steps" / f"{mp.base.dataset}_{mp.base.method}_{mp.base.run_id}.json"


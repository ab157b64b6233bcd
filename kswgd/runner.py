"""The runner: runs a suite's datasets × methods × repetitions at matched budgets.

It owns seeds, budgets, timers, checkpoints and storage (docs/design.md, 'Seeds'):

- Seeds derive from the suite's root seed with ``numpy.random.SeedSequence``, keyed by the
  dataset (reference set), dataset + repetition (training data and initial particles: the same
  for every method) and dataset + method + repetition (the sampler's own randomness).
- A run's id is the hash of its config; a finished run (manifest present) is never recomputed.
- Time: ``fit_seconds`` for ``setup``, then the sampler's cumulative step time at each
  checkpoint; metric evaluation is excluded from both.
- A run that raises, produces NaN/inf or diverges is stored as failed with its reason; the sweep
  goes on.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from kswgd import registry, store
from kswgd.dataset import TrainingData
from kswgd.metrics import (
    METRICS,
    MetricContext,
    evaluate,
    metric_info,
    noise_floor,
    resolve_names,
)
from kswgd.params import ConfigError, choice_error
from kswgd.provenance import environment, git_commit
from kswgd.suite import Suite

#: A run is declared diverged when a particle leaves this multiple of the reference's extent.
DIVERGENCE_FACTOR = 1e3


def _key(*parts) -> list[int]:
    """Stable integer spawn key from names and numbers (independent of PYTHONHASHSEED)."""
    out = []
    for p in parts:
        out.append(int(hashlib.sha256(str(p).encode()).hexdigest()[:8], 16))
    return out


def rng_for(root_seed: int, *parts) -> np.random.Generator:
    """Generator seeded by SeedSequence(root_seed, spawn_key=key(parts))."""
    return np.random.default_rng(np.random.SeedSequence(root_seed, spawn_key=_key(*parts)))


def checkpoints(n_steps: int, n_checkpoints: int) -> list[int]:
    """Iterations at which metrics are evaluated: 0, evenly spaced ones, and n_steps."""
    pts = np.linspace(0, n_steps, max(n_checkpoints, 1) + 1).round().astype(int)
    return sorted(set(pts.tolist()))


class DatasetSession:
    """One dataset instance with its reference set, metric context and noise floor cache."""

    def __init__(self, name: str, params: dict, budget: dict, out: Path):
        self.dataset = registry.get_dataset(name, **params)
        self.name, self.params, self.budget, self.out = name, dict(self.dataset.params), budget, out
        self.key = store.config_hash({"dataset": name, "params": self.params})
        seed = budget["root_seed"]
        ref = self.dataset.draw(budget["n_reference"], rng_for(seed, self.key, "reference"))
        self.metric_seed = _key(seed, self.key, "metrics")[0]
        self.ctx = MetricContext(ref, dataset=self.dataset, seed=self.metric_seed)
        self.metrics = resolve_names(budget["metrics"], self.ctx)
        self.reference_hash = store.array_hash(ref)
        self.extent = float(np.max(np.abs(ref))) + 1.0
        self._pilot_ctx: MetricContext | None = None

    def context(self, pilot: bool = False) -> MetricContext:
        """The metric context: the held-out reference, or for step-size pilots an independent
        pilot reference of the same size (same MMD bandwidth), so tuning never sees the
        reference that the leaderboard is scored on."""
        if not pilot:
            return self.ctx
        if self._pilot_ctx is None:
            ref = self.dataset.draw(self.budget["n_reference"],
                                    rng_for(self.budget["root_seed"], self.key, "pilot-ref"))
            self._pilot_ctx = MetricContext(ref, dataset=self.dataset, seed=self.metric_seed,
                                            bandwidth=self.ctx.bandwidth)
        return self._pilot_ctx

    def floor(self, n: int) -> dict:
        """Noise floor of every metric at size n, cached on disk (atomic JSON)."""
        path = Path(self.out) / "floors" / f"{self.key}_n{n}_s{self.budget['floor_seeds']}.json"
        if path.exists():
            with open(path) as fh:
                return json.load(fh)
        values = noise_floor(self.metrics, self.ctx, n, n_seeds=self.budget["floor_seeds"],
                             seed=self.metric_seed)
        rec = {"dataset": self.name, "dataset_key": self.key, "params": self.params, "n": n,
               "floor_seeds": self.budget["floor_seeds"], "reference_hash": self.reference_hash,
               **{f"{m}": v[0] for m, v in values.items()},
               **{f"{m}_std": v[1] for m, v in values.items()}}
        store.write_json(path, rec)
        return rec

    def training(self, rep: int, kind: str | None, n: int):
        """The repetition's training data, identical for every method: the dataset's primary
        kind is drawn once (seeded by dataset and repetition); a method that asks for samples
        of a trajectory dataset gets the x of the same pairs."""
        if kind is None:
            return None
        primary = self.dataset.data_kinds[0]
        data = self.dataset.train(n, rng_for(self.budget["root_seed"], self.key, rep, "train"),
                                  kind=primary)
        if kind == "samples" and data.has_pairs:
            return TrainingData(data.x, info=dict(data.info))
        if kind == "trajectories" and not data.has_pairs:
            raise ConfigError(f"dataset {self.name!r} has no trajectories "
                              f"(data kinds: {', '.join(self.dataset.data_kinds)})")
        return data

    def initial(self, rep: int, n: int) -> np.ndarray:
        return self.dataset.initial(n, rng_for(self.budget["root_seed"], self.key, rep, "init"))


PILOT = -1  # the repetition index of step-size pilot runs (their own seeds)


def run_config(session: DatasetSession, method: str, method_params: dict, rep: int) -> dict:
    """The full config of one run; its hash is the run id. Repetition PILOT marks a pilot."""
    b = session.budget
    return {
        "dataset": session.name, "dataset_params": session.params,
        "method": method, "method_params": method_params, "repetition": rep,
        "root_seed": b["root_seed"], "n_particles": b["n_particles"], "n_steps": b["n_steps"],
        "n_train": b["n_train"], "n_reference": b["n_reference"],
        "checkpoints": checkpoints(b["n_steps"], b["n_checkpoints"]),
        "metrics": session.metrics,
    }


def execute_run(session: DatasetSession, method: str, method_params: dict, rep: int,
                log: Callable[[str], None] = lambda s: None) -> tuple[pd.DataFrame, dict]:
    """Run one (dataset, method, repetition) and return (rows, manifest); never raises on a
    failing sampler: the failure is recorded in the manifest's status and reason."""
    sampler = registry.get_sampler(method, **method_params)
    config = run_config(session, method, dict(sampler.params), rep)
    b = session.budget
    ctx = session.context(pilot=rep == PILOT)
    rows: list[dict] = []
    manifest = {"run_id": store.config_hash(config), "config": config, "status": "ok",
                "reason": None, "uses": list(sampler.uses), "data_kind": sampler.data_kind,
                "dataset_key": session.key, "reference_hash": session.reference_hash,
                "metric_info": {m: metric_info(m, session.ctx, b["n_particles"])
                                for m in session.metrics},
                "git_commit": git_commit(), "environment": environment(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    state = {"seconds": 0.0, "fit_seconds": None}
    marks = set(config["checkpoints"])

    def record(it: int, x: np.ndarray) -> None:
        row = {"iteration": it, "seconds": state["seconds"]}
        row.update(evaluate(session.metrics, x, ctx))
        row.update({k: float(v) for k, v in sampler.diagnostics().items()})
        rows.append(row)

    try:
        train = session.training(rep, sampler.data_kind, b["n_train"])
        manifest["data_hash"] = (store.array_hash(train.x, train.y) if train is not None
                                 else None)
        x = session.initial(rep, b["n_particles"])
        rng = rng_for(b["root_seed"], session.key, method, rep, "method")
        t0 = time.perf_counter()
        sampler.setup(session.dataset, train, rng)
        state["fit_seconds"] = time.perf_counter() - t0
        record(0, x)
        for it in range(1, b["n_steps"] + 1):
            t0 = time.perf_counter()
            x = sampler.step(x, rng)
            state["seconds"] += time.perf_counter() - t0
            if not np.all(np.isfinite(x)):
                raise FloatingPointError(f"non-finite particles at step {it}")
            if np.max(np.abs(x)) > DIVERGENCE_FACTOR * session.extent:
                raise FloatingPointError(f"diverged at step {it}: max |x| = "
                                         f"{np.max(np.abs(x)):.3g}")
            if it in marks:
                record(it, x)
    except Exception as err:  # a failing run is a result, not a crash of the sweep
        manifest["status"] = "failed"
        manifest["reason"] = f"{type(err).__name__}: {err}"
        manifest["traceback"] = traceback.format_exc(limit=6)
        log(f"    failed: {manifest['reason']}")
    manifest["fit_seconds"] = state["fit_seconds"]
    manifest["sample_seconds"] = state["seconds"]
    try:
        manifest["fit_info"] = sampler.fit_info() if manifest["status"] == "ok" else {}
    except Exception:  # noqa: BLE001 - fit info is optional
        manifest["fit_info"] = {}
    frame = pd.DataFrame(rows, columns=["iteration", "seconds", *session.metrics]
                         if not rows else None)
    return frame, manifest


def _params_for(entry, name: str, params: dict, label: str) -> dict:
    """Suite params, overridden per dataset by method_params[label] (or [name])."""
    return {**params, **entry.method_params.get(label, entry.method_params.get(name, {}))}


def validate_suite(suite: Suite, entries=None, methods=None) -> None:
    """Check every dataset, method, parameter and metric name of a suite without running it,
    so that a typo fails at once rather than an hour into a sweep (ConfigError)."""
    for entry in suite.datasets if entries is None else entries:
        dataset = registry.get_dataset(entry.name, **entry.params)
        for name, params, label in suite.methods if methods is None else methods:
            registry.get_sampler(name, **_params_for(entry, name, params, label))
        known = set(METRICS) | set(dataset.task_metrics())
        for metric in entry.budget["metrics"]:
            if metric not in known | {"default", "all"}:
                raise choice_error(f"metric for dataset {entry.name!r}", metric, known)


def run_suite(suite: Suite, out: Path, *, log: Callable[[str], None] | None = None,
              datasets: list[str] | None = None, methods: list[str] | None = None) -> list[str]:
    """Run every (dataset, method, repetition) of the suite not already finished in ``out``.

    Returns the run ids of the suite (finished before or now). Unknown dataset or method names
    raise ConfigError before anything runs.
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    out = Path(out)
    for name in datasets or []:
        if name not in {e.name for e in suite.datasets}:
            raise choice_error("dataset in this suite", name, {e.name for e in suite.datasets})
    entries = [e for e in suite.datasets if not datasets or e.name in datasets]
    todo = [m for m in suite.methods if not methods or m[0] in methods or m[2] in methods]
    validate_suite(suite, entries, todo)
    ids: list[str] = []
    for entry in entries:
        session = DatasetSession(entry.name, entry.params, entry.budget, out)
        session.floor(entry.budget["n_particles"])
        for name, params, label in todo:
            params = _params_for(entry, name, params, label)
            if "step" not in params and entry.budget["step_grid"]:
                params["step"] = tune_step(session, name, params, entry.budget["step_grid"],
                                           log)
            for rep in range(entry.budget["repetitions"]):
                ids.append(_run_once(session, name, params, rep, suite.name, log,
                                     {"label": label}))
    return ids


def _run_once(session: DatasetSession, method: str, params: dict, rep: int, suite_name: str,
              log: Callable[[str], None], extra: dict | None = None) -> str:
    """Execute and store one run unless it is finished already; returns its id."""
    out = session.out
    sampler = registry.get_sampler(method, **params)
    rid = store.config_hash(run_config(session, method, dict(sampler.params), rep))
    label = "pilot" if rep == PILOT else f"rep {rep}"
    if store.is_finished(out, rid):
        log(f"  {session.name:16s} {method:8s} {label}: done before ({rid})")
        return rid
    t0 = time.perf_counter()
    rows, manifest = execute_run(session, method, params, rep, log)
    manifest["suite"] = suite_name
    manifest.update(extra or {})
    store.save_run(out, rid, rows, manifest)
    log(f"  {session.name:16s} {method:8s} {label}: {manifest['status']} "
        f"in {time.perf_counter() - t0:.1f} s ({rid})")
    return rid


def tune_step(session: DatasetSession, method: str, params: dict, grid: list[float],
              log: Callable[[str], None]) -> float:
    """The step-size rule, the same for every method (README, "Fair comparisons").

    One pilot run per step in ``grid`` at the suite's budget, with the pilot repetition's own
    training data, initial particles and sampler seeds, scored against an independent pilot
    reference. The chosen step minimises the pilot's final value of the suite's first metric
    over the pilots that did not fail; ties go to the larger step. Pilots are stored (and
    resumed) like runs, and the choice is recorded in ``OUT/steps/``.
    """
    metric = session.metrics[0]
    scores: dict[float, float] = {}
    for step in sorted(float(h) for h in grid):
        rid = _run_once(session, method, {**params, "step": step}, PILOT, "pilot", log)
        man = store.load_manifest(session.out, rid)
        if man["status"] != "ok":
            continue
        rows = store.load_runs(session.out, [rid])[0]
        scores[step] = float(rows.sort_values("iteration")[metric].iloc[-1])
    if not scores:
        raise ConfigError(f"every pilot step of {method!r} on {session.name!r} failed "
                          f"(grid {grid}); give a smaller step_grid or a fixed step")
    best = min(scores.values())
    chosen = max(h for h, v in scores.items() if v == best)
    store.write_json(Path(session.out) / "steps" / f"{session.key}_{method}_"
                     f"{store.config_hash(params)}.json",
                     {"dataset": session.name, "method": method, "params": params,
                      "metric": metric, "grid": list(grid), "pilot_scores": scores,
                      "chosen": chosen})
    log(f"  {session.name:16s} {method:8s} step {chosen:g} (pilot {metric}: "
        + ", ".join(f"{h:g}→{v:.3g}" for h, v in scores.items()) + ")")
    return chosen

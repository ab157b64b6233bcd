"""Drive a sweep: the only writer of a results folder.

:func:`run_suite` plans the suite, then :class:`Driver` runs the floors, the tuning pilots, the
choice of each tuned method's configuration and the repetitions as a dependency graph on an
executor (:mod:`kswgd.engine.executors`), skips runs whose manifest exists, and stores each
result atomically with its manifest last. A worker lost mid-run is resubmitted once
(:data:`ATTEMPTS`), then its run is stored as failed with the reason; a task still running
:data:`GRACE` seconds after its time limit is stopped (its worker killed, where the executor can)
and stored as failed; the sweep goes on. One sweep at a time writes a folder
(:func:`folder_lock`); Ctrl-C and SIGTERM stop it, resumable (:class:`SweepInterrupted`).
"""

from __future__ import annotations

import heapq
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kswgd.engine import store
from kswgd.engine.execute import (
    Interrupted,
    RunResult,
    failed_result,
    floor_record,
    over_time,
    run_task,
    skipped_result,
)
from kswgd.engine.executors import SerialExecutor
from kswgd.engine.plan import MethodPlan, Plan, plan_suite
from kswgd.engine.search import TuningSearch
from kswgd.engine.spec import RunSpec
from kswgd.engine.suite import Suite
from kswgd.engine.tuning import Pilot
from kswgd.engine.tuning import _key as config_key
from kswgd.params import ConfigError

#: What names a pilot in a run's one-line description (progress displays count its failures
#: apart: a failed pilot excludes a configuration, it is no failed run).
PILOT_TAG = "pilot rep"

#: How many times a task is submitted before a lost worker makes it a failed run.
ATTEMPTS = 2

#: Seconds past its time limit after which the driver stops a task that has not returned (the
#: run's own check between steps gets them first).
GRACE = 2.0


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
    tag = (f"{PILOT_TAG} {spec.repetition} h={step:g}" if spec.pilot
           else f"rep {spec.repetition}")
    return f"{spec.dataset:16s} {spec.label:10s} {tag} ({spec.run_id})"


class Driver:
    """Runs a plan into a results folder, the only writer. Tasks form a dependency graph: floors
    and untuned methods' repetitions are ready at once; a tuned method's pilots are ready at
    once, its grid extensions follow its scores, and its repetitions are queued when its
    configuration is chosen (:class:`~kswgd.engine.search.TuningSearch`). A run two method
    plans need (the same pilot) is computed once. At most ``executor.slots`` tasks are in
    flight; the queue serves pilots first (they gate repetitions), then floors and
    repetitions, each in plan order.
    A task whose worker was lost is resubmitted once (:data:`ATTEMPTS`), alone
    (nothing else in flight, so a second loss is its own), then stored as a failed run with the
    reason."""

    def __init__(self, out: Path, plan: Plan, log: Callable[[str], None], executor=None,
                 progress=None, time_limit: float | None = None):
        self.out, self.plan, self.log = Path(out), plan, log
        self.time_limit = time_limit
        self.executor = executor if executor is not None else SerialExecutor()
        self.progress = progress if progress is not None else LogProgress(log)
        self.finished: set[str] = set()
        self.extra = 0  # pilots added by grid extensions
        self.ids: dict[int, list[str]] = {}  # method plan index -> repetition ids
        self._queue: list[tuple[tuple, int, Task]] = []
        self._inflight: dict[Future, Task] = {}
        self._waiters: dict[str, list[Callable[[], None]]] = {}  # queued run id -> callbacks
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
            elif mp.tuned:
                search = TuningSearch(mp)
                self.pilot(i, search, search.initial())
            else:
                for spec in mp.runs():
                    self.ids[i].append(self.need(spec, (1, i)))

    def pilot(self, i: int, search: TuningSearch, specs: list[RunSpec]) -> None:
        for spec in specs:
            self.need(spec, (0, i), lambda spec=spec: self.pilot_done(i, search, spec))

    def pilot_done(self, i: int, search: TuningSearch, spec: RunSpec) -> None:
        search.record(spec.run_id, self.pilot_record(spec, search.specs[spec.run_id]))
        if search.waiting:
            return
        more = search.next_pilots()
        if more:
            self.extra += len(more)
            self.progress.grow(len(more))  # runs more than planned
            self.pilot(i, search, more)
        else:
            self.tuned(i, search)

    def tuned(self, i: int, search: TuningSearch) -> None:
        """Record the protocol's choice and queue the test repetitions at it (or store them
        as failed with every configuration's reason)."""
        mp = search.mp
        choice = search.choose()
        record = tuning_record(mp, search, choice)
        store.write_json(tuning_record_path(self.out, mp), record)
        shown = record["choice"] or "none"
        self.log(f"  {mp.base.dataset:16s} {mp.base.label:10s} chose {shown} "
                 f"({mp.selection}: {record['configurations']} configurations, "
                 f"{len(search.pilots)} pilots, margin {choice.margin})")
        if choice.config is None:
            reason = "no configuration counts (" + "; ".join(
                f"{k}: {why}" for k, why in choice.excluded.items()) + ")"
            unknown = {k: np.nan for k in mp.space if isinstance(mp.space[k][0], float)}
            bad = mp.base.with_config(unknown, "no configuration counts", tuning=mp.tuning_key)
            for rep in range(mp.repetitions):
                self.ids[i].append(self.stored(failed_result(bad.with_repetition(rep), reason)))
            return
        tuned = {"by": mp.selection, "configurations": record["configurations"],
                 "pilots": len(search.pilots), "seconds": record["pilot_seconds"],
                 "choice": shown, "margin": choice.margin}
        rule = (f"{mp.selection}: {record['configurations']} configurations × "
                f"{len(mp.validation)} validation repetitions")
        for spec in mp.chosen(choice.config, rule, tuned):
            self.ids[i].append(self.need(spec, (1, i)))

    def pilot_record(self, spec: RunSpec, config: dict) -> Pilot:
        """The :class:`~kswgd.engine.tuning.Pilot` of a stored pilot run: its validation
        scores at the start and the end, its final health, its failure, its seconds."""
        man = store.load_manifest(self.out, spec.run_id)
        rows = store.load_run_rows(self.out, spec.run_id).sort_values("iteration")
        seconds = float(np.nansum([man.get("fit_seconds") or 0.0,
                                   man.get("sample_seconds") or 0.0]))
        has = "validation" in rows and len(rows) > 0
        initial = float(rows["validation"].iloc[0]) if has else np.nan
        common = dict(config=config, repetition=spec.repetition, initial=initial,
                      n_particles=spec.n_particles, seconds=seconds)
        if man["status"] != "ok" or not has:
            return Pilot(score=None, failure=man["reason"] or "no validation score", **common)
        last = rows.iloc[-1]
        if int(last["iteration"]) != spec.n_steps:
            return Pilot(score=None, failure="ended before its last step", **common)
        return Pilot(score=float(last["validation"]), away=float(last["health.away"]),
                     distinct=float(last["health.distinct"]), **common)

    def need(self, spec: RunSpec, priority: tuple, then: Callable[[], None] | None = None) -> str:
        """Make sure a run is stored: queue it unless finished before (then ``then`` at once)."""
        rid = spec.run_id
        if rid in self._waiters:      # queued already (another method plan's pilot): wait
            desc = describe(spec)

            def also() -> None:
                self.progress.skipped(desc)
                if then is not None:
                    then()
            self._waiters[rid].append(also)
        elif store.is_finished(self.out, rid):
            self.progress.skipped(describe(spec))
            self.finished.add(rid)
            if then is not None:
                then()
        else:
            self._waiters[rid] = [then] if then is not None else []
            self._push(Task("run", spec, lambda: self._release(rid), priority))
        return rid

    def _release(self, rid: str) -> None:
        """A queued run is stored: call everything that waited for it."""
        for then in self._waiters.pop(rid, []):
            then()

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
        # Reached before it is written: an interrupt landing between the manifest's rename and
        # the return must still count the run (the count checks the disk for every id reached).
        self.finished.add(res.spec.run_id)
        store.save_result(self.out, res.spec.run_id, res.rows, res.particles, res.manifest)

    # -- the loop --------------------------------------------------------------------------
    def _push(self, task: Task) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (task.priority, self._seq, task))

    def _submit(self, task: Task) -> None:
        task.attempts += 1
        task.t0 = time.perf_counter()
        if task.kind == "run" and task.attempts == 1:
            self.progress.started(task.desc)
        fut = self.executor.submit(run_task, task.kind, task.spec, self.executor.threads,
                                   self.executor.describe(), self.time_limit)
        self._inflight[fut] = task

    def _complete(self, task: Task, fut: Future | None, over: str | None = None) -> None:
        """Store a task's result, or (``over``: the reason) its failure by the time limit."""
        try:
            if over is not None:
                result = (failed_result(task.spec, over) if task.kind == "run"
                          else floor_record(task.spec, "failed", over))
            else:
                result = fut.result()
        except Interrupted:
            raise
        except BaseException as err:  # noqa: BLE001 - a lost worker, not a failing run
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
            done, _ = wait(list(self._inflight), timeout=self._next_deadline(),
                           return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: self._inflight[f].priority):
                self._complete(self._inflight.pop(fut), fut)
            self._stop_overdue()
        return [rid for i in sorted(self.ids) for rid in self.ids[i]]

    def _left(self, fut: Future) -> float:
        """Seconds a task in flight has left before the driver stops it: its time limit and
        :data:`GRACE` from when its worker began it."""
        return self.time_limit + GRACE - self.executor.elapsed(fut)

    def _next_deadline(self) -> float | None:
        """Seconds to wait before looking for overdue tasks (None: no limit, or no way to stop
        a task on this executor). At most 1 s: a task's clock starts in its worker."""
        if self.time_limit is None or not hasattr(self.executor, "stop") or not self._inflight:
            return None
        return min(1.0, max(0.0, min(self._left(f) for f in self._inflight)))

    def _stop_overdue(self) -> None:
        """Stop every in-flight task past its time limit and :data:`GRACE`; store each failed
        with the step it had reached."""
        if self._next_deadline() is None:
            return
        for fut, task in sorted(self._inflight.items(), key=lambda kv: kv[1].priority):
            if not fut.done() and self._left(fut) <= 0:
                step = self.executor.stop(fut)
                del self._inflight[fut]
                self._complete(task, None, over_time(self.time_limit,
                                                     step if task.kind == "run" else None))


def clean_partial(out: Path) -> int:
    """Remove the temporary files a killed process left behind (names ``.*.tmp``); returns how
    many. Called under :func:`folder_lock`: no other driver is writing the folder."""
    n = 0
    for path in Path(out).rglob(".*.tmp"):
        path.unlink(missing_ok=True)
        n += 1
    return n


_HELD: dict[Path, list] = {}  # folder -> [open lock file, depth] held by this process


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` exclusively (``fcntl.flock``) while a sweep writes ``out``: one sweep
    per folder. The kernel releases the lock when this process ends, however it ends (the file
    stays, with the last holder's pid). Re-entrant within one process. ConfigError naming the
    holder's pid when another process holds it."""
    import fcntl

    out = store.check_out(out, create=True).resolve()
    if out in _HELD:
        _HELD[out][1] += 1
    else:
        fh = open(out / ".lock", "a+")  # noqa: SIM115 - held open for the sweep
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            pid = fh.read().strip() or "unknown"
            fh.close()
            raise ConfigError(f"results folder {out} is in use by another kswgd run (pid {pid}); "
                              "wait for it to end or give another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        _HELD[out] = [fh, 1]
    try:
        yield
    finally:
        _HELD[out][1] -= 1
        if not _HELD[out][1]:
            _HELD.pop(out)[0].close()  # closing the file releases the lock


@contextmanager
def stop_signals() -> Iterator[None]:
    """While a sweep runs in the main thread, Ctrl-C and SIGTERM raise :class:`Interrupted` (a
    genuine stop, unlike a KeyboardInterrupt raised by plug-in code). A signal this process
    ignores (SIGINT in a background job) stays ignored; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    old = {}
    for sig, default in ((signal.SIGINT, signal.default_int_handler),
                         (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(sig) is default:
            old[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)


def run_suite(suite: Suite, out: Path, *, log: Callable[[str], None] | None = None,
              datasets: list[str] | None = None, methods: list[str] | None = None,
              executor=None, progress: Callable[[int], object] | None = None,
              time_limit: float | None = None,
              labels: dict[str, str] | None = None) -> list[str]:
    """Run every planned run of the suite not already finished in ``out``.

    ``executor`` (:mod:`kswgd.engine.executors`; default: serial in this process, one thread per
    run) computes the tasks; only this process writes. ``progress(total)`` makes the progress
    display (``started/finished/skipped/grow/close``, e.g.
    :class:`kswgd.reports.progress.Progress`);
    without it each run is one ``log`` line. Returns the run ids of the suite's repetitions
    (finished before or now; pilots excluded); ``labels``, if given, is filled with run_id →
    this suite's label of each (a run stored by another suite may carry another).
    ``time_limit`` (seconds per run; default the suite's ``time_limit``) is not part of any
    run's identity. Bad names, an unwritable ``out`` and a folder another sweep holds
    (:func:`folder_lock`) raise ConfigError before anything runs; Ctrl-C or SIGTERM stops the
    workers and raises :class:`SweepInterrupted` with the count of finished runs.
    """
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    plan = plan_suite(suite, datasets, methods)
    out = store.check_out(out, create=True)
    limit = suite.time_limit if time_limit is None else float(time_limit)
    with folder_lock(out), stop_signals():
        clean_partial(out)
        for message in store.set_aside_damaged(out):  # damaged runs and floors: computed again
            log(message)
        driver = Driver(out, plan, log, executor, time_limit=limit)
        if progress is not None:
            driver.progress = progress(plan.n_planned)
        try:
            ids = driver.run()
            if labels is not None:
                labels.update({rid: plan.methods[i].base.label
                               for i, rids in driver.ids.items() for rid in rids})
            return ids
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
    sweeps (a tuned method's pilots and repetitions, from its tuning record)."""
    known = set(reached)
    for mp in plan.methods:
        if not mp.tuned:
            known.update(s.run_id for s in mp.runs())
            continue
        known.update(mp.pilot(c, r).run_id for c in mp.grid() for r in mp.validation)
        path = tuning_record_path(out, mp)
        if path.exists():
            rec = store.read_json(path)
            known.update(rec["pilot_runs"])
            known.update(rec["test_runs"])
    return sum(store.is_finished(out, rid) for rid in known)


def tuning_record(mp: MethodPlan, search: TuningSearch, choice) -> dict:
    """The tuning record of a method plan (``OUT/tuning/…json``): the protocol, every pilot,
    each configuration's statistics or exclusion, the best mean, the candidates within noise of it, the choice
    before and after the step margin, the pilots' cost and the test runs' ids."""
    searched = list(mp.searched)
    chosen = choice.config
    return {
        "dataset": mp.base.dataset, "method": mp.base.method, "label": mp.base.label,
        "params": mp.base.method_kw, "space": mp.space, "budget": mp.budget,
        "selection": mp.selection, "held_out_fraction": mp.held_out,
        "validation_repetitions": list(mp.validation), "pilot_steps": mp.pilot_steps,
        "steps": search.steps, "tuning_key": mp.tuning_key,
        "configurations": len({config_key(p.config) for p in search.pilots}),
        "pilot_seconds": float(sum(p.seconds for p in search.pilots)),
        "pilots": [{"config": p.config, "repetition": p.repetition, "score": p.score,
                    "initial": p.initial, "away": p.away, "distinct": p.distinct,
                    "seconds": p.seconds, "problems": p.problems()} for p in search.pilots],
        "stats": [{"config": st.config, "scores": st.scores, "mean": st.mean,
                   "spread": st.spread, "se": st.se, "excluded": st.excluded}
                  for st in choice.stats],
        "threshold": choice.threshold, "candidates": choice.candidates,
        "validated": choice.validated, "chosen": chosen, "margin": choice.margin,
        "choice": (", ".join(f"{k}={chosen[k]:g}" if isinstance(chosen[k], float)
                             else f"{k}={chosen[k]}" for k in searched if k in chosen)
                   if chosen is not None else None),
        "pilot_runs": sorted(search.specs),
        "test_runs": ([s.run_id for s in mp.chosen(chosen, "", {})] if chosen is not None
                      else []),
    }


def tuning_record_path(out: Path, mp: MethodPlan) -> Path:
    """Where the tuning record of a method plan is stored."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", mp.base.label)
    return (Path(out) / "tuning" /
            f"{mp.base.dataset}_{label}_{mp.base.run_id}_{mp.tuning_key}.json")

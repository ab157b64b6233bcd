"""Plan a suite into run specs before anything runs.

:func:`plan_suite` checks every dataset, method, parameter and metric name, matches each
sampler's declared needs against each dataset (:func:`kswgd.registry.incompatibility`) and each
metric's (:func:`kswgd.core.metrics.expand`), and builds the immutable
:class:`~kswgd.engine.spec.RunSpec` of every run: one :class:`MethodPlan` per (dataset entry,
method entry). Nothing is computed or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from kswgd import registry
from kswgd.core.metrics import expand
from kswgd.engine.spec import KEEP_PARTICLES, PILOT_REPETITION, RunSpec, code_fingerprint
from kswgd.engine.suite import DatasetEntry, Suite
from kswgd.params import ConfigError, choice_error


def checkpoints(n_steps: int, n_checkpoints: int) -> list[int]:
    """Iterations at which metrics are evaluated: 0, evenly spaced ones, and n_steps."""
    pts = np.linspace(0, n_steps, max(n_checkpoints, 1) + 1).round().astype(int)
    return sorted(set(pts.tolist()))


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
        metrics, skipped = expand(b["metrics"], dataset, others=task_names)
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

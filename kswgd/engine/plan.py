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
from kswgd.engine.spec import KEEP_PARTICLES, RunSpec, _frozen, code_fingerprint, short_hash
from kswgd.engine.suite import DatasetEntry, Suite
from kswgd.engine.target import _key
from kswgd.engine.tuning import (
    KSD_STATISTIC,
    configurations,
    space_selection_class,
    validation_repetitions,
)
from kswgd.params import ConfigError, choice_error


def checkpoints(n_steps: int, n_checkpoints: int) -> list[int]:
    """Iterations at which metrics are evaluated: 0, evenly spaced ones, and n_steps."""
    pts = np.linspace(0, n_steps, max(n_checkpoints, 1) + 1).round().astype(int)
    return sorted(set(pts.tolist()))


@dataclass
class MethodPlan:
    """One (dataset entry, method entry) of a suite: its repetition-0 template spec, why the
    pair is skipped, and when the method is tuned (:mod:`kswgd.engine.tuning`) its protocol:
    the non-step configurations and the step grid piloted on the validation repetitions,
    judged by the information class ``selection`` (held-out data split by ``held_out``)."""

    base: RunSpec
    repetitions: int
    skip: str | None = None
    configs: tuple[dict, ...] = ({},)   # the non-step configurations piloted
    steps: tuple[float, ...] = ()       # the step grid piloted (() = the step is not tuned)
    validation: tuple[int, ...] = ()    # validation repetitions (() = not tuned)
    selection: str = ""                 # the information class that judges the pilots
    held_out: float = 0.0
    pilot_steps: int = 0
    space: dict = field(default_factory=dict)   # the declared search space
    searched: tuple[str, ...] = ()              # the parameters it sets
    budget: int = 0

    @property
    def tuned(self) -> bool:
        return bool(self.validation)

    @property
    def tuning_key(self) -> str:
        """The identity of this method's tuning protocol (part of its test runs' identity):
        what was piloted, how often, for how long and judged by what."""
        if not self.tuned:
            return ""
        return short_hash({"configs": list(self.configs), "steps": list(self.steps),
                           "validation": list(self.validation), "selection": self.selection,
                           "held_out": self.held_out, "pilot_steps": self.pilot_steps,
                           **({"ksd": KSD_STATISTIC} if self.selection == "ksd" else {})})

    def runs(self) -> list[RunSpec]:
        """The test repetitions of an untuned method."""
        return [self.base.with_repetition(r) for r in range(self.repetitions)]

    def pilot(self, config: dict, rep: int) -> RunSpec:
        """The pilot of one full configuration (step included) on validation repetition
        ``rep`` (< 0): ``pilot_steps`` iterations, scored at the start and the end by its
        information class only (no leaderboard metric: nothing of π's reference reaches it)."""
        spec = _configured(self.base, config, "pilot", selection=self.selection,
                           held_out=self.held_out).with_repetition(rep)
        return replace(spec, n_steps=self.pilot_steps, checkpoints=(0, self.pilot_steps),
                       metrics=(), skipped_metrics=())

    def grid(self, steps: tuple[float, ...] | None = None, configs=None) -> list[dict]:
        """Every full configuration of ``configs`` (default: all) × ``steps`` (default: the
        step grid)."""
        steps = self.steps if steps is None else steps
        configs = self.configs if configs is None else configs
        if not steps:
            return [dict(c) for c in configs]
        return [{**c, "step": float(h)} for c in configs for h in steps]

    def chosen(self, config: dict, rule: str, tuned: dict) -> list[RunSpec]:
        """The test repetitions at the chosen configuration."""
        spec = _configured(self.base, config, rule, tuning=self.tuning_key, tuned=_frozen(tuned))
        return [spec.with_repetition(r) for r in range(self.repetitions)]


def _configured(base: RunSpec, config: dict, rule: str, **fields) -> RunSpec:
    """``base`` at ``config``, with the information and the data kind that configuration
    declares (KSWGD's Dirichlet estimator learns from samples where its EDMD learns from pairs,
    so a search over the estimator changes what the run is given and what its row says)."""
    sampler = registry.get_sampler(base.method, **{**base.method_kw, **config})
    return replace(base.with_config(config, rule, **fields), uses=tuple(sampler.uses),
                   data_kind=sampler.data_kind)


@dataclass
class Plan:
    """The planned sweep: method plans in order, and the floor specs (one per target law and
    budget)."""

    suite: Suite
    methods: list[MethodPlan] = field(default_factory=list)

    @property
    def n_planned(self) -> int:
        """Runs known before anything runs: repetitions and the pilots of runnable tuned
        methods (a skipped method's pilots never run)."""
        return sum(m.repetitions + (0 if m.skip or not m.tuned else
                                    len(m.grid()) * len(m.validation)) for m in self.methods)


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
        seen: dict[tuple[str, str], str] = {}
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
            base = RunSpec.make(
                suite=suite.name, dataset=entry.name, dataset_params=dict(dataset.params),
                method=name, method_params=dict(sampler.params), label=label,
                uses=tuple(sampler.uses), data_kind=sampler.data_kind,
                n_particles=int(b["n_particles"]), n_steps=int(b["n_steps"]),
                n_train=int(b["n_train"]), n_reference=int(b["n_reference"]),
                checkpoints=checkpoints(b["n_steps"], b["n_checkpoints"]), metrics=metrics,
                skipped_metrics=skipped, floor_seeds=int(b["floor_seeds"]), repetition=0,
                pilot=False, root_seed=int(b["root_seed"]), keep_particles=b["keep_particles"],
                code=code_fingerprint(entry.name, name), step_rule="fixed")
            mp = MethodPlan(base, int(b["repetitions"]),
                            registry.incompatibility(sampler, dataset))
            _plan_tuning(mp, suite, b, name, raw, label, pilot_steps)
            if mp.selection == "ksd" and dataset.score is None and mp.skip is None:
                raise ConfigError(f"suite '{suite.name}', dataset '{entry.name}': method "
                                  f"'{label}' would be tuned by the KSD, but the dataset has no "
                                  "score; fix its parameters or set selection = 'oracle' for it")
            key = (base.run_id, mp.tuning_key)
            if key in seen:
                raise ConfigError(f"suite '{suite.name}', dataset '{entry.name}': method "
                                  f"entries '{seen[key]}' and '{label}' are the same "
                                  "configuration under the same protocol (the same runs); "
                                  "give one of them other params or search")
            seen[key] = label
            plan.methods.append(mp)
    return plan


def _plan_tuning(mp: MethodPlan, suite: Suite, b: dict, name: str, raw: dict, label: str,
                 pilot_steps: int) -> None:
    """Fill in a method plan's tuning protocol (nothing when its configuration is fixed).

    The space is the method entry's ``search`` (a parameter the dataset entry fixes in
    ``method_params`` is not searched; ``configs``, a list of tables, is one axis of joint
    alternatives, e.g. ``[{estimator = "edmd"}, {estimator = "kernel-edmd", rank = 40}]``, and
    an alternative that contradicts a fixed parameter is dropped), its step the ``search.step``
    list or else the suite's ``step_grid`` when ``step`` is not fixed. ``tuning_budget`` non-step
    configurations are drawn (:func:`kswgd.engine.tuning.configurations`, seeded by the root
    seed and the label), each piloted at every step; every configuration is checked now (a bad
    value is a ConfigError before anything runs) and the space must have one information class."""
    space = {k: v for k, v in suite.search.get(label, {}).items() if k not in raw or k == "step"}
    if "configs" in space:   # alternatives: one that contradicts a fixed parameter is dropped
        alts = [{k: v for k, v in a.items() if k not in raw} for a in space["configs"]
                if all(raw[k] == v for k, v in a.items() if k in raw)]
        space["configs"] = [a for i, a in enumerate(alts) if a not in alts[:i]] or [{}]
    if "step" in raw:
        space.pop("step", None)
    elif "step" not in space and b["step_grid"]:
        space["step"] = list(b["step_grid"])
    if not space:
        return
    others = {k: v for k, v in space.items() if k != "step"}
    if "configs" in others:
        others["configs"] = list(range(len(space["configs"])))
    configs = configurations(others, int(b["tuning_budget"]),
                             _key(b["root_seed"], "tuning", label)) if others else [{}]
    configs = [{**{k: v for k, v in c.items() if k != "configs"},
                **(space["configs"][c["configs"]] if "configs" in c else {})} for c in configs]
    uses = [registry.get_sampler(name, **{**raw, **c, **({"step": h} if h else {})}).uses
            for c in configs for h in (space.get("step") or [None])]
    mode = suite.selection.get(label, b["selection"])
    mp.selection = space_selection_class(uses, mode)
    mp.configs = tuple(configs)
    mp.steps = tuple(sorted(float(h) for h in space.get("step", [])))
    mp.validation = tuple(validation_repetitions(int(b["pilot_repetitions"])))
    mp.held_out = float(b["held_out_fraction"]) if mp.selection == "held-out" else 0.0
    mp.pilot_steps = pilot_steps
    mp.space = space
    mp.searched = tuple(sorted({k for c in configs for k in c} | set(space) - {"configs"}))
    mp.budget = int(b["tuning_budget"])


def validate_suite(suite: Suite, entries=None, methods=None) -> Plan:
    """Check every dataset, method, parameter and metric name of a suite without running it,
    so that a typo fails at once rather than an hour into a sweep (ConfigError)."""
    return plan_suite(suite, [e.name for e in entries] if entries else None,
                      [m[2] for m in methods] if methods else None)

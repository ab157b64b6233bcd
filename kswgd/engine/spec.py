"""One immutable record per run: the :class:`RunSpec`, and the code fingerprint in its identity.

A spec is built once, when a suite is planned (:func:`kswgd.engine.plan.plan_suite`), and every
reader works from it or from its flat columns (:meth:`RunSpec.columns`): the runner executes
it, the store writes its columns into every row, the leaderboard, plots, publish and compare
group by those columns. Nothing downstream re-derives "is this a pilot", the label or the floor
file name: they are here (what a metric is, e.g. whether it may be negative, is its record in
:mod:`kswgd.core.metrics`).

Run identity
------------
``run_id`` = SHA-256 of the canonical JSON of the spec's identity (every field except the
presentation fields ``suite``, ``label`` and ``step_rule``) together with the code fingerprint
(``code``). The fingerprint (:func:`code_fingerprint`) hashes the kswgd package sources plus the
files of the dataset and sampler plug-ins the run involves (each plug-in file and the private
``_*.py`` helpers of its folder). Editing a plug-in reruns only the runs that use it; editing the
core reruns everything; unrelated plug-ins leave the ids alone.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

#: Repetition index of the first validation (pilot) repetition; pilots run on −1, −2, ….
PILOT_REPETITION = -1

#: The budget columns: runs that differ in one of these (or in the dataset or its parameters)
#: are never compared in one table.
BUDGET_COLUMNS = ("n_particles", "n_steps", "n_train", "n_reference")

#: Fields that name or present a run but do not change its numbers (not part of the run id).
PRESENTATION_FIELDS = ("suite", "label", "step_rule", "tuned")

#: The columns that are wall-clock measurements: they differ between reruns of the same spec.
CLOCK_COLUMNS = ("seconds", "fit_seconds", "tuning.seconds")

#: What a suite may ask to keep of the particles: the final ones, or those of every checkpoint.
KEEP_PARTICLES = ("final", "checkpoints")


def jsonable(obj: Any) -> Any:
    """JSON form of numpy scalars and arrays, tuples and paths (``json.dump``'s ``default``)."""
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray | tuple):
        return obj.tolist() if isinstance(obj, np.ndarray) else list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces) used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=jsonable)


def short_hash(obj: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def _frozen(params: dict) -> tuple[tuple[str, Any], ...]:
    """A parameter dict as a sorted tuple of pairs (hashable; lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def flat_value(value: Any) -> Any:
    """A parameter value as one table cell: scalars as they are, anything else as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return canonical_json(value)


def law_key(dataset: str, params: dict) -> str:
    """Identity of a target law: a dataset name and its resolved parameters."""
    return short_hash({"dataset": dataset, "params": params})


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run (frozen: built once, never edited).

    ``dataset_params``/``method_params`` are the *resolved* parameters (defaults filled in,
    the chosen step included), stored as sorted pairs; read them through :attr:`dataset_kw`
    and :attr:`method_kw`. ``uses`` and ``data_kind`` are what the configured sampler declares.
    ``code`` is the code fingerprint (:func:`code_fingerprint`).
    """

    suite: str
    dataset: str
    dataset_params: tuple[tuple[str, Any], ...]
    method: str
    method_params: tuple[tuple[str, Any], ...]
    label: str
    uses: tuple[str, ...]
    data_kind: str | None
    n_particles: int
    n_steps: int
    n_train: int
    n_reference: int
    checkpoints: tuple[int, ...]
    metrics: tuple[str, ...]
    floor_seeds: int
    repetition: int
    pilot: bool
    root_seed: int
    keep_particles: str = "final"
    code: str = ""
    step_rule: str = ""
    skipped_metrics: tuple[tuple[str, str], ...] = field(default=())
    selection: str = ""      # a pilot's information class (kswgd.engine.tuning); "" otherwise
    held_out: float = 0.0    # a pilot's held-out share of its training data
    tuning: str = ""         # a test run's tuning protocol key ("" when its config is fixed)
    tuned: tuple[tuple[str, Any], ...] = field(default=())   # how it was chosen (presentation)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def make(cls, *, dataset_params: dict, method_params: dict, checkpoints, metrics,
             uses=(), skipped_metrics: dict | None = None, tuned: dict | None = None,
             **kw) -> RunSpec:
        """Build a spec from plain dicts and lists."""
        return cls(dataset_params=_frozen(dataset_params), method_params=_frozen(method_params),
                   uses=tuple(uses), tuned=_frozen(tuned or {}),
                   checkpoints=tuple(int(c) for c in checkpoints),
                   metrics=tuple(metrics),
                   skipped_metrics=tuple(sorted((skipped_metrics or {}).items())), **kw)

    def with_config(self, config: dict, rule: str, **fields) -> RunSpec:
        """The same spec with the method parameters of ``config`` set (chosen by ``rule``)."""
        return replace(self, method_params=_frozen({**self.method_kw, **config}),
                       step_rule=rule, **fields)

    def with_repetition(self, rep: int) -> RunSpec:
        """The spec on repetition ``rep``: test repetitions are 0, 1, …; validation (pilot)
        repetitions −1, −2, … have their own training data, initial particles and seeds."""
        return replace(self, repetition=int(rep), pilot=int(rep) < 0)

    # -- views -------------------------------------------------------------------------------
    @property
    def dataset_kw(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.dataset_params}

    @property
    def method_kw(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.method_params}

    @property
    def dataset_key(self) -> str:
        """Identity of the target law (dataset and resolved params); keys the seeds."""
        return law_key(self.dataset, self.dataset_kw)

    def identity(self) -> dict:
        """The fields that determine the run's numbers (everything but presentation)."""
        d = asdict(self)
        for key in PRESENTATION_FIELDS:
            d.pop(key)
        return d

    @property
    def run_id(self) -> str:
        """Hash of the spec's identity, code fingerprint included."""
        return short_hash(self.identity())

    def to_dict(self) -> dict:
        """JSON-friendly dict of every field (parameters as dicts), for the manifest."""
        d = asdict(self)
        d["dataset_params"] = self.dataset_kw
        d["method_params"] = self.method_kw
        d["skipped_metrics"] = dict(self.skipped_metrics)
        d["tuned"] = dict(self.tuned)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        """The spec back from :meth:`to_dict` (e.g. a manifest's ``spec``); same run id."""
        return cls.make(**d)

    def columns(self) -> dict[str, Any]:
        """The flat columns every row of this run carries (see docs/results.md)."""
        cols: dict[str, Any] = {"run_id": self.run_id, "suite": self.suite,
                                "dataset": self.dataset}
        cols.update({f"dataset.{k}": flat_value(v) for k, v in self.dataset_params})
        cols["method"] = self.method
        cols.update({f"method.{k}": flat_value(v) for k, v in self.method_params})
        cols.update(label=self.label, uses=",".join(self.uses), step_rule=self.step_rule,
                    n_particles=self.n_particles, n_steps=self.n_steps, n_train=self.n_train,
                    n_reference=self.n_reference, metrics=",".join(self.metrics),
                    repetition=self.repetition, pilot=self.pilot,
                    root_seed=self.root_seed, code=self.code)
        if self.selection:
            cols.update(selection=self.selection, held_out=self.held_out)
        if self.tuning:
            cols["tuning"] = self.tuning
        cols.update({f"tuning.{k}": flat_value(v) for k, v in self.tuned})
        return cols


def floor_file(spec: RunSpec) -> str:
    """File name (under OUT/floors/) of the floors a spec is compared with: one per target law,
    particle count, reference size, training size, metrics, floor seeds, root seed and code."""
    key = {"dataset": spec.dataset, "params": spec.dataset_kw, "n": spec.n_particles,
           "n_reference": spec.n_reference, "n_train": spec.n_train,
           "metrics": list(spec.metrics), "floor_seeds": spec.floor_seeds,
           "root_seed": spec.root_seed, "code": dataset_fingerprint(spec.dataset)}
    return f"{spec.dataset}_{short_hash(key)}.json"


# ---------------------------------------------------------------------------------------------
# Code fingerprint
# ---------------------------------------------------------------------------------------------


def _hash_files(paths) -> str:
    h = hashlib.sha256()
    for path in sorted({Path(p).resolve() for p in paths}):
        h.update(f"{path.parent.name}/{path.name}".encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


#: What computes a run: the plug-in interfaces at the package's top level, the numerical core
#: and the engine. ``reports/``, ``tools/`` and ``cli.py`` only read, present or time stored
#: results, so editing them leaves finished runs current.
COMPUTING_PARTS = ("core", "engine")


def computing_sources() -> list[Path]:
    """The ``.py`` files of the package that compute runs (see :data:`COMPUTING_PARTS`)."""
    root = Path(__file__).resolve().parents[1]
    files = [p for p in root.glob("*.py") if p.name != "cli.py"]
    for part in COMPUTING_PARTS:
        files += [p for p in (root / part).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files)


@cache
def core_fingerprint() -> str:
    """Hash of :func:`computing_sources` (cached per process). File names are hashed relative
    to the package, so moving a module changes every run id once."""
    return _hash_files(computing_sources())


def plugin_files(cls: type) -> list[Path]:
    """A plug-in class's source file plus every helper module beside it: each ``.py`` file of
    its folder that defines no registered plug-in (a helper, with or without a
    leading underscore). Nothing for classes of the kswgd package itself."""
    from kswgd import registry

    path = Path(inspect.getsourcefile(cls)).resolve()
    if Path(__file__).resolve().parents[1] in path.parents:
        return []
    plugins = registry.plugin_sources()
    helpers = (p for p in path.parent.glob("*.py")
               if p.name != "__init__.py" and p.resolve() not in plugins)
    return [path, *sorted(helpers)]


@cache
def dataset_fingerprint(name: str) -> str:
    """Hash of the core and of the named dataset plug-in's files."""
    from kswgd import registry

    return short_hash([core_fingerprint(), _hash_files(plugin_files(registry.datasets()[name]))])


def code_fingerprint(dataset: str, method: str) -> str:
    """Fingerprint of the code that computes a run: core sources, the dataset's plug-in files
    and the sampler's plug-in files, hashed together."""
    from kswgd import registry

    files = plugin_files(registry.datasets()[dataset]) + plugin_files(
        registry.samplers()[method])
    return short_hash([core_fingerprint(), _hash_files(files)])

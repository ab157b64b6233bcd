"""Suite files: which datasets × methods × repetitions to run, at which matched budget.

A suite is a TOML file in ``benchmarks/suites/`` (``kswgd run --suite NAME``) or any path.
Top-level keys set the budget shared by every method (fair comparisons): ``repetitions``,
``n_particles``, ``n_steps``, ``n_checkpoints``, ``n_train``, ``n_reference``, ``metrics``,
``floor_seeds``, ``root_seed``, ``keep_particles`` ("final", the default: each run keeps its
final particles; "checkpoints": also those of every checkpoint) and the tuning protocol's keys
(docs/design.md, "Tuning protocol"; :mod:`kswgd.engine.tuning`): ``step_grid`` (the steps
piloted for a method whose params do not fix ``step`` and whose ``search`` has none),
``tuning_budget`` (the most configurations of the non-step parameters piloted per method, the
same for every method; each is piloted at every step of its grid), ``pilot_repetitions`` (R ≥ 2
validation repetitions), ``held_out_fraction`` (the share of a validation repetition's training
data a data-learning method is judged on), ``selection`` ("declared": each method judged only by
the information it declares; "oracle": against exact draws of π, the labelled upper bound) and
``pilot_steps`` (the iterations of each pilot; 0, the default, = ``n_steps``). ``[[datasets]]``
entries have ``name``, ``params`` and may override the budget keys and give per-method
parameters (``method_params.<method> = {...}``, e.g. a step size for that dataset), and
``methods = [...]`` (labels or names of ``[[methods]]`` entries) to run only those on it (e.g.
an ablation's training-size sweep at one rank). The same dataset may appear in several entries
with different budgets. ``[[methods]]`` entries have ``name``, ``params`` and optionally
``label``, ``search`` (a table of lists: the method's search space, e.g. ``search = { rank =
[20, 40], step = [0.01, 0.1] }``) and ``selection`` (overrides the suite's). Optional
``description`` and ``estimated_minutes`` (the measured wall clock on the 2-core machine) are
what ``kswgd suites`` shows. ``time_limit`` (seconds per run, default
:data:`DEFAULT_TIME_LIMIT`; ``kswgd run --time-limit`` overrides it) stops a run that takes
longer; it is not part of any run's identity. Every key's type and range is checked on
loading (:data:`BUDGET_CONSTRAINTS`): a bad one is a one-line ConfigError naming the file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from kswgd.engine.tuning import HELD_OUT_FRACTION, MIN_DRAWS, SELECTION_MODES
from kswgd.params import Choice, ConfigError, Interval, ListOf, Text, choice_error

#: Seconds one run may take unless the suite or ``kswgd run --time-limit`` says otherwise.
DEFAULT_TIME_LIMIT = 3600.0

BUDGET_KEYS = {
    "repetitions": 3,
    "n_particles": 500,
    "n_steps": 200,
    "n_checkpoints": 4,
    "n_train": 2000,
    "n_reference": 1000,
    "metrics": ["w2", "mmd2"],
    "floor_seeds": 3,
    "root_seed": 20261128,
    "step_grid": [],
    "pilot_steps": 0,
    "keep_particles": "final",
    "tuning_budget": 4,
    "pilot_repetitions": MIN_DRAWS,
    "held_out_fraction": HELD_OUT_FRACTION,
    "selection": "declared",
}

#: The valid values of each budget key (TOML is typed: an integer key takes an integer, never a
#: float or a boolean). ``keep_particles`` and ``pilot_steps`` are checked further when planning.
BUDGET_CONSTRAINTS = {
    "repetitions": Interval(int, 1, None),
    "n_particles": Interval(int, 2, None),
    "n_steps": Interval(int, 1, None),
    "n_checkpoints": Interval(int, 1, None),
    "n_train": Interval(int, 2, None),
    "n_reference": Interval(int, 2, None),
    "metrics": ListOf(Text(), 1),
    "floor_seeds": Interval(int, 1, None),
    "root_seed": Interval(int, 0, None),
    "step_grid": ListOf(Interval(float, 0, None, closed="neither")),
    "pilot_steps": Interval(int, None, None),   # 1..n_steps (0 = n_steps), checked by the plan
    "keep_particles": Text(),
    "tuning_budget": Interval(int, 1, None),
    "pilot_repetitions": Interval(int, MIN_DRAWS, None),
    "held_out_fraction": Interval(float, 0, 1, closed="neither"),
    "selection": Choice(*SELECTION_MODES),
}
_TABLE = "a table"


def _check(path: Path, where: str, key: str, value, rule) -> None:
    """One-line ConfigError when ``value`` of ``key`` breaks ``rule`` (a kswgd.params
    constraint, or _TABLE for a TOML table)."""
    ok = isinstance(value, dict) if rule is _TABLE else rule.accepts(value)
    if not ok:
        valid = rule if rule is _TABLE else rule.describe()
        raise ConfigError(f"suite {path.name}: {where}{key} must be {valid}, got {value!r}")


def _check_budget(path: Path, where: str, table: dict) -> None:
    for key, rule in BUDGET_CONSTRAINTS.items():
        if key in table:
            _check(path, where, key, table[key], rule)


@dataclass
class DatasetEntry:
    name: str
    params: dict
    budget: dict
    method_params: dict = field(default_factory=dict)
    methods: list[str] | None = None   # labels or names of the methods run on it; None = all

    def runs_method(self, name: str, label: str) -> bool:
        """Whether the method entry (name, label) runs on this dataset entry."""
        return self.methods is None or name in self.methods or label in self.methods


@dataclass
class Suite:
    name: str
    description: str
    datasets: list[DatasetEntry]
    methods: list[tuple[str, dict, str]]   # (name, params, label)
    path: Path | None = None
    estimated_minutes: float | None = None  # wall clock on the 2-core machine (kswgd suites)
    time_limit: float = DEFAULT_TIME_LIMIT  # seconds per run (not in any run's identity)
    search: dict[str, dict[str, list]] = field(default_factory=dict)  # label -> search space
    selection: dict[str, str] = field(default_factory=dict)   # label -> its selection mode

    def check_filters(self, datasets: list[str] | None, methods: list[str] | None) -> None:
        """``--dataset``/``--method`` filters must name datasets and methods (names or labels)
        of this suite: ConfigError with a "did you mean" otherwise."""
        names = {e.name for e in self.datasets}
        for name in datasets or []:
            if name not in names:
                raise choice_error("dataset in this suite", name, names)
        labels = {m[0] for m in self.methods} | {m[2] for m in self.methods}
        for name in methods or []:
            if name not in labels:
                raise choice_error("method in this suite", name, labels)


def method_label(name: str, params: dict, unique: bool = True) -> str:
    """Leaderboard label of a suite's method entry: its name, or when the suite lists the same
    method several times (an ablation), the name with the entry's parameters."""
    if unique or not params:
        return name
    return f"{name}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"


def suite_dirs() -> list[Path]:
    """Where suite names are looked up: $KSWGD_SUITES, ./benchmarks/suites, the source tree's."""
    dirs = [Path(p) for p in os.environ.get("KSWGD_SUITES", "").split(os.pathsep) if p]
    dirs += [Path.cwd() / "benchmarks" / "suites",
             Path(__file__).resolve().parents[2] / "benchmarks" / "suites"]
    return list(dict.fromkeys(d for d in dirs if d.is_dir()))


def available_suites() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in reversed(suite_dirs()):
        found.update({p.stem: p for p in d.glob("*.toml")})
    return found


def load_suite(name_or_path: str) -> Suite:
    """Read a suite by name (see :func:`suite_dirs`) or by path; check its keys."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" and path.exists()):
        suites = available_suites()
        if name_or_path not in suites:
            raise choice_error("suite", name_or_path, suites)
        path = suites[name_or_path]
    with open(path, "rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"suite {path.name}: TOML syntax error: {err}") from None
    allowed = set(BUDGET_KEYS) | {"name", "description", "datasets", "methods",
                                  "estimated_minutes", "time_limit"}
    for key in raw:
        if key not in allowed:
            raise choice_error(f"key in suite {path.name}", key, allowed)
    _check_budget(path, "", raw)
    for key in ("name", "description"):
        if key in raw:
            _check(path, "", key, raw[key], Text())
    for key in ("datasets", "methods"):
        if not (isinstance(raw.get(key, []), list)
                and all(isinstance(item, dict) for item in raw.get(key, []))):
            raise ConfigError(f"suite {path.name}: {key} must be an array of tables "
                              f"([[{key}]] entries), got {raw[key]!r}")
    top = {k: raw.get(k, v) for k, v in BUDGET_KEYS.items()}
    entries = []
    for i, item in enumerate(raw.get("datasets", [])):
        extra = set(item) - set(BUDGET_KEYS) - {"name", "params", "method_params", "methods"}
        if extra or "name" not in item:
            raise ConfigError(f"suite {path.name}: a [[datasets]] entry needs 'name' and may "
                              f"have params, method_params, methods and "
                              f"{', '.join(BUDGET_KEYS)}; got {sorted(item)}")
        where = f"[[datasets]] entry {i + 1} ({item['name']!r}): "
        _check(path, where, "name", item["name"], Text())
        _check_budget(path, where, item)
        _check(path, where, "params", item.get("params", {}), _TABLE)
        _check(path, where, "method_params", item.get("method_params", {}), _TABLE)
        for method, table in item.get("method_params", {}).items():
            _check(path, where, f"method_params.{method}", table, _TABLE)
        if "methods" in item:
            _check(path, where, "methods", item["methods"], ListOf(Text(), 1))
        budget = {k: item.get(k, top[k]) for k in BUDGET_KEYS}
        only = item.get("methods")
        entries.append(DatasetEntry(item["name"], dict(item.get("params", {})), budget,
                                    dict(item.get("method_params", {})),
                                    None if only is None else [str(m) for m in only]))
    methods, search, selection = [], {}, {}
    items = raw.get("methods", [])
    names = [item.get("name") for item in items]
    for i, item in enumerate(items):
        if "name" not in item or set(item) - {"name", "params", "label", "search", "selection"}:
            raise ConfigError(f"suite {path.name}: a [[methods]] entry has 'name', 'params' "
                              "and optionally 'label', 'search' and 'selection'")
        where = f"[[methods]] entry {i + 1}: "
        _check(path, where, "name", item["name"], Text())
        _check(path, where, "params", item.get("params", {}), _TABLE)
        if "label" in item:
            _check(path, where, "label", item["label"], Text())
        _check(path, where, "search", item.get("search", {}), _TABLE)
        for key, values in item.get("search", {}).items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"suite {path.name}: {where}search.{key} must be a "
                                  f"non-empty list of values, got {values!r}")
            if key == "configs" and not all(isinstance(a, dict) for a in values):
                raise ConfigError(f"suite {path.name}: {where}search.configs must be a list "
                                  f"of tables (alternative configurations), got {values!r}")
            fixed = set(item.get("params", {}))
            if key == "configs" and any(fixed & set(a) for a in values):
                raise ConfigError(f"suite {path.name}: {where}search.configs sets "
                                  f"{sorted(fixed & {k for a in values for k in a})}, fixed in "
                                  "params; give each in one place")
            if key in item.get("params", {}):
                raise ConfigError(f"suite {path.name}: {where}{key!r} is both fixed in params "
                                  "and searched; give it in one place")
        if "selection" in item:
            _check(path, where, "selection", item["selection"], Choice(*SELECTION_MODES))
        params = dict(item.get("params", {}))
        label = item.get("label") or method_label(item["name"], params,
                                                  unique=names.count(item["name"]) == 1)
        methods.append((item["name"], params, label))
        if item.get("search"):
            search[label] = {k: list(v) for k, v in item["search"].items()}
        if "selection" in item:
            selection[label] = item["selection"]
    labels = [m[2] for m in methods]
    known = set(labels) | {m[0] for m in methods}
    for entry in entries:
        for name in entry.methods or []:
            if name not in known:
                raise choice_error(f"method of the {entry.name!r} entry of suite {path.name}",
                                   name, known)
    if len(set(labels)) != len(labels):
        raise ConfigError(f"suite {path.name}: two [[methods]] entries share a label; "
                          f"give each a distinct 'label' ({', '.join(labels)})")
    if not entries or not methods:
        raise ConfigError(f"suite {path.name} needs at least one [[datasets]] and [[methods]]")
    minutes = raw.get("estimated_minutes")
    if minutes is not None:
        _check(path, "", "estimated_minutes", minutes, Interval(float, 0, None, closed="neither"))
    limit = raw.get("time_limit", DEFAULT_TIME_LIMIT)
    _check(path, "", "time_limit", limit, Interval(float, 0, None, closed="neither"))
    return Suite(raw.get("name", path.stem), raw.get("description", ""), entries, methods, path,
                 minutes, float(limit), search, selection)

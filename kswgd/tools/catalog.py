"""Library side of ``kswgd datasets``, ``kswgd sample`` and ``kswgd suites``: describe and
draw from datasets, list the shipped suites.

Seeds: a split's generator is ``np.random.default_rng(np.random.SeedSequence(seed))``; the
dataset methods themselves only ever take a Generator, so the runner can pass its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from kswgd import registry
from kswgd.params import ConfigError, check_memory, choice_error

SPLITS = ("reference", "train")



def describe_datasets() -> list[dict]:
    """One dict per registered dataset (default parameters): name, description, dim,
    data_kinds, known (score / log_density / spectrum / manifold), default_sizes,
    reference_note, parameters."""
    out = []
    for name, cls in registry.datasets().items():
        ds = cls()
        out.append({
            "name": name,
            "description": cls.description,
            "dim": ds.dim,
            "data_kinds": list(cls.data_kinds),
            "known": ds.known(),
            "default_sizes": dict(cls.default_sizes),
            "reference_note": cls.reference_note,
            "parameters": {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in cls.parameters.items()},
        })
    return out


def sample_dataset(name: str, split: str, n: int, seed: int, params: dict | None = None
                   ) -> np.ndarray:
    """(n, d) float64 draws: ``reference`` = ``draw`` (independent draws of π), ``train`` = the
    training set's x (for trajectory data: the start points of the pairs)."""
    if split not in SPLITS:
        raise choice_error("split", split, SPLITS)
    if n < 1:
        raise ConfigError(f"--n must be a positive integer, got {n}")
    ds = registry.get_dataset(name, **(params or {}))
    check_memory(n * ds.dim * 8, f"{n} x {ds.dim} float64 draws of {name!r}")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    x = ds.draw(n, rng) if split == "reference" else ds.train(n, rng).x
    return np.ascontiguousarray(x, dtype=np.float64)


def time_datasets(names: list[str] | None = None, seed: int = 0) -> list[dict]:
    """Wall-clock seconds to build each dataset and generate its default-size training set,
    reference set and initial particles (default parameters)."""
    rows = []
    for name in names or list(registry.datasets()):
        t0 = time.perf_counter()
        ds = registry.get_dataset(name)
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        sizes = ds.default_sizes
        t1 = time.perf_counter()
        ds.train(sizes["n_train"], rng)
        t2 = time.perf_counter()
        ds.draw(sizes["n_reference"], rng)
        t3 = time.perf_counter()
        ds.initial(sizes["n_particles"], rng)
        t4 = time.perf_counter()
        rows.append({"name": name, "setup": t1 - t0, "train": t2 - t1, "reference": t3 - t2,
                     "initial": t4 - t3, "total": t4 - t0})
    return rows


def output_file(path: str | Path, suffix: str) -> Path:
    """Check an output file path before anything is computed: it must end in ``suffix``, its
    folder must exist and be writable, and it must not be a folder. Returns it as a Path.

    The file is then written at exactly this path (``numpy.save`` would append ``.npy`` to a
    name without it, so a name like ``def.txt`` is refused instead of silently renamed).
    """
    path = Path(path)
    if path.suffix != suffix:
        raise ConfigError(f"output file must end in {suffix}, got {str(path)!r}")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"output folder {str(folder)!r} " + (
            "is a file" if folder.exists() else "does not exist"))
    if path.is_dir():
        raise ConfigError(f"output path {str(path)!r} is a folder")
    if not os.access(folder, os.W_OK) or path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"cannot write {str(path)!r} (permission denied)")
    return path


def describe_suites() -> list[dict]:
    """One dict per suite found by :func:`kswgd.engine.suite.available_suites`: name, path,
    description, runs (datasets × methods × repetitions, pilots not counted) and
    estimated_minutes (the suite file's ``estimated_minutes``: measured wall clock on the
    2-core reference machine, or None when the file gives none). A suite that does not load is
    listed with its one-line error as description and runs = None."""
    from kswgd.engine.suite import available_suites, load_suite

    rows = []
    for name, path in sorted(available_suites().items()):
        row = {"name": name, "path": str(path), "runs": None, "estimated_minutes": None}
        try:
            suite = load_suite(str(path))
        except (ConfigError, ValueError, OSError) as err:
            row["description"] = f"(cannot load: {' '.join(str(err).split())})"
            rows.append(row)
            continue
        row["description"] = suite.description
        row["runs"] = sum(e.budget["repetitions"] * sum(e.runs_method(m[0], m[2])
                                                        for m in suite.methods)
                          for e in suite.datasets)
        row["estimated_minutes"] = suite.estimated_minutes
        rows.append(row)
    return rows


def load_factor(load: float | None = None, cores: int | None = None
                ) -> tuple[float, float, int]:
    """(factor, load, cores): how much slower than on an idle machine a suite should run now.
    ``load`` is the 1-minute load average (default: ``os.getloadavg``), ``cores`` the cores
    this process may use (default: its CPU affinity). factor = load / cores when the load is
    above the core count (the runnable processes share the cores), else 1."""
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    return (load / cores if load > cores else 1.0), float(load), int(cores)


def format_minutes(m: float) -> str:
    """``40 s`` under 2 minutes, ``12 min`` under 2 hours, ``2.5 h`` beyond."""
    return f"{m * 60:.0f} s" if m < 2 else f"{m:.0f} min" if m < 120 else f"{m / 60:.1f} h"


def suites_listing(rows: list[dict], load: float | None = None, cores: int | None = None
                   ) -> str:
    """The text of ``kswgd suites`` for :func:`describe_suites` rows: one line per suite
    (name, runs, the idle-machine estimate, and — when the load average is above the core
    count, :func:`load_factor` — the estimate scaled to the current load), columns as wide as
    their longest entry, then what the columns mean."""
    factor, load, cores = load_factor(load, cores)
    head = ["suite", "runs", "est. idle"] + (["est. now"] if factor > 1 else [])
    table = []
    for r in rows:
        m = r["estimated_minutes"]
        cells = [r["name"], "-" if r["runs"] is None else str(r["runs"]),
                 "?" if m is None else format_minutes(m)]
        if factor > 1:
            cells.append("?" if m is None else format_minutes(m * factor))
        table.append((cells, r["description"]))
    widths = [max(len(c) for c in col) for col in zip(head, *(c for c, _ in table), strict=True)]

    def line(cells: list[str], text: str) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return " ".join([first, *rest]) + "  " + text

    out = [line(head, "description")] + [line(c, d) for c, d in table]
    out.append("est. idle: the suite file's estimated_minutes, wall clock measured with --jobs 2 "
               "on an idle 2-core machine; runs: datasets × methods × repetitions, step-size "
               "pilots not counted")
    if factor > 1:
        out.append(f"est. now: est. idle × {factor:.1f}, the current load average {load:.1f} "
                   f"over this machine's {cores} cores")
    else:
        out.append(f"load average {load:.1f} on {cores} cores: no slower than idle")
    return "\n".join(out)

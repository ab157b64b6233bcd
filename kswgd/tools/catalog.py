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
        raise ConfigError(f"output folder {str(folder)!r} does not exist")
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

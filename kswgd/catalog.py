"""Library side of ``kswgd datasets`` and ``kswgd sample``: describe and draw from datasets.

Seeds: a split's generator is ``np.random.default_rng(np.random.SeedSequence(seed))``; the
dataset methods themselves only ever take a Generator, so the runner can pass its own.
"""

from __future__ import annotations

import time

import numpy as np

from kswgd import registry
from kswgd.params import ConfigError, choice_error

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

"""Score any (N, d) sample array against a dataset's reference set, with noise floors.

This is the library side of ``kswgd score``: build the dataset from the registry, draw its
held-out reference set with a seeded generator, evaluate the metrics on the samples and on fresh
draws of π of the same size (the noise floor).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kswgd.params import ConfigError


def load_samples(path: str | Path) -> np.ndarray:
    """Load an (N, d) numeric array from a ``.npy`` file (``numpy.save``); never unpickles.

    Any failure (no such file, an empty file, a CSV or other non-.npy file, an .npz archive, an
    object array) is a one-line ConfigError saying what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no such file: {str(path)!r}")
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is not a file")
    with open(path, "rb") as fh:
        head = fh.read(6)
    if not head:
        raise ConfigError(f"{str(path)!r} is empty; expected an (N, d) array saved with "
                          "numpy.save")
    if head.startswith(b"PK"):
        raise ConfigError(f"{str(path)!r} is an .npz archive; expected one (N, d) array saved "
                          "with numpy.save")
    if head != b"\x93NUMPY":
        raise ConfigError(f"{str(path)!r} is not a .npy file (no .npy header); expected an "
                          "(N, d) array saved with numpy.save (convert text files with "
                          "numpy.loadtxt, then numpy.save)")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        reason = ("it holds Python objects, not numbers" if "pickle" in str(err)
                  else " ".join(str(err).split()))
        raise ConfigError(f"cannot read {str(path)!r} as a numeric .npy array: {reason}"
                          ) from None
    return arr


def score_samples(
    x,
    dataset: str,
    params: dict | None = None,
    *,
    metric_names: Sequence[str] | str | None = None,
    n_reference: int | None = None,
    seed: int = 0,
    n_floor_seeds: int = 3,
    train_x=None,
) -> dict[str, dict]:
    """Score samples x (N, d) against dataset ``dataset`` (built with ``params``).

    The reference set is ``n_reference`` draws (default: the dataset's) from a generator seeded
    by ``seed``; metric names as in :func:`kswgd.core.metrics.resolve_names` ("default", "all" or a
    list). Returns {metric: {"value", "floor", "floor_std", "info"}}, the floor being the mean
    and std of the metric for fresh draws of π of size N over ``n_floor_seeds`` seeds.
    Bad input (shape, dimension, NaN/inf, unknown names) raises ConfigError first.
    """
    from kswgd.core import metrics  # imported here: reading a file must not wait for POT and SciPy
    from kswgd.registry import get_dataset

    ds = get_dataset(dataset, **(params or {}))
    x = metrics.as_points(x, "samples", dim=ds.dim)
    if n_reference is not None and n_reference < 2:
        raise ConfigError(f"--n-reference must be at least 2, got {n_reference}")
    ctx = metrics.MetricContext.for_dataset(ds, n_reference, seed=seed, train_x=train_x)
    asked = metric_names.split(",") if isinstance(metric_names, str) else list(metric_names or [])
    if ctx.train_x is None and "copy" in [n.strip() for n in asked]:
        raise ConfigError("metric 'copy' needs the training points (--train FILE.npy)")
    names = metrics.resolve_names(metric_names, ctx)
    values = metrics.evaluate(names, x, ctx)
    floors = metrics.noise_floor(names, ctx, x.shape[0], n_seeds=n_floor_seeds, seed=seed)
    return {
        name: {
            "value": values[name],
            "floor": floors[name][0],
            "floor_std": floors[name][1],
            "info": metrics.metric_info(name, ctx, x.shape[0]),
        }
        for name in names
    }

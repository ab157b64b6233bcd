"""Score any (N, d) sample array against a dataset's reference set, with noise floors.

This is the library side of ``kswgd score``: build the target law's reference set through the
runner's own :class:`kswgd.engine.target.Target` (one seed recipe: a root seed, the dataset and
its parameters, the reference size; or all of them from a stored run's manifest), evaluate the
metrics on the samples and on fresh draws of π of the same size (the noise floor).
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
    """Score samples x (N, d) against the target law ``dataset`` (built with ``params``).

    The reference set is that of a run with root seed ``seed`` and ``n_reference`` reference
    points (default: the dataset's): the same :class:`kswgd.engine.target.Target` the runner
    builds, so its draws never coincide with ``kswgd sample``'s. Metric names as in
    :func:`kswgd.core.metrics.expand` ("default", "all" or a list). Returns {metric: {"value",
    "floor", "floor_std", "info"}}, the floor being the mean and std of the metric for fresh
    draws of π of size N over ``n_floor_seeds`` seeds (the runner's noise floor). Bad input
    (shape, dimension, NaN/inf, unknown or unavailable names) raises ConfigError first.
    """
    from kswgd.engine.target import Target  # here: reading a file must not wait for SciPy
    from kswgd.registry import get_dataset

    ds = get_dataset(dataset, **(params or {}))
    if n_reference is None:
        n_reference = int(ds.default_sizes.get("n_reference", 2000))
    if n_reference < 2:
        raise ConfigError(f"--n-reference must be at least 2, got {n_reference}")
    names = _names(metric_names, ds, has_train=train_x is not None)
    _check(x, ds.dim)
    target = Target(dataset, dict(ds.params), n_reference, seed)
    ctx = target.context(False, train_x)
    return _score(x, names, ctx, ctx, target.metric_seed, n_floor_seeds)


def score_run(x, run: str | Path, metric_names: Sequence[str] | str | None = None
              ) -> dict[str, dict]:
    """Score samples x against the target of the stored run in folder ``run`` (the folder
    with its ``manifest.json``): its dataset and parameters, root seed, reference size, floor
    seeds and, for ``copy``, its repetition's training points, all read from the manifest's
    spec; a pilot run is scored on its pilot reference. Metrics default to the run's own. The
    run's ``particles.npy`` scores exactly the run's final stored metrics and floors."""
    from kswgd.engine.spec import RunSpec
    from kswgd.engine.store import read_json
    from kswgd.engine.target import target_for
    from kswgd.registry import get_dataset

    folder = Path(run)
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"--run {str(folder)!r}: no manifest.json there; expected a run "
                          "folder OUT/runs/RUN_ID of a finished run")
    try:
        spec = RunSpec.from_dict(read_json(manifest)["spec"])
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"--run {str(folder)!r}: unreadable manifest ({err})") from None
    names = _names(list(spec.metrics) if metric_names is None else metric_names,
                   get_dataset(spec.dataset, **spec.dataset_kw), has_train=True)
    _check(x, get_dataset(spec.dataset, **spec.dataset_kw).dim)
    target = target_for(spec)
    copy = "copy" in names
    ctx = target.context(spec.pilot, target.training(spec.repetition, spec.n_train).x
                         if copy else None)
    floor_ctx = target.context(False, target.training(0, spec.n_train).x if copy else None)
    return _score(x, names, ctx, floor_ctx, target.metric_seed, spec.floor_seeds)


def _check(x, dim: int) -> None:
    """Shape, dimension and finiteness of the samples, before any reference is drawn."""
    from kswgd.core.metrics import as_points

    as_points(x, "samples", dim=dim)


def _names(metric_names, dataset, has_train: bool) -> list[str]:
    from kswgd.core.metrics import expand

    names, skipped = expand(metric_names, dataset, has_train=has_train)
    for name, why in skipped.items():
        hint = " (--train FILE.npy)" if name == "copy" else ""
        raise ConfigError(why + hint)
    return names


def _score(x, names: list[str], ctx, floor_ctx, floor_seed: int, n_floor_seeds: int
           ) -> dict[str, dict]:
    """Values of ``names`` for x in ``ctx``, noise floors in ``floor_ctx`` (the runner's)."""
    from kswgd.core import metrics

    x = metrics.as_points(x, "samples", dim=ctx.dim)
    values = metrics.evaluate(names, x, ctx)
    floors = metrics.noise_floor(names, floor_ctx, x.shape[0], n_seeds=n_floor_seeds,
                                 seed=floor_seed)
    return {name: {"value": values[name], "floor": floors[name][0],
                   "floor_std": floors[name][1],
                   "info": metrics.metric_info(name, ctx, x.shape[0])}
            for name in names}

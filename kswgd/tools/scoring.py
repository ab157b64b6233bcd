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

from kswgd.params import ConfigError, check_memory

#: Most rows ``kswgd score`` reads: the metrics that are O(N²) (ksd) or O(N·M) (mmd2, energy,
#: and their noise floors on N fresh draws) take minutes beyond this; W2 subsamples to 5 000 by
#: itself (kswgd.core.metrics.W2_MAX_POINTS).
MAX_ROWS = 20_000
#: Largest |x| accepted: squared distances of larger coordinates overflow float64 (~1.8e308).
MAX_ABS = 1e150


def load_samples(path: str | Path, max_rows: int | None = MAX_ROWS) -> np.ndarray:
    """Load an (N, d) real array from a ``.npy`` file (``numpy.save``); never unpickles.

    The header is read first: an object, complex, boolean or non-numeric dtype, a shape that is
    not (N, d), more than ``max_rows`` rows, a header claiming more data than the file holds,
    or an array too large for the available memory is refused before any data is read. Then
    NaN/inf entries and entries beyond ±``MAX_ABS`` are refused. Every failure (also: no such
    file, an empty file, a CSV or other non-.npy file, an .npz archive) is a one-line
    ConfigError saying what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"no such file: {str(path)!r}")
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is not a file")
    where = f"{str(path)!r}"
    with open(path, "rb") as fh:
        head = fh.read(6)
        if not head:
            raise ConfigError(f"{where} is empty; expected an (N, d) array saved with numpy.save")
        if head.startswith(b"PK"):
            raise ConfigError(f"{where} is an .npz archive; expected one (N, d) array saved "
                              "with numpy.save")
        if head != b"\x93NUMPY":
            raise ConfigError(f"{where} is not a .npy file (no .npy header); expected an "
                              "(N, d) array saved with numpy.save (convert text files with "
                              "numpy.loadtxt, then numpy.save)")
        fh.seek(0)
        try:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read(fh)
        except (OSError, ValueError, EOFError, SyntaxError) as err:
            raise ConfigError(f"cannot read {where} as a .npy array: "
                              f"{' '.join(str(err).split())}") from None
        data_bytes = path.stat().st_size - fh.tell()
    if dtype.hasobject:
        raise ConfigError(f"cannot read {where} as a numeric .npy array: it holds Python "
                          "objects, not numbers")
    if dtype.kind not in "fiu":
        raise ConfigError(f"{where} holds {dtype} values; expected real numbers (float or int)")
    if len(shape) not in (1, 2):  # (N,) is read as (N, 1) by a 1-D dataset
        raise ConfigError(f"{where}: expected an (N, d) array, got shape {shape}")
    count = int(np.prod(shape, dtype=object))
    need = count * dtype.itemsize
    if need > data_bytes:
        raise ConfigError(f"{where} is truncated: its header claims a "
                          f"{' x '.join(map(str, shape))} {dtype} array ({need} bytes) but "
                          f"the file holds {data_bytes}")
    if max_rows is not None and shape[0] > max_rows:
        raise ConfigError(f"{where} has {shape[0]} rows, more than the {max_rows} that score "
                          "in reasonable time; score a random subsample of them")
    check_memory(count * 8, f"reading {where} as float64")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise ConfigError(f"cannot read {where} as a numeric .npy array: "
                          f"{' '.join(str(err).split())}") from None
    if arr.size:
        finite = np.isfinite(arr)
        if not finite.all():
            rows = np.flatnonzero(~finite.reshape(len(arr), -1).all(axis=1))
            raise ConfigError(f"{where}: {rows.size} row(s) with NaN or inf entries "
                              f"(first: row {rows[0]})")
        big = max(abs(float(arr.max())), abs(float(arr.min())))
        if big > MAX_ABS:
            raise ConfigError(f"{where}: max |x| = {big:.3g}, beyond {MAX_ABS:.0e} (squared "
                              "distances would overflow float64)")
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
    if metric_names is None and not spec.metrics:  # a pilot records only its validation
        raise ConfigError(f"--run {str(folder)!r} recorded no metric (a tuning pilot): name "
                          "them with --metrics, e.g. --metrics all")
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

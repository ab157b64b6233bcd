"""Score any (N, d) sample array against a dataset's reference set, with noise floors.

This is the library side of ``kswgd score``: build the dataset from the registry, draw its
held-out reference set with a seeded generator, evaluate the metrics on the samples and on fresh
draws of π of the same size (the noise floor).
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

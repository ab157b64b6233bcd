"""Result storage and the results API: one folder per run with tidy rows, particles and a
manifest (the format is described in docs/results.md).

    OUT/runs/<run_id>/rows.parquet     one row per checkpoint: the run spec as flat columns,
                                       status, iteration, seconds, metrics, diag.*, health.*
    OUT/runs/<run_id>/particles.npy    final particles, float64 (N, d); particles_<it>.npy
                                       per checkpoint when the suite keeps them
    OUT/runs/<run_id>/manifest.json    spec, code fingerprint, git commit, provenance; LAST
    OUT/floors/*.json                  noise and data floors
    OUT/steps/*.json                   step-size rule records

Every write goes to a temporary file in the same folder and is then renamed (atomic on POSIX),
so a crash never leaves a half-written result: a run counts as finished exactly when its
manifest exists. ``run_id`` is the hash of the run spec and the code fingerprint
(kswgd.engine.spec), which makes a sweep resumable and never reuses results of other code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from kswgd.engine.spec import RunSpec, floor_file, jsonable
from kswgd.params import ConfigError


def array_hash(*arrays: np.ndarray) -> str:
    """SHA-256 over the bytes of the arrays (data provenance), first 16 hex digits."""
    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``
    (atomic on POSIX): readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    def write(tmp):
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=jsonable)
            fh.write("\n")
    atomic_write(Path(path), write)


def write_text(path: Path, text: str) -> None:
    """Write text, atomically."""
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as Parquet (pyarrow), atomically."""
    atomic_write(Path(path), lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"))


def check_out(out: Path, create: bool = False) -> Path:
    """Check that a results folder can be written, before anything is computed: it must not
    be a file, and its nearest existing ancestor must be a writable folder. With ``create``
    the folder is made and a probe file written and removed; a folder made here gets a
    ``.gitignore`` of ``*``, so run outputs never show up in git. ConfigError (one line) if
    not."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to results folder {out}: "
                          f"{parent} is {'a file' if not parent.is_dir() else 'not writable'}")
    if create:
        try:
            new = not out.exists()
            out.mkdir(parents=True, exist_ok=True)
            if new:  # a new results folder keeps out of git (as pytest's cache does)
                (out / ".gitignore").write_text("# written by kswgd run\n*\n")
            probe = out / f".write-probe-{os.getpid()}.tmp"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise ConfigError(f"cannot write to results folder {out}: "
                              f"{err.strerror or err}") from None
    return out


def run_dir(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / run_id


def floor_path(out: Path, spec: RunSpec) -> Path:
    """Where the floors a spec is compared with are stored (``OUT/floors/``, file name by
    :func:`kswgd.engine.spec.floor_file`)."""
    return Path(out) / "floors" / floor_file(spec)


def is_finished(out: Path, run_id: str) -> bool:
    """A run is finished (ok, failed or skipped) exactly when its manifest exists."""
    return (run_dir(out, run_id) / "manifest.json").exists()


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write an array as .npy (float64 kept as is), atomically."""
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array))
    atomic_write(Path(path), write)


def save_result(out: Path, run_id: str, rows: pd.DataFrame, particles: dict[str, np.ndarray],
                manifest: dict) -> Path:
    """Store a run: rows, then particles (``<stem>.npy``), then the manifest, which marks
    completion."""
    folder = run_dir(out, run_id)
    write_parquet(folder / "rows.parquet", rows)
    for stem, array in particles.items():
        write_npy(folder / f"{stem}.npy", array)
    write_json(folder / "manifest.json", manifest)
    return folder


def read_json(path: Path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def load_manifest(out: Path, run_id: str) -> dict:
    return read_json(run_dir(out, run_id) / "manifest.json")


def load_run_rows(out: Path, run_id: str) -> pd.DataFrame:
    """The checkpoint rows of one stored run."""
    return pd.read_parquet(run_dir(out, run_id) / "rows.parquet")


def load_particles(out: Path, run_id: str, stem: str = "particles") -> np.ndarray | None:
    """A stored run's particles (``<stem>.npy``: the final ones by default), None if not kept."""
    path = run_dir(out, run_id) / f"{stem}.npy"
    return np.load(path, allow_pickle=False) if path.exists() else None


def _require(out: Path) -> Path:
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"no results folder {out}" + (" (it is a file)" if out.exists()
                                                          else ""))
    return out


def finished_ids(out: Path) -> list[str]:
    """Ids of the finished runs in a results folder, sorted."""
    root = _require(out) / "runs"
    return sorted(p.name for p in root.glob("*") if (p / "manifest.json").exists())


def load_rows(out: Path) -> pd.DataFrame:
    """Every checkpoint row of every finished run under ``out`` (pilots included, column
    ``pilot``), the run spec as flat columns; see docs/results.md. ConfigError if ``out`` is
    not a folder; an empty frame if it holds no finished run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = [run_dir(out, rid) / "rows.parquet" for rid in finished_ids(out)]
    tables = [t for t in (pq.read_table(p) for p in paths) if t.num_rows]
    if not tables:
        return pd.DataFrame()
    try:  # one conversion to pandas instead of one per run (a 1 000-run sweep: 2x faster)
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # columns whose types cannot be unified
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def load_final(out: Path) -> pd.DataFrame:
    """The last checkpoint row of each finished run (same columns as :func:`load_rows`)."""
    rows = load_rows(out)
    if rows.empty:
        return rows
    last = rows.sort_values(["run_id", "iteration"], kind="stable").groupby(
        "run_id", sort=False).tail(1)
    return last.sort_index().reset_index(drop=True)


def load_floors(out: Path) -> pd.DataFrame:
    """The floors of a results folder, one row per (floor record, kind, metric): columns
    ``dataset, dataset.<param>..., n_particles, n_reference, n_train, floor_seeds, metric,
    value, std, kind, status, reason``; kind "noise" (fresh exact draws of π of the particles'
    size) or "data" (the training points, subsampled to the particle count). A failed floor
    gives one row per metric with NaN value and its reason."""
    recs = []
    for path in sorted((_require(out) / "floors").glob("*.json")):
        rec = read_json(path)
        head = {k: v for k, v in rec.items() if k not in ("noise", "data", "metrics", "code")}
        for kind in ("noise", "data"):
            values = rec.get(kind) or {m: [np.nan, np.nan] for m in rec["metrics"]}
            for metric, (value, std) in values.items():
                recs.append({**head, "metric": metric, "value": value, "std": std,
                             "kind": kind})
    return pd.DataFrame(recs)


def load_manifests(out: Path) -> dict[str, dict]:
    """run_id -> manifest of every finished run (spec, code fingerprint, git commit, versions,
    CPU, threads, fit record, status, reason)."""
    return {rid: load_manifest(out, rid) for rid in finished_ids(out)}

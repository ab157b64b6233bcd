"""Result storage and the results API: one folder per run with tidy rows, particles and a
manifest (the format is described in docs/results.md).

    OUT/runs/<run_id>/rows.parquet     one row per checkpoint: the run spec as flat columns,
                                       status, iteration, seconds, metrics, diag.*, health.*
    OUT/runs/<run_id>/particles.npy    final particles, float64 (N, d); particles_<it>.npy
                                       per checkpoint when the suite keeps them
    OUT/runs/<run_id>/manifest.json    spec, code fingerprint, git commit, provenance; LAST
    OUT/floors/*.json                  noise and data floors
    OUT/tuning/*.json                  tuning records (the pilots and the choice)

Every write goes to a temporary file in the same folder and is then renamed (atomic on POSIX),
so a crash never leaves a half-written result. The manifest lists the SHA-256 of every other
file of the run and is written last: a run is finished exactly when its manifest exists and
every file matches it (:func:`run_damage`). Readers skip a damaged run or floor file with one
line on stderr; the next ``kswgd run`` moves it to ``OUT/damaged/`` and computes it again.
``run_id`` is the hash of the run spec and the code fingerprint (kswgd.engine.spec), which makes
a sweep resumable and never reuses results of other code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
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
    """A run is finished (ok, failed or skipped) exactly when its manifest exists and every
    file it lists is intact (:func:`run_damage`): a damaged run is computed again."""
    return (run_dir(out, run_id) / "manifest.json").exists() and run_damage(out, run_id) is None


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, 64 hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_damage(out: Path, run_id: str) -> str | None:
    """Why the stored run ``run_id`` cannot be trusted, or None when it is intact: the manifest
    must be readable JSON, describe this run (its spec's id is the folder's name) and list a
    SHA-256 for rows.parquet; every listed file must exist and match its checksum."""
    folder = run_dir(out, run_id)
    try:
        man = read_json(folder / "manifest.json")
    except (OSError, ValueError) as err:
        return f"unreadable manifest.json ({type(err).__name__})"
    files = man.get("files") if isinstance(man, dict) else None
    if not isinstance(files, dict) or "rows.parquet" not in files:
        return "manifest.json lists no checksums"
    try:
        spec_id = RunSpec.from_dict(man["spec"]).run_id
    except (KeyError, TypeError, ValueError):
        return "manifest.json holds no readable spec"
    if spec_id != run_id:
        return f"manifest.json is run {spec_id}'s"
    for name, digest in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} does not match its checksum"
    return None


_WARNED: set[tuple[str, str]] = set()


def warn_damaged(path: Path, reason: str) -> None:
    """Name a damaged stored file or run in one line on stderr (once per process)."""
    key = (str(path), reason)
    if key not in _WARNED:
        _WARNED.add(key)
        print(f"kswgd: skipping damaged {path}: {reason}", file=sys.stderr, flush=True)


def floor_damage(path: Path) -> str | None:
    """Why a floor file cannot be trusted, or None: readable JSON with ``metrics`` and
    ``status``; an ok record has noise and data values, a (mean, std) pair per metric."""
    try:
        rec = read_json(path)
    except (OSError, ValueError) as err:
        return f"unreadable ({type(err).__name__})"
    if not isinstance(rec, dict) or not isinstance(rec.get("metrics"), list) or \
            rec.get("status") not in ("ok", "failed"):
        return "not a floor record"
    if rec["status"] == "ok":
        for kind in ("noise", "data"):
            values = rec.get(kind)
            if not isinstance(values, dict) or not all(
                    isinstance(v, list) and len(v) == 2 for v in values.values()):
                return f"no {kind} floor values"
    return None


def set_aside_damaged(out: Path) -> list[str]:
    """Move every damaged run folder and floor file of ``out`` to ``OUT/damaged/`` (kept for
    inspection, never read), so that the next sweep computes them again; one message each."""
    out, moved = Path(out), []
    aside = out / "damaged"
    damaged = [(run_dir(out, p.name), run_damage(out, p.name))
               for p in sorted((out / "runs").glob("*")) if (p / "manifest.json").exists()]
    damaged += [(p, floor_damage(p)) for p in sorted((out / "floors").glob("*.json"))]
    for path, reason in damaged:
        if reason is None:
            continue
        aside.mkdir(exist_ok=True)
        k = 0
        while (target := aside / f"{path.parent.name}-{path.name}.{k}").exists():
            k += 1
        shutil.move(str(path), str(target))
        moved.append(f"damaged {path.relative_to(out)} ({reason}): moved to "
                     f"{target.relative_to(out)}, computing it again")
    return moved


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write an array as .npy (float64 kept as is), atomically."""
    def write(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array))
    atomic_write(Path(path), write)


def save_result(out: Path, run_id: str, rows: pd.DataFrame, particles: dict[str, np.ndarray],
                manifest: dict) -> Path:
    """Store a run: rows, then particles (``<stem>.npy``), then the manifest with the SHA-256
    of each of those files (``files``), which marks completion."""
    folder = run_dir(out, run_id)
    names = ["rows.parquet"]
    write_parquet(folder / "rows.parquet", rows)
    for stem, array in particles.items():
        write_npy(folder / f"{stem}.npy", array)
        names.append(f"{stem}.npy")
    files = {name: file_sha256(folder / name) for name in names}
    write_json(folder / "manifest.json", {**manifest, "files": files})
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
    """Ids of the finished, intact runs in a results folder, sorted; each damaged run is named
    on stderr (:func:`warn_damaged`) and left out."""
    root = _require(out) / "runs"
    ids = []
    for p in sorted(root.glob("*")):
        if not (p / "manifest.json").exists():
            continue
        reason = run_damage(out, p.name)
        if reason is None:
            ids.append(p.name)
        else:
            warn_damaged(p, reason)
    return ids


def load_rows(out: Path) -> pd.DataFrame:
    """Every checkpoint row of every finished run under ``out`` (pilots included, column
    ``pilot``), the run spec as flat columns; see docs/results.md. ConfigError if ``out`` is
    not a folder; an empty frame if it holds no finished run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for rid in finished_ids(out):
        path = run_dir(out, rid) / "rows.parquet"
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as err:
            warn_damaged(path.parent, f"unreadable rows.parquet ({type(err).__name__})")
            continue
        ids = set(table.column("run_id").to_pylist()) if "run_id" in table.column_names else {}
        if ids != {rid}:
            warn_damaged(path.parent, "rows.parquet holds another run's rows")
        elif table.num_rows:
            tables.append(table)
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
    gives one row per metric with NaN value and its reason. A damaged floor file is named on
    stderr and left out."""
    recs = []
    for path in sorted((_require(out) / "floors").glob("*.json")):
        reason = floor_damage(path)
        if reason is not None:
            warn_damaged(path, reason)
            continue
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

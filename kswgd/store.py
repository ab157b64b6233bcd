"""Result storage (docs/design.md): one folder per run with tidy Parquet rows and a JSON manifest.

    OUT/runs/<run_id>/rows.parquet     one row per checkpoint (iteration, seconds, metrics, …)
    OUT/runs/<run_id>/manifest.json    config, hashes, status, provenance; written LAST

Every write goes to a temporary file in the same folder and is then renamed (atomic on POSIX),
so a crash never leaves a half-written result: a run counts as finished exactly when its
manifest exists. ``run_id`` is the config hash, which makes a sweep resumable.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def canonical_json(obj) -> str:
    """Deterministic JSON (sorted keys, no spaces) used for hashing configs."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def config_hash(config: dict) -> str:
    """SHA-256 of the canonical JSON of a run config, first 16 hex digits."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def array_hash(*arrays: np.ndarray) -> str:
    """SHA-256 over the bytes of the arrays (data provenance), first 16 hex digits."""
    h = hashlib.sha256()
    for a in arrays:
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _jsonable(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


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
            json.dump(obj, fh, indent=2, sort_keys=True, default=_jsonable)
            fh.write("\n")
    atomic_write(Path(path), write)


def write_text(path: Path, text: str) -> None:
    """Write text, atomically."""
    atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as Parquet (pyarrow), atomically."""
    atomic_write(Path(path), lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"))


def run_dir(out: Path, run_id: str) -> Path:
    return Path(out) / "runs" / run_id


def is_finished(out: Path, run_id: str) -> bool:
    """A run is finished (ok or failed) exactly when its manifest exists."""
    return (run_dir(out, run_id) / "manifest.json").exists()


def save_run(out: Path, run_id: str, rows: pd.DataFrame, manifest: dict) -> Path:
    """Store a run: rows first, the manifest last (its presence marks completion)."""
    folder = run_dir(out, run_id)
    write_parquet(folder / "rows.parquet", rows)
    write_json(folder / "manifest.json", manifest)
    return folder


def load_manifest(out: Path, run_id: str) -> dict:
    with open(run_dir(out, run_id) / "manifest.json") as fh:
        return json.load(fh)


def load_runs(out: Path, run_ids: list[str] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """All finished runs under ``out`` (or those listed): (rows of all runs, manifests).

    Each row carries its run_id; manifests are returned as loaded.
    """
    root = Path(out) / "runs"
    ids = run_ids if run_ids is not None else sorted(p.name for p in root.glob("*") if p.is_dir())
    frames, manifests = [], []
    for rid in ids:
        if not is_finished(out, rid):
            continue
        manifests.append(load_manifest(out, rid))
        rows = pd.read_parquet(run_dir(out, rid) / "rows.parquet")
        rows.insert(0, "run_id", rid)
        frames.append(rows)
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return rows, manifests

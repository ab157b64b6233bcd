"""Provenance recorded in every run manifest: code version, packages, CPU and threads."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("kswgd", "numpy", "scipy", "numba", "pandas", "pot", "pyarrow", "scikit-learn")


@cache
def git_commit() -> str | None:
    """The commit of the kswgd source tree (with '+dirty' if it has local changes), or None.

    Read once per process (at the first run), close to when the code was imported: a commit
    made while a long sweep is running must not be attributed to code loaded before it."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "kswgd",
                                "baselines", "datasets"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def environment() -> dict:
    """Package versions, CPU, thread counts and BLAS (threadpoolctl); cached per process."""
    import numba

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                for p in threadpool_info()]
    except Exception:  # provenance must never break a run
        blas = []
    return {
        "python": platform.python_version(),
        "packages": versions,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": os.environ.get("NUMBA_THREADING_LAYER", "default"),
        "blas": blas,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                               "OPENBLAS_CORETYPE", "OPENBLAS_THREAD_TIMEOUT",
                                               "NUMBA_NUM_THREADS")},
    }

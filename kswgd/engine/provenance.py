"""Provenance recorded in every run manifest: code version, packages, CPU and threads, and the
platform fingerprint (what decides the last bits of a run's numbers)."""

from __future__ import annotations

import hashlib
import json
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


#: Packages whose compiled code computes a run's numbers (their versions enter the fingerprint).
NUMERIC_PACKAGES = ("numpy", "scipy", "numba", "llvmlite", "pot", "scikit-learn")


def _numpy_simd() -> dict:
    """numpy's SIMD level: its build baseline and the dispatch targets enabled in this process
    (the CPU's, less any that NPY_DISABLE_CPU_FEATURES turned off)."""
    try:
        from numpy._core._multiarray_umath import (
            __cpu_baseline__,
            __cpu_dispatch__,
            __cpu_features__,
        )
    except ImportError:  # another numpy layout: record nothing rather than fail a run
        return {}
    return {"baseline": list(__cpu_baseline__),
            "dispatch": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]}


def _numba_target() -> dict:
    """The CPU Numba's JIT compiles for, read the way its codegen reads it: NUMBA_CPU_NAME and
    NUMBA_CPU_FEATURES if set, else the host's (an empty feature string means LLVM's defaults
    for that CPU name). ``simd`` lists the enabled AVX/FMA/AMX features (SSE to 4.2 is
    numpy's baseline anyway); ``features_sha`` covers the whole feature string."""
    import llvmlite.binding as ll
    import numba
    from numba.core.codegen import get_host_cpu_features

    name = numba.config.CPU_NAME or ll.get_host_cpu_name()
    features = numba.config.CPU_FEATURES
    if features is None:
        features = get_host_cpu_features()
    enabled = sorted(f[1:] for f in features.split(",") if f.startswith("+"))
    simd = [f for f in enabled if f.startswith(("avx", "fma", "amx"))]
    return {"cpu": name, "simd": simd if features else f"LLVM defaults for {name}",
            "features_sha": hashlib.sha256(features.encode()).hexdigest()[:12]}


def _blas() -> list[dict]:
    """Every BLAS loaded (numpy's and SciPy's own OpenBLAS): library file, version, the kernel
    set it picked (threadpoolctl's ``architecture``: OpenBLAS's coretype) and its threads."""
    import scipy.linalg  # noqa: F401 - loads SciPy's BLAS, so it is listed whatever ran before
    from threadpoolctl import threadpool_info

    libs = [{"library": os.path.basename(p.get("filepath") or ""), "api": p.get("internal_api"),
             "version": p.get("version"), "coretype": p.get("architecture"),
             "threads": p.get("num_threads")}
            for p in threadpool_info() if p.get("user_api") == "blas"]
    return sorted(libs, key=lambda b: (b["library"], str(b["version"])))


@cache
def _static_platform() -> dict:
    versions = {}
    for name in NUMERIC_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"machine": platform.machine(), "numpy_simd": _numpy_simd(),
            "numba_target": _numba_target(), "versions": versions}


def platform_fingerprint() -> dict:
    """What, besides the spec and the code, decides the last bits of a run's numbers: numpy's
    dispatched SIMD targets, Numba's target CPU, each BLAS (library, version, kernel, threads),
    the numeric packages' versions and Numba's thread count now in force. Same fingerprint,
    same spec and code: the same numbers, bit for bit; a different one: the same law only.

    Returns that dict with ``hash``, the first 12 hex digits of the SHA-256 of the rest
    (the ``platform`` column of a run's rows). Thread counts are read at each call: a run's
    pool sizes are set when it starts (kswgd.engine.executors.pin_threads)."""
    import numba

    try:
        blas = _blas()
    except Exception:  # provenance must never break a run
        blas = []
    fp = {**_static_platform(), "blas": blas, "numba_threads": numba.get_num_threads()}
    blob = json.dumps(fp, sort_keys=True, separators=(",", ":"), default=str)
    return {**fp, "hash": hashlib.sha256(blob.encode()).hexdigest()[:12]}

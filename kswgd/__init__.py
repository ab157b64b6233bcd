"""kswgd: benchmark suite and reproducibility harness for Koopman spectral particle samplers.

The package face: the names a notebook, a plug-in or a script needs, imported lazily (importing
``kswgd`` loads neither numpy nor Numba until a name is used)::

    from kswgd import Dataset, Sampler, TrainingData, run_sampler      # plug-in interfaces
    from kswgd import KSWGD, estimate, make_dictionary, Spectrum       # the numerical core
    from kswgd import load_suite, run_suite, load_rows, load_final     # the engine and store

Layout: ``core/`` (arrays in, numbers out), ``engine/`` (plan → execute → drive, the store),
``reports/`` (leaderboard, plots, report, publish), ``tools/`` (catalog, score, verify, bench),
``cli.py``; the plug-in interfaces sit at the top (``params``, ``dataset``, ``sampler``,
``registry``, ``helpers``).
"""

import os
from importlib import import_module

# OpenBLAS's worker threads spin for about 2^28 cycles after each product by default; the
# threaded Gaussian matrices (kswgd.core._kernels) that follow a product then share the cores
# with a spinning thread (a DMPS step at the paper's size: 116 ms instead of 92 ms). 4 is
# OpenBLAS's smallest timeout. Read when OpenBLAS loads, i.e. when numpy is first imported, so it
# only takes effect when kswgd is imported first (the ``kswgd`` command); a value already in the
# environment wins. It changes timings only, never a number.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"

#: public name -> module that defines it
_PUBLIC = {
    "ConfigError": "kswgd.params",
    "Dataset": "kswgd.dataset",
    "TrainingData": "kswgd.core.data",
    "Manifold": "kswgd.core.data",
    "move": "kswgd.core.data",
    "Sampler": "kswgd.sampler",
    "SpectralSampler": "kswgd.sampler",
    "Checkpoint": "kswgd.sampler",
    "run_sampler": "kswgd.sampler",
    "get_dataset": "kswgd.registry",
    "get_sampler": "kswgd.registry",
    "KSWGD": "kswgd.baselines.kswgd",
    "estimate": "kswgd.core.estimators",
    "make_dictionary": "kswgd.core.dictionaries",
    "Spectrum": "kswgd.core.spectrum",
    "load_suite": "kswgd.engine.suite",
    "plan_suite": "kswgd.engine.plan",
    "run_suite": "kswgd.engine.driver",
    "load_rows": "kswgd.engine.store",
    "load_final": "kswgd.engine.store",
    "load_floors": "kswgd.engine.store",
    "load_manifests": "kswgd.engine.store",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kswgd' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))

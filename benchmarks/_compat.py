"""Benchmarks run against older commits too (``asv run main~10..main``): an API that a commit
does not have yet must skip the benchmark, not fail the run. asv records a benchmark whose
``setup`` or body raises NotImplementedError as skipped (n/a)."""

import functools
import importlib
import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # spinning OpenMP threads distort timings

MISSING_API = (ImportError, AttributeError, TypeError, KeyError)


def needs_api(fn):
    """Run ``fn``; an error that means "this commit lacks the API" becomes NotImplementedError.

    Besides the built-in errors of a missing name or argument, kswgd's ConfigError (an unknown
    dataset, method, estimator or parameter in that commit's registry) counts as missing API.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError:
            raise
        except Exception as err:
            if isinstance(err, MISSING_API) or type(err).__name__ == "ConfigError":
                raise NotImplementedError(f"API missing in this commit: {err}") from err
            raise

    return wrapper


def kswgd_module(path: str, *older: str):
    """The module at ``path``, or at the first of ``older`` that exists: the paths a module had
    in earlier commits (the package was reorganised into core/, engine/, reports/ and tools/),
    so that one benchmark file times commits before and after a move."""
    for name in (path, *older):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise ImportError(f"none of {(path, *older)} exists in this commit")

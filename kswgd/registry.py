"""Plug-in discovery: datasets from ``datasets/`` and samplers from ``baselines/``.

The two folders are installed inside the kswgd namespace as ``kswgd.datasets`` and
``kswgd.baselines`` (see pyproject.toml), because ``datasets`` and ``baselines`` are taken names
on the package index. Every module in them is imported and each subclass of
:class:`~kswgd.dataset.Dataset` / :class:`~kswgd.sampler.Sampler` with a ``name`` is registered.
KSWGD itself is one of the sampler plug-ins (``baselines/kswgd.py``).

Extra folders: ``KSWGD_PLUGIN_PATH`` (os.pathsep-separated) lists directories whose
``datasets/*.py`` and ``baselines/*.py`` files are loaded by path, so a researcher can add a
sampler or a dataset without touching this repository.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import sys
from functools import cache
from pathlib import Path

from kswgd.dataset import Dataset
from kswgd.params import choice_error
from kswgd.sampler import Sampler


def _modules(package: str, folder: str):
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{package}.{info.name}")
    for root in filter(None, os.environ.get("KSWGD_PLUGIN_PATH", "").split(os.pathsep)):
        for path in sorted(Path(root, folder).glob("*.py")):
            if path.name.startswith("_"):
                continue
            mod_name = f"kswgd_plugin_{folder}_{path.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
            yield module


def _collect(package: str, folder: str, base: type) -> dict[str, type]:
    found: dict[str, type] = {}
    for module in _modules(package, folder):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, base) and obj.__module__ == module.__name__ and obj.name:
                if obj.name in found:
                    raise RuntimeError(f"two plug-ins named {obj.name!r}: {found[obj.name]}, {obj}")
                found[obj.name] = obj
    return found


@cache
def datasets() -> dict[str, type[Dataset]]:
    """All registered dataset classes by name."""
    return _collect("kswgd.datasets", "datasets", Dataset)


@cache
def samplers() -> dict[str, type[Sampler]]:
    """All registered sampler classes by name (KSWGD and the baselines)."""
    return _collect("kswgd.baselines", "baselines", Sampler)


def plugin_sources() -> frozenset[Path]:
    """The resolved source files that define a registered dataset or sampler."""
    classes = [*datasets().values(), *samplers().values()]
    return frozenset(Path(inspect.getsourcefile(c)).resolve() for c in classes)


def get_dataset(name: str, **params) -> Dataset:
    """Instantiate a dataset by name; unknown names or parameters raise ConfigError."""
    table = datasets()
    if name not in table:
        raise choice_error("dataset", name, table)
    return table[name](**params)


def get_sampler(name: str, **params) -> Sampler:
    """Instantiate a sampler by name; unknown names or parameters raise ConfigError."""
    table = samplers()
    if name not in table:
        raise choice_error("method", name, table)
    return table[name](**params)


def incompatibility(sampler, dataset: Dataset) -> str | None:
    """Why a sampler (class or configured instance) cannot run on a dataset, or None.

    The sampler's declared needs are checked against what the dataset provides: ``score``,
    ``log_density`` and ``spectrum`` in ``uses`` need the dataset's score, log-density or exact
    eigenvalues; ``data_kind = "trajectories"`` needs a dataset that produces trajectory pairs
    (any dataset gives static samples: a trajectory dataset gives the x of its pairs).
    """
    known = set(dataset.known())
    for need in sampler.uses:
        if need in ("score", "log_density", "spectrum") and need not in known:
            return (f"{sampler.name} uses the {need.replace('_', '-')}, which dataset "
                    f"{dataset.name!r} does not provide")
    if sampler.data_kind == "trajectories" and "trajectories" not in dataset.data_kinds:
        return (f"{sampler.name} learns from trajectories; dataset {dataset.name!r} has only "
                f"{', '.join(dataset.data_kinds)}")
    return None

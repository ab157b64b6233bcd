"""Plug-in discovery: datasets from ``datasets/`` and samplers from ``baselines/``.

The two folders are installed inside the kswgd namespace as ``kswgd.datasets`` and
``kswgd.baselines`` (see pyproject.toml), because ``datasets`` and ``baselines`` are taken names
on the package index. Every module in them is imported and each subclass of
:class:`~kswgd.dataset.Dataset` / :class:`~kswgd.sampler.Sampler` with a ``name`` is registered.
KSWGD itself is one of the sampler plug-ins (``baselines/kswgd.py``).

Extra folders: ``KSWGD_PLUGIN_PATH`` (os.pathsep-separated) lists directories whose
``datasets/*.py`` and ``baselines/*.py`` files are loaded by path, so a researcher can add a
sampler or a dataset without touching this repository; a listed directory that does not exist
is refused.

A plug-in file that cannot be imported (a syntax error, a failing import, any exception at
import time), two plug-ins with the same name, and a dataset or sampler class that lacks a
required member (a dataset's ``dim``, ``draw``, ``train`` and ``initial``; a sampler's
``step``) are each a one-line ConfigError naming the file, raised when the registry is first
read.
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
from kswgd.params import ConfigError, choice_error
from kswgd.sampler import Sampler

#: What a registered plug-in class must define itself (not inherit from the base class).
REQUIRED = {Dataset: ("dim", "draw", "train", "initial"), Sampler: ("step",)}


def _import_error(where: str, err: BaseException) -> ConfigError:
    if isinstance(err, SyntaxError):
        return ConfigError(f"plug-in {where}: syntax error at line {err.lineno}: {err.msg}")
    return ConfigError(f"plug-in {where} cannot be imported: {type(err).__name__}: "
                       f"{' '.join(str(err).split())}")


def _plugin_roots() -> list[Path]:
    """The directories of KSWGD_PLUGIN_PATH; one that does not exist is a ConfigError."""
    roots = [Path(r) for r in os.environ.get("KSWGD_PLUGIN_PATH", "").split(os.pathsep) if r]
    for root in roots:
        if not root.is_dir():
            raise ConfigError(f"KSWGD_PLUGIN_PATH lists {str(root)!r}, which is not a directory "
                              "(it should hold datasets/*.py and/or baselines/*.py)")
    return roots


def _modules(package: str, folder: str):
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            try:
                yield importlib.import_module(f"{package}.{info.name}")
            except Exception as err:  # noqa: BLE001 - any failure of a plug-in file is one line
                raise _import_error(str(Path(pkg.__path__[0], info.name + ".py")), err) from None
    for root in _plugin_roots():
        for path in sorted(Path(root, folder).glob("*.py")):
            if path.name.startswith("_"):
                continue
            mod_name = f"kswgd_plugin_{folder}_{path.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as err:  # noqa: BLE001
                del sys.modules[mod_name]
                raise _import_error(str(path), err) from None
            yield module


def _source(cls: type) -> str:
    try:
        return inspect.getsourcefile(cls) or cls.__module__
    except TypeError:
        return cls.__module__


def _collect(package: str, folder: str, base: type) -> dict[str, type]:
    found: dict[str, type] = {}
    for module in _modules(package, folder):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, base) and obj.__module__ == module.__name__ and obj.name:
                if obj.name in found:
                    raise ConfigError(f"two plug-ins named {obj.name!r}: "
                                      f"{_source(found[obj.name])} and {_source(obj)}")
                missing = [m for m in REQUIRED[base] if getattr(obj, m) is getattr(base, m)]
                if missing:
                    raise ConfigError(f"plug-in {_source(obj)}: {base.__name__.lower()} "
                                      f"{obj.name!r} does not define {', '.join(missing)} "
                                      "(required)")
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
    (any dataset gives static samples: a trajectory dataset gives the x of its pairs; a sampler
    of ``data_kind = "any"`` takes whichever the dataset has).
    """
    known = set(dataset.known())
    for need in sampler.uses:
        if need in ("score", "log_density", "spectrum") and need not in known:
            return (f"{sampler.name} uses the {need.replace('_', '-')}, which dataset "
                    f"{dataset.name!r} does not provide")
    if sampler.data_kind == "trajectories" and "trajectories" not in dataset.data_kinds:
        return (f"{sampler.name} learns from trajectories; dataset {dataset.name!r} has only "
                f"{', '.join(dataset.data_kinds)}")
    if not isinstance(sampler, type):  # a configured instance: its own check (Sampler.cannot_run)
        return sampler.cannot_run(dataset)
    return None

"""Parameter handling shared by datasets, samplers and dictionaries.

A plug-in declares its parameters as a dict of defaults and, beside it, ``constraints``: the
valid values of each parameter in a small vocabulary (:class:`Interval`, :class:`Choice`,
:class:`Boolean`, :class:`Text`, :class:`Floats`, :class:`ListOf`), in the spirit of scikit-learn's
``_parameter_constraints``. User values (from a suite file or the command line, possibly as
strings) are converted to the default's type and then checked against the constraint, so a bad
value is a one-line ConfigError before anything runs.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A user-facing configuration error: one line that names the valid choices."""


def choice_error(kind: str, name: str, valid) -> ConfigError:
    """Build the one-line error for an unknown name, listing the valid ones."""
    valid = sorted(valid)
    hint = difflib.get_close_matches(str(name), valid, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return ConfigError(f"unknown {kind} {name!r}{extra}; valid: {', '.join(valid) or '(none)'}")


# ---------------------------------------------------------------------------------------------
# The constraint vocabulary: each has ``accepts(value) -> bool`` and ``describe() -> str``.
# ---------------------------------------------------------------------------------------------

_BOUNDS = {"both": ("[", "]"), "left": ("[", ")"), "right": ("(", "]"), "neither": ("(", ")")}


@dataclass(frozen=True)
class Interval:
    """A number of type ``kind`` (int or float; never a bool) in an interval; None = unbounded.
    ``closed`` says which ends belong to it: "both", "left", "right" or "neither"."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"

    def __post_init__(self):
        if self.kind not in (int, float) or self.closed not in _BOUNDS:
            raise ValueError(f"Interval({self.kind}, closed={self.closed!r}): kind is int or "
                             f"float, closed one of {', '.join(_BOUNDS)}")

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not isinstance(value, int) or not math.isfinite(value):
            return False
        lo_in, hi_in = self.closed in ("both", "left"), self.closed in ("both", "right")
        if self.low is not None and (value < self.low or value == self.low and not lo_in):
            return False
        return self.high is None or value < self.high or value == self.high and hi_in

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a finite number"
        lo, hi = _BOUNDS[self.closed]
        if self.low is None and self.high is None:
            return what
        if self.high is None:
            return f"{what} {'>=' if lo == '[' else '>'} {self.low}"
        if self.low is None:
            return f"{what} {'<=' if hi == ']' else '<'} {self.high}"
        return f"{what} in {lo}{self.low}, {self.high}{hi}"


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values."""

    options: tuple

    def __init__(self, *options):
        object.__setattr__(self, "options", tuple(options))

    def accepts(self, value: Any) -> bool:
        return any(value == o and type(value) is type(o) for o in self.options)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)


@dataclass(frozen=True)
class Boolean:
    """True or False (from the command line: true/false, yes/no, 1/0)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text:
    """Any string."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def describe(self) -> str:
        return "a string"


@dataclass(frozen=True)
class Floats:
    """A sequence of ``length`` finite numbers (from the command line: ``0.6,0.1``)."""

    length: int

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, tuple | list) and len(value) == self.length
                and all(not isinstance(v, bool) and isinstance(v, int | float)
                        and math.isfinite(v) for v in value))

    def describe(self) -> str:
        return f"{self.length} finite numbers"


@dataclass(frozen=True)
class ListOf:
    """A list of at least ``min_length`` items, each accepted by ``item``."""

    item: Interval | Choice | Boolean | Text
    min_length: int = 0

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, list) and len(value) >= self.min_length
                and all(self.item.accepts(v) for v in value))

    def describe(self) -> str:
        least = f"at least {self.min_length} " if self.min_length else ""
        return f"a list of {least}items, each {self.item.describe()}"


Constraint = Interval | Choice | Boolean | Text | Floats | ListOf


def _convert(value: Any, default: Any, key: str, owner: str, valid: str) -> Any:
    """``value`` converted to the type of ``default`` (strings parsed); ConfigError if it has
    another type (a bool is not a number, 2.5 is not an integer)."""
    wrong = ConfigError(f"parameter {key!r} of {owner} must be {valid}, got {value!r}")
    if default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
        raise wrong
    if isinstance(value, bool):
        raise wrong
    if isinstance(default, int):
        try:
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            return int(number)
        except (TypeError, ValueError, OverflowError):
            raise wrong from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise wrong from None
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise wrong
    if isinstance(default, tuple | list):
        try:
            if isinstance(value, str):
                return type(default)(float(v) if "." in v else int(v) for v in value.split(","))
            return type(default)(value)
        except (TypeError, ValueError):
            raise wrong from None
    return value


def resolve_params(defaults: dict, given: dict | None, owner: str,
                   constraints: dict[str, Constraint] | None = None) -> dict:
    """Merge ``given`` into ``defaults`` and check every value against ``constraints``.

    An unknown key, a value of the wrong type or outside its constraint raises a one-line
    ConfigError naming ``owner``, the key, the value and what is valid.
    """
    constraints = constraints or {}
    out = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise choice_error(f"parameter of {owner}", key, defaults)
        rule = constraints.get(key)
        valid = rule.describe() if rule else f"of type {type(defaults[key]).__name__}"
        out[key] = _convert(value, defaults[key], key, owner, valid)
    for key, rule in constraints.items():
        if key in out and not rule.accepts(out[key]):
            raise ConfigError(f"parameter {key!r} of {owner} must be {rule.describe()}, "
                              f"got {(given or {}).get(key, out[key])!r}")
    return out


def available_memory() -> int:
    """Bytes of memory available to a new allocation: MemAvailable of /proc/meminfo, else the
    free physical pages."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(nbytes: int, what: str) -> None:
    """ConfigError unless an array of ``nbytes`` fits in half the available memory (the other
    half for the temporaries of whatever computes or reads it)."""
    free = available_memory()
    if 2 * nbytes > free:
        raise ConfigError(f"{what} needs {nbytes / 2**30:.3g} GiB, more than half the "
                          f"{free / 2**30:.3g} GiB of memory available; ask for fewer rows")


def parse_kv(items: list[str] | None) -> dict:
    """Parse ``["key=value", ...]`` from the command line into a dict of strings."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out

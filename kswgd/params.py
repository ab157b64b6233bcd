"""Parameter handling shared by datasets, samplers and dictionaries.

A plug-in declares its parameters as a dict of defaults; user values (from a suite file or the
command line, possibly as strings) are checked against it and converted to the default's type.
"""

from __future__ import annotations

import difflib
from typing import Any


class ConfigError(ValueError):
    """A user-facing configuration error: one line that names the valid choices."""


def choice_error(kind: str, name: str, valid) -> ConfigError:
    """Build the one-line error for an unknown name, listing the valid ones."""
    valid = sorted(valid)
    hint = difflib.get_close_matches(str(name), valid, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return ConfigError(f"unknown {kind} {name!r}{extra}; valid: {', '.join(valid) or '(none)'}")


def _convert(value: Any, default: Any, key: str, owner: str) -> Any:
    if default is None or isinstance(value, type(default)) and not isinstance(value, str):
        return value
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool | int):
            return bool(value)
    elif isinstance(default, int):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(default, str):
        return str(value)
    elif isinstance(default, tuple | list):
        if isinstance(value, str):
            return type(default)(float(v) if "." in v else int(v) for v in value.split(","))
        return type(default)(value)
    raise ConfigError(
        f"parameter {key!r} of {owner} must be of type {type(default).__name__}, got {value!r}"
    )


def resolve_params(defaults: dict, given: dict | None, owner: str) -> dict:
    """Merge ``given`` into ``defaults``; unknown keys raise a ConfigError naming the valid ones."""
    out = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise choice_error(f"parameter of {owner}", key, defaults)
        out[key] = _convert(value, defaults[key], key, owner)
    return out


def parse_kv(items: list[str] | None) -> dict:
    """Parse ``["key=value", ...]`` from the command line into a dict of strings."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out

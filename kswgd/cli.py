"""The ``kswgd`` command. It parses arguments and calls library functions; no logic lives here.

Each subcommand is a pair: ``_add_<name>(subparsers)`` declares it and ``_cmd_<name>(args)``
runs it. A ConfigError (unknown dataset, method, suite, metric or parameter) becomes one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from kswgd.params import ConfigError, parse_kv


def _add_list(sub):
    p = sub.add_parser("list", help="list the datasets and methods found by the registry")
    p.set_defaults(func=_cmd_list)


def _cmd_list(args) -> int:
    from kswgd import registry

    print("datasets:")
    for name, cls in registry.datasets().items():
        print(f"  {name:18s} {cls.description}")
    print("methods:")
    for name, cls in registry.samplers().items():
        print(f"  {name:18s} uses {'+'.join(cls.uses) or '-':28s} {cls.description}")
    return 0


# Subcommands are registered here, in the order `kswgd --help` shows them.
_SUBCOMMANDS = [_add_list]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kswgd", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"kswgd: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The operator's command line: ``metrofed <group> <command> …`` (installed as the ``metrofed`` script,
or ``python -m metrofed.cli``).

Each command group lives in its own module and registers itself in ``GROUPS`` below; a group module
exposes ``register(subparsers)`` and binds ``func`` on its parsers (argparse's ``set_defaults``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# group name -> module (imported lazily, so `metrofed --help` stays fast)
GROUPS: dict[str, str] = {
    "outbox": "metrofed.cli.outbox",
    "dlq": "metrofed.cli.dlq",
    "trust": "metrofed.cli.trust",
    "enrol": "metrofed.cli.trust",
    "issue": "metrofed.cli.trust",
    "rotate": "metrofed.cli.trust",
    "revoke": "metrofed.cli.trust",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metrofed", description="operate a metrofed federation")
    sub = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for module in dict.fromkeys(GROUPS.values()):  # a module may register several groups
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""``apigw``: the operations command line (console script).

Each subcommand module contributes through a function ``register(subparsers) -> None`` that
adds its parser(s) with ``set_defaults(func=<callable(args) -> exit status>)``; the modules are
listed in :data:`COMMAND_MODULES` and imported only when the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: The modules whose ``register(subparsers)`` add subcommands, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = ("scrapy_apigw.ops.serve", "scrapy_apigw.ops.admin_cli")


def build_parser() -> argparse.ArgumentParser:
    """The ``apigw`` parser with every module's subcommands."""
    parser = argparse.ArgumentParser(
        prog="apigw", description="Operate scrapy-apigw: metrics, health, admin actions."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``apigw ARGV`` (default ``sys.argv[1:]``) and return its exit status.

    Raises:
        SystemExit: bad arguments (status 2, argparse's message), ``--help`` (0).
    """
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":  # python -m scrapy_apigw.ops.cli
    sys.exit(main())

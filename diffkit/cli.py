"""The ``diffkit`` command: demo, compare, study, train, evaluate, graph.

Every subcommand exits with status 2 and a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["main"]


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, like argparse but without the usage dump
        raise UsageError(f"{self.prog}: {message}")


def _parse_point(items: Sequence[str]) -> dict:
    """``["x=1", "y=2.5"]`` or ``["x=1,y=2"]`` -> {"x": 1.0, "y": 2.5}."""
    at = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise UsageError(f"--at: expected NAME=VALUE, got {part!r}")
            name, value = part.split("=", 1)
            try:
                at[name.strip()] = float(value)
            except ValueError:
                raise UsageError(f"--at: {name.strip()}={value!r} is not a number") from None
    return at


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(quick=args.quick, out=args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="diffkit",
        description="diffkit: finite differences, symbolic "
        "differentiation, forward and reverse mode side by side; CNNs trained on "
        "reverse mode.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"diffkit {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    demo = sub.add_parser("demo", help="run the studies and a LeNet-5 training run")
    demo.add_argument("--quick", action="store_true", help="reduced grids, seconds not minutes")
    demo.add_argument("--out", default="reports", help="directory for the reports")
    demo.set_defaults(run=_cmd_demo)
    for register in _SUBCOMMANDS:
        register(sub)
    return parser


_SUBCOMMANDS: list = []


def subcommand(register):
    """Decorator: ``register(subparsers)`` adds a subcommand (used by other modules)."""
    _SUBCOMMANDS.append(register)
    return register


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    _load_subcommands()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _load_subcommands() -> None:
    import importlib

    for name in ("diffkit.commands", "diffkit.train.commands"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise

"""The parser, the error type, and what several subcommands share."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Sequence

__all__ = [
    "UsageError",
    "build_parser",
    "parse_point",
    "expression_and_point",
    "add_executor_flags",
    "executor_from_args",
    "check_output_file",
]


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show (the help text
    then says what the default depends on)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, status 2, like argparse but without the usage dump
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import compare, demo, graph, study, sweep, train

    parser = Parser(
        prog="diffkit",
        description="diffkit: finite differences, symbolic differentiation, forward and "
        "reverse mode side by side; CNNs trained on reverse mode.",
    )
    parser.add_argument("--version", action="version", version=f"diffkit {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    for module in (demo, compare, graph, study, train, sweep):
        module.register(sub)
    return parser


def parse_point(items: Sequence[str]) -> dict:
    """``["x=1", "y=2.5"]`` or ``["x=1,y=2"]`` -> {"x": 1.0, "y": 2.5}."""
    at = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise UsageError(f"--at: expected NAME=VALUE, got {part!r}")
            name, value = part.split("=", 1)
            if name.strip() in at:
                raise UsageError(f"--at: {name.strip()!r} is given twice")
            try:
                at[name.strip()] = float(value)
            except ValueError:
                raise UsageError(f"--at: {name.strip()}={value!r} is not a number") from None
    return at


def expression_and_point(args, required: bool = True):
    """The parsed expression, the ``--at`` point and the variable names, checked together."""
    import diffkit as dk

    try:
        f = dk.parse(args.expression)
    except dk.ParseError as err:
        raise UsageError(str(err)) from None
    at = parse_point(args.at or [])
    names = dk.differentiators.common.resolve_wrt(f, None)
    missing = [n for n in names if n not in at]
    if missing and (required or at):
        raise UsageError(
            f"--at: no value for variable {missing[0]!r} "
            f"(the expression's variables: {', '.join(names)})"
        )
    extra = [n for n in at if n not in names]
    if extra:
        raise UsageError(f"--at: {extra[0]!r} is not a variable of the expression")
    return f, at, names


def check_output_file(path: str, flag: str = "--out") -> None:
    """Refuse, before any work, an output file that cannot be written: a directory, a
    path under a file or a missing directory, a place without write permission."""
    import os
    from pathlib import Path

    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a directory, not a file")
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"{flag} {path}: cannot write there ({parent} {what})")
    if target.exists() and not os.access(target, os.W_OK):
        raise UsageError(f"{flag} {path}: cannot write there (permission denied)")
    probe = parent / f".probe-{os.getpid()}"
    try:  # a file written and removed: the one test that no permission bit can fool
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write there ({err.strerror or err})") from None


def add_executor_flags(p) -> None:
    """``--workers`` and ``--dask``: where independent tasks run."""
    from ..tasks import default_workers

    p.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes to run independent tasks on (1: serially, in this process)",
    )
    p.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run the tasks on the Dask scheduler at ADDRESS (tcp://host:8786), or on a "
        "LocalCluster of --workers processes with 'local' (pip install 'diffkit[dist]')",
    )


@contextlib.contextmanager
def executor_from_args(args):
    """The executor the flags ask for, as a context manager; one that cannot start (a
    scheduler out of reach) is a usage error."""
    from ..tasks import ExecutorError, executor

    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    if args.dask:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise UsageError("--dask: Dask is not installed; pip install 'diffkit[dist]'") from None
    context = executor(args.workers, args.dask)
    try:
        ex = context.__enter__()
    except ExecutorError as err:
        raise UsageError(str(err)) from None
    try:
        yield ex
    except BaseException:
        if not context.__exit__(*sys.exc_info()):
            raise
    else:
        context.__exit__(None, None, None)


def tasks_failed_message(err, cache) -> str:
    """One line for a sweep whose tasks partly failed."""
    return f"{err}; the {err.finished} finished results are kept in {cache} and a rerun skips them"

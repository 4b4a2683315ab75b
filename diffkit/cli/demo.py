"""``diffkit demo``: the worked examples, every study and a LeNet-5 run."""

from __future__ import annotations

import sys

from .base import UsageError, add_executor_flags, executor_from_args


def run(args) -> int:
    from pathlib import Path

    from ..demo import StudyError, check_report_output, run_demo
    from ..tasks import TasksFailed

    try:
        check_report_output(Path(args.out), args.quick)  # before any work
        with executor_from_args(args) as ex:
            return run_demo(quick=args.quick, out=args.out, executor=ex, only=args.only)
    except StudyError as err:
        raise UsageError(str(err)) from None
    except TasksFailed as err:
        print(f"error: {err}; rerun to retry (finished tasks are kept)", file=sys.stderr)
        return 1


def _names(text: str) -> tuple:
    from ..demo import STUDIES

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in STUDIES]
    if not names or bad:
        import argparse

        raise argparse.ArgumentTypeError(
            f"unknown study {bad[0]!r}; known studies: {', '.join(STUDIES)}"
            if bad
            else "no study named"
        )
    return names


def register(sub) -> None:
    from ..demo import DEFAULT_OUT

    p = sub.add_parser("demo", help="run the studies and a LeNet-5 training run")
    p.add_argument("--quick", action="store_true", help="reduced grids, seconds not minutes")
    p.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        help="directory for the reports (the committed reports/ are written by make reports)",
    )
    p.add_argument(
        "--only",
        type=_names,
        default=None,
        metavar="NAMES",
        help="comma-separated studies to run (default: all)",
    )
    add_executor_flags(p)
    p.set_defaults(run=run)

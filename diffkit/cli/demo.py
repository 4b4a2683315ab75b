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
            return run_demo(quick=args.quick, out=args.out, executor=ex)
    except StudyError as err:
        raise UsageError(str(err)) from None
    except TasksFailed as err:
        print(f"error: {err}; rerun to retry (finished tasks are kept)", file=sys.stderr)
        return 1


def register(sub) -> None:
    from ..demo import DEFAULT_OUT

    p = sub.add_parser("demo", help="run the studies and a LeNet-5 training run")
    p.add_argument("--quick", action="store_true", help="reduced grids, seconds not minutes")
    p.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        help="directory for the reports (the committed reports/ are written by make reports)",
    )
    add_executor_flags(p)
    p.set_defaults(run=run)

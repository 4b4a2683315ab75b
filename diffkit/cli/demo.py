"""``diffkit demo``: the worked examples, every study and a LeNet-5 run."""

from __future__ import annotations

from .base import UsageError


def run(args) -> int:
    from ..demo import StudyError, run_demo

    try:
        return run_demo(quick=args.quick, out=args.out)
    except StudyError as err:
        raise UsageError(str(err)) from None


def register(sub) -> None:
    from ..demo import DEFAULT_OUT

    p = sub.add_parser("demo", help="run the studies and a LeNet-5 training run")
    p.add_argument("--quick", action="store_true", help="reduced grids, seconds not minutes")
    p.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        help="directory for the reports (the committed reports/ are written by make reports)",
    )
    p.set_defaults(run=run)

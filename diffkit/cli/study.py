"""``diffkit study NAME``: run one study (or all) and write its report."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .base import UsageError, add_executor_flags, executor_from_args, tasks_failed_message


def run(args) -> int:
    from ..demo import DEFAULT_OUT, STUDIES, StudyError, check_report_output, run_study
    from ..tasks import TasksFailed

    names = STUDIES if args.name == "all" else [args.name]
    try:
        if args.out and len(names) > 1:  # the directory that holds every study's
            check_report_output(Path(args.out), args.quick)
        outs = []
        for name in names:
            if name not in STUDIES:
                raise StudyError(f"unknown study {name!r}; known studies: {', '.join(STUDIES)}")
            out = (
                Path(args.out)
                if args.out and len(names) == 1
                else Path(args.out or DEFAULT_OUT) / name
            )
            outs.append(check_report_output(out, args.quick))
        with executor_from_args(args) as ex:
            for name, out in zip(names, outs):
                start = time.perf_counter()
                try:
                    run_study(name, out, quick=args.quick, executor=ex)
                except TasksFailed as err:
                    print(
                        f"error: study {name}: {tasks_failed_message(err, out / '.tasks')}",
                        file=sys.stderr,
                    )
                    return 1
                print(f"study {name}: wrote {out}/README.md ({time.perf_counter() - start:.1f} s)")
    except StudyError as err:
        raise UsageError(str(err)) from None
    return 0


def register(sub) -> None:
    from ..demo import DEFAULT_OUT, STUDIES

    p = sub.add_parser("study", help="run a study and write its report")
    p.add_argument("name", help=f"one of {', '.join(STUDIES)}, or all")
    p.add_argument("--out", help=f"output directory (default {DEFAULT_OUT}/NAME)")
    p.add_argument("--quick", action="store_true", help="a reduced grid, in seconds")
    add_executor_flags(p)
    p.set_defaults(run=run)

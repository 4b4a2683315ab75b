"""``diffkit study NAME``: run one study (or all) and write its report."""

from __future__ import annotations

import time
from pathlib import Path

from .base import UsageError


def run(args) -> int:
    from ..demo import DEFAULT_OUT, STUDIES, StudyError, check_report_output, load_study

    names = STUDIES if args.name == "all" else [args.name]
    try:
        for name in names:
            module = load_study(name)
            if args.out and len(names) == 1:
                out = Path(args.out)
            else:
                out = Path(args.out or DEFAULT_OUT) / name
            check_report_output(out, args.quick)
            start = time.perf_counter()
            module.main(out, quick=args.quick)
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
    p.set_defaults(run=run)

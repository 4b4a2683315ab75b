"""The subcommands of ``diffkit`` beyond ``demo``: compare, graph, study, train, evaluate."""

from __future__ import annotations

import json

from .cli import UsageError, _parse_point, subcommand

__all__: list[str] = []


def _run_compare(args) -> int:
    import diffkit as dk

    try:
        f = dk.parse(args.expression)
    except dk.ParseError as err:
        raise UsageError(str(err)) from None
    at = _parse_point(args.at)
    names = dk.differentiators.common.resolve_wrt(f, None)
    missing = [n for n in names if n not in at]
    if missing:
        raise UsageError(f"--at: no value for variable {missing[0]!r} "
                         f"(the expression's variables: {', '.join(names)})")
    extra = [n for n in at if n not in names]
    if extra:
        raise UsageError(f"--at: {extra[0]!r} is not a variable of the expression")
    wrt = args.wrt or names[0]
    if wrt not in names:
        raise UsageError(f"--wrt: {wrt!r} is not a variable of the expression "
                         f"({', '.join(names)})")
    methods = None
    if args.methods:
        methods = [m.strip() for m in ",".join(args.methods).split(",") if m.strip()]
        unknown = [m for m in methods if m not in dk.methods()]
        if unknown:
            raise UsageError(f"--methods: unknown method {unknown[0]!r}; known: "
                             f"{', '.join(dk.methods())}")
    try:
        rows = dk.compare(f, at, wrt=wrt, methods=methods, digits=args.digits)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print(json.dumps({"expression": args.expression, "at": at, "wrt": wrt,
                          "truth": rows[0]["truth"] if rows else None, "rows": rows}, indent=2))
        return 0
    truth = rows[0]["truth"] if rows else ""
    print(f"d/d{wrt} {args.expression} at {', '.join(f'{k}={v:g}' for k, v in at.items())}")
    print(f"truth ({args.digits} digits): {truth}")
    header = f"{'method':20s} {'derivative':>24s} {'abs error':>10s} {'rel error':>10s} " \
             f"{'evals':>6s} {'time':>10s}  size"
    print(header)
    print("-" * len(header))
    for r in rows:
        size = f"{r['size']} {r['size_kind']}" if r["size"] else ""
        print(f"{r['method']:20s} {r['derivative']:24.17g} {r['abs_error']:10.2e} "
              f"{r['rel_error']:10.2e} {r['evaluations']:6d} {r['seconds'] * 1e6:8.0f}us  {size}")
    return 0


@subcommand
def _compare(sub) -> None:
    p = sub.add_parser("compare", help="every differentiation method on one derivative")
    p.add_argument("expression", help='e.g. "exp(x)*sin(x)"')
    p.add_argument("--at", action="append", required=True, metavar="NAME=VALUE",
                   help="the point, e.g. --at x=1 or --at x=1,y=2")
    p.add_argument("--wrt", help="the variable (default: the first in sorted order)")
    p.add_argument("--methods", action="append", help="comma-separated method names")
    p.add_argument("--digits", type=int, default=50, help="digits of the reference (50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=_run_compare)

"""``diffkit compare``: every differentiation method on one derivative."""

from __future__ import annotations

import json

from .base import UsageError, expression_and_point


def run(args) -> int:
    import diffkit as dk

    f, at, names = expression_and_point(args)
    wrt = args.wrt if args.wrt is not None else names[0]
    if wrt not in names:
        raise UsageError(f"--wrt: {wrt!r} is not a variable of the expression ({', '.join(names)})")
    methods = None
    if args.methods:
        methods = [m.strip() for m in ",".join(args.methods).split(",") if m.strip()]
        unknown = [m for m in methods if m not in dk.methods()]
        if unknown:
            raise UsageError(
                f"--methods: unknown method {unknown[0]!r}; known: {', '.join(dk.methods())}"
            )
    if not 1 <= args.digits <= 1000:
        raise UsageError(f"--digits: expected 1 to 1000 digits, got {args.digits}")
    try:
        rows = dk.compare(f, at, wrt=wrt, methods=methods, digits=args.digits)
    except (ValueError, dk.EvaluationError) as err:
        raise UsageError(str(err)) from None
    if args.json:
        print(
            json.dumps(
                {
                    "expression": args.expression,
                    "at": at,
                    "wrt": wrt,
                    "truth": rows[0]["truth"] if rows else None,
                    "truth_note": rows[0]["truth_note"] if rows else None,
                    "rows": rows,
                },
                indent=2,
            )
        )
        return 0
    print(f"d/d{wrt} {args.expression} at {', '.join(f'{k}={v:.17g}' for k, v in at.items())}")
    if rows and rows[0]["truth"] is not None:
        print(f"truth ({args.digits} digits): {rows[0]['truth']}")
    elif rows:
        print(f"truth: none ({rows[0]['truth_note']}); no errors are shown")
    header = (
        f"{'method':20s} {'derivative':>24s} {'abs error':>10s} {'rel error':>10s} "
        f"{'evals':>6s} {'time':>10s}  size"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if r["note"]:
            print(f"{r['method']:20s} {r['note']}")
            continue
        size = f"{r['size']} {r['size_kind']}" if r["size"] else ""
        if r["error_estimate"] is not None:
            size = (size + "  " if size else "") + f"estimated error {r['error_estimate']:.1e}"
        errors = (
            f"{r['abs_error']:10.2e} {r['rel_error']:10.2e}"
            if r["abs_error"] is not None
            else f"{'-':>10s} {'-':>10s}"
        )
        print(
            f"{r['method']:20s} {r['derivative']:24.17g} {errors} "
            f"{r['evaluations']:6d} {r['seconds'] * 1e6:8.0f}us  {size}"
        )
    return 0


def register(sub) -> None:
    p = sub.add_parser("compare", help="every differentiation method on one derivative")
    p.add_argument("expression", help='e.g. "exp(x)*sin(x)"')
    p.add_argument(
        "--at",
        action="append",
        required=True,
        metavar="NAME=VALUE",
        help="the point, e.g. --at x=1 or --at x=1,y=2",
    )
    p.add_argument("--wrt", help="the variable (default: the first in sorted order)")
    p.add_argument("--methods", action="append", help="comma-separated method names")
    p.add_argument("--digits", type=int, default=50, help="digits of the reference")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)

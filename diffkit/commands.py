"""The subcommands of ``diffkit`` beyond ``demo``: compare, graph, study, train, evaluate."""

from __future__ import annotations

import json

from .cli import UsageError, _parse_point, subcommand

__all__: list[str] = []


def _expression_and_point(args, required: bool = True):
    """The parsed expression, the ``--at`` point and the variable names, checked together."""
    import diffkit as dk

    try:
        f = dk.parse(args.expression)
    except dk.ParseError as err:
        raise UsageError(str(err)) from None
    at = _parse_point(args.at or [])
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


def _run_compare(args) -> int:
    import diffkit as dk

    f, at, names = _expression_and_point(args)
    wrt = args.wrt or names[0]
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


@subcommand
def _compare(sub) -> None:
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
    p.add_argument("--digits", type=int, default=50, help="digits of the reference (50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=_run_compare)


STUDIES = (
    "roundoff",
    "blowup",
    "cost",
    "normalization",
    "optimizers",
    "receptive-fields",
    "graphs",
)


def studies_dir():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "studies"


def load_study(name: str):
    """The module of ``studies/NAME.py`` (studies are scripts beside the package)."""
    import importlib.util

    if name not in STUDIES:
        raise UsageError(f"unknown study {name!r}; known studies: {', '.join(STUDIES)}")
    path = studies_dir() / f"{name.replace('-', '_')}.py"
    if not path.exists():
        raise UsageError(
            f"study script {path} not found (the studies ship with the source "
            f"tree: install diffkit from a clone, editable)"
        )
    spec = importlib.util.spec_from_file_location(f"diffkit_study_{name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_study(args) -> int:
    import time

    names = STUDIES if args.name == "all" else [args.name]
    for name in names:
        module = load_study(name)
        out = (
            args.out
            if args.out and len(names) == 1
            else (f"{args.out}/{name}" if args.out else f"reports/{name}")
        )
        start = time.perf_counter()
        module.main(out, quick=args.quick)
        print(f"study {name}: wrote {out}/README.md ({time.perf_counter() - start:.1f} s)")
    return 0


@subcommand
def _study(sub) -> None:
    p = sub.add_parser("study", help="run a study and write its report")
    p.add_argument("name", help=f"one of {', '.join(STUDIES)}, or all")
    p.add_argument("--out", help="output directory (default reports/NAME)")
    p.add_argument("--quick", action="store_true", help="a reduced grid, in seconds")
    p.set_defaults(run=_run_study)


def _run_graph(args) -> int:
    import diffkit as dk

    f, at, _ = _expression_and_point(args, required=False)
    if not args.out.endswith(".png"):
        raise UsageError(f"--out: {args.out!r} should name a .png file")
    info = dk.viz.draw_graph(f, at=at or None, path=args.out)
    print(f"wrote {args.out} ({len(info['order'])} nodes)")
    return 0


@subcommand
def _graph(sub) -> None:
    p = sub.add_parser("graph", help="draw the computational graph of an expression")
    p.add_argument("expression")
    p.add_argument(
        "--at",
        action="append",
        metavar="NAME=VALUE",
        help="values (then gradients) to write on the edges",
    )
    p.add_argument("--out", default="graph.png", help="the PNG to write")
    p.set_defaults(run=_run_graph)

"""``diffkit graph``: draw the computational graph of an expression."""

from __future__ import annotations

from .base import UsageError, check_output_file, expression_and_point


def run(args) -> int:
    import diffkit as dk

    if args.html is not None:
        return _html(args)
    if not args.out.lower().endswith((".png", ".svg", ".pdf")):
        raise UsageError(f"--out: {args.out!r} should name a .png, .svg or .pdf file")
    check_output_file(args.out)
    f, at, _ = expression_and_point(args, required=False)
    try:
        info = dk.viz.draw_graph(f, at=at or None, path=args.out)
    except dk.viz.GraphTooLarge as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"--out {args.out}: cannot write ({err.strerror or err})") from None
    print(f"wrote {args.out} ({len(info['order'])} nodes)")
    return 0


def _html(args) -> int:
    import diffkit as dk

    if not args.html.lower().endswith((".html", ".htm")):
        raise UsageError(f"--html: {args.html!r} should name a .html file")
    check_output_file(args.html, "--html")
    f, at, _ = expression_and_point(args, required=True)
    try:
        info = dk.viz.write_graph_html(f, at, args.html)
    except dk.viz.GraphTooLarge as err:
        raise UsageError(str(err)) from None
    except ValueError as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"--html {args.html}: cannot write ({err.strerror or err})") from None
    print(f"wrote {args.html} ({info['nodes']} nodes, {info['steps']} steps)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("graph", help="draw the computational graph of an expression")
    p.add_argument("expression")
    p.add_argument(
        "--at",
        action="append",
        metavar="NAME=VALUE",
        help="values (then gradients) to write on the edges",
    )
    p.add_argument("--out", default="graph.png", help="the picture to write: .png, .svg or .pdf")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="instead, write a page that steps through the forward and backward passes",
    )
    p.set_defaults(run=run)

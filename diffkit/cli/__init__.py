"""The ``diffkit`` command: one module per subcommand, one error type.

Each subcommand module turns its flags into the library's values (a parsed
expression, a :class:`~diffkit.train.TrainConfig`) and calls the library; nothing
below this package imports it. Bad input ends with one line naming the problem and
exit status 2; a failure in the middle of a run with one line and status 1.
"""

from __future__ import annotations

import sys
import warnings
from typing import Sequence

from .base import UsageError, build_parser

__all__ = ["main", "UsageError", "build_parser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    import numpy as np

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        # numerical warnings are the library's business: results say what they mean
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return int(args.run(args) or 0)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

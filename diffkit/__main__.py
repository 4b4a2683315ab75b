"""``python -m diffkit``: the command line."""

from .cli import main

raise SystemExit(main())

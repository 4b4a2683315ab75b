"""A source distribution carries what the build needs: every C header the extension
includes is listed in MANIFEST.in (without it, a wheel built from the sdist silently
skips the compiled loops)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_included_header_is_in_the_sdist():
    manifest = (ROOT / "MANIFEST.in").read_text()
    listed = {
        name
        for line in manifest.splitlines()
        if line.startswith("include ")
        for name in line.split()[1:]
    }
    sources = [ROOT / "diffkit" / "_native.c", *sorted((ROOT / "diffkit").glob("_native_*.h"))]
    included = {
        f"diffkit/{name}"
        for src in sources
        for name in re.findall(r'#include "([^"]+)"', src.read_text())
    }
    assert included, "no local headers found: the check would pass vacuously"
    assert included <= listed, f"not in MANIFEST.in: {sorted(included - listed)}"
    setup = (ROOT / "setup.py").read_text()
    for header in included:
        assert header in setup, f"{header} is not among the extension's depends in setup.py"

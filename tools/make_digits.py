"""Regenerate diffkit/data/digits.npz from the UCI optical handwritten digits.

The 1,797 8x8 images are the test part of the UCI "Optical Recognition of
Handwritten Digits" set (Alpaydin & Kaynak, 1998; CC BY 4.0), as scikit-learn
ships them in ``sklearn/datasets/data/digits.csv.gz``. This script takes that
file from a scikit-learn wheel (downloaded with pip when not given), writes the
images (uint8, 0..16) and labels to a compressed .npz, and prints its SHA-256 for
diffkit/train/data.py.

Usage: python tools/make_digits.py [path/to/scikit_learn.whl]
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from wheels import download_wheel  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "diffkit" / "data" / "digits.npz"


def _wheel() -> Path:
    return download_wheel("scikit-learn", "scikit_learn-*.whl")


def main() -> None:
    wheel = Path(sys.argv[1]) if len(sys.argv) > 1 else _wheel()
    with zipfile.ZipFile(wheel) as z:
        raw = z.read("sklearn/datasets/data/digits.csv.gz")
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode()), delimiter=",")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 8, 8)
    labels = table[:, -1].astype(np.uint8)
    assert images.shape == (1797, 8, 8) and images.max() == 16
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, labels=labels)
    OUT.write_bytes(buf.getvalue())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    print(f"sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()

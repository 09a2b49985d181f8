"""The one IDX reader (Fashion-MNIST / MNIST files, plain or gzip) and where the files live.

Torch-free: the trainer (``trainer/data.py``), the device's web page, the client, the tools
and the tests all read the data set through this module. Nothing is downloaded (DESIGN §6):
Debian's ``dataset-fashion-mnist`` installs the files in :data:`DEFAULT_DATA_DIR`; any folder
with the four IDX files works (also the original MNIST files).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

# where Debian's dataset-fashion-mnist installs the four IDX files (`make data`)
DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# the IDX files of each split: (images, labels)
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetMissing(FileNotFoundError):
    """A dataset's files are not where we looked; the message says how to get them."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read a uint8 IDX file (``.gz`` or plain): big-endian header, magic type 0x08."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated ({data.size} of {int(np.prod(dims))} values)")
    return data.reshape(dims)


def find_idx(data_dir: str | Path, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in ``data_dir``, also spelt with a dot
    (``t10k-images.idx3-ubyte``); raises :class:`DatasetMissing` saying how to get them."""
    data_dir = Path(data_dir)
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DatasetMissing(
        f"{stem}[.gz] not found in {data_dir}. Install Debian's dataset-fashion-mnist "
        "(apt-get install -y dataset-fashion-mnist, or `make data`) or pass --data-dir with "
        "the four IDX files of Fashion-MNIST (or MNIST)."
    )


def load_split(data_dir: str | Path | None = None, split: str = "test"):
    """One split's images (uint8 [N, 28, 28]) and labels (int64 [N]) from the IDX files in
    ``data_dir`` (default :data:`DEFAULT_DATA_DIR`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    image_stem, label_stem = SPLITS[split]
    images = read_idx(find_idx(data_dir, image_stem))
    labels = read_idx(find_idx(data_dir, label_stem)).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{data_dir}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def load_test_set(data_dir: str | Path | None = None, n: int | None = None):
    """The first ``n`` test images (uint8 [n, 28, 28]) and labels (int64 [n])."""
    data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    images, labels = load_split(data_dir, "test")
    if n is not None:
        if n > images.shape[0]:
            raise ValueError(f"asked for {n} test images, {data_dir} has {images.shape[0]}")
        images, labels = images[:n], labels[:n]
    return images, labels

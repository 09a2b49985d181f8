"""Torch-free reader of IDX files (Fashion-MNIST / MNIST), for the client and the demo.

``trainer.data`` has an equivalent reader, but the device image ships without the trainer
package, so the client keeps its own (a few lines, NumPy only). Files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


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
    """``stem`` or ``stem.gz`` in ``data_dir`` (also the ``t10k-images.idx3-ubyte`` spelling)."""
    data_dir = Path(data_dir)
    names = [stem, stem + ".gz"]
    dotted = stem.replace("-idx", ".idx")
    names += [dotted, dotted + ".gz"]
    for name in names:
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(
        f"{stem}[.gz] not found in {data_dir}: install Debian's dataset-fashion-mnist "
        "(`make data`) or pass --data-dir with the Fashion-MNIST (or MNIST) IDX files"
    )


def load_test_set(data_dir: str | Path | None = None, n: int | None = None):
    """The first ``n`` test images (uint8 [n, 28, 28]) and labels (int64 [n])."""
    data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    images = read_idx(find_idx(data_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(find_idx(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{data_dir}: {images.shape[0]} images but {labels.shape[0]} labels")
    if n is not None:
        if n > images.shape[0]:
            raise ValueError(f"asked for {n} test images, {data_dir} has {images.shape[0]}")
        images, labels = images[:n], labels[:n]
    return images, labels

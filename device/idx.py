"""Torch-free reader of IDX files (Fashion-MNIST / MNIST), for the client and the demo.

The reader itself is ``shared.idx.read_idx`` (shared with the trainer); this module finds the
test-set files and loads them. Files may be gzip-compressed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.idx import FASHION_MNIST_CLASSES, read_idx  # noqa: F401 (re-exported)

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


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

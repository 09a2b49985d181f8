"""Datasets from local files only (DESIGN §6); nothing is downloaded.

Every loader returns a :class:`Dataset` of float32 inputs already normalised
((pixel/255 - mean)/std per channel, as recorded in the manifest) and targets.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from shared.idx import (  # noqa: F401 (DatasetMissing, read_idx re-exported)
    FASHION_MNIST_CLASSES,
    DatasetMissing,
    load_split,
    read_idx,
)
from trainer.dataset import Dataset
from trainer.ranging import make_ranging_dataset

FASHION_CLASSES = FASHION_MNIST_CLASSES
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
TASKS = ("fashion-mnist", "mnist", "cifar10", "ranging-bluetooth", "ranging-wifi")


def load_idx_images(data_dir: str | Path | None = None):
    """Fashion-MNIST (or MNIST) IDX files -> uint8 (x_train, y_train, x_test, y_test)."""
    x_train, y_train = load_split(data_dir, "train")
    x_test, y_test = load_split(data_dir, "test")
    return [x_train, y_train, x_test, y_test]


def _normalise(images: np.ndarray, mean, std) -> np.ndarray:
    x = images.astype(np.float32) / 255.0
    mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return (x - mean) / std


def load_fashion_mnist(data_dir=None, name: str = "fashion-mnist") -> Dataset:
    x_train, y_train, x_test, y_test = load_idx_images(data_dir)
    mean, std = (0.2860,), (0.3530,)
    if name == "mnist":
        mean, std = (0.1307,), (0.3081,)
    classes = FASHION_CLASSES if name == "fashion-mnist" else tuple(str(i) for i in range(10))
    return Dataset(
        name=name,
        task="classification",
        x_train=_normalise(x_train[:, None], mean, std),
        y_train=y_train.astype(np.int64),
        x_test=_normalise(x_test[:, None], mean, std),
        y_test=y_test.astype(np.int64),
        input_shape=(1, 28, 28),
        mean=mean,
        std=std,
        class_names=classes,
    )


def read_cifar10(data_dir: str | Path | None):
    """CIFAR-10 python pickle batches (data_batch_1..5, test_batch) in data_dir ->
    uint8 (x_train [N, 3, 32, 32], y_train, x_test, y_test)."""
    if not data_dir:
        raise DatasetMissing("CIFAR-10 needs --data-dir pointing at its python pickle batches")
    data_dir = Path(data_dir)

    def batch(name):
        path = data_dir / name
        if not path.is_file():
            raise DatasetMissing(
                f"{path} missing: unpack cifar-10-python.tar.gz and pass its "
                "cifar-10-batches-py folder as --data-dir"
            )
        with open(path, "rb") as fh:
            raw = pickle.load(fh, encoding="bytes")
        data = np.asarray(raw[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        return data, np.asarray(raw[b"labels"], np.int64)

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch("test_batch")
    x_train = np.concatenate([t[0] for t in train])
    return x_train, np.concatenate([t[1] for t in train]), x_test, y_test


def load_cifar10(data_dir: str | Path | None) -> Dataset:
    x_train, y_train, x_test, y_test = read_cifar10(data_dir)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    return Dataset(
        name="cifar10",
        task="classification",
        x_train=_normalise(x_train, mean, std),
        y_train=y_train,
        x_test=_normalise(x_test, mean, std),
        y_test=y_test,
        input_shape=(3, 32, 32),
        mean=mean,
        std=std,
        class_names=CIFAR_CLASSES,
    )


def load_dataset(task: str, data_dir=None, seed: int = 0) -> Dataset:
    if task in ("fashion-mnist", "mnist"):
        return load_fashion_mnist(data_dir, name=task)
    if task == "cifar10":
        return load_cifar10(data_dir)
    if task in ("ranging-bluetooth", "ranging-wifi"):
        return make_ranging_dataset(task.removeprefix("ranging-"), seed=seed)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


IMAGE_TASKS = ("fashion-mnist", "mnist", "cifar10")


def load_images(task: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """Images for reconstruction: float32 (x_train, x_test) [N, C, H, W] in [0, 1], no
    normalisation (PSNR of Hyper-AJSCC eq. (18) takes MAX = 1 on these)."""
    if task not in IMAGE_TASKS:
        raise ValueError(f"image task must be one of {IMAGE_TASKS}, got {task!r}")
    if task == "cifar10":
        x_train, _, x_test, _ = read_cifar10(data_dir)
    else:
        x_train, _, x_test, _ = load_idx_images(data_dir)
        x_train, x_test = x_train[:, None], x_test[:, None]
    return x_train.astype(np.float32) / 255.0, x_test.astype(np.float32) / 255.0

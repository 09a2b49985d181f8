"""Fixtures of the training tests."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread (as `python -m trainer experiment` uses), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cifar_folder(tmp_path) -> Path:
    """A folder in CIFAR-10's python format (what ``--task cifar10 --data-dir`` takes): five
    training pickles and a test pickle of 24 images each, smooth colour gradients."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = []
        for _ in range(24):
            a, b, c = rng.random(3)
            img = np.stack([a * xx, b * yy, c * (1 - xx) * yy]) * 255
            images.append(img.astype(np.uint8).reshape(-1))
        raw = {b"data": np.stack(images), b"labels": list(rng.integers(0, 10, 24))}
        with open(folder / name, "wb") as fh:
            pickle.dump(raw, fh)
    return folder

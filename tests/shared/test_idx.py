"""The one torch-free IDX reader (shared.idx): the trainer, the device page, the client."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from shared.idx import find_idx, load_test_set, read_idx


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, compress):
    images = np.arange(3 * 4 * 5).reshape(3, 4, 5).astype(np.uint8)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    got_images, got_labels = load_test_set(tmp_path, 2)
    np.testing.assert_array_equal(got_images, images[:2])
    np.testing.assert_array_equal(got_labels, [7, 0])


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    write_idx(path, np.zeros(10), compress=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        find_idx(tmp_path, "t10k-images-idx3-ubyte")


def test_the_dotted_spelling_is_found(tmp_path):
    """Some MNIST mirrors spell the files ``t10k-images.idx3-ubyte``: the trainer and the
    device find them the same way."""
    write_idx(tmp_path / "t10k-images.idx3-ubyte", np.zeros((2, 3, 3)), compress=False)
    assert find_idx(tmp_path, "t10k-images-idx3-ubyte").name == "t10k-images.idx3-ubyte"


def test_the_trainer_reads_through_the_same_reader(tmp_path):
    from trainer.data import load_idx_images

    for split, n in (("train", 4), ("t10k", 2)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", np.full((n, 2, 2), n), True)
        write_idx(tmp_path / f"{split}-labels.idx1-ubyte", np.arange(n), False)
    x_train, y_train, x_test, y_test = load_idx_images(tmp_path)
    assert (x_train.shape, x_test.shape) == ((4, 2, 2), (2, 2, 2))
    np.testing.assert_array_equal(y_train, [0, 1, 2, 3])
    assert y_test.dtype == np.int64


def test_images_and_labels_must_agree_in_count(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 2, 2)), compress=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2), compress=False)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        load_test_set(tmp_path)

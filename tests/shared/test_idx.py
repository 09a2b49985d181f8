"""The torch-free IDX reader used by the client and the demo."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from device.idx import find_idx, load_test_set, read_idx


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

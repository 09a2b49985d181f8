import gzip
import struct

import numpy as np
import pytest

from trainer.data import DatasetMissing, load_dataset, load_fashion_mnist, read_idx


def write_idx(path, array, compress=False):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(raw)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, arr, compress)
    assert np.array_equal(read_idx(path), arr)


def test_truncated_idx_is_an_error(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_any_folder_with_four_idx_files_works(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(6) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (2, 28, 28)), True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2]), True)
    data = load_fashion_mnist(tmp_path, name="mnist")
    assert data.x_train.shape == (6, 1, 28, 28) and data.y_test.tolist() == [1, 2]


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetMissing, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path)
    with pytest.raises(DatasetMissing, match="data-dir"):
        load_dataset("cifar10", None)


def test_ranging_set_is_deterministic_and_physical():
    a = load_dataset("ranging-wifi", seed=3)
    b = load_dataset("ranging-wifi", seed=3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    # LoS delay of 1..30 m is 3.3..100 ns
    assert a.y_train.min() >= 3.3 and a.y_train.max() <= 100.1
    assert a.task == "regression" and a.input_shape == (2, 64)


def test_cifar10_pickle_batches(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 9]}
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    data = load_dataset("cifar10", tmp_path)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.class_names[9] == "truck" and data.y_test.tolist() == [0, 1, 2, 9]
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DatasetMissing, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path)

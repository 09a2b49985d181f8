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


def test_bluetooth_two_way_tones_carry_the_line_of_sight_delay():
    """Bluetooth phase-based ranging (Hyper-VIB [23]): 79 tones 1 MHz apart, the two-way
    response ≈ H(f)², so a lone LoS path's phase falls by 4π·τ0 per Hz: the phase step
    between adjacent tones is −4π·1 MHz·τ0 (worked by hand: −0.2513 rad per tone at 20 ns)."""
    from trainer import ranging

    rng = np.random.default_rng(0)
    p = dict(ranging.PROFILES["bluetooth"], snr_db=200.0)  # noiseless
    delays = np.array([[20e-9] + [1.0] * ranging.N_PATHS])  # echoes given no power below
    gains = np.array([[1.0] + [0.0] * ranging.N_PATHS], dtype=complex)
    tones = ranging.two_way_tones(p, delays, gains, rng)[0]
    step = np.angle(tones[1:] / tones[:-1])
    assert tones.shape == (79,) and np.allclose(np.abs(tones), 1.0)
    assert np.allclose(step, -0.25132741, atol=1e-6)
    data = load_dataset("ranging-bluetooth", seed=3)
    assert (
        data.input_shape == (2, 79)
        and np.abs(data.x_train[:, 0] + 1j * data.x_train[:, 1]).max() <= 1.0 + 1e-6
    )
    assert data.y_train.min() >= 3.3 and data.y_train.max() <= 100.1
    # a first-peak delay estimate from the tones alone beats the mean predictor by 10x:
    # the observation carries the delay (the 2 MHz impulse response it replaced did not)
    x = data.x_test[:, 0] + 1j * data.x_test[:, 1]
    n_fft = 4096
    spectrum = np.abs(np.fft.ifft(x * np.hanning(79), n=n_fft, axis=1))
    first = np.argmax(spectrum > 0.3 * spectrum.max(axis=1, keepdims=True), axis=1)
    tau_ns = first / (n_fft * 1e6) / 2 * 1e9
    trivial = np.mean((data.y_test - data.y_train.mean()) ** 2)
    assert np.mean((tau_ns - data.y_test) ** 2) < 0.1 * trivial


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

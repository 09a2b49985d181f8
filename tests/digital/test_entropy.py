"""Entropy model and range coding of the level indices (shared/entropy.py, its torch twin)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from shared.entropy import (
    ChecksumError,
    EntropyCodingError,
    IndexEntropyModel,
    check_crc32,
    decode_indices,
    encode_indices,
    max_coded_bytes,
    payload_crc32,
    round_up_prefix,
)
from shared.nn.entropy_model import LearnedIndexPrior


def small_table(seed: int = 0, d: int = 8, levels: int = 16) -> IndexEntropyModel:
    rng = np.random.default_rng(seed)
    grid = np.log([1e-5, 1e-3, 1e-1])
    return IndexEntropyModel(grid, rng.normal(0, 2, size=(3, d, levels)).astype(np.float32))


# golden vector: table small_table(0), indices GOLDEN_INDICES, β = 1e-2 -> these bytes
# (constriction's sealed words 06addcf7 2e85c07f, big-endian, rounded up at 6 bytes)
GOLDEN_INDICES = [3, 0, 15, 7, 7, 1, 12, 4]
GOLDEN_HEX = "06addcf72e86"


def test_golden_vector_round_trip():
    table = small_table()
    coded = encode_indices(table, np.array(GOLDEN_INDICES), 1e-2)
    assert coded.hex() == GOLDEN_HEX
    decoded = decode_indices(table, bytes.fromhex(GOLDEN_HEX), len(GOLDEN_INDICES), 1e-2)
    assert decoded.tolist() == GOLDEN_INDICES


def test_round_trip_at_any_beta_and_prefix_length():
    table = small_table(1, d=64)
    rng = np.random.default_rng(2)
    for beta in (1e-5, 3e-4, 1e-2, 1.0):
        for n in (1, 17, 64):
            indices = rng.integers(0, 16, n)
            coded = encode_indices(table, indices, beta)
            assert decode_indices(table, coded, n, beta).tolist() == indices.tolist()


def test_round_up_prefix_carries_and_drops_trailing_zeros():
    assert round_up_prefix(bytes.fromhex("12345678"), 2) == bytes.fromhex("1235")
    assert round_up_prefix(bytes.fromhex("12ffff01"), 3) == bytes.fromhex("13")  # carry
    assert round_up_prefix(bytes.fromhex("12340000"), 2) == bytes.fromhex("1234")  # exact
    assert round_up_prefix(bytes.fromhex("ffff01"), 2) is None  # rounds up past 1
    assert round_up_prefix(bytes.fromhex("00000000"), 0) == b""


def random_indices(table: IndexEntropyModel, beta: float, n: int, case: str, rng):
    probs = table.probabilities(beta)[:n].astype(np.float64)
    if case == "least likely":  # the longest code: every index at its smallest probability
        return probs.argmin(axis=1)
    if case == "most likely":
        return probs.argmax(axis=1)
    return np.array([rng.choice(len(p), p=p / p.sum()) for p in probs])


def test_byte_trimmed_code_round_trips_and_meets_the_bound_on_random_and_worst_inputs():
    """Thousands of messages: random tables from flat to very peaked, prefixes of 1-64
    dimensions, indices drawn from the model, or all least / most likely. Every payload
    decodes exactly, carries no trailing zero byte (the decoder pads zeros), and is at most
    one byte (plus constriction's probability quantisation) over the ideal code length."""
    rng = np.random.default_rng(7)
    worst = -np.inf
    for trial in range(120):
        scale = (0.3, 2.0, 6.0, 12.0)[trial % 4]
        logits = rng.normal(0, scale, size=(3, 64, 16)).astype(np.float32)
        table = IndexEntropyModel(np.log([1e-5, 1e-2, 1.0]), logits)
        for beta in (1e-5, 3e-3, 1.0):
            for case in ("least likely", "most likely", "drawn", "drawn"):
                n = int(rng.integers(1, 65))
                indices = random_indices(table, beta, n, case, rng)
                coded = encode_indices(table, indices, beta)
                assert decode_indices(table, coded, n, beta).tolist() == indices.tolist()
                assert not coded.endswith(b"\0")
                assert len(coded) <= max_coded_bytes(table)
                predicted = table.predicted_bits(indices, beta)
                worst = max(worst, 8 * len(coded) - predicted)
                assert 8 * len(coded) <= 1.03 * predicted + 32  # per message
    assert worst <= 8.5, worst  # at most one byte over the ideal length (+ quantisation)


def test_decoder_reads_zeros_past_the_payload():
    table = small_table()
    coded = bytes.fromhex(GOLDEN_HEX)
    for padding in (1, 2, 5):
        padded = coded + b"\0" * padding
        decoded = decode_indices(table, padded, len(GOLDEN_INDICES), 1e-2)
        assert decoded.tolist() == GOLDEN_INDICES


def test_crc32_is_zlibs_and_catches_a_flipped_bit():
    assert payload_crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value
    coded = bytes.fromhex(GOLDEN_HEX)
    check_crc32(coded, payload_crc32(coded))
    for bit in range(8 * len(coded)):
        flipped = bytearray(coded)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ChecksumError, match="CRC-32"):
            check_crc32(bytes(flipped), payload_crc32(coded))


def test_numpy_table_matches_torch_prior_between_grid_points():
    prior = LearnedIndexPrior(d=5, n_levels=4, beta_range=(1e-5, 1.0), n_grid=6)
    with torch.no_grad():
        prior.logits.normal_(0, 3)
    table = IndexEntropyModel.from_dict(prior.to_dict())
    for beta in (1e-5, 2.7e-4, 1e-2, 0.33, 1.0):
        expected = prior.log_probs(torch.tensor([[beta]])).exp()[0].detach().numpy()
        np.testing.assert_allclose(table.probabilities(beta), expected, atol=2e-5)


def test_rate_bits_of_one_hot_equals_code_length():
    prior = LearnedIndexPrior(d=3, n_levels=4, beta_range=(1e-3, 1.0), n_grid=3)
    with torch.no_grad():
        prior.logits.normal_()
    indices = torch.tensor([[0, 3, 1]])
    beta = torch.tensor([[0.05]])
    one_hot = torch.nn.functional.one_hot(indices, 4).float()
    expected = prior.code_bits(indices, beta)
    assert torch.allclose(prior.rate_bits(one_hot, beta), expected)
    table = IndexEntropyModel.from_dict(prior.to_dict())
    assert table.predicted_bits(indices[0].numpy(), 0.05) == pytest.approx(
        float(expected.detach()), 1e-3
    )


def test_bad_payloads_are_errors_not_crashes():
    table = small_table()
    with pytest.raises(EntropyCodingError, match="longer than the longest valid code"):
        decode_indices(table, b"\x00" * 4096, 8, 1e-2)
    with pytest.raises(EntropyCodingError, match="n_coded"):
        decode_indices(table, bytes.fromhex(GOLDEN_HEX), 9, 1e-2)
    with pytest.raises(EntropyCodingError, match="level indices"):
        encode_indices(table, np.array([16]), 1e-2)
    garbage = decode_indices(table, bytes(range(8)), 8, 1e-2)  # decodes to *something*
    assert garbage.min() >= 0 and garbage.max() < 16


def encode_test_images(model_dir, n: int, beta: float, snr_db: float = 20.0):
    """The device's level indices for the first n test images (ONNX encoder, no torch)."""
    from device.encoder import OnnxEncoder
    from shared.manifest import load_manifest
    from trainer.data import load_fashion_mnist

    manifest = load_manifest(model_dir)
    x = load_fashion_mnist().x_test[:n]
    return OnnxEncoder(model_dir, manifest).encode(x, beta, snr_db).levels, manifest


def test_coded_images_round_trip_and_meet_the_bound_on_every_image(quick_digital_model_dir):
    """2,000 test images at three β through the real model: every payload decodes to the
    device's indices, and coded ≤ 1.03 × predicted + 32 bits for every image."""
    for beta in (1e-4, 1e-2, 1.0):
        levels, manifest = encode_test_images(quick_digital_model_dir, 2000, beta)
        table = IndexEntropyModel.from_manifest_raw(manifest.raw)
        predicted = np.array([table.predicted_bits(row, beta) for row in levels])
        payloads = [encode_indices(table, row, beta) for row in levels]
        for row, payload in zip(levels, payloads, strict=True):
            assert np.array_equal(decode_indices(table, payload, len(row), beta), row)
        coded = np.array([8 * len(p) for p in payloads])
        # target: within 3% of the predicted rate plus one 32-bit word, per image
        assert np.all(coded <= 1.03 * predicted + 32), (beta, (coded - predicted).max())
        assert (coded - predicted).max() <= 8.5  # byte-trimmed: ≤ one byte over the ideal
        assert coded.mean() >= predicted.mean() - 1.0  # no free lunch on average


def test_bits_fall_with_beta(quick_digital_model_dir):
    means = []
    for beta in (1e-5, 1e-3, 1e-2, 1e-1, 1.0):
        levels, manifest = encode_test_images(quick_digital_model_dir, 200, beta)
        table = IndexEntropyModel.from_manifest_raw(manifest.raw)
        means.append(np.mean([8 * len(encode_indices(table, row, beta)) for row in levels]))
    print("mean coded bits per image over beta:", [round(m, 1) for m in means])
    assert all(b <= a + 1.0 for a, b in zip(means, means[1:], strict=False)), means
    assert means[-1] < 0.5 * means[0] and means[0] < 256


def test_entropy_coding_round_trips_one_image_at_a_time(quick_digital_model_dir):
    """Batch one, as the device codes a request; the time is printed, and its target (50 µs)
    is a check of the digital experiment, not of this test (this machine is noisy)."""
    beta = 1e-2
    levels, manifest = encode_test_images(quick_digital_model_dir, 200, beta)
    table = IndexEntropyModel.from_manifest_raw(manifest.raw)
    encode_indices(table, levels[0], beta)  # warm: probability table for this β
    spans = []
    for row in levels:
        start = time.perf_counter()
        coded = encode_indices(table, row, beta)
        decoded = decode_indices(table, coded, len(row), beta)
        spans.append(time.perf_counter() - start)
        assert np.array_equal(decoded, row)
    median_us = 1e6 * float(np.median(spans))
    print(f"entropy encode + decode: median {median_us:.1f} us per image")

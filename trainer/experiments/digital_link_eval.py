"""Evaluating one model's features over the digital link: error-free levels decoded, the analog
link beside it, entropy-coded sizes, the QML-IB eq. (10)-(11) code length and the LDPC + QAM
link (shared.link.ldpc_qam). Used by the digital and fading experiments."""

from __future__ import annotations

import time

import numpy as np
import torch

from shared.channel import DEFAULT_BAUD
from shared.entropy import IndexEntropyModel, decode_indices, encode_indices
from shared.link.modes import channel_uses
from shared.nn.channel import awgn_sent


def digital_snr(model) -> torch.Tensor:
    """The decoder's SNR input for error-free features: the top of the trained range."""
    return float(model.config.snr_norm)


@torch.no_grad()
def decode_levels(model, indices: torch.Tensor, beta: float, snr_db: float, mask=None):
    """Decoder output for error-free level indices (zero where ``mask`` is 0)."""
    received = model.quantizer.levels()[indices]
    if mask is not None:
        received = received * mask
    n = len(indices)
    return model.decode(received, torch.full((n, 1), beta), torch.full((n, 1), snr_db))


def accuracy(outputs, y) -> float:
    return float((outputs.argmax(1).numpy() == y).mean())


@torch.no_grad()
def analog_accuracy(model, x, y, beta: float, psnr_db: float, seed: int = 0) -> float:
    """The model's symbols + AWGN at psnr_db (encoder/decoder told the PSNR clipped to the
    trained range)."""
    gen = torch.Generator().manual_seed(seed)
    snr = float(np.clip(psnr_db, 0.0, 25.0))
    n = len(x)
    b, s = torch.full((n, 1), beta), torch.full((n, 1), snr)
    sent = model.encode(torch.from_numpy(x), b, s)
    noisy = awgn_sent(sent["symbols"], 10 ** (-psnr_db / 20), sent["n_active"], gen)
    return accuracy(model.decode(noisy, b, s), y)


def coded_sizes(table: IndexEntropyModel, indices: np.ndarray, beta: float):
    """(coded bits [N], predicted bits [N], payloads, µs per image encode+decode)."""
    payloads, predicted = [], []
    start = time.perf_counter()
    for row in indices:
        payloads.append(encode_indices(table, row, beta))
    for row, payload in zip(indices, payloads, strict=True):
        if not np.array_equal(decode_indices(table, payload, len(row), beta), row):
            raise AssertionError("entropy coding round trip failed")
    us = 1e6 * (time.perf_counter() - start) / len(indices)
    predicted = [table.predicted_bits(row, beta) for row in indices]
    return np.array([8 * len(p) for p in payloads]), np.array(predicted), payloads, us


@torch.no_grad()
def gaussian_cdf_bits(model, x, beta: float, snr_db: float) -> float:
    """Mean ideal code length of the hard indices under the QML-IB eq. (10)-(11) level
    probabilities averaged over the images (per dimension)."""
    from shared.nn.channel import noise_var_from_snr

    n = len(x)
    b, s = torch.full((n, 1), beta), torch.full((n, 1), snr_db)
    enc = model.encoder(torch.from_numpy(x), b, s, noise_var_from_snr(s))
    probs = model.quantizer.level_probabilities(enc["mu"], enc["theta"].clamp_min(1e-4))
    marginal = probs.mean(0).clamp_min(1e-9)  # [d, K]
    idx = model.quantizer.indices(enc["mu"])
    return float(-torch.log2(marginal.gather(1, idx.T)).sum(0).mean())


def star_beta(betas, accuracies, reference_best: float) -> float:
    """β*: the largest β whose accuracy is within 1 point of ``reference_best`` (the
    fixed-length base model's best); the most accurate β when none is."""
    within = [b for b, a in zip(betas, accuracies, strict=True) if a >= reference_best - 0.01]
    if within:
        return max(within)
    return betas[int(np.argmax(accuracies))]


def ldpc_accuracy(model, payloads, indices, y, beta, psnr_db, mcs, rng) -> dict:
    """Send every payload as one codeword; lost blocks decode from zeros."""
    from shared.link.ldpc_qam import bytes_to_bits, simulate_blocks

    ok = np.zeros(len(payloads), dtype=bool)
    uses = np.zeros(len(payloads))
    lengths = np.array([len(p) for p in payloads])
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        bits = np.stack([bytes_to_bits(payloads[r]) for r in rows])
        _, ok[rows] = simulate_blocks(bits, mcs, psnr_db, rng)
        uses[rows] = channel_uses(bits.shape[1], mcs)
    mask = torch.from_numpy(ok.astype(np.float32)).unsqueeze(1)
    out = decode_levels(model, torch.from_numpy(indices), beta, digital_snr(model), mask)
    return {"accuracy": accuracy(out, y), "bler": float(1 - ok.mean()),
            "airtime_s": float(uses.mean() / DEFAULT_BAUD), "mcs": mcs.name}  # fmt: skip

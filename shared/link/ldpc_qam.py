"""5G LDPC + QAM over AWGN with soft demapping and BP decoding, simulated with Sionna.

Sionna (PyPI ``sionna-no-rt``, PyTorch) is imported on first use, so importing this module
costs nothing and the channel needs torch only when the ``ldpc-qam`` link runs (the
``digital`` extra installs it). One transmission = one codeword: its k payload bits are
LDPC-coded to n bits (``codeword_length``), mapped to 2^m-QAM (Sionna's constellation
scaled so that I and Q peak at amplitude 1, the analog symbols' peak), sent over AWGN with
σ² = 10^(-PSNR/10) per real dimension, demapped to LLRs ("app") and decoded (20 BP
iterations). The block fails when any decoded payload bit differs from the sent one (the
ideal CRC; a real receiver would detect it with the 5G CRC-24).
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from shared.channel import noise_var_from_psnr
from shared.link.modes import POWER_CONVENTIONS, Mcs, codeword_length

BP_ITERATIONS = 20
_LOCK = threading.Lock()  # Sionna blocks keep state; one simulation at a time


@functools.cache
def _blocks(k: int, n: int, bits_per_qam: int):
    import torch
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import Constellation, Demapper, Mapper

    torch.set_num_threads(1)
    encoder = LDPC5GEncoder(k, n)
    decoder = LDPC5GDecoder(encoder, hard_out=True, num_iter=BP_ITERATIONS)
    constellation = Constellation("qam", bits_per_qam)
    peak = float(constellation.points.real.abs().max())
    return (
        encoder,
        decoder,
        Mapper(constellation=constellation),
        Demapper("app", constellation=constellation),
        peak,
    )


def simulate_blocks(
    payload_bits: np.ndarray,
    mcs: Mcs,
    psnr_db: float | np.ndarray,
    rng: np.random.Generator,
    power: str = "peak",
) -> tuple[np.ndarray, np.ndarray]:
    """Send B codewords [B, k] of 0/1 payload bits; returns (decoded bits [B, k] uint8,
    block ok [B] bool). ``psnr_db`` is one value or one per codeword [B] (block fading after
    zero forcing with perfect CSI: y/h = x + n/h is AWGN at the block's instantaneous SNR,
    and the demapper is given that noise level).

    ``power``: "peak" (I/Q peak amplitude 1, the analog task models' convention; ``psnr_db``
    is a PSNR) or "average" (mean power 1 per real dimension, the image model's; ``psnr_db``
    is then an SNR). σ² = 10^(-dB/10) per real dimension either way."""
    if power not in POWER_CONVENTIONS:
        raise ValueError(f"power must be one of {POWER_CONVENTIONS}, got {power!r}")
    import torch

    payload_bits = np.asarray(payload_bits, dtype=np.uint8)
    if payload_bits.ndim != 2 or payload_bits.shape[1] < 12:
        raise ValueError(f"payload must be [B, k >= 12] bits, got {payload_bits.shape}")
    k = payload_bits.shape[1]
    n = codeword_length(k, mcs)
    with _LOCK:
        encoder, decoder, mapper, demapper, peak = _blocks(k, n, mcs.bits_per_qam)
        bits = torch.from_numpy(payload_bits.astype(np.float32))
        with torch.no_grad():
            x = mapper(encoder(bits))  # unit average energy, I/Q peak = ``peak``
            # peak: scaled by 1/peak the I/Q peak is 1; equivalently the noise grows by
            # peak^2. average: scaled by √2 each real dimension has mean power 1; the noise
            # shrinks by 1/2. Complex noise variance N0 = 2 σ² (σ² per real dimension).
            amplitude2 = peak**2 if power == "peak" else 0.5
            noise_var = np.broadcast_to(noise_var_from_psnr(np.asarray(psnr_db, float)), (len(x),))
            no = (2.0 * amplitude2 * noise_var)[:, None]  # [B, 1]
            noise = rng.normal(0.0, np.sqrt(no / 2), size=(2, *x.shape))
            y = x + torch.complex(
                torch.from_numpy(noise[0].astype(np.float32)),
                torch.from_numpy(noise[1].astype(np.float32)),
            )
            decoded = decoder(demapper(y, torch.from_numpy(no.astype(np.float32))))
    decoded = decoded.numpy().round().astype(np.uint8)
    return decoded, np.all(decoded == payload_bits, axis=1)


def bytes_to_bits(payload: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(payload, dtype=np.uint8))


def bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()

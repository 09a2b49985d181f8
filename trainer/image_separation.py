"""The separation baseline of the image experiment: a real codec over the LDPC + QAM link.

Source coding: WebP (lossy, through Pillow) at the highest quality in ``QUALITIES`` whose
bitstream fits the block; channel coding: one 5G LDPC codeword with square QAM
(``shared.link.ldpc_qam``, Sionna) in the same number of channel uses as the JSCC model,
with the image model's power convention (mean power 1 per real dimension).

Every byte the receiver needs is counted: a 2-byte length, then WebP's VP8 bitstream. Only
WebP's 20-byte RIFF wrapper ("RIFF", size, "WEBP", "VP8 ", size) is not sent, because the
receiver rebuilds it from the length. At 28×28 even quality 0 needs about 64-160 bytes, so
at low bandwidth ratios often nothing fits. Where no quality fits the block, or the block
fails (any bit wrong after BP decoding), the receiver shows the training set's mean image;
the results count both.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from shared.image_metrics import psnr_db, ssim
from shared.link.ldpc_qam import bytes_to_bits, simulate_blocks
from shared.link.modes import MCS_TABLE, Mcs, max_payload_bits, mcs_for_snr

QUALITIES = tuple(range(0, 101, 5))
LENGTH_BYTES = 2
RIFF_WRAPPER_BYTES = 20


def _to_pil(image: np.ndarray) -> Image.Image:
    """[C, H, W] float in [0, 1] -> an 8-bit L or RGB image."""
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return (
        Image.fromarray(pixels[0])
        if pixels.shape[0] == 1
        else Image.fromarray(pixels.transpose(1, 2, 0))
    )


def webp_bitstream(image: np.ndarray, quality: int) -> bytes:
    """The VP8 bitstream of ``image`` [C, H, W] at ``quality`` (RIFF wrapper removed)."""
    buf = io.BytesIO()
    _to_pil(image).save(buf, format="WEBP", quality=quality, method=6)
    data = buf.getvalue()
    if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 ":
        raise ValueError("expected a simple lossy WebP (RIFF/WEBP/VP8 chunk)")
    (size,) = struct.unpack("<I", data[16:20])
    return data[20 : 20 + size]


def decode_bitstream(bitstream: bytes, channels: int) -> np.ndarray:
    """Rebuild the RIFF wrapper, decode, -> [C, H, W] float in [0, 1]."""
    pad = b"\0" if len(bitstream) % 2 else b""
    chunk = b"VP8 " + struct.pack("<I", len(bitstream)) + bitstream + pad
    riff = b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk
    image = Image.open(io.BytesIO(riff)).convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def bitstreams(images: np.ndarray) -> list[dict[int, bytes]]:
    """Every image's bitstream at every quality (computed once per experiment)."""
    return [{q: webp_bitstream(img, q) for q in QUALITIES} for img in images]


def best_fit(streams: dict[int, bytes], budget_bytes: int) -> tuple[int, bytes] | None:
    """The highest quality whose bitstream fits ``budget_bytes``; None when none does."""
    fitting = [q for q in QUALITIES if len(streams[q]) <= budget_bytes]
    return (max(fitting), streams[max(fitting)]) if fitting else None


def send_images(
    images: np.ndarray,
    streams: list[dict[int, bytes]],
    mean_image: np.ndarray,
    complex_uses: int,
    mcs: Mcs,
    snr_db: float,
    seed: int = 0,
) -> dict:
    """Send every image in one codeword of ``mcs`` over ``complex_uses`` channel uses at
    ``snr_db`` (average power); PSNR/SSIM of what arrives, with the fit and block counts."""
    k_bits = max_payload_bits(2 * complex_uses, mcs)
    budget = k_bits // 8 - LENGTH_BYTES
    received = np.repeat(mean_image[None], len(images), axis=0)
    fits = [best_fit(s, budget) if budget > 0 else None for s in streams]
    sent = [i for i, f in enumerate(fits) if f is not None]
    ok = np.zeros(0, bool)
    if sent and k_bits >= 12:
        payload = np.zeros((len(sent), k_bits), np.uint8)
        for row, i in enumerate(sent):
            block = struct.pack(">H", len(fits[i][1])) + fits[i][1]
            bits = bytes_to_bits(block)
            payload[row, : len(bits)] = bits
        rng = np.random.default_rng(seed)
        _, ok = simulate_blocks(payload, mcs, snr_db, rng, power="average")
        for row, i in enumerate(sent):
            if ok[row]:
                received[i] = decode_bitstream(fits[i][1], images.shape[1])
    elif sent:
        sent = []
    qualities = [fits[i][0] for i in sent]
    return {
        "mcs": mcs.name,
        "payload_bytes": budget,
        "fit_fraction": len(sent) / len(images),
        "bler": float(1 - ok.mean()) if len(ok) else None,
        "mean_quality": float(np.mean(qualities)) if qualities else None,
        "delivered_fraction": float(ok.sum()) / len(images),
        "psnr_db": float(np.mean(psnr_db(images, received))),
        "ssim": float(np.mean(ssim(images, received))),
    }


def separation_curves(
    images, mean_image, complex_uses: int, snrs, designs: tuple[Mcs, ...] = MCS_TABLE, seed=0
) -> dict:
    """For each fixed MCS (a link designed for one SNR) and for the adaptive MCS
    (``mcs_for_snr``, average power), the points over ``snrs``. Designs with no image that
    fits are left out (listed under ``no_fit``)."""
    streams = bitstreams(images)
    out = {"designs": {}, "no_fit": [], "adaptive": []}
    for mcs in designs:
        budget = max_payload_bits(2 * complex_uses, mcs) // 8 - LENGTH_BYTES
        if not any(best_fit(s, budget) for s in streams):
            out["no_fit"].append(mcs.name)
            continue
        out["designs"][mcs.name] = [
            send_images(images, streams, mean_image, complex_uses, mcs, s, seed) for s in snrs
        ]
    for s in snrs:
        mcs = mcs_for_snr(s, power="average")
        out["adaptive"].append(send_images(images, streams, mean_image, complex_uses, mcs, s, seed))
    return out

"""The edge side of the digital link: coded bytes -> level indices -> the decoder's input.

A transmission that came over a digital link (``link_mode`` ideal or ldpc-qam) carries the
range-coded level indices of its first ``n_coded`` dimensions (``shared.entropy``). The edge
decodes them with the manifest's entropy model and feeds the decoder the quantizer's levels
q_k (QML-IB eq. 9), zero past n_coded. The features arrive without error, so the decoder is
conditioned on the top of the trained SNR range. A lost block (``link_lost``) leaves zeros,
as for a missing link, and the reply says so.
"""

from __future__ import annotations

import time

import numpy as np

from shared.entropy import (
    ChecksumError,
    EntropyCodingError,
    IndexEntropyModel,
    check_crc32,
    decode_indices,
)
from shared.manifest import Manifest
from shared.rpc import coinference_pb2 as pb

DIGITAL_MODES = ("ideal", "ldpc-qam")
__all__ = ["DIGITAL_MODES", "ChecksumError", "DigitalReceiver", "fill_reply"]


class DigitalReceiver:
    """Entropy decoding with the manifest's model; None-safe when the model has none."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.table = IndexEntropyModel.from_manifest_raw(manifest.raw)
        self.levels = np.asarray(manifest.levels or (), dtype=np.float32)

    @property
    def available(self) -> bool:
        return self.table is not None

    def received(self, transmission: pb.Transmission) -> tuple[np.ndarray, float, float]:
        """(decoder input [n_coded] float32, decoder SNR dB, entropy decode time s).
        Raises ChecksumError when the bytes fail the device's CRC-32 (DATA_LOSS), ValueError
        with a message for the caller otherwise (INVALID_ARGUMENT)."""
        if self.table is None:
            raise ValueError(
                f"link mode {transmission.link_mode!r}: this edge's model has no entropy model "
                "(python -m trainer digital); switch the channel to analog"
            )
        n = transmission.n_coded
        if not 1 <= n <= self.manifest.d:
            raise ValueError(f"n_coded={n} must lie in [1, {self.manifest.d}]")
        snr_db = float(self.manifest.snr_db_range[1])
        if transmission.link_lost:
            return np.zeros(n, dtype=np.float32), snr_db, 0.0
        payload = bytes(transmission.coded_indices)
        if transmission.HasField("coded_crc32"):
            check_crc32(payload, transmission.coded_crc32)
        start = time.perf_counter()
        try:
            indices = decode_indices(self.table, payload, n, transmission.beta)
        except EntropyCodingError as exc:
            raise ValueError(str(exc)) from None
        decode_s = time.perf_counter() - start
        return self.levels[indices], snr_db, decode_s


def fill_reply(reply: pb.InferenceReply, transmission: pb.Transmission, decode_s: float) -> None:
    """The digital fields of the reply: link, bits on the air, predicted bits, loss."""
    reply.link_mode = transmission.link_mode
    reply.bits = 8 * len(transmission.coded_indices) if not transmission.link_lost else 0
    reply.predicted_bits = transmission.predicted_bits
    reply.link_lost = transmission.link_lost
    reply.mcs = transmission.mcs
    reply.channel_uses = transmission.channel_uses
    reply.entropy_decode_s = decode_s
    reply.entropy_encode_s = transmission.entropy_encode_s

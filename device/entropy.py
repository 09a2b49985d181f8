"""Entropy coding on the device (NumPy + constriction, no torch): the level indices of the
transmitted prefix, range-coded with the manifest's entropy model (``shared.entropy``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from shared.entropy import IndexEntropyModel, encode_indices, payload_crc32
from shared.manifest import Manifest


@dataclass(frozen=True)
class Coded:
    payload: bytes  # range-coded indices; 8·len(payload) bits go over a digital link
    n_coded: int  # dimensions coded (the transmitted prefix)
    predicted_bits: float  # the model's ideal code length, sum -log2 P(k_j | j, β)
    encode_s: float  # range encoding time, s
    crc32: int  # CRC-32 of the payload (Transmission.coded_crc32)


class DeviceEntropyCoder:
    def __init__(self, manifest: Manifest):
        self.table = IndexEntropyModel.from_manifest_raw(manifest.raw)

    @property
    def available(self) -> bool:
        return self.table is not None

    def code(self, levels: np.ndarray, n: int, beta: float) -> Coded | None:
        """Code the first n level indices at β; None when the model has no entropy model."""
        if self.table is None or levels is None:
            return None
        start = time.perf_counter()
        indices = np.asarray(levels[:n])
        payload = encode_indices(self.table, indices, beta)
        encode_s = time.perf_counter() - start
        predicted = self.table.predicted_bits(indices, beta)
        return Coded(payload, n, predicted, encode_s, payload_crc32(payload))

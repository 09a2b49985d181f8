"""The channel's digital links: carry the coded bytes instead of the symbols.

- ``ideal``: the bytes arrive without error; air-time = bits / (C × baud), C the VL-VFE
  eq. (13) bound min{log2(1 + sqrt(2/(π·e·σ²))), 0.5·log2(1 + 1/σ²)} bits per real symbol
  (``shared.link.modes.ideal_airtime_s``).
- ``ldpc-qam``: the bytes are one 5G LDPC codeword on 2^m-QAM over AWGN at the current
  PSNR, the MCS chosen from the PSNR (``shared.link.modes.MCS_TABLE``), simulated with Sionna
  (``shared.link.ldpc_qam``); a block that fails to decode is a lost transmission: the edge
  gets ``link_lost`` and no bytes, and answers from zeros.
- ``analog`` (default): the symbols plus AWGN, as before; the coded bytes are dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from shared.link.modes import (
    LINK_MODES,
    channel_uses,
    check_link_mode,
    ideal_airtime_s,
    mcs_for_psnr,
)
from shared.rpc import coinference_pb2 as pb

DIGITAL_MODES = ("ideal", "ldpc-qam")
MIN_LDPC_BITS = 12  # 5G LDPC's smallest payload; shorter payloads are zero-padded


class LinkModeError(ValueError):
    """The transmission cannot go over the chosen link (e.g. no coded bytes)."""


@dataclass(frozen=True)
class LinkOutcome:
    airtime_s: float
    channel_uses: int  # real symbols on the air


class DigitalLinks:
    """The current link mode and the block counts of ``ldpc-qam`` (thread-safe)."""

    def __init__(self, mode: str = "analog"):
        self._lock = threading.Lock()
        self.mode = "analog"
        self.blocks_sent = 0
        self.blocks_failed = 0
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        check_link_mode(mode)
        if mode == "ldpc-qam":
            _check_sionna()
        with self._lock:
            self.mode = mode
            self.blocks_sent = self.blocks_failed = 0

    def fill_state(self, state: pb.ChannelState, psnr_db: float) -> None:
        with self._lock:
            state.link_mode = self.mode
            state.blocks_sent = self.blocks_sent
            state.blocks_failed = self.blocks_failed
            state.block_error_rate = (
                self.blocks_failed / self.blocks_sent if self.blocks_sent else 0.0
            )
        if self.mode == "ldpc-qam":
            state.mcs = mcs_for_psnr(psnr_db).name

    def carry(
        self, transmission: pb.Transmission, out: pb.Transmission, psnr_db: float,
        rng: np.random.Generator, baud: float, mode: str, channel_psnr_db: float | None = None,
    ) -> LinkOutcome:  # fmt: skip
        """Fill ``out`` (a copy of ``transmission`` without symbols) as the edge receives it
        over the digital link ``mode`` (the caller's snapshot of :attr:`mode`). The MCS
        follows ``psnr_db`` (the average the transmitter knows); the codeword meets
        ``channel_psnr_db`` (a fading block's instantaneous SNR; default ``psnr_db``)."""
        if mode not in DIGITAL_MODES:
            raise ValueError(f"not a digital link mode: {mode!r}")
        out.link_mode = mode
        del out.symbols[:]
        if not transmission.n_coded:
            raise LinkModeError(
                f"link mode {mode!r} carries entropy-coded bytes, but this transmission has "
                "none: the model has no entropy model (python -m trainer digital), or switch "
                "the channel to analog"
            )
        payload = bytes(transmission.coded_indices)
        bits = 8 * len(payload)
        if mode == "ideal":
            uses = int(np.ceil(ideal_airtime_s(bits, psnr_db, 1.0)))
            return LinkOutcome(ideal_airtime_s(bits, psnr_db, baud), uses)
        from shared.link.ldpc_qam import bits_to_bytes, bytes_to_bits, simulate_blocks

        mcs = mcs_for_psnr(psnr_db)
        sent = bytes_to_bits(payload)
        padded = np.zeros(max(len(sent), MIN_LDPC_BITS), dtype=np.uint8)
        padded[: len(sent)] = sent
        actual = psnr_db if channel_psnr_db is None else channel_psnr_db
        decoded, ok = simulate_blocks(padded[None], mcs, actual, rng)
        with self._lock:
            self.blocks_sent += 1
            self.blocks_failed += int(not ok[0])
        out.mcs = mcs.name
        if ok[0]:
            out.coded_indices = bits_to_bytes(decoded[0, : len(sent)])
        else:
            out.link_lost = True
            out.coded_indices = b""
        uses = channel_uses(len(padded), mcs)
        out.channel_uses = uses
        return LinkOutcome(uses / baud, uses)


def _check_sionna() -> None:
    try:
        import sionna.phy  # noqa: F401
    except ImportError as exc:
        raise LinkModeError(
            f"link mode 'ldpc-qam' needs Sionna (pip install -e '.[digital]'): {exc}"
        ) from None


__all__ = ["DIGITAL_MODES", "LINK_MODES", "DigitalLinks", "LinkModeError", "LinkOutcome"]
